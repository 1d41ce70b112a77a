//! Domain-name helpers the rules share.

/// Second-level labels under which registrations happen one level deeper (`example.co.uk`). A short list rather than
/// the Public Suffix List: the audit only needs it to tell a report destination in the same organisation from an
/// external one, and errs towards "external", which only asks for an authorisation record that is harmless to have.
const TWO_LEVEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "com.au", "net.au", "org.au", "co.nz", "co.jp",
    "ne.jp", "or.jp", "com.br", "com.cn", "com.mx", "co.za", "co.in", "com.tr", "com.sg", "co.kr",
];

/// The organisational domain, approximately: the registrable part of `name`.
pub fn organizational_domain(name: &str) -> String {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    if labels.len() <= 2 {
        return labels.join(".");
    }
    let last_two = labels[labels.len() - 2..].join(".");
    let keep = if TWO_LEVEL_SUFFIXES.contains(&last_two.as_str()) {
        3
    } else {
        2
    };
    labels[labels.len().saturating_sub(keep)..].join(".")
}

/// True when `name` is a syntactically valid host name (letters, digits, hyphens, underscores; labels of 1 to 63
/// characters; at most 253 in all; the last label not all digits, so `192.0.2.1` is not a host name).
pub fn is_host_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    }) && !labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// The parent domain names of `name`, nearest first, stopping before the top-level label.
pub fn parents(name: &str) -> Vec<String> {
    let labels: Vec<&str> = name.split('.').collect();
    (1..labels.len().saturating_sub(1))
        .map(|i| labels[i..].join("."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizational_domains() {
        assert_eq!(organizational_domain("mail.example.com"), "example.com");
        assert_eq!(organizational_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(organizational_domain("example"), "example");
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("mx1.example.com."));
        assert!(!is_host_name("192.0.2.1"));
        assert!(!is_host_name("bad..example"));
        assert!(!is_host_name("-x.example"));
    }

    #[test]
    fn parent_names() {
        assert_eq!(
            parents("a.b.example.com"),
            vec!["b.example.com", "example.com"]
        );
        assert!(parents("example.com").is_empty());
    }
}
