//! Delivery history: messages, delivery attempts, agent health, unrouted senders.
//!
//! On PostgreSQL `deliveries` is partitioned by day on `attempt_at`, so expiry drops whole days instead of deleting
//! rows; its primary key therefore includes `attempt_at` (an attempt's id is derived from its content, time included,
//! so `(id, attempt_at)` is as unique as `id`). A default partition catches rows outside the prepared days
//! (backfills of old logs). SQLite gets the same columns in one plain table.

use crate::statements::index;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn deliveries_table() -> TableCreateStatement {
    Table::create()
        .table("deliveries")
        .col(uuid("id"))
        .col(timestamp_with_time_zone("attempt_at"))
        // Unix seconds of attempt_at: bucketing for statistics is integer arithmetic, the same on both backends.
        .col(big_integer("attempt_unix"))
        .col(uuid("tenant_id"))
        .col(uuid("message_ref"))
        .col(string_len("host", 253))
        .col(string_len("instance", 64))
        .col(string_len("queue_id", 32))
        .col(string_len_null("daemon", 16))
        .col(string_len_null("recipient", 320))
        .col(string_len_null("recipient_domain", 253))
        .col(string_len_null("orig_recipient", 320))
        .col(string_len("status", 32))
        .col(string_len_null("dsn", 16))
        .col(text_null("relay"))
        .col(string_len_null("relay_host", 253))
        .col(string_len_null("relay_ip", 64))
        .col(double_null("delay"))
        .col(double_null("delay_before_queue"))
        .col(double_null("delay_in_queue"))
        .col(double_null("delay_connection"))
        .col(double_null("delay_transmission"))
        .col(text_null("reply"))
        .col(integer_null("reply_code"))
        .col(string_len_null("bounce_severity", 16))
        .col(string_len_null("bounce_reason", 32))
        .col(string_len_null("provider", 32))
        .col(string_len_null("tag", 200))
        .col(string_len_null("sender", 320))
        .col(string_len_null("sender_domain", 253))
        .col(integer("position"))
        .col(timestamp_with_time_zone("ingested_at"))
        .primary_key(Index::create().col("id").col("attempt_at"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("messages")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("host", 253))
                    .col(string_len("instance", 64))
                    .col(string_len("queue_id", 32))
                    .col(text_null("message_id"))
                    .col(string_len_null("tag", 200))
                    .col(string_len_null("sender", 320))
                    .col(string_len_null("sender_domain", 253))
                    .col(big_integer_null("size"))
                    .col(integer_null("nrcpt"))
                    .col(text_null("client"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("tag", &["tenant_id", "tag"][..]),
            ("message_id", &["tenant_id", "message_id"][..]),
            ("sender", &["tenant_id", "sender"][..]),
            ("last_seen", &["tenant_id", "last_seen_at"][..]),
            // The listing's order: newest first, walked backwards, so a search stops after one page.
            ("first_seen", &["tenant_id", "first_seen_at", "id"][..]),
        ] {
            manager.create_index(index("messages", name, cols)).await?;
        }

        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                let sql = deliveries_table().to_string(PostgresQueryBuilder);
                db.execute_unprepared(&format!("{sql} PARTITION BY RANGE (attempt_at)"))
                    .await?;
                db.execute_unprepared(
                    "CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&deliveries_table().to_string(SqliteQueryBuilder))
                    .await?;
            }
        }
        for (name, cols) in [
            ("time", &["tenant_id", "attempt_unix"][..]),
            ("recipient", &["tenant_id", "recipient", "attempt_unix"][..]),
            // "Messages to this address": an index-only semi-join, so an address with thousands of messages (the
            // sender that receives bounce notices) costs one page, not all of its rows.
            (
                "recipient_message",
                &["tenant_id", "recipient", "message_ref"][..],
            ),
            ("message", &["tenant_id", "message_ref"][..]),
        ] {
            manager
                .create_index(index("deliveries", name, cols))
                .await?;
        }

        // Agent health, reported by heartbeats. SQLite adds one column per statement.
        for col in [
            big_integer("lines_read").default(0).to_owned(),
            big_integer("records_shipped").default(0).to_owned(),
            big_integer("records_accepted").default(0).to_owned(),
            big_integer("spool_bytes").default(0).to_owned(),
            double_null("lag_seconds").to_owned(),
            text_null("last_error").to_owned(),
        ] {
            let mut col = col;
            manager
                .alter_table(
                    Table::alter()
                        .table("agents")
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        // An installation-level ingest key for a mail host shared by several tenants: its deliveries are routed by
        // the envelope sender's domain instead of going to the key's own tenant.
        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .add_column(boolean("routes_by_sender").default(false).to_owned())
                    .to_owned(),
            )
            .await?;

        // Sender domains that shared-host agents reported but no tenant registered: visible to installation admins.
        manager
            .create_table(
                Table::create()
                    .table("unrouted_senders")
                    .col(string_len("sender_domain", 253).primary_key())
                    .col(big_integer("deliveries"))
                    .col(string_len("last_host", 253))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["unrouted_senders", "deliveries", "messages"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().cascade().to_owned())
                .await?;
        }
        Ok(())
    }
}
