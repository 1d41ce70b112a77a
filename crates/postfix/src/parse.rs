//! Line parser: bytes in, one typed [`Event`] out. No allocation, no regular expressions; byte-prefix dispatch on the
//! daemon name and the message's first words.

use std::cell::Cell;

use crate::bytes::{memchr, memrchr, program_name_end, starts_with};
use crate::event::{
    CheckAction, CheckLine, Client, Delays, DeliveryLine, Envelope, Event, EventKind, Header,
    NoticeKind, PostsuperAction, Program, RejectLine, Status, Text, TlsSession, Utf8Line,
};
use crate::reply::Reply;
use crate::time::Timestamp;
use crate::time::{infer_year, parse_rfc3164, parse_rfc3339};

/// The default tag header applications put on their mail (see the Postfix `header_checks` snippet in the docs).
pub const DEFAULT_TAG_HEADER: &str = "X-Relaywatch-Tag";

/// How to read lines.
#[derive(Debug, Clone)]
pub struct ParserConfig {
    /// Header names whose `header_checks` lines carry the application's message tag (case-insensitive).
    pub tag_headers: Vec<String>,
    /// Unix seconds that year-less RFC 3164 stamps are read relative to: "now" for a live log, the file's modification
    /// time for an old file. A stamp is placed in the latest year that is not after this time (plus the slack).
    pub reference_unix: i64,
    /// The UTC offset, in minutes, of the wall clock that wrote RFC 3164 stamps (they carry no zone).
    pub rfc3164_offset_minutes: i16,
    /// How far after the reference time a year-less stamp may lie and still be this year (clock skew, zones).
    pub future_slack_secs: i64,
    /// Prefixes of the `syslog_name`s Postfix instances log under (`postfix` covers `postfix-out`, `postfix-in`).
    pub syslog_names: Vec<String>,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            tag_headers: vec![DEFAULT_TAG_HEADER.to_string()],
            reference_unix: 0,
            rfc3164_offset_minutes: 0,
            future_slack_secs: 86_400,
            syslog_names: vec!["postfix".to_string()],
        }
    }
}

/// Turns log lines into events. Cheap to build; `parse_line` takes `&self`, so one parser serves any number of lines
/// (on one thread: it remembers the last day it saw, to skip calendar arithmetic).
#[derive(Debug, Clone)]
pub struct Parser {
    config: ParserConfig,
    tag_headers: Vec<Vec<u8>>,
    /// (month, day, Unix second of that day's start) of the last RFC 3164 stamp.
    day_cache: Cell<(u32, u32, i64)>,
    /// The last RFC 3164 stamp as written and as read: a log writes many lines per second, and comparing sixteen
    /// bytes is cheaper than reading them again.
    stamp_cache: Cell<Option<StampCache>>,
}

/// The first sixteen bytes of a line (an RFC 3164 stamp reads no further), the stamp's length and its time.
#[derive(Debug, Clone, Copy)]
struct StampCache {
    prefix: [u8; 16],
    used: usize,
    unix_micros: i64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(ParserConfig::default())
    }
}

impl Parser {
    pub fn new(config: ParserConfig) -> Parser {
        let tag_headers = config
            .tag_headers
            .iter()
            .map(|h| h.as_bytes().to_ascii_lowercase())
            .collect();
        Parser {
            config,
            tag_headers,
            day_cache: Cell::new((0, 0, 0)),
            stamp_cache: Cell::new(None),
        }
    }

    pub fn config(&self) -> &ParserConfig {
        &self.config
    }

    /// Moves the reference time for year inference (a tailing agent calls this as time passes).
    pub fn set_reference_unix(&mut self, reference_unix: i64) {
        self.config.reference_unix = reference_unix;
        self.day_cache.set((0, 0, 0));
        self.stamp_cache.set(None);
    }

