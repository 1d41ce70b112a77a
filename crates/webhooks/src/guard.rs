//! The SSRF guard: a webhook may only reach addresses on the public internet, unless the installation allows a
//! network (`webhooks.allow_networks`).
//!
//! The guard resolves the URL's host (every A and AAAA record) and refuses the URL when any address is loopback,
//! private (RFC 1918, ULA), link-local, CGNAT (RFC 6598), multicast, unspecified, broadcast, reserved or
//! documentation space, a cloud metadata address, or an IPv4-mapped / NAT64 / 6to4 form of one. The sender then
//! connects only to the addresses vetted here ([`Vetted::addrs`]), so a name whose answer changes between the check
//! and the connection (DNS rebinding) cannot move the request elsewhere.

use crate::settings::WebhookSettings;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use ipnet::IpNet;
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("the host `{host}` does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error(
        "`{host}` {via}{ip}, {reason}: webhooks may not be sent there (an installation can allow a network with webhooks.allow_networks)"
    )]
    Forbidden {
        host: String,
        /// "resolves to " for names, "is " for literal addresses.
        via: &'static str,
        ip: IpAddr,
        reason: &'static str,
    },
}

/// A URL the guard accepted, with the only addresses the request may go to.
#[derive(Debug, Clone)]
pub struct Vetted {
    pub url: Url,
    /// The host name when the URL names one (the sender pins it to `addrs`); `None` for a literal address.
    pub host_name: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

/// Parses a webhook URL: `http` or `https`, a host, no credentials, no fragment. Nothing is resolved.
pub fn parse_url(raw: &str) -> Result<Url, GuardError> {
    let raw = raw.trim();
    if raw.len() > 2000 {
        return Err(GuardError::InvalidUrl(
            "the URL is longer than 2000 characters".into(),
        ));
    }
    let url = Url::parse(raw).map_err(|e| GuardError::InvalidUrl(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(GuardError::InvalidUrl(format!(
            "the scheme must be https or http, not `{}`",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(GuardError::InvalidUrl("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::InvalidUrl(
            "credentials in the URL are not accepted (they would show in listings and logs); verify the \
             webhook-signature header instead, or put a token in the path"
                .into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(GuardError::InvalidUrl(
            "the URL must not have a #fragment".into(),
        ));
    }
    Ok(url)
}

/// Why an address is off limits, or `None` for a public address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let in_net = |net: &str| {
        net.parse::<ipnet::Ipv4Net>()
            .map(|n| n.contains(&ip))
            .unwrap_or(false)
    };
    Some(match o {
        [0, ..] => "an unspecified / \"this network\" address (0.0.0.0/8)",
        [127, ..] => "a loopback address (127.0.0.0/8)",
        [10, ..] => "a private address (RFC 1918, 10.0.0.0/8)",
        [172, b, ..] if (16..32).contains(&b) => "a private address (RFC 1918, 172.16.0.0/12)",
        [192, 168, ..] => "a private address (RFC 1918, 192.168.0.0/16)",
        [169, 254, 169, 254] => "a cloud metadata address (169.254.169.254)",
        [169, 254, ..] => "a link-local address (169.254.0.0/16)",
        [100, b, ..] if (64..128).contains(&b) => {
            "a shared CGNAT address (RFC 6598, 100.64.0.0/10)"
        }
        [168, 63, 129, 16] => "a cloud metadata address (Azure 168.63.129.16)",
        [255, 255, 255, 255] => "the broadcast address",
        [a, ..] if (224..240).contains(&a) => "a multicast address (224.0.0.0/4)",
        [a, ..] if a >= 240 => "a reserved address (240.0.0.0/4)",
        _ if in_net("192.0.0.0/24") => "an IETF protocol address (192.0.0.0/24)",
        _ if in_net("192.0.2.0/24") || in_net("198.51.100.0/24") || in_net("203.0.113.0/24") => {
            "a documentation address (RFC 5737)"
        }
        _ if in_net("198.18.0.0/15") => "a benchmarking address (198.18.0.0/15)",
        _ if in_net("192.88.99.0/24") => "a 6to4 relay anycast address (192.88.99.0/24)",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("the unspecified address (::)");
    }
    if ip.is_loopback() {
        return Some("the loopback address (::1)");
    }
    // Forms that carry an IPv4 address: judged by the address they carry.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "an IPv4-mapped form of a forbidden IPv4 address");
    }
    let seg = ip.segments();
    let embedded = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix: the gateway forwards to the embedded IPv4 address.
        return forbidden_v4(embedded).map(|_| "a NAT64 form of a forbidden IPv4 address");
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return Some("an IPv4-compatible address (::/96, deprecated)");
    }
    let in_net = |net: &str| {
        net.parse::<ipnet::Ipv6Net>()
            .map(|n| n.contains(&ip))
            .unwrap_or(false)
    };
    Some(match seg[0] {
        s if s & 0xfe00 == 0xfc00 => "a unique local address (ULA, fc00::/7)",
        s if s & 0xffc0 == 0xfe80 => "a link-local address (fe80::/10)",
        s if s & 0xffc0 == 0xfec0 => "a site-local address (fec0::/10, deprecated)",
        s if s & 0xff00 == 0xff00 => "a multicast address (ff00::/8)",
        0x2002 => "a 6to4 address (2002::/16), which tunnels to an IPv4 address",
        _ if in_net("2001:db8::/32") => "a documentation address (2001:db8::/32)",
        _ if in_net("2001::/32") => {
            "a Teredo address (2001::/32), which tunnels to an IPv4 address"
        }
        _ if in_net("2001::/23") => "an IETF protocol address (2001::/23)",
        _ if in_net("64:ff9b:1::/48") => "a local-use NAT64 address (64:ff9b:1::/48)",
        _ if in_net("100::/64") => "a discard-only address (100::/64)",
        _ => return None,
    })
}

/// Resolves and vets webhook URLs.
#[derive(Clone)]
pub struct Guard {
    resolver: TokioResolver,
    allow: Vec<IpNet>,
}

impl Guard {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        let (config, mut opts) = if settings.nameservers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "no system resolver configuration: webhook hosts will not resolve");
                    (
                        ResolverConfig::from_name_servers(Vec::new()),
                        ResolverOpts::default(),
                    )
                }
            }
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
        // Every address a name has is vetted and pinned, so ask for both families.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        opts.ndots = 0;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()?;
        Ok(Self {
            resolver,
            allow: settings.allow_networks.clone(),
        })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow
            .iter()
            .any(|n| n.contains(&ip) || mapped.is_some_and(|m| n.contains(&m)))
    }

