//! An authoritative DNS server for tests (hickory-server) on 127.0.0.1, serving zones written in the test. TTLs are
//! zero, so resolvers keep nothing between questions.

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct DnsServer {
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

/// Serves `zones` (origin without the trailing dot, records relative to it) on a new port, UDP and TCP.
pub async fn serve(zones: &[(&str, &str)]) -> DnsServer {
    serve_at("127.0.0.1:0".parse().unwrap(), zones).await
}

/// Like [`serve`], on a given address (to change a name's answer: drop the old server, serve the new zone on its
/// address).
pub async fn serve_at(addr: SocketAddr, zones: &[(&str, &str)]) -> DnsServer {
    let mut catalog = Catalog::new();
    for (origin, records) in zones {
        let name = Name::from_str(&format!("{origin}.")).unwrap();
        let text = format!(
            "$TTL 0\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 0\n@ NS ns.test.\n{records}\n"
        );
        let (name, recs) = Parser::new(text, None, Some(name)).parse().unwrap();
        let zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
            name.clone(),
            recs,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .unwrap();
        catalog.upsert(LowerName::new(&name), vec![Arc::new(zone)]);
    }
    // With port 0, a free UDP port may be taken for TCP (another test's connection): try another.
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
        let bound = udp.local_addr().unwrap();
        match tokio::net::TcpListener::bind(bound).await {
            Ok(tcp) => break (udp, tcp),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() == 0 => continue,
            Err(e) => panic!("bind {bound}: {e}"),
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
