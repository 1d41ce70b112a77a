//! MX records (RFC 5321 §5.1, RFC 7505, RFC 2181 §10.3): where replies and bounces to the domain go.

use crate::dns::{Lookup, Query, Rdata, RecordType, Resolver, addresses, cname};
use crate::finding::{Finding, NotTested, Rule};
use crate::spf::rule;

rule!(
    NONE,
    "mx.none",
    Warning,
    "The domain has no MX record (implicit MX)",
    "RFC 5321 §5.1",
    "Publish MX records for the servers that accept replies and bounces; without them mail goes to the domain's A/AAAA address."
);
rule!(
    NULL,
    "mx.null",
    Error,
    "The domain publishes a null MX: it accepts no mail, so receivers may refuse mail from it",
    "RFC 7505 §4.2",
    "Remove the null MX from a domain you send from, and publish the servers that receive its bounces."
);
rule!(
    NULL_MIXED,
    "mx.null_mixed",
    Error,
    "A null MX is published together with other MX records",
    "RFC 7505 §3",
    "Publish either the single null MX (`0 .`) or real MX hosts, not both."
);
rule!(
    TARGET_CNAME,
    "mx.target_is_cname",
    Error,
    "An MX host name is an alias (CNAME)",
    "RFC 2181 §10.3; RFC 5321 §5.1",
    "Point the MX record at the canonical host name."
);
rule!(
    TARGET_IP,
    "mx.target_is_ip",
    Error,
    "An MX record names an IP address instead of a host",
    "RFC 5321 §5.1; RFC 1035 §3.3.9",
    "Give the server a host name with an A/AAAA record and name that in the MX record."
);
rule!(
    NO_ADDRESS,
    "mx.target_without_address",
    Error,
    "An MX host has no A or AAAA record",
    "RFC 5321 §5.1",
    "Publish the host's address records, or remove the MX record."
);
rule!(
    NO_ADDRESS_IMPLICIT,
    "mx.implicit_without_address",
    Error,
    "Without MX records, the domain has no address either: it cannot receive bounces",
    "RFC 5321 §5.1",
    "Publish MX records for the servers that receive this domain's mail."
);

pub const RULES: &[&Rule] = &[
    &NONE,
    &NULL,
    &NULL_MIXED,
    &TARGET_CNAME,
    &TARGET_IP,
    &NO_ADDRESS,
    &NO_ADDRESS_IMPLICIT,
];

/// The MX hosts of a domain, by preference, from answers already gathered (empty while pending).
pub fn hosts(answers: &crate::dns::Answers, domain: &str) -> Vec<String> {
    let mut mx: Vec<(u16, String)> = match answers.get(&Query::new(domain, RecordType::Mx)) {
        Some(crate::dns::Answer::Records(r)) => r
            .iter()
            .filter_map(|d| match d {
                Rdata::Mx {
                    preference,
                    exchange,
                } => Some((*preference, crate::dns::normalize(exchange))),
                _ => None,
            })
            .filter(|(_, e)| !e.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    mx.sort();
    mx.dedup();
    mx.into_iter().map(|(_, e)| e).collect()
}

pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    let records = match dns.lookup(Query::new(domain, RecordType::Mx)) {
        Lookup::Pending => return,
        Lookup::Failed(why) => {
            not_tested.push(NotTested {
                area: "mx".into(),
                subject: domain.into(),
                reason: format!("MX lookup failed: {why}"),
            });
            return;
        }
        Lookup::Empty { .. } => &[][..],
        Lookup::Found(r) => r,
    };
    let mx: Vec<(u16, String)> = records
        .iter()
        .filter_map(|d| match d {
            Rdata::Mx {
                preference,
                exchange,
            } => Some((*preference, crate::dns::normalize(exchange))),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        let v4 = dns.lookup(Query::new(domain, RecordType::A));
        let has_v4 = matches!(v4, Lookup::Found(_));
        let v6 = dns.lookup(Query::new(domain, RecordType::Aaaa));
        let has_v6 = matches!(v6, Lookup::Found(_));
        match (v4, v6) {
            (Lookup::Empty { .. }, Lookup::Empty { .. }) => findings.push(Finding::new(
                &NO_ADDRESS_IMPLICIT,
                domain,
                format!("{domain} has no MX, A or AAAA record"),
            )),
            _ if has_v4 || has_v6 => findings.push(Finding::new(
                &NONE,
                domain,
                format!("{domain} has no MX record; mail goes to its A/AAAA address"),
            )),
            _ => {}
        }
        return;
    }
    let evidence = mx
        .iter()
        .map(|(p, e)| format!("MX {p} {}", if e.is_empty() { "." } else { e }))
        .collect::<Vec<_>>()
        .join(", ");
    let null = mx.iter().any(|(_, e)| e.is_empty());
    if null {
        if mx.len() > 1 {
            findings.push(Finding::new(&NULL_MIXED, domain, evidence));
        } else {
            findings.push(Finding::new(&NULL, domain, evidence));
        }
        return;
    }
    for (_, host) in &mx {
        if host.parse::<std::net::IpAddr>().is_ok()
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok()
        {
            findings.push(Finding::new(
                &TARGET_IP,
                host,
                format!("{evidence} (at {domain})"),
            ));
            continue;
        }
        let v4 = dns.lookup(Query::new(host, RecordType::A));
        let v6 = dns.lookup(Query::new(host, RecordType::Aaaa));
        let mut any = false;
        let mut failed = None;
        let mut alias = None;
        let mut pending = false;
        for l in [v4, v6] {
            match l {
                Lookup::Pending => pending = true,
                Lookup::Failed(why) => failed = Some(why.to_string()),
                Lookup::Empty { .. } => {}
                Lookup::Found(r) => {
                    any |= !addresses(r).is_empty();
                    alias = alias.or(cname(r).map(str::to_string));
                }
            }
        }
        if pending {
            continue;
        }
        if let Some(target) = alias {
            findings.push(Finding::new(
                &TARGET_CNAME,
                host,
                format!("{host} is a CNAME to {target} (MX of {domain})"),
            ));
        }
        if !any {
            match failed {
                Some(why) => not_tested.push(NotTested {
                    area: "mx".into(),
                    subject: host.clone(),
                    reason: format!("address lookup failed: {why}"),
                }),
                None => findings.push(Finding::new(
                    &NO_ADDRESS,
                    host,
                    format!("{host} (MX of {domain}) has no A or AAAA record"),
                )),
            }
        }
    }
}
