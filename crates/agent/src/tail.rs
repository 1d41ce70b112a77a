//! Following one log path through rotation, truncation and restarts.
//!
//! A file is known by its [`Fingerprint`] (device, inode and a hash of its first bytes), never by its path: after
//! `mv mail.log mail.log.1` the same file lives under another name, and after a rotation the path names another file.
//! The follower reads the file it has open to its end before it moves on to the file now at the path, so lines
//! written just before a rotation are not lost.
//!
//! Rules (each has a test in `tests/rotation.rs`):
//! - Rename + new file (logrotate `create`, `postfix logrotate`): the old file is read to its end; the follower moves
//!   to the new file once the new file has data (until then the writer may still be appending to the old one, as
//!   Postfix does until `postfix reload` or `postfix logrotate`).
//! - copytruncate: the open file shrinks below what was read. If a sibling holds a copy (same first bytes) with more
//!   data than was read, the rest is read from the copy; then the truncated file is read from its start.
//! - A file that disappears and reappears is a rotation whose new file came late.
//! - At the end of a file that is no longer the live one, the next file is the oldest rotated sibling written after
//!   it whose content was not read yet, else the live path. It is looked up by write time and first bytes each time,
//!   never remembered by name: an agent catching up after a restart sees more rotations shift the names under it.
//! - A line without its newline waits. A partial line at the end of a rotated file is joined with the start of its
//!   successor (copytruncate and writers that split a write at rotation leave the rest there).
//! - Lines longer than [`MAX_LINE_BYTES`] are cut at that length and the rest is skipped, so memory stays bounded.
//!
//! The follower reports what happens through [`TailEvents`]; the agent implements it with logs and metrics.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes at the start of a file that identify it together with its inode.
pub const HEAD_BYTES: usize = 256;
/// Longest line handed out; longer lines are cut (Postfix lines are a few hundred bytes; 64 KiB is generous).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// How many finished files' fingerprints a follower keeps to recognise their twins.
const FINISHED_REMEMBERED: usize = 32;

/// Where the follower goes at the end of a file that is no longer the live one.
enum Next {
    Rotated(PathBuf),
    Live,
}

/// Identity of a log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    /// How many first bytes `head_hash` covers (less than [`HEAD_BYTES`] for a file that was that short).
    pub head_len: u32,
    pub head_hash: u64,
}

/// Where a follower stands: the file and the offset just after the last whole line handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: Option<Fingerprint>,
    pub offset: u64,
}

/// What the follower tells the application. Every method has an empty default so tests implement only what they need.
pub trait TailEvents {
    /// The path now names another file; `from` was read to its end.
    fn rotated(&self, _path: &Path, _from: &Path) {}
    /// The open file became shorter than what was read (copytruncate, `: > file`).
    fn truncated(&self, _path: &Path, _read: u64, _size: u64, _copy: Option<&Path>) {}
    /// The path exists but cannot be opened (postlogd creates new logs as mode 0600 root).
    fn unreadable(&self, _path: &Path, _error: &io::Error) {}
    /// The path does not exist (yet).
    fn missing(&self, _path: &Path) {}
    /// Resumed from a checkpoint in `file` (the path itself or a rotated sibling).
    fn resumed(&self, _path: &Path, _file: &Path, _offset: u64) {}
    /// The checkpointed file is gone: lines between the checkpoint and its rotation cannot be read.
    fn checkpoint_file_lost(&self, _path: &Path, _position: &Position) {}
    /// A line longer than [`MAX_LINE_BYTES`] was cut.
    fn line_cut(&self, _path: &Path, _len: u64) {}
}

/// A no-op [`TailEvents`].
pub struct NoEvents;
impl TailEvents for NoEvents {}

/// One line handed out by [`Follower::poll`].
pub struct Line<'a> {
    /// The line without its newline.
    pub bytes: &'a [u8],
    /// The position just before this line, when it can be resumed from (not for a line that began in a previous
    /// file).
    pub before: Option<u64>,
    /// The offset just after this line's newline, in the current file.
    pub after: u64,
}

/// What the line handler wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop before this line (it is handed out again by the next poll). Only honoured when [`Line::before`] is
    /// `Some`; the caller then takes [`Follower::position`], which is exactly before the line.
    StopBefore,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    pub bytes: u64,
    pub lines: u64,
    /// Nothing more to read now.
    pub idle: bool,
    /// The handler asked to stop before a line.
    pub stopped: bool,
}

