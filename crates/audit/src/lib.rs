//! Relaywatch's audit rules, pure: DNS answers in, findings out (SPF, DKIM, DMARC, MX, reverse DNS of sending IPs,
//! MTA-STS, TLS-RPT, BIMI, SMTP TLS), and the meaning of DNS blocklist answers ([`blocklist`]).
//!
//! This crate does no I/O. The worker resolves names and probes servers; this crate judges what it got. An audit is
//! a fixpoint: [`evaluate`] runs every rule against the answers gathered so far and returns the queries it still
//! needs ([`Evaluation::missing`]); the caller resolves them and calls again until nothing is missing. Rules never
//! guess: a query that failed (timeout, SERVFAIL) makes the affected check "not tested", never "ok".
//!
//! What this crate must never do: open a socket, read a clock or a file, or panic on any DNS answer.

pub mod bimi;
pub mod blocklist;
pub mod dkim;
pub mod dmarc;
pub mod dns;
mod evaluate;
pub mod finding;
pub mod grade;
pub mod mta_sts;
pub mod mx;
pub mod names;
pub mod ptr;
pub mod smtp_tls;
pub mod spf;
pub mod tags;
pub mod tls_rpt;

pub use dns::{Answer, Answers, Query, Rdata, RecordType};
pub use evaluate::{AuditInput, Evaluation, catalog, evaluate};
pub use finding::{Finding, NotTested, Report, Rule, Severity};
pub use grade::{AreaStatus, Grade, Scorecard};
