//! DMARC (RFC 9989, DMARCbis, read compatibly with RFC 7489) at `_dmarc.<domain>`, found by the DNS tree walk.

use crate::dns::{Lookup, Resolver, txt_strings};
use crate::finding::{Finding, NotTested, Rule};
use crate::names::{organizational_domain, parents};
use crate::spf::rule;

rule!(
    MISSING,
    "dmarc.missing",
    Error,
    "The domain has no DMARC policy",
    "RFC 9989 §4.8; Gmail and Yahoo sender requirements (2024)",
    "Publish `v=DMARC1; p=none; rua=mailto:...` at _dmarc.<domain>, read the reports, then move to p=quarantine or p=reject."
);
rule!(
    MULTIPLE,
    "dmarc.multiple_records",
    Error,
    "More than one DMARC record is published",
    "RFC 9989 §4.8 (no policy applies)",
    "Keep exactly one `v=DMARC1` TXT record at _dmarc.<domain>."
);
rule!(
    SYNTAX,
    "dmarc.syntax",
    Error,
    "The DMARC record is malformed",
    "RFC 9989 §4.7",
    "Start with `v=DMARC1;` and use only the values the tag allows (see the evidence)."
);
rule!(
    UNKNOWN_TAG,
    "dmarc.unknown_tag",
    Warning,
    "The DMARC record has a tag DMARC does not define",
    "RFC 9989 §4.7 (unknown tags are ignored)",
    "Remove or correct the tag; a misspelled tag (`rau=`) silently does nothing."
);
rule!(
    POLICY_NONE,
    "dmarc.policy_none",
    Warning,
    "The DMARC policy is `none`: spoofed mail is still delivered",
    "RFC 9989 §4.7; Gmail and Yahoo sender requirements (2024)",
    "Once the aggregate reports show your mail passes, move to p=quarantine, then p=reject."
);
rule!(
    SUBDOMAIN_NONE,
    "dmarc.subdomain_policy_none",
    Warning,
    "Subdomains (sp=) or non-existent subdomains (np=) have policy `none`",
    "RFC 9989 §4.7",
    "Set sp= and np= to quarantine or reject (or drop them to inherit p=)."
);
rule!(
    TESTING,
    "dmarc.testing_mode",
    Warning,
    "The DMARC policy is in testing mode (`t=y`)",
    "RFC 9989 §4.7",
    "Remove t=y once reports show your mail passes; receivers apply one step less than the stated policy."
);
rule!(
    DEPRECATED,
    "dmarc.deprecated_tag",
    Info,
    "The record uses a tag RFC 9989 removed",
    "RFC 9989 Appendix A.6 (pct, rf, ri removed)",
    "Remove the tag; DMARCbis receivers ignore it (use t=y instead of pct for a gradual rollout)."
);
rule!(
    PARTIAL,
    "dmarc.partial_enforcement",
    Warning,
    "pct= below 100 applies the policy to part of the mail only",
    "RFC 7489 §6.3; RFC 9989 Appendix A.6",
    "Set pct=100 (or remove it); DMARCbis receivers treat any pct below 100 as t=y."
);
rule!(
    PSD,
    "dmarc.psd_flag",
    Warning,
    "The record declares the domain a public suffix (`psd=y`)",
    "RFC 9989 §4.7",
    "Remove psd=y unless this domain really is a public suffix operator's domain."
);
rule!(
    NO_RUA,
    "dmarc.no_reports",
    Info,
    "No aggregate report address (rua=) is set",
    "RFC 9989 §4.7",
    "Add rua=mailto:... to learn who sends as your domain and whether it passes."
);
rule!(
    URI_INVALID,
    "dmarc.report_uri_invalid",
    Error,
    "A report address (rua=/ruf=) is not a valid mailto: URI",
    "RFC 9989 §4.7; RFC 9990 §2",
    "Write each address as mailto:user@domain, separated by commas."
);
rule!(
    UNAUTHORISED,
    "dmarc.report_destination_unauthorised",
    Error,
    "An external report destination has not authorised your reports",
    "RFC 9990 §2.1 (RFC 7489 §7.1)",
    "Ask the destination to publish `v=DMARC1` at <your domain>._report._dmarc.<destination>, or send reports to your own domain."
);
rule!(
    INHERITED,
    "dmarc.inherited",
    Info,
    "The policy comes from a parent domain's record",
    "RFC 9989 §4.10 (DNS tree walk)",
    "Nothing to do if the parent's sp=/p= is what you want; publish _dmarc.<domain> to set a policy of its own."
);
rule!(
    BULK_UNALIGNED,
    "dmarc.bulk_sender_unaligned",
    Error,
    "A bulk sender's mail can pass neither aligned SPF nor aligned DKIM",
    "Gmail and Yahoo bulk-sender requirements (2024): DMARC with aligned SPF or DKIM",
    "Sign with a DKIM key of this domain (d=<domain>) or make every sending IP pass SPF for it."
);
rule!(
    BULK_NO_DMARC,
    "dmarc.bulk_sender_without_policy",
    Error,
    "A domain that sends in bulk has no DMARC policy",
    "Gmail and Yahoo bulk-sender requirements (2024)",
    "Publish a DMARC record (p=none at least) before sending more than 5,000 messages a day to Gmail or Yahoo."
);

