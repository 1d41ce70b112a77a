//! Tenants: installation-level administration. These functions span tenants on purpose and are only reachable by
//! installation admins (API) or the operator at the console (CLI).

use crate::entities::tenant;
use crate::{Page, PageRequest, Store, StoreResult, into_page, now};
use relaywatch_domain::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

pub const DEFAULT_RETENTION_DAYS: i32 = 30;

impl Store {
    /// Creates a tenant with the default alert rules (`alerts::default_rules`).
    pub async fn create_tenant(&self, name: &str) -> StoreResult<tenant::Model> {
        let row = tenant::ActiveModel {
            id: Set(TenantId::new().as_uuid()),
            name: Set(name.to_string()),
            retention_days: Set(DEFAULT_RETENTION_DAYS),
            created_at: Set(now()),
        };
        let txn = self.connection().begin().await?;
        let tenant = row.insert(&txn).await?;
        crate::alerts::create_default_rules(&txn, TenantId(tenant.id)).await?;
        txn.commit().await?;
        Ok(tenant)
    }

    pub async fn find_tenant(&self, tenant: TenantId) -> StoreResult<Option<tenant::Model>> {
        Ok(tenant::Entity::find_by_id(tenant.as_uuid())
            .one(self.connection())
            .await?)
    }

    pub async fn list_all_tenants(&self, page: PageRequest) -> StoreResult<Page<tenant::Model>> {
        let mut q = tenant::Entity::find().order_by_asc(tenant::Column::Id);
        if let Some(after) = page.after {
            q = q.filter(tenant::Column::Id.gt(after));
        }
        let rows = q.limit(page.limit + 1).all(self.connection()).await?;
        Ok(into_page(rows, page, |t| t.id))
    }

    pub async fn update_tenant(
        &self,
        tenant: TenantId,
        name: Option<&str>,
        retention_days: Option<i32>,
    ) -> StoreResult<Option<tenant::Model>> {
        let Some(row) = self.find_tenant(tenant).await? else {
            return Ok(None);
        };
        let mut row: tenant::ActiveModel = row.into();
        if let Some(name) = name {
            row.name = Set(name.to_string());
        }
        if let Some(days) = retention_days {
            row.retention_days = Set(days);
        }
        Ok(Some(row.update(self.connection()).await?))
    }

    /// Deletes a tenant and, through foreign keys, everything it owns. Returns false when there was no such tenant.
    pub async fn delete_tenant(&self, tenant: TenantId) -> StoreResult<bool> {
        let res = tenant::Entity::delete_by_id(tenant.as_uuid())
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected > 0)
    }
}

/// A tenant created with its sending domains, IPs and first admin key.
pub struct CreatedTenant {
    pub tenant: tenant::Model,
    pub key: crate::entities::api_key::Model,
    /// Shown once to whoever created the tenant.
    pub plaintext_key: String,
}

impl Store {
    /// Creates a tenant, registers its sending domains and IPs (duplicates in the input are ignored) and issues an
    /// admin key with every scope. If any step fails, the tenant is removed again so no half-made tenant remains.
    pub async fn create_tenant_with_admin_key(
        &self,
        name: &str,
        domains: &[relaywatch_domain::DomainName],
        ips: &[relaywatch_domain::IpNetwork],
    ) -> StoreResult<CreatedTenant> {
        let tenant = self.create_tenant(name).await?;
        let id = TenantId(tenant.id);
        let result = async {
            let mut domains = domains.to_vec();
            domains.sort();
            domains.dedup();
            for d in &domains {
                self.add_sending_domain(id, d, &[]).await?;
            }
            let mut ips = ips.to_vec();
            ips.sort();
            ips.dedup();
            for ip in &ips {
                self.add_sending_ip(id, ip, None, None).await?;
            }
            let new = crate::api_keys::NewKey {
                name: "tenant admin",
                scopes: relaywatch_domain::Scope::ALL.into_iter().collect(),
                installation_admin: false,
                expires_at: None,
                created_by_user: None,
                routes_by_sender: false,
            };
            self.issue_api_key(id, new).await
        }
        .await;
        match result {
            Ok((key, plaintext_key)) => Ok(CreatedTenant {
                tenant,
                key,
                plaintext_key,
            }),
            Err(e) => {
                if let Err(cleanup) = self.delete_tenant(id).await {
                    tracing::error!(tenant = %id, error = %cleanup, "could not remove a half-created tenant");
                }
                Err(e)
            }
        }
    }
}
