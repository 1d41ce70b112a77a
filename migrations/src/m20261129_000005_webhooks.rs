//! Webhooks and alerts: the tenant's webhook endpoints, the event outbox, one delivery per event and endpoint with
//! every HTTP attempt, alert rules and the alerts they open.
//!
//! The delivery table is also the queue: a delivery is `pending` until a worker claims it by moving it to
//! `delivering` with a lease (`lease_token`, `lease_until`) in one conditional UPDATE; a lease that runs out (the
//! worker died) makes it claimable again, and the event id (the `webhook-id` header) stays the same, so receivers
//! can drop the repeat.
//!
//! "One open alert per rule and scope" is a unique index on `(tenant_id, open_key)`: `open_key` is set while an
//! alert is open and NULL once resolved (NULLs never collide, on SQLite or PostgreSQL), so two nodes evaluating the
//! same rule at once cannot both open it.

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn tenant_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_tenant"))
        .from(table, "tenant_id")
        .to("tenants", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn fk(
    table: &'static str,
    col: &'static str,
    to: &'static str,
    action: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{col}"))
        .from(table, col)
        .to(to, "id")
        .on_delete(action)
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

/// The default rules every tenant starts with, as of this migration (tenants created later get the store's current
/// defaults, `relaywatch_store::alerts::default_rules`). Kind, name, threshold, window, cool-down, minimum volume, scope.
#[allow(clippy::type_complexity)]
const DEFAULT_RULES: &[(
    &str,
    &str,
    Option<f64>,
    Option<i32>,
    i32,
    Option<i32>,
    Option<&str>,
)] = &[
    (
        "acceptance_rate_below",
        "Acceptance below 90 % (all mail, 1 hour)",
        Some(90.0),
        Some(60),
        60,
        Some(50),
        Some("overall"),
    ),
    (
        "acceptance_rate_below",
        "Acceptance below 80 % at one provider (30 minutes)",
        Some(80.0),
        Some(30),
        60,
        Some(20),
        Some("provider"),
    ),
    (
        "provider_deferral_spike",
        "Half the attempts to one provider deferred (15 minutes)",
        Some(50.0),
        Some(15),
        60,
        Some(20),
        Some("provider"),
    ),
    (
        "provider_bounce_spike",
        "A third of the attempts to one provider bounced (15 minutes)",
        Some(30.0),
        Some(15),
        60,
        Some(20),
        Some("provider"),
    ),
    (
        "hard_bounce_rate_above",
        "Hard bounces above 5 % (1 hour)",
        Some(5.0),
        Some(60),
        60,
        Some(50),
        Some("overall"),
    ),
    (
        "blocklist_listed",
        "Listed on a blocklist",
        None,
        None,
        60,
        None,
        None,
    ),
    (
        "audit_regressed",
        "New errors in a domain audit",
        None,
        None,
        60,
        None,
        None,
    ),
    (
        "agent_silent",
        "Agent silent for 15 minutes",
        None,
        Some(15),
        60,
        None,
        None,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(text("url"))
                    .col(string_len_null("description", 500))
                    // Subscribed event types, comma-separated and sorted; `*` for every type.
                    .col(text("event_types"))
                    .col(boolean("enabled").default(true))
                    .col(text_null("disabled_reason"))
                    .col(timestamp_with_time_zone_null("disabled_at"))
                    // The signing secret, encrypted at rest (AES-256-GCM under a key derived from the installation
                    // secret): it must be readable to sign, so it cannot be hashed like API keys.
                    .col(text("secret"))
                    // The secret before the last rotation: signs too until `previous_secret_expires_at`.
                    .col(text_null("previous_secret"))
                    .col(timestamp_with_time_zone_null("previous_secret_expires_at"))
                    .col(integer("consecutive_failures").default(0))
                    .col(timestamp_with_time_zone_null("failing_since"))
                    .col(timestamp_with_time_zone_null("last_success_at"))
                    .col(timestamp_with_time_zone_null("last_failure_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("webhook_endpoints"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "webhook_endpoints",
                "tenant",
                &["tenant_id", "id"],
                false,
            ))
            .await?;

        // The outbox: every event a tenant's endpoints subscribed to, written with its fan-out in one transaction.
        manager
            .create_table(
                Table::create()
                    .table("webhook_events")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("event_type", 64))
                    // The envelope's `data`, as JSON.
                    .col(text("data"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut tenant_fk("webhook_events"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "webhook_events",
                "tenant",
                &["tenant_id", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index("webhook_events", "created", &["created_at"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("endpoint_id"))
                    .col(uuid("event_id"))
                    .col(string_len("event_type", 64))
                    // `pending`, `delivering`, `succeeded`, `failed`.
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(uuid_null("lease_token"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(integer_null("last_status_code"))
                    .col(text_null("last_error"))
                    .col(integer_null("last_latency_ms"))
                    .col(timestamp_with_time_zone_null("last_attempt_at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("webhook_deliveries"))
                    .foreign_key(&mut fk(
                        "webhook_deliveries",
                        "endpoint_id",
                        "webhook_endpoints",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "webhook_deliveries",
                        "event_id",
                        "webhook_events",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            // One delivery per event and endpoint: emitting an event twice fans it out once.
            ("event", &["endpoint_id", "event_id"][..], true),
            ("endpoint", &["tenant_id", "endpoint_id", "id"][..], false),
            // Workers look for due deliveries and expired leases across tenants.
            ("due", &["status", "next_attempt_at"][..], false),
            ("lease", &["status", "lease_until"][..], false),
            ("event_ref", &["event_id"][..], false),
        ] {
            manager
                .create_index(index("webhook_deliveries", name, cols, unique))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("webhook_attempts")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("delivery_id"))
                    .col(uuid("endpoint_id"))
                    .col(integer("attempt"))
                    .col(timestamp_with_time_zone("attempted_at"))
                    .col(integer_null("status_code"))
                    .col(integer("latency_ms"))
                    .col(text_null("error"))
                    // The first bytes of the receiver's answer, for debugging.
                    .col(text_null("response_excerpt"))
                    .col(boolean("succeeded"))
                    .foreign_key(&mut tenant_fk("webhook_attempts"))
                    .foreign_key(&mut fk(
                        "webhook_attempts",
                        "delivery_id",
                        "webhook_deliveries",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "webhook_attempts",
                "delivery",
                &["tenant_id", "delivery_id", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "webhook_attempts",
                "delivery_ref",
                &["delivery_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_rules")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("name", 200))
                    // acceptance_rate_below, hard_bounce_rate_above, provider_deferral_spike, provider_bounce_spike,
                    // blocklist_listed, audit_regressed, agent_silent.
                    .col(string_len("kind", 32))
                    .col(boolean("enabled").default(true))
                    // A percentage for rate rules; unused by the others.
                    .col(double_null("threshold"))
                    .col(integer_null("window_minutes"))
                    .col(integer("cooldown_minutes").default(60))
                    // Fewer outcomes than this in the window: too little to judge a rate.
                    .col(integer_null("min_volume"))
                    // `overall`, `sender_domain` or `provider` for rate rules.
                    .col(string_len_null("scope", 32))
                    // Only this sender domain, provider, audited domain or agent host.
                    .col(string_len_null("scope_value", 253))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("alert_rules"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("alert_rules", "tenant", &["tenant_id", "id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("alerts")
                    .col(pk_uuid("id"))
                    .col(uuid("tenant_id"))
                    // NULL for alerts Relaywatch raises itself (a disabled webhook) and after the rule was deleted.
                    .col(uuid_null("rule_id"))
                    .col(string_len("kind", 32))
                    // What the alert is about: `overall`, `provider:google`, `agent:mx1`, `domain:example.com`, ...
                    .col(string_len("scope_key", 400))
                    // `<rule or kind>|<scope_key>` while open, NULL once resolved: unique per tenant.
                    .col(string_len_null("open_key", 500))
                    // `open` or `resolved`.
                    .col(string_len("status", 16))
                    .col(text("summary"))
                    .col(double_null("value"))
                    .col(double_null("threshold"))
                    // JSON object with what the rule saw.
                    .col(text("details"))
                    .col(timestamp_with_time_zone("opened_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone_null("resolved_at"))
                    .col(text_null("resolution"))
                    .foreign_key(&mut tenant_fk("alerts"))
                    .foreign_key(&mut fk(
                        "alerts",
                        "rule_id",
                        "alert_rules",
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("open", &["tenant_id", "open_key"][..], true),
            ("tenant", &["tenant_id", "id"][..], false),
            // The last alert of a rule and scope: what the cool-down is measured from.
            (
                "scope",
                &["tenant_id", "rule_id", "scope_key", "id"][..],
                false,
            ),
            ("rule_ref", &["rule_id"][..], false),
        ] {
            manager
                .create_index(index("alerts", name, cols, unique))
                .await?;
        }

        // Tenants that exist already get the default rules (new tenants get them when created).
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let tenants = db
            .query_all_raw(Statement::from_string(backend, "SELECT id FROM tenants"))
            .await?;
        let now = chrono::Utc::now();
        for row in tenants {
            let tenant: uuid::Uuid = row.try_get("", "id")?;
            for (kind, name, threshold, window, cooldown, min_volume, scope) in DEFAULT_RULES {
                let insert = Query::insert()
                    .into_table("alert_rules")
                    .columns([
                        "id",
                        "tenant_id",
                        "name",
                        "kind",
                        "enabled",
                        "threshold",
                        "window_minutes",
                        "cooldown_minutes",
                        "min_volume",
                        "scope",
                        "scope_value",
                        "created_at",
                        "updated_at",
                    ])
                    .values_panic([
                        uuid::Uuid::now_v7().into(),
                        tenant.into(),
                        (*name).into(),
                        (*kind).into(),
                        true.into(),
                        (*threshold).into(),
                        (*window).into(),
                        (*cooldown).into(),
                        (*min_volume).into(),
                        scope.map(str::to_string).into(),
                        Option::<String>::None.into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned();
                manager.exec_stmt(insert).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "alerts",
            "alert_rules",
            "webhook_attempts",
            "webhook_deliveries",
            "webhook_events",
            "webhook_endpoints",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
