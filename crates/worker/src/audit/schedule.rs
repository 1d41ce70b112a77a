//! Audit runs as background work: a cron tick enqueues each tenant's due audits (one run per domain and schedule
//! time, under an idempotency key, so nodes ticking together enqueue it once), and a poll claims queued runs
//! (requested through the API or scheduled) and carries them out.

use super::{AuditTarget, Auditor};
use chrono::{DateTime, Utc};
use relaywatch_audit::{Finding, Report, Severity};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as event_types;
use relaywatch_store::audits::{AuditOutcome, AuditSchedule};
use relaywatch_store::entities::audit_run;
use relaywatch_store::events::NewEvent;
use relaywatch_store::sending_domains::selectors_from_db;
use relaywatch_store::{PageRequest, Store, StoreResult};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;

/// Every 6 hours on the hour (six-field cron, seconds first, UTC).
pub const DEFAULT_AUDIT_SCHEDULE: &str = "0 0 */6 * * *";

/// The idempotency key of the scheduled run of one domain for one schedule time.
pub fn schedule_key(tenant: TenantId, domain_id: uuid::Uuid, at: DateTime<Utc>) -> String {
    format!(
        "audit:{}:{}:{}",
        tenant.as_uuid(),
        domain_id,
        at.timestamp()
    )
}

/// The latest time in `(after, until]` at which `cron` fires.
pub fn due_time(cron: &str, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let schedule = cron::Schedule::from_str(cron).ok()?;
    schedule.after(&after).take_while(|t| *t <= until).last()
}

/// Enqueues the runs that fall due in `(after, until]` for every tenant: the tenant's own schedule, or `default`.
/// Returns how many runs this call queued (runs another node queued first are not counted).
pub async fn enqueue_due(
    store: &Store,
    default: &AuditSchedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut queued = 0;
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let tenants = store.list_all_tenants(page).await?;
        for t in &tenants.items {
            let tenant = TenantId(t.id);
            let schedule = store
                .audit_schedule(tenant)
                .await?
                .unwrap_or_else(|| default.clone());
            if !schedule.enabled {
                continue;
            }
            let Some(at) = due_time(&schedule.cron, after, until) else {
                continue;
            };
            let mut dpage = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let domains = store.list_sending_domains(tenant, dpage).await?;
                for d in &domains.items {
                    let key = schedule_key(tenant, d.id, at);
                    if store
                        .enqueue_scheduled_audit(tenant, d, &key)
                        .await?
                        .is_some()
                    {
                        queued += 1;
                    }
                }
                match domains.next_cursor {
                    Some(c) => dpage.after = Some(c),
                    None => break,
                }
            }
        }
        match tenants.next_cursor {
            Some(c) => page.after = Some(c),
            None => return Ok(queued),
        }
    }
}

/// Addresses audited per sending network: each costs a PTR, an A/AAAA and an SPF evaluation.
pub const MAX_ADDRESSES_PER_NETWORK: usize = 256;
/// Addresses audited per run, all networks together.
pub const MAX_ADDRESSES_PER_AUDIT: usize = 1024;

/// What an audit checks of the tenant's sending IPs.
#[derive(Debug, Default)]
struct SendingAddresses {
    ips: Vec<IpAddr>,
    helo_names: Vec<(IpAddr, String)>,
    sampled: Vec<relaywatch_audit::ptr::SampledNetwork>,
}

/// The tenant's sending IPs address by address: single addresses, and networks' addresses up to the caps (a network
/// cut short is reported, so the report never claims more than it checked), with the registered HELO names.
async fn sending_addresses(store: &Store, tenant: TenantId) -> StoreResult<SendingAddresses> {
    let mut out = SendingAddresses::default();
    let mut seen = std::collections::HashSet::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let ips = store.list_sending_ips(tenant, page).await?;
        for ip in &ips.items {
            // Stored networks were validated on the way in; one that no longer parses is skipped, not fatal.
            let Ok(network) = relaywatch_domain::IpNetwork::parse(&ip.network) else {
                continue;
            };
            let room = MAX_ADDRESSES_PER_AUDIT.saturating_sub(out.ips.len());
            let (addrs, total) = network.addresses(MAX_ADDRESSES_PER_NETWORK.min(room));
            if total > addrs.len() as u128 {
                out.sampled.push(relaywatch_audit::ptr::SampledNetwork {
                    network: network.to_string(),
                    addresses: total,
                    audited: addrs.len(),
                });
            }
            for addr in addrs {
                if !seen.insert(addr) {
                    continue;
                }
                if let Some(helo) = &ip.helo_name {
                    out.helo_names.push((addr, helo.clone()));
                }
                out.ips.push(addr);
            }
        }
        match ips.next_cursor {
            Some(c) => page.after = Some(c),
            None => return Ok(out),
        }
    }
}

