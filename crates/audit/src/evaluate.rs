//! One audit of one domain: every area's rules over the answers gathered so far.

use crate::dns::{Answers, Query, Resolver};
use crate::finding::{Finding, NotTested, Report, Rule};
use crate::{bimi, dkim, dmarc, grade, mta_sts, mx, ptr, smtp_tls, spf, tls_rpt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// What to audit, and what the worker observed beyond DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditInput {
    /// Lowercase, without the trailing dot.
    pub domain: String,
    /// DKIM selectors the tenant registered.
    pub selectors: Vec<String>,
    /// DKIM selectors seen in the mail log's signer lines (OpenDKIM `s=`/`d=`).
    pub observed_selectors: Vec<String>,
    /// Sending addresses: single ones, and networks' addresses (up to a cap per network, see `sampled_networks`).
    pub sending_ips: Vec<IpAddr>,
    /// The name the sending servers give in HELO/EHLO, when known.
    pub helo: Option<String>,
    /// Sending networks too large to audit every address of (their first addresses are in `sending_ips`).
    #[serde(default)]
    pub sampled_networks: Vec<ptr::SampledNetwork>,
    /// The HELO/EHLO name of particular sending IPs, when known; overrides `helo` for that address.
    #[serde(default)]
    pub helo_names: Vec<(IpAddr, String)>,
    /// Messages a day sent from the domain, when the mail log shows it: turns on the bulk-sender rule.
    pub daily_volume: Option<u64>,
    /// mail-auth's SPF result (`pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`) for each
    /// sending IP with MAIL FROM `postmaster@<domain>`.
    pub spf_results: Vec<(IpAddr, String)>,
    pub mta_sts_fetch: Option<mta_sts::PolicyFetch>,
    /// None when SMTP checks are switched off.
    pub smtp_probes: Option<Vec<smtp_tls::Probe>>,
}

