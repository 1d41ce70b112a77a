//! The journald source: `journalctl -o json -f --no-tail -a --output-fields=...` as a child process, its output read line by line on a
//! thread of its own and handed to the reader as [`Item`]s through a bounded channel.
//!
//! - Each line is one JSON entry. The fields used are `__CURSOR`, `__REALTIME_TIMESTAMP` (microseconds),
//!   `_HOSTNAME`, `SYSLOG_IDENTIFIER`, `SYSLOG_PID` (else `_PID`) and `MESSAGE`. journalctl writes a field that is not
//!   UTF-8 as an array of byte values, and a field that occurs more than once as an array of its values (the first
//!   is used).
//! - journalctl cannot match a prefix, so unless units or match terms narrow it, it reads every entry and the agent
//!   keeps the message only of entries whose `SYSLOG_IDENTIFIER` starts with one of the configured `syslog_names`
//!   (and opendkim's, whose signing lines name DKIM selectors); the others are counted as not Postfix, and still
//!   move the cursor and the log clock.
//! - A line longer than [`MAX_ENTRY_BYTES`] is skipped (its cursor is still taken, it is counted as cut); a line that
//!   is not a JSON entry is counted as malformed. Neither stops anything.
//! - Position: the cursor of the last entry in an acknowledged batch (the checkpoint) resumes with `--after-cursor`.
//!   When journalctl ends, it is started again after the last cursor handed to the reader, with backoff, and this is
//!   logged and counted (`journalctl_restarts_total`). A cursor journalctl refuses ("Failed to seek to cursor") is
//!   dropped for a read from the journal's start: records are identified by content, so the API drops what it has.
//! - When the channel is full (the reader paused for a full spool) this thread blocks, so journalctl blocks on its
//!   pipe: the journal is the buffer, nothing is dropped. journalctl ends by itself when the agent dies (its output
//!   pipe closes).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use relaywatch_postfix::Timestamp;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::config::JournaldConfig;
use crate::metrics::Metrics;
use crate::run_cmd::ConfigError;
use crate::ship::Backoff;
use crate::tail::MAX_LINE_BYTES;

/// The key of the journald stream in the checkpoint and the spool (no log path looks like it).
pub const STREAM_KEY: &str = "journald:";
/// Longest journalctl output line read; longer entries are skipped. A 64 KiB message of bytes that are not UTF-8 is
/// written as an array of numbers, about four times as long.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// Only the fields the agent reads (journalctl adds `__CURSOR` and the timestamps): less to write, pipe and parse,
/// and no multi-megabyte fields such as a coredump's (systemd 236 and later).
const OUTPUT_FIELDS: &str = "--output-fields=MESSAGE,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,_HOSTNAME";
/// Entries waiting between the journalctl thread and the reader.
const CHANNEL_ITEMS: usize = 256;

/// One journal entry, with what the parser needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub cursor: String,
    pub realtime_micros: i64,
    /// `_HOSTNAME`, when the entry has one.
    pub host: Option<Vec<u8>>,
    /// `SYSLOG_IDENTIFIER`, e.g. `postfix/smtp` (empty when the entry has none).
    pub identifier: Vec<u8>,
    pub pid: Option<u32>,
    /// `MESSAGE`, kept only for entries whose identifier is a Postfix syslog name; cut at [`MAX_LINE_BYTES`].
    pub message: Vec<u8>,
    /// The message was longer than [`MAX_LINE_BYTES`] and was cut.
    pub message_cut: bool,
}

/// What journalctl printed, one line at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Entry {
        entry: Entry,
        bytes: u64,
    },
    /// Not a journal entry the agent can read; the cursor when one could be found in it.
    Malformed {
        cursor: Option<String>,
        bytes: u64,
        why: String,
    },
    /// Longer than [`MAX_ENTRY_BYTES`]: skipped.
    TooLong {
        cursor: Option<String>,
        bytes: u64,
    },
}

