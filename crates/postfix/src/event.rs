//! Typed events: one per log line. Text fields borrow the line's bytes, so parsing allocates nothing; bytes that are not
//! UTF-8 are kept as they are and decoded lossily only where text is needed (display, JSON, the correlator's records).

use compact_str::CompactString;
use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::reply::Reply;
use crate::time::Timestamp;

/// A borrowed piece of a log line: raw bytes, shown and serialised as (lossily decoded) text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Text<'a>(pub &'a [u8]);

impl<'a> Text<'a> {
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// The text, borrowed when the bytes are UTF-8, with U+FFFD replacement characters otherwise. The standard
    /// UTF-8 check first (word at a time); the lossy decoder, much slower on valid text, only when it fails. Every
    /// conversion below goes through here.
    pub fn to_str(&self) -> Cow<'a, str> {
        match std::str::from_utf8(self.0) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(self.0),
        }
    }
    /// An owned copy.
    pub fn to_owned_string(&self) -> String {
        self.to_str().into_owned()
    }
    /// An owned copy stored inline when it fits (24 bytes): hosts, queue ids, DSNs, most addresses.
    pub fn to_compact(&self) -> CompactString {
        CompactString::from(self.to_str())
    }
    /// A shared copy, for text a message's attempts all carry.
    pub fn to_shared(&self) -> std::sync::Arc<str> {
        self.to_str().into()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_str(), f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_str())
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_str())
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(s.as_bytes())
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// The syslog name of the process that wrote the line, split the way Postfix builds it:
/// `<syslog_name>/<daemon>` or `<syslog_name>/<service>/<daemon>` (`postfix-out/smtp`, `postfix/submission/smtpd`,
/// `postfix/10025/smtpd`, `postfix-239.58.50.50/smtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Program<'a> {
    /// The whole program field, e.g. `postfix/submission/smtpd`.
    pub name: Text<'a>,
    /// The instance's `syslog_name` prefix, e.g. `postfix` or `postfix-out`.
    pub instance: Text<'a>,
    /// The master.cf service name when it differs from the daemon (`submission`, `10025`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Text<'a>>,
    /// The daemon: `smtp`, `smtpd`, `qmgr`, `cleanup`, ...
    pub daemon: Text<'a>,
}

/// What every syslog line carries before its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Header<'a> {
    pub time: Timestamp,
    pub host: Text<'a>,
    pub program: Program<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event<'a> {
    /// Absent when the syslog header itself could not be read (the event is then `Unknown`).
    pub header: Option<Header<'a>>,
    /// The Postfix queue id the line is about (`NOQUEUE` lines have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Text<'a>>,
    pub kind: EventKind<'a>,
}

impl<'a> Event<'a> {
    pub fn time(&self) -> Option<Timestamp> {
        self.header.map(|h| h.time)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self.kind, EventKind::Unknown { .. })
    }
}

/// Delivery status words of Postfix's `status=` field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
    Expired,
    ForceExpired,
    Undeliverable,
    /// Address verification probes that failed and were not cached.
    UndeliverableButNotCached,
    Deliverable,
    /// Any other word, kept so a new Postfix version does not lose the line.
    Other,
}

impl Status {
    pub fn parse(s: &[u8]) -> Status {
        match s {
            b"sent" => Status::Sent,
            b"deferred" => Status::Deferred,
            b"bounced" => Status::Bounced,
            b"expired" => Status::Expired,
            b"force-expired" => Status::ForceExpired,
            b"undeliverable" => Status::Undeliverable,
            b"undeliverable-but-not-cached" => Status::UndeliverableButNotCached,
            b"deliverable" => Status::Deliverable,
            _ => Status::Other,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Bounced => "bounced",
            Status::Expired => "expired",
            Status::ForceExpired => "force-expired",
            Status::Undeliverable => "undeliverable",
            Status::UndeliverableButNotCached => "undeliverable-but-not-cached",
            Status::Deliverable => "deliverable",
            Status::Other => "other",
        }
    }
    /// Whether the recipient is done with: no further attempt will follow this one.
    pub fn is_final(&self) -> bool {
        !matches!(self, Status::Deferred)
    }
}

