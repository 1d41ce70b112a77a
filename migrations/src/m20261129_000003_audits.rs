//! Domain audits: one row per audit run of a sending domain (queued, running, completed or failed) with its report,
//! and each tenant's audit schedule.
//!
//! The run table is also the queue: the API inserts `queued` runs, the scheduler inserts one per domain and tick
//! with an idempotency key (`schedule_key`, unique per domain), and a worker claims a run by moving it from `queued`
//! to `running` in one UPDATE, so two workers never run the same audit.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_runs")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("sending_domain_id"))
                    .col(string_len("domain", 253))
                    // `schedule` or `request`.
                    .col(string_len("trigger", 16))
                    // `audit:<tenant>:<domain id>:<tick>` for scheduled runs; NULL (never equal) for requested ones.
                    .col(string_len_null("schedule_key", 200))
                    // `queued`, `running`, `completed`, `failed`.
                    .col(string_len("status", 16))
                    // A requested run's choice about SMTP probes; NULL follows the tenant's schedule.
                    .col(boolean_null("smtp_checks"))
                    .col(integer_null("score"))
                    .col(string_len_null("grade", 2))
                    .col(integer("errors").default(0))
                    .col(integer("warnings").default(0))
                    .col(integer("infos").default(0))
                    .col(integer("not_tested").default(0))
                    // The whole report (findings, checks not tested, scorecard) as JSON.
                    .col(text_null("report"))
                    // Findings absent from the previous completed run, and those of the previous run now gone.
                    .col(text_null("new_findings"))
                    .col(text_null("resolved_findings"))
                    .col(string_len_null("claimed_by", 200))
                    .col(text_null("failure"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_runs_tenant")
                            .from("audit_runs", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_runs_domain")
                            .from("audit_runs", "sending_domain_id")
                            .to("sending_domains", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_runs_history")
                    .table("audit_runs")
                    .col("tenant_id")
                    .col("sending_domain_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_runs_schedule_key")
                    .table("audit_runs")
                    .col("tenant_id")
                    .col("sending_domain_id")
                    .col("schedule_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Workers look for queued runs across tenants.
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_runs_status")
                    .table("audit_runs")
                    .col("status")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_schedules")
                    .col(pk_uuid("tenant_id"))
                    // A six-field cron expression (seconds first), UTC.
                    .col(string_len("cron", 100))
                    .col(boolean("enabled").default(true))
                    .col(boolean("smtp_checks").default(true))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_schedules_tenant")
                            .from("audit_schedules", "tenant_id")
                            .to("tenants", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["audit_schedules", "audit_runs"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