impl Item {
    pub fn cursor(&self) -> Option<&str> {
        match self {
            Item::Entry { entry, .. } => Some(&entry.cursor),
            Item::Malformed { cursor, .. } | Item::TooLong { cursor, .. } => cursor.as_deref(),
        }
    }
    pub fn bytes(&self) -> u64 {
        match self {
            Item::Entry { bytes, .. }
            | Item::Malformed { bytes, .. }
            | Item::TooLong { bytes, .. } => *bytes,
        }
    }
}

/// A field's value as journalctl writes it: a string, an array of byte values (not UTF-8), or an array of values (a
/// field that occurs more than once: the first counts).
struct Field<'a>(Cow<'a, [u8]>);

struct FieldVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
    type Value = Field<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of bytes, or an array of values")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field(Cow::Borrowed(v.as_bytes())))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field(Cow::Owned(v.as_bytes().to_vec())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field(Cow::Owned(v.into_bytes())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field(Cow::Owned(v.to_string().into_bytes())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::new();
        let mut first = None;
        while let Some(element) = seq.next_element::<Element<'a>>()? {
            match element {
                Element::Byte(b) => bytes.push(b),
                Element::Value(v) => {
                    if first.is_none() {
                        first = Some(v);
                    }
                }
            }
        }
        Ok(first.unwrap_or(Field(Cow::Owned(bytes))))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(PhantomData))
    }
}

/// An element of an array value: a byte, or one of several values.
enum Element<'a> {
    Byte(u8),
    Value(Field<'a>),
}

struct ElementVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ElementVisitor<'a> {
    type Value = Element<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte value, a string or an array of bytes")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        u8::try_from(v)
            .map(Element::Byte)
            .map_err(|_| E::custom(format!("{v} is not a byte value")))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        FieldVisitor(PhantomData)
            .visit_borrowed_str(v)
            .map(Element::Value)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        FieldVisitor(PhantomData).visit_str(v).map(Element::Value)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        FieldVisitor(PhantomData)
            .visit_string(v)
            .map(Element::Value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        FieldVisitor(PhantomData).visit_seq(seq).map(Element::Value)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor(PhantomData))
    }
}

/// The fields of a journalctl JSON entry the agent reads; all others are skipped without being copied.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "__CURSOR", borrow, default)]
    cursor: Option<Field<'a>>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow, default)]
    realtime: Option<Field<'a>>,
    #[serde(rename = "_HOSTNAME", borrow, default)]
    hostname: Option<Field<'a>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow, default)]
    identifier: Option<Field<'a>>,
    #[serde(rename = "SYSLOG_PID", borrow, default)]
    syslog_pid: Option<Field<'a>>,
    #[serde(rename = "_PID", borrow, default)]
    pid: Option<Field<'a>>,
    #[serde(rename = "MESSAGE", borrow, default)]
    message: Option<Field<'a>>,
}

fn ascii_number<T: std::str::FromStr>(f: &Field<'_>) -> Option<T> {
    std::str::from_utf8(&f.0).ok()?.trim().parse().ok()
}