    /// Parses one line (with or without its trailing newline). Never panics, whatever the bytes.
    pub fn parse_line<'a>(&self, line: &'a [u8]) -> Event<'a> {
        let line = trim_newline(line);
        match self.parse_header(line) {
            Some((header, msg)) => {
                let mut event = self.parse_message(header, msg);
                // An unknown line is reported whole, header included.
                if let EventKind::Unknown { raw } = &mut event.kind {
                    *raw = Text(line);
                }
                event
            }
            None => Event {
                header: None,
                queue_id: None,
                kind: EventKind::Unknown { raw: Text(line) },
            },
        }
    }

    /// Parses a message whose header was read elsewhere (journald's `SYSLOG_IDENTIFIER` and `MESSAGE`, or a test
    /// fixture that holds only the message).
    pub fn parse_message<'a>(&self, header: Header<'a>, msg: &'a [u8]) -> Event<'a> {
        // Policy servers and filters (policy-spf, postfwd) often log under Postfix's syslog name; they are not Postfix.
        let p = header.program;
        let is_postfix = self
            .config
            .syslog_names
            .iter()
            .any(|n| starts_with(p.instance.0, n.as_bytes()))
            && p.daemon.0 != p.name.0
            && is_postfix_daemon(p.daemon.0);
        if !is_postfix {
            // opendkim's signing line names the selector and domain of a message Postfix is handling.
            if p.name.0 == b"opendkim"
                && let Some((qid, kind)) = parse_opendkim_signature(msg)
            {
                return Event {
                    header: Some(header),
                    queue_id: Some(Text(qid)),
                    kind,
                };
            }
            return Event {
                header: Some(header),
                queue_id: None,
                kind: EventKind::NotPostfix {
                    program: header.program.name,
                },
            };
        }
        let (mut queue_id, body) = split_queue_id(msg);
        // `warning: QID: text`: the diagnostic is about a message, so keep its queue id.
        if queue_id.is_none()
            && let Some(EventKind::Diagnostic { severity, text }) = parse_diagnostic(msg)
            && let (Some(q), rest) = split_queue_id(text.0)
        {
            queue_id = Some(q);
            let kind = EventKind::Diagnostic {
                severity,
                text: Text(rest),
            };
            return Event {
                header: Some(header),
                queue_id: queue_id.map(Text),
                kind,
            };
        }
        let kind = self
            .parse_body(header.program.daemon.0, queue_id.is_some(), body)
            .unwrap_or(EventKind::Unknown { raw: Text(msg) });
        Event {
            header: Some(header),
            queue_id: queue_id.map(Text),
            kind,
        }
    }

    /// Reads the syslog header: RFC 3164, RFC 3339 (as rsyslog and journald's short-iso write it) or RFC 5424.
    pub fn parse_header<'a>(&self, line: &'a [u8]) -> Option<(Header<'a>, &'a [u8])> {
        let mut s = line;
        // An optional `<PRI>` as written by some relays and by RFC 5424.
        if s.first() == Some(&b'<') {
            let end = memchr(b'>', &s[..s.len().min(6)])?;
            if end < 2 || !s[1..end].iter().all(u8::is_ascii_digit) {
                return None;
            }
            s = &s[end + 1..];
            if let Some(rest) = s.strip_prefix(b"1 ") {
                return self.parse_rfc5424(rest);
            }
        }
        let (time, used) = if s.first().is_some_and(u8::is_ascii_digit) {
            parse_rfc3339(s)?
        } else if let Some(prefix) = s.first_chunk::<16>()
            && let Some(cached) = self.stamp_cache.get()
            && cached.prefix == *prefix
        {
            (
                Timestamp {
                    unix_micros: cached.unix_micros,
                    offset_minutes: self.config.rfc3164_offset_minutes,
                },
                cached.used,
            )
        } else {
            let (stamp, used) = parse_rfc3164(s)?;
            let off = self.config.rfc3164_offset_minutes;
            // Lines come in runs of the same day: remember the day's start instead of redoing the calendar.
            let (month, day, day_start) = self.day_cache.get();
            let secs = if month == stamp.month
                && day == stamp.day
                && day_start + i64::from(stamp.second_of_day)
                    <= self.config.reference_unix + self.config.future_slack_secs
            {
                day_start + i64::from(stamp.second_of_day)
            } else {
                let secs = infer_year(
                    stamp,
                    self.config.reference_unix,
                    off,
                    self.config.future_slack_secs,
                )?;
                let start = secs - i64::from(stamp.second_of_day);
                // Only cache a day whose last second is also in the past, so the year choice cannot differ within it.
                if start + 86_399 <= self.config.reference_unix + self.config.future_slack_secs {
                    self.day_cache.set((stamp.month, stamp.day, start));
                }
                secs
            };
            if let Some(prefix) = s.first_chunk::<16>() {
                self.stamp_cache.set(Some(StampCache {
                    prefix: *prefix,
                    used,
                    unix_micros: secs * 1_000_000,
                }));
            }
            (
                Timestamp {
                    unix_micros: secs * 1_000_000,
                    offset_minutes: off,
                },
                used,
            )
        };
        let s = s.get(used..)?.strip_prefix(b" ")?;
        let sp = memchr(b' ', s)?;
        let host = &s[..sp];
        let s = &s[sp + 1..];
        let (program, pid, msg) = parse_tag(s)?;
        Some((
            Header {
                time,
                host: Text(host),
                program,
                pid,
            },
            msg,
        ))
    }

    fn parse_rfc5424<'a>(&self, s: &'a [u8]) -> Option<(Header<'a>, &'a [u8])> {
        let (time, used) = parse_rfc3339(s)?;
        let s = s.get(used..)?.strip_prefix(b" ")?;
        let mut fields = [&b""[..]; 4];
        let mut rest = s;
        for f in &mut fields {
            let sp = memchr(b' ', rest)?;
            *f = &rest[..sp];
            rest = &rest[sp + 1..];
        }
        let [host, app, procid, _msgid] = fields;
        // Structured data: `-` or one or more `[...]` elements.
        let msg = if let Some(r) = rest.strip_prefix(b"-") {
            r.strip_prefix(b" ").unwrap_or(r)
        } else if rest.first() == Some(&b'[') {
            let mut i = 0;
            let mut in_quotes = false;
            while i < rest.len() {
                match rest[i] {
                    b'\\' => i += 1,
                    b'"' => in_quotes = !in_quotes,
                    b']' if !in_quotes && rest.get(i + 1) != Some(&b'[') => break,
                    _ => {}
                }
                i += 1;
            }
            let r = rest.get(i + 1..).unwrap_or(b"");
            r.strip_prefix(b" ").unwrap_or(r)
        } else {
            rest
        };
        let msg = msg.strip_prefix("\u{feff}".as_bytes()).unwrap_or(msg);
        let pid = parse_u32(procid);
        Some((
            Header {
                time,
                host: Text(host),
                program: Program::from_name(app),
                pid,
            },
            msg,
        ))
    }

    /// Parses what follows the queue id (or the whole message when there is none) for one daemon.
    fn parse_body<'a>(&self, daemon: &[u8], has_qid: bool, m: &'a [u8]) -> Option<EventKind<'a>> {
        if has_qid && m.starts_with(b"to=") {
            return parse_delivery(m).map(|d| EventKind::Delivery(Box::new(d)));
        }
        // Hand-made logs put qmgr's envelope line under other daemons; pickup's own `from=<>` is a different line.
        if has_qid
            && daemon != b"pickup"
            && m.starts_with(b"from=")
            && let Some(k) = parse_qmgr(m)
        {
            return Some(k);
        }
        match daemon {
            b"qmgr" => parse_qmgr(m),
            b"cleanup" => self.parse_cleanup(m),
            b"smtpd" => parse_smtpd(m),
            b"smtp" | b"lmtp" => parse_smtp(m).or_else(|| self.parse_cleanup(m)),
            b"pickup" => parse_pickup(m),
            b"bounce" => parse_bounce(m),
            b"postscreen" => parse_postscreen(m),
            b"postsuper" => parse_postsuper(m),
            b"master" | b"postfix-script" | b"postfix" | b"postlog" | b"postlogd" => {
                parse_lifecycle(m)
            }
            b"anvil" | b"scache" => m
                .strip_prefix(b"statistics: ")
                .map(|t| EventKind::Statistics { text: Text(t) }),
            b"dnsblog" => parse_dnsblog(m),
            b"tlsproxy" => parse_tls(m).or_else(|| parse_postscreen(m)),
            _ => None,
        }
        .or_else(|| parse_diagnostic(m))
        .or_else(|| {
            (m.starts_with(b"cache ") && find(m, b" cleanup: ").is_some())
                .then_some(EventKind::Note { text: Text(m) })
        })
        .or_else(|| {
            find(m, b" has changed -- restarting").map(|_| EventKind::Lifecycle { text: Text(m) })
        })
    }

    fn parse_cleanup<'a>(&self, m: &'a [u8]) -> Option<EventKind<'a>> {
        if let Some(id) = m.strip_prefix(b"message-id=") {
            return Some(EventKind::MessageId {
                message_id: Text(id),
            });
        }
        if let Some(id) = m.strip_prefix(b"resent-message-id=") {
            return Some(EventKind::ResentMessageId {
                message_id: Text(id),
            });
        }
        // `milter-header-<action>: header ...` is milter_header_checks; `milter-reject: END-OF-MESSAGE from ...` is
        // the milter's own verdict.
        let (milter, m) = match m.strip_prefix(b"milter-header-") {
            Some(rest) => (true, rest),
            None if m.starts_with(b"milter-") => return parse_reject(m),
            None => (false, m),
        };
        let colon = memchr(b':', &m[..m.len().min(12)])?;
        let action = CheckAction::parse(&m[..colon])?;
        let rest = m[colon + 1..].strip_prefix(b" ")?;
        let sp = memchr(b' ', rest)?;
        let part = &rest[..sp];
        let rest = &rest[sp + 1..];
        let (matched, client, envelope, text) = match rfind(rest, b"; from=<") {
            Some(env_at) => {
                let client_at = rfind(&rest[..env_at], b" from ")?;
                let (envelope, text) = parse_envelope(&rest[env_at + 2..]);
                (
                    &rest[..client_at],
                    &rest[client_at + 6..env_at],
                    envelope,
                    text,
                )
            }
            // smtp_header_checks lines and some hand-written ones carry no envelope.
            None => (rest, &b""[..], Envelope::default(), None),
        };
        let (header_name, value) = if part == b"header" || part.ends_with(b"-header") {
            match memchr(b':', matched) {
                Some(c) => {
                    let v = &matched[c + 1..];
                    (Some(&matched[..c]), v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (None, matched),
            }
        } else {
            (None, matched)
        };
        let is_tag =
            header_name.is_some_and(|n| self.tag_headers.iter().any(|t| t.eq_ignore_ascii_case(n)));
        Some(EventKind::Check(Box::new(CheckLine {
            action,
            part: Text(part),
            header_name: header_name.map(Text),
            value: Text(value),
            is_tag,
            client: Text(client),
            envelope,
            text: text.map(Text),
            milter,
        })))
    }
}

