//! Indexes in the order the lookups read, so a lookup reads one page of index entries however many rows match.
//!
//! - `messages (tenant_id, tag | sender, first_seen_at, id)` replace `(tenant_id, tag | sender)`: the listing is newest
//!   first by `(first_seen_at, id)`, and with the old indexes a tag or sender with tens of thousands of messages had
//!   all of them fetched and sorted for a page of 50.
//! - `deliveries (tenant_id, recipient, attempt_at)` replaces `(tenant_id, recipient, attempt_unix)` and
//!   `(tenant_id, recipient, message_ref)`: the latest attempts to an address, and the messages to it, are both read
//!   newest attempt first and stop after a page (on PostgreSQL `attempt_at` is the partition key, so each daily
//!   partition's part of the index is already in order and the partitions are merged).

use sea_orm_migration::prelude::*;

use crate::statements::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

const NEW: &[(&str, &str, &[&str])] = &[
    (
        "messages",
        "tag_first_seen",
        &["tenant_id", "tag", "first_seen_at", "id"],
    ),
    (
        "messages",
        "sender_first_seen",
        &["tenant_id", "sender", "first_seen_at", "id"],
    ),
    (
        "deliveries",
        "recipient_time",
        &["tenant_id", "recipient", "attempt_at"],
    ),
];

const OLD: &[(&str, &str, &[&str])] = &[
    ("messages", "tag", &["tenant_id", "tag"]),
    ("messages", "sender", &["tenant_id", "sender"]),
    (
        "deliveries",
        "recipient",
        &["tenant_id", "recipient", "attempt_unix"],
    ),
    (
        "deliveries",
        "recipient_message",
        &["tenant_id", "recipient", "message_ref"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, cols) in NEW {
            manager.create_index(index(table, name, cols)).await?;
        }
        for (table, name, _) in OLD {
            manager.drop_index(drop_index(table, name)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, cols) in OLD {
            manager.create_index(index(table, name, cols)).await?;
        }
        for (table, name, _) in NEW {
            manager.drop_index(drop_index(table, name)).await?;
        }
        Ok(())
    }
}
