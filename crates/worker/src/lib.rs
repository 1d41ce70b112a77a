//! Relaywatch's background work, on apalis.
//!
//! `relaywatch serve` runs this runtime beside the API in one process. Today it runs installation housekeeping on a
//! cron schedule; per-tenant jobs (domain audits, blocklist sweeps, alert rules, webhook deliveries, retention) join
//! it as their issues land, each as a cron worker that enqueues one durable job per tenant and a worker that consumes
//! them.

pub mod audit;
pub mod blocklist;
pub mod dns;
pub mod housekeeping;

use apalis::prelude::*;
use apalis_cron::CronScheduler;
use relaywatch_store::Store;
use std::future::Future;
use std::str::FromStr;

/// Every minute at second 0: housekeeping is cheap and idempotent.
pub const HOUSEKEEPING_SCHEDULE: &str = "0 * * * * *";
/// Every minute at second 30: enqueue the domain audits that fell due (each tenant has its own schedule).
pub const AUDIT_ENQUEUE_SCHEDULE: &str = "30 * * * * *";
/// Every 2 seconds: carry out queued audit runs, so `POST .../audits` is answered within seconds.
pub const AUDIT_POLL_SCHEDULE: &str = "*/2 * * * * *";
/// Every 5 seconds: blocklist checks triggered by bounces, and the sweeps that fell due (each tenant every
/// `[blocklists] interval_minutes`).
pub const BLOCKLIST_SCHEDULE: &str = "*/5 * * * * *";

/// What the worker runtime needs besides the database.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    pub blocklists: blocklist::BlocklistSettings,
}

/// Runs the worker runtime with default settings until `shutdown` resolves.
pub async fn run(
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(store, WorkerSettings::default(), shutdown).await
}

/// Runs the worker runtime until `shutdown` resolves, then lets running jobs finish.
pub async fn run_with(
    store: Store,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let blocklists = blocklist::BlocklistWorker::new(store.clone(), settings.blocklists)?;
    let blocklist_schedule = cron::Schedule::from_str(BLOCKLIST_SCHEDULE)?;
    let blocklist_name = format!("relaywatch-blocklists@{}", std::process::id());
    let schedule = cron::Schedule::from_str(HOUSEKEEPING_SCHEDULE)?;
    // Worker names must be unique per node; the host name keeps them apart when several nodes share logs.
    let name = format!("relaywatch-housekeeping@{}", std::process::id());
    let (audit_settings, default_schedule) =
        audit::schedule::settings_from_env(|k| std::env::var(k).ok())?;
    let audits = audit::schedule::AuditWorkers {
        store: store.clone(),
        auditor: audit::Auditor::new(audit_settings)?,
        default_schedule,
        name: format!("relaywatch-audit@{}", std::process::id()),
    };
    let (audits_poll, every_minute, every_2s) = (
        audits.clone(),
        cron::Schedule::from_str(AUDIT_ENQUEUE_SCHEDULE)?,
        cron::Schedule::from_str(AUDIT_POLL_SCHEDULE)?,
    );
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(name.clone())
                .backend(CronScheduler::new(schedule.clone()))
                .data(store.clone())
                .build(housekeeping::on_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(format!("{}-schedule", audits.name))
                .backend(CronScheduler::new(every_minute.clone()))
                .data(audits.clone())
                .build(audit::schedule::on_schedule_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(format!("{}-runs", audits_poll.name))
                .backend(CronScheduler::new(every_2s.clone()))
                .data(audits_poll.clone())
                .build(audit::schedule::on_poll_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(blocklist_name.clone())
                .backend(CronScheduler::new(blocklist_schedule.clone()))
                .data(blocklists.clone())
                .build(blocklist::on_tick)
        })
        .shutdown_timeout(std::time::Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await?;
    Ok(())
}