/// Finds `needle` by scanning for its first non-space byte with memchr: for the short, fixed needles of Postfix
/// lines this beats building a `memmem` searcher per call.
#[inline]
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let k = needle.iter().position(|&b| b != b' ').unwrap_or(0);
    // An index into `hay[k..]` of the anchor byte is the needle's start in `hay`.
    memchr::memchr_iter(needle[k], hay.get(k..)?).find(|&i| hay[i..].starts_with(needle))
}

/// The last occurrence of `needle`, see [`find`].
#[inline]
pub(crate) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let k = needle.iter().position(|&b| b != b' ').unwrap_or(0);
    memchr::memrchr_iter(needle[k], hay.get(k..)?).find(|&i| hay[i..].starts_with(needle))
}

fn trim_newline(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// `postfix/smtp[123]: message` → program, pid, message.
fn parse_tag(s: &[u8]) -> Option<(Program<'_>, Option<u32>, &[u8])> {
    let (end, slashes) = program_name_end(s)?;
    let name = &s[..end];
    if name.is_empty() {
        return None;
    }
    let (pid, rest) = match s[end] {
        b'[' => {
            let close = memchr(b']', &s[end..])? + end;
            let pid = parse_u32(&s[end + 1..close])?;
            (Some(pid), s[close + 1..].strip_prefix(b":")?)
        }
        b':' => (None, &s[end + 1..]),
        _ => return None,
    };
    let msg = rest.strip_prefix(b" ").unwrap_or(rest);
    Some((program_at(name, slashes), pid, msg))
}

impl<'a> Program<'a> {
    /// Splits a program name as Postfix builds it (`postfix-out/submission/smtpd`) into instance, service and daemon,
    /// for sources that carry the name in a field of its own (journald's `SYSLOG_IDENTIFIER`): build a [`Header`]
    /// with it and call [`Parser::parse_message`].
    pub fn from_name(name: &'a [u8]) -> Program<'a> {
        let slashes = memchr(b'/', name).map(|first| (first, memrchr(b'/', name).unwrap_or(first)));
        program_at(name, slashes)
    }
}

/// The program `name` with its first and last `/` at `slashes`.
fn program_at(name: &[u8], slashes: Option<(usize, usize)>) -> Program<'_> {
    match slashes {
        None => Program {
            name: Text(name),
            instance: Text(name),
            service: None,
            daemon: Text(name),
        },
        Some((first, last)) => {
            let service = (last > first).then(|| Text(&name[first + 1..last]));
            Program {
                name: Text(name),
                instance: Text(&name[..first]),
                service,
                daemon: Text(&name[last + 1..]),
            }
        }
    }
}

fn is_postfix_daemon(d: &[u8]) -> bool {
    matches!(
        d,
        b"smtp"
            | b"smtpd"
            | b"lmtp"
            | b"qmgr"
            | b"cleanup"
            | b"pickup"
            | b"local"
            | b"virtual"
            | b"pipe"
            | b"error"
            | b"retry"
            | b"discard"
            | b"bounce"
            | b"postscreen"
            | b"dnsblog"
            | b"tlsproxy"
            | b"anvil"
            | b"scache"
            | b"master"
            | b"postsuper"
            | b"trivial-rewrite"
            | b"verify"
            | b"tlsmgr"
            | b"proxymap"
            | b"showq"
            | b"oqmgr"
            | b"defer"
            | b"trace"
            | b"flush"
            | b"postqueue"
            | b"postdrop"
            | b"sendmail"
            | b"postfix-script"
            | b"postfix"
            | b"postlog"
            | b"postlogd"
            | b"spawn"
            | b"qmqpd"
            | b"postmap"
            | b"postalias"
            | b"postconf"
            | b"postmulti"
    )
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// Postfix writes delays as `0.06`, `24` or `0`; anything fancier goes through the standard library. The fast path
/// divides one exact integer by one exact power of ten, a single rounding, so it agrees with `str::parse`.
fn parse_f64(s: &[u8]) -> Option<f64> {
    // Exact powers of ten (all below 2^53).
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let mut v: u64 = 0;
    let mut digits = 0;
    // Digits before the dot, once it is seen.
    let mut dot = None;
    for &b in s {
        match b {
            b'0'..=b'9' if digits < 15 => {
                v = v * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if dot.is_none() => dot = Some(digits),
            _ => return parse_f64_slow(s),
        }
    }
    let int_digits = dot.unwrap_or(digits);
    let frac_digits = digits - int_digits;
    if int_digits == 0 || (dot.is_some() && frac_digits == 0) {
        return parse_f64_slow(s);
    }
    Some(v as f64 / POW10[frac_digits])
}

/// Anything [`parse_f64`]'s fast path does not take (exponents, a missing integer part, more than 15 digits).
fn parse_f64_slow(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s)
        .ok()?
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

/// Byte classes of queue-id characters: a digit, an upper-case hex letter, another letter; 0 ends the id.
const DIGIT: u8 = 1;
const HEX_LETTER: u8 = 2;
const OTHER_LETTER: u8 = 4;
const QUEUE_ID_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'F' => HEX_LETTER,
            b'a'..=b'z' | b'G'..=b'Z' => OTHER_LETTER,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// Splits a leading queue id (`B7438B6323: ` or the long form `3mPVKl0Mhjz7sXv: `) off a message.
pub fn split_queue_id(msg: &[u8]) -> (Option<&[u8]>, &[u8]) {
    // One pass: length, and whether the id has a digit or is all upper-case hex (which tells it from words). A
    // table lookup per byte: this runs on every line.
    let mut n = 0;
    let mut seen = 0u8;
    while n < msg.len() && n <= 24 {
        let class = QUEUE_ID_CLASS[usize::from(msg[n])];
        if class == 0 {
            break;
        }
        seen |= class;
        n += 1;
    }
    let has_digit = seen & DIGIT != 0;
    let upper_hex = seen & OTHER_LETTER == 0;
    if (5..=24).contains(&n)
        && msg.get(n) == Some(&b':')
        && matches!(msg.get(n + 1), Some(b' ') | None)
    {
        let id = &msg[..n];
        if (has_digit || upper_hex) && id != b"NOQUEUE" {
            return (Some(id), msg.get(n + 2..).unwrap_or(b""));
        }
    }
    (None, msg)
}

/// opendkim's `QID: DKIM-Signature field added (s=<selector>, d=<domain>)` (opendkim.c, `mlfi_eom`). Any other
/// opendkim line (verification results, `no signing table match`, start-up) is None: not Relaywatch's business.
fn parse_opendkim_signature(msg: &[u8]) -> Option<(&[u8], EventKind<'_>)> {
    let (qid, rest) = split_queue_id(msg);
    let qid = qid?;
    let inner = rest
        .strip_prefix(b"DKIM-Signature field added (")?
        .strip_suffix(b")")?;
    let (mut selector, mut domain) = (None, None);
    for part in inner.split(|&b| b == b',') {
        let part = part.strip_prefix(b" ").unwrap_or(part);
        if let Some(v) = part.strip_prefix(b"s=") {
            selector = Some(v);
        } else if let Some(v) = part.strip_prefix(b"d=") {
            domain = Some(v);
        }
    }
    // A value with spaces or nothing at all is not what opendkim writes; better no event than a wrong selector.
    let ok =
        |v: &[u8]| !v.is_empty() && v.len() <= 253 && !v.iter().any(|b| b.is_ascii_whitespace());
    let (selector, domain) = (selector.filter(|v| ok(v))?, domain.filter(|v| ok(v))?);
    Some((
        qid,
        EventKind::DkimSignature {
            selector: Text(selector),
            domain: Text(domain),
        },
    ))
}

/// `to=<x>, orig_to=<y>, relay=r, conn_use=2, delay=0.5, delays=a/b/c/d, dsn=5.1.1, status=bounced (reply)`.
pub fn parse_delivery(m: &[u8]) -> Option<DeliveryLine<'_>> {
    let mut d = DeliveryLine {
        to: Text(b""),
        orig_to: None,
        relay: None,
        conn_use: None,
        delay: None,
        delays: None,
        dsn: None,
        status: Status::Other,
        reply: Reply::empty(),
        utf8: Utf8Line(std::str::from_utf8(m).ok()),
    };
    let mut s = m;
    let mut have_status = false;
    while !s.is_empty() {
        let eq = memchr(b'=', s)?;
        let key = &s[..eq];
        let v = &s[eq + 1..];
        if key == b"status" {
            let end = memchr(b' ', v).unwrap_or(v.len());
            d.status = Status::parse(&v[..end]);
            have_status = true;
            let rest = &v[end..];
            if let Some(r) = rest.strip_prefix(b" (") {
                let r = r.strip_suffix(b")").unwrap_or(r);
                d.reply = Reply::parse(r);
            }
            break;
        }
        let (value, next) = if v.first() == Some(&b'<') {
            // Addresses may hold commas; the value ends at the first `>` that a `,` follows.
            let close = find(v, b">,")
                .map(|i| i + 1)
                .or_else(|| (v.last() == Some(&b'>')).then_some(v.len()))?;
            (&v[1..close - 1], &v[close..])
        } else {
            let end = memchr(b',', v).unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        match key {
            b"to" => d.to = Text(value),
            b"orig_to" => d.orig_to = Some(Text(value)),
            b"relay" => d.relay = Some(Text(value)),
            b"conn_use" => d.conn_use = parse_u32(value),
            b"delay" => d.delay = parse_f64(value),
            b"delays" => d.delays = parse_delays(value),
            b"dsn" => d.dsn = Some(Text(value)),
            _ => {}
        }
        s = next.strip_prefix(b",").unwrap_or(next);
        s = s.strip_prefix(b" ").unwrap_or(s);
    }
    have_status.then_some(d)
}

fn parse_delays(v: &[u8]) -> Option<Delays> {
    let mut it = v.split(|&b| b == b'/');
    let d = Delays {
        before_queue: parse_f64(it.next()?)?,
        in_queue: parse_f64(it.next()?)?,
        connection: parse_f64(it.next()?)?,
        transmission: parse_f64(it.next()?)?,
    };
    it.next().is_none().then_some(d)
}

/// `from=<x>, size=1, nrcpt=1 (queue active)`, `from=<x>, status=expired, returned to sender`, `removed`.
fn parse_qmgr(m: &[u8]) -> Option<EventKind<'_>> {
    if m == b"removed" {
        return Some(EventKind::Removed);
    }
    if let Some(rest) = m.strip_prefix(b"from=") {
        // Old Postfix versions wrote the address without angle brackets.
        let (from, tail) = match rest.strip_prefix(b"<") {
            Some(r) => {
                let close = find(r, b">,").or_else(|| memrchr(b'>', r))?;
                (&r[..close], r.get(close + 1..).unwrap_or(b""))
            }
            None => {
                let end = memchr(b',', rest).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let tail = tail.strip_prefix(b", ").unwrap_or(tail);
        if let Some(st) = tail.strip_prefix(b"status=") {
            let end = memchr(b',', st).unwrap_or(st.len());
            let forced = match &st[..end] {
                b"expired" => false,
                b"force-expired" => true,
                _ => return None,
            };
            return Some(EventKind::Expired {
                from: Text(from),
                forced,
            });
        }
        let mut size = None;
        let mut nrcpt = None;
        for field in tail.split(|&b| b == b',') {
            let field = field.strip_prefix(b" ").unwrap_or(field);
            if let Some(v) = field.strip_prefix(b"size=") {
                let end = memchr(b' ', v).unwrap_or(v.len());
                size = parse_u64(&v[..end]);
            } else if let Some(v) = field.strip_prefix(b"nrcpt=") {
                let end = memchr(b' ', v).unwrap_or(v.len());
                nrcpt = parse_u32(&v[..end]);
            }
        }
        return Some(EventKind::QueueActive {
            from: Text(from),
            size,
            nrcpt,
        });
    }
    if m.starts_with(b"skipped") || m.starts_with(b"to=<") || m.starts_with(b"status=") {
        return Some(EventKind::Note { text: Text(m) });
    }
    None
}

fn parse_pickup(m: &[u8]) -> Option<EventKind<'_>> {
    let (uid, rest) = match m.strip_prefix(b"uid=") {
        Some(r) => {
            let sp = memchr(b' ', r)?;
            (parse_u32(&r[..sp]), &r[sp + 1..])
        }
        None => (None, m),
    };
    let from = rest.strip_prefix(b"from=<")?;
    let from = from.strip_suffix(b">").unwrap_or(from);
    Some(EventKind::Pickup {
        uid,
        from: Text(from),
    })
}

/// `host[addr]`, `host[addr]:port` or postscreen's `[addr]:port`.
pub fn parse_client(s: &[u8]) -> Client<'_> {
    if let Some(open) = memchr(b'[', s)
        && let Some(close) = memrchr(b']', s).filter(|&c| c > open)
    {
        let port = s
            .get(close + 1..)
            .and_then(|p| p.strip_prefix(b":"))
            .and_then(parse_u32)
            .and_then(|p| u16::try_from(p).ok());
        return Client {
            name: Text(&s[..open]),
            addr: Some(Text(&s[open + 1..close])),
            port,
        };
    }
    Client {
        name: Text(s),
        addr: None,
        port: None,
    }
}

/// `from=<a> to=<b> proto=ESMTP helo=<c>` then an optional `: text`. Returns the envelope and that text.
fn parse_envelope(s: &[u8]) -> (Envelope<'_>, Option<&[u8]>) {
    let mut e = Envelope::default();
    let mut rest = s;
    loop {
        rest = rest.strip_prefix(b" ").unwrap_or(rest);
        let Some(eq) = memchr(b'=', rest) else { break };
        let key = &rest[..eq];
        if key.is_empty() || !key.iter().all(|b| b.is_ascii_lowercase() || *b == b'_') {
            break;
        }
        let v = &rest[eq + 1..];
        let (value, next) = if v.first() == Some(&b'<') {
            match memchr(b'>', v) {
                Some(c) => (&v[1..c], &v[c + 1..]),
                None => (&v[1..], &b""[..]),
            }
        } else {
            let end = v
                .iter()
                .position(|&b| b == b' ' || b == b':' || b == b',')
                .unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        match key {
            b"from" => e.from = Some(Text(value)),
            b"to" => e.to = Some(Text(value)),
            b"proto" => e.proto = Some(Text(value)),
            b"helo" => e.helo = Some(Text(value)),
            _ => {}
        }
        rest = next.strip_prefix(b",").unwrap_or(next);
        if rest.starts_with(b": ") || rest.is_empty() {
            break;
        }
    }
    let text = rest
        .strip_prefix(b": ")
        .or_else(|| rest.strip_prefix(b":"))
        .filter(|t| !t.is_empty());
    (e, text)
}

/// `reject: RCPT from host[addr]: 550 5.1.1 <x>: text; from=<a> to=<b> proto=ESMTP helo=<c>` (also `milter-reject`,
/// `hold`, `discard`, `warn`, `filter`, `redirect`).
fn parse_reject(m: &[u8]) -> Option<EventKind<'_>> {
    let colon = memchr(b':', &m[..m.len().min(20)])?;
    let action = &m[..colon];
    if !matches!(
        action,
        b"reject"
            | b"milter-reject"
            | b"milter-discard"
            | b"milter-hold"
            | b"hold"
            | b"discard"
            | b"warn"
            | b"filter"
            | b"redirect"
            | b"reject_warning"
            | b"bcc"
            | b"proxy-accept"
            | b"proxy-reject"
    ) {
        return None;
    }
    let rest = m[colon + 1..].strip_prefix(b" ")?;
    let sp = memchr(b' ', rest)?;
    let mut stage = &rest[..sp];
    let (client, rest) = match rest[sp + 1..].strip_prefix(b"from ") {
        Some(r) => {
            let cend = find(r, b": ")?;
            (parse_client(&r[..cend]), &r[cend + 2..])
        }
        // `proxy-accept: END-OF-MESSAGE: 250 ...` names no client.
        None if stage.ends_with(b":") => {
            stage = &stage[..stage.len() - 1];
            (
                Client {
                    name: Text(b""),
                    addr: None,
                    port: None,
                },
                &rest[sp + 1..],
            )
        }
        None => return None,
    };
    let env_at = rfind(rest, b"; from=<").or_else(|| rfind(rest, b"; proto="));
    let (reply, envelope) = match env_at {
        Some(i) => (&rest[..i], parse_envelope(&rest[i + 2..]).0),
        None => (rest, Envelope::default()),
    };
    Some(EventKind::Reject(Box::new(RejectLine {
        action: Text(action),
        stage: Text(stage),
        client,
        reply: Reply::parse(reply),
        envelope,
    })))
}

/// `<what> after <STAGE> from host[addr]` (lost connection, timeout, too many errors).
fn after_from(rest: &[u8]) -> Option<(Text<'_>, Client<'_>)> {
    let rest = rest.strip_prefix(b" after ")?;
    let i = find(rest, b" from ")?;
    let client = &rest[i + 6..];
    let client = &client[..memchr(b':', client)
        .filter(|&c| client.get(c + 1) == Some(&b' '))
        .unwrap_or(client.len())];
    Some((Text(&rest[..i]), parse_client(client)))
}

fn parse_smtpd(m: &[u8]) -> Option<EventKind<'_>> {
    if let Some(c) = m.strip_prefix(b"client=") {
        let mut parts = c.split(|&b| b == b',');
        let client = parse_client(parts.next()?);
        let (mut sasl_method, mut sasl_username, mut orig_queue_id, mut orig_client) =
            (None, None, None, None);
        for p in parts {
            let p = p.strip_prefix(b" ").unwrap_or(p);
            if let Some(v) = p.strip_prefix(b"sasl_method=") {
                sasl_method = Some(Text(v));
            } else if let Some(v) = p.strip_prefix(b"sasl_username=") {
                sasl_username = Some(Text(v));
            } else if let Some(v) = p.strip_prefix(b"orig_queue_id=") {
                orig_queue_id = Some(Text(v));
            } else if let Some(v) = p.strip_prefix(b"orig_client=") {
                orig_client = Some(Text(v));
            }
        }
        return Some(EventKind::ClientAccepted {
            client,
            sasl_method,
            sasl_username,
            orig_queue_id,
            orig_client,
        });
    }
    if let Some(c) = m.strip_prefix(b"connect from ") {
        return Some(EventKind::Connect {
            client: parse_client(c),
        });
    }
    if let Some(c) = m.strip_prefix(b"disconnect from ") {
        let (client, counters) = match memchr(b' ', c) {
            Some(sp) => (&c[..sp], &c[sp + 1..]),
            None => (c, &b""[..]),
        };
        let (mut commands_ok, mut commands_total) = (None, None);
        for (name, ok, total) in command_counters(counters) {
            if name == b"commands" {
                commands_ok = Some(ok);
                commands_total = Some(total);
            }
        }
        return Some(EventKind::Disconnect {
            client: parse_client(client),
            counters: Text(counters),
            commands_ok,
            commands_total,
        });
    }
    if let Some(r) = m.strip_prefix(b"NOQUEUE: ") {
        if !r.starts_with(b"reject: ")
            && !r.starts_with(b"milter-")
            && let Some(k) = parse_smtpd(r)
        {
            return Some(k);
        }
        return parse_reject(r);
    }
    for what in [&b"improper command pipelining"[..], b"bare <LF> received"] {
        if let Some(r) = m.strip_prefix(what) {
            let (after, client) = after_from(r)?;
            return Some(EventKind::ClientMisbehaved {
                what: Text(what),
                after,
                client,
            });
        }
    }
    if let Some(r) = m.strip_prefix(b"SSL_accept error from ") {
        let cend = find(r, b": ").unwrap_or(r.len());
        let detail = r.get(cend + 2..).unwrap_or(b"");
        return Some(EventKind::TlsFailure {
            client: parse_client(&r[..cend]),
            detail: Text(detail),
        });
    }
    if m.starts_with(b"discarding EHLO keywords") {
        return Some(EventKind::Note { text: Text(m) });
    }
    if let Some(r) = m.strip_prefix(b"lost connection") {
        let (after, client) = after_from(r)?;
        return Some(EventKind::LostConnection { after, client });
    }
    if let Some(r) = m.strip_prefix(b"timeout") {
        let (after, client) = after_from(r)?;
        return Some(EventKind::Timeout { after, client });
    }
    if let Some(r) = m.strip_prefix(b"too many errors") {
        let (after, client) = after_from(r)?;
        return Some(EventKind::TooManyErrors { after, client });
    }
    parse_tls(m).or_else(|| parse_reject(m))
}

/// Iterates over `ehlo=1 mail=1 rcpt=0/1 commands=2/3` as (name, succeeded, total).
pub fn command_counters(s: &[u8]) -> impl Iterator<Item = (&[u8], u32, u32)> {
    s.split(|&b| b == b' ').filter_map(|item| {
        let eq = memchr(b'=', item)?;
        let v = &item[eq + 1..];
        let (ok, total) = match memchr(b'/', v) {
            Some(sl) => (parse_u32(&v[..sl])?, parse_u32(&v[sl + 1..])?),
            None => {
                let n = parse_u32(v)?;
                (n, n)
            }
        };
        Some((&item[..eq], ok, total))
    })
}

/// `Anonymous TLS connection established from host[addr]: TLSv1.3 with cipher X (256/256 bits)` and the outbound
/// `Verified TLS connection established to mx[addr]:25: ...`.
fn parse_tls(m: &[u8]) -> Option<EventKind<'_>> {
    // Old versions wrote no trust word: `TLS connection established from ...`.
    let at = find(&m[..m.len().min(48)], b"TLS connection established ")?;
    let trust = m[..at].strip_suffix(b" ").unwrap_or(&m[..at]);
    let rest = &m[at + 27..];
    let (outbound, rest) = if let Some(r) = rest.strip_prefix(b"to ") {
        (true, r)
    } else {
        (false, rest.strip_prefix(b"from ")?)
    };
    let cend = find(rest, b": ")?;
    let peer = parse_client(&rest[..cend]);
    let rest = &rest[cend + 2..];
    let sp = memchr(b' ', rest).unwrap_or(rest.len());
    let protocol = &rest[..sp];
    let cipher = rest[sp..]
        .strip_prefix(b" with cipher ")
        .map(|c| &c[..memchr(b' ', c).unwrap_or(c.len())])
        .unwrap_or(b"");
    Some(EventKind::Tls(TlsSession {
        outbound,
        trust: Text(trust),
        peer,
        protocol: Text(protocol),
        cipher: Text(cipher),
    }))
}

