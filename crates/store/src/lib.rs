//! Relaywatch storage: sea-orm entities and the repository functions the API, worker and CLI use.
//!
//! Invariant: every function that reads or writes a tenant's rows takes a [`TenantId`] and puts it in the `WHERE`
//! clause, so a caller holding one tenant's credentials cannot reach another tenant's data by guessing an id.
//! Functions that deliberately span tenants (installation administration, bootstrap) say so in their names.

pub mod agents;
pub mod alerts;
pub mod api_keys;
pub mod audits;
pub mod blocklists;
pub mod bootstrap;
pub mod deliveries;
pub mod entities;
pub mod events;
pub mod observed_selectors;
pub mod providers;
pub mod retention;
mod scoped;
pub mod secrets;
pub mod sending_domains;
pub mod sending_ips;
pub mod tenants;
pub mod users;
pub mod wal;
pub mod webhooks;

use relaywatch_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, SqlErr};
use std::time::Duration;

pub use relaywatch_domain::TenantId;
pub use sea_orm;

/// What can go wrong when Relaywatch talks to its database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same natural key exists already (a domain registered twice, an email taken).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored value no longer parses: the database was edited by hand or by a newer version.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl StoreError {
    /// Turns a unique-constraint violation into [`StoreError::Conflict`]; everything else stays a database error.
    pub(crate) fn from_insert(err: DbErr, what: &'static str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(what),
            _ => StoreError::Db(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a cursor-paginated listing. The cursor is the id of the last item: ids are time-ordered UUIDv7,
/// so pages are stable while rows are added.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<uuid::Uuid>,
}

/// Where a listing starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<uuid::Uuid>,
    pub limit: u64,
}

impl PageRequest {
    pub const MAX_LIMIT: u64 = 500;

    pub fn first(limit: u64) -> Self {
        Self {
            after: None,
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }
}

pub(crate) fn into_page<T>(
    mut rows: Vec<T>,
    req: PageRequest,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Page<T> {
    let next_cursor = if rows.len() as u64 > req.limit {
        rows.truncate(req.limit as usize);
        rows.last().map(&id)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// The database handle shared by the API, the worker and the CLI.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// This node's memory of event subscriptions (see [`events::EventCache`]).
    events: std::sync::Arc<events::EventCache>,
    /// SQLite's WAL growth under sustained writes (see [`wal`]).
    wal: std::sync::Arc<wal::WalGuard>,
}

impl Store {
    /// Connects to `sqlite://...` or `postgres://...`.
    ///
    /// SQLite is opened in WAL mode with a busy timeout so that admin commands (`relaywatch tenant create`) can write
    /// while `relaywatch serve` runs on the same file, and with foreign keys enforced like on PostgreSQL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10));
        if url.starts_with("sqlite:") {
            opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        } else {
            opts.max_connections(16);
        }
        let db = Database::connect(opts).await?;
        Ok(Self::from_connection(db))
    }

    pub fn from_connection(db: DatabaseConnection) -> Self {
        Self {
            db,
            events: Default::default(),
            wal: Default::default(),
        }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration. Safe to run on every start and from several processes in turn.
    pub async fn migrate(&self) -> StoreResult<()> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// True when the database answers and has no pending migrations: the `/readyz` check.
    pub async fn is_ready(&self) -> StoreResult<bool> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(Migrator::get_pending_migrations(&self.db).await?.is_empty())
    }

    /// Names of applied migrations, oldest first.
    pub async fn applied_migrations(&self) -> StoreResult<Vec<String>> {
        Ok(Migrator::get_applied_migrations(&self.db)
            .await?
            .iter()
            .map(|m| m.name().to_string())
            .collect())
    }
}

pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    // Microsecond precision: what PostgreSQL keeps, so a value read back equals the value written on both backends.
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
