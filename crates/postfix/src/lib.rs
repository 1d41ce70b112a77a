//! Postfix log understanding for Relaywatch: bytes in, typed events and delivery records out.
//!
//! - [`Parser`] turns one log line into one [`Event`] (RFC 3164, RFC 3339 and RFC 5424 syslog headers; every Postfix
//!   daemon that matters for deliveries; anything else becomes [`EventKind::Unknown`], counted, never dropped).
//! - [`Correlator`] joins a message's lines by (host, Postfix instance, queue id) and emits one [`DeliveryAttempt`]
//!   per status line and a [`MessageFinished`] when the queue manager removes the message. Its state is bounded and
//!   serialisable.
//! - [`classify()`] puts every failed attempt in a [`BounceClass`] (hard / soft / undetermined and a reason).
//!
//! This crate does no I/O: no files, no sockets, no clock. The caller passes the reference time for year inference.

mod bytes;
pub mod classify;
pub mod correlate;
pub mod event;
pub mod parse;
pub mod render;
pub mod reply;
pub mod time;

pub use classify::{BounceClass, BounceReason, Severity, classify, classify_attempt};
pub use compact_str::CompactString;
pub use correlate::{
    Correlator, CorrelatorConfig, CorrelatorState, DeliveryAttempt, DkimSignature, FinishReason,
    MessageFinished, Record,
};
pub use event::{Event, EventKind, Status, Text};
pub use parse::{DEFAULT_TAG_HEADER, Parser, ParserConfig};
pub use reply::{Reply, ReplyKind};
pub use time::Timestamp;
