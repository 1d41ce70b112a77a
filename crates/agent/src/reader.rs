//! The reading side of `run`: follow every log, parse and correlate each line, cut batches at points the checkpoint
//! can describe exactly, and write them to the spool. It runs on its own thread and never touches the network.
//!
//! A batch is cut only where resuming reproduces exactly what an uninterrupted run would emit:
//! - before a line whose log second is later than every line before it (the correlator flushes its held-back records
//!   there anyway, so flushing them at the cut changes nothing), or
//! - when the log has been idle for `idle_flush` (the correlator is flushed then in any case).
//!
//! Each spool batch carries the reader state after it (file fingerprint, offset, correlator state). The shipper
//! makes that state the checkpoint once the API has acknowledged the batch.
//!
//! The journald stream follows the same rules with journal entries for lines: its position is the cursor of the last
//! entry taken, and an entry before which a batch is cut is kept and taken first afterwards.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use flate2::Compression;
use flate2::write::GzEncoder;
use relaywatch_postfix::event::{Header, Program};
use relaywatch_postfix::{
    Correlator, CorrelatorConfig, EventKind, Parser, ParserConfig, Record, Text, Timestamp,
};

use crate::config::{Config, StartAt, expand_logs, is_glob};
use crate::journal::{Item, JournalSource, STREAM_KEY};
use crate::metrics::{AgentEvents, Metrics};
use crate::spool::{Spool, SpoolMeta};
use crate::state::{Checkpoint, StreamState};
use crate::tail::{Flow, Follower, Line, Position};

/// Bytes read from one log before the others get a turn and the timers are checked.
const POLL_BUDGET: u64 = 1 << 20;
/// Journal entries taken in one poll before the logs get a turn and the timers are checked.
const JOURNAL_POLL_ENTRIES: u64 = 4096;

/// A batch being built: the gzip-compressed body of an `IngestBatch`, written as records come.
struct Segment {
    body: Option<GzEncoder<Vec<u8>>>,
    /// JSON not yet handed to the compressor.
    json: Vec<u8>,
    records: u64,
    lines: u64,
    started: Option<Instant>,
}

impl Segment {
    fn new() -> Segment {
        Segment {
            body: None,
            json: Vec::new(),
            records: 0,
            lines: 0,
            started: None,
        }
    }

    fn add(&mut self, prefix: &[u8], record: &Record) -> Result<()> {
        // serde_json writes a record in dozens of tiny pieces; each would be a call into the compressor, so records
        // are gathered in `json` and compressed in 64 KiB steps.
        if self.records > 0 {
            self.json.push(b',');
        } else {
            self.json.extend_from_slice(prefix);
        }
        serde_json::to_writer(&mut self.json, record)?;
        self.records += 1;
        if self.json.len() >= 64 * 1024 {
            self.compress()?;
        }
        Ok(())
    }

    fn compress(&mut self) -> Result<()> {
        let body = self.body.get_or_insert_with(|| {
            GzEncoder::new(Vec::with_capacity(64 * 1024), Compression::fast())
        });
        body.write_all(&self.json)?;
        self.json.clear();
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        self.started = None;
        self.lines = 0;
        if self.records > 0 {
            self.json.extend_from_slice(b"]}");
            self.compress()?;
        }
        self.records = 0;
        match self.body.take() {
            Some(enc) => Ok(enc.finish()?),
            None => Ok(Vec::new()),
        }
    }
}

struct Stream {
    /// No checkpoint or spooled batch knew this log when the agent started.
    fresh: bool,
    /// Fresh, and its file did not exist at start: no position has been saved for it yet.
    unanchored: bool,
    key: String,
    follower: Follower,
    parser: Parser,
    correlator: Correlator,
    /// The latest log second seen; a line beyond it is a clean place to cut.
    last_second: i64,
    segment: Segment,
    last_data: Instant,
    idle_flushed: bool,
    records: Vec<Record>,
}

