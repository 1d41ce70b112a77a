//! Alert rules and the alerts they open.
//!
//! A rule watches one thing (acceptance rate, hard bounces, a provider's deferrals or bounces, blocklist listings,
//! audit regressions, silent agents) with a threshold, a window, a cool-down and a scope. The worker evaluates every
//! enabled rule each minute and opens or resolves alerts through this module. At most one alert is open per rule and
//! scope: the unique `(tenant_id, open_key)` index refuses a second, so nodes evaluating together cannot both open
//! it. Opening and resolving emit `alert.triggered` / `alert.resolved` (and whatever the caller adds, such as
//! `agent.silent`) in the same transaction.

mod blocklist_source;

pub use blocklist_source::open_listings;

use crate::deliveries::{Sql, get_i64};
use crate::entities::{alert, alert_rule};
use crate::events::{NewEvent, emit_events};
use crate::{Page, PageRequest, Store, StoreError, StoreResult, now};
use chrono::{DateTime, Duration, Utc};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as types;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

/// Acceptance rate (`sent / (sent + bounced + expired)`) below `threshold` % over the window.
pub const ACCEPTANCE_RATE_BELOW: &str = "acceptance_rate_below";
/// Hard bounces above `threshold` % of the final outcomes over the window.
pub const HARD_BOUNCE_RATE_ABOVE: &str = "hard_bounce_rate_above";
/// At least `threshold` % of the attempts to one provider deferred over the window.
pub const PROVIDER_DEFERRAL_SPIKE: &str = "provider_deferral_spike";
/// At least `threshold` % of the attempts to one provider bounced over the window.
pub const PROVIDER_BOUNCE_SPIKE: &str = "provider_bounce_spike";
/// Any sending IP or domain listed on a blocklist.
pub const BLOCKLIST_LISTED: &str = "blocklist_listed";
/// A domain audit found errors the run before did not have; resolved when they are gone.
pub const AUDIT_REGRESSED: &str = "audit_regressed";
/// No heartbeat or batch from an agent for `window_minutes`.
pub const AGENT_SILENT: &str = "agent_silent";
/// Raised by Relaywatch itself (no rule): a webhook endpoint kept failing and was disabled.
pub const WEBHOOK_DISABLED: &str = "webhook_disabled";

/// The kinds a tenant can create rules of.
pub const RULE_KINDS: &[&str] = &[
    ACCEPTANCE_RATE_BELOW,
    HARD_BOUNCE_RATE_ABOVE,
    PROVIDER_DEFERRAL_SPIKE,
    PROVIDER_BOUNCE_SPIKE,
    BLOCKLIST_LISTED,
    AUDIT_REGRESSED,
    AGENT_SILENT,
];

pub const SCOPE_OVERALL: &str = "overall";
pub const SCOPE_SENDER_DOMAIN: &str = "sender_domain";
pub const SCOPE_PROVIDER: &str = "provider";

pub const ALERT_OPEN: &str = "open";
pub const ALERT_RESOLVED: &str = "resolved";

/// A rule's settings, as created or after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub threshold: Option<f64>,
    pub window_minutes: Option<i32>,
    pub cooldown_minutes: i32,
    pub min_volume: Option<i32>,
    pub scope: Option<String>,
    pub scope_value: Option<String>,
}

impl RuleSpec {
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &str,
        name: &str,
        threshold: Option<f64>,
        window: Option<i32>,
        cooldown: i32,
        min_volume: Option<i32>,
        scope: Option<&str>,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            enabled: true,
            threshold,
            window_minutes: window,
            cooldown_minutes: cooldown,
            min_volume,
            scope: scope.map(str::to_string),
            scope_value: None,
        }
    }

    pub fn from_model(m: &alert_rule::Model) -> Self {
        Self {
            name: m.name.clone(),
            kind: m.kind.clone(),
            enabled: m.enabled,
            threshold: m.threshold,
            window_minutes: m.window_minutes,
            cooldown_minutes: m.cooldown_minutes,
            min_volume: m.min_volume,
            scope: m.scope.clone(),
            scope_value: m.scope_value.clone(),
        }
    }
}

