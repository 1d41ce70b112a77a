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

use crate::statements::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

const NEW: (&str, &str, &[&str]) = (
    "messages",
    "message_id_first_seen",
    &["tenant_id", "message_id", "first_seen_at", "id"],
);
const OLD: (&str, &str, &[&str]) = ("messages", "message_id", &["tenant_id", "message_id"]);

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
        manager.create_index(index(NEW.0, NEW.1, NEW.2)).await?;
        manager.drop_index(drop_index(OLD.0, OLD.1)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The brackets are not put back: both forms name the same message.
        manager.create_index(index(OLD.0, OLD.1, OLD.2)).await?;
        manager.drop_index(drop_index(NEW.0, NEW.1)).await
    }
}
