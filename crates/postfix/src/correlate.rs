//! The correlator: a state machine keyed by (host, Postfix instance, queue id) that joins a message's lines and emits
//! delivery records.
//!
//! Emission is held back until the log's clock moves to a later second, so lines that syslog wrote out of order within
//! one second (a delivery before its `qmgr` line, a late status after `removed`) still meet their context. A tailing
//! caller calls [`Correlator::flush`] when the log goes idle, and [`Correlator::checkpoint`] before saving its offset.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::bytes::same_bytes;
use crate::classify::{BounceClass, classify_attempt};
use crate::event::{Delays, Event, EventKind, NoticeKind, PostsuperAction, Status, Text};
use crate::time::Timestamp;

/// Limits of the correlator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorrelatorConfig {
    /// Messages held in memory at most; beyond it the oldest is evicted and counted. Each costs a few hundred bytes.
    pub max_in_flight: usize,
    /// Records held back waiting for the clock to move (bounds memory on a log whose clock stands still).
    pub max_pending: usize,
    /// A message the queue manager never saw is forgotten after this many seconds of silence: smtpd logs `client=`
    /// for transactions the client then aborts, and Postfix logs nothing when it drops their queue file.
    pub abandon_unqueued_after_secs: i64,
    /// A queued message is forgotten after this many seconds of silence: longer than Postfix's maximal_queue_lifetime
    /// (5 days by default), during which a deferred message is retried and logged at least every few hours.
    pub abandon_queued_after_secs: i64,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            max_in_flight: 50_000,
            max_pending: 8_192,
            abandon_unqueued_after_secs: 3_600,
            abandon_queued_after_secs: 6 * 86_400,
        }
    }
}

/// One delivery attempt to one recipient, with its message's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// Stable id: a UUIDv7-shaped string whose first 48 bits are the attempt's Unix milliseconds (so ids sort by
    /// time and database inserts stay local) and whose other 74 free bits come from a fixed 128-bit hash of host,
    /// Postfix instance, queue id, recipient, time, status, DSN and the attempt's position among its message's
    /// status lines. Replaying the same log (or resuming from a checkpoint) yields the same ids.
    pub id: String,
    pub time: Timestamp,
    pub host: CompactString,
    /// The Postfix instance's syslog name (`postfix`, `postfix-out`); queue ids are unique only within one.
    pub instance: CompactString,
    pub queue_id: CompactString,
    /// The delivery agent: `smtp`, `lmtp`, `local`, `virtual`, `pipe`, `error`, `retry`, `discard`, `cleanup`, or
    /// `qmgr` for expiries.
    pub daemon: CompactString,
    /// `None` only for an expiry whose deferred recipients were never seen (the log began after them).
    pub recipient: Option<CompactString>,
    pub orig_recipient: Option<CompactString>,
    pub status: Status,
    pub dsn: Option<CompactString>,
    pub relay: Option<String>,
    pub conn_use: Option<u32>,
    pub delay: Option<f64>,
    pub delays: Option<Delays>,
    /// The remote (or local) reply as logged.
    pub reply: Option<String>,
    pub reply_code: Option<u16>,
    pub bounce_class: Option<BounceClass>,
    /// 0-based position of this status line among the message's status lines.
    pub position: u32,
    pub message_id: Option<Arc<str>>,
    pub tag: Option<Arc<str>>,
    pub sender: Option<CompactString>,
    pub size: Option<u64>,
    pub nrcpt: Option<u32>,
    /// `host[addr]` of the SMTP client that submitted the message, or `local` for the pickup daemon.
    pub client: Option<Arc<str>>,
    pub sasl_username: Option<Arc<str>>,
    /// When this message is a bounce/delay notice: the queue id of the message it reports on.
    pub notice_of: Option<CompactString>,
    /// The DKIM signatures opendkim logged adding to the message (`s=`/`d=`); empty when none were logged. Left out of
    /// the JSON when empty, so servers that predate the field see the records they always saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim_signatures: Vec<DkimSignature>,
}

/// One DKIM signature added to a message, as the signer logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimSignature {
    /// `d=`: the signing domain.
    pub domain: String,
    /// `s=`: the selector; the key is at `<selector>._domainkey.<domain>`.
    pub selector: String,
}

/// Signatures kept per message at most: a real message carries one or two; a misconfigured milter chain that signs
/// again and again must not grow the record.
const MAX_SIGNATURES: usize = 8;

/// Why a message left the correlator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// qmgr `removed`: every recipient is done.
    Removed,
    /// postsuper `removed` (`postsuper -d`).
    Deleted,
    /// cleanup discarded it (`header_checks` DISCARD or a milter).
    Discarded,
    /// cleanup rejected it (`header_checks` REJECT or a milter).
    Rejected,
    /// A new message started under the same queue id before the old one's `removed` was seen.
    QueueIdReused,
}

