//! MTA-STS (RFC 8461): the `_mta-sts` TXT record and the policy served at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, which the worker fetches and hands in as [`PolicyFetch`].

use crate::dns::{Lookup, Resolver, txt_strings};
use crate::finding::{Finding, NotTested, Rule};
use crate::spf::rule;
use serde::{Deserialize, Serialize};

rule!(
    NOT_DEPLOYED,
    "mta_sts.not_deployed",
    Info,
    "The domain does not publish MTA-STS",
    "RFC 8461",
    "Publish an MTA-STS policy (mode testing, then enforce) so senders require TLS to your MX hosts."
);
rule!(
    MULTIPLE,
    "mta_sts.multiple_records",
    Error,
    "More than one _mta-sts record is published",
    "RFC 8461 §3.1",
    "Keep one `v=STSv1; id=...` TXT record at _mta-sts.<domain>."
);
rule!(
    RECORD_SYNTAX,
    "mta_sts.record_syntax",
    Error,
    "The _mta-sts record is malformed",
    "RFC 8461 §3.1",
    "Publish `v=STSv1; id=<1 to 32 letters or digits>` and change id whenever the policy changes."
);
rule!(
    UNREACHABLE,
    "mta_sts.policy_unreachable",
    Error,
    "The MTA-STS policy cannot be fetched",
    "RFC 8461 §3.3",
    "Serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with status 200."
);
rule!(
    CERTIFICATE,
    "mta_sts.certificate_invalid",
    Error,
    "The policy host's certificate is not valid",
    "RFC 8461 §3.3",
    "Install a certificate for mta-sts.<domain> from a public CA, with the full chain."
);
rule!(
    REDIRECT,
    "mta_sts.policy_redirect",
    Error,
    "The policy URL answers with a redirect",
    "RFC 8461 §3.3 (redirects MUST NOT be followed)",
    "Serve the policy directly at the well-known URL."
);
rule!(
    CONTENT_TYPE,
    "mta_sts.content_type",
    Error,
    "The policy is not served as text/plain",
    "RFC 8461 §3.2",
    "Serve the policy file with Content-Type: text/plain."
);
rule!(
    POLICY_SYNTAX,
    "mta_sts.policy_syntax",
    Error,
    "The MTA-STS policy is malformed",
    "RFC 8461 §3.2",
    "Write `version: STSv1`, `mode: enforce|testing|none`, one `mx:` line per MX pattern and `max_age:` in seconds."
);
rule!(
    MAX_AGE,
    "mta_sts.max_age_out_of_range",
    Warning,
    "The policy's max_age is outside the useful range",
    "RFC 8461 §3.2 (at most 31557600; weeks recommended)",
    "Use a max_age between 86400 (a day) and 31557600 (a year); 604800 or more once stable."
);
rule!(
    TESTING,
    "mta_sts.testing_mode",
    Info,
    "The MTA-STS policy is in testing mode",
    "RFC 8461 §5",
    "Move to mode: enforce once TLS reports show no failures."
);
rule!(
    MODE_NONE,
    "mta_sts.mode_none",
    Warning,
    "The MTA-STS policy is mode none (withdrawn)",
    "RFC 8461 §5",
    "Publish mode testing or enforce, or remove the _mta-sts record once the policy has expired."
);
rule!(
    MX_NOT_COVERED,
    "mta_sts.mx_not_covered",
    Error,
    "An MX host is not covered by the policy's mx patterns",
    "RFC 8461 §4.1",
    "Add an `mx:` line matching the host; senders enforcing the policy will not deliver to it."
);

pub const RULES: &[&Rule] = &[
    &NOT_DEPLOYED,
    &MULTIPLE,
    &RECORD_SYNTAX,
    &UNREACHABLE,
    &CERTIFICATE,
    &REDIRECT,
    &CONTENT_TYPE,
    &POLICY_SYNTAX,
    &MAX_AGE,
    &TESTING,
    &MODE_NONE,
    &MX_NOT_COVERED,
];

/// What fetching the policy gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyFetch {
    Fetched {
        status: u16,
        content_type: Option<String>,
        location: Option<String>,
        body: String,
    },
    /// The TLS handshake failed because the certificate did not verify.
    CertificateInvalid(String),
    /// Connection refused, other TLS failure, malformed HTTP.
    Failed(String),
    /// No answer at all (timeout, DNS failure): not tested.
    TimedOut(String),
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: String,
    pub mx: Vec<String>,
    pub max_age: u64,
}

/// The well-known URL of the policy of `domain`.
pub fn policy_host(domain: &str) -> String {
    format!("mta-sts.{domain}")
}

/// True when `_mta-sts.<domain>` publishes an STSv1 record: the worker fetches the policy only then.
pub fn record_present(answers: &crate::dns::Answers, domain: &str) -> bool {
    match answers.get(&crate::dns::Query::new(
        &format!("_mta-sts.{domain}"),
        crate::dns::RecordType::Txt,
    )) {
        Some(crate::dns::Answer::Records(r)) => {
            txt_strings(r).iter().any(|t| t.text.starts_with("v=STSv1"))
        }
        _ => false,
    }
}