/// Delivery attempts from `domain` during the last 24 hours, as the agents' logs show them (None when there were
/// none): what turns on the bulk-sender rule.
async fn observed_daily_volume(
    store: &Store,
    tenant: TenantId,
    domain: &str,
) -> StoreResult<Option<u64>> {
    let to = Utc::now();
    let buckets = store
        .delivery_stats(
            tenant,
            to - chrono::Duration::hours(24),
            to,
            86_400,
            Some(relaywatch_store::deliveries::GroupBy::SenderDomain),
        )
        .await?;
    let total: i64 = buckets
        .iter()
        .filter(|b| {
            b.group
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(domain))
        })
        .map(|b| b.sent + b.deferred + b.bounced + b.expired + b.other)
        .sum();
    Ok((total > 0).then_some(total as u64))
}

/// Findings of `now` that `before` lacked, and findings of `before` that `now` lacks (same code and subject).
pub fn diff(before: &[Finding], now: &[Finding]) -> (Vec<Finding>, Vec<Finding>) {
    let old: BTreeSet<_> = before.iter().map(Finding::key).collect();
    let new: BTreeSet<_> = now.iter().map(Finding::key).collect();
    (
        now.iter()
            .filter(|f| !old.contains(&f.key()))
            .cloned()
            .collect(),
        before
            .iter()
            .filter(|f| !new.contains(&f.key()))
            .cloned()
            .collect(),
    )
}

/// A selector learned from mail is audited while the signer used it within this many days: a key rotated away from
/// and unpublished is no longer an error once mail stops carrying it.
pub const LEARNED_SELECTOR_DAYS: i64 = 30;

/// Carries out one claimed run and records its outcome.
pub async fn execute(store: &Store, auditor: &Auditor, run: &audit_run::Model) -> StoreResult<()> {
    let tenant = TenantId(run.tenant_id);
    let Some(domain) = store
        .find_sending_domain(
            tenant,
            relaywatch_domain::SendingDomainId(run.sending_domain_id),
        )
        .await?
    else {
        return store
            .fail_audit(tenant, run.id, "the sending domain was removed")
            .await;
    };
    let schedule = store.audit_schedule(tenant).await?;
    let daily_volume = observed_daily_volume(store, tenant, &domain.domain).await?;
    let observed_selectors = store
        .observed_selectors(
            tenant,
            std::slice::from_ref(&domain.domain),
            Some(Utc::now() - chrono::Duration::days(LEARNED_SELECTOR_DAYS)),
        )
        .await?
        .into_iter()
        .map(|o| o.selector)
        .collect();
    let addresses = sending_addresses(store, tenant).await?;
    let target = AuditTarget {
        daily_volume,
        domain: domain.domain.clone(),
        selectors: selectors_from_db(&domain.dkim_selectors),
        observed_selectors,
        sending_ips: addresses.ips,
        helo_names: addresses.helo_names,
        sampled_networks: addresses.sampled,
        skip_smtp: !run
            .smtp_checks
            .unwrap_or_else(|| schedule.is_none_or(|s| s.smtp_checks)),
        ..AuditTarget::default()
    };
    let report = auditor.audit(&target).await;
    let previous_run = store.latest_completed_audit(tenant, domain.id).await?;
    let previous: Vec<Finding> = previous_run
        .as_ref()
        .and_then(|r| r.report.as_deref())
        .and_then(|json| serde_json::from_str::<Report>(json).ok())
        .map(|r| r.findings)
        .unwrap_or_default();
    let (new, resolved) = diff(&previous, &report.findings);
    let events = if previous_run.is_some() {
        audit_events(tenant, run, &report, &new, &resolved)
    } else {
        // A first audit has nothing to regress from.
        Vec::new()
    };
    let outcome = AuditOutcome {
        score: report.scorecard.score as i32,
        grade: format!("{:?}", report.scorecard.grade),
        errors: report.count(Severity::Error) as i32,
        warnings: report.count(Severity::Warning) as i32,
        infos: report.count(Severity::Info) as i32,
        not_tested: report.not_tested.len() as i32,
        report: serde_json::to_string(&report).unwrap_or_default(),
        new_findings: serde_json::to_string(&new).unwrap_or_default(),
        resolved_findings: serde_json::to_string(&resolved).unwrap_or_default(),
    };
    store
        .complete_audit_with_events(tenant, run.id, outcome, events)
        .await
}

