//! `relaywatch blocklist check` in scripts: the JSON shape operators parse, `--zone` replacing the configured set,
//! and the exit status (1 listed, 3 not tested, 0 clean), against a real DNS server on loopback.

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use serde_json::Value;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_relaywatch");

fn zone(origin: &str, records: &str) -> (String, String) {
    (
        format!("{origin}."),
        format!(
            "$TTL 60\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ NS ns.test.\n{records}"
        ),
    )
}

/// Starts the DNS server on its own runtime thread and returns its address.
fn dns() -> std::net::SocketAddr {
    let zones = vec![
        zone(
            "bl.test",
            "2.0.0.127 A 127.0.0.2\n10.2.0.192 A 127.0.0.3\n10.2.0.192 TXT \"see https://bl.test/192.0.2.10\"\n",
        ),
        zone("everything.test", "* A 127.0.0.2\n"),
        zone("dbl.test", "test A 127.0.1.2\nspammy.example A 127.0.1.2\n"),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut catalog = Catalog::new();
            for (origin, text) in zones {
                let origin = Name::from_str(&origin).unwrap();
                let (origin, records) = Parser::new(text, None, Some(origin)).parse().unwrap();
                let handler = InMemoryZoneHandler::<
                    hickory_server::net::runtime::TokioRuntimeProvider,
                >::new(
                    origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny
                )
                .unwrap();
                catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
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

fn check(ns: std::net::SocketAddr, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["blocklist", "check"])
        .args(args)
        .args(["--nameserver", &ns.to_string(), "--timeout-ms", "500"])
        .env("RELAYWATCH_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_names_each_zone_state_codes_meaning_and_reason() {
    let ns = dns();
    let (status, out, err) = check(
        ns,
        &[
            "192.0.2.10",
            "--zone",
            "bl.test",
            "--zone",
            "everything.test",
            "--zone",
            "unserved.test",
            "--json",
        ],
    );
    assert_eq!(status, 1, "listed exits 1; stderr: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["subject"], "192.0.2.10");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "--zone replaces the default set: {out}");
    let by = |z: &str| results.iter().find(|r| r["zone"] == z).unwrap().clone();
    let bl = by("bl.test");
    assert_eq!(bl["state"], "listed");
    assert_eq!(bl["codes"], serde_json::json!(["127.0.0.3"]));
    assert!(bl["meaning"].is_string());
    assert_eq!(bl["reason"], "see https://bl.test/192.0.2.10");
    // Lists its clean test point (127.0.0.1): a broken zone, not a listing.
    let all = by("everything.test");
    assert_eq!(all["state"], "not_tested", "{all}");
    assert!(
        all["reason"].as_str().unwrap().contains("127.0.0.1"),
        "{all}"
    );
    // A zone the server does not serve answers REFUSED: not tested.
    assert_eq!(by("unserved.test")["state"], "not_tested");
}

#[test]
fn exit_status_says_clean_or_not_tested_and_domains_go_to_domain_zones() {
    let ns = dns();
    let (status, out, _) = check(ns, &["192.0.2.11", "--zone", "bl.test"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("listed on 0 of 1 zones"), "{out}");
    let (status, out, _) = check(ns, &["192.0.2.11", "--zone", "unserved.test"]);
    assert_eq!(status, 3, "{out}");
    // A domain is checked as its registered domain, in the zone named, as a domain.
    let (status, out, _) = check(ns, &["www.spammy.example", "--zone", "dbl.test", "--json"]);
    assert_eq!(status, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["subject"], "spammy.example");
    assert_eq!(v["results"][0]["state"], "listed");
    let (status, _, err) = check(ns, &["not a subject!", "--zone", "bl.test"]);
    assert_ne!(status, 0);
    assert!(err.contains("neither an IP address nor a domain"), "{err}");
}
