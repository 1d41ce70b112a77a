//! Blocklist monitoring: each tenant's current verdict per (subject, zone), listing episodes (first seen, last seen,
//! cleared at) with their transitions as events (what alerting reads), installation-wide zone health, each tenant's
//! zone overrides and sweep time, and the queue of checks triggered by bounces.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("blocklist_status")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("subject", 253))
                    // `ipv4`, `ipv6`, `domain`.
                    .col(string_len("subject_kind", 8))
                    .col(string_len("zone", 255))
                    // `listed`, `clean`, `not_tested`.
                    .col(string_len("state", 16))
                    // Answers as a comma-separated list (empty unless listed).
                    .col(text("codes"))
                    .col(text_null("meaning"))
                    // The zone's TXT explanation when listed; why not tested otherwise.
                    .col(text_null("reason"))
                    .col(boolean("informational"))
                    // Start of the open listing, kept through `not_tested` answers.
                    .col(timestamp_with_time_zone_null("listed_since"))
                    .col(timestamp_with_time_zone("checked_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocklist_status_tenant")
                            .from("blocklist_status", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("blocklist_listings")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("subject", 253))
                    .col(string_len("zone", 255))
                    .col(text("codes"))
                    .col(text_null("meaning"))
                    .col(text_null("reason"))
                    .col(boolean("informational"))
                    .col(text_null("delist_url"))
                    .col(timestamp_with_time_zone("first_seen"))
                    .col(timestamp_with_time_zone("last_seen"))
                    .col(timestamp_with_time_zone_null("cleared_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocklist_listings_tenant")
                            .from("blocklist_listings", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("blocklist_events")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("listing_id"))
                    .col(string_len("subject", 253))
                    .col(string_len("zone", 255))
                    // `listed`, `codes_changed`, `cleared`.
                    .col(string_len("kind", 16))
                    .col(text("codes"))
                    .col(text_null("meaning"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocklist_events_tenant")
                            .from("blocklist_events", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("blocklist_tenant_settings")
                    .col(uuid("tenant_id").primary_key())
                    // The tenant's ZoneOverrides as JSON.
                    .col(text("overrides"))
                    .col(timestamp_with_time_zone_null("last_swept_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocklist_tenant_settings_tenant")
                            .from("blocklist_tenant_settings", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("blocklist_check_requests")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("subject", 253))
                    .col(text("reason"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("done_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocklist_check_requests_tenant")
                            .from("blocklist_check_requests", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("blocklist_zone_health")
                    .col(string_len("zone", 255).primary_key())
                    .col(boolean("healthy"))
                    .col(text_null("reason"))
                    .col(timestamp_with_time_zone("checked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_blocklist_status_subject_zone")
                    .table("blocklist_status")
                    .col("tenant_id")
                    .col("subject")
                    .col("zone")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blocklist_status_state")
                    .table("blocklist_status")
                    .col("tenant_id")
                    .col("state")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blocklist_listings_open")
                    .table("blocklist_listings")
                    .col("tenant_id")
                    .col("cleared_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blocklist_listings_subject")
                    .table("blocklist_listings")
                    .col("tenant_id")
                    .col("subject")
                    .col("zone")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blocklist_events_tenant")
                    .table("blocklist_events")
                    .col("tenant_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blocklist_check_requests_pending")
                    .table("blocklist_check_requests")
                    .col("done_at")
                    .col("requested_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "blocklist_check_requests",
            "blocklist_tenant_settings",
            "blocklist_zone_health",
            "blocklist_events",
            "blocklist_listings",
            "blocklist_status",
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