/// The rules every new tenant starts with.
pub fn default_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec::new(
            ACCEPTANCE_RATE_BELOW,
            "Acceptance below 90 % (all mail, 1 hour)",
            Some(90.0),
            Some(60),
            60,
            Some(50),
            Some(SCOPE_OVERALL),
        ),
        RuleSpec::new(
            ACCEPTANCE_RATE_BELOW,
            "Acceptance below 80 % at one provider (30 minutes)",
            Some(80.0),
            Some(30),
            60,
            Some(20),
            Some(SCOPE_PROVIDER),
        ),
        RuleSpec::new(
            PROVIDER_DEFERRAL_SPIKE,
            "Half the attempts to one provider deferred (15 minutes)",
            Some(50.0),
            Some(15),
            60,
            Some(20),
            Some(SCOPE_PROVIDER),
        ),
        RuleSpec::new(
            PROVIDER_BOUNCE_SPIKE,
            "A third of the attempts to one provider bounced (15 minutes)",
            Some(30.0),
            Some(15),
            60,
            Some(20),
            Some(SCOPE_PROVIDER),
        ),
        RuleSpec::new(
            HARD_BOUNCE_RATE_ABOVE,
            "Hard bounces above 5 % (1 hour)",
            Some(5.0),
            Some(60),
            60,
            Some(50),
            Some(SCOPE_OVERALL),
        ),
        RuleSpec::new(
            BLOCKLIST_LISTED,
            "Listed on a blocklist",
            None,
            None,
            60,
            None,
            None,
        ),
        RuleSpec::new(
            AUDIT_REGRESSED,
            "New errors in a domain audit",
            None,
            None,
            60,
            None,
            None,
        ),
        RuleSpec::new(
            AGENT_SILENT,
            "Agent silent for 15 minutes",
            None,
            Some(15),
            60,
            None,
            None,
        ),
    ]
}

/// The key that is unique among a tenant's open alerts: the rule (or, for Relaywatch's own alerts, the kind) and
/// the scope.
pub fn open_key(rule: Option<Uuid>, kind: &str, scope_key: &str) -> String {
    match rule {
        Some(id) => format!("{id}|{scope_key}"),
        None => format!("{kind}|{scope_key}"),
    }
}

/// An alert to open.
#[derive(Debug, Clone)]
pub struct OpenAlert {
    /// The rule's id and name; `None` for alerts Relaywatch raises itself.
    pub rule: Option<(Uuid, String)>,
    pub kind: String,
    pub scope_key: String,
    pub summary: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub details: serde_json::Value,
    /// No new alert of this rule and scope within this many minutes of the last one's resolution.
    pub cooldown_minutes: i32,
}

/// What an alert looks like in `alert.triggered` and `alert.resolved` events (the same fields as the API's `Alert`).
pub fn alert_event_data(a: &alert::Model, rule_name: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "rule_id": a.rule_id,
        "rule_name": rule_name,
        "kind": a.kind,
        "scope": a.scope_key,
        "status": a.status,
        "summary": a.summary,
        "value": a.value,
        "threshold": a.threshold,
        "details": serde_json::from_str::<serde_json::Value>(&a.details).unwrap_or_default(),
        "opened_at": a.opened_at,
        "last_seen_at": a.last_seen_at,
        "resolved_at": a.resolved_at,
        "resolution": a.resolution,
    })
}

/// Opens an alert unless one of this rule and scope is open already or the last one was resolved less than the
/// cool-down ago. Emits `alert.triggered` and `extra` with it. `None` when nothing was opened.
pub async fn open_alert_in<C>(
    db: &C,
    tenant: TenantId,
    new: &OpenAlert,
    at: DateTime<Utc>,
    extra: Vec<NewEvent>,
) -> StoreResult<Option<alert::Model>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let rule_id = new.rule.as_ref().map(|(id, _)| *id);
    let mut last = alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
        .filter(alert::Column::ScopeKey.eq(new.scope_key.as_str()))
        .order_by_desc(alert::Column::Id);
    last = match rule_id {
        Some(id) => last.filter(alert::Column::RuleId.eq(id)),
        None => last
            .filter(alert::Column::RuleId.is_null())
            .filter(alert::Column::Kind.eq(new.kind.as_str())),
    };
    if let Some(last) = last.one(db).await? {
        if last.status == ALERT_OPEN {
            return Ok(None);
        }
        if let Some(resolved) = last.resolved_at
            && at < resolved + Duration::minutes(i64::from(new.cooldown_minutes.max(0)))
        {
            return Ok(None);
        }
    }
    let row = alert::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.as_uuid(),
        rule_id,
        kind: new.kind.clone(),
        scope_key: new.scope_key.clone(),
        open_key: Some(open_key(rule_id, &new.kind, &new.scope_key)),
        status: ALERT_OPEN.into(),
        summary: new.summary.clone(),
        value: new.value,
        threshold: new.threshold,
        details: new.details.to_string(),
        opened_at: at,
        last_seen_at: at,
        resolved_at: None,
        resolution: None,
    };
    let txn = db.begin().await?;
    let active: alert::ActiveModel = row.clone().into();
    let inserted = alert::Entity::insert_many([active])
        .on_conflict_do_nothing_on([alert::Column::TenantId, alert::Column::OpenKey])
        .exec_without_returning(&txn)
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        txn.rollback().await?;
        return Ok(None); // another node opened it a moment ago
    }
    let mut events = vec![
        NewEvent::new(
            types::ALERT_TRIGGERED,
            alert_event_data(&row, new.rule.as_ref().map(|(_, n)| n.as_str())),
        )
        .at(at),
    ];
    events.extend(extra);
    emit_events(&txn, tenant, events).await?;
    txn.commit().await?;
    Ok(Some(row))
}

