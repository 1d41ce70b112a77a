//! SQLite upkeep under sustained ingest: the write-ahead log kept bounded, the planner's statistics kept fresh.
//!
//! SQLite's automatic checkpoint is passive: it copies what it can from the WAL into the database but never waits
//! for readers, and the WAL file only starts over once a checkpoint has copied everything while no reader needed
//! the old frames. With agents shipping and lookups reading all the time that moment never comes, and the WAL grows
//! without bound (18.5 GB beside a 1.2 GB database after a million ingested attempts, measured). So after every
//! [`DEFAULT_CHECKPOINT_EVERY_ROWS`] stored rows, a checkpoint that waits for the readers of the moment (they are short) and
//! then truncates the file runs in the background, off the request that triggered it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{Store, StoreResult};

/// Rows written between truncating checkpoints: about a hundred MB of WAL at ingest's page churn.
pub const DEFAULT_CHECKPOINT_EVERY_ROWS: u64 = 20_000;

/// Counts rows written since the last truncating checkpoint.
#[derive(Debug)]
pub(crate) struct WalGuard {
    written: AtomicU64,
    every_rows: AtomicU64,
    running: AtomicBool,
    completed: AtomicU64,
}

impl Default for WalGuard {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            every_rows: AtomicU64::new(DEFAULT_CHECKPOINT_EVERY_ROWS),
            running: AtomicBool::new(false),
            completed: AtomicU64::new(0),
        }
    }
}

/// What `PRAGMA wal_checkpoint(TRUNCATE)` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The checkpoint could not finish (a reader or writer held on past the busy timeout); the next one retries.
    pub busy: bool,
    /// WAL frames before the checkpoint, and how many of them were copied into the database.
    pub wal_frames: i64,
    pub checkpointed_frames: i64,
}

impl Store {
    /// Sets how many written rows trigger a truncating checkpoint on SQLite (tests use a small number).
    pub fn set_wal_checkpoint_rows(&self, rows: u64) {
        self.wal.every_rows.store(rows.max(1), Ordering::Relaxed);
    }

    /// Truncating checkpoints that have completed since this store was opened.
    pub fn wal_checkpoints_completed(&self) -> u64 {
        self.wal.completed.load(Ordering::Relaxed)
    }

    /// Copies the whole WAL into the database and truncates it; waits (up to the busy timeout) for readers of older
    /// snapshots to finish. SQLite only; `None` on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> StoreResult<Option<Checkpoint>> {
        if self.connection().get_database_backend() != DbBackend::Sqlite {
            return Ok(None);
        }
        let row = self
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let busy: i64 = row.try_get_by_index(0)?;
        let checkpoint = Checkpoint {
            busy: busy != 0,
            wal_frames: row.try_get_by_index(1)?,
            checkpointed_frames: row.try_get_by_index(2)?,
        };
        if !checkpoint.busy {
            self.wal.completed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(checkpoint))
    }

    /// SQLite only: refreshes the query planner's statistics (`ANALYZE`, sampling at most 1,000 rows per index: 4 ms
    /// at a million attempts), so its estimates follow the data as it grows instead of fixed guesses. The lookups do
    /// not rely on it: their plans are pinned by index shape and by `messages_by_id_query`, which SQLite once
    /// answered by walking every message of the tenant (0.14 s at 800,000 messages) for want of statistics.
    pub async fn refresh_planner_statistics(&self) -> StoreResult<()> {
        if self.connection().get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        self.connection()
            .execute_unprepared("PRAGMA analysis_limit = 1000; ANALYZE;")
            .await?;
        Ok(())
    }

    /// Records `rows` written and, on SQLite, starts a background checkpoint when enough have accumulated. Never
    /// fails the caller: the rows are committed already; a checkpoint that cannot run now is retried after the next
    /// batch.
    pub(crate) fn wrote_rows(&self, rows: u64) {
        if rows == 0 || self.connection().get_database_backend() != DbBackend::Sqlite {
            return;
        }
        let written = self.wal.written.fetch_add(rows, Ordering::Relaxed) + rows;
        if written < self.wal.every_rows.load(Ordering::Relaxed)
            || self.wal.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            match store.checkpoint_wal().await {
                Ok(Some(c)) if !c.busy => {
                    store.wal.written.store(0, Ordering::Relaxed);
                    tracing::debug!(frames = c.wal_frames, "WAL checkpointed and truncated");
                }
                Ok(_) => tracing::info!("WAL checkpoint busy; retried after the next batch"),
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retried after the next batch")
                }
            }
            store.wal.running.store(false, Ordering::Release);
        });
    }
}
