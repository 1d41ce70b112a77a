//! Message-IDs are stored bare (`id@host`, the form the agent sends and operators paste), and looked up through
//! `messages (tenant_id, message_id, first_seen_at, id)`.
//!
//! - Records that arrived with the header's angle brackets (`<id@host>`) are rewritten to the bare form, so one
//!   equality finds a message whichever form it arrived in. (Matching both forms with `IN` made SQLite walk the
//!   listing index instead: a full scan for an unknown id.)
//! - The index replaces `(tenant_id, message_id)`: with the listing's order in it, SQLite's planner picks it
//!   without statistics (with the old one it preferred walking every message newest first, 0.6-1 s at 800,000
//!   messages), and on PostgreSQL a Message-ID reused by many messages still costs one page.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE messages SET message_id = substr(message_id, 2, length(message_id) - 2) \
                 WHERE message_id LIKE '<%>'",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_messages_message_id_first_seen")
                    .table("messages")
                    .col("tenant_id")
                    .col("message_id")
                    .col("first_seen_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_messages_message_id")
                    .table("messages")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The brackets are not put back: both forms name the same message.
        manager
            .create_index(
                Index::create()
                    .name("ix_messages_message_id")
                    .table("messages")
                    .col("tenant_id")
                    .col("message_id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_messages_message_id_first_seen")
                    .table("messages")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