/// Resolves an open alert and emits `alert.resolved` and `extra` with it. False when it was not open (any more).
pub async fn resolve_alert_in<C>(
    db: &C,
    tenant: TenantId,
    a: &alert::Model,
    resolution: &str,
    at: DateTime<Utc>,
    extra: Vec<NewEvent>,
) -> StoreResult<bool>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    let res = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(ALERT_RESOLVED))
        .col_expr(alert::Column::OpenKey, Expr::value(Option::<String>::None))
        .col_expr(alert::Column::ResolvedAt, Expr::value(at))
        .col_expr(alert::Column::Resolution, Expr::value(resolution))
        .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
        .filter(alert::Column::Id.eq(a.id))
        .filter(alert::Column::Status.eq(ALERT_OPEN))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    let rule_name = match a.rule_id {
        Some(id) => crate::scoped::find::<alert_rule::Entity>(&txn, tenant, id)
            .await?
            .map(|r| r.name),
        None => None,
    };
    let resolved = alert::Model {
        status: ALERT_RESOLVED.into(),
        open_key: None,
        resolved_at: Some(at),
        resolution: Some(resolution.to_string()),
        ..a.clone()
    };
    let mut events = vec![
        NewEvent::new(
            types::ALERT_RESOLVED,
            alert_event_data(&resolved, rule_name.as_deref()),
        )
        .at(at),
    ];
    events.extend(extra);
    emit_events(&txn, tenant, events).await?;
    txn.commit().await?;
    Ok(true)
}

/// Resolves the open alert with this open key, if there is one.
pub(crate) async fn resolve_open_by_key<C>(
    db: &C,
    tenant: TenantId,
    key: &str,
    resolution: &str,
) -> StoreResult<bool>
where
    C: ConnectionTrait + TransactionTrait,
{
    let Some(a) = alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
        .filter(alert::Column::OpenKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    resolve_alert_in(db, tenant, &a, resolution, now(), Vec::new()).await
}

/// What `GET /v1/alerts` filters on.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub rule_id: Option<Uuid>,
}

/// Outcomes in a window, for one group (a sender domain, a provider) or overall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowCounts {
    pub group: Option<String>,
    pub sent: i64,
    pub deferred: i64,
    pub bounced: i64,
    pub expired: i64,
    pub hard_bounced: i64,
    pub total: i64,
}

impl WindowCounts {
    /// Final outcomes: what the acceptance rate is measured over.
    pub fn outcomes(&self) -> i64 {
        self.sent + self.bounced + self.expired
    }
}