/// Reads one journalctl JSON line. `syslog_names` decides whose message is kept (see [`Entry::message`]).
pub fn parse_entry(line: &[u8], syslog_names: &[String]) -> Item {
    let bytes = line.len() as u64;
    let malformed = |why: String| Item::Malformed {
        cursor: find_cursor(line),
        bytes,
        why,
    };
    let raw: RawEntry<'_> = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return malformed(format!("not a JSON entry: {e}")),
    };
    let Some(cursor) = raw
        .cursor
        .as_ref()
        .and_then(|c| std::str::from_utf8(&c.0).ok())
        .filter(|c| !c.is_empty())
    else {
        return malformed("no __CURSOR".into());
    };
    let Some(realtime_micros) = raw.realtime.as_ref().and_then(ascii_number::<i64>) else {
        return Item::Malformed {
            cursor: Some(cursor.to_string()),
            bytes,
            why: "no __REALTIME_TIMESTAMP".into(),
        };
    };
    let identifier = raw.identifier.map(|f| f.0.into_owned()).unwrap_or_default();
    // opendkim's messages are kept too: its signing lines name the DKIM selectors the audits learn from mail.
    let wanted = identifier == b"opendkim"
        || syslog_names
            .iter()
            .any(|n| identifier.starts_with(n.as_bytes()));
    let (message, message_cut) = match raw.message {
        Some(m) if wanted => {
            let mut m = m.0.into_owned();
            let cut = m.len() > MAX_LINE_BYTES;
            m.truncate(MAX_LINE_BYTES);
            (m, cut)
        }
        _ => (Vec::new(), false),
    };
    Item::Entry {
        entry: Entry {
            cursor: cursor.to_string(),
            realtime_micros,
            host: raw.hostname.map(|f| f.0.into_owned()),
            identifier,
            pid: raw
                .syslog_pid
                .as_ref()
                .and_then(ascii_number)
                .or_else(|| raw.pid.as_ref().and_then(ascii_number)),
            message,
            message_cut,
        },
        bytes,
    }
}

/// The `__CURSOR` of a line that is not a whole entry (journalctl writes the cursor as a plain string: no escapes).
pub fn find_cursor(line: &[u8]) -> Option<String> {
    let key = b"\"__CURSOR\"";
    let at = memchr::memmem::find(line, key)? + key.len();
    let rest = line[at..].trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let cursor = std::str::from_utf8(&rest[..end]).ok()?;
    (!cursor.is_empty() && !cursor.contains('\\')).then(|| cursor.to_string())
}

/// The journalctl command: JSON output, every field whole (`-a`), following from the journal's start or after
/// `after` (or, not following, only the newest entry), with the configured filters.
pub fn command(config: &JournaldConfig, after: Option<&str>, follow: bool) -> Command {
    let mut cmd = Command::new(&config.journalctl);
    cmd.args(["-o", "json", "-a", "--no-pager", OUTPUT_FIELDS]);
    if follow {
        cmd.args(["-f", "--no-tail"]);
    } else {
        cmd.args(["-n", "1"]);
    }
    if let Some(c) = after {
        cmd.arg(format!("--after-cursor={c}"));
    }
    cmd.args(&config.args);
    for u in &config.units {
        cmd.arg(format!("--unit={u}"));
    }
    cmd.args(&config.matches);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("SYSTEMD_COLORS", "0");
    cmd
}

fn spawn_failure(config: &JournaldConfig, e: &io::Error) -> String {
    let name = config.journalctl.display();
    if e.kind() == io::ErrorKind::NotFound {
        format!(
            "cannot start journalctl ({name}): not found. The journald source runs systemd's journalctl: install it \
             (Debian: the systemd package) or name it with journalctl = \"/path\" / --journalctl PATH, or read log \
             files instead"
        )
    } else {
        format!("cannot start journalctl ({name}): {e}")
    }
}

