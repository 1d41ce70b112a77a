//! Bounce classification modelled on the ESP taxonomies (Amazon SES bounce types, Postmark bounce types).
//!
//! The RFC 3463 enhanced status code decides first when it is specific (`5.1.1`, `5.2.2`, `4.7.28`, `5.7.26`); generic
//! codes (`5.0.0`, `5.7.1`, `4.7.0`) and replies without one fall through to text patterns of the big providers.
//!
//! Severity answers "should we stop sending to this address?":
//! - [`Severity::Hard`]: a permanent failure that is the address's own (unknown or disabled mailbox, domain that does not
//!   exist), or a permanent failure nobody could explain. Suppress the address.
//! - [`Severity::Soft`]: a temporary failure, or a permanent one that is not the address's fault (mailbox full, message
//!   too large, content, policy/authentication, reputation, rate limits, TLS). Fix the cause; keep the address.
//! - [`Severity::Undetermined`]: neither a DSN nor an SMTP code says which.

use serde::{Deserialize, Serialize};

use crate::event::Status;
use crate::reply::{Reply, ReplyKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Hard,
    Soft,
    Undetermined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceReason {
    UnknownRecipient,
    MailboxFull,
    MessageTooLarge,
    ContentRejected,
    /// SPF, DKIM, DMARC, reverse DNS, relay permission, sender policy.
    PolicyAuthentication,
    /// Blocklisted IP or domain, poor reputation.
    Reputation,
    RateLimited,
    Greylisted,
    DnsFailure,
    ConnectionFailure,
    TlsFailure,
    Expired,
    Unknown,
}

/// The class of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BounceClass {
    pub severity: Severity,
    pub reason: BounceReason,
}

/// Classifies an attempt by status: `None` for successful ones, the [`BounceReason::Expired`] reason for messages
/// that ran out of queue lifetime, [`classify`] for the rest.
pub fn classify_attempt(
    status: Status,
    dsn: Option<&str>,
    reply: &Reply<'_>,
) -> Option<BounceClass> {
    match status {
        Status::Sent | Status::Deliverable => None,
        Status::Expired | Status::ForceExpired => Some(BounceClass {
            severity: Severity::Soft,
            reason: BounceReason::Expired,
        }),
        _ => Some(classify_reply(dsn, reply)),
    }
}

/// Classifies a DSN code and a reply text (as Postfix logs it inside `status=... (...)`).
pub fn classify(dsn: Option<&str>, reply: &str) -> BounceClass {
    classify_reply(dsn, &Reply::parse(reply.as_bytes()))
}

fn classify_reply(dsn: Option<&str>, reply: &Reply<'_>) -> BounceClass {
    let enhanced = dsn
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .or_else(|| reply.enhanced.map(|e| e.to_string()));
    let class = enhanced
        .as_deref()
        .and_then(|e| e.bytes().next())
        .or_else(|| reply.code.map(|c| b'0' + (c / 100) as u8));
    let permanent = match class {
        Some(b'5') => Some(true),
        Some(b'4') => Some(false),
        _ => None,
    };
    let reason = reason_of(enhanced.as_deref(), reply);
    let severity = match (permanent, reason) {
        (None, _) => Severity::Undetermined,
        (
            Some(true),
            BounceReason::UnknownRecipient | BounceReason::DnsFailure | BounceReason::Unknown,
        ) => Severity::Hard,
        _ => Severity::Soft,
    };
    BounceClass { severity, reason }
}

fn reason_of(enhanced: Option<&str>, reply: &Reply<'_>) -> BounceReason {
    // Postfix's own wording about the connection is exact; trust it before anything a remote server said.
    match reply.kind {
        ReplyKind::HostNotFound => return BounceReason::DnsFailure,
        ReplyKind::ConnectFailed | ReplyKind::LostConnection | ReplyKind::TimedOut => {
            return if contains_any(&reply.raw.to_str().to_ascii_lowercase(), &["tls", "ssl"]) {
                BounceReason::TlsFailure
            } else {
                BounceReason::ConnectionFailure
            };
        }
        _ => {}
    }
    if let Some(r) = enhanced.and_then(by_enhanced_code) {
        return r;
    }
    let text = reply.raw.to_str().to_ascii_lowercase();
    if let Some(r) = by_text(&text) {
        return r;
    }
    if reply.kind == ReplyKind::RefusedToTalk {
        return BounceReason::ConnectionFailure;
    }
    // `421 4.7.0` without a telling text is how Gmail, Outlook and Yahoo throttle.
    if reply.code == Some(421) && enhanced == Some("4.7.0") {
        return BounceReason::RateLimited;
    }
    BounceReason::Unknown
}

