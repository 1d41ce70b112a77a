//! `relaywatch-agent backfill FILE...`: ships old logs (plain or .gz) once, with a progress line and a summary.
//! No checkpoint: ids are stable, so running it twice only produces duplicates the API drops.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use relaywatch_domain::wire::{AgentInfo, IngestBatch};
use relaywatch_postfix::{Correlator, CorrelatorConfig, EventKind, Parser, ParserConfig, Record};

use crate::config::{Config, ConfigArgs};
use crate::parse_cmd::{for_each_line, reference_time};
use crate::ship::{Backoff, Client, SendError, Shipped, gzip_batch, send_batch};

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// Log files, oldest first (plain or gzip-compressed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Counts the raw bytes read from a file, for the progress line (a .gz file's progress is in compressed bytes).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_counting(path: &Path, read: Arc<AtomicU64>) -> Result<Box<dyn std::io::BufRead>> {
    const BUF: usize = 1 << 16;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(BUF, Counting { inner: file, read });
    let gz = std::io::BufRead::fill_buf(&mut reader)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(std::io::BufReader::with_capacity(
            BUF,
            flate2::bufread::MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

struct Progress {
    total: u64,
    read: Arc<AtomicU64>,
    started: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn show(&mut self, lines: u64, shipped: u64, force: bool) {
        let every = if self.tty { 0.2 } else { 5.0 };
        if !force && self.last.elapsed().as_secs_f64() < every {
            return;
        }
        self.last = Instant::now();
        let read = self.read.load(Ordering::Relaxed);
        let pct = if self.total > 0 {
            100.0 * read as f64 / self.total as f64
        } else {
            100.0
        };
        let width = 30usize;
        let filled = ((pct / 100.0) * width as f64).round() as usize;
        let bar: String = "#".repeat(filled.min(width)) + &"-".repeat(width - filled.min(width));
        let rate = lines as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(
                err,
                "\r[{bar}] {pct:5.1} %  {lines} lines  {shipped} records shipped  {rate:.0} lines/s "
            );
        } else {
            let _ = writeln!(
                err,
                "backfill: {pct:.1} % ({lines} lines, {shipped} records shipped, {rate:.0} lines/s)"
            );
        }
        let _ = err.flush();
    }
}

pub fn run(args: BackfillArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    config.require_api()?;
    let client = Client::new(&config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let total: u64 = args
        .files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .with_context(|| format!("reading {}", f.display()))
        })
        .sum::<Result<u64>>()?;
    let read = Arc::new(AtomicU64::new(0));
    let mut progress = Progress {
        total,
        read: Arc::clone(&read),
        started: Instant::now(),
        last: Instant::now(),
        tty: std::io::stderr().is_terminal(),
    };
    let agent = AgentInfo {
        host_name: config.host_name.clone(),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
    };
    let mut correlator = Correlator::new(CorrelatorConfig::default());
    let mut pending: Vec<serde_json::Value> = Vec::new();
    let mut records = Vec::new();
    let (mut lines, mut unknown, mut deliveries, mut finished) = (0u64, 0u64, 0u64, 0u64);
    let mut shipped = Shipped::default();
    let mut sent = 0u64;
    let max = config.batch_max_records;

    let ship =
        |batch: &mut Vec<serde_json::Value>, shipped: &mut Shipped, sent: &mut u64| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let b = IngestBatch {
                agent: agent.clone(),
                records: std::mem::take(batch),
            };
            let n = b.records.len() as u64;
            let body = gzip_batch(&b)?;
            let mut backoff = Backoff::default();
            loop {
                match rt.block_on(send_batch(&client, body.clone(), n)) {
                    Ok(s) => {
                        shipped.accepted += s.accepted;
                        shipped.duplicate += s.duplicate;
                        shipped.rejected += s.rejected;
                        shipped.unrouted += s.unrouted;
                        *sent += n;
                        return Ok(());
                    }
                    Err(SendError::Retry { after, reason }) => {
                        let wait = backoff.next(after);
                        tracing::warn!("shipping failed: {reason}; retrying in {wait:?}");
                        std::thread::sleep(wait);
                    }
                    Err(e) => bail!("{e}"),
                }
            }
        };

    for path in &args.files {
        let mut parser_config = ParserConfig {
            tag_headers: config.tag_headers.clone(),
            reference_unix: reference_time(path)?,
            rfc3164_offset_minutes: config.utc_offset_minutes,
            ..Default::default()
        };
        parser_config.syslog_names.clone_from(&config.syslog_names);
        let parser = Parser::new(parser_config);
        let mut reader = open_counting(path, Arc::clone(&read))?;
        for_each_line(&mut *reader, |line| {
            lines += 1;
            let event = parser.parse_line(line);
            if matches!(event.kind, EventKind::Unknown { .. }) {
                unknown += 1;
            }
            correlator.push(&event, &mut records);
            for r in records.drain(..) {
                match &r {
                    Record::Delivery(_) => deliveries += 1,
                    Record::Finished(_) => finished += 1,
                }
                pending.push(serde_json::to_value(&r)?);
            }
            if pending.len() >= max {
                ship(&mut pending, &mut shipped, &mut sent)?;
            }
            progress.show(lines, sent, false);
            Ok(())
        })
        .with_context(|| format!("backfilling {}", path.display()))?;
    }
    correlator.flush(&mut records);
    for r in records.drain(..) {
        match &r {
            Record::Delivery(_) => deliveries += 1,
            Record::Finished(_) => finished += 1,
        }
        pending.push(serde_json::to_value(&r)?);
    }
    ship(&mut pending, &mut shipped, &mut sent)?;
    progress.show(lines, sent, true);
    if progress.tty {
        eprintln!();
    }
    let seconds = progress.started.elapsed().as_secs_f64();
    println!("files={}", args.files.len());
    println!("lines={lines}");
    println!("unknown_lines={unknown}");
    println!("deliveries={deliveries}");
    println!("messages_finished={finished}");
    println!("records_sent={sent}");
    println!("accepted={}", shipped.accepted);
    println!("duplicate={}", shipped.duplicate);
    println!("rejected={}", shipped.rejected);
    println!("unrouted={}", shipped.unrouted);
    println!("seconds={seconds:.2}");
    Ok(())
}
