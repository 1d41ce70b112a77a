//! DNS blocklists (DNSBL for addresses, URIBL/RHSBL for domains), pure: which name to ask, and what the answer means.
//!
//! A DNSBL answers a question about `4.3.2.1.zen.spamhaus.org` with an address in 127.0.0.0/8 whose value says why
//! the subject is listed, NXDOMAIN when it is not, and some answers that are neither: "your query was refused"
//! (Spamhaus's 127.255.255.254 when asked through a public resolver), a wildcarding resolver's address outside
//! 127/8, a timeout. Naive checkers report those as listings; here they are [`Outcome::NotTested`], never
//! [`Outcome::Listed`]. Zones are described by data ([`default_zones`], from `zones.toml`), not code, so an operator can
//! add one with the same fields.
//!
//! Zone health is judged before a zone's answers are trusted: its listed test point (127.0.0.2, or a test domain)
//! must be listed and its clean one (127.0.0.1) must not ([`zone_health`]). A zone that lists everything or stops
//! answering is broken, and its answers are ignored for that sweep.

use crate::dns::{Answer, Rdata};
use relaywatch_domain::DomainName;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a zone lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    Ipv4,
    Ipv6,
    Domain,
}

/// The meaning of one answer (or one bit of the answer's last octet, for bitmask zones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneCode {
    /// One exact answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Ipv4Addr>,
    /// A range of answers, `from..=to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Ipv4Addr>,
    /// A bit of the last octet (bitmask zones: SURBL, URIBL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    pub meaning: String,
    /// False for policy or reputation codes that are shown but are not a listing by themselves (Spamhaus PBL).
    #[serde(default = "yes")]
    pub listing: bool,
}

fn yes() -> bool {
    true
}

/// One blocklist zone, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// The DNS zone asked (`zen.spamhaus.org`).
    pub name: String,
    /// A name for people (`Spamhaus ZEN`).
    #[serde(default)]
    pub label: String,
    pub kinds: Vec<ZoneKind>,
    /// Whether Relaywatch recommends acting on its listings.
    #[serde(default)]
    pub recommended: bool,
    /// Listings are shown but never raise an alert (UCEPROTECT levels 2 and 3).
    #[serde(default)]
    pub informational: bool,
    /// Removal request page; `{subject}` is replaced by the listed IP or domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delist: Option<String>,
    /// Answers meaning the query was refused (rate limit, public resolver, wrong zone): never a listing.
    #[serde(default)]
    pub refused: Vec<Ipv4Addr>,
    /// Codes are bits of the last octet instead of exact answers.
    #[serde(default)]
    pub bitmask: bool,
    pub codes: Vec<ZoneCode>,
    /// Subject that must be listed (self-test). Default: RFC 5782's for the zone's kind (127.0.0.2, `test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_listed: Option<String>,
    /// Subject that must not be listed (self-test). Default: RFC 5782's (127.0.0.1, `invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clean: Option<String>,
    /// The zone's Spamhaus Data Query Service name; with a DQS key, `KEY.<dqs>` is asked instead of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqs: Option<String>,
}

#[derive(Deserialize)]
struct ZoneFile {
    zone: Vec<ZoneSpec>,
}

/// The curated default set (`zones.toml`).
pub fn default_zones() -> Vec<ZoneSpec> {
    // The file is part of the build and checked by a test; a broken edit fails the test suite, not a sweep.
    toml::from_str::<ZoneFile>(include_str!("zones.toml"))
        .map(|f| f.zone)
        .unwrap_or_default()
}

/// Parses a zone set written in the `zones.toml` format (`[[zone]]` tables), for operators' additions.
pub fn parse_zones(toml_text: &str) -> Result<Vec<ZoneSpec>, String> {
    toml::from_str::<ZoneFile>(toml_text)
        .map(|f| f.zone)
        .map_err(|e| e.to_string())
}

