//! SPF (RFC 7208): the record itself, everything it pulls in through `include` and `redirect`, and the verdict for
//! each sending IP (computed by the worker with mail-auth and handed in).

use crate::dns::{Lookup, Query, RecordType, Resolver, TxtRecord, txt_strings};
use crate::finding::{Finding, NotTested, Rule};
use crate::names::is_host_name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

macro_rules! rule {
    ($name:ident, $code:literal, $sev:ident, $title:literal, $ref:literal, $fix:literal) => {
        pub const $name: Rule = Rule {
            code: $code,
            severity: $crate::finding::Severity::$sev,
            title: $title,
            reference: $ref,
            remediation: $fix,
        };
    };
}
pub(crate) use rule;

rule!(
    MISSING,
    "spf.missing",
    Error,
    "The domain publishes no SPF record",
    "RFC 7208 §4.5; Gmail and Yahoo sender requirements (2024)",
    "Publish one TXT record `v=spf1 ... -all` listing the servers that send mail for this domain."
);
rule!(
    MULTIPLE,
    "spf.multiple_records",
    Error,
    "The domain publishes more than one SPF record",
    "RFC 7208 §3.2, §4.5 (permerror)",
    "Merge the records into a single `v=spf1` TXT record; receivers treat several as a permanent error."
);
rule!(
    SYNTAX,
    "spf.syntax",
    Error,
    "The SPF record has a syntax error",
    "RFC 7208 §4.6, §12 (permerror)",
    "Correct the term quoted in the evidence; one bad term makes the whole record fail."
);
rule!(
    UNKNOWN_MECHANISM,
    "spf.unknown_mechanism",
    Error,
    "The SPF record uses an unknown mechanism",
    "RFC 7208 §4.6.1, §5 (permerror)",
    "Use only all, include, a, mx, ptr, ip4, ip6 and exists; a typo such as `ipv4:` makes the record fail."
);
rule!(
    UNKNOWN_MODIFIER,
    "spf.unknown_modifier",
    Info,
    "The SPF record has a modifier receivers ignore",
    "RFC 7208 §6",
    "Remove the modifier unless a receiver you care about documents it; only redirect= and exp= have meaning."
);
rule!(
    DUPLICATE_MODIFIER,
    "spf.duplicate_modifier",
    Error,
    "The SPF record repeats redirect= or exp=",
    "RFC 7208 §6 (permerror)",
    "Keep one redirect= and at most one exp=."
);
rule!(
    TOO_MANY_LOOKUPS,
    "spf.too_many_lookups",
    Error,
    "Evaluating SPF needs more than 10 DNS lookups",
    "RFC 7208 §4.6.4 (permerror)",
    "Flatten includes, replace a/mx with ip4/ip6 ranges, or drop includes of services you no longer use, until the count is 10 or less."
);
rule!(
    TOO_MANY_VOID_LOOKUPS,
    "spf.too_many_void_lookups",
    Error,
    "SPF evaluation meets more than 2 names that do not exist",
    "RFC 7208 §4.6.4",
    "Remove a, mx, include and exists terms that point at names without records."
);
rule!(
    INCLUDE_LOOP,
    "spf.include_loop",
    Error,
    "SPF includes or redirects form a loop",
    "RFC 7208 §5.2, §6.1 (permerror)",
    "Remove the include or redirect that leads back to a record already on the chain."
);
rule!(
    INCLUDE_NO_RECORD,
    "spf.include_without_record",
    Error,
    "An SPF include or redirect points at a domain without an SPF record",
    "RFC 7208 §5.2, §6.1 (permerror)",
    "Fix the included domain's name, or remove the include if the service is gone."
);
rule!(
    PASS_ALL,
    "spf.pass_all",
    Error,
    "SPF authorises every server on the internet (`+all`)",
    "RFC 7208 §5.1",
    "End the record with `-all` (or `~all` while testing) so only the listed servers pass."
);
rule!(
    NEUTRAL_ALL,
    "spf.neutral_all",
    Warning,
    "SPF ends with `?all`, which asserts nothing",
    "RFC 7208 §2.6.2, §5.1",
    "End the record with `-all` or `~all`."
);
rule!(
    NO_ALL,
    "spf.no_all",
    Warning,
    "SPF has neither an `all` mechanism nor a redirect",
    "RFC 7208 §4.7",
    "End the record with `-all` or `~all`; without it unlisted servers get a neutral result."
);
rule!(
    PTR_MECHANISM,
    "spf.ptr_mechanism",
    Warning,
    "SPF uses the `ptr` mechanism",
    "RFC 7208 §5.5 (SHOULD NOT be used)",
    "Replace ptr with ip4/ip6 or a mechanisms; ptr is slow, unreliable and some receivers skip it."
);
rule!(
    RECORD_TOO_LONG,
    "spf.record_too_long",
    Warning,
    "The SPF record is longer than 512 bytes",
    "RFC 7208 §3.4",
    "Shorten the record (move ranges into an included record) so the answer fits a 512-byte UDP response."
);
rule!(
    STRING_TOO_LONG,
    "spf.string_too_long",
    Error,
    "A TXT string of the SPF record is longer than 255 bytes",
    "RFC 7208 §3.3; RFC 1035 §3.3",
    "Split the record into several quoted strings of at most 255 bytes each."
);
rule!(
    RESOLVES_TO_NOTHING,
    "spf.mechanism_resolves_to_nothing",
    Warning,
    "An `a` or `mx` mechanism names a host without addresses",
    "RFC 7208 §4.6.4, §5.3, §5.4",
    "Remove the mechanism or publish the missing records; it authorises nothing and counts as a void lookup."
);
rule!(
    MX_TOO_MANY,
    "spf.mx_too_many_hosts",
    Error,
    "An `mx` mechanism meets more than 10 MX hosts",
    "RFC 7208 §4.6.4 (permerror)",
    "List the outbound servers with ip4/ip6 instead of `mx`."
);
rule!(
    IP_NOT_AUTHORISED,
    "spf.ip_not_authorised",
    Error,
    "A sending IP does not pass SPF for the domain",
    "RFC 7208 §2.6; Gmail and Yahoo sender requirements (2024)",
    "Add the address (ip4:/ip6:) or the include of the service that sends from it to the SPF record."
);