/// A rotated log that was compressed before it was read to its end (`postfix logrotate` gzips the old log): read
/// forward through the decompressor; a short window of recent bytes serves the small rewinds of [`Flow::StopBefore`].
struct GzSource {
    path: PathBuf,
    dec: flate2::read::MultiGzDecoder<io::BufReader<File>>,
    /// Decompressed bytes produced so far.
    at: u64,
    window: Vec<u8>,
    window_start: u64,
}

const GZ_WINDOW: usize = 4 * READ_CHUNK + MAX_LINE_BYTES;

impl GzSource {
    fn open(path: &Path) -> io::Result<GzSource> {
        let file = File::open(path)?;
        Ok(GzSource {
            path: path.to_path_buf(),
            dec: flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
            at: 0,
            window: Vec::new(),
            window_start: 0,
        })
    }

    fn read_at(&mut self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        use std::io::Read;
        if pos < self.window_start {
            *self = GzSource::open(&self.path)?;
        }
        if pos < self.at {
            let off = (pos - self.window_start) as usize;
            let n = buf.len().min(self.window.len() - off);
            buf[..n].copy_from_slice(&self.window[off..off + n]);
            return Ok(n);
        }
        let mut skip = vec![0u8; READ_CHUNK];
        while self.at < pos {
            let want = ((pos - self.at) as usize).min(skip.len());
            let n = self.dec.read(&mut skip[..want])?;
            if n == 0 {
                return Ok(0);
            }
            self.remember(&skip[..n]);
        }
        let n = self.dec.read(buf)?;
        self.remember(&buf[..n]);
        Ok(n)
    }

    fn remember(&mut self, bytes: &[u8]) {
        self.at += bytes.len() as u64;
        self.window.extend_from_slice(bytes);
        if self.window.len() > GZ_WINDOW {
            let drop = self.window.len() - GZ_WINDOW;
            self.window.drain(..drop);
            self.window_start += drop as u64;
        }
    }
}

enum Source {
    Plain(File),
    Gz(Box<GzSource>),
}

impl Source {
    fn read_at(&mut self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        match self {
            Source::Plain(f) => f.read_at(buf, pos),
            Source::Gz(g) => g.read_at(buf, pos),
        }
    }
}

struct Open {
    file: Source,
    /// Where this file was opened from (the live path or a rotated sibling).
    name: PathBuf,
    dev: u64,
    ino: u64,
    /// Next byte to read.
    pos: u64,
    /// Offset after the last whole line handed out.
    consumed: u64,
    head: Vec<u8>,
    /// The identity of the original file, for a compressed copy of it (checkpoints keep naming the original).
    fixed: Option<Fingerprint>,
}

impl Open {
    /// When the file was last written, in nanoseconds (for a compressed copy, the copy's time, which gzip keeps).
    fn modified(&self) -> Option<i128> {
        let meta = match &self.file {
            Source::Plain(f) => f.metadata().ok()?,
            Source::Gz(g) => std::fs::metadata(&g.path).ok()?,
        };
        Some(i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()))
    }

    fn fingerprint(&self) -> Fingerprint {
        if let Some(fp) = &self.fixed {
            return fp.clone();
        }
        Fingerprint {
            dev: self.dev,
            ino: self.ino,
            head_len: self.head.len() as u32,
            head_hash: hash(&self.head),
        }
    }

    /// Reads the first bytes again; they grow until [`HEAD_BYTES`] while the file is young.
    fn refresh_head(&mut self) -> io::Result<()> {
        let Source::Plain(file) = &self.file else {
            return Ok(());
        };
        if self.head.len() >= HEAD_BYTES {
            return Ok(());
        }
        let mut head = vec![0u8; HEAD_BYTES];
        let n = read_full_at(file, &mut head, 0)?;
        head.truncate(n);
        self.head = head;
        Ok(())
    }
}

/// Follows one configured path.
pub struct Follower {
    path: PathBuf,
    cur: Option<Open>,
    /// Files read to their end, so a compressed or copied twin of one is not read again.
    finished: VecDeque<Fingerprint>,
    carry: Vec<u8>,
    /// The carry began in a file other than the open one.
    carry_foreign: bool,
    /// Bytes of an over-long line still to skip up to its newline.
    skipping: bool,
    buf: Vec<u8>,
    /// The problem last reported for the path, so a poll loop does not repeat it every 250 ms.
    last_problem: Option<String>,
}

