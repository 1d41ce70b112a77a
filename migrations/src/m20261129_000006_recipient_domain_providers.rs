//! The provider of recipient domains learned from their MX records: an installation-wide cache (MX records are public
//! facts, not tenant data), so a domain hosted at Google Workspace or Microsoft 365 is grouped with its provider even
//! when no delivery to it showed the provider's relay host.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("recipient_domain_providers")
                    .col(string_len("domain", 253).primary_key())
                    // NULL: the MX hosts name no known provider (or the domain has no MX).
                    .col(string_len_null("provider", 32))
                    // The MX hosts, most preferred first, space-separated: the evidence.
                    .col(text("mx_hosts"))
                    // The lookup failed (timeout, SERVFAIL): asked again sooner than a real answer.
                    .col(boolean("failed"))
                    .col(timestamp_with_time_zone("resolved_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("recipient_domain_providers").to_owned())
            .await
    }
}
