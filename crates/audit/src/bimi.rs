//! BIMI (draft-brand-indicators-for-message-identification, the scheme Gmail, Yahoo and Apple Mail use): the
//! `default._bimi` TXT record and its precondition, an enforcing DMARC policy.

use crate::dmarc::Applied;
use crate::dns::{Lookup, Resolver, txt_strings};
use crate::finding::{Finding, NotTested, Rule};
use crate::spf::rule;

rule!(
    MULTIPLE,
    "bimi.multiple_records",
    Error,
    "More than one BIMI record is published",
    "BIMI draft §4.2",
    "Keep one `v=BIMI1` record at default._bimi.<domain>."
);
rule!(
    SYNTAX,
    "bimi.syntax",
    Error,
    "The BIMI record is malformed",
    "BIMI draft §4.2",
    "Write `v=BIMI1; l=https://.../logo.svg; a=https://.../vmc.pem`."
);
rule!(
    NOT_HTTPS,
    "bimi.location_not_https",
    Error,
    "The BIMI logo or certificate location is not an https: URL",
    "BIMI draft §4.2",
    "Serve the SVG logo (l=) and the mark certificate (a=) over https."
);
rule!(
    DMARC_NOT_ENFORCED,
    "bimi.dmarc_not_enforced",
    Error,
    "BIMI needs DMARC at quarantine or reject for all mail",
    "BIMI draft §3.1; Gmail BIMI requirements",
    "Set p=quarantine or p=reject (no pct below 100, no t=y, no sp=none); mailbox providers show no logo otherwise."
);

pub const RULES: &[&Rule] = &[&MULTIPLE, &SYNTAX, &NOT_HTTPS, &DMARC_NOT_ENFORCED];

pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    dmarc: &Applied,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    let name = format!("default._bimi.{domain}");
    let records = match dns.txt(&name) {
        Lookup::Pending => return,
        Lookup::Failed(why) => {
            not_tested.push(NotTested {
                area: "bimi".into(),
                subject: domain.into(),
                reason: format!("TXT lookup of {name} failed: {why}"),
            });
            return;
        }
        Lookup::Empty { .. } => return,
        Lookup::Found(r) => txt_strings(r),
    };
    let bimi: Vec<_> = records
        .iter()
        .filter(|r| r.text.starts_with("v=BIMI1"))
        .collect();
    let text = match bimi.as_slice() {
        [] => return,
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
        Ok(t) if t[0] == ("v".into(), "BIMI1".into()) => t,
        Ok(_) => {
            findings.push(Finding::new(
                &SYNTAX,
                domain,
                format!("v=BIMI1 must come first: \"{text}\""),
            ));
            return;
        }
        Err(why) => {
            findings.push(Finding::new(&SYNTAX, domain, format!("{why}: \"{text}\"")));
            return;
        }
    };
    let l = crate::tags::get(&tags, "l");
    if l.is_none() {
        findings.push(Finding::new(
            &SYNTAX,
            domain,
            format!("no l= tag: \"{text}\""),
        ));
    }
    for (tag, value) in [("l", l), ("a", crate::tags::get(&tags, "a"))] {
        if let Some(v) = value.filter(|v| !v.is_empty())
            && !v.starts_with("https://")
        {
            findings.push(Finding::new(&NOT_HTTPS, domain, format!("{tag}={v}")));
        }
    }
    // An empty l= declines BIMI; the DMARC precondition matters only for a record that asks for a logo.
    if !dmarc.known {
        return;
    }
    if l.is_some_and(|l| !l.is_empty()) && dmarc.found && !dmarc.full_enforcement {
        findings.push(Finding::new(
            &DMARC_NOT_ENFORCED,
            domain,
            format!(
                "DMARC policy applied to {domain}: {} (full enforcement: no)",
                dmarc.policy
            ),
        ));
    } else if l.is_some_and(|l| !l.is_empty()) && !dmarc.found {
        findings.push(Finding::new(
            &DMARC_NOT_ENFORCED,
            domain,
            format!("{domain} has no DMARC policy"),
        ));
    }
}