impl Follower {
    /// A follower that starts at the beginning of whatever file is at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Follower {
        Follower {
            path: path.into(),
            cur: None,
            finished: VecDeque::new(),
            carry: Vec::new(),
            carry_foreign: false,
            skipping: false,
            buf: Vec::new(),
            last_problem: None,
        }
    }

    /// A follower that resumes at `position`, looking for the checkpointed file under the path and its rotated
    /// siblings (`mail.log.1`, `mail.log-20261129`, ...).
    pub fn resume(
        path: impl Into<PathBuf>,
        position: &Position,
        events: &dyn TailEvents,
    ) -> Follower {
        let mut f = Follower::new(path);
        let Some(fp) = &position.file else {
            return f;
        };
        let mut candidates = vec![f.path.clone()];
        candidates.extend(siblings(&f.path));
        // Same inode and same first bytes: the file itself, wherever it was renamed to.
        let by_inode = candidates.iter().find(|c| matches_inode(c, fp));
        // Same first bytes under another inode, at least as long as what was read: a copytruncate copy.
        let by_content = || {
            candidates
                .iter()
                .find(|c| fp.head_len > 0 && matches_content(c, fp, position.offset))
        };
        let found = by_inode
            .filter(|c| file_len(c).is_some_and(|len| len >= position.offset))
            .or_else(by_content)
            .cloned();
        let Some(found) = found else {
            // Compressed after rotation (`postfix logrotate` gzips the old log): read the rest through gzip.
            if let Some(gz) = gz_siblings(&f.path).into_iter().find(|g| gz_matches(g, fp)) {
                match GzSource::open(&gz) {
                    Ok(src) => {
                        events.resumed(&f.path, &gz, position.offset);
                        f.cur = Some(Open {
                            file: Source::Gz(Box::new(src)),
                            name: gz.clone(),
                            dev: fp.dev,
                            ino: fp.ino,
                            pos: position.offset,
                            consumed: position.offset,
                            head: Vec::new(),
                            fixed: Some(fp.clone()),
                        });
                        return f;
                    }
                    Err(e) => events.unreadable(&gz, &e),
                }
            }
            events.checkpoint_file_lost(&f.path, position);
            return f;
        };
        match open_at(&found, position.offset) {
            Ok(open) => {
                events.resumed(&f.path, &found, position.offset);
                f.cur = Some(open);
            }
            Err(e) => events.unreadable(&found, &e),
        }
        f
    }

    /// A follower that starts at the current end of the file at `path` (a first start with `start_at = "end"`).
    pub fn at_end(path: impl Into<PathBuf>) -> Follower {
        let mut f = Follower::new(path);
        if let Some(len) = file_len(&f.path) {
            f.cur = open_at(&f.path, len).ok();
        }
        f
    }

    /// Opens the file at the path now rather than at the first poll, so a first start can checkpoint which file it
    /// began with (a rotation before the first acknowledged batch must not make it skip that file).
    pub fn open_now(&mut self, events: &dyn TailEvents) {
        if self.cur.is_none() {
            self.open_next(Next::Live, events);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position to checkpoint, or `None` while a line that began in the previous file is incomplete.
    pub fn position(&self) -> Option<Position> {
        if self.carry_foreign && !self.carry.is_empty() {
            return None;
        }
        Some(match &self.cur {
            Some(o) => Position {
                file: Some(o.fingerprint()),
                offset: o.consumed,
            },
            None => Position::default(),
        })
    }

    /// The name of the open file, if any.
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|o| o.name.as_path())
    }

    /// Reads what is there (up to about `budget` bytes) and hands out every whole line. Never blocks.
    pub fn poll(
        &mut self,
        budget: u64,
        events: &dyn TailEvents,
        on_line: &mut dyn FnMut(Line<'_>) -> Flow,
    ) -> Progress {
        let mut progress = Progress::default();
        if self.cur.is_none() && !self.open_next(Next::Live, events) {
            progress.idle = true;
            return progress;
        }
        // Truncated (and maybe rewritten past our offset) since the last poll: find out before reading on.
        self.check_truncation(events);
        loop {
            match self.read_some(events, on_line, &mut progress) {
                Ok(true) => {
                    if progress.stopped || progress.bytes >= budget {
                        return progress;
                    }
                }
                Ok(false) => {
                    // At the end of the open file: has it shrunk, or has the path moved on?
                    if self.check_truncation(events) {
                        continue;
                    }
                    if let Some(next) = self.next_file() {
                        let from = self
                            .cur
                            .as_ref()
                            .map(|o| o.name.clone())
                            .unwrap_or_default();
                        let had_carry = !self.carry.is_empty();
                        // The old file stays open until the next one opens: a new log we may not read (mode 0600)
                        // must not cost the old one.
                        if self.open_next(next, events) {
                            self.carry_foreign |= had_carry;
                            events.rotated(&self.path, &from);
                            continue;
                        }
                    }
                    progress.idle = true;
                    return progress;
                }
                Err(e) => {
                    self.report(events, &e);
                    progress.idle = true;
                    return progress;
                }
            }
        }
    }

    /// Reads one chunk; `Ok(false)` at the end of the file.
    fn read_some(
        &mut self,
        events: &dyn TailEvents,
        on_line: &mut dyn FnMut(Line<'_>) -> Flow,
        progress: &mut Progress,
    ) -> io::Result<bool> {
        let Some(open) = self.cur.as_mut() else {
            return Ok(false);
        };
        if self.buf.len() < READ_CHUNK {
            self.buf.resize(READ_CHUNK, 0);
        }
        let n = open.file.read_at(&mut self.buf, open.pos)?;
        if n == 0 {
            return Ok(false);
        }
        let chunk_start = open.pos;
        open.pos += n as u64;
        if open.head.len() < HEAD_BYTES {
            open.refresh_head()?;
        }
        progress.bytes += n as u64;
        let chunk = &self.buf[..n];
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let after = chunk_start + nl as u64 + 1;
            if self.skipping {
                self.skipping = false;
                open.consumed = after;
                start = nl + 1;
                continue;
            }
            let piece = &chunk[start..nl];
            let flow = if self.carry.is_empty() {
                on_line(Line {
                    bytes: piece,
                    before: Some(open.consumed),
                    after,
                })
            } else {
                let room = MAX_LINE_BYTES.saturating_sub(self.carry.len());
                self.carry
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                let before = (!self.carry_foreign).then_some(open.consumed);
                let flow = on_line(Line {
                    bytes: &self.carry,
                    before,
                    after,
                });
                if flow == Flow::StopBefore && before.is_some() {
                    // Drop the carry: it is read again from `consumed`.
                    self.carry.clear();
                } else {
                    self.carry.clear();
                    self.carry_foreign = false;
                }
                if before.is_none() {
                    Flow::Continue
                } else {
                    flow
                }
            };
            if flow == Flow::StopBefore {
                open.pos = open.consumed;
                progress.stopped = true;
                return Ok(true);
            }
            progress.lines += 1;
            open.consumed = after;
            start = nl + 1;
        }
        let rest = &chunk[start..];
        if !self.skipping && !rest.is_empty() {
            let room = MAX_LINE_BYTES.saturating_sub(self.carry.len());
            if rest.len() <= room {
                self.carry.extend_from_slice(rest);
            } else {
                // An over-long line: hand out its first MAX_LINE_BYTES now and skip the rest up to its newline. It
                // is no place to stop, so the handler's wish is ignored.
                self.carry.extend_from_slice(&rest[..room]);
                events.line_cut(&self.path, (self.carry.len() + rest.len() - room) as u64);
                on_line(Line {
                    bytes: &self.carry,
                    before: None,
                    after: open.pos,
                });
                progress.lines += 1;
                self.carry.clear();
                self.carry_foreign = false;
                self.skipping = true;
            }
        }
        Ok(true)
    }

    /// Handles a file that became shorter than what was read. Returns true when there is something to read again.
    fn check_truncation(&mut self, events: &dyn TailEvents) -> bool {
        let Some(open) = self.cur.as_mut() else {
            return false;
        };
        // A compressed rotated file does not change.
        let Source::Plain(file) = &open.file else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        let size = meta.len();
        // Same size or longer, but other first bytes: truncated and rewritten between two polls.
        let rewritten = size >= open.pos
            && !open.head.is_empty()
            && read_head(file, open.head.len()).is_ok_and(|h| h != open.head);
        if size >= open.pos && !rewritten {
            return false;
        }
        let read = open.consumed;
        let fp = open.fingerprint();
        // copytruncate: the lines between what was read and the copy are in the copy.
        let copy = siblings(&self.path).into_iter().find(|s| {
            !matches_inode(s, &fp) && matches_content(s, &fp, read) && file_len(s) > Some(read)
        });
        events.truncated(&self.path, read, size, copy.as_deref());
        // A partial line from before the truncation is re-read from the copy, or was cut off by it.
        if copy.is_some() {
            self.carry.clear();
        }
        self.skipping = false;
        match copy.map(|c| open_at(&c, read)) {
            Some(Ok(copy_open)) => {
                // The truncated file comes back through the path once the copy is read.
                self.cur = Some(copy_open);
            }
            _ => {
                open.pos = 0;
                open.consumed = 0;
                open.head.clear();
            }
        }
        true
    }

    /// At the end of the open file: is there a next file to move to? Rotated files written after the open one come
    /// first, oldest first, then the live path. They are looked up now rather than remembered: names shift with
    /// every rotation (`mail.log.1` becomes `mail.log.2`), and more rotations may happen while an older file is read
    /// (an agent catching up after a restart), so only the files' write times and contents say what is next.
    fn next_file(&self) -> Option<Next> {
        let Some(open) = &self.cur else {
            return Some(Next::Live);
        };
        let live = std::fs::metadata(&self.path);
        // A compressed rotated file is final; its original inode may already be reused by the new log.
        let compressed = matches!(open.file, Source::Gz(_));
        if !compressed
            && live
                .as_ref()
                .is_ok_and(|m| m.dev() == open.dev && m.ino() == open.ino)
        {
            return None;
        }
        if let Some(rotated) = self.later_rotated(open) {
            return Some(Next::Rotated(rotated));
        }
        // The path names another file; the writer has moved on once that file has data. An empty new file may not
        // be in use yet (Postfix keeps writing to a renamed log until it is told to reopen).
        match live {
            Ok(m) if m.len() > 0 => Some(Next::Live),
            _ => None,
        }
    }

    /// The oldest rotated sibling written after the open file whose content has not been read: the file the log
    /// went on in. A twin of a file read (its `.gz`, a copytruncate copy) has the same first bytes and is skipped.
    fn later_rotated(&self, open: &Open) -> Option<PathBuf> {
        let since = open.modified()?;
        let own = open.fingerprint();
        let compressed = matches!(open.file, Source::Gz(_));
        let mut later: Vec<(RotationOrder, PathBuf)> = siblings(&self.path)
            .into_iter()
            .chain(gz_siblings(&self.path))
            // The open file itself is left out by identity: its name at opening may now belong to the very file the
            // log went on in (`mail.log.1` renamed to `mail.log.2`, `mail.log` to `mail.log.1`). A compressed file's
            // inode means nothing (it may be reused by the new log), so that one is left out by name.
            .filter(|s| {
                if compressed {
                    *s != open.name
                } else {
                    !std::fs::metadata(s).is_ok_and(|m| m.dev() == open.dev && m.ino() == open.ino)
                }
            })
            .filter_map(|s| Some((rotation_order(&s)?, s)))
            // Ties count as later: two writes within one clock tick have equal times.
            .filter(|(order, _)| order.0 >= since)
            .collect();
        later.sort();
        later.into_iter().map(|(_, s)| s).find(|s| {
            content_head(s).is_some_and(|head| {
                !head.is_empty()
                    && !same_start(&head, &own)
                    && !self.finished.iter().any(|f| same_start(&head, f))
            })
        })
    }

    /// Opens the next file at its start. False when it cannot be opened (reported; the next poll looks again).
    fn open_next(&mut self, next: Next, events: &dyn TailEvents) -> bool {
        let opened = match &next {
            Next::Rotated(path) => open_any(path),
            Next::Live => open_at(&self.path, 0),
        };
        match opened {
            Ok(o) => {
                if matches!(next, Next::Live) {
                    self.last_problem = None;
                }
                if let Some(done) = self.cur.replace(o) {
                    if self.finished.len() == FINISHED_REMEMBERED {
                        self.finished.pop_front();
                    }
                    self.finished.push_back(done.fingerprint());
                }
                true
            }
            Err(e) => {
                match next {
                    // Deleted in the meantime (nothing to read there), or not readable: said, then skipped.
                    Next::Rotated(path) => events.unreadable(&path, &e),
                    Next::Live => self.report(events, &e),
                }
                false
            }
        }
    }

    fn report(&mut self, events: &dyn TailEvents, e: &io::Error) {
        let key = format!("{:?}", e.kind());
        if self.last_problem.as_deref() == Some(key.as_str()) {
            return;
        }
        if e.kind() == io::ErrorKind::NotFound {
            events.missing(&self.path);
        } else {
            events.unreadable(&self.path, e);
        }
        self.last_problem = Some(key);
    }
}

