//! Benchmark (not a test): audit 1,000 domains against a loopback authoritative DNS server and print the figures.
//!
//! Each domain has what a real sending domain has: SPF with an include, a 2048-bit DKIM key, DMARC with a report
//! address, an MX host with an address, TLS-RPT, and one sending IP with forward-confirmed reverse DNS, which is
//! also checked with mail-auth's SPF evaluation. SMTP probes are off (they time servers, not Relaywatch).
//!
//! cargo bench -p relaywatch-worker --bench audit_1000 [-- DOMAINS [AUDITS_IN_FLIGHT]]

#[path = "../tests/support/mod.rs"]
mod support;

use futures::StreamExt;
use relaywatch_worker::audit::{AuditSettings, AuditTarget, Auditor};
use relaywatch_worker::dns::DnsSettings;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with('-')).collect();
    let domains: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let in_flight: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(domains, in_flight));
}

async fn run(n: usize, in_flight: usize) {
    let key = std::fs::read_to_string(support::fixtures_dir().join("keys/rsa2048.b64")).unwrap();
    let key: Vec<String> = key
        .trim()
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    let mut zones = Vec::new();
    let mut reverse = String::new();
    for i in 0..n {
        let d = format!("d{i}.bench");
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        zones.push((
            d.clone(),
            format!(
                r#"@ TXT "v=spf1 ip4:{ip} include:_spf.shared.bench -all"
@ MX 10 mx1
mx1 A 192.0.2.25
out A {ip}
s1._domainkey TXT "v=DKIM1; k=rsa; p=" {key}
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{d}"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@{d}"
"#,
                key = key.join(" ")
            ),
        ));
        reverse.push_str(&format!(
            "{}.{}.{} PTR out.{d}.\n",
            i & 255,
            (i >> 8) & 255,
            (i >> 16) & 255
        ));
    }
    zones.push((
        "shared.bench".into(),
        "_spf TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n".into(),
    ));
    zones.push(("10.in-addr.arpa".into(), reverse));
    let started = Instant::now();
    let dns = support::serve(&zones).await;
    eprintln!("loaded {} zones in {:?}", zones.len(), started.elapsed());
    let auditor = Auditor::new(AuditSettings {
        dns: DnsSettings {
            nameservers: vec![dns.addr],
            timeout: Duration::from_secs(2),
            attempts: 2,
        },
        smtp_checks: false,
        ..AuditSettings::default()
    })
    .unwrap();
    let targets: Vec<AuditTarget> = (0..n)
        .map(|i| AuditTarget {
            domain: format!("d{i}.bench"),
            selectors: vec!["s1".into()],
            sending_ips: vec![
                format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
                    .parse()
                    .unwrap(),
            ],
            helo: Some(format!("out.d{i}.bench")),
            ..Default::default()
        })
        .collect();
    // One warm-up pass over a few domains so connection setup is not measured.
    for t in targets.iter().take(5) {
        auditor.audit(t).await;
    }
    for round in 1..=3 {
        let started = Instant::now();
        let reports: Vec<_> = futures::stream::iter(targets.iter())
            .map(|t| auditor.audit(t))
            .buffer_unordered(in_flight)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let clean = reports
            .iter()
            .filter(|r| r.findings.len() == 1 && r.not_tested.is_empty())
            .count();
        let not_tested = reports.iter().filter(|r| !r.not_tested.is_empty()).count();
        println!(
            "round {round}: {n} domains in {:.3} s = {:.0} domains/s ({in_flight} audits in flight); {clean} clean, {not_tested} with checks not made",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64()
        );
        if round == 1 && clean != n {
            let bad = reports
                .iter()
                .find(|r| r.findings.len() != 1 || !r.not_tested.is_empty())
                .unwrap();
            eprintln!(
                "example of a non-clean report: {:?} {:?}",
                bad.findings.iter().map(|f| &f.code).collect::<Vec<_>>(),
                bad.not_tested
            );
        }
    }
}
