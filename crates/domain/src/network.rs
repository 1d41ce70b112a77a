//! Sending IPs: single addresses or CIDR networks, IPv4 and IPv6.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "`{0}` is not an IP address or a CIDR network (like 192.0.2.10, 192.0.2.0/24 or 2001:db8::/48)"
    )]
    Invalid(String),
    #[error("`{given}` has host bits set; the network is {network}")]
    HostBitsSet { given: String, network: String },
    #[error("`{0}` is too wide to be a set of sending IPs (at most /16 for IPv4, /32 for IPv6)")]
    TooWide(String),
}

/// A sending address or network in canonical form: a single address is written without a prefix (`192.0.2.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork(IpNet);

impl IpNetwork {
    pub fn parse(input: &str) -> Result<Self, NetworkError> {
        let s = input.trim();
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self(IpNet::from(addr)));
        }
        let net: IpNet = s
            .parse()
            .map_err(|_| NetworkError::Invalid(s.to_string()))?;
        if net.trunc() != net {
            return Err(NetworkError::HostBitsSet {
                given: s.to_string(),
                network: net.trunc().to_string(),
            });
        }
        let too_wide = match net {
            IpNet::V4(n) => n.prefix_len() < 16,
            IpNet::V6(n) => n.prefix_len() < 32,
        };
        if too_wide {
            return Err(NetworkError::TooWide(s.to_string()));
        }
        Ok(Self(net))
    }

    pub fn is_single_address(&self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }

    pub fn inner(&self) -> IpNet {
        self.0
    }

    /// The usable addresses of the network (for IPv4 below /31 without the network and broadcast addresses, which
    /// no server sends from), the first `max` of them in order, and how many there are in all.
    pub fn addresses(&self, max: usize) -> (Vec<IpAddr>, u128) {
        let bits = u32::from(self.0.max_prefix_len() - self.0.prefix_len());
        let all = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
        let total = match self.0 {
            IpNet::V4(n) if n.prefix_len() < 31 => all - 2,
            _ => all,
        };
        (self.0.hosts().take(max).collect(), total)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single_address() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IpNetwork::parse(&s).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_network_yields_its_usable_addresses_up_to_a_cap() {
        let n = IpNetwork::parse("192.0.2.8/29").unwrap();
        let (first, total) = n.addresses(256);
        assert_eq!(total, 6);
        assert_eq!(first.first().unwrap().to_string(), "192.0.2.9");
        assert_eq!(first.last().unwrap().to_string(), "192.0.2.14");
        let (some, total) = IpNetwork::parse("198.51.0.0/16").unwrap().addresses(256);
        assert_eq!((some.len(), total), (256, 65_534));
        let (some, total) = IpNetwork::parse("2001:db8::/32").unwrap().addresses(3);
        assert_eq!((some.len(), total), (3, 1u128 << 96));
        let (one, total) = IpNetwork::parse("192.0.2.1").unwrap().addresses(256);
        assert_eq!((one.len(), total), (1, 1));
    }

    use super::*;

    #[test]
    fn single_addresses_and_networks() {
        assert_eq!(
            IpNetwork::parse("192.0.2.10").unwrap().to_string(),
            "192.0.2.10"
        );
        assert_eq!(
            IpNetwork::parse("192.0.2.10/32").unwrap().to_string(),
            "192.0.2.10"
        );
        assert_eq!(
            IpNetwork::parse("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            IpNetwork::parse("2001:DB8::1").unwrap().to_string(),
            "2001:db8::1"
        );
        assert!(
            IpNetwork::parse("2001:db8::/48")
                .unwrap()
                .contains("2001:db8::5".parse().unwrap())
        );
    }

    #[test]
    fn refusals_say_why() {
        assert!(matches!(
            IpNetwork::parse("300.1.1.1"),
            Err(NetworkError::Invalid(_))
        ));
        assert!(matches!(
            IpNetwork::parse("mail.example.com"),
            Err(NetworkError::Invalid(_))
        ));
        assert_eq!(
            IpNetwork::parse("192.0.2.5/24"),
            Err(NetworkError::HostBitsSet {
                given: "192.0.2.5/24".into(),
                network: "192.0.2.0/24".into()
            })
        );
        assert!(matches!(
            IpNetwork::parse("10.0.0.0/8"),
            Err(NetworkError::TooWide(_))
        ));
    }
}
