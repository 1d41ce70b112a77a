//! Installation housekeeping: removing what nobody needs any more.

use apalis::prelude::*;
use apalis_cron::Tick;
use relaywatch_store::Store;

/// Revoked or expired API keys stay listed this long, so operators can see what was cut off and when.
pub const RETIRED_KEY_GRACE_DAYS: i64 = 30;

pub async fn on_tick(_tick: Tick, store: Data<Store>) -> Result<(), BoxDynError> {
    let report = run_once(&store).await?;
    if report.pruned_api_keys > 0 {
        tracing::info!(pruned_api_keys = report.pruned_api_keys, "housekeeping");
    }
    Ok(())
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub pruned_api_keys: u64,
}

/// One housekeeping pass; safe to run any number of times.
pub async fn run_once(store: &Store) -> Result<Report, relaywatch_store::StoreError> {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(RETIRED_KEY_GRACE_DAYS);
    let pruned_api_keys = store.prune_retired_api_keys_all_tenants(cutoff).await?;
    Ok(Report { pruned_api_keys })
}
