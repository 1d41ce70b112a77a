//! The addresses and networks a tenant sends from: what blocklist sweeps, reverse-DNS and SPF checks look at.

use crate::entities::sending_ip;
use crate::{Page, PageRequest, Store, StoreError, StoreResult, now};
use relaywatch_domain::{DomainName, IpNetwork, SendingIpId, TenantId};
use sea_orm::{ActiveModelTrait, Set};

impl Store {
    pub async fn add_sending_ip(
        &self,
        tenant: TenantId,
        network: &IpNetwork,
        description: Option<&str>,
        helo_name: Option<&DomainName>,
    ) -> StoreResult<sending_ip::Model> {
        let at = now();
        let row = sending_ip::ActiveModel {
            id: Set(SendingIpId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            network: Set(network.to_string()),
            description: Set(description.map(str::to_string)),
            helo_name: Set(helo_name.map(|h| h.as_str().to_string())),
            created_at: Set(at),
            updated_at: Set(at),
        };
        row.insert(self.connection())
            .await
            .map_err(|e| StoreError::from_insert(e, "this sending IP"))
    }

    pub async fn find_sending_ip(
        &self,
        tenant: TenantId,
        id: SendingIpId,
    ) -> StoreResult<Option<sending_ip::Model>> {
        crate::scoped::find::<sending_ip::Entity>(self.connection(), tenant, id.as_uuid()).await
    }

    pub async fn list_sending_ips(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<sending_ip::Model>> {
        crate::scoped::list::<sending_ip::Entity>(self.connection(), tenant, page).await
    }

    /// Changes the fields given: `Some(None)` clears one, `None` leaves it as it is.
    pub async fn update_sending_ip(
        &self,
        tenant: TenantId,
        id: SendingIpId,
        description: Option<Option<&str>>,
        helo_name: Option<Option<&DomainName>>,
    ) -> StoreResult<Option<sending_ip::Model>> {
        let Some(row) = self.find_sending_ip(tenant, id).await? else {
            return Ok(None);
        };
        let mut row: sending_ip::ActiveModel = row.into();
        if let Some(description) = description {
            row.description = Set(description.map(str::to_string));
        }
        if let Some(helo_name) = helo_name {
            row.helo_name = Set(helo_name.map(|h| h.as_str().to_string()));
        }
        row.updated_at = Set(now());
        Ok(Some(row.update(self.connection()).await?))
    }

    pub async fn delete_sending_ip(&self, tenant: TenantId, id: SendingIpId) -> StoreResult<bool> {
        crate::scoped::delete::<sending_ip::Entity>(self.connection(), tenant, id.as_uuid()).await
    }
}