fn parse_smtp(m: &[u8]) -> Option<EventKind<'_>> {
    if let Some(t) = parse_tls(m) {
        return Some(t);
    }
    if m.starts_with(b"host ")
        || m.starts_with(b"lost connection with ")
        || m.starts_with(b"conversation with ")
        || m.starts_with(b"connect to ")
        || m.starts_with(b"Cannot start TLS")
        || m.starts_with(b"SASL ")
        || m.starts_with(b"SSL_connect error")
        || m.starts_with(b"enabling PIX")
        || m.starts_with(b"server certificate")
        || m.starts_with(b"Server certificate")
        || m.starts_with(b"certificate verification failed")
    {
        return Some(EventKind::RemoteTrouble {
            reply: Reply::parse(m),
        });
    }
    None
}

fn parse_bounce(m: &[u8]) -> Option<EventKind<'_>> {
    let sp = memchr(b' ', m)?;
    let audience = &m[..sp];
    let rest = &m[sp + 1..];
    let colon = find(rest, b" notification: ")?;
    let kind = match &rest[..colon] {
        b"non-delivery" => NoticeKind::NonDelivery,
        b"delay" => NoticeKind::Delay,
        b"delivery status" => NoticeKind::DeliveryStatus,
        _ => NoticeKind::Other,
    };
    let notice = &rest[colon + 15..];
    if notice.is_empty() || !notice.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    Some(EventKind::BounceNotice {
        kind,
        audience: Text(audience),
        notice_queue_id: Text(notice),
    })
}

