//! Blocklist lookups: the I/O half of [`relaywatch_audit::blocklist`]. Asks each zone about each subject, with a
//! bounded number of queries in flight, a per-zone rate limit, answers kept for their TTL, and each zone's self-test
//! before its answers are trusted.

use chrono::Utc;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use relaywatch_audit::blocklist::{
    self, Outcome, Subject, ZoneOverrides, ZoneSpec, effective_zones, interpret,
};
use relaywatch_audit::{Answer, Rdata};
use relaywatch_domain::TenantId;
use relaywatch_store::Store;
use relaywatch_store::blocklists::{CheckRecord, Transition};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How blocklists are checked (installation settings, `[blocklists]` in the service's TOML file).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocklistSettings {
    /// Minutes between sweeps of every tenant's sending IPs and domains.
    pub interval_minutes: u32,
    /// Nameservers (`IP:port`) to ask; empty means the system's. Spamhaus refuses queries that come through large
    /// public resolvers: use a local recursive resolver (unbound) or a DQS key.
    pub nameservers: Vec<SocketAddr>,
    /// Per-query timeout in milliseconds.
    pub timeout_ms: u64,
    /// Queries in flight at once.
    pub concurrency: usize,
    /// Queries per second to one zone, at most (0: no limit).
    pub per_zone_qps: u32,
    /// Spamhaus Data Query Service key: zones with a DQS name are asked as `KEY.<dqs zone>`.
    #[serde(skip_serializing)]
    pub dqs_key: Option<String>,
    /// Zones added to or removed from the default set for every tenant.
    pub add: Vec<ZoneSpec>,
    pub remove: Vec<String>,
}

impl std::fmt::Debug for BlocklistSettings {
    // The DQS key is a credential: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlocklistSettings")
            .field("interval_minutes", &self.interval_minutes)
            .field("nameservers", &self.nameservers)
            .field("timeout_ms", &self.timeout_ms)
            .field("concurrency", &self.concurrency)
            .field("per_zone_qps", &self.per_zone_qps)
            .field("dqs_key", &self.dqs_key.as_ref().map(|_| "***"))
            .field("add", &self.add)
            .field("remove", &self.remove)
            .finish()
    }
}

impl Default for BlocklistSettings {
    fn default() -> Self {
        Self {
            interval_minutes: 30,
            nameservers: Vec::new(),
            timeout_ms: 2000,
            concurrency: 128,
            per_zone_qps: 500,
            dqs_key: None,
            add: Vec::new(),
            remove: Vec::new(),
        }
    }
}

impl BlocklistSettings {
    pub fn installation_overrides(&self) -> ZoneOverrides {
        ZoneOverrides {
            add: self.add.clone(),
            remove: self.remove.clone(),
        }
    }

    /// The zones a tenant is checked against: defaults, installation overrides, then the tenant's.
    pub fn zones_for(&self, tenant: &ZoneOverrides) -> Vec<ZoneSpec> {
        effective_zones(
            &blocklist::default_zones(),
            &[&self.installation_overrides(), tenant],
            self.dqs_key.as_deref(),
        )
    }
}

/// One zone's verdict on one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneResult {
    /// The zone as asked (with a DQS key, the key's zone).
    pub zone: String,
    pub label: String,
    pub outcome: Outcome,
    /// The zone's TXT explanation for a listing.
    pub reason: Option<String>,
    pub delist_url: Option<String>,
}

impl ZoneResult {
    /// A listing by policy or reputation codes only, or in an informational zone: shown, never alerted on.
    pub fn informational(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Listed {
                informational: true,
                ..
            }
        )
    }

    /// Codes as text, meaning joined, and the reason to show (TXT for a listing, the cause for "not tested").
    pub fn parts(&self) -> (Vec<String>, Option<String>, Option<String>) {
        match &self.outcome {
            Outcome::Listed {
                codes, meanings, ..
            } => (
                codes.iter().map(|c| c.to_string()).collect(),
                Some(meanings.join("; ")),
                self.reason.clone(),
            ),
            Outcome::Clean => (Vec::new(), None, None),
            Outcome::NotTested { reason } => (Vec::new(), None, Some(reason.clone())),
        }
    }
}

