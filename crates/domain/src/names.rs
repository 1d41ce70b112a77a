//! Names a mail operator types: domain names, email addresses, DKIM selectors.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a name was refused. The message is shown to API users as-is, so it says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} characters long; a domain name has at most 253")]
    TooLong(usize),
    #[error("label `{0}` is longer than 63 characters")]
    LabelTooLong(String),
    #[error("has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error(
        "label `{0}` may only contain letters, digits and hyphens, and may not start or end with a hyphen"
    )]
    BadLabel(String),
    #[error("must have at least two labels (like example.com)")]
    SingleLabel,
    #[error("top-level label `{0}` is all digits; IP addresses are not domain names")]
    NumericTld(String),
    #[error(
        "contains non-ASCII characters; use the A-label (xn--) form of internationalised names"
    )]
    NonAscii,
    #[error("must contain exactly one `@` between local part and domain")]
    MissingAt,
    #[error("local part must be 1 to 64 printable characters without spaces")]
    BadLocalPart,
    #[error("is longer than 254 characters")]
    AddressTooLong,
    #[error("domain part: {0}")]
    BadDomainPart(Box<NameError>),
    #[error(
        "selector `{0}` may only contain letters, digits, hyphens, underscores and dots (at most 63 per label)"
    )]
    BadSelector(String),
}

/// A fully qualified domain name in its canonical form: lowercase ASCII, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if !s.is_ascii() {
            return Err(NameError::NonAscii);
        }
        if s.len() > 253 {
            return Err(NameError::TooLong(s.len()));
        }
        let lower = s.to_ascii_lowercase();
        let mut labels = 0;
        let mut last = "";
        for label in lower.split('.') {
            check_host_label(label)?;
            labels += 1;
            last = label;
        }
        if labels < 2 {
            return Err(NameError::SingleLabel);
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::NumericTld(last.to_string()));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This name and every parent with at least two labels, nearest first: `a.b.example.com`, `b.example.com`, `example.com`.
    /// Used to route mail from a subdomain to the tenant that registered a parent.
    pub fn self_and_parents(&self) -> impl Iterator<Item = &str> {
        let s = self.0.as_str();
        std::iter::once(s)
            .chain(s.match_indices('.').map(move |(i, _)| &s[i + 1..]))
            .filter(|d| d.contains('.'))
    }
}

fn check_host_label(label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    if label.len() > 63 {
        return Err(NameError::LabelTooLong(label.to_string()));
    }
    let bytes = label.as_bytes();
    let ldh = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    if !ldh || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err(NameError::BadLabel(label.to_string()));
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DomainName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DomainName::parse(&s).map_err(|e| serde::de::Error::custom(format!("`{s}` {e}")))
    }
}

/// An email address as it appears in an envelope: `local@domain`, with the domain canonicalised.
/// The local part keeps its case (RFC 5321 says it may be significant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 254 {
            return Err(NameError::AddressTooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(NameError::MissingAt)?;
        if local.contains('@') && !(local.starts_with('"') && local.ends_with('"')) {
            return Err(NameError::MissingAt);
        }
        let local_ok =
            !local.is_empty() && local.len() <= 64 && local.bytes().all(|b| b.is_ascii_graphic());
        if !local_ok {
            return Err(NameError::BadLocalPart);
        }
        let domain =
            DomainName::parse(domain).map_err(|e| NameError::BadDomainPart(Box::new(e)))?;
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EmailAddress::parse(&s).map_err(|e| serde::de::Error::custom(format!("`{s}` {e}")))
    }
}

/// A DKIM selector (RFC 6376 section 3.1): the `s=` of a signature, queried at `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DkimSelector(String);

impl DkimSelector {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        let ok = s.len() <= 200
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !ok {
            return Err(NameError::BadSelector(s.to_string()));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DkimSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DkimSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DkimSelector::parse(&s).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn domain_names_are_canonicalised() {
        assert_eq!(
            DomainName::parse("Mail.Example.COM.").unwrap().as_str(),
            "mail.example.com"
        );
        assert_eq!(
            DomainName::parse("xn--bcher-kva.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_domain_names_say_why() {
        assert_eq!(DomainName::parse(""), Err(NameError::Empty));
        assert_eq!(DomainName::parse("localhost"), Err(NameError::SingleLabel));
        assert_eq!(DomainName::parse("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(
            DomainName::parse("-a.com"),
            Err(NameError::BadLabel("-a".into()))
        );
        assert_eq!(
            DomainName::parse("ex_ample.com"),
            Err(NameError::BadLabel("ex_ample".into()))
        );
        assert_eq!(
            DomainName::parse("192.0.2.1"),
            Err(NameError::NumericTld("1".into()))
        );
        assert_eq!(DomainName::parse("bücher.de"), Err(NameError::NonAscii));
        assert!(matches!(
            DomainName::parse(&format!("{}.com", "a".repeat(64))),
            Err(NameError::LabelTooLong(_))
        ));
        assert!(matches!(
            DomainName::parse(&"a.".repeat(130)),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn parents_stop_before_the_tld() {
        let d = DomainName::parse("a.b.example.com").unwrap();
        assert_eq!(
            d.self_and_parents().collect::<Vec<_>>(),
            vec!["a.b.example.com", "b.example.com", "example.com"]
        );
    }

    #[test]
    fn addresses_keep_local_case_and_lower_the_domain() {
        let a = EmailAddress::parse("John.Smith@Example.COM").unwrap();
        assert_eq!(a.as_str(), "John.Smith@example.com");
        assert_eq!(a.local_part(), "John.Smith");
        assert_eq!(a.domain(), "example.com");
        assert_eq!(EmailAddress::parse("nobody"), Err(NameError::MissingAt));
        assert_eq!(
            EmailAddress::parse("a b@example.com"),
            Err(NameError::BadLocalPart)
        );
        assert!(matches!(
            EmailAddress::parse("a@localhost"),
            Err(NameError::BadDomainPart(_))
        ));
    }

    #[test]
    fn selectors() {
        assert_eq!(
            DkimSelector::parse("s2024._rw").unwrap().as_str(),
            "s2024._rw"
        );
        assert!(DkimSelector::parse("bad selector").is_err());
        assert!(DkimSelector::parse("a..b").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_is_idempotent(s in "\\PC{0,300}") {
            if let Ok(d) = DomainName::parse(&s) {
                prop_assert_eq!(DomainName::parse(d.as_str()).unwrap(), d);
            }
            if let Ok(a) = EmailAddress::parse(&s) {
                prop_assert_eq!(EmailAddress::parse(a.as_str()).unwrap(), a);
            }
            let _ = DkimSelector::parse(&s);
        }
    }
}