/// RFC 3463 subject/detail pairs specific enough to decide alone, plus the provider codes in the same namespace.
fn by_enhanced_code(e: &str) -> Option<BounceReason> {
    let (class, rest) = e.split_once('.')?;
    use BounceReason::*;
    Some(match rest {
        "1.1" | "1.3" | "1.6" | "2.1" | "7.13" => {
            // 4.2.1 is "mailbox temporarily unavailable": a transient state of a mailbox that exists.
            if class == "4" && rest == "2.1" {
                return None;
            }
            UnknownRecipient
        }
        // 5.1.10 is both RFC 7505 "null MX" and Microsoft's "recipient not found"; the text decides.
        "1.2" | "4.3" | "4.4" => DnsFailure,
        "2.2" => MailboxFull,
        "2.3" | "3.4" => MessageTooLarge,
        "4.1" | "4.2" => ConnectionFailure,
        "4.7" => Expired,
        "7.20" | "7.21" | "7.22" | "7.23" | "7.24" | "7.25" | "7.26" | "7.27" | "7.509"
        | "7.515" => PolicyAuthentication,
        "7.28" => RateLimited,
        "7.10" | "7.5" | "7.4" => TlsFailure,
        "7.606" | "7.607" | "7.608" => Reputation,
        "6.0" | "6.1" | "7.7" => ContentRejected,
        _ => return None,
    })
}

fn contains_any(text: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| text.contains(n))
}

