//! Domain audits: the I/O around the pure rules of `relaywatch-audit`. DNS answers are gathered round by round
//! until the rules need nothing more (each question asked once per run, many in flight at once), then the
//! transport checks run (MTA-STS policy over HTTPS, STARTTLS on the MX hosts, mail-auth's SPF verdict per sending
//! IP), then the rules run a last time over everything.

mod https;
pub mod schedule;
mod smtp;
pub mod tls;

use crate::dns::{DnsSettings, build_resolver, resolve};
use futures::StreamExt;
use hickory_resolver::TokioResolver;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, Parameters, ResolverCache};
use relaywatch_audit::dns::addresses;
use relaywatch_audit::{
    Answer, Answers, AuditInput, Query, RecordType, Report, mta_sts, mx, smtp_tls,
};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything an audit run needs to know besides the domain.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub dns: DnsSettings,
    /// DNS questions in flight at once per audit.
    pub concurrency: usize,
    /// PEM file contents of CAs to trust besides the public ones (an internal CA; tests use their own).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Probe the MX hosts' SMTP STARTTLS (opt-out: outbound port 25 is blocked in many clouds).
    pub smtp_checks: bool,
    pub smtp_port: u16,
    /// Port of the MTA-STS policy host; 443 except in tests.
    pub https_port: u16,
    /// Timeout of each HTTPS fetch and SMTP probe, connection included.
    pub transport_timeout: Duration,
    /// The name Relaywatch gives in EHLO.
    pub ehlo_name: String,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            dns: DnsSettings::default(),
            concurrency: 32,
            extra_ca_pem: None,
            smtp_checks: true,
            smtp_port: 25,
            https_port: 443,
            transport_timeout: Duration::from_secs(15),
            ehlo_name: "relaywatch.invalid".into(),
        }
    }
}

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditTarget {
    pub domain: String,
    pub selectors: Vec<String>,
    pub observed_selectors: Vec<String>,
    pub sending_ips: Vec<IpAddr>,
    pub helo: Option<String>,
    /// The HELO name registered for particular sending IPs (overrides `helo` for them).
    pub helo_names: Vec<(IpAddr, String)>,
    /// Networks only partly in `sending_ips` (reported as such).
    pub sampled_networks: Vec<relaywatch_audit::ptr::SampledNetwork>,
    pub daily_volume: Option<u64>,
    /// Skip the SMTP probes for this audit even when the auditor allows them (the tenant opted out).
    pub skip_smtp: bool,
}

/// Shared by every audit of a worker: one resolver, one TLS trust store.
#[derive(Clone)]
pub struct Auditor {
    resolver: TokioResolver,
    roots: Arc<rustls::RootCertStore>,
    strict_tls: Arc<rustls::ClientConfig>,
    settings: Arc<AuditSettings>,
}

/// Rounds of DNS questions before the audit gives up on more: include chains are at most 10 deep.
const MAX_ROUNDS: usize = 16;

/// MX hosts probed per audit: more is a misconfiguration, and each probe holds a connection for up to the timeout.
pub const MAX_SMTP_HOSTS: usize = 10;
/// Addresses probed per MX host (an IPv4 and an IPv6 one, typically): a round-robin pool is one configuration.
pub const MAX_SMTP_ADDRESSES: usize = 2;

impl Auditor {
    pub fn new(settings: AuditSettings) -> anyhow::Result<Self> {
        let resolver = build_resolver(&settings.dns)?;
        let roots = tls::roots(settings.extra_ca_pem.as_deref())?;
        let strict_tls = tls::strict_config(roots.clone())?;
        Ok(Self {
            resolver,
            roots,
            strict_tls,
            settings: Arc::new(settings),
        })
    }

    pub fn settings(&self) -> &AuditSettings {
        &self.settings
    }

    /// Audits one domain. Never fails: what could not be checked is listed in the report's `not_tested`.
    pub async fn audit(&self, target: &AuditTarget) -> Report {
        let mut input = AuditInput {
            domain: relaywatch_audit::dns::normalize(&target.domain),
            selectors: target.selectors.clone(),
            observed_selectors: target.observed_selectors.clone(),
            sending_ips: target.sending_ips.clone(),
            helo: target.helo.clone(),
            helo_names: target.helo_names.clone(),
            sampled_networks: target.sampled_networks.clone(),
            daily_volume: target.daily_volume,
            ..AuditInput::default()
        };
        let mut answers = Answers::new();
        self.settle(&input, &mut answers).await;

        let domain = input.domain.clone();
        let mut sts_answers = answers.clone();
        let (spf, sts, smtp) = tokio::join!(
            self.spf_verdicts(&domain, &input),
            self.mta_sts(&domain, &mut sts_answers),
            self.smtp(&domain, &answers, target.skip_smtp),
        );
        input.spf_results = spf;
        input.mta_sts_fetch = sts;
        input.smtp_probes = smtp;
        // Transport results can make rules ask for more (none today); settle once more to stay correct.
        self.settle(&input, &mut answers).await;
        relaywatch_audit::evaluate(&input, &answers).report
    }

    /// Asks what the rules miss until they miss nothing.
    async fn settle(&self, input: &AuditInput, answers: &mut Answers) {
        for _ in 0..MAX_ROUNDS {
            let missing = relaywatch_audit::evaluate(input, answers).missing;
            if missing.is_empty() {
                return;
            }
            self.fetch(missing, answers).await;
        }
    }