/// A zone's self-test result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneHealth {
    pub zone: String,
    pub healthy: bool,
    pub reason: Option<String>,
}

/// How strictly a zone's self-test is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// Both test points must answer right (configured zones, every sweep).
    Strict,
    /// Only "lists its clean test point" disqualifies (a zone named on the command line may not list 127.0.0.2).
    ListsEverythingOnly,
}

type Cached = (Answer, Instant);

/// Asks blocklists. Cheap to clone; clones share the answer cache.
#[derive(Clone)]
pub struct Checker {
    resolver: TokioResolver,
    settings: Arc<BlocklistSettings>,
    cache: Arc<Mutex<HashMap<(String, RecordType), Cached>>>,
    pacing: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Longest time an answer is reused, whatever its TTL: a delisting shows within an hour.
const MAX_CACHE: Duration = Duration::from_secs(3600);
/// Negative answers without an SOA: reused this long.
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(300);

impl Checker {
    pub fn new(settings: BlocklistSettings) -> anyhow::Result<Checker> {
        let dns = crate::dns::DnsSettings {
            nameservers: settings.nameservers.clone(),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            attempts: 1,
        };
        let resolver = crate::dns::build_resolver(&dns)?;
        Ok(Checker {
            resolver,
            settings: Arc::new(settings),
            cache: Arc::default(),
            pacing: Arc::default(),
        })
    }

    pub fn settings(&self) -> &BlocklistSettings {
        &self.settings
    }