/// Every SPF rule, for the catalog.
pub const RULES: &[&Rule] = &[
    &MISSING,
    &MULTIPLE,
    &SYNTAX,
    &UNKNOWN_MECHANISM,
    &UNKNOWN_MODIFIER,
    &DUPLICATE_MODIFIER,
    &TOO_MANY_LOOKUPS,
    &TOO_MANY_VOID_LOOKUPS,
    &INCLUDE_LOOP,
    &INCLUDE_NO_RECORD,
    &PASS_ALL,
    &NEUTRAL_ALL,
    &NO_ALL,
    &PTR_MECHANISM,
    &RECORD_TOO_LONG,
    &STRING_TOO_LONG,
    &RESOLVES_TO_NOTHING,
    &MX_TOO_MANY,
    &IP_NOT_AUTHORISED,
];

/// RFC 7208's limit on DNS-querying terms.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208's recommended limit on void lookups.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// Evaluation of very large include trees stops here: far past the limit, more counting tells nothing new.
const WALK_BUDGET: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A(Option<String>),
    Mx(Option<String>),
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Mechanism(Qualifier, Mechanism),
    Redirect(String),
    Explanation(String),
    UnknownModifier(String),
}

/// A term that makes the record invalid, quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermError {
    Syntax { term: String, why: String },
    UnknownMechanism(String),
}

/// True for the TXT records that are SPF records: `v=spf1` alone or followed by a space.
pub fn is_spf(text: &str) -> bool {
    let t = text.as_bytes();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"v=spf1") && (t.len() == 6 || t[6] == b' ')
}

/// Parses the terms after `v=spf1`. Never fails as a whole: bad terms come back as [`TermError`]s beside the good.
pub fn parse(record: &str) -> (Vec<Term>, Vec<TermError>) {
    let mut terms = Vec::new();
    let mut errors = Vec::new();
    for raw in record.split(' ').skip(1).filter(|t| !t.is_empty()) {
        match parse_term(raw) {
            Ok(t) => terms.push(t),
            Err(e) => errors.push(e),
        }
    }
    (terms, errors)
}

fn syntax(term: &str, why: impl Into<String>) -> TermError {
    TermError::Syntax {
        term: term.to_string(),
        why: why.into(),
    }
}