impl ZoneSpec {
    /// Checks what serde cannot: a usable zone name, codes that say what they match.
    pub fn validate(&self) -> Result<(), String> {
        DomainName::parse(&self.name).map_err(|e| format!("zone name `{}`: {e}", self.name))?;
        if self.kinds.is_empty() {
            return Err(format!("zone {}: kinds is empty", self.name));
        }
        for c in &self.codes {
            let forms = [
                c.code.is_some(),
                c.from.is_some() && c.to.is_some(),
                c.bit.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if forms != 1 || (self.bitmask != c.bit.is_some()) {
                return Err(format!(
                    "zone {}: code `{}` needs exactly one of code, from+to{}",
                    self.name,
                    c.meaning,
                    if self.bitmask {
                        " or bit (bitmask zone: bit)"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(())
    }

    pub fn lists(&self, kind: ZoneKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The kind its self-test uses: IPv4 when it lists addresses, else its first kind.
    pub fn primary_kind(&self) -> ZoneKind {
        if self.lists(ZoneKind::Ipv4) {
            ZoneKind::Ipv4
        } else {
            self.kinds.first().copied().unwrap_or(ZoneKind::Ipv4)
        }
    }

    /// The self-test subjects (must be listed, must not be listed): the zone's own, or RFC 5782's for its kind
    /// (127.0.0.2 / 127.0.0.1, ::ffff:7f00:2 / ::ffff:7f00:1, `test` / `invalid`).
    pub fn test_points_for(&self, kind: ZoneKind) -> (String, String) {
        let (listed, clean) = match kind {
            ZoneKind::Ipv4 => ("127.0.0.2", "127.0.0.1"),
            ZoneKind::Ipv6 => ("::ffff:7f00:2", "::ffff:7f00:1"),
            ZoneKind::Domain => ("test", "invalid"),
        };
        (
            self.test_listed
                .clone()
                .unwrap_or_else(|| listed.to_string()),
            self.test_clean.clone().unwrap_or_else(|| clean.to_string()),
        )
    }

    /// The removal page for a listed subject.
    pub fn delist_url(&self, subject: &Subject) -> Option<String> {
        self.delist
            .as_ref()
            .map(|t| t.replace("{subject}", &subject.to_string()))
    }

    /// The meanings of one answer: `Some((meanings, any listing code))`, or `None` when the zone does not document it.
    fn meanings_of(&self, addr: Ipv4Addr) -> Option<(Vec<String>, bool)> {
        if self.bitmask {
            let last = addr.octets()[3];
            let hits: Vec<&ZoneCode> = self
                .codes
                .iter()
                .filter(|c| c.bit.is_some_and(|b| last & b != 0))
                .collect();
            if hits.is_empty() {
                return None;
            }
            return Some((
                hits.iter().map(|c| c.meaning.clone()).collect(),
                hits.iter().any(|c| c.listing),
            ));
        }
        self.codes
            .iter()
            .find(|c| match (c.code, c.from, c.to) {
                (Some(code), _, _) => code == addr,
                (None, Some(from), Some(to)) => (from..=to).contains(&addr),
                _ => false,
            })
            .map(|c| (vec![c.meaning.clone()], c.listing))
    }
}

/// Installation and tenant changes to the default set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneOverrides {
    /// Zones to add (a zone with the name of a default one replaces it).
    pub add: Vec<ZoneSpec>,
    /// Names of zones to leave out.
    pub remove: Vec<String>,
}

/// The zone set after overrides, in order: defaults (minus removed and replaced), then additions. With a Spamhaus
/// DQS key, zones that have a DQS name are asked as `KEY.<dqs>` (their `name` becomes that; the label keeps saying
/// which zone it is).
pub fn effective_zones(
    defaults: &[ZoneSpec],
    layers: &[&ZoneOverrides],
    dqs_key: Option<&str>,
) -> Vec<ZoneSpec> {
    let mut zones: Vec<ZoneSpec> = defaults.to_vec();
    for layer in layers {
        zones.retain(|z| {
            !layer.remove.iter().any(|r| r.eq_ignore_ascii_case(&z.name))
                && !layer
                    .add
                    .iter()
                    .any(|a| a.name.eq_ignore_ascii_case(&z.name))
        });
        zones.extend(layer.add.iter().cloned());
    }
    if let Some(key) = dqs_key.map(str::trim).filter(|k| !k.is_empty()) {
        for z in &mut zones {
            if let Some(dqs) = &z.dqs {
                z.name = format!("{key}.{dqs}");
                // Through DQS the refusal codes for public resolvers do not apply, but keeping them costs nothing.
            }
        }
    }
    zones
}

/// What is looked up: an IP address, or a domain (always its registered domain: blocklists list those).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Ip(IpAddr),
    Domain(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Ip(ip) => write!(f, "{ip}"),
            Subject::Domain(d) => f.write_str(d),
        }
    }
}

impl Subject {
    /// An IP address or a domain name; a domain becomes its registered domain (`mail.example.co.uk` →
    /// `example.co.uk`, by the Public Suffix List).
    pub fn parse(s: &str) -> Result<Subject, String> {
        let s = s.trim();
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Subject::Ip(ip));
        }
        let domain = DomainName::parse(s)
            .map_err(|e| format!("`{s}` is neither an IP address nor a domain: {e}"))?;
        Ok(Subject::Domain(registered_domain(domain.as_str())))
    }

    pub fn kind(&self) -> ZoneKind {
        match self {
            Subject::Ip(IpAddr::V4(_)) => ZoneKind::Ipv4,
            Subject::Ip(IpAddr::V6(_)) => ZoneKind::Ipv6,
            Subject::Domain(_) => ZoneKind::Domain,
        }
    }

    /// The name asked in `zone`: reversed octets for IPv4, reversed nibbles for IPv6, the domain itself.
    pub fn query_name(&self, zone: &str) -> String {
        match self {
            Subject::Ip(IpAddr::V4(v4)) => {
                let [a, b, c, d] = v4.octets();
                format!("{d}.{c}.{b}.{a}.{zone}")
            }
            Subject::Ip(IpAddr::V6(v6)) => format!("{}.{zone}", ipv6_nibbles(v6)),
            Subject::Domain(d) => format!("{d}.{zone}"),
        }
    }
}

fn ipv6_nibbles(v6: &Ipv6Addr) -> String {
    let mut out = String::with_capacity(64);
    for byte in v6.octets().iter().rev() {
        for nibble in [byte & 0x0f, byte >> 4] {
            if !out.is_empty() {
                out.push('.');
            }
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

/// The registered domain (eTLD+1) of a name, or the name itself when it is a public suffix or unknown.
pub fn registered_domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&name).map(str::to_string).unwrap_or(name)
}

/// What one zone said about one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Listed {
        codes: Vec<Ipv4Addr>,
        meanings: Vec<String>,
        /// Only policy or reputation codes, or an informational zone: shown, never alerted on.
        informational: bool,
    },
    Clean,
    /// Not a verdict: timeout, refusal, an undocumented or out-of-range answer, a zone failing its self-test.
    NotTested {
        reason: String,
    },
}

impl Outcome {
    pub fn state(&self) -> &'static str {
        match self {
            Outcome::Listed { .. } => "listed",
            Outcome::Clean => "clean",
            Outcome::NotTested { .. } => "not_tested",
        }
    }

