//! Relaywatch's background work, on apalis.
//!
//! `relaywatch serve` runs this runtime beside the API in one process. Today it runs installation housekeeping on a
//! cron schedule; per-tenant jobs (domain audits, blocklist sweeps, alert rules, webhook deliveries, retention) join
//! it as their issues land, each as a cron worker that enqueues one durable job per tenant and a worker that consumes
//! them.

pub mod audit;
pub mod dns;
pub mod housekeeping;

use apalis::prelude::*;
use apalis_cron::CronScheduler;
use relaywatch_store::Store;
use std::future::Future;
use std::str::FromStr;

/// Every minute at second 0: housekeeping is cheap and idempotent.
pub const HOUSEKEEPING_SCHEDULE: &str = "0 * * * * *";

/// Runs the worker runtime until `shutdown` resolves, then lets running jobs finish.
pub async fn run(
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let schedule = cron::Schedule::from_str(HOUSEKEEPING_SCHEDULE)?;
    // Worker names must be unique per node; the host name keeps them apart when several nodes share logs.
    let name = format!("relaywatch-housekeeping@{}", std::process::id());
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(name.clone())
                .backend(CronScheduler::new(schedule.clone()))
                .data(store.clone())
                .build(housekeeping::on_tick)
        })
        .shutdown_timeout(std::time::Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await?;
    Ok(())
}