fn domain_spec(term: &str, spec: &str) -> Result<String, TermError> {
    // Macros (`%{i}`) expand per message; they are checked for shape only.
    if spec.contains('%') {
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('{') => {
                        if !chars.by_ref().any(|c| c == '}') {
                            return Err(syntax(term, "unterminated macro"));
                        }
                    }
                    Some('%' | '_' | '-') => {}
                    _ => return Err(syntax(term, "`%` must start a macro or be written `%%`")),
                }
            }
        }
        return Ok(spec.to_ascii_lowercase());
    }
    if is_host_name(spec) {
        Ok(crate::dns::normalize(spec))
    } else {
        Err(syntax(term, format!("`{spec}` is not a domain name")))
    }
}

fn cidr(term: &str, s: &str, max: u8) -> Result<u8, TermError> {
    match s.parse::<u8>() {
        Ok(n) if n <= max && !s.starts_with('0') || s == "0" => Ok(n.min(max)),
        _ => Err(syntax(
            term,
            format!("`/{s}` is not a prefix length of 0 to {max}"),
        )),
    }
}

/// `a`/`mx` targets: `[:domain][/v4][//v6]`; the prefix lengths only matter when matching, so they are checked
/// and dropped.
fn host_with_cidr(term: &str, rest: &str) -> Result<Option<String>, TermError> {
    let (host_part, cidr_part) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    if let Some(c) = cidr_part {
        let (v4, v6) = match c.strip_prefix("//") {
            Some(v6) => (None, Some(v6)),
            None => {
                let c = &c[1..];
                match c.split_once("//") {
                    Some((a, b)) => (Some(a), Some(b)),
                    None => (Some(c), None),
                }
            }
        };
        if let Some(v4) = v4 {
            cidr(term, v4, 32)?;
        }
        if let Some(v6) = v6 {
            cidr(term, v6, 128)?;
        }
    }
    match host_part.strip_prefix(':') {
        Some(h) => Ok(Some(domain_spec(term, h)?)),
        None if host_part.is_empty() => Ok(None),
        None => Err(syntax(term, "expected `:` before the domain")),
    }
}

fn parse_term(raw: &str) -> Result<Term, TermError> {
    // Modifiers are `name=value`; the name is letters, digits, `-`, `_`, `.`.
    if let Some((name, value)) = raw.split_once('=')
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.contains(':')
    {
        return match name.to_ascii_lowercase().as_str() {
            "redirect" => Ok(Term::Redirect(domain_spec(raw, value)?)),
            "exp" => Ok(Term::Explanation(domain_spec(raw, value)?)),
            _ => Ok(Term::UnknownModifier(raw.to_string())),
        };
    }
    let (qualifier, body) = match raw.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &raw[1..]),
        Some(b'-') => (Qualifier::Fail, &raw[1..]),
        Some(b'~') => (Qualifier::SoftFail, &raw[1..]),
        Some(b'?') => (Qualifier::Neutral, &raw[1..]),
        _ => (Qualifier::Pass, raw),
    };
    let name_end = body.find([':', '/']).unwrap_or(body.len());
    let name = body[..name_end].to_ascii_lowercase();
    let rest = &body[name_end..];
    let value = rest.strip_prefix(':');
    let mechanism = match name.as_str() {
        "all" if rest.is_empty() => Mechanism::All,
        "all" => return Err(syntax(raw, "`all` takes no argument")),
        "include" => Mechanism::Include(domain_spec(
            raw,
            value.ok_or_else(|| syntax(raw, "include needs `:domain`"))?,
        )?),
        "exists" => Mechanism::Exists(domain_spec(
            raw,
            value.ok_or_else(|| syntax(raw, "exists needs `:domain`"))?,
        )?),
        "a" => Mechanism::A(host_with_cidr(raw, rest)?),
        "mx" => Mechanism::Mx(host_with_cidr(raw, rest)?),
        "ptr" => match value {
            Some(d) => Mechanism::Ptr(Some(domain_spec(raw, d)?)),
            None if rest.is_empty() => Mechanism::Ptr(None),
            None => return Err(syntax(raw, "ptr takes only `:domain`")),
        },
        "ip4" => {
            let v = value.ok_or_else(|| syntax(raw, "ip4 needs `:address`"))?;
            let (addr, len) = v.split_once('/').map_or((v, None), |(a, l)| (a, Some(l)));
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| syntax(raw, format!("`{addr}` is not an IPv4 address")))?;
            Mechanism::Ip4(addr, len.map_or(Ok(32), |l| cidr(raw, l, 32))?)
        }
        "ip6" => {
            let v = value.ok_or_else(|| syntax(raw, "ip6 needs `:address`"))?;
            let (addr, len) = v.split_once('/').map_or((v, None), |(a, l)| (a, Some(l)));
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| syntax(raw, format!("`{addr}` is not an IPv6 address")))?;
            Mechanism::Ip6(addr, len.map_or(Ok(128), |l| cidr(raw, l, 128))?)
        }
        _ => return Err(TermError::UnknownMechanism(raw.to_string())),
    };
    Ok(Term::Mechanism(qualifier, mechanism))
}