/// A message's end, with its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFinished {
    pub time: Timestamp,
    pub host: CompactString,
    pub instance: CompactString,
    pub queue_id: CompactString,
    pub reason: FinishReason,
    pub first_seen: Option<Timestamp>,
    pub message_id: Option<Arc<str>>,
    pub tag: Option<Arc<str>>,
    pub sender: Option<CompactString>,
    pub size: Option<u64>,
    pub nrcpt: Option<u32>,
    pub client: Option<Arc<str>>,
    pub attempts: u32,
    pub sent: u32,
    pub deferred: u32,
    pub bounced: u32,
    pub expired: u32,
}

/// What the correlator emits.
// Records are boxed from the moment they are made: a delivery record is over 500 bytes, and it was copied about ten
// times on its way out (held, flushed, emitted), a tenth of `parse`'s time; one allocation costs less.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Delivery(Box<DeliveryAttempt>),
    Finished(Box<MessageFinished>),
}

/// A recipient whose last status was `deferred`, remembered so an expiry can name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deferred {
    recipient: CompactString,
    orig_recipient: Option<CompactString>,
    dsn: Option<CompactString>,
    relay: Option<String>,
    reply: Option<String>,
    reply_code: Option<u16>,
    bounce_class: Option<BounceClass>,
}

/// Everything known about one queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    host: u32,
    queue_id: CompactString,
    /// Creation order, for eviction of the oldest.
    seq: u64,
    /// Unix seconds of the last line about this message.
    #[serde(default)]
    last_seen: i64,
    first_seen: Option<Timestamp>,
    message_id: Option<Arc<str>>,
    tag: Option<Arc<str>>,
    sender: Option<CompactString>,
    size: Option<u64>,
    nrcpt: Option<u32>,
    client: Option<Arc<str>>,
    sasl_username: Option<Arc<str>>,
    notice_of: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dkim: Vec<DkimSignature>,
    /// qmgr has seen it (so a second `client=`/`pickup` under this id is a new message).
    queued: bool,
    attempts: u32,
    sent: u32,
    deferred: u32,
    bounced: u32,
    expired: u32,
    deferred_rcpts: Vec<Deferred>,
}

/// Serialisable correlator state, for the agent's checkpoint beside its file offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrelatorState {
    /// Bumped when the layout changes incompatibly.
    pub version: u32,
    sources: Vec<Source>,
    messages: Vec<Message>,
    next_seq: u64,
    evicted: u64,
    #[serde(default)]
    abandoned: u64,
    #[serde(default)]
    last_sweep: i64,
}

const STATE_VERSION: u32 = 1;

/// One Postfix instance on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Source {
    host: CompactString,
    instance: CompactString,
}

/// Fixed-size key: interned host and the queue id bytes (long Postfix ids have up to 21 characters; 24 leaves room).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    host: u32,
    len: u8,
    id: [u8; KEY_ID_LEN],
}

/// Four words (host and length, then the id's three): the derived hash fed the id as a byte slice, a length prefix
/// and a chunk loop, on every line with a queue id. Equal keys have equal fields, so equal hashes.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.host) | (u64::from(self.len) << 32));
        for word in self.id.chunks_exact(8) {
            state.write_u64(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
    }
}

/// Queue-id bytes a [`Key`] holds; longer ids share a key with others of the same first bytes.
const KEY_ID_LEN: usize = 24;

impl Key {
    fn new(host: u32, qid: &[u8]) -> Key {
        let mut id = [0u8; KEY_ID_LEN];
        let n = qid.len().min(KEY_ID_LEN);
        id[..n].copy_from_slice(&qid[..n]);
        Key {
            host,
            len: n as u8,
            id,
        }
    }
}

/// FxHash: queue ids are written by Postfix, not by an attacker, so a fast non-keyed hash is fine here.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// What waits for its second to pass: attempts (boxed from the start, see [`Record`]) and messages finishing.
enum Pending {
    Attempt(Key, Box<DeliveryAttempt>),
    Finish(Key, Finishing, FinishReason, Timestamp),
}

/// Where a finishing message is until its second is over.
enum Finishing {
    /// Taken out of the map (so a new message may reuse the queue id at once).
    Taken(Box<Message>),
    /// Put back into the map because a late line of it arrived within the second (cleanup's status line after a
    /// header REJECT, a status line written after `removed`); removed at flush if it is still the same message.
    Resurrected(u64),
}