impl Stream {
    fn new(
        key: String,
        follower: Follower,
        parser: Parser,
        correlator: Correlator,
        fresh: bool,
        unanchored: bool,
    ) -> Stream {
        Stream {
            fresh,
            unanchored,
            key,
            follower,
            parser,
            correlator,
            last_second: i64::MIN,
            segment: Segment::new(),
            last_data: Instant::now(),
            idle_flushed: true,
            records: Vec::with_capacity(64),
        }
    }
}

/// The journald stream: entries from journalctl instead of lines from a file.
struct JournalStream {
    /// Neither the checkpoint nor the spool knew the journal when the agent started.
    fresh: bool,
    source: JournalSource,
    /// The cursor of the last entry taken (where a batch cut now resumes).
    cursor: Option<String>,
    /// Taken from journalctl but not yet consumed: a batch was cut before it.
    held: Option<Item>,
    parser: Parser,
    correlator: Correlator,
    last_second: i64,
    segment: Segment,
    last_data: Instant,
    idle_flushed: bool,
    records: Vec<Record>,
}

/// Where batches go: the spool, and the shipper told about them.
struct Output {
    spool: Arc<Spool>,
    metrics: Arc<Metrics>,
    next_seq: u64,
    /// `{"agent":{...},"records":[`
    prefix: Vec<u8>,
    wake_shipper: Box<dyn Fn() + Send>,
}