/// The cursor of the newest entry that the filters select, or `None` for an empty journal: where a first start at
/// the journal's end begins (saved before reading, like a file's first position).
pub fn newest_cursor(config: &JournaldConfig, syslog_names: &[String]) -> Result<Option<String>> {
    let out = command(config, None, false)
        .output()
        .map_err(|e| ConfigError(spawn_failure(config, &e)))?;
    if !out.status.success() {
        bail!(
            "journalctl -n 1 ended with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out
        .stdout
        .split(|&b| b == b'\n')
        .filter_map(|l| parse_entry(l, syslog_names).cursor().map(str::to_string))
        .next_back())
}

/// For `check`: can journalctl be run and read the journal? A description of the newest selected entry, or why not.
pub fn probe(config: &JournaldConfig, syslog_names: &[String]) -> Result<String, String> {
    let out = command(config, None, false)
        .output()
        .map_err(|e| spawn_failure(config, &e))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Err(format!("journalctl ended with {}: {stderr}", out.status));
    }
    if stderr.contains("not seeing messages") || stderr.contains("insufficient permissions") {
        return Err(format!(
            "journalctl cannot read the system journal as this user (add the agent's user to group \
             systemd-journal or adm): {stderr}"
        ));
    }
    let newest = out
        .stdout
        .split(|&b| b == b'\n')
        .filter_map(|l| match parse_entry(l, syslog_names) {
            Item::Entry { entry, .. } => Some(entry),
            _ => None,
        })
        .next_back();
    Ok(match newest {
        Some(e) => format!(
            "newest selected entry: {} from {:?}",
            Timestamp {
                unix_micros: e.realtime_micros,
                offset_minutes: 0
            }
            .to_rfc3339(),
            String::from_utf8_lossy(&e.identifier)
        ),
        None => "no entry selected yet".to_string(),
    })
}

/// How a bounded line read ended.
enum ReadLine {
    /// A whole line is in the buffer (without its newline).
    Whole,
    /// The line was longer than the limit: the buffer holds its first bytes; `usize` is its whole length.
    TooLong(usize),
    /// End of output (a partial last line is dropped: journalctl ended in the middle of writing it, and the next
    /// journalctl starts after the last whole entry).
    Eof,
}

fn read_line_bounded(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadLine> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(ReadLine::Eof);
        }
        let (piece, used, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&piece[..piece.len().min(room)]);
        total += piece.len();
        r.consume(used);
        if done {
            return Ok(if total > max {
                ReadLine::TooLong(total)
            } else {
                ReadLine::Whole
            });
        }
    }
}

struct Shared {
    stop: AtomicBool,
    /// The running journalctl, so that stopping can end it (its thread is blocked reading its output).
    child: Mutex<Option<Child>>,
}

/// A running journalctl and the thread that reads it.
pub struct JournalSource {
    rx: Option<Receiver<Item>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl JournalSource {
    /// Starts journalctl (after `after`, or from the journal's start). A journalctl that cannot be started at all is
    /// a configuration error; one that ends later is started again.
    pub fn start(
        config: &JournaldConfig,
        syslog_names: Vec<String>,
        after: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Result<JournalSource> {
        let child = command(config, after.as_deref(), true)
            .spawn()
            .map_err(|e| ConfigError(spawn_failure(config, &e)))?;
        let (tx, rx) = sync_channel(CHANNEL_ITEMS);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            child: Mutex::new(None),
        });
        let pump = Pump {
            config: config.clone(),
            syslog_names,
            after,
            tx,
            shared: Arc::clone(&shared),
            metrics,
        };
        let thread = std::thread::Builder::new()
            .name("journalctl".into())
            .spawn(move || pump.run(child))?;
        Ok(JournalSource {
            rx: Some(rx),
            shared,
            thread: Some(thread),
        })
    }

