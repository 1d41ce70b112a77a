//! The checkpoint: per log path, the file position and the correlator's in-flight state, plus the sequence number of
//! the last spooled batch the API acknowledged. The journald stream (key [`crate::journal::STREAM_KEY`]) has the
//! journal cursor of its last entry instead of a file position.
//!
//! It is written only after an acknowledgement, atomically (temporary file, fsync, rename, fsync of the directory),
//! so a crash leaves either the old or the new checkpoint, never a torn one. The format is versioned.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use relaywatch_postfix::CorrelatorState;
use serde::{Deserialize, Serialize};

use crate::tail::Position;

pub const CHECKPOINT_VERSION: u32 = 1;

/// Everything needed to resume one log path (or the journal) exactly where a batch ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    /// For a log file; the default (no file) for the journal.
    pub position: Position,
    /// `None` before the first batch of this path.
    pub correlator: Option<CorrelatorState>,
    /// For the journal: the `__CURSOR` of the last entry the batch covers (resumed with `--after-cursor`). Absent in
    /// file streams and in checkpoints written before the journald source existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// The last spool batch the API acknowledged; spool files up to it are already done.
    pub acked_seq: u64,
    /// By configured log path.
    pub streams: BTreeMap<String, StreamState>,
    /// Log globs this agent has expanded before. A match that no checkpoint knows was created since then, so it is
    /// read from its beginning whatever `start_at` says (else a log created while the agent was down would start at
    /// its end and lose its first lines).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub globs_seen: BTreeSet<String>,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            acked_seq: 0,
            streams: BTreeMap::new(),
            globs_seen: BTreeSet::new(),
        }
    }
}

pub fn checkpoint_path(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoint.json")
}

impl Checkpoint {
    /// Loads the checkpoint, or an empty one when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Checkpoint> {
        let path = checkpoint_path(state_dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoint::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let cp: Checkpoint = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a checkpoint", path.display()))?;
        if cp.version != CHECKPOINT_VERSION {
            bail!(
                "{} has checkpoint version {}, this agent writes {CHECKPOINT_VERSION}",
                path.display(),
                cp.version
            );
        }
        Ok(cp)
    }

    pub fn store(&self, state_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        write_atomic(&checkpoint_path(state_dir), &bytes)
    }
}

/// Writes `bytes` to `path` so that a crash at any moment leaves the old content or the new, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    // The rename itself is durable only once the directory is synced.
    File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_without_cursors_still_load_and_file_streams_are_written_as_before() {
        let old = r#"{"version":1,"acked_seq":7,"streams":{"/var/log/mail.log":{"position":{"file":null,"offset":12},"correlator":null}}}"#;
        let cp: Checkpoint = serde_json::from_str(old).expect("an older checkpoint loads");
        let s = &cp.streams["/var/log/mail.log"];
        assert_eq!((s.position.offset, s.cursor.as_deref()), (12, None));
        assert_eq!(serde_json::to_string(&cp).unwrap(), old);

        let dir = tempfile::tempdir().unwrap();
        let mut cp = cp;
        cp.streams.insert(
            "journald:".into(),
            StreamState {
                position: Position::default(),
                correlator: None,
                cursor: Some("s=ab;i=2a;b=cd;m=1;t=2;x=3".into()),
            },
        );
        cp.store(dir.path()).unwrap();
        let back = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(
            back.streams["journald:"].cursor.as_deref(),
            Some("s=ab;i=2a;b=cd;m=1;t=2;x=3")
        );
        assert_eq!(back.acked_seq, 7);
    }
}
