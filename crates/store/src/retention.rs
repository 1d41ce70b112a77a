//! Expiry of delivery history. Each tenant keeps `retention_days` of it (30 by default).
//!
//! On PostgreSQL, `deliveries` is partitioned by UTC day: a day older than every tenant's retention is dropped whole
//! (a fraction of a second, no vacuum debt); tenants with shorter retention get a DELETE of their own rows. On SQLite,
//! rows are deleted in batches so a large expiry never holds the write lock for long.

use crate::entities::tenant;
use crate::{Store, StoreResult};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use relaywatch_domain::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};

/// Rows per DELETE on SQLite.
const SQLITE_DELETE_BATCH: i64 = 5_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_deliveries: u64,
    pub deleted_messages: u64,
    pub dropped_partitions: Vec<String>,
}

fn partition_name(day: NaiveDate) -> String {
    format!("deliveries_p{}", day.format("%Y%m%d"))
}

impl Store {
    /// Applies every tenant's retention once. Safe to run at any time and from several nodes.
    pub async fn apply_retention_all_tenants(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<RetentionReport> {
        let tenants = tenant::Entity::find().all(self.connection()).await?;
        let mut report = RetentionReport::default();
        if self.connection().get_database_backend() == DbBackend::Postgres {
            report.dropped_partitions = self
                .drop_expired_partitions(now, longest_retention(&tenants))
                .await?;
        }
        for t in tenants {
            let cutoff = now - Duration::days(i64::from(t.retention_days.max(1)));
            let (d, m) = self.expire_tenant(TenantId(t.id), cutoff).await?;
            report.deleted_deliveries += d;
            report.deleted_messages += m;
        }
        Ok(report)
    }

    async fn expire_tenant(
        &self,
        tenant: TenantId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<(u64, u64)> {
        let t = sea_orm::Value::from(tenant.as_uuid());
        // deliveries are aged by their integer attempt time, messages by when they were last seen.
        let targets = [
            (
                "deliveries",
                "attempt_unix",
                sea_orm::Value::from(cutoff.timestamp()),
            ),
            ("messages", "last_seen_at", sea_orm::Value::from(cutoff)),
        ];
        let mut deleted = [0u64; 2];
        for ((table, column, before), count) in targets.into_iter().zip(deleted.iter_mut()) {
            *count = match self.connection().get_database_backend() {
                DbBackend::Sqlite => {
                    self.delete_in_batches(table, column, t.clone(), before)
                        .await?
                }
                backend => self
                    .connection()
                    .execute_raw(Statement::from_sql_and_values(
                        backend,
                        format!("DELETE FROM {table} WHERE tenant_id = $1 AND {column} < $2"),
                        [t.clone(), before],
                    ))
                    .await?
                    .rows_affected(),
            };
        }
        let [deliveries, messages] = deleted;
        Ok((deliveries, messages))
    }

    /// SQLite: deletes a tenant's rows older than `before` a batch at a time, so the write lock is never held long.
    /// `table` and `column` are constants of this module, never request input.
    async fn delete_in_batches(
        &self,
        table: &str,
        column: &str,
        tenant: sea_orm::Value,
        before: sea_orm::Value,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let res = self
                .connection()
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    format!(
                        "DELETE FROM {table} WHERE rowid IN \
                         (SELECT rowid FROM {table} WHERE tenant_id = ? AND {column} < ? LIMIT ?)"
                    ),
                    [tenant.clone(), before.clone(), SQLITE_DELETE_BATCH.into()],
                ))
                .await?;
            total += res.rows_affected();
            if res.rows_affected() < SQLITE_DELETE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// PostgreSQL only: creates the daily partitions from `days_back` days before `today` to `days_ahead` days after.
    /// Going back as far as retention reaches means a backfill of older logs lands in its days too, and expires
    /// with them by a partition drop. A day whose rows already sit in the default partition (from before its
    /// partition existed) keeps them there, where retention deletes them row by row; that is logged, not an error.
    pub async fn ensure_delivery_partitions(
        &self,
        today: NaiveDate,
        days_back: u32,
        days_ahead: u32,
    ) -> StoreResult<Vec<String>> {
        let db = self.connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(Vec::new());
        }
        let mut created = Vec::new();
        for offset in -i64::from(days_back)..=i64::from(days_ahead) {
            let day = today + Duration::days(offset);
            let name = partition_name(day);
            let next = day + Duration::days(1);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF deliveries FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')"
            );
            match db.execute_unprepared(&sql).await {
                Ok(_) => created.push(name),
                Err(e) => {
                    tracing::warn!(partition = %name, error = %e, "could not create a delivery partition")
                }
            }
        }
        Ok(created)
    }

    /// The longest history any tenant keeps, in days: how far back partitions are prepared.
    pub async fn longest_retention_days(&self) -> StoreResult<u32> {
        let tenants = tenant::Entity::find().all(self.connection()).await?;
        Ok(longest_retention(&tenants).max(1) as u32)
    }

    async fn drop_expired_partitions(
        &self,
        now: DateTime<Utc>,
        longest_retention_days: i32,
    ) -> StoreResult<Vec<String>> {
        let db = self.connection();
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'deliveries'",
            ))
            .await?;
        let keep_from =
            (now - Duration::days(i64::from(longest_retention_days.max(1)))).date_naive();
        let mut dropped = Vec::new();
        for row in rows {
            let name: String = row.try_get("", "name")?;
            let Some(day) = name
                .strip_prefix("deliveries_p")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            else {
                continue;
            };
            // The whole day must be past every tenant's retention.
            if day + Duration::days(1) <= keep_from {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {name}"))
                    .await?;
                dropped.push(name);
            }
        }
        Ok(dropped)
    }
}

/// The longest retention of these tenants (the default when there are none).
fn longest_retention(tenants: &[tenant::Model]) -> i32 {
    tenants
        .iter()
        .map(|t| t.retention_days)
        .max()
        .unwrap_or(crate::tenants::DEFAULT_RETENTION_DAYS)
}