/// Joins events into [`Record`]s. Feed it every event in log order with [`Correlator::push`].
pub struct Correlator {
    config: CorrelatorConfig,
    sources: Vec<Source>,
    last_source: Option<u32>,
    messages: FxMap<Key, Message>,
    order: VecDeque<(Key, u64)>,
    next_seq: u64,
    evicted: u64,
    abandoned: u64,
    /// Log time of the last sweep for abandoned messages.
    last_sweep: i64,
    pending: Vec<Pending>,
    pending_second: i64,
    finishing: FxMap<Key, usize>,
    spare: Vec<Pending>,
    /// Notice queue id → original queue id, for bounce lines that came before the notice's first line.
    early_notices: FxMap<Key, CompactString>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator::new(CorrelatorConfig::default())
    }
}

impl Correlator {
    pub fn new(config: CorrelatorConfig) -> Correlator {
        Correlator {
            config,
            sources: Vec::new(),
            last_source: None,
            messages: FxMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            evicted: 0,
            abandoned: 0,
            last_sweep: i64::MIN,
            pending: Vec::new(),
            pending_second: i64::MIN,
            finishing: FxMap::default(),
            spare: Vec::new(),
            early_notices: FxMap::default(),
        }
    }

    /// Resumes from a checkpoint.
    pub fn restore(config: CorrelatorConfig, state: CorrelatorState) -> Result<Correlator, String> {
        if state.version != STATE_VERSION {
            return Err(format!(
                "correlator state version {} is not {STATE_VERSION}",
                state.version
            ));
        }
        let mut c = Correlator::new(config);
        c.sources = state.sources;
        c.next_seq = state.next_seq;
        c.evicted = state.evicted;
        c.abandoned = state.abandoned;
        c.last_sweep = state.last_sweep;
        for m in state.messages {
            let key = Key::new(m.host, m.queue_id.as_bytes());
            c.order.push_back((key, m.seq));
            c.messages.insert(key, m);
        }
        Ok(c)
    }

    /// Flushes held-back records into `out` and returns the state to save with the file offset.
    pub fn checkpoint(&mut self, out: &mut Vec<Record>) -> CorrelatorState {
        self.flush(out);
        let mut messages: Vec<Message> = self.messages.values().cloned().collect();
        messages.sort_by_key(|m| m.seq);
        CorrelatorState {
            version: STATE_VERSION,
            sources: self.sources.clone(),
            messages,
            next_seq: self.next_seq,
            evicted: self.evicted,
            abandoned: self.abandoned,
            last_sweep: self.last_sweep,
        }
    }

    /// Messages currently tracked.
    pub fn in_flight(&self) -> usize {
        self.messages.len()
    }

    /// Messages dropped because `max_in_flight` was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Messages forgotten after a long silence (see [`CorrelatorConfig::abandon_unqueued_after_secs`]).
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    /// Forgets messages that have been silent too long. Runs every ten minutes of log time.
    fn sweep(&mut self, now: i64) {
        const EVERY_SECS: i64 = 600;
        if self.last_sweep == i64::MIN {
            self.last_sweep = now;
            return;
        }
        if now < self.last_sweep.saturating_add(EVERY_SECS) {
            return;
        }
        self.last_sweep = now;
        let (unqueued, queued) = (
            self.config.abandon_unqueued_after_secs,
            self.config.abandon_queued_after_secs,
        );
        let before = self.messages.len();
        self.messages.retain(|_, m| {
            let limit = if m.queued { queued } else { unqueued };
            now.saturating_sub(m.last_seen) <= limit
        });
        self.abandoned += (before - self.messages.len()) as u64;
        let messages = &self.messages;
        self.order
            .retain(|(k, s)| messages.get(k).is_some_and(|m| m.seq == *s));
    }

    /// Emits everything held back. Call at end of input and when a tailed log has been idle for a second.
    pub fn flush(&mut self, out: &mut Vec<Record>) {
        if self.pending.is_empty() {
            return;
        }
        // Swap in the spare buffer so neither vector's allocation is lost between seconds.
        let spare = std::mem::take(&mut self.spare);
        let mut pending = std::mem::replace(&mut self.pending, spare);
        // Context for attempts comes from the live message, or from the finished one it belonged to.
        for i in 0..pending.len() {
            let Pending::Attempt(key, _) = &pending[i] else {
                continue;
            };
            let key = *key;
            let context = match self.messages.get(&key) {
                Some(m) => Some(Context::of(m)),
                None => match self.finishing.get(&key).map(|&j| &pending[j]) {
                    Some(Pending::Finish(_, Finishing::Taken(m), ..)) => Some(Context::of(m)),
                    _ => None,
                },
            };
            if let (Pending::Attempt(_, a), Some(c)) = (&mut pending[i], context) {
                c.apply(a);
            }
        }
        self.finishing.clear();
        for p in pending.drain(..) {
            match p {
                Pending::Attempt(_, a) => out.push(Record::Delivery(a)),
                Pending::Finish(_, Finishing::Taken(m), reason, time) => {
                    out.push(Record::Finished(Box::new(self.finished(*m, reason, time))))
                }
                Pending::Finish(key, Finishing::Resurrected(seq), reason, time) => {
                    if self.messages.get(&key).is_some_and(|m| m.seq == seq) {
                        let m = self.messages.remove(&key).expect("checked above");
                        out.push(Record::Finished(Box::new(self.finished(m, reason, time))));
                    }
                }
            }
        }
        self.spare = pending;
    }