/// Postfix's four-part delay breakdown `delays=a/b/c/d` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Delays {
    /// Before the queue manager (including message transmission).
    pub before_queue: f64,
    /// In the queue manager (including waiting in the queue).
    pub in_queue: f64,
    /// Connection setup (DNS, HELO, TLS).
    pub connection: f64,
    /// Message transmission.
    pub transmission: f64,
}

/// A `to=<...>, relay=..., status=...` line of smtp, lmtp, local, virtual, pipe, error, retry, discard (or cleanup).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryLine<'a> {
    pub to: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orig_to: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_use: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delays: Option<Delays>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsn: Option<Text<'a>>,
    pub status: Status,
    /// The text in parentheses after the status, parsed.
    pub reply: Reply<'a>,
    /// The whole line as text when it is UTF-8 (checked once, so its fields need no check of their own).
    #[serde(skip)]
    pub utf8: Utf8Line<'a>,
}

impl<'a> DeliveryLine<'a> {
    /// `field` (a part of this line) as text, without a second UTF-8 check; `None` when the line is not UTF-8 or
    /// `field` is not part of it.
    pub fn str_of(&self, field: Text<'a>) -> Option<&'a str> {
        let line = self.utf8.0?;
        // Within the line's memory, the field is a slice of it: same bytes.
        let start = (field.0.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
        line.get(start..start.checked_add(field.0.len())?)
    }

    /// An owned copy of `field`, see [`Text::to_compact`].
    pub fn compact(&self, field: Text<'a>) -> CompactString {
        self.str_of(field)
            .map_or_else(|| field.to_compact(), CompactString::new)
    }

    /// An owned copy of `field`, see [`Text::to_owned_string`].
    pub fn owned(&self, field: Text<'a>) -> String {
        self.str_of(field)
            .map_or_else(|| field.to_owned_string(), str::to_owned)
    }
}

/// A line's text, kept beside its parsed fields to convert them cheaply. Not part of what the line says: any two
/// compare equal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8Line<'a>(pub Option<&'a str>);

impl PartialEq for Utf8Line<'_> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Actions of `header_checks`, `body_checks` and milters as cleanup logs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckAction {
    Info,
    Warning,
    Reject,
    Discard,
    Hold,
    Replace,
    Prepend,
    Redirect,
    Filter,
    Bcc,
}

impl CheckAction {
    pub fn parse(s: &[u8]) -> Option<CheckAction> {
        Some(match s {
            b"info" => CheckAction::Info,
            b"warning" => CheckAction::Warning,
            b"reject" => CheckAction::Reject,
            b"discard" => CheckAction::Discard,
            b"hold" => CheckAction::Hold,
            b"replace" => CheckAction::Replace,
            b"prepend" => CheckAction::Prepend,
            b"redirect" => CheckAction::Redirect,
            b"filter" => CheckAction::Filter,
            b"bcc" => CheckAction::Bcc,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckAction::Info => "info",
            CheckAction::Warning => "warning",
            CheckAction::Reject => "reject",
            CheckAction::Discard => "discard",
            CheckAction::Hold => "hold",
            CheckAction::Replace => "replace",
            CheckAction::Prepend => "prepend",
            CheckAction::Redirect => "redirect",
            CheckAction::Filter => "filter",
            CheckAction::Bcc => "bcc",
        }
    }
}

/// Who or what a smtpd/postscreen/cleanup action refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Client<'a> {
    /// Reverse name (`unknown` when it did not resolve), or the whole `host[addr]` text when it has no brackets.
    pub name: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// The envelope and session facts appended to reject and check lines: `from=<> to=<> proto=ESMTP helo=<>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Envelope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<Text<'a>>,
}

/// TLS session facts (`Trusted TLS connection established to mx[1.2.3.4]:25: TLSv1.3 with cipher ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlsSession<'a> {
    /// `inbound` (smtpd/tlsproxy: "from") or `outbound` (smtp/lmtp: "to").
    pub outbound: bool,
    /// Anonymous, Untrusted, Trusted or Verified.
    pub trust: Text<'a>,
    pub peer: Client<'a>,
    pub protocol: Text<'a>,
    pub cipher: Text<'a>,
}