pub struct Reader {
    streams: Vec<Stream>,
    /// The configured log patterns, expanded again every `glob_rescan` when some are globs.
    patterns: Vec<String>,
    glob_rescan: Option<Duration>,
    last_rescan: Instant,
    parser_config: ParserConfig,
    journal: Option<JournalStream>,
    out: Output,
    batch_max_records: u64,
    batch_linger: Duration,
    idle_flush: Duration,
    poll_interval: Duration,
    last_reference: Instant,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Reader {
    /// Builds the reader from the checkpoint and the spool: a log whose latest batch is still in the spool resumes
    /// after that batch, otherwise after the acknowledged checkpoint. With journald configured it starts journalctl
    /// (a journalctl that cannot be started is a configuration error).
    pub fn new(
        config: &Config,
        paths: &[PathBuf],
        checkpoint: &Checkpoint,
        spool: Arc<Spool>,
        metrics: Arc<Metrics>,
        wake_shipper: Box<dyn Fn() + Send>,
    ) -> Result<Reader> {
        let mut resume = checkpoint.streams.clone();
        let mut next_seq = checkpoint.acked_seq + 1;
        for (seq, _) in spool.list()? {
            let meta = spool.read_meta(seq)?;
            next_seq = next_seq.max(seq + 1);
            resume.insert(meta.stream.clone(), meta.state);
        }
        let prefix = {
            let agent = relaywatch_domain::wire::AgentInfo {
                host_name: config.host_name.clone(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            };
            let mut p = b"{\"agent\":".to_vec();
            serde_json::to_writer(&mut p, &agent)?;
            p.extend_from_slice(b",\"records\":[");
            p
        };
        let events = AgentEvents { metrics: &metrics };
        let parser_config = {
            let mut c = ParserConfig {
                tag_headers: config.tag_headers.clone(),
                reference_unix: now_unix(),
                rfc3164_offset_minutes: config.utc_offset_minutes,
                ..Default::default()
            };
            c.syslog_names.clone_from(&config.syslog_names);
            c
        };
        let restore = |key: &str, state: &StreamState| match &state.correlator {
            Some(c) => Correlator::restore(CorrelatorConfig::default(), c.clone())
                .map_err(|e| anyhow::anyhow!("checkpoint of {key}: {e}")),
            None => Ok(Correlator::new(CorrelatorConfig::default())),
        };
        let mut streams = Vec::new();
        for path in paths {
            let key = path.to_string_lossy().into_owned();
            let fresh = !resume.contains_key(&key);
            // A glob match the checkpoint does not know, under a glob expanded before, was created since.
            let created_since = config.logs.iter().any(|p| {
                is_glob(p)
                    && checkpoint.globs_seen.contains(p)
                    && glob::Pattern::new(p).is_ok_and(|g| g.matches_path(path))
            });
            let (mut follower, correlator) = match resume.get(&key) {
                Some(state) => (
                    Follower::resume(path, &state.position, &events),
                    restore(&key, state)?,
                ),
                None => (
                    match config.start_at {
                        StartAt::End if !created_since => Follower::at_end(path),
                        _ => Follower::new(path),
                    },
                    Correlator::new(CorrelatorConfig::default()),
                ),
            };
            if fresh {
                follower.open_now(&events);
            }
            let unanchored = fresh && follower.current_file().is_none();
            streams.push(Stream::new(
                key,
                follower,
                Parser::new(parser_config.clone()),
                correlator,
                fresh,
                unanchored,
            ));
        }
        let journal = if config.journald.enabled {
            let (fresh, cursor, correlator) = match resume.get(STREAM_KEY) {
                Some(state) => {
                    tracing::info!(
                        cursor = state
                            .cursor
                            .as_deref()
                            .unwrap_or("(none: the journal's start)"),
                        "resuming the journal from checkpoint"
                    );
                    (false, state.cursor.clone(), restore(STREAM_KEY, state)?)
                }
                None => {
                    let cursor = match config.start_at {
                        StartAt::Beginning => None,
                        // The newest entry now: saved before reading (see `initial_states`), so a restart before the
                        // first batch begins here too, not at a later end.
                        StartAt::End => {
                            crate::journal::newest_cursor(&config.journald, &config.syslog_names)?
                        }
                    };
                    (true, cursor, Correlator::new(CorrelatorConfig::default()))
                }
            };
            let source = JournalSource::start(
                &config.journald,
                config.syslog_names.clone(),
                cursor.clone(),
                Arc::clone(&metrics),
            )?;
            Some(JournalStream {
                fresh,
                source,
                cursor,
                held: None,
                parser: Parser::new(parser_config.clone()),
                correlator,
                last_second: i64::MIN,
                segment: Segment::new(),
                last_data: Instant::now(),
                idle_flushed: true,
                records: Vec::with_capacity(64),
            })
        } else {
            None
        };
        Ok(Reader {
            streams,
            patterns: config.logs.clone(),
            glob_rescan: config.has_globs().then_some(config.glob_rescan),
            last_rescan: Instant::now(),
            parser_config,
            journal,
            out: Output {
                spool,
                metrics,
                next_seq,
                prefix,
                wake_shipper,
            },
            batch_max_records: config.batch_max_records as u64,
            batch_linger: config.batch_linger,
            idle_flush: config.idle_flush,
            poll_interval: config.poll_interval,
            last_reference: Instant::now(),
        })
    }

    /// Where logs that no checkpoint knew begin: saved before reading, so that when the agent dies before its first
    /// acknowledged batch and the log rotates meanwhile, the next start still begins in the right file.
    pub fn initial_states(&self) -> Vec<(String, StreamState)> {
        let journal = self.journal.iter().filter(|j| j.fresh).filter_map(|j| {
            Some((
                STREAM_KEY.to_string(),
                StreamState {
                    position: Position::default(),
                    correlator: None,
                    cursor: Some(j.cursor.clone()?),
                },
            ))
        });
        self.streams
            .iter()
            .filter(|s| s.fresh)
            .filter_map(|s| {
                Some((
                    s.key.clone(),
                    StreamState {
                        position: s.follower.position()?,
                        correlator: None,
                        cursor: None,
                    },
                ))
            })
            .chain(journal)
            .collect()
    }

    /// Reads until `stop` is set. Returns only on stop or on an error writing the spool that persists.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        let mut spool_full_reported = false;
        while !stop.load(Ordering::Relaxed) {
            if self.out.spool.is_full() {
                if !spool_full_reported {
                    Metrics::add(&self.out.metrics.spool_full_pauses, 1);
                    tracing::warn!(
                        spool_bytes = self.out.spool.bytes(),
                        spool_max_bytes = self.out.spool.max_bytes(),
                        "spool full: reading of logs paused until the API takes batches again; \
                         the log files are the buffer now, nothing is dropped"
                    );
                    spool_full_reported = true;
                }
                std::thread::sleep(self.poll_interval);
                continue;
            }
            if spool_full_reported {
                tracing::info!("spool has room again: reading resumes");
                spool_full_reported = false;
            }
            if self.last_reference.elapsed() > Duration::from_secs(60) {
                // Year inference for year-less stamps follows the wall clock.
                let now = now_unix();
                for s in &mut self.streams {
                    s.parser.set_reference_unix(now);
                }
                if let Some(j) = &mut self.journal {
                    j.parser.set_reference_unix(now);
                }
                self.last_reference = Instant::now();
            }
            if self
                .glob_rescan
                .is_some_and(|every| self.last_rescan.elapsed() >= every)
            {
                self.rescan();
                self.last_rescan = Instant::now();
            }
            let mut busy = false;
            for i in 0..self.streams.len() {
                busy |= self.poll_stream(i)?;
            }
            busy |= self.poll_journal()?;
            if !busy {
                std::thread::sleep(self.poll_interval);
            }
        }
        Ok(())
    }

    /// Expands the log globs again and follows logs created since, from their beginning. Rotated generations of
    /// followed logs are not new logs (their follower reads them at rotation).
    fn rescan(&mut self) {
        let followed: Vec<PathBuf> = self.streams.iter().map(|s| PathBuf::from(&s.key)).collect();
        for path in expand_logs(&self.patterns, &followed) {
            let key = path.to_string_lossy().into_owned();
            if self.streams.iter().any(|s| s.key == key) {
                continue;
            }
            tracing::info!(log = %path.display(), "a new log matches a configured glob: following it from its beginning");
            let metrics = Arc::clone(&self.out.metrics);
            let mut follower = Follower::new(&path);
            follower.open_now(&AgentEvents { metrics: &metrics });
            // Unanchored: its first poll cuts a batch that records which file it is (see `poll_stream`).
            self.streams.push(Stream::new(
                key,
                follower,
                Parser::new(self.parser_config.clone()),
                Correlator::new(CorrelatorConfig::default()),
                true,
                true,
            ));
        }
    }

    /// One poll of one log. True when it read something.
    fn poll_stream(&mut self, i: usize) -> Result<bool> {
        let metrics = Arc::clone(&self.out.metrics);
        let events = AgentEvents { metrics: &metrics };
        let max = self.batch_max_records;
        let linger = self.batch_linger;
        let prefix = &self.out.prefix;
        let stream = &mut self.streams[i];
        let Stream {
            follower,
            parser,
            correlator,
            last_second,
            segment,
            records,
            ..
        } = stream;
        let mut error = None;
        let mut unknown = 0u64;
        let mut not_postfix = 0u64;
        let mut newest = 0i64;
        let mut on_line = |line: Line<'_>| -> Flow {
            let event = parser.parse_line(line.bytes);
            if let Some(h) = &event.header {
                let second = h.time.unix_seconds();
                if second > *last_second {
                    let full = segment.records >= max;
                    let lingered = segment.started.is_some_and(|t| t.elapsed() >= linger);
                    if (full || lingered) && segment.lines > 0 && line.before.is_some() {
                        return Flow::StopBefore;
                    }
                    *last_second = second;
                    newest = second;
                }
            }
            match event.kind {
                EventKind::Unknown { .. } => unknown += 1,
                EventKind::NotPostfix { .. } => not_postfix += 1,
                _ => {}
            }
            correlator.push(&event, records);
            segment.lines += 1;
            if segment.started.is_none() {
                segment.started = Some(Instant::now());
            }
            for r in records.drain(..) {
                if let Err(e) = segment.add(prefix, &r) {
                    error = Some(e);
                }
            }
            Flow::Continue
        };
        let progress = follower.poll(POLL_BUDGET, &events, &mut on_line);
        if let Some(e) = error {
            return Err(e);
        }
        Metrics::add(&metrics.lines_read, progress.lines);
        Metrics::add(&metrics.bytes_read, progress.bytes);
        Metrics::add(&metrics.unknown_lines, unknown);
        Metrics::add(&metrics.not_postfix_lines, not_postfix);
        if newest > 0 {
            metrics
                .newest_line_unix
                .fetch_max(newest, Ordering::Relaxed);
        }
        if progress.lines > 0 || progress.stopped {
            stream.last_data = Instant::now();
            stream.idle_flushed = false;
        }
        if progress.stopped {
            self.cut(i)?;
            return Ok(true);
        }
        if self.streams[i].unanchored && self.streams[i].follower.current_file().is_some() {
            // The log appeared after a first start: a batch (perhaps without records) records which file it is, so
            // a rotation before the next batch cannot make a restart begin in a later file.
            self.streams[i].unanchored = false;
            self.cut(i)?;
            return Ok(progress.bytes > 0);
        }
        let stream = &mut self.streams[i];
        if progress.idle
            && !stream.idle_flushed
            && stream.last_data.elapsed() >= self.idle_flush
            && stream.follower.position().is_some()
        {
            // The log went quiet: what the correlator holds back will not meet more context soon.
            stream.idle_flushed = true;
            if stream.segment.lines > 0 {
                self.cut(i)?;
            } else {
                let mut out = Vec::new();
                stream.correlator.flush(&mut out);
                if !out.is_empty() {
                    for r in &out {
                        stream.segment.add(&self.out.prefix, r)?;
                    }
                    self.cut(i)?;
                }
            }
        }
        Ok(progress.bytes > 0)
    }