/// What the SPF walk learned, for other areas (DMARC's alignment rule) and tests.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub record: Option<String>,
    pub lookups: u32,
    pub void_lookups: u32,
    /// Every DNS-querying term met, in evaluation order: `include:_spf.example.net (from example.com)`.
    pub chain: Vec<String>,
}

struct Walk<'r, 'a> {
    dns: &'r mut Resolver<'a>,
    findings: Vec<Finding>,
    not_tested: Vec<NotTested>,
    summary: Summary,
    /// Domains whose record is being evaluated, outermost first: a repeat is a loop.
    path: Vec<String>,
    pending: bool,
}

/// SPF checks of `domain`. `verdicts` are mail-auth's results for the sending IPs (empty before they are known).
pub fn check(
    dns: &mut Resolver<'_>,
    domain: &str,
    verdicts: &[(IpAddr, String)],
) -> (Vec<Finding>, Vec<NotTested>, Summary) {
    let mut w = Walk {
        dns,
        findings: Vec::new(),
        not_tested: Vec::new(),
        summary: Summary::default(),
        path: Vec::new(),
        pending: false,
    };
    let top = w.record_of(domain, None);
    if let Some(record) = top {
        w.summary.record = Some(record.text.clone());
        w.evaluate(domain, &record, true);
        if !w.pending {
            if w.summary.lookups > MAX_LOOKUPS {
                let evidence = format!(
                    "{} DNS-querying terms (limit {MAX_LOOKUPS}): {}",
                    w.summary.lookups,
                    w.summary.chain.join(" → ")
                );
                w.findings
                    .push(Finding::new(&TOO_MANY_LOOKUPS, domain, evidence));
            }
            if w.summary.void_lookups > MAX_VOID_LOOKUPS {
                let evidence = format!(
                    "{} lookups returned no records (limit {MAX_VOID_LOOKUPS})",
                    w.summary.void_lookups
                );
                w.findings
                    .push(Finding::new(&TOO_MANY_VOID_LOOKUPS, domain, evidence));
            }
        }
        for (ip, verdict) in verdicts {
            match verdict.as_str() {
                "pass" => {}
                "temperror" => w.not_tested.push(NotTested {
                    area: "spf".into(),
                    subject: ip.to_string(),
                    reason: format!("SPF evaluation for {domain} hit a temporary DNS error"),
                }),
                other => w.findings.push(Finding::new(
                    &IP_NOT_AUTHORISED,
                    ip.to_string(),
                    format!(
                        "SPF result for {domain} from {ip}: {other}; record: {}",
                        record.text
                    ),
                )),
            }
        }
    }
    (w.findings, w.not_tested, w.summary)
}

impl Walk<'_, '_> {
    /// The single SPF record of `domain`, with the findings about its presence. `via` names the include or redirect
    /// that led here (None for the audited domain itself).
    fn record_of(&mut self, domain: &str, via: Option<&str>) -> Option<TxtRecord> {
        let records = match self.dns.txt(domain) {
            Lookup::Pending => {
                self.pending = true;
                return None;
            }
            Lookup::Failed(why) => {
                self.not_tested.push(NotTested {
                    area: "spf".into(),
                    subject: domain.to_string(),
                    reason: format!("TXT lookup failed: {why}"),
                });
                return None;
            }
            Lookup::Empty { .. } => Vec::new(),
            Lookup::Found(r) => txt_strings(r),
        };
        let spf: Vec<TxtRecord> = records.into_iter().filter(|r| is_spf(&r.text)).collect();
        match (spf.len(), via) {
            (0, None) => {
                self.findings.push(Finding::new(
                    &MISSING,
                    domain,
                    format!("no TXT record starting with v=spf1 at {domain}"),
                ));
                None
            }
            (0, Some(via)) => {
                self.findings.push(Finding::new(
                    &INCLUDE_NO_RECORD,
                    domain,
                    format!("{via}: no TXT record starting with v=spf1 at {domain}"),
                ));
                None
            }
            (1, _) => spf.into_iter().next(),
            (n, _) => {
                let texts: Vec<String> = spf.iter().map(|r| format!("\"{}\"", r.text)).collect();
                self.findings.push(Finding::new(
                    &MULTIPLE,
                    domain,
                    format!("{n} SPF records: {}", texts.join(", ")),
                ));
                None
            }
        }
    }

