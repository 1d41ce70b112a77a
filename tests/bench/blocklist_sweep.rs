//! Blocklist sweep throughput: 1,000 IPs × 15 zones against a DNS server on loopback (hickory-server in-process),
//! with the default limits (concurrency, per-zone rate). Prints the figures; the target is ≤ 5 s.
//!
//! `cargo run --release -p relaywatch-tests --example blocklist-sweep [-- IPS ZONES]`

use relaywatch_audit::blocklist::Subject;
use relaywatch_tests::dnsbl::{DnsblServer, zone_def};
use relaywatch_worker::blocklist::{BlocklistSettings, Checker, SelfTest};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n_ips: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let n_zones: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(15);
    let ips: Vec<std::net::Ipv4Addr> = (0..n_ips)
        .map(|i| std::net::Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect();
    // Each zone lists every 20th address (5%), with a TXT reason, and its test point.
    let mut expected = 0usize;
    let texts: Vec<(String, String)> = (0..n_zones)
        .map(|z| {
            let mut t = String::from("2.0.0.127 A 127.0.0.2\n");
            for ip in ips.iter().skip(z).step_by(20) {
                let [a, b, c, d] = ip.octets();
                t.push_str(&format!(
                    "{d}.{c}.{b}.{a} A 127.0.0.2\n{d}.{c}.{b}.{a} TXT \"listed {ip}\"\n"
                ));
                expected += 1;
            }
            (format!("bl{z}.bench"), t)
        })
        .collect();
    let zones: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let server = DnsblServer::start(&zones, &[]).await;
    let specs: Vec<_> = texts
        .iter()
        .map(|(name, _)| zone_def(name, &["ipv4"], &[("127.0.0.2", "listed")], &[]))
        .collect();
    let settings = BlocklistSettings {
        nameservers: vec![server.direct_addr()],
        ..BlocklistSettings::default()
    };
    println!(
        "blocklist sweep: {n_ips} IPs x {n_zones} zones, concurrency {}, per-zone limit {} q/s",
        settings.concurrency, settings.per_zone_qps
    );
    let checker = Checker::new(settings).unwrap();
    let subjects: Vec<Subject> = ips.iter().map(|ip| Subject::Ip((*ip).into())).collect();
    let started = Instant::now();
    let health = checker.zones_health(&specs, SelfTest::Strict).await;
    let results = checker.check_all(&subjects, &specs, &health).await;
    let took = started.elapsed();
    let listed = results
        .iter()
        .filter(|(_, r)| r.outcome.is_listed())
        .count();
    let not_tested = results
        .iter()
        .filter(|(_, r)| r.outcome.state() == "not_tested")
        .count();
    println!(
        "  {} verdicts in {:.2} s ({:.0} checks/s): {listed} listed, {not_tested} not tested",
        results.len(),
        took.as_secs_f64(),
        results.len() as f64 / took.as_secs_f64()
    );
    assert!(health.iter().all(|h| h.healthy), "{health:?}");
    assert_eq!(listed, expected, "every listing found");
}