/// `audit.regressed` when the run has errors the previous run did not, `audit.resolved` when errors of the previous
/// run are gone. Keyed by the run, so a run recorded twice announces once.
fn audit_events(
    tenant: TenantId,
    run: &audit_run::Model,
    report: &Report,
    new: &[Finding],
    resolved: &[Finding],
) -> Vec<NewEvent> {
    let errors = |list: &[Finding]| -> Vec<Finding> {
        list.iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect()
    };
    let summary = |findings: Vec<Finding>, field: &str| {
        let mut data = serde_json::json!({
            "domain": run.domain,
            "audit_run_id": run.id,
            "score": report.scorecard.score,
            "grade": format!("{:?}", report.scorecard.grade),
            "errors": report.count(Severity::Error),
            "warnings": report.count(Severity::Warning),
        });
        data[field] = serde_json::to_value(findings).unwrap_or_default();
        data
    };
    let mut events = Vec::new();
    let new_errors = errors(new);
    if !new_errors.is_empty() {
        events.push(NewEvent::keyed(
            tenant,
            event_types::AUDIT_REGRESSED,
            &run.id.to_string(),
            summary(new_errors, "new_findings"),
        ));
    }
    let gone = errors(resolved);
    if !gone.is_empty() {
        events.push(NewEvent::keyed(
            tenant,
            event_types::AUDIT_RESOLVED,
            &run.id.to_string(),
            summary(gone, "resolved_findings"),
        ));
    }
    events
}

/// Claims up to `limit` queued runs and carries them out, several at once. Returns how many ran.
pub async fn run_queued(
    store: &Store,
    auditor: &Auditor,
    worker: &str,
    limit: u64,
) -> StoreResult<usize> {
    use futures::StreamExt;
    let runs = store.claim_queued_audits_all_tenants(worker, limit).await?;
    let n = runs.len();
    let results: Vec<StoreResult<()>> = futures::stream::iter(runs)
        .map(|run| {
            let (store, auditor) = (store.clone(), auditor.clone());
            async move {
                let r = execute(&store, &auditor, &run).await;
                if let Err(e) = &r {
                    tracing::warn!(audit_run = %run.id, error = %e, "audit run failed");
                    let _ = store
                        .fail_audit(TenantId(run.tenant_id), run.id, &e.to_string())
                        .await;
                }
                r
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        tracing::warn!(error = %e, "some audit runs failed");
    }
    Ok(n)
}

/// What the audit workers share.
#[derive(Clone)]
pub struct AuditWorkers {
    pub store: Store,
    pub auditor: Auditor,
    pub default_schedule: AuditSchedule,
    /// Unique per process: recorded on the runs it claims.
    pub name: String,
}

/// Runs queued longer than this in `running` belong to a worker that died; they are queued again.
const STALE_RUN_MINUTES: i64 = 30;

/// Every minute: enqueue the runs that fell due during the minute before this tick.
pub async fn on_schedule_tick(
    tick: apalis_cron::Tick,
    ctx: apalis::prelude::Data<AuditWorkers>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let until =
        DateTime::<Utc>::from_timestamp(tick.get_timestamp() as i64, 0).unwrap_or_else(Utc::now);
    let after = until - chrono::Duration::minutes(1);
    let queued = enqueue_due(&ctx.store, &ctx.default_schedule, after, until).await?;
    let requeued = ctx
        .store
        .requeue_stale_audits_all_tenants(Utc::now() - chrono::Duration::minutes(STALE_RUN_MINUTES))
        .await?;
    if queued > 0 || requeued > 0 {
        tracing::info!(queued, requeued, "audit schedule");
    }
    Ok(())
}

/// Every few seconds: carry out queued runs.
pub async fn on_poll_tick(
    _tick: apalis_cron::Tick,
    ctx: apalis::prelude::Data<AuditWorkers>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let ran = run_queued(&ctx.store, &ctx.auditor, &ctx.name, 16).await?;
    if ran > 0 {
        tracing::info!(ran, "audit runs");
    }
    Ok(())
}

/// The `[audit]` section of the service's TOML file; `RELAYWATCH_AUDIT_*` environment variables override it
/// ([`AuditConfig::apply_env`]), and [`AuditConfig::build`] turns it into what the auditor and scheduler use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Resolvers, `IP` or `IP:port`; empty means the system's.
    pub nameservers: Vec<String>,
    /// Per DNS query, in milliseconds.
    pub timeout_ms: u64,
    /// Tries per DNS query, the first included.
    pub attempts: usize,
    /// DNS questions in flight at once per audit.
    pub concurrency: usize,
    /// STARTTLS probes of the MX hosts on port 25 (tenants can still switch them off for their domains).
    pub smtp_checks: bool,
    /// Each HTTPS fetch and SMTP probe, connection included, in milliseconds.
    pub transport_timeout_ms: u64,
    /// PEM file of a CA to trust besides the public ones (MTA-STS and SMTP certificates).
    pub extra_ca_file: Option<std::path::PathBuf>,
    /// The name the SMTP probes give in EHLO.
    pub ehlo_name: String,
    /// When tenants' domains are audited unless they set their own (six-field cron, UTC).
    pub schedule: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let s = super::AuditSettings::default();
        Self {
            nameservers: Vec::new(),
            timeout_ms: s.dns.timeout.as_millis() as u64,
            attempts: s.dns.attempts,
            concurrency: s.concurrency,
            smtp_checks: s.smtp_checks,
            transport_timeout_ms: s.transport_timeout.as_millis() as u64,
            extra_ca_file: None,
            ehlo_name: s.ehlo_name,
            schedule: DEFAULT_AUDIT_SCHEDULE.to_string(),
        }
    }
}