    fn count(&mut self, term: String, from: &str) {
        self.summary.lookups += 1;
        self.summary.chain.push(format!("{term} (in {from})"));
    }

    fn void_or_pending(&mut self, q: Query) -> Option<bool> {
        match self.dns.lookup(q) {
            Lookup::Pending => {
                self.pending = true;
                None
            }
            Lookup::Failed(_) => None,
            Lookup::Empty { .. } => Some(true),
            Lookup::Found(_) => Some(false),
        }
    }

    fn evaluate(&mut self, domain: &str, record: &TxtRecord, top: bool) {
        self.path.push(domain.to_string());
        let text = &record.text;
        if record.longest_string > 255 {
            self.findings.push(Finding::new(
                &STRING_TOO_LONG,
                domain,
                format!("a string of {} bytes in \"{text}\"", record.longest_string),
            ));
        }
        if record.bytes > 512 {
            self.findings.push(Finding::new(
                &RECORD_TOO_LONG,
                domain,
                format!("{} bytes: \"{text}\"", record.bytes),
            ));
        }
        let (terms, errors) = parse(text);
        for e in errors {
            match e {
                TermError::Syntax { term, why } => self.findings.push(Finding::new(
                    &SYNTAX,
                    domain,
                    format!("`{term}`: {why}; record: \"{text}\""),
                )),
                TermError::UnknownMechanism(term) => self.findings.push(Finding::new(
                    &UNKNOWN_MECHANISM,
                    domain,
                    format!("`{term}` in \"{text}\""),
                )),
            }
        }
        let mut has_all = false;
        let mut redirect: Option<&str> = None;
        let mut redirects = 0;
        let mut exps = 0;
        for term in &terms {
            match term {
                Term::Redirect(d) => {
                    redirects += 1;
                    redirect.get_or_insert(d.as_str());
                }
                Term::Explanation(_) => exps += 1,
                Term::UnknownModifier(m) => self.findings.push(Finding::new(
                    &UNKNOWN_MODIFIER,
                    domain,
                    format!("`{m}` in \"{text}\""),
                )),
                Term::Mechanism(q, Mechanism::All) => {
                    has_all = true;
                    // Only the audited domain's own `all` decides; an included record's `+all` is harmless to
                    // the includer only in theory, so it is reported too.
                    match q {
                        Qualifier::Pass => self.findings.push(Finding::new(
                            &PASS_ALL,
                            domain,
                            format!("\"{text}\""),
                        )),
                        Qualifier::Neutral if top => self.findings.push(Finding::new(
                            &NEUTRAL_ALL,
                            domain,
                            format!("\"{text}\""),
                        )),
                        _ => {}
                    }
                }
                Term::Mechanism(_, m) => self.mechanism(domain, m, text),
            }
            if self.summary.lookups > WALK_BUDGET {
                break;
            }
        }
        if redirects > 1 || exps > 1 {
            self.findings.push(Finding::new(
                &DUPLICATE_MODIFIER,
                domain,
                format!("\"{text}\""),
            ));
        }
        // RFC 7208 §6.1: redirect is ignored when the record has `all`.
        match redirect {
            Some(target) if !has_all => {
                self.count(format!("redirect={target}"), domain);
                self.follow(target, &format!("redirect={target} in {domain}"));
            }
            None if !has_all && top => {
                self.findings
                    .push(Finding::new(&NO_ALL, domain, format!("\"{text}\"")))
            }
            _ => {}
        }
        self.path.pop();
    }

