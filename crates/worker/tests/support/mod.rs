//! A real authoritative DNS server on 127.0.0.1 (hickory-server in-process), serving zones written for the tests,
//! and the fixture files under `tests/fixtures/zones`.

#![allow(dead_code)]

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct DnsServer {
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

/// Serves `zones` (origin without trailing dot, zone text relative to it) on one random port, UDP and TCP.
pub async fn serve(zones: &[(String, String)]) -> DnsServer {
    let mut catalog = Catalog::new();
    for (origin, text) in zones {
        let origin_name = Name::from_str(&format!("{origin}.")).expect("zone origin");
        let full = format!(
            "$TTL 300\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n{text}\n"
        );
        let (origin_name, records) = Parser::new(full, None, Some(origin_name))
            .parse()
            .unwrap_or_else(|e| panic!("zone {origin}: {e}"));
        let handler =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
                origin_name.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .unwrap_or_else(|e| panic!("zone {origin}: {e}"));
        catalog.upsert(LowerName::new(&origin_name), vec![Arc::new(handler)]);
    }
    // A free UDP port may be taken for TCP (another test's connection): try another.
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, tcp),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let addr = udp.local_addr().unwrap();
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65535);
    DnsServer {
        addr,
        _server: server,
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Quoted 255-byte strings of a key file, for a TXT record.
fn key_strings(file: &str) -> String {
    let key = std::fs::read_to_string(fixtures_dir().join("keys").join(file)).unwrap();
    key.trim()
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One fixture: a zone for `<name>.test`, what to audit and the findings expected.
pub struct Fixture {
    pub name: String,
    pub domain: String,
    pub zone: String,
    pub audit: Vec<(String, String)>,
    /// `severity code subject`, sorted.
    pub expect: Vec<String>,
}

fn expand(text: &str, domain: &str) -> String {
    text.replace("{D}", domain)
        .replace("{RSA512}", &key_strings("rsa512.b64"))
        .replace("{RSA1024}", &key_strings("rsa1024.b64"))
        .replace("{RSA2048}", &key_strings("rsa2048.b64"))
        .replace("{ED25519}", &key_strings("ed25519.b64"))
}

/// Every zone file: fixtures (`<name>.zone`) and shared zones (`_<origin>.zone`).
pub fn load() -> (Vec<Fixture>, Vec<(String, String)>) {
    let mut fixtures = Vec::new();
    let mut zones = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join("zones"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let stem = file.trim_end_matches(".zone").to_string();
        let raw = std::fs::read_to_string(&path).unwrap();
        if let Some(origin) = stem.strip_prefix('_') {
            zones.push((origin.to_string(), expand(&raw, origin)));
            continue;
        }
        let domain = format!("{stem}.test");
        let text = expand(&raw, &domain);
        let mut audit = Vec::new();
        let mut expect = Vec::new();
        let mut target = domain.clone();
        for line in text.lines() {
            if let Some(a) = line.strip_prefix("; audit: ") {
                let mut parts = a.split_whitespace();
                target = parts.next().unwrap().to_string();
                for p in parts {
                    let (k, v) = p.split_once('=').unwrap();
                    audit.push((k.to_string(), v.to_string()));
                }
            } else if let Some(e) = line.strip_prefix("; expect: ") {
                expect.push(e.trim().to_string());
            }
        }
        expect.sort();
        expect.dedup();
        zones.push((domain.clone(), text.clone()));
        fixtures.push(Fixture {
            name: stem,
            domain: target,
            zone: text,
            audit,
            expect,
        });
    }
    (fixtures, zones)
}
