//! SMTP TLS reporting (RFC 8460): the `_smtp._tls` TXT record.

use crate::dns::{Lookup, Resolver, txt_strings};
use crate::finding::{Finding, NotTested, Rule};
use crate::spf::rule;

rule!(
    MISSING,
    "tls_rpt.missing",
    Info,
    "The domain asks for no SMTP TLS reports",
    "RFC 8460 §3",
    "Publish `v=TLSRPTv1; rua=mailto:...` at _smtp._tls.<domain> to learn when senders cannot use TLS to you."
);
rule!(
    MISSING_WITH_STS,
    "tls_rpt.missing_with_mta_sts",
    Warning,
    "MTA-STS is deployed without TLS reporting",
    "RFC 8460 §1; RFC 8461 §1",
    "Publish `v=TLSRPTv1; rua=mailto:...` at _smtp._tls.<domain>: without reports, an MTA-STS failure goes unnoticed."
);
rule!(
    MULTIPLE,
    "tls_rpt.multiple_records",
    Error,
    "More than one TLS-RPT record is published",
    "RFC 8460 §3",
    "Keep one `v=TLSRPTv1` record at _smtp._tls.<domain>."
);
rule!(
    SYNTAX,
    "tls_rpt.syntax",
    Error,
    "The TLS-RPT record is malformed",
    "RFC 8460 §3",
    "Write `v=TLSRPTv1; rua=mailto:reports@example.com` (several URIs separated by commas)."
);
rule!(
    RUA_INVALID,
    "tls_rpt.rua_invalid",
    Error,
    "A TLS-RPT report address is not a mailto: or https: URI",
    "RFC 8460 §3",
    "Use mailto:user@domain or https://host/path for each rua= entry."
);

pub const RULES: &[&Rule] = &[
    &MISSING,
    &MISSING_WITH_STS,
    &MULTIPLE,
    &SYNTAX,
    &RUA_INVALID,
];

pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    mta_sts: bool,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    let name = format!("_smtp._tls.{domain}");
    let records = match dns.txt(&name) {
        Lookup::Pending => return,
        Lookup::Failed(why) => {
            not_tested.push(NotTested {
                area: "tls_rpt".into(),
                subject: domain.into(),
                reason: format!("TXT lookup of {name} failed: {why}"),
            });
            return;
        }
        Lookup::Empty { .. } => Vec::new(),
        Lookup::Found(r) => txt_strings(r),
    };
    let rpt: Vec<_> = records
        .iter()
        .filter(|r| r.text.starts_with("v=TLSRPTv1"))
        .collect();
    let text = match rpt.as_slice() {
        [] => {
            let rule = if mta_sts { &MISSING_WITH_STS } else { &MISSING };
            findings.push(Finding::new(
                rule,
                domain,
                format!("no v=TLSRPTv1 record at {name}"),
            ));
            return;
        }
        [one] => &one.text,
        many => {
            findings.push(Finding::new(
                &MULTIPLE,
                domain,
                format!("{} records at {name}", many.len()),
            ));
            return;
        }
    };
    let tags = match crate::tags::parse(text) {
        Ok(t) if t[0] == ("v".into(), "TLSRPTv1".into()) => t,
        Ok(_) => {
            findings.push(Finding::new(
                &SYNTAX,
                domain,
                format!("v=TLSRPTv1 must come first: \"{text}\""),
            ));
            return;
        }
        Err(why) => {
            findings.push(Finding::new(&SYNTAX, domain, format!("{why}: \"{text}\"")));
            return;
        }
    };
    let Some(rua) = crate::tags::get(&tags, "rua") else {
        findings.push(Finding::new(
            &SYNTAX,
            domain,
            format!("no rua= tag: \"{text}\""),
        ));
        return;
    };
    for uri in rua.split(',').map(str::trim) {
        let ok = if let Some(addr) = uri.strip_prefix("mailto:") {
            addr.rsplit_once('@')
                .is_some_and(|(l, h)| !l.is_empty() && crate::names::is_host_name(h))
        } else if let Some(rest) = uri.strip_prefix("https://") {
            crate::names::is_host_name(rest.split(['/', ':']).next().unwrap_or_default())
        } else {
            false
        };
        if !ok {
            findings.push(Finding::new(
                &RUA_INVALID,
                domain,
                format!("`{uri}` in \"{text}\""),
            ));
        }
    }
}