    pub fn is_listed(&self) -> bool {
        matches!(self, Outcome::Listed { .. })
    }
}

/// Judges one zone's answer to an A query.
pub fn interpret(zone: &ZoneSpec, answer: &Answer) -> Outcome {
    let records = match answer {
        Answer::NxDomain => return Outcome::Clean,
        Answer::Failed(e) => {
            return Outcome::NotTested {
                reason: format!("lookup failed: {e}"),
            };
        }
        Answer::Records(r) => r,
    };
    let addrs: Vec<Ipv4Addr> = records
        .iter()
        .filter_map(|r| match r {
            Rdata::A(a) => Some(*a),
            _ => None,
        })
        .collect();
    if addrs.is_empty() {
        return Outcome::Clean;
    }
    if let Some(code) = addrs.iter().find(|a| zone.refused.contains(a)) {
        return Outcome::NotTested {
            reason: format!(
                "{} refused the query (answer {code}): rate limit, a public resolver, or access that needs registration",
                zone.name
            ),
        };
    }
    if let Some(odd) = addrs.iter().find(|a| a.octets()[0] != 127) {
        return Outcome::NotTested {
            reason: format!(
                "answer {odd} is outside 127.0.0.0/8: a resolver that rewrites NXDOMAIN, or a zone that no longer exists"
            ),
        };
    }
    let mut codes = Vec::new();
    let mut meanings = Vec::new();
    let mut any_listing = false;
    let mut unknown = Vec::new();
    for a in addrs {
        match zone.meanings_of(a) {
            Some((m, listing)) => {
                codes.push(a);
                meanings.extend(m);
                any_listing |= listing;
            }
            None => unknown.push(a),
        }
    }
    if codes.is_empty() {
        return Outcome::NotTested {
            reason: format!(
                "{} answered {}, which the zone does not document",
                zone.name,
                unknown
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    meanings.dedup();
    Outcome::Listed {
        codes,
        meanings,
        informational: zone.informational || !any_listing,
    }
}

/// Judges a zone by its test points: `Ok` when the listed one is listed and the clean one is clean; otherwise why the
/// zone cannot be trusted this sweep.
pub fn zone_health(
    zone: &ZoneSpec,
    listed_probe: &Answer,
    clean_probe: &Answer,
) -> Result<(), String> {
    let (listed_point, clean_point) = zone.test_points_for(zone.primary_kind());
    match interpret(zone, clean_probe) {
        Outcome::Clean => {}
        Outcome::Listed { codes, .. } => {
            return Err(format!(
                "lists its clean test point {clean_point} (answer {}): it would list everything",
                codes
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Outcome::NotTested { reason } => {
            return Err(format!("self-test on {clean_point} failed: {reason}"));
        }
    }
    match interpret(zone, listed_probe) {
        Outcome::Listed { .. } => Ok(()),
        Outcome::Clean => Err(format!(
            "does not list its test point {listed_point}: the zone is not answering, gone, or needs registration"
        )),
        Outcome::NotTested { reason } => {
            Err(format!("self-test on {listed_point} failed: {reason}"))
        }
    }
}

/// The listing reason a zone publishes in TXT (often a URL), joined.
pub fn txt_reason(answer: &Answer) -> Option<String> {
    let Answer::Records(records) = answer else {
        return None;
    };
    let texts: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Rdata::Txt(parts) => Some(
                parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join(" | "))
}

/// What a bounce's reply text says about a blocklist: it names one (or a blocklist operator's site), and maybe the
/// address it blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHint {
    pub ip: Option<IpAddr>,
}

/// Phrases receiving servers use when they refuse mail because of a blocklist.
const BLOCK_PHRASES: &[&str] = &[
    "blocked using",
    "listed at",
    "listed in",
    "listed on",
    "blacklisted",
    "blocklisted",
    "spamhaus.org",
    "spamhaus.com",
    "barracudacentral",
    "spamcop.net",
    "uceprotect",
    "mailspike",
    "surbl.org",
    "uribl.com",
    "dnsbl",
];

/// Whether a remote reply says the sender is blocked by a blocklist; the IP in brackets, if any, is the one blocked.
pub fn block_hint(reply: &str) -> Option<BlockHint> {
    let lower = reply.to_ascii_lowercase();
    if !BLOCK_PHRASES.iter().any(|p| lower.contains(p)) {
        return None;
    }
    // "Client host [192.0.2.1] blocked using ...", "... 192.0.2.1 listed at ...": the first address in the text that
    // is not the replying server's own (which Postfix writes as "host mx.example[198.51.100.1] said:").
    let said = lower.find(" said:").map_or(0, |i| i + 6);
    let ip = lower[said..]
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .filter(|t| t.contains('.') || t.matches(':').count() >= 2)
        .find_map(|t| {
            t.trim_matches(|c| c == '.' || c == ':')
                .parse::<IpAddr>()
                .ok()
        });
    Some(BlockHint { ip })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> ZoneSpec {
        default_zones()
            .into_iter()
            .find(|z| z.name == name)
            .unwrap()
    }

    fn a(addrs: &[&str]) -> Answer {
        Answer::Records(addrs.iter().map(|s| Rdata::A(s.parse().unwrap())).collect())
    }

    #[test]
    fn the_default_set_parses_validates_and_leaves_out_sorbs() {
        let zones = default_zones();
        assert!(zones.len() >= 15, "{}", zones.len());
        for z in &zones {
            z.validate().unwrap();
        }
        assert!(zones.iter().all(|z| !z.name.contains("sorbs")));
        for must in [
            "zen.spamhaus.org",
            "dbl.spamhaus.org",
            "b.barracudacentral.org",
            "bl.spamcop.net",
            "psbl.surriel.com",
            "bl.mailspike.net",
            "dnsbl-1.uceprotect.net",
            "multi.surbl.org",
            "multi.uribl.com",
        ] {
            assert!(zones.iter().any(|z| z.name == must), "{must}");
        }
    }

    #[test]
    fn query_names_reverse_octets_and_nibbles() {
        let ip = Subject::parse("192.0.2.99").unwrap();
        assert_eq!(
            ip.query_name("zen.spamhaus.org"),
            "99.2.0.192.zen.spamhaus.org"
        );
        let v6 = Subject::parse("2001:db8::1").unwrap();
        assert_eq!(
            v6.query_name("zen.spamhaus.org"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"
        );
        let d = Subject::parse("Mail.Example.co.uk").unwrap();
        assert_eq!(d, Subject::Domain("example.co.uk".into()));
        assert_eq!(
            d.query_name("dbl.spamhaus.org"),
            "example.co.uk.dbl.spamhaus.org"
        );
        assert!(Subject::parse("not a name!").is_err());
    }

    #[test]
    fn zen_codes_mean_what_spamhaus_says_and_refusals_are_not_listings() {
        let zen = zone("zen.spamhaus.org");
        match interpret(&zen, &a(&["127.0.0.2", "127.0.0.4"])) {
            Outcome::Listed {
                meanings,
                informational,
                ..
            } => {
                assert!(meanings[0].starts_with("SBL"));
                assert!(meanings[1].starts_with("XBL"));
                assert!(!informational);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret(&zen, &a(&["127.0.0.10"])),
            Outcome::Listed {
                informational: true,
                ..
            }
        ));
        for refused in ["127.255.255.254", "127.255.255.252", "127.255.255.255"] {
            assert!(
                matches!(interpret(&zen, &a(&[refused])), Outcome::NotTested { .. }),
                "{refused}"
            );
        }
        assert_eq!(interpret(&zen, &Answer::NxDomain), Outcome::Clean);
        assert!(matches!(
            interpret(&zen, &Answer::Failed("timeout".into())),
            Outcome::NotTested { .. }
        ));
        // A resolver that rewrites NXDOMAIN to an ad server.
        assert!(matches!(
            interpret(&zen, &a(&["203.0.113.7"])),
            Outcome::NotTested { .. }
        ));
        // Undocumented code.
        assert!(matches!(
            interpret(&zen, &a(&["127.0.0.200"])),
            Outcome::NotTested { .. }
        ));
    }

    #[test]
    fn bitmask_zones_decode_bits_and_127_0_0_1_is_a_refusal() {
        let uribl = zone("multi.uribl.com");
        match interpret(&uribl, &a(&["127.0.0.10"])) {
            Outcome::Listed {
                meanings,
                informational,
                ..
            } => {
                assert_eq!(meanings.len(), 2, "{meanings:?}");
                assert!(!informational);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret(&uribl, &a(&["127.0.0.4"])),
            Outcome::Listed {
                informational: true,
                ..
            }
        ));
        assert!(matches!(
            interpret(&uribl, &a(&["127.0.0.1"])),
            Outcome::NotTested { .. }
        ));
        let dbl = zone("dbl.spamhaus.org");
        assert!(matches!(
            interpret(&dbl, &a(&["127.0.1.255"])),
            Outcome::NotTested { .. }
        ));
        assert!(interpret(&dbl, &a(&["127.0.1.2"])).is_listed());
    }

    #[test]
    fn health_catches_zones_that_list_everything_or_nothing() {
        let z = zone("bl.spamcop.net");
        assert!(zone_health(&z, &a(&["127.0.0.2"]), &Answer::NxDomain).is_ok());
        let all = zone_health(&z, &a(&["127.0.0.2"]), &a(&["127.0.0.2"])).unwrap_err();
        assert!(all.contains("list everything"), "{all}");
        let none = zone_health(&z, &Answer::NxDomain, &Answer::NxDomain).unwrap_err();
        assert!(none.contains("does not list"), "{none}");
        let dead =
            zone_health(&z, &Answer::Failed("timed out".into()), &Answer::NxDomain).unwrap_err();
        assert!(dead.contains("timed out"), "{dead}");
    }

    #[test]
    fn overrides_and_dqs_keys_shape_the_set() {
        let defaults = default_zones();
        let mut extra = zone("bl.spamcop.net");
        extra.name = "bl.example.net".into();
        let install = ZoneOverrides {
            add: vec![extra],
            remove: vec!["all.spamrats.com".into()],
        };
        let tenant = ZoneOverrides {
            add: vec![],
            remove: vec!["BL.SPAMCOP.NET".into()],
        };
        let zones = effective_zones(&defaults, &[&install, &tenant], Some("abc123"));
        assert!(zones.iter().any(|z| z.name == "bl.example.net"));
        assert!(!zones.iter().any(|z| z.name == "all.spamrats.com"));
        assert!(!zones.iter().any(|z| z.name == "bl.spamcop.net"));
        assert!(zones.iter().any(|z| z.name == "abc123.zen.dq.spamhaus.net"));
        assert!(zones.iter().any(|z| z.name == "abc123.dbl.dq.spamhaus.net"));
        assert!(!zones.iter().any(|z| z.name == "zen.spamhaus.org"));
    }

    #[test]
    fn bounce_replies_that_name_a_blocklist_are_recognised() {
        let hint = block_hint(
            "host mx.example.com[198.51.100.7] said: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked \
             using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10 (in reply to RCPT TO command)",
        )
        .unwrap();
        assert_eq!(hint.ip, Some("192.0.2.10".parse().unwrap()));
        assert!(block_hint("host mx[198.51.100.7] said: 550 5.1.1 User unknown").is_none());
        let no_ip = block_hint(
            "550 5.7.1 Our system has detected that this message is listed at bl.example",
        )
        .unwrap();
        assert_eq!(no_ip.ip, None);
    }

    #[test]
    fn txt_reasons_are_joined() {
        let ans = Answer::Records(vec![Rdata::Txt(vec![
            b"Listed by SBL, see ".to_vec(),
            b"https://check.spamhaus.org/sbl/query/SBL1".to_vec(),
        ])]);
        assert_eq!(
            txt_reason(&ans).unwrap(),
            "Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1"
        );
    }
}