    async fn fetch(&self, queries: impl IntoIterator<Item = Query>, answers: &mut Answers) {
        // Owned futures: a borrowed resolver makes the stream's future not provably Send for apalis.
        let got: Vec<(Query, Answer)> =
            futures::stream::iter(queries.into_iter().collect::<Vec<_>>())
                .map(|q| {
                    let resolver = self.resolver.clone();
                    async move {
                        let a = resolve(&resolver, &q).await;
                        (q, a)
                    }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        answers.extend(got);
    }

    /// Addresses of `host` on `port`, from the run's answers when present (asked otherwise).
    async fn addresses_of(&self, host: &str, port: u16, answers: &mut Answers) -> Vec<SocketAddr> {
        let qs = [
            Query::new(host, RecordType::A),
            Query::new(host, RecordType::Aaaa),
        ];
        let missing: Vec<Query> = qs
            .iter()
            .filter(|q| !answers.contains_key(q))
            .cloned()
            .collect();
        self.fetch(missing, answers).await;
        qs.iter()
            .filter_map(|q| match answers.get(q) {
                Some(Answer::Records(r)) => Some(addresses(r)),
                _ => None,
            })
            .flatten()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    }

    async fn mta_sts(&self, domain: &str, answers: &mut Answers) -> Option<mta_sts::PolicyFetch> {
        if !mta_sts::record_present(answers, domain) {
            return None;
        }
        let host = mta_sts::policy_host(domain);
        let addrs = self
            .addresses_of(&host, self.settings.https_port, answers)
            .await;
        Some(
            https::fetch_policy(
                &host,
                &addrs,
                self.strict_tls.clone(),
                self.settings.transport_timeout,
            )
            .await,
        )
    }

    /// STARTTLS probes of the domain's MX hosts: at most [`MAX_SMTP_HOSTS`] hosts (most preferred first) and
    /// [`MAX_SMTP_ADDRESSES`] addresses each, all at once, each within the transport timeout. Hosts beyond the cap
    /// are reported as not tested rather than silently skipped.
    async fn smtp(
        &self,
        domain: &str,
        answers: &Answers,
        skip: bool,
    ) -> Option<Vec<smtp_tls::Probe>> {
        if !self.settings.smtp_checks || skip {
            return None;
        }
        let hosts = mx::hosts(answers, domain);
        let mut skipped = Vec::new();
        let mut targets: Vec<(String, SocketAddr, bool)> = Vec::new();
        for (i, host) in hosts.into_iter().enumerate() {
            if i >= MAX_SMTP_HOSTS {
                skipped.push(smtp_tls::Probe {
                    host,
                    address: None,
                    outcome: smtp_tls::Outcome::Unreachable(format!(
                        "not probed: only the first {MAX_SMTP_HOSTS} MX hosts are"
                    )),
                });
                continue;
            }
            let mut local = answers.clone();
            let addrs = self
                .addresses_of(&host, self.settings.smtp_port, &mut local)
                .await;
            // No address: mx.target_without_address already says so.
            let several = addrs.len() > 1;
            targets.extend(
                addrs
                    .into_iter()
                    .take(MAX_SMTP_ADDRESSES)
                    .map(|a| (host.clone(), a, several)),
            );
        }
        let n = targets.len().max(1);
        let mut probes: Vec<smtp_tls::Probe> = futures::stream::iter(targets)
            .map(|(host, addr, several)| {
                let (roots, ehlo) = (self.roots.clone(), self.settings.ehlo_name.clone());
                let timeout = self.settings.transport_timeout;
                async move {
                    let outcome = smtp::probe(&host, addr, &ehlo, roots, timeout).await;
                    smtp_tls::Probe {
                        host,
                        address: several.then(|| addr.to_string()),
                        outcome,
                    }
                }
            })
            .buffered(n)
            .collect()
            .await;
        probes.extend(skipped);
        Some(probes)
    }

    /// mail-auth's SPF result for MAIL FROM postmaster@domain from each sending IP, on this auditor's resolver, with
    /// caches that live for this run only.
    async fn spf_verdicts(&self, domain: &str, input: &AuditInput) -> Vec<(IpAddr, String)> {
        let ips = &input.sending_ips;
        if ips.is_empty() {
            return Vec::new();
        }
        let authenticator = MessageAuthenticator(self.resolver.clone());
        let sender = format!("postmaster@{domain}");
        let txt = RunCache::default();
        let mxc = RunCache::default();
        let v4 = RunCache::default();
        let v6 = RunCache::default();
        let ptr = RunCache::default();
        let mut out = Vec::new();
        for ip in ips {
            let helo = input.helo_for(*ip).unwrap_or(domain);
            let params = Parameters::new(SpfParameters::verify_mail_from(
                *ip,
                helo,
                "relaywatch.invalid",
                &sender,
            ))
            .with_txt_cache(&txt)
            .with_mx_cache(&mxc)
            .with_ipv4_cache(&v4)
            .with_ipv6_cache(&v6)
            .with_ptr_cache(&ptr);
            let output = authenticator.verify_spf(params).await;
            out.push((*ip, output.result().to_string().to_ascii_lowercase()));
        }
        out
    }
}

/// A cache for one audit run: mail-auth asks each name once however many sending IPs are checked.
struct RunCache<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for RunCache<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for RunCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }

    fn insert(&self, key: K, value: V, _valid_until: std::time::Instant) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, value);
        }
    }
}