    /// Waits for the zone's next query slot (per-zone rate limit).
    async fn pace(&self, zone: &str) {
        let qps = self.settings.per_zone_qps;
        if qps == 0 {
            return;
        }
        let gap = Duration::from_secs(1) / qps;
        let wait = {
            let mut next = self.pacing.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.get(zone).copied().unwrap_or(now).max(now);
            next.insert(zone.to_string(), slot + gap);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// One lookup, answered from the cache while its TTL lasts.
    async fn lookup(&self, zone: &str, name: &str, rtype: RecordType, use_cache: bool) -> Answer {
        let key = (name.to_ascii_lowercase(), rtype);
        if use_cache {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((answer, until)) = cache.get(&key)
                && *until > Instant::now()
            {
                return answer.clone();
            }
        }
        self.pace(zone).await;
        let (answer, ttl) = resolve(&self.resolver, name, rtype).await;
        if let Some(ttl) = ttl {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 200_000 {
                let now = Instant::now();
                cache.retain(|_, (_, until)| *until > now);
            }
            cache.insert(key, (answer.clone(), Instant::now() + ttl.min(MAX_CACHE)));
        }
        answer
    }

    /// Runs a zone's self-test (never from the cache: it is the zone's health now).
    pub async fn zone_health(&self, zone: &ZoneSpec, mode: SelfTest) -> ZoneHealth {
        let (listed, clean) = zone.test_points_for(zone.primary_kind());
        let (listed_name, clean_name) = (
            probe_name(&listed, &zone.name),
            probe_name(&clean, &zone.name),
        );
        let (l, c) = tokio::join!(
            self.lookup(&zone.name, &listed_name, RecordType::A, false),
            self.lookup(&zone.name, &clean_name, RecordType::A, false),
        );
        let verdict = match mode {
            SelfTest::Strict => blocklist::zone_health(zone, &l, &c),
            SelfTest::ListsEverythingOnly => match interpret(zone, &c) {
                Outcome::Listed { .. } => blocklist::zone_health(zone, &l, &c).and(Ok(())),
                _ => Ok(()),
            },
        };
        ZoneHealth {
            zone: zone.name.clone(),
            healthy: verdict.is_ok(),
            reason: verdict.err(),
        }
    }

    /// Self-tests every zone, concurrently.
    pub async fn zones_health(&self, zones: &[ZoneSpec], mode: SelfTest) -> Vec<ZoneHealth> {
        futures::future::join_all(zones.iter().map(|z| self.zone_health(z, mode))).await
    }

    /// Asks one zone about one subject; a zone that failed its self-test gives "not tested".
    pub async fn check_one(
        &self,
        subject: &Subject,
        zone: &ZoneSpec,
        health: Option<&ZoneHealth>,
    ) -> ZoneResult {
        let mut result = ZoneResult {
            zone: zone.name.clone(),
            label: zone.label.clone(),
            outcome: Outcome::Clean,
            reason: None,
            delist_url: None,
        };
        if let Some(h) = health.filter(|h| !h.healthy) {
            result.outcome = Outcome::NotTested {
                reason: format!(
                    "zone failing its self-test: {}",
                    h.reason.as_deref().unwrap_or("unknown")
                ),
            };
            return result;
        }
        let name = subject.query_name(&zone.name);
        let answer = self.lookup(&zone.name, &name, RecordType::A, true).await;
        result.outcome = interpret(zone, &answer);
        if result.outcome.is_listed() {
            let txt = self.lookup(&zone.name, &name, RecordType::TXT, true).await;
            result.reason = blocklist::txt_reason(&txt);
            result.delist_url = zone.delist_url(subject);
        }
        result
    }

    /// Checks every subject against every zone that lists its kind. `health` holds this sweep's self-tests.
    pub async fn check_all(
        &self,
        subjects: &[Subject],
        zones: &[ZoneSpec],
        health: &[ZoneHealth],
    ) -> Vec<(Subject, ZoneResult)> {
        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let by_zone: HashMap<&str, &ZoneHealth> =
            health.iter().map(|h| (h.zone.as_str(), h)).collect();
        let tasks = subjects.iter().flat_map(|s| {
            zones.iter().filter(|z| z.lists(s.kind())).map({
                let limit = Arc::clone(&limit);
                let by_zone = &by_zone;
                move |z| {
                    let limit = Arc::clone(&limit);
                    async move {
                        let _permit = limit.acquire().await.ok();
                        let r = self
                            .check_one(s, z, by_zone.get(z.name.as_str()).copied())
                            .await;
                        (s.clone(), r)
                    }
                }
            })
        });
        futures::future::join_all(tasks).await
    }
}

/// The subjects a tenant's sweep looks at: each sending IP (IPv4 networks up to a /24 expanded to their addresses;
/// wider IPv4 and all IPv6 networks by their first address, since blocklists list addresses) and the registered
/// domain of each sending domain. Sorted, without repeats.
pub fn subjects_of(networks: &[String], domains: &[String]) -> Vec<Subject> {
    let mut out = Vec::new();
    for n in networks {
        match n.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(v4)) if v4.prefix_len() >= 24 => {
                out.extend(v4.hosts().map(|h| Subject::Ip(h.into())));
                if v4.prefix_len() == 32 {
                    out.push(Subject::Ip(v4.addr().into()));
                }
            }
            Ok(net) => out.push(Subject::Ip(net.network())),
            Err(_) => {
                if let Ok(ip) = n.parse() {
                    out.push(Subject::Ip(ip));
                }
            }
        }
    }
    for d in domains {
        if let Ok(s) = Subject::parse(d) {
            out.push(s);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn kind_name(s: &Subject) -> &'static str {
    match s.kind() {
        relaywatch_audit::blocklist::ZoneKind::Ipv4 => "ipv4",
        relaywatch_audit::blocklist::ZoneKind::Ipv6 => "ipv6",
        relaywatch_audit::blocklist::ZoneKind::Domain => "domain",
    }
}

/// Results as rows to store.
pub fn to_records(results: &[(Subject, ZoneResult)]) -> Vec<CheckRecord> {
    results
        .iter()
        .map(|(s, r)| {
            let (codes, meaning, reason) = r.parts();
            CheckRecord {
                subject: s.to_string(),
                subject_kind: kind_name(s).to_string(),
                zone: r.zone.clone(),
                state: r.outcome.state().to_string(),
                codes,
                meaning,
                reason,
                informational: r.informational(),
                delist_url: r.delist_url.clone(),
            }
        })
        .collect()
}

/// The zones a tenant is checked against (defaults, installation and tenant overrides).
pub async fn tenant_zones(
    store: &Store,
    settings: &BlocklistSettings,
    tenant: TenantId,
) -> anyhow::Result<Vec<ZoneSpec>> {
    let overrides: ZoneOverrides = match store.blocklist_overrides(tenant).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => ZoneOverrides::default(),
    };
    Ok(settings.zones_for(&overrides))
}

/// Checks `subjects` for a tenant against its zones, records the verdicts and returns the listing transitions.
pub async fn check_and_record(
    store: &Store,
    checker: &Checker,
    tenant: TenantId,
    subjects: &[Subject],
    zones: &[ZoneSpec],
    health: &[ZoneHealth],
) -> anyhow::Result<Vec<Transition>> {
    let results = checker.check_all(subjects, zones, health).await;
    let transitions = store
        .record_blocklist_results(tenant, &to_records(&results), Utc::now())
        .await?;
    for t in &transitions {
        tracing::info!(
            tenant = %tenant, subject = %t.subject, zone = %t.zone, kind = %t.kind, codes = ?t.codes,
            "blocklist listing changed"
        );
    }
    Ok(transitions)
}

/// Sweeps one tenant: every sending IP and domain against its `zones`, with this sweep's zone self-tests.
pub async fn sweep_tenant(
    store: &Store,
    checker: &Checker,
    tenant: TenantId,
    zones: &[ZoneSpec],
    health: &[ZoneHealth],
) -> anyhow::Result<Vec<Transition>> {
    let (networks, domains) = store.blocklist_subjects(tenant).await?;
    let subjects = subjects_of(&networks, &domains);
    let transitions = check_and_record(store, checker, tenant, &subjects, zones, health).await?;
    store.mark_blocklist_swept(tenant, Utc::now()).await?;
    Ok(transitions)
}

/// The blocklist worker: triggered checks as they come, sweeps when due.
#[derive(Clone)]
pub struct BlocklistWorker {
    pub store: Store,
    pub checker: Checker,
    /// One tick at a time: a sweep may outlast the tick interval.
    pub busy: Arc<tokio::sync::Mutex<()>>,
}

impl BlocklistWorker {
    pub fn new(store: Store, settings: BlocklistSettings) -> anyhow::Result<BlocklistWorker> {
        Ok(BlocklistWorker {
            store,
            checker: Checker::new(settings)?,
            busy: Arc::default(),
        })
    }