fn parse_postscreen(m: &[u8]) -> Option<EventKind<'_>> {
    if let Some(r) = m.strip_prefix(b"NOQUEUE: ") {
        return parse_reject(r);
    }
    if m.starts_with(b"warning: ") || m.starts_with(b"error: ") || m.starts_with(b"fatal: ") {
        return None;
    }
    // The verdict is the leading run of upper-case words: `PASS NEW`, `COMMAND PIPELINING`, `NON-SMTP COMMAND`.
    let mut end = 0;
    for word in m.split(|&b| b == b' ') {
        if word.is_empty() || !word.iter().all(|b| b.is_ascii_uppercase() || *b == b'-') {
            break;
        }
        end += word.len() + 1;
    }
    if end == 0 {
        return None;
    }
    let verdict = &m[..end - 1];
    let detail = m.get(end..).unwrap_or(b"");
    let client = memchr(b'[', detail).map(|open| {
        let s = &detail[open..];
        let stop = s
            .iter()
            .position(|&b| b == b' ' || b == b',')
            .unwrap_or(s.len());
        let c = &s[..stop];
        let c = c.strip_suffix(b":").unwrap_or(c);
        parse_client(c)
    });
    Some(EventKind::Postscreen {
        verdict: Text(verdict),
        client,
        detail: Text(detail),
    })
}

