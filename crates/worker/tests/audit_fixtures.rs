//! One zone per finding, served by a real DNS server on loopback; each fixture lists the exact findings (severity,
//! code, subject) the audit must report — no more, no fewer.

mod support;

use relaywatch_worker::audit::{AuditSettings, AuditTarget, Auditor};
use relaywatch_worker::dns::DnsSettings;
use std::time::Duration;

fn target(f: &support::Fixture) -> AuditTarget {
    let mut t = AuditTarget {
        domain: f.domain.clone(),
        ..Default::default()
    };
    for (k, v) in &f.audit {
        match k.as_str() {
            "selectors" => t.selectors = v.split(',').map(str::to_string).collect(),
            "ips" => t.sending_ips = v.split(',').map(|i| i.parse().unwrap()).collect(),
            "helo" => t.helo = Some(v.clone()),
            "volume" => t.daily_volume = Some(v.parse().unwrap()),
            other => panic!("{}: unknown audit key {other}", f.name),
        }
    }
    t
}

pub fn settings(ns: std::net::SocketAddr) -> AuditSettings {
    AuditSettings {
        dns: DnsSettings {
            nameservers: vec![ns],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        smtp_checks: false,
        transport_timeout: Duration::from_secs(2),
        ..AuditSettings::default()
    }
}

#[tokio::test]
async fn every_fixture_yields_exactly_its_findings() {
    let (fixtures, zones) = support::load();
    assert!(
        fixtures.len() >= 60,
        "only {} fixtures found",
        fixtures.len()
    );
    let dns = support::serve(&zones).await;
    let auditor = Auditor::new(settings(dns.addr)).unwrap();
    let mut failures = Vec::new();
    for f in &fixtures {
        let report = auditor.audit(&target(f)).await;
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|x| format!("{} {} {}", x.severity.as_str(), x.code, x.subject))
            .collect();
        got.sort();
        got.dedup();
        if got != f.expect || !report.not_tested.is_empty() {
            failures.push(format!(
                "{}:\n  expected {:?}\n  got      {:?}\n  not tested {:?}\n  evidence {:#?}",
                f.name,
                f.expect,
                got,
                report.not_tested,
                report
                    .findings
                    .iter()
                    .map(|x| format!("{}: {}", x.code, x.evidence))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_lookup_chain_is_the_evidence_of_too_many_lookups() {
    let (fixtures, zones) = support::load();
    let dns = support::serve(&zones).await;
    let auditor = Auditor::new(settings(dns.addr)).unwrap();
    let f = fixtures
        .iter()
        .find(|f| f.name == "spf-too-many-lookups")
        .unwrap();
    let report = auditor.audit(&target(f)).await;
    let finding = report
        .findings
        .iter()
        .find(|x| x.code == "spf.too_many_lookups")
        .unwrap();
    assert!(
        finding.evidence.starts_with("11 DNS-querying terms"),
        "{}",
        finding.evidence
    );
    assert!(
        finding
            .evidence
            .contains("include:n10.shared.test (in n4.shared.test)"),
        "{}",
        finding.evidence
    );
    assert_eq!(finding.reference, "RFC 7208 §4.6.4 (permerror)");
}

#[tokio::test]
async fn a_silent_nameserver_makes_checks_not_tested_never_clean() {
    // A UDP socket that never answers: every query times out.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s = settings(silent.local_addr().unwrap());
    s.dns.timeout = Duration::from_millis(200);
    let auditor = Auditor::new(s).unwrap();
    let report = auditor
        .audit(&AuditTarget {
            domain: "example.test".into(),
            selectors: vec!["s1".into()],
            sending_ips: vec!["192.0.2.10".parse().unwrap()],
            ..Default::default()
        })
        .await;
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let areas: std::collections::BTreeSet<&str> =
        report.not_tested.iter().map(|n| n.area.as_str()).collect();
    for area in [
        "spf", "dkim", "dmarc", "mx", "ptr", "mta_sts", "tls_rpt", "bimi",
    ] {
        assert!(
            areas.contains(area),
            "{area} is not reported as not tested: {areas:?}"
        );
    }
    assert!(!report.scorecard.complete);
}
