//! Which mailbox provider a recipient belongs to: the unit operators think in ("Microsoft is deferring us"), since
//! one provider hosts many domains (Google Workspace customers, Microsoft 365 tenants).

/// Relay host suffixes (what the Postfix log shows as `relay=`) of the providers that matter for deliverability.
const RELAY_SUFFIXES: &[(&str, &str)] = &[
    (".google.com", "google"),
    (".googlemail.com", "google"),
    (".protection.outlook.com", "microsoft"),
    (".outlook.com", "microsoft"),
    (".hotmail.com", "microsoft"),
    (".yahoodns.net", "yahoo"),
    (".yahoo.com", "yahoo"),
    (".aol.com", "yahoo"),
    (".icloud.com", "apple"),
    (".me.com", "apple"),
    (".mail.ru", "mailru"),
    (".yandex.net", "yandex"),
    (".yandex.ru", "yandex"),
    (".zoho.com", "zoho"),
    (".zoho.eu", "zoho"),
    (".pphosted.com", "proofpoint"),
    (".ppe-hosted.com", "proofpoint"),
    (".mimecast.com", "mimecast"),
    (".messagelabs.com", "broadcom"),
    (".gmx.net", "gmx"),
    (".web.de", "gmx"),
    (".protonmail.ch", "proton"),
    (".fastmail.com", "fastmail"),
    (".messagingengine.com", "fastmail"),
];

/// Consumer domains whose provider is known without looking at the relay.
const DOMAINS: &[(&str, &str)] = &[
    ("gmail.com", "google"),
    ("googlemail.com", "google"),
    ("outlook.com", "microsoft"),
    ("hotmail.com", "microsoft"),
    ("hotmail.co.uk", "microsoft"),
    ("hotmail.fr", "microsoft"),
    ("hotmail.de", "microsoft"),
    ("live.com", "microsoft"),
    ("msn.com", "microsoft"),
    ("yahoo.com", "yahoo"),
    ("yahoo.co.uk", "yahoo"),
    ("yahoo.fr", "yahoo"),
    ("yahoo.de", "yahoo"),
    ("ymail.com", "yahoo"),
    ("rocketmail.com", "yahoo"),
    ("aol.com", "yahoo"),
    ("icloud.com", "apple"),
    ("me.com", "apple"),
    ("mac.com", "apple"),
    ("mail.ru", "mailru"),
    ("yandex.ru", "yandex"),
    ("yandex.com", "yandex"),
    ("gmx.de", "gmx"),
    ("gmx.net", "gmx"),
    ("web.de", "gmx"),
    ("proton.me", "proton"),
    ("protonmail.com", "proton"),
    ("zoho.com", "zoho"),
    ("fastmail.com", "fastmail"),
];

/// The host part of a Postfix `relay=` value: `mx.example.com[192.0.2.1]:25` → `mx.example.com`.
pub fn relay_host(relay: &str) -> Option<&str> {
    let host = relay.split('[').next().unwrap_or(relay).trim();
    (!host.is_empty() && host != "none").then_some(host)
}

/// The address part of a Postfix `relay=` value: `mx.example.com[192.0.2.1]:25` → `192.0.2.1`.
pub fn relay_ip(relay: &str) -> Option<&str> {
    let start = relay.find('[')? + 1;
    let end = start + relay[start..].find(']')?;
    let ip = &relay[start..end];
    (!ip.is_empty()).then_some(ip)
}

/// The provider of a delivery: by relay host first (it reveals Google Workspace and Microsoft 365 customers' own
/// domains), then by well-known recipient domain. `None` when neither tells.
pub fn provider(recipient_domain: Option<&str>, relay: Option<&str>) -> Option<&'static str> {
    if let Some(host) = relay.and_then(relay_host) {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        for (suffix, name) in RELAY_SUFFIXES {
            if host.ends_with(suffix) || host == suffix[1..] {
                return Some(name);
            }
        }
    }
    let domain = recipient_domain?.trim_end_matches('.').to_ascii_lowercase();
    DOMAINS
        .iter()
        .find(|(d, _)| *d == domain)
        .map(|(_, name)| *name)
}

/// The provider of a recipient domain from its MX hosts (most preferred first): for domains whose deliveries did not
/// show a relay (a connection that failed, mail still deferred) and that are not well-known consumer domains.
pub fn provider_of_mx<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    hosts.into_iter().find_map(|h| provider(None, Some(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_hosts_name_the_provider_of_hosted_domains() {
        assert_eq!(provider_of_mx(["aspmx.l.google.com."]), Some("google"));
        assert_eq!(
            provider_of_mx([
                "mx.backup.example",
                "acme-example.mail.protection.outlook.com"
            ]),
            Some("microsoft")
        );
        assert_eq!(provider_of_mx(["mx.acme.example"]), None);
        assert_eq!(provider_of_mx([]), None);
    }

    #[test]
    fn relay_host_reveals_hosted_domains() {
        assert_eq!(
            provider(
                Some("acme.example"),
                Some("aspmx.l.google.com[142.250.1.27]:25")
            ),
            Some("google")
        );
        assert_eq!(
            provider(
                Some("contoso.example"),
                Some("contoso-example.mail.protection.outlook.com[52.101.1.1]:25")
            ),
            Some("microsoft")
        );
        assert_eq!(
            provider(
                Some("yahoo.com"),
                Some("mta7.am0.yahoodns.net[67.195.204.1]:25")
            ),
            Some("yahoo")
        );
    }

    #[test]
    fn consumer_domains_are_known_without_a_relay() {
        assert_eq!(provider(Some("GMail.com"), None), Some("google"));
        assert_eq!(
            provider(Some("hotmail.com"), Some("none")),
            Some("microsoft")
        );
        assert_eq!(
            provider(Some("example.org"), Some("mx.example.org[192.0.2.1]:25")),
            None
        );
    }

    #[test]
    fn relay_parts() {
        assert_eq!(
            relay_host("mx.example.com[192.0.2.1]:25"),
            Some("mx.example.com")
        );
        assert_eq!(relay_ip("mx.example.com[192.0.2.1]:25"), Some("192.0.2.1"));
        assert_eq!(
            relay_ip("mx.example.com[2001:db8::1]:25"),
            Some("2001:db8::1")
        );
        assert_eq!(relay_host("none"), None);
        assert_eq!(relay_ip("local"), None);
    }
}