/// Creates the default rules of a new tenant (`create_tenant` calls it).
pub(crate) async fn create_default_rules(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> StoreResult<()> {
    let at = now();
    let rows: Vec<alert_rule::ActiveModel> = default_rules()
        .into_iter()
        .map(|spec| rule_row(tenant, &spec, at))
        .collect();
    alert_rule::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

impl Store {
    pub async fn create_alert_rule(
        &self,
        tenant: TenantId,
        spec: &RuleSpec,
    ) -> StoreResult<alert_rule::Model> {
        Ok(rule_row(tenant, spec, now())
            .insert(self.connection())
            .await?)
    }

    pub async fn find_alert_rule(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Option<alert_rule::Model>> {
        crate::scoped::find::<alert_rule::Entity>(self.connection(), tenant, id).await
    }

    pub async fn list_alert_rules(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<alert_rule::Model>> {
        crate::scoped::list::<alert_rule::Entity>(self.connection(), tenant, page).await
    }

    /// Every enabled rule of the tenant.
    pub async fn enabled_alert_rules(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<alert_rule::Model>> {
        Ok(alert_rule::Entity::find()
            .filter(alert_rule::Column::TenantId.eq(tenant.as_uuid()))
            .filter(alert_rule::Column::Enabled.eq(true))
            .order_by_asc(alert_rule::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Replaces a rule's settings (its kind never changes). Disabling it resolves its open alerts.
    pub async fn update_alert_rule(
        &self,
        tenant: TenantId,
        id: Uuid,
        spec: &RuleSpec,
    ) -> StoreResult<Option<alert_rule::Model>> {
        let Some(row) = self.find_alert_rule(tenant, id).await? else {
            return Ok(None);
        };
        if row.kind != spec.kind {
            return Err(StoreError::Corrupt("a rule's kind cannot change".into()));
        }
        let mut active: alert_rule::ActiveModel = row.into();
        active.name = Set(spec.name.clone());
        active.enabled = Set(spec.enabled);
        active.threshold = Set(spec.threshold);
        active.window_minutes = Set(spec.window_minutes);
        active.cooldown_minutes = Set(spec.cooldown_minutes);
        active.min_volume = Set(spec.min_volume);
        active.scope = Set(spec.scope.clone());
        active.scope_value = Set(spec.scope_value.clone());
        active.updated_at = Set(now());
        let txn = self.connection().begin().await?;
        let row = active.update(&txn).await?;
        if !row.enabled {
            for a in open_alerts_of_rule(&txn, tenant, id).await? {
                resolve_alert_in(&txn, tenant, &a, "the rule was disabled", now(), Vec::new())
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(Some(row))
    }

    /// Deletes a rule. Its open alerts are resolved first; its alerts stay in the history without a rule.
    pub async fn delete_alert_rule(&self, tenant: TenantId, id: Uuid) -> StoreResult<bool> {
        let txn = self.connection().begin().await?;
        if crate::scoped::find::<alert_rule::Entity>(&txn, tenant, id)
            .await?
            .is_none()
        {
            txn.rollback().await?;
            return Ok(false);
        }
        for a in open_alerts_of_rule(&txn, tenant, id).await? {
            resolve_alert_in(&txn, tenant, &a, "the rule was deleted", now(), Vec::new()).await?;
        }
        // Explicitly, so history keeps its alerts whether or not the backend enforces ON DELETE SET NULL.
        alert::Entity::update_many()
            .col_expr(alert::Column::RuleId, Expr::value(Option::<Uuid>::None))
            .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
            .filter(alert::Column::RuleId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = crate::scoped::delete::<alert_rule::Entity>(&txn, tenant, id).await?;
        txn.commit().await?;
        Ok(deleted)
    }

    /// The rule's open alerts.
    pub async fn open_alerts_of_rule(
        &self,
        tenant: TenantId,
        rule: Uuid,
    ) -> StoreResult<Vec<alert::Model>> {
        open_alerts_of_rule(self.connection(), tenant, rule).await
    }

    /// [`open_alert_in`] in its own transaction.
    pub async fn open_alert(
        &self,
        tenant: TenantId,
        new: &OpenAlert,
        at: DateTime<Utc>,
        extra: Vec<NewEvent>,
    ) -> StoreResult<Option<alert::Model>> {
        open_alert_in(self.connection(), tenant, new, at, extra).await
    }

    /// [`resolve_alert_in`] in its own transaction.
    pub async fn resolve_alert(
        &self,
        tenant: TenantId,
        a: &alert::Model,
        resolution: &str,
        at: DateTime<Utc>,
        extra: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        resolve_alert_in(self.connection(), tenant, a, resolution, at, extra).await
    }

    /// Records that an open alert's condition still holds, with the latest measurement.
    pub async fn touch_alert(
        &self,
        tenant: TenantId,
        id: Uuid,
        value: Option<f64>,
        details: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        alert::Entity::update_many()
            .col_expr(alert::Column::Value, Expr::value(value))
            .col_expr(alert::Column::Details, Expr::value(details.to_string()))
            .col_expr(alert::Column::LastSeenAt, Expr::value(at))
            .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
            .filter(alert::Column::Id.eq(id))
            .filter(alert::Column::Status.eq(ALERT_OPEN))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Alerts, newest first.
    pub async fn list_alerts(
        &self,
        tenant: TenantId,
        filter: &AlertFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Page<alert::Model>> {
        let mut q = alert::Entity::find()
            .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_desc(alert::Column::Id);
        if let Some(s) = &filter.status {
            q = q.filter(alert::Column::Status.eq(s.as_str()));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(alert::Column::Kind.eq(k.as_str()));
        }
        if let Some(r) = filter.rule_id {
            q = q.filter(alert::Column::RuleId.eq(r));
        }
        if let Some(b) = before {
            q = q.filter(alert::Column::Id.lt(b));
        }
        let rows = q.limit(limit + 1).all(self.connection()).await?;
        Ok(crate::into_page(
            rows,
            PageRequest {
                after: before,
                limit,
            },
            |r| r.id,
        ))
    }

    /// Attempts in `[from, to)` counted by outcome, per `group` (`sender_domain` or `provider`; rows without one are
    /// left out) or overall, optionally only for one value of the group.
    pub async fn window_counts(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: Option<&str>,
        only: Option<&str>,
    ) -> StoreResult<Vec<WindowCounts>> {
        // The only column names that reach the SQL text, from a fixed list.
        let column = match group {
            None => None,
            Some(SCOPE_SENDER_DOMAIN) => Some("sender_domain"),
            Some(SCOPE_PROVIDER) => Some("provider"),
            Some(other) => {
                return Err(StoreError::Corrupt(format!("unknown alert scope {other}")));
            }
        };
        let mut sql = Sql::new(self.connection().get_database_backend());
        match column {
            Some(c) => sql.push("SELECT ").push(c).push(" AS grp, "),
            None => sql.push("SELECT NULL AS grp, "),
        };
        for (name, status) in [
            ("sent", "sent"),
            ("deferred", "deferred"),
            ("bounced", "bounced"),
        ] {
            sql.push("CAST(SUM(CASE WHEN status = ")
                .bind(status)
                .push(&format!(" THEN 1 ELSE 0 END) AS BIGINT) AS {name}, "));
        }
        sql.push("CAST(SUM(CASE WHEN status IN (")
            .bind("expired")
            .push(", ")
            .bind("force-expired")
            .push(") THEN 1 ELSE 0 END) AS BIGINT) AS expired, ");
        sql.push("CAST(SUM(CASE WHEN status = ")
            .bind("bounced")
            .push(" AND bounce_severity = ")
            .bind("hard")
            .push(" THEN 1 ELSE 0 END) AS BIGINT) AS hard_bounced, ");
        sql.push("CAST(COUNT(*) AS BIGINT) AS total FROM deliveries WHERE tenant_id = ")
            .bind(tenant.as_uuid())
            .push(" AND attempt_unix >= ")
            .bind(from.timestamp())
            .push(" AND attempt_unix < ")
            .bind(to.timestamp());
        if let Some(c) = column {
            sql.push(" AND ").push(c).push(" IS NOT NULL");
            if let Some(v) = only {
                sql.push(" AND ")
                    .push(c)
                    .push(" = ")
                    .bind(v.to_ascii_lowercase());
            }
            sql.push(" GROUP BY ").push(c).push(" ORDER BY ").push(c);
        }
        let rows = self.connection().query_all_raw(sql.statement()).await?;
        let mut out = Vec::new();
        for r in &rows {
            let total = get_i64(r, "total")?;
            if total == 0 {
                continue; // overall with no rows: SUMs are NULL
            }
            out.push(WindowCounts {
                group: r
                    .try_get::<Option<String>>("", "grp")
                    .map_err(StoreError::Db)?,
                sent: get_i64(r, "sent")?,
                deferred: get_i64(r, "deferred")?,
                bounced: get_i64(r, "bounced")?,
                expired: get_i64(r, "expired")?,
                hard_bounced: get_i64(r, "hard_bounced")?,
                total,
            });
        }
        Ok(out)
    }

    /// The tenant's open blocklist listings as (subject, zone).
    pub async fn open_blocklist_listings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<(String, String)>> {
        open_listings(self.connection(), tenant).await
    }
}

async fn open_alerts_of_rule(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    rule: Uuid,
) -> StoreResult<Vec<alert::Model>> {
    Ok(alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant.as_uuid()))
        .filter(alert::Column::RuleId.eq(rule))
        .filter(alert::Column::Status.eq(ALERT_OPEN))
        .order_by_asc(alert::Column::Id)
        .all(db)
        .await?)
}

fn rule_row(tenant: TenantId, spec: &RuleSpec, at: DateTime<Utc>) -> alert_rule::ActiveModel {
    alert_rule::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.as_uuid()),
        name: Set(spec.name.clone()),
        kind: Set(spec.kind.clone()),
        enabled: Set(spec.enabled),
        threshold: Set(spec.threshold),
        window_minutes: Set(spec.window_minutes),
        cooldown_minutes: Set(spec.cooldown_minutes),
        min_volume: Set(spec.min_volume),
        scope: Set(spec.scope.clone()),
        scope_value: Set(spec.scope_value.clone()),
        created_at: Set(at),
        updated_at: Set(at),
    }
}