    /// Feeds one event; records whose second has passed are appended to `out`.
    pub fn push(&mut self, event: &Event<'_>, out: &mut Vec<Record>) {
        let Some(header) = event.header else { return };
        let time = header.time;
        let second = time.unix_seconds();
        if !self.pending.is_empty()
            && (second > self.pending_second || self.pending.len() >= self.config.max_pending)
        {
            self.flush(out);
        }
        if second > self.pending_second && !self.early_notices.is_empty() {
            self.early_notices.clear();
        }
        if self.pending.is_empty() || second > self.pending_second {
            self.pending_second = second;
        }
        if self.pending.is_empty() {
            self.sweep(second);
        }
        let Some(qid) = event.queue_id else { return };
        if let EventKind::DkimSignature { selector, domain } = &event.kind {
            self.signed(header.host.as_bytes(), qid, selector, domain);
            return;
        }
        let host = self.intern_source(header.host.as_bytes(), header.program.instance.as_bytes());
        let key = Key::new(host, qid.as_bytes());
        let daemon = header.program.daemon;
        match &event.kind {
            EventKind::Pickup { from, .. } => {
                self.start_if_reused(key, time);
                let m = self.message(key, qid, time);
                m.client = Some(Arc::from("local"));
                if m.sender.is_none() {
                    m.sender = Some(from.to_compact());
                }
            }
            EventKind::ClientAccepted {
                client,
                sasl_username,
                ..
            } => {
                self.start_if_reused(key, time);
                let m = self.message(key, qid, time);
                m.client = Some(Arc::from(client_text(client)));
                m.sasl_username = sasl_username.map(|u| u.to_shared());
            }
            EventKind::MessageId { message_id } => {
                let m = self.message(key, qid, time);
                // `message-id=` and `message-id=<>` mean the message had none; a malformed id is kept as written.
                let id = strip_angle(message_id);
                m.message_id = (!id.is_empty()).then(|| id.to_shared());
            }
            EventKind::Check(check) => {
                let crate::event::CheckLine {
                    action,
                    value,
                    is_tag,
                    ..
                } = &**check;
                let m = self.message(key, qid, time);
                if *is_tag && m.tag.is_none() {
                    m.tag = Some(Arc::from(value.to_str().trim()));
                }
                match action {
                    crate::event::CheckAction::Discard => {
                        self.finish(key, FinishReason::Discarded, time)
                    }
                    crate::event::CheckAction::Reject => {
                        self.finish(key, FinishReason::Rejected, time)
                    }
                    _ => {}
                }
            }
            EventKind::QueueActive { from, size, nrcpt } => {
                let m = self.message(key, qid, time);
                m.queued = true;
                m.sender = Some(from.to_compact());
                m.size = size.or(m.size);
                m.nrcpt = nrcpt.or(m.nrcpt);
            }
            EventKind::Delivery(d) => {
                self.resurrect(key);
                let m = self.message(key, qid, time);
                let position = m.attempts;
                m.attempts += 1;
                // The message holds this very queue id (its key is the id's bytes when they fit): a copy of that
                // needs no UTF-8 check.
                let queue_id = if qid.len() <= KEY_ID_LEN {
                    m.queue_id.clone()
                } else {
                    qid.to_compact()
                };
                let recipient = d.compact(d.to);
                let orig_recipient = d.orig_to.map(|o| d.compact(o));
                let dsn = d.dsn.map(|x| d.compact(x));
                let bounce_class = classify_attempt(d.status, dsn.as_deref(), &d.reply);
                let reply = (!d.reply.raw.is_empty()).then(|| d.owned(d.reply.raw));
                let relay = d.relay.map(|r| d.owned(r));
                m.count(d.status);
                let idx = m
                    .deferred_rcpts
                    .iter()
                    .position(|r| r.recipient == recipient && r.orig_recipient == orig_recipient);
                if d.status == Status::Deferred {
                    let entry = Deferred {
                        recipient: recipient.clone(),
                        orig_recipient: orig_recipient.clone(),
                        dsn: dsn.clone(),
                        relay: relay.clone(),
                        reply: reply.clone(),
                        reply_code: d.reply.code,
                        bounce_class,
                    };
                    match idx {
                        Some(i) => m.deferred_rcpts[i] = entry,
                        None => m.deferred_rcpts.push(entry),
                    }
                } else if let Some(i) = idx {
                    m.deferred_rcpts.swap_remove(i);
                }
                let attempt = Box::new(DeliveryAttempt {
                    id: String::new(),
                    time,
                    host: self.sources[host as usize].host.clone(),
                    instance: self.sources[host as usize].instance.clone(),
                    queue_id,
                    daemon: daemon_name(daemon),
                    recipient: Some(recipient),
                    orig_recipient,
                    status: d.status,
                    dsn,
                    relay,
                    conn_use: d.conn_use,
                    delay: d.delay,
                    delays: d.delays,
                    reply,
                    reply_code: d.reply.code,
                    bounce_class,
                    position,
                    message_id: None,
                    tag: None,
                    sender: None,
                    size: None,
                    nrcpt: None,
                    client: None,
                    sasl_username: None,
                    notice_of: None,
                    dkim_signatures: Vec::new(),
                });
                self.hold(key, attempt);
            }
            EventKind::Expired { from, forced } => {
                let status = if *forced {
                    Status::ForceExpired
                } else {
                    Status::Expired
                };
                self.resurrect(key);
                let m = self.message(key, qid, time);
                if m.sender.is_none() {
                    m.sender = Some(from.to_compact());
                }
                let rcpts = std::mem::take(&mut m.deferred_rcpts);
                let targets: Vec<Option<Deferred>> = if rcpts.is_empty() {
                    vec![None]
                } else {
                    rcpts.into_iter().map(Some).collect()
                };
                for r in targets {
                    let m = self.message(key, qid, time);
                    let position = m.attempts;
                    m.attempts += 1;
                    m.count(status);
                    let r = r.unwrap_or(Deferred {
                        recipient: CompactString::default(),
                        orig_recipient: None,
                        dsn: None,
                        relay: None,
                        reply: None,
                        reply_code: None,
                        bounce_class: None,
                    });
                    let attempt = Box::new(DeliveryAttempt {
                        id: String::new(),
                        time,
                        host: self.sources[host as usize].host.clone(),
                        instance: self.sources[host as usize].instance.clone(),
                        queue_id: qid.to_compact(),
                        daemon: daemon_name(daemon),
                        recipient: (!r.recipient.is_empty()).then_some(r.recipient),
                        orig_recipient: r.orig_recipient,
                        status,
                        dsn: r.dsn,
                        relay: r.relay,
                        conn_use: None,
                        delay: None,
                        delays: None,
                        reply: r.reply,
                        reply_code: r.reply_code,
                        bounce_class: classify_attempt(status, None, &crate::reply::Reply::empty()),
                        position,
                        message_id: None,
                        tag: None,
                        sender: None,
                        size: None,
                        nrcpt: None,
                        client: None,
                        sasl_username: None,
                        notice_of: None,
                        dkim_signatures: Vec::new(),
                    });
                    self.hold(key, attempt);
                }
            }
            EventKind::BounceNotice {
                kind,
                notice_queue_id,
                ..
            } if *kind != NoticeKind::Other => {
                // The bounce daemon had cleanup queue the notice before logging this line, so the notice is known —
                // or already delivered and finishing within this second. Never start a message from here: a notice
                // that finished earlier would linger as an empty message.
                let nkey = Key::new(host, notice_queue_id.as_bytes());
                let original = Some(qid.to_compact());
                if let Some(n) = self.messages.get_mut(&nkey) {
                    n.notice_of = original;
                } else if let Some(&i) = self.finishing.get(&nkey)
                    && let Some(Pending::Finish(_, Finishing::Taken(n), ..)) =
                        self.pending.get_mut(i)
                {
                    n.notice_of = original;
                } else if let Some(original) = original {
                    // Written before the notice's own first line within this second: link it when that arrives.
                    self.early_notices.insert(nkey, original);
                }
            }
            EventKind::Removed => self.finish(key, FinishReason::Removed, time),
            EventKind::Postsuper {
                action: PostsuperAction::Removed,
                ..
            } => self.finish(key, FinishReason::Deleted, time),
            _ => {}
        }
    }

