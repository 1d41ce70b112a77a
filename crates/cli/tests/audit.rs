//! `relaywatch audit` as a checkdmarc replacement in scripts: JSON findings and an exit status, against a real DNS
//! server on loopback.

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_relaywatch");

const ZONE: &str = r#"$TTL 60
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ NS ns.test.
good TXT "v=spf1 ip4:192.0.2.10 -all"
good MX 10 mx1.good
mx1.good A 192.0.2.25
_dmarc.good TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
s1._domainkey.good TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
_smtp._tls.good TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
out.good A 192.0.2.10
bad TXT "v=spf1 include:missing.test ~all"
bad MX 10 mx1.good
"#;

const REVERSE: &str = r#"$TTL 60
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ NS ns.test.
10 PTR out.good.test.
"#;

/// Starts the DNS server on its own runtime thread and returns its address.
fn dns() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut catalog = Catalog::new();
            for (origin, text) in [("test.", ZONE), ("2.0.192.in-addr.arpa.", REVERSE)] {
                let origin = Name::from_str(origin).unwrap();
                let (origin, records) = Parser::new(text, None, Some(origin)).parse().unwrap();
                let zone =
                    InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
                        origin.clone(),
                        records,
                        ZoneType::Primary,
                        AxfrPolicy::Deny,
                    )
                    .unwrap();
                catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
            }
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send(udp.local_addr().unwrap()).unwrap();
            let mut server = Server::new(catalog);
            server.register_socket(udp);
            let _ = server.block_until_done().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn audit(ns: std::net::SocketAddr, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("audit")
        .args(args)
        .args(["--nameserver", &ns.to_string(), "--no-smtp"])
        .env("RELAYWATCH_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn json_lists_the_findings_and_errors_exit_1() {
    let ns = dns();
    let out = audit(ns, &["bad.test", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let missing = findings
        .iter()
        .find(|f| f["code"] == "spf.include_without_record")
        .expect("the include of a domain without SPF is reported");
    assert_eq!(missing["severity"], "error");
    assert_eq!(missing["subject"], "missing.test");
    for key in ["evidence", "remediation", "reference", "title"] {
        assert!(!missing[key].as_str().unwrap().is_empty(), "{key}");
    }
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "dmarc.missing" && f["subject"] == "bad.test")
    );
}

#[test]
fn a_clean_domain_exits_0_with_a_readable_report() {
    let ns = dns();
    let out = audit(
        ns,
        &[
            "good.test",
            "--selector",
            "s1",
            "--ip",
            "192.0.2.10",
            "--helo",
            "out.good.test",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("good.test: grade A, score 100/100 (0 errors, 0 warnings, 1 notes)"),
        "{text}"
    );
    assert!(text.contains("mta_sts.not_deployed"), "{text}");
}

#[test]
fn an_unanswering_nameserver_exits_3_not_0() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = audit(
        silent.local_addr().unwrap(),
        &["good.test", "--timeout-ms", "200"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT TESTED spf good.test"));
}
