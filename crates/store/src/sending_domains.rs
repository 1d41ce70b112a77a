//! The domains a tenant sends mail from: what audits check and what routes shared-host mail to the tenant.

use crate::entities::sending_domain;
use crate::{Page, PageRequest, Store, StoreError, StoreResult, now};
use relaywatch_domain::{DkimSelector, DomainName, SendingDomainId, TenantId};
use sea_orm::{ActiveModelTrait, Set};

/// The stored comma-separated selector list, sorted and without duplicates.
pub fn selectors_to_db(selectors: &[DkimSelector]) -> String {
    let mut v: Vec<&str> = selectors.iter().map(|s| s.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

pub fn selectors_from_db(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

impl Store {
    pub async fn add_sending_domain(
        &self,
        tenant: TenantId,
        domain: &DomainName,
        selectors: &[DkimSelector],
    ) -> StoreResult<sending_domain::Model> {
        let at = now();
        let row = sending_domain::ActiveModel {
            id: Set(SendingDomainId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            domain: Set(domain.as_str().to_string()),
            dkim_selectors: Set(selectors_to_db(selectors)),
            created_at: Set(at),
            updated_at: Set(at),
        };
        row.insert(self.connection())
            .await
            .map_err(|e| StoreError::from_insert(e, "this sending domain"))
    }

    pub async fn find_sending_domain(
        &self,
        tenant: TenantId,
        id: SendingDomainId,
    ) -> StoreResult<Option<sending_domain::Model>> {
        crate::scoped::find::<sending_domain::Entity>(self.connection(), tenant, id.as_uuid()).await
    }

    pub async fn list_sending_domains(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<sending_domain::Model>> {
        crate::scoped::list::<sending_domain::Entity>(self.connection(), tenant, page).await
    }

    pub async fn set_dkim_selectors(
        &self,
        tenant: TenantId,
        id: SendingDomainId,
        selectors: &[DkimSelector],
    ) -> StoreResult<Option<sending_domain::Model>> {
        let Some(row) = self.find_sending_domain(tenant, id).await? else {
            return Ok(None);
        };
        let mut row: sending_domain::ActiveModel = row.into();
        row.dkim_selectors = Set(selectors_to_db(selectors));
        row.updated_at = Set(now());
        Ok(Some(row.update(self.connection()).await?))
    }

    pub async fn delete_sending_domain(
        &self,
        tenant: TenantId,
        id: SendingDomainId,
    ) -> StoreResult<bool> {
        crate::scoped::delete::<sending_domain::Entity>(self.connection(), tenant, id.as_uuid())
            .await
    }
}
