//! Reverse DNS of sending IPs: a PTR record whose name resolves back to the address (forward-confirmed reverse
//! DNS), that does not look like a dial-up pool, and that matches the HELO name when it is known.

use crate::dns::{Lookup, Query, Rdata, RecordType, Resolver, addresses};
use crate::finding::{Finding, NotTested, Rule};
use crate::spf::rule;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

rule!(
    MISSING,
    "ptr.missing",
    Error,
    "The sending IP has no reverse DNS (PTR) record",
    "RFC 1912 §2.1; Gmail sender requirements (2024): valid forward and reverse DNS",
    "Ask whoever runs the address (your provider) to publish a PTR record naming the server, e.g. mail.example.com."
);
rule!(
    MULTIPLE,
    "ptr.multiple",
    Warning,
    "The sending IP has more than one PTR record",
    "RFC 1912 §2.1",
    "Keep one PTR record; receivers check only one name."
);
rule!(
    NOT_CONFIRMED,
    "ptr.not_forward_confirmed",
    Error,
    "The PTR name does not resolve back to the sending IP (no FCrDNS)",
    "RFC 8601 §3 (iprev); Gmail sender requirements (2024)",
    "Publish an A/AAAA record for the PTR name that contains this address."
);
rule!(
    GENERIC,
    "ptr.generic_name",
    Warning,
    "The PTR name looks like a generic or dynamic address",
    "M3AAWG best practices for reverse DNS (2019)",
    "Ask the provider for a PTR record naming your mail server instead of the address pool."
);
rule!(
    HELO_MISMATCH,
    "ptr.helo_mismatch",
    Warning,
    "The PTR name differs from the name the server gives in HELO/EHLO",
    "RFC 5321 §4.1.4; M3AAWG best practices",
    "Make the server's HELO name (Postfix myhostname / smtp_helo_name) the PTR name, with matching A/AAAA."
);

rule!(
    NETWORK_SAMPLED,
    "ptr.network_sampled",
    Info,
    "Only part of a sending network was audited address by address",
    "RFC 1912 §2.1; M3AAWG best practices",
    "Register the addresses the servers really send from, or narrower networks, to have every one checked."
);

pub const RULES: &[&Rule] = &[
    &MISSING,
    &MULTIPLE,
    &NOT_CONFIRMED,
    &GENERIC,
    &HELO_MISMATCH,
    &NETWORK_SAMPLED,
];

/// A sending network larger than the audit checks address by address: its first `audited` addresses were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledNetwork {
    pub network: String,
    /// Usable addresses in the network.
    pub addresses: u128,
    pub audited: usize,
}

/// The info finding for each sampled network.
pub fn sampled(networks: &[SampledNetwork], findings: &mut Vec<Finding>) {
    for n in networks {
        findings.push(Finding::new(
            &NETWORK_SAMPLED,
            &n.network,
            format!(
                "{}: {} usable addresses, the first {} audited",
                n.network, n.addresses, n.audited
            ),
        ));
    }
}

/// Words that providers use in generated reverse names.
const GENERIC_WORDS: &[&str] = &[
    "dynamic",
    "dyn",
    "dhcp",
    "pool",
    "dsl",
    "adsl",
    "cable",
    "ppp",
    "dialup",
    "dial",
    "client",
    "customer",
    "broadband",
    "unassigned",
    "static",
    "cpe",
    "residential",
];

/// True when `name` looks generated from the address: it contains the address's octets (in either order, with any
/// separator), or a label starts with a dial-up pool word followed by digits or separators.
pub fn looks_generic(ip: IpAddr, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let first = name.split('.').next().unwrap_or_default();
    if let IpAddr::V4(v4) = ip {
        let o = v4.octets().map(|b| b.to_string());
        let digits: Vec<&str> = first
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        let fwd = [o[0].as_str(), &o[1], &o[2], &o[3]];
        let rev = [o[3].as_str(), &o[2], &o[1], &o[0]];
        if digits.windows(4).any(|w| w == fwd || w == rev) {
            return true;
        }
        // Hex forms such as c0000201.
        let hex = format!("{:08x}", u32::from(v4));
        if first.contains(&hex) {
            return true;
        }
    } else if first.chars().filter(|c| c.is_ascii_hexdigit()).count() >= 12 && first.contains('-') {
        return true;
    }
    first.split(['-', '_']).any(|part| {
        GENERIC_WORDS.iter().any(|w| {
            part.strip_prefix(w)
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
                || (part == *w && first.chars().any(|c| c.is_ascii_digit()))
        })
    })
}

pub fn check(
    dns: &mut Resolver<'_>,
    ip: IpAddr,
    helo: Option<&str>,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    let subject = ip.to_string();
    let names: Vec<String> = match dns.lookup(Query::ptr(ip)) {
        Lookup::Pending => return,
        Lookup::Failed(why) => {
            not_tested.push(NotTested {
                area: "ptr".into(),
                subject,
                reason: format!("PTR lookup failed: {why}"),
            });
            return;
        }
        Lookup::Empty { .. } => Vec::new(),
        Lookup::Found(r) => r
            .iter()
            .filter_map(|d| match d {
                Rdata::Ptr(n) => Some(crate::dns::normalize(n)),
                _ => None,
            })
            .collect(),
    };
    if names.is_empty() {
        findings.push(Finding::new(
            &MISSING,
            subject,
            format!("no PTR record for {ip}"),
        ));
        return;
    }
    if names.len() > 1 {
        findings.push(Finding::new(
            &MULTIPLE,
            &subject,
            format!("PTR {}", names.join(", ")),
        ));
    }
    let rtype = if ip.is_ipv4() {
        RecordType::A
    } else {
        RecordType::Aaaa
    };
    let mut confirmed = false;
    let mut pending = false;
    let mut failed = None;
    for name in &names {
        match dns.lookup(Query::new(name, rtype)) {
            Lookup::Pending => pending = true,
            Lookup::Failed(why) => failed = Some(why.to_string()),
            Lookup::Empty { .. } => {}
            Lookup::Found(r) => confirmed |= addresses(r).contains(&ip),
        }
    }
    if !confirmed && !pending {
        match failed {
            Some(why) => not_tested.push(NotTested {
                area: "ptr".into(),
                subject: subject.clone(),
                reason: format!("forward lookup of the PTR name failed: {why}"),
            }),
            None => findings.push(Finding::new(
                &NOT_CONFIRMED,
                &subject,
                format!(
                    "{ip} → PTR {} → {:?} records do not include {ip}",
                    names.join(", "),
                    rtype
                ),
            )),
        }
    }
    for name in &names {
        if looks_generic(ip, name) {
            findings.push(Finding::new(
                &GENERIC,
                &subject,
                format!("{ip} → PTR {name}"),
            ));
        }
    }
    if let Some(helo) = helo.map(crate::dns::normalize)
        && !names.contains(&helo)
    {
        findings.push(Finding::new(
            &HELO_MISMATCH,
            &subject,
            format!("{ip} → PTR {}, HELO name {helo}", names.join(", ")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(looks_generic(ip, "192-0-2-10.dsl.example.net"));
        assert!(looks_generic(ip, "10-2-0-192.static.example.net"));
        assert!(!looks_generic(ip, "dynamic-pool.example.net"));
        assert!(looks_generic(ip, "dhcp123.example.net"));
        assert!(looks_generic(ip, "c000020a.example.net"));
        assert!(!looks_generic(ip, "mail.example.com"));
        assert!(!looks_generic(ip, "mx1.example.com"));
        assert!(!looks_generic(ip, "smtp-out.example.com"));
    }
}