impl AuditInput {
    /// The HELO name known for `ip`: its own, else the one for every sending IP.
    pub fn helo_for(&self, ip: IpAddr) -> Option<&str> {
        self.helo_names
            .iter()
            .find(|(a, _)| *a == ip)
            .map(|(_, h)| h.as_str())
            .or(self.helo.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: Report,
    /// Queries the rules asked for that `answers` lacks. Empty means the report is final (for DNS).
    pub missing: BTreeSet<Query>,
}

/// Every rule of every area, for documentation and the uniqueness test.
pub fn catalog() -> Vec<&'static Rule> {
    [
        spf::RULES,
        dkim::RULES,
        dmarc::RULES,
        mx::RULES,
        ptr::RULES,
        mta_sts::RULES,
        tls_rpt::RULES,
        bimi::RULES,
        smtp_tls::RULES,
    ]
    .concat()
}

pub fn evaluate(input: &AuditInput, answers: &Answers) -> Evaluation {
    let domain = crate::dns::normalize(&input.domain);
    let mut dns = Resolver::new(answers);
    let mut findings: Vec<Finding> = Vec::new();
    let mut not_tested: Vec<NotTested> = Vec::new();

    let (f, n, _spf) = spf::check(&mut dns, &domain, &input.spf_results);
    findings.extend(f);
    not_tested.extend(n);

    let mut selectors: Vec<String> = input
        .selectors
        .iter()
        .chain(&input.observed_selectors)
        .map(|s| s.to_ascii_lowercase())
        .collect();
    selectors.sort();
    selectors.dedup();
    let mut usable_key = false;
    if selectors.is_empty() {
        findings.push(Finding::new(
            &dkim::NO_SELECTORS,
            &domain,
            "no selector registered for the domain and none seen in the mail log",
        ));
    }
    let registered: BTreeSet<String> = input
        .selectors
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    for s in &selectors {
        let (f0, n0) = (findings.len(), not_tested.len());
        usable_key |=
            dkim::check_selector(&mut dns, &domain, s, &mut findings, &mut not_tested).is_some();
        // A selector nobody registered: say where it came from, or the operator will not recognise it.
        if !registered.contains(s) {
            let origin = format!(
                " (selector `{s}` learned from the mail log: the signer used it; not registered)"
            );
            for f in &mut findings[f0..] {
                f.evidence.push_str(&origin);
            }
            for n in &mut not_tested[n0..] {
                n.reason.push_str(&origin);
            }
        }
    }

    let applied = dmarc::check(&mut dns, &domain, &mut findings, &mut not_tested);
    if let Some(volume) = input
        .daily_volume
        .filter(|v| *v >= dmarc::BULK_DAILY_VOLUME)
    {
        if applied.known && !applied.found {
            findings.push(Finding::new(
                &dmarc::BULK_NO_DMARC,
                &domain,
                format!("{volume} messages a day from {domain}, no DMARC record"),
            ));
        }
        let spf_aligned =
            !input.spf_results.is_empty() && input.spf_results.iter().all(|(_, r)| r == "pass");
        if !spf_aligned && !usable_key {
            findings.push(Finding::new(
                &dmarc::BULK_UNALIGNED,
                &domain,
                format!(
                    "{volume} messages a day; SPF for the sending IPs: {}; usable DKIM keys: none",
                    if input.spf_results.is_empty() {
                        "no sending IPs known".to_string()
                    } else {
                        input
                            .spf_results
                            .iter()
                            .map(|(ip, r)| format!("{ip} {r}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
    }

    mx::check(&mut dns, &domain, &mut findings, &mut not_tested);
    let mx_hosts = mx::hosts(answers, &domain);

    ptr::sampled(&input.sampled_networks, &mut findings);
    for ip in &input.sending_ips {
        ptr::check(
            &mut dns,
            *ip,
            input.helo_for(*ip),
            &mut findings,
            &mut not_tested,
        );
    }

    let sts_mode = mta_sts::check(
        &mut dns,
        &domain,
        input.mta_sts_fetch.as_ref(),
        &mx_hosts,
        &mut findings,
        &mut not_tested,
    );
    tls_rpt::check(
        &mut dns,
        &domain,
        mta_sts::record_present(answers, &domain),
        &mut findings,
        &mut not_tested,
    );
    bimi::check(&mut dns, &domain, &applied, &mut findings, &mut not_tested);
    let mut areas: Vec<&str> = grade::AREAS.to_vec();
    match &input.smtp_probes {
        Some(probes) => {
            smtp_tls::check(probes, sts_mode.as_deref(), &mut findings, &mut not_tested)
        }
        None => areas.retain(|a| *a != "smtp_tls"),
    }
    if input.sending_ips.is_empty() {
        areas.retain(|a| *a != "ptr");
    }

    // One finding per code and subject and evidence: a record reached twice through includes is judged once.
    let mut seen = BTreeSet::new();
    findings.retain(|f| seen.insert((f.code.clone(), f.subject.clone(), f.evidence.clone())));
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    let scorecard = grade::scorecard(&findings, &not_tested, &areas);
    Evaluation {
        report: Report {
            domain,
            findings,
            not_tested,
            scorecard,
        },
        missing: dns.missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Answer, Rdata, RecordType};

    fn txt(s: &str) -> Answer {
        Answer::Records(vec![Rdata::Txt(vec![s.as_bytes().to_vec()])])
    }

    /// Resolves from a fixed table until nothing is missing, like the worker does over the network.
    fn run(input: &AuditInput, table: &[(&str, RecordType, Answer)]) -> Report {
        let mut answers = Answers::new();
        for _ in 0..30 {
            let e = evaluate(input, &answers);
            if e.missing.is_empty() {
                return e.report;
            }
            for q in e.missing {
                let a = table
                    .iter()
                    .find(|(n, t, _)| *n == q.name && *t == q.rtype)
                    .map(|(_, _, a)| a.clone())
                    .unwrap_or(Answer::NxDomain);
                answers.insert(q, a);
            }
        }
        panic!("no fixpoint");
    }

    #[test]
    fn codes_are_unique_and_start_with_their_area() {
        let mut codes = BTreeSet::new();
        for r in catalog() {
            assert!(codes.insert(r.code), "duplicate {}", r.code);
            let area = r.code.split('.').next().unwrap();
            assert!(grade::AREAS.contains(&area), "{} has no known area", r.code);
            assert!(r.remediation.ends_with('.'), "{}", r.code);
        }
    }

    #[test]
    fn a_timeout_is_not_tested_never_clean() {
        let input = AuditInput {
            domain: "example.com".into(),
            selectors: vec!["s1".into()],
            ..Default::default()
        };
        let r = run(
            &input,
            &[
                (
                    "example.com",
                    RecordType::Txt,
                    Answer::Failed("timed out".into()),
                ),
                (
                    "s1._domainkey.example.com",
                    RecordType::Txt,
                    Answer::Failed("timed out".into()),
                ),
            ],
        );
        assert!(r.not_tested.iter().any(|n| n.area == "spf"));
        assert!(r.not_tested.iter().any(|n| n.area == "dkim"));
        assert!(
            !r.findings
                .iter()
                .any(|f| f.area() == "spf" || f.area() == "dkim")
        );
        assert!(!r.scorecard.complete);
    }

    #[test]
    fn over_long_spf_strings_and_records_are_found() {
        // A 300-byte string cannot come off the wire, but a resolver that joined strings could hand one over.
        let long = format!("v=spf1 {}-all", "ip4:198.51.100.1 ".repeat(17));
        let input = AuditInput {
            domain: "long.example".into(),
            ..Default::default()
        };
        let r = run(
            &input,
            &[(
                "long.example",
                RecordType::Txt,
                Answer::Records(vec![Rdata::Txt(vec![
                    long.as_bytes().to_vec(),
                    b" ".repeat(250),
                ])]),
            )],
        );
        let codes: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
        assert!(codes.contains(&"spf.string_too_long"), "{codes:?}");
        assert!(codes.contains(&"spf.record_too_long"), "{codes:?}");
    }

    #[test]
    fn spf_loop_is_found_without_looping() {
        let input = AuditInput {
            domain: "a.example".into(),
            ..Default::default()
        };
        let r = run(
            &input,
            &[
                (
                    "a.example",
                    RecordType::Txt,
                    txt("v=spf1 include:b.example -all"),
                ),
                (
                    "b.example",
                    RecordType::Txt,
                    txt("v=spf1 include:a.example -all"),
                ),
            ],
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "spf.include_loop")
            .expect("loop found");
        assert!(
            f.evidence.contains("a.example → b.example → a.example"),
            "{}",
            f.evidence
        );
    }

    #[test]
    fn findings_of_a_learned_selector_say_it_was_learned_and_registered_ones_do_not() {
        let input = AuditInput {
            domain: "example.com".into(),
            selectors: vec!["S1".into()],
            // Also registered (in another case): checked once, as registered.
            observed_selectors: vec!["old".into(), "s1".into()],
            ..Default::default()
        };
        let r = run(
            &input,
            &[
                (
                    "s1._domainkey.example.com",
                    RecordType::Txt,
                    txt("v=DKIM1; p="),
                ),
                (
                    "old._domainkey.example.com",
                    RecordType::Txt,
                    txt("v=DKIM1; p="),
                ),
            ],
        );
        let revoked: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.code == "dkim.key_revoked")
            .collect();
        assert_eq!(revoked.len(), 2, "{revoked:?}");
        let by = |subject: &str| revoked.iter().find(|f| f.subject == subject).unwrap();
        assert!(
            by("old._domainkey.example.com")
                .evidence
                .contains("learned from the mail log"),
            "{revoked:?}"
        );
        assert!(
            !by("s1._domainkey.example.com").evidence.contains("learned"),
            "{revoked:?}"
        );
    }

    #[test]
    fn each_sending_ip_is_compared_with_its_own_helo_name() {
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let b: IpAddr = "192.0.2.11".parse().unwrap();
        let input = AuditInput {
            domain: "example.com".into(),
            sending_ips: vec![a, b],
            helo: Some("mx.example.com".into()),
            // a's own name matches its PTR; b falls back to the common name, which does not.
            helo_names: vec![(a, "out1.example.com".into())],
            ..Default::default()
        };
        let ptr = |n: &str| Answer::Records(vec![Rdata::Ptr(n.into())]);
        let addr = |ip: &str| Answer::Records(vec![Rdata::A(ip.parse().unwrap())]);
        let r = run(
            &input,
            &[
                ("192.0.2.10", RecordType::Ptr, ptr("out1.example.com")),
                ("192.0.2.11", RecordType::Ptr, ptr("out2.example.com")),
                ("out1.example.com", RecordType::A, addr("192.0.2.10")),
                ("out2.example.com", RecordType::A, addr("192.0.2.11")),
            ],
        );
        let mismatches: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.code == "ptr.helo_mismatch")
            .map(|f| f.subject.as_str())
            .collect();
        assert_eq!(mismatches, vec!["192.0.2.11"], "{:?}", r.findings);
    }
}