fn open_at(path: &Path, offset: u64) -> io::Result<Open> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let mut open = Open {
        file: Source::Plain(file),
        name: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        pos: offset,
        consumed: offset,
        head: Vec::new(),
        fixed: None,
    };
    open.refresh_head()?;
    Ok(open)
}

fn read_full_at(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], offset)?;
        if n == 0 {
            break;
        }
        filled += n;
        offset += n as u64;
    }
    Ok(filled)
}

fn read_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; len];
    let n = read_full_at(file, &mut head, 0)?;
    head.truncate(n);
    Ok(head)
}

/// FNV-1a: a fingerprint of a few hundred bytes needs no more.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn head_matches(path: &Path, fp: &Fingerprint) -> Option<File> {
    let file = File::open(path).ok()?;
    let head = read_head(&file, fp.head_len as usize).ok()?;
    (head.len() == fp.head_len as usize && hash(&head) == fp.head_hash).then_some(file)
}

fn matches_inode(path: &Path, fp: &Fingerprint) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.dev() == fp.dev && m.ino() == fp.ino)
        && head_matches(path, fp).is_some()
}

fn matches_content(path: &Path, fp: &Fingerprint, min_len: u64) -> bool {
    fp.head_len > 0
        && file_len(path).is_some_and(|l| l >= min_len)
        && head_matches(path, fp).is_some()
}

fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Whether `head` (the first bytes of a file) starts with the bytes `fp` identifies.
fn same_start(head: &[u8], fp: &Fingerprint) -> bool {
    let len = fp.head_len as usize;
    len > 0 && head.len() >= len && hash(&head[..len]) == fp.head_hash
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The first [`HEAD_BYTES`] of a file's content (decompressed for .gz).
fn content_head(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = File::open(path).ok()?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    if is_gz(path) {
        flate2::read::MultiGzDecoder::new(io::BufReader::new(file))
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .ok()?;
    } else {
        file.take(HEAD_BYTES as u64).read_to_end(&mut head).ok()?;
    }
    Some(head)
}

/// Opens a backlog file: plain, or a compressed rotated log read through gzip.
fn open_any(path: &Path) -> io::Result<Open> {
    if !is_gz(path) {
        return open_at(path, 0);
    }
    let meta = std::fs::metadata(path)?;
    let head = content_head(path).unwrap_or_default();
    let fp = Fingerprint {
        dev: meta.dev(),
        ino: meta.ino(),
        head_len: head.len() as u32,
        head_hash: hash(&head),
    };
    Ok(Open {
        file: Source::Gz(Box::new(GzSource::open(path)?)),
        name: path.to_path_buf(),
        dev: fp.dev,
        ino: fp.ino,
        pos: 0,
        consumed: 0,
        head,
        fixed: Some(fp),
    })
}

fn gz_siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(name.as_ref()) && n.ends_with(".gz"))
        })
        .collect()
}