    /// Self-tests the zones the tenants of this tick use (each once), records the results, and returns them.
    async fn health_for(
        &self,
        zone_sets: &HashMap<TenantId, Vec<ZoneSpec>>,
    ) -> anyhow::Result<Vec<ZoneHealth>> {
        let mut zones: Vec<ZoneSpec> = Vec::new();
        for z in zone_sets.values().flatten() {
            if !zones.iter().any(|have| have.name == z.name) {
                zones.push(z.clone());
            }
        }
        let health = self.checker.zones_health(&zones, SelfTest::Strict).await;
        for h in health.iter().filter(|h| !h.healthy) {
            tracing::warn!(zone = %h.zone, reason = h.reason.as_deref().unwrap_or(""), "blocklist zone failing its self-test; its answers are ignored");
        }
        let rows: Vec<(String, bool, Option<String>)> = health
            .iter()
            .map(|h| (h.zone.clone(), h.healthy, h.reason.clone()))
            .collect();
        self.store.record_zone_health(&rows, Utc::now()).await?;
        Ok(health)
    }

    /// One tick: triggered checks first (a bounce said we are blocked), then the sweeps that fell due.
    pub async fn tick(&self) -> anyhow::Result<()> {
        let Ok(_guard) = self.busy.try_lock() else {
            return Ok(());
        };
        let requests = self
            .store
            .take_blocklist_check_requests_all_tenants(100)
            .await?;
        let interval =
            chrono::Duration::minutes(i64::from(self.checker.settings().interval_minutes.max(1)));
        let due = self
            .store
            .blocklist_sweeps_due_all_tenants(interval, Utc::now())
            .await?;
        if requests.is_empty() && due.is_empty() {
            return Ok(());
        }
        let mut tenants: Vec<TenantId> = requests
            .iter()
            .map(|r| TenantId::from(r.tenant_id))
            .collect();
        tenants.extend(due.iter().copied());
        tenants.sort_by_key(|t| t.as_uuid());
        tenants.dedup();
        // Each tenant's zone set, read once for the tick.
        let mut zone_sets = HashMap::new();
        for t in tenants {
            zone_sets.insert(
                t,
                tenant_zones(&self.store, self.checker.settings(), t).await?,
            );
        }
        let health = self.health_for(&zone_sets).await?;
        for r in &requests {
            let tenant = TenantId::from(r.tenant_id);
            let Ok(subject) = Subject::parse(&r.subject) else {
                continue;
            };
            tracing::info!(tenant = %tenant, subject = %subject, reason = %r.reason, "blocklist check triggered");
            check_and_record(
                &self.store,
                &self.checker,
                tenant,
                &[subject],
                &zone_sets[&tenant],
                &health,
            )
            .await?;
        }
        for tenant in due {
            if let Err(e) = sweep_tenant(
                &self.store,
                &self.checker,
                tenant,
                &zone_sets[&tenant],
                &health,
            )
            .await
            {
                tracing::error!(tenant = %tenant, error = %e, "blocklist sweep failed; retried next tick");
            }
        }
        Ok(())
    }
}

/// apalis cron handler.
pub async fn on_tick(
    _tick: apalis_cron::Tick,
    worker: apalis::prelude::Data<BlocklistWorker>,
) -> Result<(), apalis::prelude::BoxDynError> {
    worker.tick().await.map_err(|e| {
        tracing::error!(error = %e, "blocklist tick failed");
        e.into()
    })
}

/// The name asked for a self-test point: an IP reversed like any subject, a domain point (`test`, `dbltest.com`) as is.
fn probe_name(point: &str, zone: &str) -> String {
    match point.parse::<std::net::IpAddr>() {
        Ok(ip) => Subject::Ip(ip).query_name(zone),
        Err(_) => format!("{}.{zone}", point.trim_end_matches('.')),
    }
}

/// One query; the TTL to cache the answer for (none for failures).
async fn resolve(
    resolver: &TokioResolver,
    name: &str,
    rtype: RecordType,
) -> (Answer, Option<Duration>) {
    let qname = match Name::from_ascii(format!("{}.", name.trim_end_matches('.'))) {
        Ok(n) => n,
        Err(e) => {
            return (
                Answer::Failed(format!("{name} is not a valid name: {e}")),
                None,
            );
        }
    };
    match resolver.lookup(qname, rtype).await {
        Ok(lookup) => {
            let ttl = lookup
                .valid_until()
                .saturating_duration_since(Instant::now());
            let records = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(Rdata::A(a.0)),
                    RData::TXT(t) => {
                        Some(Rdata::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()))
                    }
                    _ => None,
                })
                .collect();
            (Answer::Records(records), Some(ttl))
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
            let ttl = nr
                .negative_ttl
                .map(|s| Duration::from_secs(u64::from(s)))
                .unwrap_or(DEFAULT_NEGATIVE_TTL);
            let answer = match nr.response_code {
                ResponseCode::NXDomain => Answer::NxDomain,
                ResponseCode::NoError => Answer::Records(Vec::new()),
                other => Answer::Failed(format!("the zone's server answered {other}")),
            };
            let cacheable = !matches!(answer, Answer::Failed(_));
            (answer, cacheable.then_some(ttl))
        }
        Err(e) => (Answer::Failed(e.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_reverse_ips_and_keep_domains() {
        assert_eq!(probe_name("127.0.0.2", "bl.test"), "2.0.0.127.bl.test");
        assert_eq!(
            probe_name("dbltest.com", "dbl.test"),
            "dbltest.com.dbl.test"
        );
    }

    #[test]
    fn settings_parse_from_toml_with_zone_additions() {
        let s: BlocklistSettings = toml::from_str(
            r#"
interval_minutes = 10
nameservers = ["127.0.0.1:5353"]
remove = ["all.spamrats.com"]
[[add]]
name = "bl.example.net"
kinds = ["ipv4"]
codes = [{ code = "127.0.0.2", meaning = "listed" }]
"#,
        )
        .unwrap();
        assert_eq!(s.interval_minutes, 10);
        let zones = s.zones_for(&ZoneOverrides::default());
        assert!(zones.iter().any(|z| z.name == "bl.example.net"));
        assert!(!zones.iter().any(|z| z.name == "all.spamrats.com"));
    }
}