    fn follow(&mut self, target: &str, via: &str) {
        if target.contains('%') {
            return;
        }
        if self.path.iter().any(|d| d == target) {
            let mut chain = self.path.clone();
            chain.push(target.to_string());
            self.findings.push(Finding::new(
                &INCLUDE_LOOP,
                self.path[0].clone(),
                format!("{via} closes the loop {}", chain.join(" → ")),
            ));
            return;
        }
        if self.path.len() > 10 || self.summary.lookups > WALK_BUDGET {
            return;
        }
        if let Some(record) = self.record_of(target, Some(via)) {
            self.evaluate(target, &record, false);
        }
    }

    fn mechanism(&mut self, domain: &str, m: &Mechanism, text: &str) {
        match m {
            Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..) => {}
            Mechanism::Include(target) => {
                self.count(format!("include:{target}"), domain);
                self.follow(target, &format!("include:{target} in {domain}"));
            }
            Mechanism::Exists(target) => {
                self.count(format!("exists:{target}"), domain);
                if !target.contains('%')
                    && self.void_or_pending(Query::new(target, RecordType::A)) == Some(true)
                {
                    self.summary.void_lookups += 1;
                }
            }
            Mechanism::Ptr(target) => {
                self.count(
                    format!(
                        "ptr{}",
                        target.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
                    ),
                    domain,
                );
                self.findings
                    .push(Finding::new(&PTR_MECHANISM, domain, format!("\"{text}\"")));
            }
            Mechanism::A(target) => {
                let host = target.as_deref().unwrap_or(domain);
                self.count(format!("a:{host}"), domain);
                if host.contains('%') {
                    return;
                }
                let v4 = self.void_or_pending(Query::new(host, RecordType::A));
                let v6 = self.void_or_pending(Query::new(host, RecordType::Aaaa));
                if v4 == Some(true) && v6 == Some(true) {
                    self.summary.void_lookups += 1;
                    self.findings.push(Finding::new(
                        &RESOLVES_TO_NOTHING,
                        domain,
                        format!("`a:{host}`: {host} has no A or AAAA record"),
                    ));
                }
            }
            Mechanism::Mx(target) => {
                let host = target.as_deref().unwrap_or(domain);
                self.count(format!("mx:{host}"), domain);
                if host.contains('%') {
                    return;
                }
                match self.dns.lookup(Query::new(host, RecordType::Mx)) {
                    Lookup::Pending => self.pending = true,
                    Lookup::Failed(_) => {}
                    Lookup::Empty { .. } => {
                        self.summary.void_lookups += 1;
                        self.findings.push(Finding::new(
                            &RESOLVES_TO_NOTHING,
                            domain,
                            format!("`mx:{host}`: {host} has no MX record"),
                        ));
                    }
                    Lookup::Found(r) => {
                        let n = r
                            .iter()
                            .filter(|d| matches!(d, crate::dns::Rdata::Mx { .. }))
                            .count();
                        if n > 10 {
                            self.findings.push(Finding::new(
                                &MX_TOO_MANY,
                                domain,
                                format!("`mx:{host}` meets {n} MX hosts (limit 10)"),
                            ));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_spf_records() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("v=DMARC1"));
    }

    #[test]
    fn parses_every_mechanism_and_reports_bad_terms() {
        let (terms, errors) = parse(
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mx.example.com/24//64 include:_spf.example.net ~all redirect=x.example foo=bar ipv4:1.2.3.4 ip4:300.1.1.1 a:",
        );
        assert_eq!(terms.len(), 8, "{terms:?}");
        assert_eq!(
            errors,
            vec![
                TermError::UnknownMechanism("ipv4:1.2.3.4".into()),
                TermError::Syntax {
                    term: "ip4:300.1.1.1".into(),
                    why: "`300.1.1.1` is not an IPv4 address".into()
                },
                TermError::Syntax {
                    term: "a:".into(),
                    why: "`` is not a domain name".into()
                },
            ]
        );
    }

    #[test]
    fn prefix_lengths_are_bounded() {
        assert!(parse("v=spf1 ip4:192.0.2.0/33").1.len() == 1);
        assert!(parse("v=spf1 ip6:2001:db8::/129").1.len() == 1);
        assert!(parse("v=spf1 a/24//64").1.is_empty());
    }

    #[test]
    fn macros_are_accepted_when_well_formed() {
        assert!(
            parse("v=spf1 exists:%{i}._spf.example.com -all")
                .1
                .is_empty()
        );
        assert_eq!(parse("v=spf1 exists:%{i._spf.example.com -all").1.len(), 1);
    }
}
