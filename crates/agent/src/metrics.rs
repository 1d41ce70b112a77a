//! Self-observability: counters shared by the reader and the shipper, the Prometheus text they are served as on the
//! opt-in `/metrics` listener, and the [`TailEvents`] implementation that turns tailer events into logs and counters
//! (the tailer itself knows nothing about either).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tail::{Position, TailEvents};

#[derive(Default)]
pub struct Metrics {
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub unknown_lines: AtomicU64,
    pub not_postfix_lines: AtomicU64,
    pub lines_cut: AtomicU64,
    pub records_emitted: AtomicU64,
    pub batches_spooled: AtomicU64,
    pub batches_shipped: AtomicU64,
    pub records_accepted: AtomicU64,
    pub records_duplicate: AtomicU64,
    pub records_rejected: AtomicU64,
    pub records_unrouted: AtomicU64,
    pub ship_errors: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
    pub unreadable: AtomicU64,
    pub checkpoint_files_lost: AtomicU64,
    pub spool_full_pauses: AtomicU64,
    /// journald entries journalctl printed that are not JSON entries the agent can read.
    pub journal_malformed: AtomicU64,
    /// Times journalctl ended and was started again.
    pub journalctl_restarts: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_batches: AtomicU64,
    pub in_flight: AtomicU64,
    pub evicted: AtomicU64,
    /// Unix seconds of the newest log line read (log time).
    pub newest_line_unix: AtomicI64,
    pub last_error: Mutex<Option<String>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn set_error(&self, e: impl Into<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e.into());
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Seconds between the newest line's log time and now; `None` before the first line.
    pub fn lag_seconds(&self) -> Option<f64> {
        let newest = self.newest_line_unix.load(Ordering::Relaxed);
        if newest == 0 {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Some((now - newest).max(0) as f64)
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 20] = [
            ("lines_read_total", "Log lines read", g(&self.lines_read)),
            ("bytes_read_total", "Log bytes read", g(&self.bytes_read)),
            (
                "unknown_lines_total",
                "Postfix lines the parser did not understand",
                g(&self.unknown_lines),
            ),
            (
                "not_postfix_lines_total",
                "Lines of other programs",
                g(&self.not_postfix_lines),
            ),
            (
                "lines_cut_total",
                "Over-long lines cut to the line limit",
                g(&self.lines_cut),
            ),
            (
                "records_emitted_total",
                "Delivery and message records produced",
                g(&self.records_emitted),
            ),
            (
                "batches_spooled_total",
                "Batches written to the spool",
                g(&self.batches_spooled),
            ),
            (
                "batches_shipped_total",
                "Batches acknowledged by the API",
                g(&self.batches_shipped),
            ),
            (
                "records_accepted_total",
                "Records the API stored",
                g(&self.records_accepted),
            ),
            (
                "records_duplicate_total",
                "Records the API already had",
                g(&self.records_duplicate),
            ),
            (
                "records_rejected_total",
                "Records the API refused",
                g(&self.records_rejected),
            ),
            (
                "records_unrouted_total",
                "Records no tenant owns",
                g(&self.records_unrouted),
            ),
            (
                "ship_errors_total",
                "Failed shipping attempts (retried)",
                g(&self.ship_errors),
            ),
            (
                "rotations_total",
                "Log rotations followed",
                g(&self.rotations),
            ),
            (
                "truncations_total",
                "Log truncations seen",
                g(&self.truncations),
            ),
            (
                "unreadable_total",
                "Times a log could not be opened",
                g(&self.unreadable),
            ),
            (
                "checkpoint_files_lost_total",
                "Checkpointed files that were gone at restart",
                g(&self.checkpoint_files_lost),
            ),
            (
                "spool_full_pauses_total",
                "Times reading paused because the spool was full",
                g(&self.spool_full_pauses),
            ),
            (
                "journal_malformed_total",
                "journald entries that were not readable JSON entries (skipped)",
                g(&self.journal_malformed),
            ),
            (
                "journalctl_restarts_total",
                "Times journalctl ended and was started again after the last cursor read",
                g(&self.journalctl_restarts),
            ),
        ];
        for (name, help, v) in counters {
            out.push_str(&format!(
                "# HELP relaywatch_agent_{name} {help}.\n# TYPE relaywatch_agent_{name} counter\nrelaywatch_agent_{name} {v}\n"
            ));
        }
        let gauges: [(&str, &str, f64); 5] = [
            (
                "spool_bytes",
                "Bytes in the spool",
                g(&self.spool_bytes) as f64,
            ),
            (
                "spool_batches",
                "Batches in the spool",
                g(&self.spool_batches) as f64,
            ),
            (
                "in_flight_messages",
                "Messages the correlator is tracking",
                g(&self.in_flight) as f64,
            ),
            (
                "evicted_messages",
                "Messages evicted from the correlator (cumulative)",
                g(&self.evicted) as f64,
            ),
            (
                "lag_seconds",
                "Seconds between the newest line read and now",
                self.lag_seconds().unwrap_or(0.0),
            ),
        ];
        for (name, help, v) in gauges {
            out.push_str(&format!(
                "# HELP relaywatch_agent_{name} {help}.\n# TYPE relaywatch_agent_{name} gauge\nrelaywatch_agent_{name} {v}\n"
            ));
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` from a thread. Binding errors are returned; a bad request only closes its
/// connection.
pub fn serve(addr: SocketAddr, metrics: std::sync::Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .ok();
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(s) => s,
                    Err(_) => continue,
                });
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let (status, ctype, body) = if request_line.starts_with("GET /metrics") {
                    ("200 OK", "text/plain; version=0.0.4", metrics.render())
                } else if request_line.starts_with("GET /healthz") {
                    ("200 OK", "text/plain", "ok\n".to_string())
                } else {
                    ("404 Not Found", "text/plain", "not found\n".to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(local)
}

/// Tailer events as structured logs and counters.
pub struct AgentEvents<'a> {
    pub metrics: &'a Metrics,
}

impl TailEvents for AgentEvents<'_> {
    fn rotated(&self, path: &Path, from: &Path) {
        Metrics::add(&self.metrics.rotations, 1);
        tracing::info!(path = %path.display(), previous = %from.display(), "log rotated; previous file read to its end");
    }
    fn truncated(&self, path: &Path, read: u64, size: u64, copy: Option<&Path>) {
        Metrics::add(&self.metrics.truncations, 1);
        match copy {
            Some(c) => {
                tracing::info!(path = %path.display(), read_bytes = read, size_bytes = size, copy = %c.display(),
                "log truncated (copytruncate); reading the rest from the copy")
            }
            None => tracing::warn!(path = %path.display(), read_bytes = read, size_bytes = size,
                "log truncated; reading it again from its start"),
        }
    }
    fn unreadable(&self, path: &Path, error: &std::io::Error) {
        Metrics::add(&self.metrics.unreadable, 1);
        let msg = if error.kind() == std::io::ErrorKind::PermissionDenied {
            format!(
                "cannot read {}: permission denied. postlogd creates new logs as mode 0600 root after rotation: \
                 run the agent as root, or have the log created readable for it (e.g. logrotate `create 0640 root adm` \
                 and the agent in group adm)",
                path.display()
            )
        } else {
            format!("cannot read {}: {error}", path.display())
        };
        tracing::error!("{msg}");
        self.metrics.set_error(msg);
    }
    fn missing(&self, path: &Path) {
        tracing::warn!(path = %path.display(), "log file does not exist (yet); waiting for it");
    }
    fn resumed(&self, path: &Path, file: &Path, offset: u64) {
        tracing::info!(path = %path.display(), file = %file.display(), offset, "resuming from checkpoint");
    }
    fn checkpoint_file_lost(&self, path: &Path, position: &Position) {
        Metrics::add(&self.metrics.checkpoint_files_lost, 1);
        let msg = format!(
            "the checkpointed file of {} (inode {:?}, offset {}) is gone (rotated away or compressed); \
             reading the current file from its start — lines written between the checkpoint and that rotation are missed",
            path.display(),
            position.file.as_ref().map(|f| f.ino),
            position.offset
        );
        tracing::warn!("{msg}");
        self.metrics.set_error(msg);
    }
    fn line_cut(&self, path: &Path, len: u64) {
        Metrics::add(&self.metrics.lines_cut, 1);
        tracing::warn!(path = %path.display(), length_bytes = len, "over-long line cut to 64 KiB");
    }
}