fn parse_dnsblog(m: &[u8]) -> Option<EventKind<'_>> {
    let r = m.strip_prefix(b"addr ")?;
    let sp = memchr(b' ', r)?;
    let addr = &r[..sp];
    let r = r[sp..].strip_prefix(b" listed by domain ")?;
    let sp = memchr(b' ', r)?;
    let zone = &r[..sp];
    let answer = r[sp..].strip_prefix(b" as ").unwrap_or(b"");
    Some(EventKind::DnsblListing {
        addr: Text(addr),
        zone: Text(zone),
        answer: Text(answer),
    })
}

fn parse_postsuper(m: &[u8]) -> Option<EventKind<'_>> {
    let action = match m {
        b"placed on hold" => PostsuperAction::PlacedOnHold,
        b"released from hold" => PostsuperAction::ReleasedFromHold,
        b"removed" => PostsuperAction::Removed,
        b"requeued" => PostsuperAction::Requeued,
        _ if m.starts_with(b"Placed on hold: ")
            || m.starts_with(b"Released from hold: ")
            || m.starts_with(b"Deleted: ")
            || m.starts_with(b"Requeued: ") =>
        {
            PostsuperAction::Summary
        }
        _ => return None,
    };
    Some(EventKind::Postsuper {
        action,
        text: Text(m),
    })
}

fn parse_lifecycle(m: &[u8]) -> Option<EventKind<'_>> {
    const WORDS: [&[u8]; 9] = [
        b"daemon started",
        b"reload",
        b"terminating on signal",
        b"starting the Postfix",
        b"stopping the Postfix",
        b"refreshing the Postfix",
        b"daemon stopped",
        b"the Postfix mail system is",
        b"waiting on",
    ];
    WORDS
        .iter()
        .any(|w| m.starts_with(w))
        .then_some(EventKind::Lifecycle { text: Text(m) })
}