/// Reply-text patterns, most specific first. `text` is lower-case.
fn by_text(text: &str) -> Option<BounceReason> {
    use BounceReason::*;
    const RULES: &[(BounceReason, &[&str])] = &[
        (
            Greylisted,
            &[
                "greylist",
                "graylist",
                "grey-list",
                "gray-list",
                "greylisting",
                "postgrey",
                "try again in ",
            ],
        ),
        (
            RateLimited,
            &[
                "rate limit",
                "ratelimit",
                "rate-limit",
                "throttl",
                "unusual rate",
                "too many connections",
                "too many messages",
                "too many recipients",
                "too many concurrent",
                "receiving mail at a rate",
                "exceeded the rate",
                "sending rate",
                "unexpected volume",
                "[tss0",
                "[ts0",
            ],
        ),
        (
            Reputation,
            &[
                "blocked using",
                "spamhaus",
                "blacklist",
                "blocklist",
                "block list",
                "black list",
                "denylist",
                "listed at",
                "listed on",
                "listed by",
                "dnsbl",
                " rbl",
                "barracuda",
                "spamcop",
                "sorbs",
                "reputation",
                "banned sending ip",
                "ip address has been blocked",
                "poor sender",
                "bad sender ip",
            ],
        ),
        (
            UnknownRecipient,
            &[
                "user unknown",
                "unknown user",
                "no such user",
                "no such recipient",
                "no such mailbox",
                "does not exist",
                "doesn't exist",
                "invalid recipient",
                "recipient not found",
                "recipientnotfound",
                "recipnotfound",
                "mailbox not found",
                "mailbox unavailable",
                "mailbox is disabled",
                "account disabled",
                "account has been disabled",
                "account is disabled",
                "unrouteable address",
                "unknown or illegal alias",
                "address rejected: undeliverable",
                "not our customer",
                "no mailbox here",
                "user not found",
                "invalid mailbox",
            ],
        ),
        (
            MailboxFull,
            &[
                "mailbox full",
                "mailbox is full",
                "over quota",
                "quota exceeded",
                "exceeded storage",
                "insufficient storage",
                "out of storage",
                "mailbox size limit",
                "user is over",
                "overquota",
            ],
        ),
        (
            MessageTooLarge,
            &[
                "message size exceeds",
                "message too big",
                "message too large",
                "too large",
                "size limit",
                "exceeds the maximum size",
                "message length exceeds",
            ],
        ),
        (
            PolicyAuthentication,
            &[
                "spf",
                "dkim",
                "dmarc",
                "authenticat",
                "not authorized",
                "unauthenticated",
                "reverse dns",
                "ptr record",
                "relay access denied",
                "relaying denied",
                "sender address rejected",
                "sender verify failed",
                "helo command rejected",
                "policy",
            ],
        ),
        (
            ContentRejected,
            &[
                "spam",
                "content",
                "virus",
                "malware",
                "phish",
                "suspicious",
                "attachment",
                "message rejected",
                "bulk mail",
            ],
        ),
        (
            DnsFailure,
            &[
                "host or domain name not found",
                "name service error",
                "domain not found",
                "nxdomain",
                "no mx",
                "null mx",
                "domain does not exist",
                "host not found",
            ],
        ),
        (
            TlsFailure,
            &[
                "tls",
                "starttls",
                "certificate",
                "ssl",
                "handshake",
                "encryption",
            ],
        ),
        (
            ConnectionFailure,
            &[
                "connection refused",
                "connection timed out",
                "network is unreachable",
                "no route to host",
                "lost connection",
                "connection reset",
                "service not available",
                "service unavailable",
            ],
        ),
    ];
    RULES
        .iter()
        .find(|(_, pats)| contains_any(text, pats))
        .map(|(r, _)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BounceReason::*;
    use Severity::*;

    fn c(dsn: &str, reply: &str) -> (Severity, BounceReason) {
        let b = classify(Some(dsn).filter(|d| !d.is_empty()), reply);
        (b.severity, b.reason)
    }

    // Every pattern family has a real reply text, as providers and MTAs send it.
    #[test]
    fn unknown_recipient() {
        assert_eq!(
            c(
                "5.1.1",
                "host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. Learn more at 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d2si (in reply to RCPT TO command)"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c(
                "5.5.0",
                "host mx.example.com[192.0.2.1] said: 550 5.5.0 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c(
                "5.0.0",
                "host mx1.hotmail.com[52.101.1.1] said: 550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). (in reply to RCPT TO command)"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c(
                "5.1.10",
                "host outlook-com.olc.protection.outlook.com[52.101.1.1] said: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup (in reply to RCPT TO command)"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c(
                "5.0.0",
                "host mx[1.2.3.4] said: 550 Recipient not found by SMTP address lookup (in reply to RCPT TO command)"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c("5.1.1", "unknown user: \"nosuch.ana\""),
            (Hard, UnknownRecipient)
        );
    }

    #[test]
    fn mailbox_full_and_size() {
        assert_eq!(
            c(
                "5.2.2",
                "host mx[1.2.3.4] said: 552 5.2.2 <full.x@partner.test>: Mailbox full (in reply to RCPT TO command)"
            ),
            (Soft, MailboxFull)
        );
        assert_eq!(
            c(
                "4.2.2",
                "host gmail-smtp-in.l.google.com[1.2.3.4] said: 452-4.2.2 The email account that you tried to reach is over quota. (in reply to RCPT TO command)"
            ),
            (Soft, MailboxFull)
        );
        assert_eq!(
            c(
                "5.0.0",
                "host mta7.am0.yahoodns.net[1.2.3.4] said: 552 1 Requested mail action aborted, mailbox not found"
            ),
            (Hard, UnknownRecipient)
        );
        assert_eq!(
            c(
                "5.3.4",
                "host mx[1.2.3.4] said: 552 5.3.4 Message size exceeds fixed limit (in reply to end of DATA command)"
            ),
            (Soft, MessageTooLarge)
        );
        assert_eq!(
            c(
                "5.0.0",
                "host mx[1.2.3.4] said: 552 Message size exceeds maximum permitted (in reply to MAIL FROM command)"
            ),
            (Soft, MessageTooLarge)
        );
    }

    #[test]
    fn policy_and_authentication() {
        assert_eq!(
            c(
                "5.7.26",
                "host gmail-smtp-in.l.google.com[1.2.3.4] said: 550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. (in reply to end of DATA command)"
            ),
            (Soft, PolicyAuthentication)
        );
        assert_eq!(
            c(
                "5.7.515",
                "host outlook-com.olc.protection.outlook.com[1.2.3.4] said: 550 5.7.515 Access denied, sending domain example.com doesn't meet the required authentication level. (in reply to end of DATA command)"
            ),
            (Soft, PolicyAuthentication)
        );
        assert_eq!(
            c(
                "5.7.1",
                "host mx[1.2.3.4] said: 550 5.7.1 Email rejected per DMARC policy for example.com (in reply to end of DATA command)"
            ),
            (Soft, PolicyAuthentication)
        );
        assert_eq!(
            c(
                "5.7.1",
                "host mx[1.2.3.4] said: 554 5.7.1 <x@y>: Relay access denied (in reply to RCPT TO command)"
            ),
            (Soft, PolicyAuthentication)
        );
        assert_eq!(
            c(
                "5.7.23",
                "host mx[1.2.3.4] said: 550 5.7.23 SPF validation failed (in reply to MAIL FROM command)"
            ),
            (Soft, PolicyAuthentication)
        );
    }

    #[test]
    fn reputation_rate_grey() {
        assert_eq!(
            c(
                "5.7.1",
                "host mx[1.2.3.4] said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1 (in reply to RCPT TO command)"
            ),
            (Soft, Reputation)
        );
        assert_eq!(
            c(
                "5.7.1",
                "host mx4.hotmail.com[1.2.3.4] said: 550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). (in reply to MAIL FROM command)"
            ),
            (Soft, Reputation)
        );
        assert_eq!(
            c(
                "4.7.28",
                "host gmail-smtp-in.l.google.com[1.2.3.4] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain (in reply to end of DATA command)"
            ),
            (Soft, RateLimited)
        );
        assert_eq!(
            c(
                "4.7.0",
                "host mta5.am0.yahoodns.net[1.2.3.4] said: 421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)"
            ),
            (Soft, RateLimited)
        );
        assert_eq!(
            c(
                "4.7.0",
                "host mx[1.2.3.4] said: 421 4.7.0 Try again later, closing connection. (in reply to MAIL FROM command)"
            ),
            (Soft, RateLimited)
        );
        assert_eq!(
            c(
                "4.2.0",
                "host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <grey.x@bigcorp.test>: Recipient address rejected: Greylisted, try again later (in reply to RCPT TO command)"
            ),
            (Soft, Greylisted)
        );
        assert_eq!(
            c(
                "4.7.1",
                "host mx[1.2.3.4] said: 450 4.7.1 <x@y>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/y.html (in reply to RCPT TO command)"
            ),
            (Soft, Greylisted)
        );
    }

    #[test]
    fn content_dns_connection_tls() {
        assert_eq!(
            c(
                "5.7.1",
                "host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Message rejected: spam content detected (in reply to end of DATA command)"
            ),
            (Soft, ContentRejected)
        );
        assert_eq!(
            c(
                "5.7.1",
                "host aspmx.l.google.com[1.2.3.4] said: 552-5.7.0 This message was blocked because its content presents a potential 552-5.7.0 security issue. (in reply to end of DATA command)"
            ),
            (Soft, ContentRejected)
        );
        assert_eq!(
            c(
                "4.4.3",
                "Host or domain name not found. Name service error for name=example.invalid type=MX: Host not found, try again"
            ),
            (Soft, DnsFailure)
        );
        assert_eq!(
            c(
                "5.4.4",
                "Host or domain name not found. Name service error for name=nxdomain.example type=A: Host not found"
            ),
            (Hard, DnsFailure)
        );
        assert_eq!(
            c(
                "4.4.1",
                "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"
            ),
            (Soft, ConnectionFailure)
        );
        assert_eq!(
            c(
                "4.4.2",
                "lost connection with 127.0.0.1[127.0.0.1] while sending RCPT TO"
            ),
            (Soft, ConnectionFailure)
        );
        assert_eq!(
            c(
                "4.4.2",
                "conversation with mx.example.com[192.0.2.1] timed out while receiving the initial server greeting"
            ),
            (Soft, ConnectionFailure)
        );
        assert_eq!(
            c(
                "4.3.2",
                "delivery temporarily suspended: host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 sink.example.test Service not available, closing transmission channel"
            ),
            (Soft, ConnectionFailure)
        );
        assert_eq!(
            c("4.7.5", "Server certificate not trusted"),
            (Soft, TlsFailure)
        );
        assert_eq!(
            c(
                "4.7.0",
                "TLS is required, but was not offered by host mx.example.com[192.0.2.1]"
            ),
            (Soft, TlsFailure)
        );
        assert_eq!(
            c(
                "4.4.2",
                "lost connection with mx[1.2.3.4] while performing the TLS handshake"
            ),
            (Soft, TlsFailure)
        );
    }

    #[test]
    fn undetermined_and_unknown() {
        assert_eq!(c("", "delivered to mailbox"), (Undetermined, Unknown));
        assert_eq!(c("5.0.0", "nowhere.invalid"), (Hard, Unknown));
        assert_eq!(
            c(
                "4.3.0",
                "host 127.0.0.1[127.0.0.1] said: 451 4.3.0 <busy.x@partner.test>: Temporary local problem, please try again (in reply to RCPT TO command)"
            ),
            (Soft, Unknown)
        );
        let r = Reply::parse(b"250 ok");
        assert_eq!(classify_attempt(Status::Sent, Some("2.0.0"), &r), None);
        assert_eq!(
            classify_attempt(Status::Expired, Some("4.4.1"), &r)
                .unwrap()
                .reason,
            Expired
        );
    }
}