    /// One poll of the journal: up to [`JOURNAL_POLL_ENTRIES`] entries. True when it took something.
    fn poll_journal(&mut self) -> Result<bool> {
        let Some(j) = &mut self.journal else {
            return Ok(false);
        };
        let metrics = &self.out.metrics;
        let (mut entries, mut bytes, mut unknown, mut not_postfix, mut malformed, mut cut) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut newest = 0i64;
        let mut stopped = false;
        let mut idle = false;
        while entries < JOURNAL_POLL_ENTRIES {
            let item = match j.held.take() {
                Some(item) => item,
                None => match j.source.try_next()? {
                    Some(item) => item,
                    None => {
                        idle = true;
                        break;
                    }
                },
            };
            if let Item::Entry { entry, .. } = &item {
                let second = entry.realtime_micros.div_euclid(1_000_000);
                if second > j.last_second {
                    // The same clean cut as before a log line of a later second.
                    let full = j.segment.records >= self.batch_max_records;
                    let lingered = j
                        .segment
                        .started
                        .is_some_and(|t| t.elapsed() >= self.batch_linger);
                    if (full || lingered) && j.segment.lines > 0 && j.cursor.is_some() {
                        j.held = Some(item);
                        stopped = true;
                        break;
                    }
                    j.last_second = second;
                    newest = second;
                }
            }
            entries += 1;
            bytes += item.bytes();
            match &item {
                Item::Entry { entry, .. } => {
                    let header = Header {
                        time: Timestamp {
                            unix_micros: entry.realtime_micros,
                            offset_minutes: 0,
                        },
                        host: Text(entry.host.as_deref().unwrap_or(b"")),
                        program: Program::from_name(&entry.identifier),
                        pid: entry.pid,
                    };
                    let event = j.parser.parse_message(header, &entry.message);
                    match event.kind {
                        EventKind::Unknown { .. } => unknown += 1,
                        EventKind::NotPostfix { .. } => not_postfix += 1,
                        _ => {}
                    }
                    if entry.message_cut {
                        cut += 1;
                    }
                    j.correlator.push(&event, &mut j.records);
                    for r in j.records.drain(..) {
                        j.segment.add(&self.out.prefix, &r)?;
                    }
                }
                Item::Malformed { .. } => malformed += 1,
                Item::TooLong { .. } => cut += 1,
            }
            if let Some(c) = item.cursor() {
                j.cursor = Some(c.to_string());
            }
            j.segment.lines += 1;
            if j.segment.started.is_none() {
                j.segment.started = Some(Instant::now());
            }
        }
        Metrics::add(&metrics.lines_read, entries);
        Metrics::add(&metrics.bytes_read, bytes);
        Metrics::add(&metrics.unknown_lines, unknown);
        Metrics::add(&metrics.not_postfix_lines, not_postfix);
        Metrics::add(&metrics.journal_malformed, malformed);
        Metrics::add(&metrics.lines_cut, cut);
        if newest > 0 {
            metrics
                .newest_line_unix
                .fetch_max(newest, Ordering::Relaxed);
        }
        if entries > 0 || stopped {
            j.last_data = Instant::now();
            j.idle_flushed = false;
        }
        if stopped {
            self.cut_journal()?;
            return Ok(true);
        }
        if idle && !j.idle_flushed && j.last_data.elapsed() >= self.idle_flush && j.cursor.is_some()
        {
            // The journal went quiet: what the correlator holds back will not meet more context soon.
            j.idle_flushed = true;
            if j.segment.lines > 0 {
                self.cut_journal()?;
            } else {
                let mut out = Vec::new();
                j.correlator.flush(&mut out);
                if !out.is_empty() {
                    for r in &out {
                        j.segment.add(&self.out.prefix, r)?;
                    }
                    self.cut_journal()?;
                }
            }
        }
        Ok(entries > 0)
    }