    /// opendkim's line carries the host but no Postfix instance: the signature belongs to the message with that queue id
    /// in any instance of the host (the most recent one should two instances hold the same id). A message not seen yet
    /// is not started from here: the milter signs after smtpd's `client=` or pickup's line, so a signature without its
    /// message belongs to mail this log does not show.
    fn signed(&mut self, host: &[u8], qid: Text<'_>, selector: &Text<'_>, domain: &Text<'_>) {
        let signature = DkimSignature {
            domain: domain.to_str().trim_end_matches('.').to_ascii_lowercase(),
            selector: selector.to_str().to_ascii_lowercase(),
        };
        let mut target: Option<(Key, u64)> = None;
        for (i, source) in self.sources.iter().enumerate() {
            if source.host.as_bytes() != host {
                continue;
            }
            let key = Key::new(i as u32, qid.as_bytes());
            if let Some(m) = self.messages.get(&key)
                && target.is_none_or(|(_, seq)| m.seq > seq)
            {
                target = Some((key, m.seq));
            }
        }
        let Some((key, _)) = target else { return };
        if let Some(m) = self.messages.get_mut(&key)
            && m.dkim.len() < MAX_SIGNATURES
            && !m.dkim.contains(&signature)
        {
            m.dkim.push(signature);
        }
    }

