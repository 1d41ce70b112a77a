//! relaywatch-agent: follows Postfix logs on a mail host, turns them into delivery records and ships them to the
//! Relaywatch API without losing or doubling any, through rotations, restarts, crashes and API outages.
//!
//! - [`tail`]: follows one log path by file fingerprint through rotation and truncation.
//! - [`journal`]: the journald source, `journalctl -o json -f` read entry by entry, resumed by cursor.
//! - [`reader`]: parse, correlate, cut batches at exactly resumable points, write them to the [`spool`].
//! - [`ship`]: drains the spool to `POST /v1/ingest`; an acknowledged batch becomes the [`state`] checkpoint.
//! - [`metrics`]: counters, `/metrics`, and the tailer's events as logs.
//!
//! The agent depends on `relaywatch-domain` and `relaywatch-postfix` only, never on the server crates.

pub mod backfill_cmd;
pub mod check_cmd;
pub mod config;
pub mod journal;
pub mod metrics;
pub mod parse_cmd;
pub mod reader;
pub mod run_cmd;
pub mod ship;
pub mod spool;
pub mod state;
pub mod tail;