/// Parses a policy file (RFC 8461 §3.2). Errors say which line is wrong.
pub fn parse_policy(body: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("line `{line}` is not `key: value`"));
        };
        let v = v.trim();
        match k.trim() {
            "version" => version = Some(v.to_string()),
            "mode" => mode = Some(v.to_string()),
            "max_age" => {
                max_age = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("max_age `{v}` is not a number"))?,
                )
            }
            "mx" => mx.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err(format!(
            "version is {:?}, expected STSv1",
            version.unwrap_or_default()
        ));
    }
    let mode = mode.ok_or("no mode line")?;
    if !matches!(mode.as_str(), "enforce" | "testing" | "none") {
        return Err(format!("mode `{mode}` is not enforce, testing or none"));
    }
    let max_age = max_age.ok_or("no max_age line")?;
    if mode != "none" && mx.is_empty() {
        return Err("no mx line".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// RFC 8461 §4.1: a pattern is a host name or `*.` followed by one label's worth of wildcard.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Checks the record, and the policy when it was fetched. Returns the policy mode when a valid policy is in force.
pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    fetch: Option<&PolicyFetch>,
    mx_hosts: &[String],
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) -> Option<String> {
    let name = format!("_mta-sts.{domain}");
    let records = match dns.txt(&name) {
        Lookup::Pending => return None,
        Lookup::Failed(why) => {
            not_tested.push(NotTested {
                area: "mta_sts".into(),
                subject: domain.into(),
                reason: format!("TXT lookup of {name} failed: {why}"),
            });
            return None;
        }
        Lookup::Empty { .. } => Vec::new(),
        Lookup::Found(r) => txt_strings(r),
    };
    let sts: Vec<_> = records
        .iter()
        .filter(|r| r.text.starts_with("v=STSv1"))
        .collect();
    match sts.len() {
        0 => {
            findings.push(Finding::new(
                &NOT_DEPLOYED,
                domain,
                format!("no v=STSv1 record at {name}"),
            ));
            return None;
        }
        1 => {}
        n => {
            findings.push(Finding::new(
                &MULTIPLE,
                domain,
                format!("{n} v=STSv1 records at {name}"),
            ));
            return None;
        }
    }
    let text = &sts[0].text;
    let record_ok = crate::tags::parse(text).is_ok_and(|tags| {
        tags[0] == ("v".into(), "STSv1".into())
            && crate::tags::get(&tags, "id").is_some_and(|id| {
                (1..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
            })
    });
    if !record_ok {
        findings.push(Finding::new(
            &RECORD_SYNTAX,
            domain,
            format!("\"{text}\" at {name}"),
        ));
    }
    let url = format!("https://{}/.well-known/mta-sts.txt", policy_host(domain));
    let policy = match fetch? {
        PolicyFetch::TimedOut(why) => {
            not_tested.push(NotTested {
                area: "mta_sts".into(),
                subject: url,
                reason: why.clone(),
            });
            return None;
        }
        PolicyFetch::CertificateInvalid(why) => {
            findings.push(Finding::new(
                &CERTIFICATE,
                policy_host(domain),
                format!("{url}: {why}"),
            ));
            return None;
        }
        PolicyFetch::Failed(why) => {
            findings.push(Finding::new(&UNREACHABLE, domain, format!("{url}: {why}")));
            return None;
        }
        PolicyFetch::Fetched {
            status, location, ..
        } if (300..400).contains(status) => {
            findings.push(Finding::new(
                &REDIRECT,
                domain,
                format!(
                    "{url}: HTTP {status} to {}",
                    location.as_deref().unwrap_or("(no Location)")
                ),
            ));
            return None;
        }
        PolicyFetch::Fetched { status, .. } if *status != 200 => {
            findings.push(Finding::new(
                &UNREACHABLE,
                domain,
                format!("{url}: HTTP {status}"),
            ));
            return None;
        }
        PolicyFetch::Fetched {
            content_type, body, ..
        } => {
            let media = content_type
                .as_deref()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if media != "text/plain" {
                findings.push(Finding::new(
                    &CONTENT_TYPE,
                    domain,
                    format!(
                        "{url}: Content-Type {}",
                        content_type.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
            match parse_policy(body) {
                Ok(p) => p,
                Err(why) => {
                    findings.push(Finding::new(
                        &POLICY_SYNTAX,
                        domain,
                        format!("{url}: {why}"),
                    ));
                    return None;
                }
            }
        }
    };
    if policy.max_age > 31_557_600 || policy.max_age < 86_400 {
        findings.push(Finding::new(
            &MAX_AGE,
            domain,
            format!("max_age: {}", policy.max_age),
        ));
    }
    match policy.mode.as_str() {
        "testing" => findings.push(Finding::new(
            &TESTING,
            domain,
            format!("{url}: mode: testing"),
        )),
        "none" => {
            findings.push(Finding::new(
                &MODE_NONE,
                domain,
                format!("{url}: mode: none"),
            ));
            return None;
        }
        _ => {}
    }
    for host in mx_hosts {
        if !policy.mx.iter().any(|p| mx_matches(p, host)) {
            findings.push(Finding::new(
                &MX_NOT_COVERED,
                host,
                format!(
                    "MX {host} matches none of the policy's mx: {}",
                    policy.mx.join(", ")
                ),
            ));
        }
    }
    Some(policy.mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(mx_matches("*.example.com", "mx1.example.com"));
        assert!(!mx_matches("*.example.com", "a.b.example.com"));
        assert!(!mx_matches("*.example.com", "example.com"));
        assert!(mx_matches("mx.example.com", "MX.example.com."));
    }

    #[test]
    fn policies() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, "enforce");
        assert_eq!(p.mx, vec!["*.example.com"]);
        assert!(
            parse_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1")
                .unwrap_err()
                .contains("strict")
        );
        assert!(
            parse_policy("mode: enforce\nmx: a\nmax_age: 1")
                .unwrap_err()
                .contains("version")
        );
    }
}
