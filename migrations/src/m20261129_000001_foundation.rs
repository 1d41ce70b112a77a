//! Tenants, the people and machines that act for them, and what they send from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn created_at() -> ColumnDef {
    timestamp_with_time_zone("created_at")
}

fn tenant_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_tenant"))
        .from(table, "tenant_id")
        .to("tenants", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(
    table: &'static str,
    name: &str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(format!("ix_{table}_{name}")).table(table);
    for c in cols {
        idx.col(*c);
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenants")
                    .col(pk_uuid("id"))
                    .col(string_len("name", 200))
                    .col(integer("retention_days").default(30))
                    .col(created_at())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("email", 254))
                    .col(string("password_hash"))
                    .col(string_len("role", 16))
                    .col(boolean("installation_admin").default(false))
                    .col(created_at())
                    .col(timestamp_with_time_zone_null("last_login_at"))
                    .col(timestamp_with_time_zone_null("disabled_at"))
                    .foreign_key(&mut tenant_fk("users"))
                    .to_owned(),
            )
            .await?;
        // Login is by email alone, so an address identifies one user across the installation.
        manager
            .create_index(index("users", "email", &["email"], true))
            .await?;
        manager
            .create_index(index("users", "tenant", &["tenant_id", "id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("name", 200))
                    // The first characters of the key, kept in clear so operators can tell keys apart in listings.
                    .col(string_len("prefix", 16))
                    // SHA-256 of the whole key. Keys carry 256 random bits, so a fast hash is enough; the key itself is never stored.
                    .col(string_len("key_hash", 64))
                    .col(string_len("scopes", 64))
                    .col(boolean("installation_admin").default(false))
                    .col(uuid_null("created_by_user"))
                    .col(created_at())
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(&mut tenant_fk("api_keys"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("api_keys", "hash", &["key_hash"], true))
            .await?;
        manager
            .create_index(index("api_keys", "tenant", &["tenant_id", "id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("agents")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("host_name", 253))
                    .col(string_len_null("version", 64))
                    .col(uuid_null("api_key_id"))
                    .col(created_at())
                    .col(timestamp_with_time_zone_null("last_seen_at"))
                    .foreign_key(&mut tenant_fk("agents"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("agents", "host", &["tenant_id", "host_name"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("sending_domains")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("domain", 253))
                    // Comma-separated DKIM selectors to audit (`s2024,google`).
                    .col(text("dkim_selectors").default(""))
                    .col(created_at())
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("sending_domains"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sending_domains",
                "domain",
                &["tenant_id", "domain"],
                true,
            ))
            .await?;
        // Routing of shared-host mail looks a sender domain up across tenants.
        manager
            .create_index(index("sending_domains", "lookup", &["domain"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("sending_ips")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("network", 64))
                    .col(string_len_null("description", 500))
                    .col(created_at())
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("sending_ips"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sending_ips",
                "network",
                &["tenant_id", "network"],
                true,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "sending_ips",
            "sending_domains",
            "agents",
            "api_keys",
            "users",
            "tenants",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