    /// The next item, or `None` when journalctl has printed nothing new.
    pub fn try_next(&self) -> Result<Option<Item>> {
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        match rx.try_recv() {
            Ok(item) => Ok(Some(item)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => bail!("the journalctl reading thread ended"),
        }
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(mut guard) = self.shared.child.lock()
            && let Some(child) = guard.as_mut()
        {
            let _ = child.kill();
        }
        // A thread blocked handing over an entry is released by the closed channel.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Pump {
    config: JournaldConfig,
    syslog_names: Vec<String>,
    /// The cursor of the last entry handed to the reader: where a new journalctl starts.
    after: Option<String>,
    tx: SyncSender<Item>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

/// Keeps the last lines journalctl wrote to stderr (and logs them).
fn drain_stderr(
    stderr: impl Read + Send + 'static,
) -> (JoinHandle<()>, Arc<Mutex<VecDeque<String>>>) {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let keep = Arc::clone(&tail);
    let handle = std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut buf = Vec::new();
        while let Ok(ReadLine::Whole | ReadLine::TooLong(_)) =
            read_line_bounded(&mut r, &mut buf, 4096)
        {
            let line = String::from_utf8_lossy(&buf).trim().to_string();
            if line.is_empty() {
                continue;
            }
            tracing::warn!("journalctl: {line}");
            if let Ok(mut t) = keep.lock() {
                if t.len() == 5 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
    (handle, tail)
}

impl Pump {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d` unless stopped meanwhile; false when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.stopped() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
        }
        !self.stopped()
    }

    fn run(mut self, first: Child) {
        let mut next = Some(first);
        let mut backoff = Backoff::default();
        let mut warned_malformed = 0u32;
        loop {
            let mut child = match next.take() {
                Some(c) => c,
                None => match command(&self.config, self.after.as_deref(), true).spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let wait = backoff.next(None);
                        let msg = spawn_failure(&self.config, &e);
                        tracing::error!("{msg}; trying again in {wait:?}");
                        self.metrics.set_error(msg);
                        if !self.sleep(wait) {
                            return;
                        }
                        continue;
                    }
                },
            };
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                let _ = child.kill();
                let _ = child.wait();
                return;
            };
            let (stderr_thread, stderr_tail) = drain_stderr(stderr);
            {
                let Ok(mut guard) = self.shared.child.lock() else {
                    return;
                };
                if self.stopped() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                *guard = Some(child);
            }
            tracing::info!(
                after_cursor = self.after.as_deref().unwrap_or("(the journal's start)"),
                "reading the journal"
            );
            let started = Instant::now();
            let mut entries = 0u64;
            let mut reader = BufReader::with_capacity(64 * 1024, stdout);
            let mut buf = Vec::with_capacity(4096);
            let mut read_error = None;
            loop {
                let item = match read_line_bounded(&mut reader, &mut buf, MAX_ENTRY_BYTES) {
                    Ok(ReadLine::Whole) => {
                        if buf.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        parse_entry(&buf, &self.syslog_names)
                    }
                    Ok(ReadLine::TooLong(len)) => Item::TooLong {
                        cursor: find_cursor(&buf),
                        bytes: len as u64,
                    },
                    Ok(ReadLine::Eof) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                };
                match &item {
                    Item::Malformed { why, cursor, .. } => {
                        warned_malformed += 1;
                        if warned_malformed <= 5 {
                            tracing::warn!(
                                cursor = cursor.as_deref().unwrap_or("-"),
                                "journalctl printed a line that is not a journal entry ({why}); skipped"
                            );
                        }
                    }
                    Item::TooLong { cursor, bytes } => tracing::warn!(
                        cursor = cursor.as_deref().unwrap_or("-"),
                        length_bytes = bytes,
                        "journal entry longer than {MAX_ENTRY_BYTES} bytes skipped"
                    ),
                    Item::Entry { .. } => {}
                }
                if let Some(c) = item.cursor() {
                    self.after = Some(c.to_string());
                }
                entries += 1;
                if self.tx.send(item).is_err() {
                    // The reader is gone: stopping.
                    break;
                }
            }
            let status = self.reap();
            let _ = stderr_thread.join();
            if self.stopped() {
                return;
            }
            let stderr: Vec<String> = stderr_tail
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
            if entries == 0
                && self.after.is_some()
                && stderr
                    .iter()
                    .any(|l| l.contains("Failed to seek to cursor"))
            {
                let msg = format!(
                    "journalctl refuses the cursor {:?}; reading the journal from its start instead (records the \
                     API already has are dropped by id)",
                    self.after.as_deref().unwrap_or_default()
                );
                tracing::error!("{msg}");
                self.metrics.set_error(msg);
                self.after = None;
            }
            if entries > 0 || started.elapsed() > Duration::from_secs(30) {
                backoff.reset();
            }
            let wait = backoff.next(None);
            Metrics::add(&self.metrics.journalctl_restarts, 1);
            let why = match (&read_error, status) {
                (Some(e), _) => format!("reading its output failed: {e}"),
                (None, Some(s)) => format!("it exited with {s}"),
                (None, None) => "it closed its output".to_string(),
            };
            let msg = format!(
                "journalctl ended ({why}{}); starting it again after cursor {} in {wait:?}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {}", stderr.join(" / "))
                },
                self.after.as_deref().unwrap_or("(the journal's start)")
            );
            tracing::warn!("{msg}");
            self.metrics.set_error(msg);
            if !self.sleep(wait) {
                return;
            }
        }
    }

    /// Waits for the journalctl that closed its output (ending it if it lingers); its exit status.
    fn reap(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.shared.child.lock().ok()?.take()?;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline && !self.stopped() => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["postfix".to_string()]
    }

    #[test]
    fn an_entry_as_journalctl_writes_it() {
        let line = br#"{"__CURSOR":"s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;b=6c7c6013a8a843dbaa4e4f6e0e2ba3a8;m=8bb39b7;t=4d66ff16b2a1a;x=c8aa4acd9e3c1a04","__REALTIME_TIMESTAMP":"1764369882000000","__MONOTONIC_TIMESTAMP":"146487735","_BOOT_ID":"6c7c6013a8a843dbaa4e4f6e0e2ba3a8","PRIORITY":"6","SYSLOG_FACILITY":"2","SYSLOG_IDENTIFIER":"postfix/qmgr","SYSLOG_PID":"19052","_PID":"19052","_UID":"107","_COMM":"qmgr","_SYSTEMD_UNIT":"postfix@-.service","_HOSTNAME":"mail","MESSAGE":"BCB2FB6324: from=<newsletter@partner.test>, size=2644, nrcpt=1 (queue active)"}"#;
        let Item::Entry { entry, bytes } = parse_entry(line, &names()) else {
            panic!("an entry")
        };
        assert_eq!(bytes, line.len() as u64);
        assert_eq!(entry.realtime_micros, 1_764_369_882_000_000);
        assert_eq!(entry.host.as_deref(), Some(&b"mail"[..]));
        assert_eq!(entry.identifier, b"postfix/qmgr");
        assert_eq!(entry.pid, Some(19052));
        assert!(entry.message.starts_with(b"BCB2FB6324: from=<newsletter"));
        assert!(
            entry
                .cursor
                .starts_with("s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;")
        );
    }

    #[test]
    fn older_journalctl_spacing_byte_arrays_and_repeated_fields() {
        // systemd before 240 wrote `{ "KEY" : "value", ... }`; bytes that are not UTF-8 come as an array of numbers.
        let line = br#"{ "__CURSOR" : "s=1;i=2", "__REALTIME_TIMESTAMP" : "1700000000123456", "SYSLOG_IDENTIFIER" : "postfix-out/smtp", "_PID" : "7", "MESSAGE" : [ 65, 66, 255, 10, 67 ] }"#;
        let Item::Entry { entry, .. } = parse_entry(line, &names()) else {
            panic!("an entry")
        };
        assert_eq!(entry.message, b"AB\xff\nC");
        assert_eq!(entry.pid, Some(7));
        assert_eq!(entry.host, None);
        // A field written twice in one entry: an array of its values.
        let line = br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":["postfix/smtpd","x"],"MESSAGE":[[104,105],"second"]}"#;
        let Item::Entry { entry, .. } = parse_entry(line, &names()) else {
            panic!("an entry")
        };
        assert_eq!(
            (&entry.identifier[..], &entry.message[..]),
            (&b"postfix/smtpd"[..], &b"hi"[..])
        );
    }

    #[test]
    fn other_programs_keep_no_message_and_bad_lines_keep_their_cursor() {
        let line = br#"{"__CURSOR":"s=9","__REALTIME_TIMESTAMP":"5","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Accepted publickey"}"#;
        let Item::Entry { entry, .. } = parse_entry(line, &names()) else {
            panic!("an entry")
        };
        assert!(entry.message.is_empty());
        // opendkim's are kept: its signing lines name DKIM selectors.
        let line = br#"{"__CURSOR":"s=8","__REALTIME_TIMESTAMP":"4","SYSLOG_IDENTIFIER":"opendkim","MESSAGE":"4BcDeF1234: DKIM-Signature field added (s=mail, d=example.com)"}"#;
        let Item::Entry { entry, .. } = parse_entry(line, &names()) else {
            panic!("an entry")
        };
        assert!(entry.message.starts_with(b"4BcDeF1234: DKIM-Signature"));
        // The kernel's entries have no identifier at all.
        let line = br#"{"__CURSOR":"s=10","__REALTIME_TIMESTAMP":"6","MESSAGE":"eth0: link up"}"#;
        assert!(
            matches!(parse_entry(line, &names()), Item::Entry { entry, .. } if entry.identifier.is_empty())
        );

        let cut = br#"{"__CURSOR" : "s=11;i=3","__REALTIME_TIMESTAMP":"7","MESSAGE":"never ends"#;
        assert!(matches!(
            parse_entry(cut, &names()),
            Item::Malformed { cursor: Some(c), .. } if c == "s=11;i=3"
        ));
        assert!(matches!(
            parse_entry(b"-- No entries --", &names()),
            Item::Malformed { cursor: None, .. }
        ));
        assert!(matches!(
            parse_entry(br#"{"__CURSOR":"s=12","MESSAGE":"x"}"#, &names()),
            Item::Malformed {
                cursor: Some(_),
                ..
            }
        ));
        assert!(matches!(
            parse_entry(
                br#"{"__CURSOR":"s=13","__REALTIME_TIMESTAMP":"1","MESSAGE":[300]}"#,
                &names()
            ),
            Item::Malformed { .. }
        ));
    }

    #[test]
    fn long_messages_are_cut_like_long_log_lines() {
        let msg = "a".repeat(MAX_LINE_BYTES + 10);
        let line = format!(
            r#"{{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"postfix/smtp","MESSAGE":"{msg}"}}"#
        );
        let Item::Entry { entry, .. } = parse_entry(line.as_bytes(), &names()) else {
            panic!("an entry")
        };
        assert!(entry.message_cut);
        assert_eq!(entry.message.len(), MAX_LINE_BYTES);
    }

    #[test]
    fn bounded_lines() {
        let data = b"short\n0123456789abcdef\npartial";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line_bounded(&mut r, &mut buf, 8),
            Ok(ReadLine::Whole)
        ));
        assert_eq!(buf, b"short");
        assert!(matches!(
            read_line_bounded(&mut r, &mut buf, 8),
            Ok(ReadLine::TooLong(16))
        ));
        assert_eq!(buf, b"01234567");
        assert!(matches!(
            read_line_bounded(&mut r, &mut buf, 8),
            Ok(ReadLine::Eof)
        ));
    }

    #[test]
    fn the_command_line() {
        let config = JournaldConfig {
            enabled: true,
            journalctl: "journalctl".into(),
            units: vec!["postfix@-.service".into()],
            matches: vec!["SYSLOG_FACILITY=2".into()],
            args: vec!["--file=/x.journal".into()],
        };
        let cmd = command(&config, Some("s=1;i=2"), true);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-o",
                "json",
                "-a",
                "--no-pager",
                OUTPUT_FIELDS,
                "-f",
                "--no-tail",
                "--after-cursor=s=1;i=2",
                "--file=/x.journal",
                "--unit=postfix@-.service",
                "SYSLOG_FACILITY=2"
            ]
        );
    }
}
