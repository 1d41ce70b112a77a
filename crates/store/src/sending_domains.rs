//! The domains a tenant sends mail from: what audits check and what routes shared-host mail to the tenant.

use crate::entities::sending_domain;
use crate::{Page, PageRequest, Store, StoreError, StoreResult, into_page, now};
use relaywatch_domain::{DkimSelector, DomainName, SendingDomainId, TenantId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

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
        Ok(sending_domain::Entity::find_by_id(id.as_uuid())
            .filter(sending_domain::Column::TenantId.eq(tenant.as_uuid()))
            .one(self.connection())
            .await?)
    }

    pub async fn list_sending_domains(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<sending_domain::Model>> {
        let mut q = sending_domain::Entity::find()
            .filter(sending_domain::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(sending_domain::Column::Id);
        if let Some(after) = page.after {
            q = q.filter(sending_domain::Column::Id.gt(after));
        }
        let rows = q.limit(page.limit + 1).all(self.connection()).await?;
        Ok(into_page(rows, page, |d| d.id))
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
        let res = sending_domain::Entity::delete_many()
            .filter(sending_domain::Column::TenantId.eq(tenant.as_uuid()))
            .filter(sending_domain::Column::Id.eq(id.as_uuid()))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected > 0)
    }
}
