//! The on-disk spool: every cut batch is written here before it is shipped, so neither an API outage nor a crash
//! loses it; it is deleted once the API has acknowledged it and the checkpoint says so.
//!
//! One file per batch, named by a sequence number (`00000000000000000042.batch`) so the shipper drains in log order.
//! A file is written to a temporary name, synced and renamed: a batch file is either whole or absent. Layout:
//! `RWSPOOL1\n`, one line of JSON metadata (the stream, record count and the reader state after the batch), then
//! the gzip-compressed `IngestBatch` body exactly as it goes on the wire.
//!
//! The spool is bounded: when it holds `max_bytes` or more the reader stops reading logs (the log itself is then the
//! buffer) until the shipper has drained some. The cap can be passed by at most one batch.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::state::StreamState;

const MAGIC: &[u8] = b"RWSPOOL1\n";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolMeta {
    pub seq: u64,
    /// The configured log path the batch comes from.
    pub stream: String,
    pub records: u64,
    pub lines: u64,
    /// The reader state just after the batch: where to resume once the batch is acknowledged.
    pub state: StreamState,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: AtomicU64,
    files: AtomicU64,
}

impl Spool {
    /// Opens the spool, deleting batches the checkpoint already covers (a crash between the checkpoint's rename
    /// and the batch's deletion leaves them) and temporary files of interrupted writes.
    pub fn open(dir: &Path, max_bytes: u64, acked_seq: u64) -> Result<Spool> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
        };
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                fs::remove_file(entry.path()).ok();
            }
        }
        let mut bytes = 0;
        let mut files = 0;
        for (seq, path) in spool.list()? {
            if seq <= acked_seq {
                fs::remove_file(&path).ok();
            } else {
                bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                files += 1;
            }
        }
        spool.bytes.store(bytes, Ordering::Relaxed);
        spool.files.store(files, Ordering::Relaxed);
        Ok(spool)
    }

    fn file(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.batch"))
    }

    /// Batches in the spool, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name
                .strip_suffix(".batch")
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((seq, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn oldest(&self) -> Result<Option<u64>> {
        Ok(self.list()?.first().map(|(s, _)| *s))
    }

    pub fn write(&self, meta: &SpoolMeta, body: &[u8]) -> Result<()> {
        let path = self.file(meta.seq);
        let tmp = self.dir.join(format!("{:020}.batch.tmp", meta.seq));
        let mut data = Vec::with_capacity(body.len() + 512);
        data.extend_from_slice(MAGIC);
        serde_json::to_writer(&mut data, meta)?;
        data.push(b'\n');
        data.extend_from_slice(body);
        {
            let mut f =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&data)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.sync_data()
                .with_context(|| format!("syncing {}", tmp.display()))?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).ok();
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn read(&self, seq: u64) -> Result<(SpoolMeta, Vec<u8>)> {
        let path = self.file(seq);
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .with_context(|| format!("reading {}", path.display()))?;
        let Some(rest) = data.strip_prefix(MAGIC) else {
            bail!("{} is not a spool batch", path.display());
        };
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            bail!("{} has no metadata line", path.display());
        };
        let meta: SpoolMeta = serde_json::from_slice(&rest[..nl])
            .with_context(|| format!("metadata of {}", path.display()))?;
        Ok((meta, rest[nl + 1..].to_vec()))
    }

    /// Reads only the metadata (the reader's resume state at startup).
    pub fn read_meta(&self, seq: u64) -> Result<SpoolMeta> {
        Ok(self.read(seq)?.0)
    }

    pub fn remove(&self, seq: u64) -> Result<()> {
        let path = self.file(seq);
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        self.bytes
            .fetch_sub(len.min(self.bytes()), Ordering::Relaxed);
        self.files.fetch_sub(1.min(self.files()), Ordering::Relaxed);
        Ok(())
    }

    /// Moves a batch the API refused as malformed aside, so it can be inspected (and shipping goes on).
    pub fn quarantine(&self, seq: u64) -> Result<PathBuf> {
        let dir = self.dir.join("rejected");
        fs::create_dir_all(&dir)?;
        let path = self.file(seq);
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let to = dir.join(format!("{seq:020}.batch"));
        fs::rename(&path, &to)?;
        self.bytes
            .fetch_sub(len.min(self.bytes()), Ordering::Relaxed);
        self.files.fetch_sub(1.min(self.files()), Ordering::Relaxed);
        Ok(to)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn is_full(&self) -> bool {
        self.bytes() >= self.max_bytes
    }
}