/// Whether a .gz file decompresses to the fingerprinted first bytes.
fn gz_matches(path: &Path, fp: &Fingerprint) -> bool {
    use std::io::Read;
    if fp.head_len == 0 {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(fp.head_len as usize);
    let ok = flate2::read::MultiGzDecoder::new(io::BufReader::new(file))
        .take(u64::from(fp.head_len))
        .read_to_end(&mut head)
        .is_ok();
    ok && head.len() == fp.head_len as usize && hash(&head) == fp.head_hash
}

/// Write order of rotated files: modification time first; files written within one clock tick are ordered by
/// their names (`mail.log.2` before `mail.log.1`; date suffixes in their own order).
type RotationOrder = (i128, i64, String);

fn rotation_order(path: &Path) -> Option<RotationOrder> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    let name = path.file_name()?.to_string_lossy().into_owned();
    let numbered = name
        .trim_end_matches(".gz")
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse::<i64>().ok());
    Some(match numbered {
        Some(n) => (mtime, -n, String::new()),
        None => (mtime, 0, name),
    })
}

/// Rotated siblings of a log: files in its directory whose names start with its name (`mail.log.1`,
/// `mail.log-20261129`), compressed ones excluded (the tailer reads plain files; `backfill` reads `.gz`).
pub fn siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let compressed = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".tmp"]
                .iter()
                .any(|s| n.ends_with(s));
            (n.len() > name.len() && n.starts_with(name.as_ref()) && !compressed)
                .then(|| dir.join(n))
        })
        .collect();
    out.sort();
    out
}
