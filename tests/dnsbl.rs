//! A DNS blocklist server on loopback for tests: hickory-server (in-process, real UDP) behind a small UDP front that
//! can drop the queries of chosen zones (a zone that times out) and can be switched to other zone contents while
//! its address stays the same (a listing that ends). TTLs are zero, so nothing is cached between checks.

use hickory_proto::op::Message;
use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::binary::BinDecodable;
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct DnsblServer {
    /// Where resolvers send queries.
    pub addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    servers: Mutex<Vec<Server<Catalog>>>,
}

async fn serve_zones(zones: &[(&str, &str)]) -> (SocketAddr, Server<Catalog>) {
    let mut catalog = Catalog::new();
    for (origin, text) in zones {
        let origin_name = Name::from_str(&format!("{origin}.")).expect("zone origin");
        let full = format!(
            "$TTL 0\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 0\n@ IN NS ns.test.\n{text}\n"
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
    (addr, server)
}

impl DnsblServer {
    /// Serves `zones` (origin, records relative to it); queries under any of `silent` get no answer.
    pub async fn start(zones: &[(&str, &str)], silent: &[&str]) -> DnsblServer {
        let (backend_addr, server) = serve_zones(zones).await;
        let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let backend = Arc::new(Mutex::new(backend_addr));
        let silent: Vec<String> = silent
            .iter()
            .map(|s| format!("{}.", s.to_ascii_lowercase()))
            .collect();
        let (front2, backend2) = (Arc::clone(&front), Arc::clone(&backend));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, client)) = front2.recv_from(&mut buf).await else {
                    return;
                };
                let packet = buf[..n].to_vec();
                let name = Message::from_bytes(&packet)
                    .ok()
                    .and_then(|m| {
                        m.queries
                            .first()
                            .map(|q| q.name().to_ascii().to_ascii_lowercase())
                    })
                    .unwrap_or_default();
                if silent.iter().any(|s| name.ends_with(s.as_str())) {
                    continue;
                }
                let to = *backend2.lock().unwrap();
                let front3 = Arc::clone(&front2);
                tokio::spawn(async move {
                    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    sock.send_to(&packet, to).await.unwrap();
                    let mut answer = vec![0u8; 4096];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut answer)).await
                    {
                        let _ = front3.send_to(&answer[..n], client).await;
                    }
                });
            }
        });
        DnsblServer {
            addr,
            backend,
            servers: Mutex::new(vec![server]),
        }
    }

    /// The hickory server itself, without the front (for benchmarks: one hop less).
    pub fn direct_addr(&self) -> SocketAddr {
        *self.backend.lock().unwrap()
    }

    /// Serves other contents from now on, at the same address.
    pub async fn replace_zones(&self, zones: &[(&str, &str)]) {
        let (backend_addr, server) = serve_zones(zones).await;
        *self.backend.lock().unwrap() = backend_addr;
        self.servers.lock().unwrap().push(server);
    }
}

/// A zone definition for settings, in the `zones.toml` format's fields.
pub fn zone_def(
    name: &str,
    kinds: &[&str],
    codes: &[(&str, &str)],
    refused: &[&str],
) -> relaywatch_audit::blocklist::ZoneSpec {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "label": name,
        "kinds": kinds,
        "refused": refused,
        "codes": codes.iter().map(|(c, m)| serde_json::json!({"code": c, "meaning": m})).collect::<Vec<_>>(),
    }))
    .expect("zone definition")
}
