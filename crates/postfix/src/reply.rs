//! The text after a delivery status, `(host mx.example[1.2.3.4] said: 550 5.1.1 <x@example>: User unknown (in reply to
//! RCPT TO command))`, split into who answered, the SMTP code, the enhanced status code and the text.

use crate::parse::{find, rfind};
use serde::Serialize;

use crate::event::Text;

/// How the remote reply reached the log; tells a refused connection from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// `host X said: ...` — the server answered a command.
    Said,
    /// `host X refused to talk to me: 421 ...` — a negative greeting.
    RefusedToTalk,
    /// `lost connection with X while ...`.
    LostConnection,
    /// `conversation with X timed out while ...`.
    TimedOut,
    /// `connect to X: Connection refused` (or timed out, unreachable).
    ConnectFailed,
    /// `Host or domain name not found. Name service error ...`.
    HostNotFound,
    /// Any other text, e.g. `250 2.0.0 Ok: queued as X`, `delivered to mailbox`.
    Other,
}

/// A parsed reply. `raw` is always the whole text; the other fields are what could be recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reply<'a> {
    pub raw: Text<'a>,
    pub kind: ReplyKind,
    /// Postfix's own `delivery temporarily suspended: ` prefix was present.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// The remote host as `name[addr]` (or `name[addr]:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// RFC 3463 enhanced status code as written, e.g. `5.1.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<Text<'a>>,
    /// The human text after the codes (for folded multi-line replies, everything after the first line's codes).
    pub text: Text<'a>,
    /// The SMTP command or stage the reply answered: `RCPT TO`, `end of DATA`, `MAIL FROM`, or what Postfix was doing
    /// when the connection broke (`sending RCPT TO`, `receiving the initial server greeting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Text<'a>>,
}

impl<'a> Reply<'a> {
    pub fn empty() -> Reply<'static> {
        Reply {
            raw: Text(b""),
            kind: ReplyKind::Other,
            suspended: false,
            host: None,
            code: None,
            enhanced: None,
            text: Text(b""),
            command: None,
        }
    }

    /// Parses the text between a status's parentheses.
    pub fn parse(raw: &'a [u8]) -> Reply<'a> {
        let mut r = Reply {
            raw: Text(raw),
            text: Text(raw),
            ..Reply::empty()
        };
        let mut s = raw;
        const SUSPENDED: &[u8] = b"delivery temporarily suspended: ";
        if let Some(rest) = s.strip_prefix(SUSPENDED) {
            r.suspended = true;
            s = rest;
            r.text = Text(s);
        }
        if let Some(rest) = s.strip_prefix(b"host ")
            && let Some(sp) = memchr::memchr(b' ', rest)
        {
            let host = &rest[..sp];
            let after = &rest[sp..];
            if let Some(body) = after.strip_prefix(b" said: ") {
                r.kind = ReplyKind::Said;
                r.host = Some(Text(host));
                let (body, cmd) = split_in_reply_to(body);
                r.command = cmd.map(Text);
                r.set_codes(body);
                return r;
            }
            if let Some(body) = after.strip_prefix(b" refused to talk to me: ") {
                r.kind = ReplyKind::RefusedToTalk;
                r.host = Some(Text(host));
                r.set_codes(body);
                return r;
            }
        }
        if let Some(rest) = s.strip_prefix(b"lost connection with ") {
            r.kind = ReplyKind::LostConnection;
            if let Some(i) = find(rest, b" while ") {
                r.host = Some(Text(&rest[..i]));
                r.command = Some(Text(&rest[i + 7..]));
            } else {
                r.host = Some(Text(rest));
            }
            return r;
        }
        if let Some(rest) = s.strip_prefix(b"conversation with ") {
            r.kind = ReplyKind::TimedOut;
            if let Some(i) = find(rest, b" timed out") {
                r.host = Some(Text(&rest[..i]));
                if let Some(w) = rest[i..].strip_prefix(b" timed out while ") {
                    r.command = Some(Text(w));
                }
            }
            return r;
        }
        if let Some(rest) = s.strip_prefix(b"connect to ") {
            // `connect to mx.example[1.2.3.4]:25: Connection refused`
            if let Some(i) = find(rest, b": ") {
                r.kind = ReplyKind::ConnectFailed;
                r.host = Some(Text(&rest[..i]));
                r.text = Text(&rest[i + 2..]);
                return r;
            }
        }
        if s.starts_with(b"Host or domain name not found") || s.starts_with(b"Name service error") {
            r.kind = ReplyKind::HostNotFound;
            return r;
        }
        r.set_codes(s);
        r
    }

    /// Reads `550 5.1.1 text`, `550-5.1.1 text ... 550 5.1.1 more` or `550 text` into code, enhanced and text.
    fn set_codes(&mut self, body: &'a [u8]) {
        self.text = Text(body);
        if body.len() < 3 || !body[..3].iter().all(u8::is_ascii_digit) {
            return;
        }
        let code = u16::from(body[0] - b'0') * 100
            + u16::from(body[1] - b'0') * 10
            + u16::from(body[2] - b'0');
        if !(200..600).contains(&code) {
            return;
        }
        let mut rest = &body[3..];
        match rest.first() {
            None => {}
            Some(b' ' | b'-') => rest = &rest[1..],
            Some(_) => return,
        }
        self.code = Some(code);
        let word_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let word = &rest[..word_end];
        if is_enhanced(word, body[0]) {
            self.enhanced = Some(Text(word));
            rest = rest[word_end..]
                .strip_prefix(b" ")
                .unwrap_or(&rest[word_end..]);
        }
        self.text = Text(rest);
    }
}

