//! Where the `blocklist_listed` rule learns which of the tenant's IPs and domains are listed right now.

use crate::StoreResult;
use relaywatch_domain::TenantId;
use sea_orm::ConnectionTrait;

/// The tenant's open blocklist listings as `(subject, zone)`: the listed IP or domain and the blocklist's zone
/// (`192.0.2.10`, `zen.spamhaus.org`). Every pair returned opens (or keeps open) one alert of each enabled
/// `blocklist_listed` rule; a pair that is no longer returned resolves it.
pub async fn open_listings(
    _db: &impl ConnectionTrait,
    _tenant: TenantId,
) -> StoreResult<Vec<(String, String)>> {
    // wired by the blocklist issue
    Ok(Vec::new())
}