    /// A source is one Postfix instance on one host: each instance has its own queue, so queue ids may repeat
    /// across instances.
    fn intern_source(&mut self, host: &[u8], instance: &[u8]) -> u32 {
        let same = |s: &Source| {
            same_bytes(s.host.as_bytes(), host) && same_bytes(s.instance.as_bytes(), instance)
        };
        if let Some(i) = self.last_source
            && same(&self.sources[i as usize])
        {
            return i;
        }
        let i = match self.sources.iter().position(same) {
            Some(i) => i as u32,
            None => {
                self.sources.push(Source {
                    host: Text(host).to_compact(),
                    instance: Text(instance).to_compact(),
                });
                (self.sources.len() - 1) as u32
            }
        };
        self.last_source = Some(i);
        i
    }

    fn message(&mut self, key: Key, qid: Text<'_>, time: Timestamp) -> &mut Message {
        if self.messages.len() >= self.config.max_in_flight.max(1)
            && !self.messages.contains_key(&key)
        {
            self.evict_if_full();
        }
        // Finished messages leave stale entries behind; drop them before they outnumber the live ones.
        if self.order.len() > 2 * self.messages.len() + 1024 {
            let messages = &self.messages;
            self.order
                .retain(|(k, s)| messages.get(k).is_some_and(|m| m.seq == *s));
        }
        let next_seq = &mut self.next_seq;
        let order = &mut self.order;
        let early_notices = &mut self.early_notices;
        let m = self.messages.entry(key).or_insert_with(|| {
            let seq = *next_seq;
            *next_seq += 1;
            order.push_back((key, seq));
            let mut m = Message::new(key.host, qid.to_compact(), seq, time);
            if !early_notices.is_empty() {
                m.notice_of = early_notices.remove(&key);
            }
            m
        });
        m.last_seen = m.last_seen.max(time.unix_seconds());
        m
    }

    /// A `pickup` or `client=` under a queue id that already carries a queued message means Postfix reused the id
    /// and we missed the old message's `removed`: finish the old one first.
    fn start_if_reused(&mut self, key: Key, time: Timestamp) {
        if self
            .messages
            .get(&key)
            .is_some_and(|m| m.queued || m.attempts > 0 || m.message_id.is_some())
        {
            self.finish(key, FinishReason::QueueIdReused, time);
        }
    }

    fn finish(&mut self, key: Key, reason: FinishReason, time: Timestamp) {
        let m = self.messages.remove(&key).unwrap_or_else(|| {
            let host = key.host;
            let qid = Text(&key.id[..usize::from(key.len)]).to_compact();
            Message::new(host, qid, u64::MAX, time)
        });
        self.finishing.insert(key, self.pending.len());
        self.pending.push(Pending::Finish(
            key,
            Finishing::Taken(Box::new(m)),
            reason,
            time,
        ));
    }

    /// A status line for a message that finished earlier in this second belongs to that message: put it back.
    fn resurrect(&mut self, key: Key) {
        if self.messages.contains_key(&key) {
            return;
        }
        let Some(&i) = self.finishing.get(&key) else {
            return;
        };
        if let Some(Pending::Finish(_, slot @ Finishing::Taken(_), ..)) = self.pending.get_mut(i)
            && let Finishing::Taken(m) = std::mem::replace(slot, Finishing::Resurrected(0))
        {
            *slot = Finishing::Resurrected(m.seq);
            self.order.push_back((key, m.seq));
            self.messages.insert(key, *m);
        }
    }

