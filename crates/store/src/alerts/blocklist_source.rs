//! Where the `blocklist_listed` rule learns which of the tenant's IPs and domains are listed right now.

use crate::StoreResult;
use crate::entities::blocklist_listing as listing;
use relaywatch_domain::TenantId;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// The tenant's open blocklist listings as `(subject, zone)`: the listed IP or domain and the blocklist's zone
/// (`192.0.2.10`, `zen.spamhaus.org`). Every pair returned opens (or keeps open) one alert of each enabled
/// `blocklist_listed` rule; a pair that is no longer returned resolves it. Informational listings (policy codes such
/// as Spamhaus PBL, informational zones) never alert.
pub async fn open_listings(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> StoreResult<Vec<(String, String)>> {
    Ok(listing::Entity::find()
        .filter(listing::Column::TenantId.eq(tenant.as_uuid()))
        .filter(listing::Column::ClearedAt.is_null())
        .filter(listing::Column::Informational.eq(false))
        .order_by_asc(listing::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.subject, l.zone))
        .collect())
}
