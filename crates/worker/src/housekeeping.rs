//! Installation housekeeping: expiring delivery history past each tenant's retention, preparing the days ahead
//! (PostgreSQL partitions), and removing API keys nobody needs any more. Every step is idempotent, so several nodes
//! may run it on the same tick.

use apalis::prelude::*;
use apalis_cron::Tick;
use chrono::{DateTime, Utc};
use relaywatch_store::Store;

/// Revoked or expired API keys stay listed this long, so operators can see what was cut off and when.
pub const RETIRED_KEY_GRACE_DAYS: i64 = 30;
/// Daily delivery partitions prepared ahead of time on PostgreSQL.
pub const PARTITION_DAYS_AHEAD: u32 = 7;

pub async fn on_tick(_tick: Tick, store: Data<Store>) -> Result<(), BoxDynError> {
    let report = run_once(&store, Utc::now()).await?;
    if report != Report::default() {
        tracing::info!(
            pruned_api_keys = report.pruned_api_keys,
            expired_deliveries = report.expired_deliveries,
            expired_messages = report.expired_messages,
            dropped_partitions = report.dropped_partitions.len(),
            "housekeeping"
        );
    }
    Ok(())
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub pruned_api_keys: u64,
    pub expired_deliveries: u64,
    pub expired_messages: u64,
    pub dropped_partitions: Vec<String>,
}

/// One housekeeping pass at `now`; safe to run any number of times.
pub async fn run_once(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Report, relaywatch_store::StoreError> {
    let days_back = store.longest_retention_days().await?;
    store
        .ensure_delivery_partitions(now.date_naive(), days_back, PARTITION_DAYS_AHEAD)
        .await?;
    let retention = store.apply_retention_all_tenants(now).await?;
    store.refresh_planner_statistics().await?;
    let cutoff = now - chrono::Duration::days(RETIRED_KEY_GRACE_DAYS);
    let pruned_api_keys = store.prune_retired_api_keys_all_tenants(cutoff).await?;
    Ok(Report {
        pruned_api_keys,
        expired_deliveries: retention.deleted_deliveries,
        expired_messages: retention.deleted_messages,
        dropped_partitions: retention.dropped_partitions,
    })
}