/// The kinds of bounce daemon notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    NonDelivery,
    Delay,
    DeliveryStatus,
    Other,
}

/// What the administrator did with `postsuper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostsuperAction {
    PlacedOnHold,
    ReleasedFromHold,
    Removed,
    Requeued,
    /// The summary line (`Deleted: 3 messages`).
    Summary,
}

/// A header/body check or milter action (see [`EventKind::Check`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckLine<'a> {
    pub action: CheckAction,
    /// `header`, `body`, `mime-header`, `nested-header`, or `END-OF-MESSAGE` etc. for milters.
    pub part: Text<'a>,
    /// The header name (for header checks), e.g. `X-Relaywatch-Tag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_name: Option<Text<'a>>,
    /// The header value or the body line.
    pub value: Text<'a>,
    /// Whether the header is one of the configured tag headers.
    pub is_tag: bool,
    /// `local` or `host[addr]`.
    pub client: Text<'a>,
    pub envelope: Envelope<'a>,
    /// The optional text of the rule (`delivery-tag`, `5.7.1 Message content rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text<'a>>,
    pub milter: bool,
}

/// An access-control decision (see [`EventKind::Reject`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectLine<'a> {
    /// `reject`, `milter-reject`, `hold`, `discard`, `warn`, `filter`, `redirect`.
    pub action: Text<'a>,
    /// The SMTP stage: `RCPT`, `MAIL`, `EHLO`, `HELO`, `CONNECT`, `DATA`, `BDAT`, `END-OF-MESSAGE`, `VRFY`, `ETRN`.
    pub stage: Text<'a>,
    pub client: Client<'a>,
    pub reply: Reply<'a>,
    pub envelope: Envelope<'a>,
}