    /// Closes the journal's current batch after the last entry taken and writes it to the spool.
    fn cut_journal(&mut self) -> Result<()> {
        let Some(j) = &mut self.journal else {
            return Ok(());
        };
        let Some(cursor) = j.cursor.clone() else {
            return Ok(());
        };
        self.out.write_batch(
            STREAM_KEY,
            Position::default(),
            Some(cursor),
            &mut j.correlator,
            &mut j.segment,
        )
    }

    /// Closes the current batch of stream `i` at the follower's position and writes it to the spool.
    fn cut(&mut self, i: usize) -> Result<()> {
        let stream = &mut self.streams[i];
        let Some(position) = stream.follower.position() else {
            return Ok(());
        };
        self.out.write_batch(
            &stream.key,
            position,
            None,
            &mut stream.correlator,
            &mut stream.segment,
        )
    }
}

impl Output {
    /// Ends `segment` with what the correlator holds back and spools it with the state to resume from after it.
    fn write_batch(
        &mut self,
        key: &str,
        position: Position,
        cursor: Option<String>,
        correlator: &mut Correlator,
        segment: &mut Segment,
    ) -> Result<()> {
        let mut out = Vec::new();
        let state = correlator.checkpoint(&mut out);
        for r in &out {
            segment.add(&self.prefix, r)?;
        }
        let records = segment.records;
        let lines = segment.lines;
        let body = segment.finish()?;
        let offset = position.offset;
        let meta = SpoolMeta {
            seq: self.next_seq,
            stream: key.to_string(),
            records,
            lines,
            state: StreamState {
                position,
                correlator: Some(state),
                cursor,
            },
        };
        Metrics::add(&self.metrics.records_emitted, records);
        self.metrics
            .in_flight
            .store(correlator.in_flight() as u64, Ordering::Relaxed);
        self.metrics
            .evicted
            .store(correlator.evicted(), Ordering::Relaxed);
        // A full or failing disk is waited out: the batch stays in memory and the log is not read further.
        let mut delay = Duration::from_millis(500);
        loop {
            match self.spool.write(&meta, &body) {
                Ok(()) => break,
                Err(e) => {
                    let msg = format!("cannot write the spool: {e:#}");
                    tracing::error!("{msg}; retrying in {delay:?}");
                    self.metrics.set_error(msg);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.next_seq += 1;
        Metrics::add(&self.metrics.batches_spooled, 1);
        self.metrics
            .spool_bytes
            .store(self.spool.bytes(), Ordering::Relaxed);
        self.metrics
            .spool_batches
            .store(self.spool.files(), Ordering::Relaxed);
        tracing::debug!(seq = meta.seq, records, lines, offset, cursor = meta.state.cursor.as_deref().unwrap_or("-"),
            stream = %meta.stream, "batch spooled");
        (self.wake_shipper)();
        Ok(())
    }
}

/// The position a stream would resume from, for tests and `check`.
pub fn describe(position: &Position) -> String {
    match &position.file {
        Some(f) => format!("inode {} offset {}", f.ino, position.offset),
        None => "start".to_string(),
    }
}
