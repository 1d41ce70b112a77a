//! The resolver every audit uses (hickory), built from configuration: which nameservers, how long to wait, how often
//! to retry. mail-auth's SPF evaluation runs on the same resolver, so both see the same DNS.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType as HRecordType};
use relaywatch_audit::{Answer, Query, Rdata, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How audits reach the DNS.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Nameservers (`IP:port`) to ask; empty means the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// How long one query may take before it is retried or reported as a timeout.
    pub timeout: Duration,
    /// Tries per query (the first included).
    pub attempts: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 2,
        }
    }
}

pub fn build_resolver(settings: &DnsSettings) -> anyhow::Result<TokioResolver> {
    let (config, mut opts) = if settings.nameservers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()?
    } else {
        let servers = settings
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    opts.timeout = settings.timeout;
    opts.attempts = settings.attempts.max(1);
    // Audits keep their own per-run answers; the resolver's cache would only hide a fix made a minute ago.
    opts.cache_size = 0;
    // Names are always absolute here: never try search domains.
    opts.ndots = 0;
    opts.num_concurrent_reqs = 1;
    // Long SPF records and 2048-bit DKIM keys exceed 512 bytes: advertise a larger UDP payload (EDNS0) instead of
    // paying for a TCP retry, which some resolvers answer slowly.
    opts.edns0 = true;
    Ok(
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()?,
    )
}

/// Asks one question. Never fails: DNS errors become [`Answer::Failed`], so the rule reports "not tested".
pub async fn resolve(resolver: &TokioResolver, q: &Query) -> Answer {
    let (name, rtype) = match q.rtype {
        RecordType::Ptr => match q.name.parse::<IpAddr>() {
            Ok(ip) => (Name::from(ip), HRecordType::PTR),
            Err(_) => return Answer::Failed(format!("{} is not an IP address", q.name)),
        },
        other => {
            let name = match Name::from_ascii(format!("{}.", q.name)) {
                Ok(n) => n,
                Err(e) => return Answer::Failed(format!("{} is not a valid name: {e}", q.name)),
            };
            let t = match other {
                RecordType::A => HRecordType::A,
                RecordType::Aaaa => HRecordType::AAAA,
                RecordType::Mx => HRecordType::MX,
                RecordType::Txt => HRecordType::TXT,
                RecordType::Ptr => HRecordType::PTR,
            };
            (name, t)
        }
    };
    match resolver.lookup(name, rtype).await {
        Ok(lookup) => Answer::Records(
            lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(Rdata::A(a.0)),
                    RData::AAAA(a) => Some(Rdata::Aaaa(a.0)),
                    RData::MX(mx) => Some(Rdata::Mx {
                        preference: mx.preference,
                        exchange: mx.exchange.to_ascii(),
                    }),
                    RData::TXT(t) => {
                        Some(Rdata::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()))
                    }
                    RData::PTR(p) => Some(Rdata::Ptr(p.0.to_ascii())),
                    RData::CNAME(c) => Some(Rdata::Cname(c.0.to_ascii())),
                    _ => None,
                })
                .collect(),
        ),
        Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
            if nr.response_code == ResponseCode::NXDomain {
                Answer::NxDomain
            } else {
                Answer::Records(Vec::new())
            }
        }
        Err(e) => Answer::Failed(e.to_string()),
    }
}