    fn hold(&mut self, key: Key, mut attempt: Box<DeliveryAttempt>) {
        attempt.id = attempt_id(&attempt);
        self.pending.push(Pending::Attempt(key, attempt));
    }

    fn evict_if_full(&mut self) {
        while self.messages.len() >= self.config.max_in_flight.max(1) {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.messages.get(&key).is_some_and(|m| m.seq == seq) {
                self.messages.remove(&key);
                self.evicted += 1;
            }
        }
    }

    fn finished(&self, m: Message, reason: FinishReason, time: Timestamp) -> MessageFinished {
        MessageFinished {
            time,
            host: self
                .sources
                .get(m.host as usize)
                .map(|s| s.host.clone())
                .unwrap_or_default(),
            instance: self
                .sources
                .get(m.host as usize)
                .map(|s| s.instance.clone())
                .unwrap_or_default(),
            queue_id: m.queue_id,
            reason,
            first_seen: m.first_seen,
            message_id: m.message_id,
            tag: m.tag,
            sender: m.sender,
            size: m.size,
            nrcpt: m.nrcpt,
            client: m.client,
            attempts: m.attempts,
            sent: m.sent,
            deferred: m.deferred,
            bounced: m.bounced,
            expired: m.expired,
        }
    }
}

impl Message {
    fn new(host: u32, queue_id: CompactString, seq: u64, time: Timestamp) -> Message {
        Message {
            host,
            queue_id,
            seq,
            last_seen: time.unix_seconds(),
            first_seen: Some(time),
            message_id: None,
            tag: None,
            sender: None,
            size: None,
            nrcpt: None,
            client: None,
            sasl_username: None,
            notice_of: None,
            dkim: Vec::new(),
            queued: false,
            attempts: 0,
            sent: 0,
            deferred: 0,
            bounced: 0,
            expired: 0,
            deferred_rcpts: Vec::new(),
        }
    }

    fn count(&mut self, status: Status) {
        match status {
            Status::Sent | Status::Deliverable => self.sent += 1,
            Status::Deferred => self.deferred += 1,
            Status::Bounced | Status::Undeliverable | Status::UndeliverableButNotCached => {
                self.bounced += 1
            }
            Status::Expired | Status::ForceExpired => self.expired += 1,
            Status::Other => {}
        }
    }
}

/// The daemon's name without a UTF-8 check for the usual ones (it is in every delivery record: kept on the hot path).
fn daemon_name(d: Text<'_>) -> CompactString {
    match d.as_bytes() {
        b"smtp" => "smtp",
        b"local" => "local",
        b"lmtp" => "lmtp",
        b"virtual" => "virtual",
        b"pipe" => "pipe",
        b"error" => "error",
        b"qmgr" => "qmgr",
        b"cleanup" => "cleanup",
        _ => return d.to_compact(),
    }
    .into()
}

/// The message facts an attempt carries. The texts are shared (`Arc<str>`) by the message and all its attempts:
/// handing them to an attempt is a reference count, not an allocation and a copy.
struct Context {
    message_id: Option<Arc<str>>,
    tag: Option<Arc<str>>,
    sender: Option<CompactString>,
    size: Option<u64>,
    nrcpt: Option<u32>,
    client: Option<Arc<str>>,
    sasl_username: Option<Arc<str>>,
    notice_of: Option<CompactString>,
    dkim: Vec<DkimSignature>,
}

impl Context {
    fn of(m: &Message) -> Context {
        Context {
            message_id: m.message_id.clone(),
            tag: m.tag.clone(),
            sender: m.sender.clone(),
            size: m.size,
            nrcpt: m.nrcpt,
            client: m.client.clone(),
            sasl_username: m.sasl_username.clone(),
            notice_of: m.notice_of.clone(),
            dkim: m.dkim.clone(),
        }
    }

    fn apply(self, a: &mut DeliveryAttempt) {
        a.message_id = self.message_id;
        a.tag = self.tag;
        a.sender = self.sender;
        a.size = self.size;
        a.nrcpt = self.nrcpt;
        a.client = self.client;
        a.sasl_username = self.sasl_username;
        a.notice_of = self.notice_of;
        a.dkim_signatures = self.dkim;
    }
}

fn client_text(c: &crate::event::Client<'_>) -> String {
    match c.addr {
        // Built by hand: `format!` cost as much as the rest of the `client=` line's handling.
        Some(addr) => {
            let mut s = String::with_capacity(c.name.len() + addr.len() + 2);
            s.push_str(&c.name.to_str());
            s.push('[');
            s.push_str(&addr.to_str());
            s.push(']');
            s
        }
        None => c.name.to_owned_string(),
    }
}