impl AuditConfig {
    /// Overrides from `RELAYWATCH_AUDIT_*` (`env` is `std::env::var` outside tests).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn number<T: std::str::FromStr>(name: &str, v: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}"))
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_NAMESERVERS") {
            self.nameservers = v
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_TIMEOUT_MS") {
            self.timeout_ms = number("RELAYWATCH_AUDIT_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_CONCURRENCY") {
            self.concurrency = number("RELAYWATCH_AUDIT_CONCURRENCY", &v)?;
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_SMTP_CHECKS") {
            self.smtp_checks = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_TRANSPORT_TIMEOUT_MS") {
            self.transport_timeout_ms = number("RELAYWATCH_AUDIT_TRANSPORT_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_EXTRA_CA_FILE") {
            self.extra_ca_file = (!v.is_empty()).then(|| v.into());
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_EHLO_NAME") {
            self.ehlo_name = v;
        }
        if let Some(v) = env("RELAYWATCH_AUDIT_SCHEDULE") {
            self.schedule = v;
        }
        Ok(())
    }

    /// The auditor's settings and the default schedule; every value checked, each error naming its setting.
    pub fn build(&self) -> anyhow::Result<(super::AuditSettings, AuditSchedule)> {
        let mut s = super::AuditSettings::default();
        s.dns.nameservers = self
            .nameservers
            .iter()
            .map(|x| {
                x.parse::<std::net::SocketAddr>()
                    .or_else(|_| {
                        x.parse::<IpAddr>()
                            .map(|ip| std::net::SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| anyhow::anyhow!("audit nameservers: `{x}` is not IP or IP:port"))
            })
            .collect::<anyhow::Result<_>>()?;
        s.dns.timeout = std::time::Duration::from_millis(self.timeout_ms.max(1));
        s.dns.attempts = self.attempts.max(1);
        s.concurrency = self.concurrency.max(1);
        s.smtp_checks = self.smtp_checks;
        s.transport_timeout = std::time::Duration::from_millis(self.transport_timeout_ms.max(1));
        if let Some(path) = &self.extra_ca_file {
            s.extra_ca_pem = Some(
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("audit extra_ca_file {}: {e}", path.display()))?,
            );
        }
        s.ehlo_name = self.ehlo_name.clone();
        cron::Schedule::from_str(&self.schedule)
            .map_err(|e| anyhow::anyhow!("audit schedule `{}`: {e}", self.schedule))?;
        let schedule = AuditSchedule {
            cron: self.schedule.clone(),
            enabled: true,
            smtp_checks: s.smtp_checks,
        };
        Ok((s, schedule))
    }
}

/// Audit settings from `RELAYWATCH_AUDIT_*` environment variables alone (`env` is `std::env::var` outside tests).
pub fn settings_from_env(
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(super::AuditSettings, AuditSchedule)> {
    let mut c = AuditConfig::default();
    c.apply_env(env)?;
    c.build()
}
