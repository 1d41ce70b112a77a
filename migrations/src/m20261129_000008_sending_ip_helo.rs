//! The HELO/EHLO name a sending IP's server gives, when the tenant knows it: the reverse-DNS audit checks that the
//! PTR name equals it (receivers compare them).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sending_ips")
                    .add_column(string_len_null("helo_name", 253))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sending_ips")
                    .drop_column("helo_name")
                    .to_owned(),
            )
            .await
    }
}
