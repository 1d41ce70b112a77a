//! DKIM selectors learned from mail: each (domain, selector) a tenant's agents saw the signer (opendkim) use, with when
//! it was first and last seen. Audits of the domain check these keys besides the registered selectors.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("observed_dkim_selectors")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    // The signing domain (`d=`), lower case: not necessarily a registered sending domain.
                    .col(string_len("domain", 253))
                    .col(string_len("selector", 200))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_observed_dkim_selectors_tenant")
                            .from("observed_dkim_selectors", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The upsert's conflict target, and the audit's lookup by domain.
        manager
            .create_index(
                Index::create()
                    .name("ix_observed_dkim_selectors_key")
                    .table("observed_dkim_selectors")
                    .col("tenant_id")
                    .col("domain")
                    .col("selector")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("observed_dkim_selectors").to_owned())
            .await
    }
}