fn strip_angle<'a>(t: &Text<'a>) -> Text<'a> {
    let b = t.as_bytes();
    match (b.first(), b.last()) {
        (Some(b'<'), Some(b'>')) if b.len() >= 2 => Text(&b[1..b.len() - 1]),
        _ => *t,
    }
}

/// A fixed 128-bit hash: two 64-bit lanes fed eight little-endian bytes at a time, each part closed by its length,
/// then the splitmix64 finaliser. Deterministic across platforms and Rust versions (unlike the standard library's
/// hasher) and a word at a time, so it costs little per attempt. Not cryptographic: it only has to keep distinct
/// attempts apart, and the id's time prefix already separates most of them.
fn hash128(parts: &[&[u8]]) -> u128 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let (mut h1, mut h2) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
    let mut feed = |w: u64| {
        h1 = (h1 ^ w).wrapping_mul(K1).rotate_left(31);
        h2 = (h2 ^ w).wrapping_mul(K2).rotate_left(27).wrapping_add(h1);
    };
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            feed(u64::from_le_bytes(c.try_into().expect("chunks of eight")));
        }
        feed(tail_word(part));
        feed(part.len() as u64);
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (u128::from(mix(h1 ^ h2.rotate_left(17))) << 64) | u128::from(mix(h2 ^ h1.rotate_left(41)))
}

/// The bytes of `part` after its last whole word, as the zero-padded little-endian word. Loaded, not gathered a byte
/// at a time: from the part's last eight bytes when it has them, else from two overlapping four-byte halves. (Copying
/// the tail into a stack buffer and reading that back as a word stalled on store forwarding.)
#[inline]
fn tail_word(part: &[u8]) -> u64 {
    let r = part.len() % 8;
    if r == 0 {
        return 0;
    }
    if let Some(last) = part.last_chunk::<8>() {
        return u64::from_le_bytes(*last) >> (8 * (8 - r));
    }
    if let (Some(lo), Some(hi)) = (part.first_chunk::<4>(), part.last_chunk::<4>()) {
        // Overlapping bytes are the same bytes at the same places: or-ing them is harmless.
        return u64::from(u32::from_le_bytes(*lo))
            | (u64::from(u32::from_le_bytes(*hi)) << (8 * (r - 4)));
    }
    part.iter()
        .enumerate()
        .fold(0, |w, (i, &b)| w | (u64::from(b) << (8 * i)))
}

/// See [`DeliveryAttempt::id`].
pub fn attempt_id(a: &DeliveryAttempt) -> String {
    let micros = a.time.unix_micros.to_le_bytes();
    let position = a.position.to_le_bytes();
    let h = hash128(&[
        a.host.as_bytes(),
        a.instance.as_bytes(),
        a.queue_id.as_bytes(),
        a.recipient.as_deref().unwrap_or("").as_bytes(),
        &micros,
        a.status.as_str().as_bytes(),
        a.dsn.as_deref().unwrap_or("").as_bytes(),
        &position,
    ]);
    let millis = (a.time.unix_micros.div_euclid(1000) as u64) & 0xffff_ffff_ffff;
    // UUIDv7 layout: 48 bits time, 4 bits version, 12 bits + 2 variant bits + 62 bits from the hash.
    let rand_a = (h >> 64) as u16 & 0x0fff;
    let rand_b = (h as u64) & 0x3fff_ffff_ffff_ffff;
    let hi = (u128::from(millis) << 80) | (0x7u128 << 76) | (u128::from(rand_a) << 64);
    let v = hi | (0b10u128 << 62) | u128::from(rand_b);
    // Written into a fixed buffer and copied once: pushing 36 chars one at a time was a twentieth of `parse`'s time.
    // A byte at a time, two digits each: shifting the 128-bit value once per digit cost twice as much.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in v.to_be_bytes().into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    // Only ASCII hex digits and dashes: the conversion cannot fail.
    std::str::from_utf8(&text)
        .map(str::to_owned)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::tail_word;

    #[test]
    fn tail_words_are_the_zero_padded_little_endian_tails() {
        let bytes: Vec<u8> = (0u8..40)
            .map(|i| i.wrapping_mul(37).wrapping_add(0xa5))
            .collect();
        for len in 0..bytes.len() {
            let part = &bytes[..len];
            let tail = &part[len - len % 8..];
            let mut padded = [0u8; 8];
            padded[..tail.len()].copy_from_slice(tail);
            assert_eq!(tail_word(part), u64::from_le_bytes(padded), "length {len}");
        }
    }
}