fn parse_diagnostic(m: &[u8]) -> Option<EventKind<'_>> {
    for sev in [&b"warning"[..], b"error", b"fatal", b"panic"] {
        if let Some(r) = m.strip_prefix(sev)
            && let Some(t) = r.strip_prefix(b": ")
        {
            return Some(EventKind::Diagnostic {
                severity: Text(sev),
                text: Text(t),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Event<'_> {
        Parser::new(ParserConfig {
            reference_unix: 1_800_000_000,
            ..Default::default()
        })
        .parse_line(line.as_bytes())
    }

    #[test]
    fn a_delivery_line_converts_its_own_fields_and_only_those() {
        let line = "Nov  8 22:32:50 mail postfix/smtp[7]: ABCDEF1234: to=<ann@example.org>, relay=mx.example.org[192.0.2.1]:25, dsn=2.0.0, status=sent (250 ok)";
        let event = p(line);
        let EventKind::Delivery(d) = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(d.str_of(d.to), Some("ann@example.org"));
        assert_eq!(d.compact(d.dsn.unwrap()), "2.0.0");
        // Text that is not part of the line is converted on its own, never read from the line.
        let elsewhere = b"ann@example.org".to_vec();
        assert_eq!(d.str_of(Text(&elsewhere)), None);
        assert_eq!(d.owned(Text(&elsewhere)), "ann@example.org");

        let mut bytes = line.as_bytes().to_vec();
        let at = line.find("ann").unwrap();
        bytes[at] = 0xe9; // Latin-1 `é`: the line is not UTF-8
        let parser = Parser::default();
        let event = parser.parse_line(&bytes);
        let EventKind::Delivery(d) = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(d.str_of(d.to), None);
        assert_eq!(d.compact(d.to), "\u{fffd}nn@example.org");
        assert_eq!(d.compact(d.dsn.unwrap()), "2.0.0");
    }

    #[test]
    fn delays_read_as_the_standard_library_reads_them() {
        let std_parse = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let mut cases: Vec<String> = [
            "0.06",
            "24",
            "0",
            "123456789012345",
            "1234567890123456",
            "12345678901234.5",
            "0.00000000000001",
            "0.000000000000001",
            "99999999999999.9",
            "9007199254740993",
            "1e400",
            "nan",
            "inf",
            " 1",
        ]
        .map(String::from)
        .to_vec();
        // Every string of up to five characters over digits, dot, exponent and signs.
        let alphabet = ['0', '1', '5', '9', '.', 'e', '-', '+'];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            frontier = frontier
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            cases.extend(frontier.iter().cloned());
        }
        for case in cases {
            assert_eq!(
                parse_f64(case.as_bytes()).map(f64::to_bits),
                std_parse(&case).map(f64::to_bits),
                "{case:?}"
            );
        }
    }

    #[test]
    fn pids_are_one_to_nine_digits_in_brackets() {
        let pid = |tag: &str| {
            p(&format!("Nov  8 22:32:50 mail {tag} ABCDEF1234: removed"))
                .header
                .map(|h| h.pid)
        };
        assert_eq!(pid("postfix/qmgr[7]:"), Some(Some(7)));
        assert_eq!(pid("postfix/qmgr[123456789]:"), Some(Some(123_456_789)));
        assert_eq!(pid("postfix/qmgr:"), Some(None));
        for bad in [
            "postfix/qmgr[]:",
            "postfix/qmgr[1234567890]:",
            "postfix/qmgr[12a]:",
            "postfix/qmgr[12",
            "postfix/qmgr[12]",
        ] {
            assert_eq!(pid(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_remembered_stamp_is_reused_only_for_the_same_bytes_and_reference_time() {
        let mut parser = Parser::new(ParserConfig {
            reference_unix: 1_800_000_000, // 2027-01-15
            ..Default::default()
        });
        let line = b"Nov  8 22:32:50 mail postfix/qmgr[1]: ABCDEF1234: removed";
        let unix = |p: &Parser, l: &[u8]| p.parse_line(l).time().map(|t| t.unix_seconds());
        let first = unix(&parser, line);
        assert_eq!(first, Some(1_794_177_170)); // 2026-11-08T22:32:50Z
        assert_eq!(unix(&parser, line), first);
        // One second later, and another day with the same time of day, are read, not remembered.
        let next = b"Nov  8 22:32:51 mail postfix/qmgr[1]: ABCDEF1234: removed";
        assert_eq!(unix(&parser, next), Some(1_794_177_171));
        let other_day = b"Nov  9 22:32:51 mail postfix/qmgr[1]: ABCDEF1234: removed";
        assert_eq!(unix(&parser, other_day), Some(1_794_177_171 + 86_400));
        // A reference time a year earlier places the same bytes a year earlier.
        parser.set_reference_unix(1_800_000_000 - 365 * 86_400);
        assert_eq!(unix(&parser, next), Some(1_794_177_171 - 365 * 86_400));
    }

    #[test]
    fn opendkim_signing_lines_name_selector_and_domain_and_its_other_lines_are_not_postfix() {
        let e = p(
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: DKIM-Signature field added (s=mail2024, d=example.com)",
        );
        assert_eq!(e.queue_id, Some(Text(b"4BcDeF1234")));
        assert_eq!(
            e.kind,
            EventKind::DkimSignature {
                selector: Text(b"mail2024"),
                domain: Text(b"example.com"),
            }
        );
        assert_eq!(e.header.unwrap().host, "mx1");
        // The long queue id form, and an RFC 3339 header as rsyslog writes it.
        let e = p(
            "2026-11-08T22:32:50.123456+00:00 mx1 opendkim[77]: 4Xb2Lq3kz9z9vQ: DKIM-Signature field added (s=s1, d=mail.example.org)",
        );
        assert_eq!(e.queue_id, Some(Text(b"4Xb2Lq3kz9z9vQ")));
        assert!(matches!(e.kind, EventKind::DkimSignature { selector, .. } if selector == "s1"));
        for other in [
            "Nov  8 22:32:50 mx1 opendkim[1234]: OpenDKIM Filter v2.11.0 starting (args: -x /etc/opendkim.conf)",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: DKIM verification successful",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: s=mail2024 d=example.com SSL",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: no signing table match for 'app@example.com'",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: DKIM-Signature field added (s=, d=example.com)",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: DKIM-Signature field added (s=a b, d=example.com)",
            "Nov  8 22:32:50 mx1 opendkim[1234]: 4BcDeF1234: DKIM-Signature field added (d=example.com)",
            "Nov  8 22:32:50 mx1 opendkim[1234]: DKIM-Signature field added (s=x, d=example.com)",
            // Another program writing the same words is not trusted to speak for opendkim.
            "Nov  8 22:32:50 mx1 amavis[1234]: 4BcDeF1234: DKIM-Signature field added (s=x, d=example.com)",
        ] {
            let e = p(other);
            assert!(
                matches!(e.kind, EventKind::NotPostfix { .. }),
                "{other}: {e:?}"
            );
            assert_eq!(e.queue_id, None, "{other}");
        }
    }

    #[test]
    fn queue_ids_short_long_and_words() {
        assert_eq!(
            split_queue_id(b"B7438B6323: removed").0,
            Some(&b"B7438B6323"[..])
        );
        assert_eq!(
            split_queue_id(b"3mPVKl0Mhjz7sXv: from=<>").0,
            Some(&b"3mPVKl0Mhjz7sXv"[..])
        );
        assert_eq!(
            split_queue_id(b"DEADBEEF: removed").0,
            Some(&b"DEADBEEF"[..])
        );
        assert_eq!(split_queue_id(b"warning: x").0, None);
        assert_eq!(split_queue_id(b"NOQUEUE: reject: x").0, None);
        assert_eq!(split_queue_id(b"Deleted: 1 message").0, None);
    }

    #[test]
    fn a_message_with_its_header_from_separate_fields_parses_like_the_whole_line() {
        let line = "Nov 28 22:44:43 mail postfix/smtp[19083]: BCB2FB6324: to=<john.smith@bigcorp.test>, \
                    relay=mx.bigcorp.test[192.0.2.10]:25, delay=0.4, delays=0.1/0/0.2/0.1, dsn=2.0.0, status=sent \
                    (250 2.0.0 Ok: queued as 4Xyz)";
        let whole = p(line);
        let header = whole.header.expect("the line has a header");
        // What a journald entry carries: SYSLOG_IDENTIFIER, _HOSTNAME, SYSLOG_PID, __REALTIME_TIMESTAMP and MESSAGE.
        let separate = Header {
            time: header.time,
            host: Text(b"mail"),
            program: Program::from_name(b"postfix/smtp"),
            pid: Some(19083),
        };
        let msg = line.split_once("]: ").unwrap().1;
        let parser = Parser::new(ParserConfig {
            reference_unix: 1_800_000_000,
            ..Default::default()
        });
        assert_eq!(parser.parse_message(separate, msg.as_bytes()), whole);
        assert!(matches!(whole.kind, EventKind::Delivery(_)), "{whole:?}");
        let other = Header {
            program: Program::from_name(b"sshd"),
            ..separate
        };
        assert!(matches!(
            parser
                .parse_message(other, b"Accepted publickey for root")
                .kind,
            EventKind::NotPostfix { .. }
        ));
    }

    #[test]
    fn program_names_of_instances_and_services() {
        for (line, instance, service, daemon) in [
            (
                "Nov 28 22:44:42 mail postfix-out/smtp[1]: x",
                "postfix-out",
                None,
                "smtp",
            ),
            (
                "Nov 28 22:44:42 mail postfix/submission/smtpd[1]: x",
                "postfix",
                Some("submission"),
                "smtpd",
            ),
            (
                "Nov 28 22:44:42 mail postfix/10025/smtpd[1]: x",
                "postfix",
                Some("10025"),
                "smtpd",
            ),
            (
                "Nov 28 22:44:42 mail postfix-239.58.50.50/smtp[1]: x",
                "postfix-239.58.50.50",
                None,
                "smtp",
            ),
        ] {
            let e = p(line);
            let prog = e.header.unwrap().program;
            assert_eq!(prog.instance, instance);
            assert_eq!(
                prog.service.map(|s| s.to_string()),
                service.map(str::to_string)
            );
            assert_eq!(prog.daemon, daemon);
        }
        let e = p("Nov 28 22:44:42 mail dovecot[1]: imap-login: Login: user=<a>");
        assert!(matches!(e.kind, EventKind::NotPostfix { .. }));
        let e = p("Jul  5 06:52:01 prd-mx1 spamd[11526]: spamd: identified spam");
        assert!(matches!(e.kind, EventKind::NotPostfix { .. }));
    }

    #[test]
    fn delivery_line_all_fields() {
        let e = p(
            "Nov 28 22:44:45 mail postfix/smtp[19095]: E002AB637A: to=<emma.wilson@bigcorp.test>, orig_to=<emma@x>, relay=127.0.0.1[127.0.0.1]:2525, conn_use=37, delay=0.01, delays=0.01/0/0/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0F16E11D2D03227)",
        );
        assert_eq!(e.queue_id.unwrap(), "E002AB637A");
        let EventKind::Delivery(d) = e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(d.to, "emma.wilson@bigcorp.test");
        assert_eq!(d.orig_to.unwrap(), "emma@x");
        assert_eq!(d.relay.unwrap(), "127.0.0.1[127.0.0.1]:2525");
        assert_eq!(d.conn_use, Some(37));
        assert_eq!(d.delay, Some(0.01));
        assert_eq!(d.delays.unwrap().transmission, 0.5);
        assert_eq!(d.dsn.unwrap(), "2.0.0");
        assert_eq!(d.status, Status::Sent);
        assert_eq!(d.reply.code, Some(250));
    }

    #[test]
    fn header_check_with_tag() {
        let parser = Parser::new(ParserConfig {
            tag_headers: vec!["x-delivery-tag".into()],
            ..Default::default()
        });
        let e = parser.parse_line(b"Nov 28 22:44:44 mail postfix/cleanup[19446]: A4D05B6349: info: header X-Delivery-Tag: 895e4b4c from localhost[127.0.0.1]; from=<noreply@lab.test> to=<li.na@example.test> proto=ESMTP helo=<client.lab.test>: delivery-tag");
        let EventKind::Check(check) = e.kind else {
            panic!()
        };
        let CheckLine {
            action,
            header_name,
            value,
            is_tag,
            client,
            envelope,
            text,
            ..
        } = *check;
        assert_eq!(action, CheckAction::Info);
        assert_eq!(header_name.unwrap(), "X-Delivery-Tag");
        assert_eq!(value, "895e4b4c");
        assert!(is_tag);
        assert_eq!(client, "localhost[127.0.0.1]");
        assert_eq!(envelope.helo.unwrap(), "client.lab.test");
        assert_eq!(envelope.to.unwrap(), "li.na@example.test");
        assert_eq!(text.unwrap(), "delivery-tag");
    }

    #[test]
    fn noqueue_reject() {
        let e = p(
            "Nov 28 22:44:44 mail postfix/smtpd[19447]: NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <chloe.dubois@outside.test>: Relay access denied; from=<app@lab.test> to=<chloe.dubois@outside.test> proto=ESMTP helo=<desktop-2.outside.test>",
        );
        let EventKind::Reject(reject) = e.kind else {
            panic!()
        };
        let RejectLine {
            action,
            stage,
            client,
            reply,
            envelope,
        } = *reject;
        assert_eq!((action, stage), (Text(b"reject"), Text(b"RCPT")));
        assert_eq!(client.addr.unwrap(), "127.0.0.2");
        assert_eq!(reply.code, Some(554));
        assert_eq!(reply.enhanced.unwrap(), "5.7.1");
        assert_eq!(envelope.from.unwrap(), "app@lab.test");
        assert_eq!(envelope.helo.unwrap(), "desktop-2.outside.test");
    }

    #[test]
    fn rfc5424_header() {
        let e =
            p("<22>1 2026-11-28T22:44:42.123456Z mail postfix/qmgr 19052 - - B7438B6323: removed");
        assert_eq!(
            e.header.unwrap().time.to_rfc3339(),
            "2026-11-28T22:44:42.123456Z"
        );
        assert_eq!(e.header.unwrap().pid, Some(19052));
        assert_eq!(e.kind, EventKind::Removed);
        let e = p(
            r#"<22>1 2026-11-28T22:44:42Z mail postfix/qmgr 19052 - [meta x="]"] B7438B6323: removed"#,
        );
        assert_eq!(e.kind, EventKind::Removed);
    }

    #[test]
    fn custom_syslog_names_and_whole_unknown_lines() {
        let line = b"Nov 28 22:44:42 mail mta-out/smtp[1]: 4A1B2C3D4E: to=<a@example.net>, relay=none, delay=0, delays=0/0/0/0, dsn=5.0.0, status=bounced (x)";
        assert!(matches!(
            p(std::str::from_utf8(line).unwrap()).kind,
            EventKind::NotPostfix { .. }
        ));
        let parser = Parser::new(ParserConfig {
            syslog_names: vec!["postfix".into(), "mta".into()],
            ..Default::default()
        });
        assert!(matches!(
            parser.parse_line(line).kind,
            EventKind::Delivery(_)
        ));
        let e = p("Nov 28 22:44:42 mail postfix/smtpd[1]: something new in Postfix 9");
        assert_eq!(
            e.kind,
            EventKind::Unknown {
                raw: Text(b"Nov 28 22:44:42 mail postfix/smtpd[1]: something new in Postfix 9")
            }
        );
    }
}