    /// Why `ip` may not be reached, under this installation's allowances.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed(ip) {
            return None;
        }
        forbidden_reason(ip)
    }

    /// Parses, resolves and vets `raw`.
    pub async fn vet(&self, raw: &str) -> Result<Vetted, GuardError> {
        let url = parse_url(raw)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| GuardError::InvalidUrl("the URL has no port".into()))?;
        let (host_name, ips, via) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)], "is "),
            Some(url::Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)], "is "),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                // Some resolvers accept numeric forms the URL parser left as names (`0x7f.1`); never let one through.
                if name.parse::<IpAddr>().is_ok() {
                    return Err(GuardError::InvalidUrl(format!(
                        "`{name}` is not a valid host"
                    )));
                }
                let lookup = self
                    .resolver
                    .lookup_ip(format!("{name}."))
                    .await
                    .map_err(|e| GuardError::Unresolvable {
                        host: name.clone(),
                        reason: e.to_string(),
                    })?;
                let mut ips: Vec<IpAddr> = lookup.iter().collect();
                ips.sort();
                ips.dedup();
                if ips.is_empty() {
                    return Err(GuardError::Unresolvable {
                        host: name,
                        reason: "no A or AAAA records".into(),
                    });
                }
                (Some(name), ips, "resolves to ")
            }
            None => return Err(GuardError::InvalidUrl("the URL has no host".into())),
        };
        // One forbidden address is enough to refuse: a name that mixes public and private answers is how rebinding
        // attacks start.
        for ip in &ips {
            if let Some(reason) = self.refusal(*ip) {
                return Err(GuardError::Forbidden {
                    host: host_name
                        .clone()
                        .unwrap_or_else(|| url.host_str().unwrap_or_default().to_string()),
                    via,
                    ip: *ip,
                    reason,
                });
            }
        }
        Ok(Vetted {
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            host_name,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        forbidden_reason(s.parse().unwrap())
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.1",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "168.63.129.16",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(reason(ip).is_some(), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:93.184.215.14",
            "64:ff9b::5db8:d70e",
        ] {
            assert_eq!(reason(ip), None, "{ip} should pass");
        }
    }

    #[test]
    fn urls_must_be_plain_http_or_https() {
        assert!(parse_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pass@example.com/",
            "https://example.com/#frag",
            "not a url",
            "mailto:ops@example.com",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn literal_addresses_are_vetted_without_dns_and_allowances_apply() {
        let strict = Guard::new(&WebhookSettings {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            ..WebhookSettings::default()
        })
        .unwrap();
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
        ] {
            let err = strict.vet(url).await.unwrap_err();
            assert!(matches!(err, GuardError::Forbidden { .. }), "{url}: {err}");
            assert!(err.to_string().contains("webhooks.allow_networks"), "{err}");
        }
        let ok = strict.vet("https://93.184.215.14:8443/hook").await.unwrap();
        assert_eq!(ok.addrs, vec!["93.184.215.14:8443".parse().unwrap()]);
        assert!(ok.host_name.is_none());

        let loopback_allowed = Guard::new(&WebhookSettings {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..WebhookSettings::default()
        })
        .unwrap();
        assert!(loopback_allowed.vet("http://127.0.0.1:1234/").await.is_ok());
        assert!(
            loopback_allowed
                .vet("http://[::ffff:127.0.0.1]/")
                .await
                .is_ok()
        );
        assert!(loopback_allowed.vet("http://10.0.0.1/").await.is_err());
        assert!(loopback_allowed.vet("http://[::1]/").await.is_err());
    }
}