/// Splits ` (in reply to RCPT TO command)` off the end of a `said:` reply.
fn split_in_reply_to(body: &[u8]) -> (&[u8], Option<&[u8]>) {
    const MARK: &[u8] = b" (in reply to ";
    if let Some(i) = rfind(body, MARK) {
        let cmd = &body[i + MARK.len()..];
        let cmd = cmd.strip_suffix(b")").unwrap_or(cmd);
        let cmd = cmd.strip_suffix(b" command").unwrap_or(cmd);
        return (&body[..i], Some(cmd));
    }
    (body, None)
}

/// `X.Y.Z` with X equal to the reply code's first digit (RFC 3463: class 2, 4 or 5; subject and detail 1-3 digits).
pub fn is_enhanced(w: &[u8], class: u8) -> bool {
    let mut parts = w.split(|&b| b == b'.');
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    a.len() == 1
        && (class == 0 || a[0] == class)
        && matches!(a[0], b'2' | b'4' | b'5')
        && (1..=3).contains(&b.len())
        && (1..=3).contains(&c.len())
        && b.iter().chain(c).all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn said_with_command() {
        let r = Reply::parse(b"host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <u@example.test>: Recipient address rejected: User unknown (in reply to RCPT TO command)");
        assert_eq!(r.kind, ReplyKind::Said);
        assert_eq!(r.host.unwrap(), "127.0.0.1[127.0.0.1]");
        assert_eq!(r.code, Some(550));
        assert_eq!(r.enhanced.unwrap(), "5.1.1");
        assert_eq!(
            r.text,
            "<u@example.test>: Recipient address rejected: User unknown"
        );
        assert_eq!(r.command.unwrap(), "RCPT TO");
    }

    #[test]
    fn folded_gmail_reply() {
        let r = Reply::parse(b"host gmail-smtp-in.l.google.com[142.250.1.27] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser a1si (in reply to RCPT TO command)");
        assert_eq!(r.code, Some(550));
        assert_eq!(r.enhanced.unwrap(), "5.1.1");
        assert!(r.text.to_str().starts_with("The email account"));
    }

    #[test]
    fn refused_lost_timeout_connect_dns_suspended() {
        let r = Reply::parse(b"host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 sink.example.test Service not available, closing transmission channel");
        assert_eq!((r.kind, r.code), (ReplyKind::RefusedToTalk, Some(421)));
        let r = Reply::parse(b"lost connection with 127.0.0.1[127.0.0.1] while sending RCPT TO");
        assert_eq!(r.kind, ReplyKind::LostConnection);
        assert_eq!(r.command.unwrap(), "sending RCPT TO");
        let r = Reply::parse(b"conversation with mx.example.com[192.0.2.1] timed out while receiving the initial server greeting");
        assert_eq!(r.kind, ReplyKind::TimedOut);
        assert_eq!(r.host.unwrap(), "mx.example.com[192.0.2.1]");
        let r = Reply::parse(b"delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2599: Connection refused");
        assert!(r.suspended);
        assert_eq!(r.kind, ReplyKind::ConnectFailed);
        assert_eq!(r.text, "Connection refused");
        let r = Reply::parse(b"Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found, try again");
        assert_eq!(r.kind, ReplyKind::HostNotFound);
        let r = Reply::parse(b"250 2.0.0 Ok: queued as C1D03D6F5324040D");
        assert_eq!(
            (r.code, r.enhanced.map(|e| e.to_string())),
            (Some(250), Some("2.0.0".into()))
        );
        let r = Reply::parse(b"delivered to mailbox");
        assert_eq!((r.kind, r.code), (ReplyKind::Other, None));
    }
}