pub const RULES: &[&Rule] = &[
    &MISSING,
    &MULTIPLE,
    &SYNTAX,
    &UNKNOWN_TAG,
    &POLICY_NONE,
    &SUBDOMAIN_NONE,
    &TESTING,
    &DEPRECATED,
    &PARTIAL,
    &PSD,
    &NO_RUA,
    &URI_INVALID,
    &UNAUTHORISED,
    &INHERITED,
    &BULK_UNALIGNED,
    &BULK_NO_DMARC,
];

/// Gmail's and Yahoo's bulk-sender threshold: messages a day to their users.
pub const BULK_DAILY_VOLUME: u64 = 5000;

/// The policy that applies to the audited domain, for BIMI's precondition and the bulk-sender rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// False when the policy could not be determined (lookups pending or failed).
    pub known: bool,
    pub found: bool,
    /// `none`, `quarantine` or `reject` as applied to this domain (sp= when inherited).
    pub policy: String,
    pub full_enforcement: bool,
}

const KNOWN: &[&str] = &[
    "v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo",
];
const REMOVED: &[&str] = &["pct", "rf", "ri"];

pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) -> Applied {
    // The tree walk: the domain itself, then its parents, nearest first.
    let mut candidates = vec![domain.to_string()];
    candidates.extend(parents(domain));
    for (i, at) in candidates.iter().take(8).enumerate() {
        let name = format!("_dmarc.{at}");
        let records = match dns.txt(&name) {
            Lookup::Pending => return Applied::default(),
            Lookup::Failed(why) => {
                not_tested.push(NotTested {
                    area: "dmarc".into(),
                    subject: at.clone(),
                    reason: format!("TXT lookup of {name} failed: {why}"),
                });
                return Applied::default();
            }
            Lookup::Empty { .. } => Vec::new(),
            Lookup::Found(r) => txt_strings(r),
        };
        let dmarc: Vec<_> = records
            .into_iter()
            .filter(|r| {
                let t = r.text.trim_start();
                t.len() >= 8 && t.as_bytes()[..8].eq_ignore_ascii_case(b"v=DMARC1")
            })
            .collect();
        match dmarc.len() {
            0 => continue,
            1 => {
                if i > 0 {
                    findings.push(Finding::new(
                        &INHERITED,
                        domain,
                        format!(
                            "no record at _dmarc.{domain}; applying \"{}\" from {name}",
                            dmarc[0].text
                        ),
                    ));
                }
                return judge(dns, at, i > 0, &dmarc[0].text, findings, not_tested);
            }
            n => {
                findings.push(Finding::new(
                    &MULTIPLE,
                    at,
                    format!("{n} DMARC records at {name}"),
                ));
                return Applied {
                    known: true,
                    found: true,
                    ..Applied::default()
                };
            }
        }
    }
    findings.push(Finding::new(
        &MISSING,
        domain,
        format!("no v=DMARC1 record at _dmarc.{domain} or its parent domains"),
    ));
    Applied {
        known: true,
        ..Applied::default()
    }
}

