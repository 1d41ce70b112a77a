//! Machine credentials. The plaintext key exists only in the response that creates it; the table holds its digest.

use crate::entities::api_key;
use crate::{Page, PageRequest, Store, StoreResult, now, secrets};
use chrono::{DateTime, Utc};
use relaywatch_domain::{ApiKeyId, ScopeSet, TenantId, UserId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// What to issue.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: ScopeSet,
    pub installation_admin: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by_user: Option<UserId>,
    /// Installation-level ingest key of a shared mail host: route each delivery by sender domain.
    pub routes_by_sender: bool,
}

/// A key that authenticated a request: enough to decide what the request may do.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub scopes: ScopeSet,
    pub installation_admin: bool,
    pub routes_by_sender: bool,
}

/// How often `last_used_at` is written for a key in use: once a minute is enough to answer "is this key still used?"
/// without turning every authenticated read into a write.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl Store {
    /// Issues a key and returns its row and the plaintext, which the caller must show once and then forget.
    pub async fn issue_api_key(
        &self,
        tenant: TenantId,
        new: NewKey<'_>,
    ) -> StoreResult<(api_key::Model, String)> {
        let key = secrets::generate_api_key();
        let row = api_key::ActiveModel {
            id: Set(ApiKeyId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            name: Set(new.name.to_string()),
            prefix: Set(key.display_prefix),
            key_hash: Set(key.digest),
            scopes: Set(new.scopes.to_db()),
            installation_admin: Set(new.installation_admin),
            created_by_user: Set(new.created_by_user.map(|u| u.as_uuid())),
            created_at: Set(now()),
            expires_at: Set(new.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            routes_by_sender: Set(new.routes_by_sender),
        };
        let row = row.insert(self.connection()).await?;
        Ok((row, key.plaintext))
    }

    /// Looks a presented key up by digest. Revoked and expired keys do not verify.
    pub async fn verify_api_key(&self, plaintext: &str) -> StoreResult<Option<VerifiedKey>> {
        let digest = secrets::api_key_digest(plaintext);
        let Some(row) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(digest))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let now = now();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let scopes = ScopeSet::parse_db(&row.scopes)
            .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        let verified = VerifiedKey {
            id: ApiKeyId(row.id),
            tenant: TenantId(row.tenant_id),
            scopes,
            installation_admin: row.installation_admin,
            routes_by_sender: row.routes_by_sender,
        };
        let stale = row
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_RESOLUTION_SECS);
        if stale {
            let mut active: api_key::ActiveModel = row.into();
            active.last_used_at = Set(Some(now));
            active.update(self.connection()).await?;
        }
        Ok(Some(verified))
    }

    pub async fn find_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
    ) -> StoreResult<Option<api_key::Model>> {
        crate::scoped::find::<api_key::Entity>(self.connection(), tenant, key.as_uuid()).await
    }

    pub async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<api_key::Model>> {
        crate::scoped::list::<api_key::Entity>(self.connection(), tenant, page).await
    }

    /// Revokes a key (idempotent). Returns None when the tenant has no such key.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
    ) -> StoreResult<Option<api_key::Model>> {
        let Some(row) = self.find_api_key(tenant, key).await? else {
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            return Ok(Some(row));
        }
        let mut active: api_key::ActiveModel = row.into();
        active.revoked_at = Set(Some(now()));
        Ok(Some(active.update(self.connection()).await?))
    }
}

impl Store {
    /// Installation housekeeping, across tenants on purpose: deletes keys revoked or expired before `cutoff`.
    pub async fn prune_retired_api_keys_all_tenants(
        &self,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        use sea_orm::Condition;
        let res = api_key::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(api_key::Column::RevokedAt.lt(cutoff))
                    .add(api_key::Column::ExpiresAt.lt(cutoff)),
            )
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected)
    }
}
