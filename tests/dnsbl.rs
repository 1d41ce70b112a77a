//! A DNS blocklist server on loopback for tests: [`crate::dns`]'s hickory-server (in-process, real UDP) behind a small UDP front that
//! can drop the queries of chosen zones (a zone that times out) and can be switched to other zone contents while
//! its address stays the same (a listing that ends). TTLs are zero, so nothing is cached between checks.

use crate::dns::{self, DnsServer};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct DnsblServer {
    /// Where resolvers send queries.
    pub addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    servers: Mutex<Vec<DnsServer>>,
}

impl DnsblServer {
    /// Serves `zones` (origin, records relative to it); queries under any of `silent` get no answer.
    pub async fn start(zones: &[(&str, &str)], silent: &[&str]) -> DnsblServer {
        let server = dns::serve(zones).await;
        let backend_addr = server.addr;
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
        let server = dns::serve(zones).await;
        *self.backend.lock().unwrap() = server.addr;
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
