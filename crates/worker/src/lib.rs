//! Relaywatch's background work, on apalis.
//!
//! `relaywatch serve` runs this runtime beside the API in one process: installation housekeeping, domain audits
//! (a minute cron that enqueues due runs and a 2-second poll that carries them out), alert rule evaluation (every
//! minute), webhook delivery (every second, leases in the database) and blocklist checks (every 5 seconds: checks
//! triggered by bounces, then the sweeps that fell due).

pub mod alerts;
pub mod audit;
pub mod blocklist;
pub mod dns;
pub mod housekeeping;
pub mod providers;
pub mod webhooks;

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
/// Every minute at second 40: look up the MX of recipient domains whose provider is unknown.
pub const MX_PROVIDER_SCHEDULE: &str = "40 * * * * *";
/// Every minute at second 15: evaluate alert rules.
pub const ALERTS_SCHEDULE: &str = "15 * * * * *";
/// Every second: send the webhook deliveries that are due.
pub const WEBHOOK_DELIVERY_SCHEDULE: &str = "* * * * * *";
/// Every 10 minutes: remove webhook events past their retention.
pub const WEBHOOK_PRUNE_SCHEDULE: &str = "45 */10 * * * *";

/// What the worker needs besides the database.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Webhook delivery settings (the `[webhooks]` section).
    pub webhooks: relaywatch_webhooks::WebhookSettings,
    /// Decrypts webhook signing secrets (the key the API encrypted them with).
    pub cipher: relaywatch_store::secrets::SecretCipher,
    /// DNS blocklist sweeps (the `[blocklists]` section).
    pub blocklists: blocklist::BlocklistSettings,
    /// Domain audits (the `[audit]` section, environment applied).
    pub audit: audit::schedule::AuditConfig,
}

/// Runs the worker runtime until `shutdown` resolves, then lets running jobs finish.
pub async fn run(
    store: Store,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let blocklists = blocklist::BlocklistWorker::new(store.clone(), config.blocklists.clone())?;
    let blocklist_schedule = cron::Schedule::from_str(BLOCKLIST_SCHEDULE)?;
    let blocklist_name = format!("relaywatch-blocklists@{}", std::process::id());
    let schedule = cron::Schedule::from_str(HOUSEKEEPING_SCHEDULE)?;
    // Worker names must be unique per node; the host name keeps them apart when several nodes share logs.
    let name = format!("relaywatch-housekeeping@{}", std::process::id());
    let (audit_settings, default_schedule) = config.audit.build()?;
    // Recipient domains' MX are asked through the audits' resolvers.
    let mx_providers = providers::MxProviders {
        store: store.clone(),
        resolver: dns::build_resolver(&audit_settings.dns)?,
    };
    let mx_schedule = cron::Schedule::from_str(MX_PROVIDER_SCHEDULE)?;
    let mx_name = format!("relaywatch-mx-providers@{}", std::process::id());
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
    let deliverer = webhooks::Deliverer::new(
        store.clone(),
        config.webhooks.clone(),
        config.cipher.clone(),
        format!("relaywatch-webhooks@{}", std::process::id()),
    )?;
    let pruner = deliverer.clone();
    let (alerts_schedule, delivery_schedule, prune_schedule) = (
        cron::Schedule::from_str(ALERTS_SCHEDULE)?,
        cron::Schedule::from_str(WEBHOOK_DELIVERY_SCHEDULE)?,
        cron::Schedule::from_str(WEBHOOK_PRUNE_SCHEDULE)?,
    );
    let alerts_store = store.clone();
    let alerts_name = format!("relaywatch-alerts@{}", std::process::id());
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
        .register(move |_restarts| {
            WorkerBuilder::new(alerts_name.clone())
                .backend(CronScheduler::new(alerts_schedule.clone()))
                .data(alerts_store.clone())
                .build(alerts::on_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(deliverer.name().to_string())
                .backend(CronScheduler::new(delivery_schedule.clone()))
                .data(deliverer.clone())
                .build(webhooks::on_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(format!("{}-prune", pruner.name()))
                .backend(CronScheduler::new(prune_schedule.clone()))
                .data(pruner.clone())
                .build(webhooks::on_prune_tick)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(mx_name.clone())
                .backend(CronScheduler::new(mx_schedule.clone()))
                .data(mx_providers.clone())
                .build(providers::on_tick)
        })
        .shutdown_timeout(std::time::Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await?;
    Ok(())
}