/// The event kinds. Each variant names the line it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind<'a> {
    /// A delivery agent's (or cleanup's) verdict for one recipient. Boxed: it is by far the largest kind, and every
    /// other line's event was moved around at its size.
    Delivery(Box<DeliveryLine<'a>>),
    /// qmgr: `from=<...>, size=N, nrcpt=N (queue active)`.
    QueueActive {
        from: Text<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        nrcpt: Option<u32>,
    },
    /// qmgr: `from=<...>, status=expired, returned to sender` (also `force-expired`).
    Expired { from: Text<'a>, forced: bool },
    /// qmgr: `removed` — the message left the queue.
    Removed,
    /// Informational lines without delivery facts: qmgr `skipped, still being delivered`, `status=deferred (bounce
    /// failed)`, smtpd `discarding EHLO keywords`, postscreen/verify cache cleanups.
    Note { text: Text<'a> },
    /// cleanup: `message-id=<...>` (empty or malformed ids are kept as written).
    MessageId { message_id: Text<'a> },
    /// cleanup: `resent-message-id=<...>`.
    ResentMessageId { message_id: Text<'a> },
    /// cleanup: a header/body check or milter action with the header that matched. Boxed, like deliveries: the
    /// largest kinds would make every event as large.
    Check(Box<CheckLine<'a>>),
    /// pickup: `uid=N from=<...>` (mail submitted with sendmail).
    Pickup {
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        from: Text<'a>,
    },
    /// smtpd: `client=host[addr]:port, sasl_method=..., sasl_username=..., orig_queue_id=..., orig_client=...`.
    ClientAccepted {
        client: Client<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sasl_method: Option<Text<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sasl_username: Option<Text<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orig_queue_id: Option<Text<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orig_client: Option<Text<'a>>,
    },
    /// smtpd/postscreen/lmtp: `connect from host[addr]`.
    Connect { client: Client<'a> },
    /// smtpd: `disconnect from host[addr] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5`.
    Disconnect {
        client: Client<'a>,
        /// The raw counters as written, see [`crate::parse::command_counters`].
        counters: Text<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        commands_ok: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        commands_total: Option<u32>,
    },
    /// smtpd/postscreen/cleanup access-control decisions: `reject: RCPT from host[addr]: 550 5.1.1 ...; from=<> to=<> ...`
    /// with or without a queue id (`NOQUEUE`), and `milter-reject`, `hold`, `discard`, `filter`, `redirect`, `warn`.
    Reject(Box<RejectLine<'a>>),
    /// smtpd: `lost connection after DATA from host[addr]`.
    LostConnection { after: Text<'a>, client: Client<'a> },
    /// smtpd: `timeout after EHLO from host[addr]`.
    Timeout { after: Text<'a>, client: Client<'a> },
    /// smtpd: `improper command pipelining after EHLO from host[addr]` (a spam bot's tell), `bare <LF> received after
    /// DATA from host[addr]`.
    ClientMisbehaved {
        what: Text<'a>,
        after: Text<'a>,
        client: Client<'a>,
    },
    /// smtpd: `SSL_accept error from host[addr]: lost connection` — an inbound TLS handshake failed.
    TlsFailure {
        client: Client<'a>,
        detail: Text<'a>,
    },
    /// smtpd: `too many errors after RCPT from host[addr]`.
    TooManyErrors { after: Text<'a>, client: Client<'a> },
    /// smtpd, smtp, lmtp, tlsproxy: a TLS session was established.
    Tls(TlsSession<'a>),
    /// smtp/lmtp: trouble talking to a remote server that is not (yet) a recipient's status line.
    RemoteTrouble { reply: Reply<'a> },
    /// postscreen: `PASS NEW`, `DNSBL rank 3`, `PREGREET`, `HANGUP`, `NOQUEUE: reject: ...` and the rest.
    Postscreen {
        /// The verdict word(s): `CONNECT`, `PASS NEW`, `PASS OLD`, `DNSBL`, `PREGREET`, `HANGUP`, `DISCONNECT`,
        /// `ALLOWLISTED`, `DENYLISTED`, `WHITELISTED`, `BLACKLISTED`, `COMMAND PIPELINING`, `NON-SMTP COMMAND`, ...
        verdict: Text<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client: Option<Client<'a>>,
        detail: Text<'a>,
    },
    /// dnsblog: `addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.2`.
    DnsblListing {
        addr: Text<'a>,
        zone: Text<'a>,
        answer: Text<'a>,
    },
    /// bounce: `sender non-delivery notification: QID` — links the original message and the notice's queue id.
    BounceNotice {
        kind: NoticeKind,
        /// `sender` or `postmaster`.
        audience: Text<'a>,
        notice_queue_id: Text<'a>,
    },
    /// postsuper: held, released, removed, requeued.
    Postsuper {
        action: PostsuperAction,
        text: Text<'a>,
    },
    /// master and postfix-script: `daemon started -- version 3.7.11`, `reload`, `terminating on signal 15`, ...
    Lifecycle { text: Text<'a> },
    /// `warning:`, `error:`, `fatal:`, `panic:` from any Postfix daemon.
    Diagnostic { severity: Text<'a>, text: Text<'a> },
    /// anvil/scache `statistics:` lines.
    Statistics { text: Text<'a> },
    /// opendkim: `QID: DKIM-Signature field added (s=<selector>, d=<domain>)` — the milter signed the message with this
    /// queue id. Not a Postfix line, but the one line of another program the correlator needs: it is how Relaywatch
    /// learns the selectors a domain really signs with. The line's `instance` is `opendkim`; the correlator matches it
    /// to the message by host and queue id.
    DkimSignature {
        selector: Text<'a>,
        domain: Text<'a>,
    },
    /// A line of another program (dovecot, amavis, opendkim's other lines, ...).
    NotPostfix { program: Text<'a> },
    /// A Postfix line (or an unreadable one) this parser does not understand: counted, never dropped silently.
    Unknown { raw: Text<'a> },
}
