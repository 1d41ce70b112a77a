//! First start: an installation needs one administrator before anyone can call the API.

use crate::api_keys::NewKey;
use crate::entities::{api_key, user};
use crate::{Store, StoreResult, secrets};
use relaywatch_domain::{EmailAddress, Role, Scope, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// What the first start created; printed once to the operator, never stored in clear.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub tenant_id: TenantId,
    pub api_key: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// The tenant the first administrator belongs to, so the printed key can be used at once for domains and IPs.
pub const FIRST_TENANT_NAME: &str = "default";

impl Store {
    /// Creates a first tenant, an installation-admin user (owner of that tenant) and an installation-admin API key,
    /// unless an installation admin exists already. Returns None when there was nothing to do.
    pub async fn bootstrap_installation_admin(
        &self,
        admin_email: &EmailAddress,
    ) -> StoreResult<Option<Bootstrapped>> {
        let admins = user::Entity::find()
            .filter(user::Column::InstallationAdmin.eq(true))
            .count(self.connection())
            .await?
            + api_key::Entity::find()
                .filter(api_key::Column::InstallationAdmin.eq(true))
                .count(self.connection())
                .await?;
        if admins > 0 {
            return Ok(None);
        }
        let tenant = self.create_tenant(FIRST_TENANT_NAME).await?;
        let tenant_id = TenantId(tenant.id);
        let password = secrets::generate_password();
        let user = self
            .create_user(tenant_id, admin_email, &password, Role::Owner, true)
            .await?;
        let (_, key) = self
            .issue_api_key(
                tenant_id,
                NewKey {
                    name: "installation admin (first start)",
                    scopes: Scope::ALL.into_iter().collect(),
                    installation_admin: true,
                    expires_at: None,
                    created_by_user: Some(relaywatch_domain::UserId(user.id)),
                    routes_by_sender: false,
                },
            )
            .await?;
        Ok(Some(Bootstrapped {
            tenant_id,
            api_key: key,
            admin_email: user.email,
            admin_password: password,
        }))
    }
}