fn judge(
    dns: &mut Resolver<'_>,
    at: &str,
    inherited: bool,
    text: &str,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) -> Applied {
    let applied_fallback = Applied {
        known: true,
        found: true,
        policy: "none".into(),
        full_enforcement: false,
    };
    let tags = match crate::tags::parse(text) {
        Ok(t) => t,
        Err(why) => {
            findings.push(Finding::new(&SYNTAX, at, format!("{why}: \"{text}\"")));
            return applied_fallback;
        }
    };
    let get = |n: &str| crate::tags::get(&tags, n);
    if tags[0] != ("v".to_string(), "DMARC1".to_string()) {
        findings.push(Finding::new(
            &SYNTAX,
            at,
            format!("the first tag must be v=DMARC1: \"{text}\""),
        ));
        return applied_fallback;
    }
    let mut syntax_errors = Vec::new();
    for (name, value) in &tags {
        let ok = match name.as_str() {
            "p" | "sp" | "np" => matches!(value.as_str(), "none" | "quarantine" | "reject"),
            "psd" => matches!(value.as_str(), "y" | "n" | "u"),
            "t" => matches!(value.as_str(), "y" | "n"),
            "adkim" | "aspf" => matches!(value.as_str(), "r" | "s"),
            "fo" => value
                .split(':')
                .all(|o| matches!(o.trim(), "0" | "1" | "d" | "s")),
            "pct" => value.parse::<u8>().is_ok_and(|p| p <= 100),
            "ri" => value.parse::<u32>().is_ok(),
            _ => true,
        };
        if !ok {
            syntax_errors.push(format!("{name}={value}"));
        }
        if REMOVED.contains(&name.as_str()) {
            findings.push(Finding::new(
                &DEPRECATED,
                at,
                format!("{name}={value} in \"{text}\""),
            ));
        } else if !KNOWN.contains(&name.as_str()) {
            findings.push(Finding::new(
                &UNKNOWN_TAG,
                at,
                format!("{name}={value} in \"{text}\""),
            ));
        }
    }
    if !syntax_errors.is_empty() {
        findings.push(Finding::new(
            &SYNTAX,
            at,
            format!("invalid value {}: \"{text}\"", syntax_errors.join(", ")),
        ));
    }
    // RFC 9989: a record without a valid p= is treated as p=none.
    let p = get("p")
        .filter(|p| matches!(*p, "none" | "quarantine" | "reject"))
        .unwrap_or("none");
    let sp = get("sp").filter(|p| matches!(*p, "none" | "quarantine" | "reject"));
    let np = get("np").filter(|p| matches!(*p, "none" | "quarantine" | "reject"));
    let policy = if inherited { sp.unwrap_or(p) } else { p };
    if policy == "none" {
        let why = if get("p").is_none() {
            "no p= tag, so p=none applies"
        } else {
            "p=none"
        };
        findings.push(Finding::new(&POLICY_NONE, at, format!("{why}: \"{text}\"")));
    } else if sp == Some("none") || np == Some("none") {
        findings.push(Finding::new(&SUBDOMAIN_NONE, at, format!("\"{text}\"")));
    }
    let testing = get("t") == Some("y");
    if testing {
        findings.push(Finding::new(&TESTING, at, format!("\"{text}\"")));
    }
    let pct = get("pct").and_then(|p| p.parse::<u8>().ok()).unwrap_or(100);
    if pct < 100 {
        findings.push(Finding::new(&PARTIAL, at, format!("pct={pct}: \"{text}\"")));
    }
    if get("psd") == Some("y") {
        findings.push(Finding::new(&PSD, at, format!("\"{text}\"")));
    }
    match get("rua") {
        None | Some("") => findings.push(Finding::new(&NO_RUA, at, format!("\"{text}\""))),
        Some(rua) => report_uris(dns, at, "rua", rua, findings, not_tested),
    }
    if let Some(ruf) = get("ruf").filter(|r| !r.is_empty()) {
        report_uris(dns, at, "ruf", ruf, findings, not_tested);
    }
    Applied {
        known: true,
        found: true,
        policy: policy.to_string(),
        full_enforcement: policy != "none" && pct == 100 && !testing,
    }
}

/// Checks each `mailto:` URI and, for destinations outside the domain's organisation, the destination's
/// authorisation record.
fn report_uris(
    dns: &mut Resolver<'_>,
    at: &str,
    tag: &str,
    value: &str,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    for uri in value.split(',').map(str::trim) {
        let address = uri
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("mailto:"))
            .map(|_| &uri[7..]);
        // A size limit may follow `!` (`mailto:a@b.example!10m`).
        let address = address.map(|a| a.split('!').next().unwrap_or_default());
        let dest = address
            .and_then(|a| a.rsplit_once('@'))
            .filter(|(local, host)| !local.is_empty() && crate::names::is_host_name(host));
        let Some((_, dest)) = dest else {
            findings.push(Finding::new(&URI_INVALID, at, format!("{tag}: `{uri}`")));
            continue;
        };
        let dest = crate::dns::normalize(dest);
        if organizational_domain(&dest) == organizational_domain(at) {
            continue;
        }
        let name = format!("{at}._report._dmarc.{dest}");
        match dns.txt(&name) {
            Lookup::Pending => {}
            Lookup::Failed(why) => not_tested.push(NotTested {
                area: "dmarc".into(),
                subject: name,
                reason: format!("TXT lookup failed: {why}"),
            }),
            Lookup::Empty { .. } => findings.push(Finding::new(
                &UNAUTHORISED,
                at,
                format!("{tag} sends to {dest}, but {name} has no v=DMARC1 record"),
            )),
            Lookup::Found(r) => {
                if !txt_strings(r)
                    .iter()
                    .any(|t| t.text.trim_start().starts_with("v=DMARC1"))
                {
                    findings.push(Finding::new(
                        &UNAUTHORISED,
                        at,
                        format!("{tag} sends to {dest}, but {name} has no v=DMARC1 record"),
                    ));
                }
            }
        }
    }
}
