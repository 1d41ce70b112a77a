//! Alert rules (what to watch, with a threshold, window, cool-down and scope) and the alerts they open. The worker
//! evaluates enabled rules every minute; each alert also goes out as `alert.triggered` / `alert.resolved`.

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ValidJson;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing, required_name};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use relaywatch_store::alerts::{
    self as store_alerts, ALERT_OPEN, ALERT_RESOLVED, AlertFilter, RuleSpec, SCOPE_OVERALL,
    SCOPE_PROVIDER, SCOPE_SENDER_DOMAIN,
};
use relaywatch_store::entities::{alert, alert_rule};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// `sent / (sent + bounced + expired)` below `threshold` % over `window_minutes` (scope: overall, per sender
    /// domain or per provider), once at least `min_volume` outcomes were seen.
    AcceptanceRateBelow,
    /// Hard bounces above `threshold` % of the outcomes over `window_minutes` (scope as above).
    HardBounceRateAbove,
    /// At least `threshold` % of the attempts to one provider deferred over `window_minutes`.
    ProviderDeferralSpike,
    /// At least `threshold` % of the attempts to one provider bounced over `window_minutes`.
    ProviderBounceSpike,
    /// Any sending IP or domain on a blocklist (`scope_value`: only this subject).
    BlocklistListed,
    /// A domain audit found errors the run before did not have (`scope_value`: only this domain).
    AuditRegressed,
    /// No heartbeat or batch from an agent for `window_minutes` (`scope_value`: only this host).
    AgentSilent,
}

impl AlertKind {
    fn as_str(self) -> &'static str {
        match self {
            AlertKind::AcceptanceRateBelow => store_alerts::ACCEPTANCE_RATE_BELOW,
            AlertKind::HardBounceRateAbove => store_alerts::HARD_BOUNCE_RATE_ABOVE,
            AlertKind::ProviderDeferralSpike => store_alerts::PROVIDER_DEFERRAL_SPIKE,
            AlertKind::ProviderBounceSpike => store_alerts::PROVIDER_BOUNCE_SPIKE,
            AlertKind::BlocklistListed => store_alerts::BLOCKLIST_LISTED,
            AlertKind::AuditRegressed => store_alerts::AUDIT_REGRESSED,
            AlertKind::AgentSilent => store_alerts::AGENT_SILENT,
        }
    }

    fn from_stored(s: &str) -> Option<Self> {
        [
            AlertKind::AcceptanceRateBelow,
            AlertKind::HardBounceRateAbove,
            AlertKind::ProviderDeferralSpike,
            AlertKind::ProviderBounceSpike,
            AlertKind::BlocklistListed,
            AlertKind::AuditRegressed,
            AlertKind::AgentSilent,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    fn default_name(self) -> &'static str {
        match self {
            AlertKind::AcceptanceRateBelow => "Acceptance rate below threshold",
            AlertKind::HardBounceRateAbove => "Hard bounce rate above threshold",
            AlertKind::ProviderDeferralSpike => "Deferral spike at a provider",
            AlertKind::ProviderBounceSpike => "Bounce spike at a provider",
            AlertKind::BlocklistListed => "Listed on a blocklist",
            AlertKind::AuditRegressed => "New errors in a domain audit",
            AlertKind::AgentSilent => "Agent silent",
        }
    }

    fn is_rate(self) -> bool {
        matches!(
            self,
            AlertKind::AcceptanceRateBelow
                | AlertKind::HardBounceRateAbove
                | AlertKind::ProviderDeferralSpike
                | AlertKind::ProviderBounceSpike
        )
    }
}

/// What a rate rule is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertScope {
    /// All of the tenant's mail.
    Overall,
    /// Each sender domain on its own.
    SenderDomain,
    /// Each recipient mailbox provider (google, microsoft, yahoo, ...) on its own.
    Provider,
}

impl AlertScope {
    fn as_str(self) -> &'static str {
        match self {
            AlertScope::Overall => SCOPE_OVERALL,
            AlertScope::SenderDomain => SCOPE_SENDER_DOMAIN,
            AlertScope::Provider => SCOPE_PROVIDER,
        }
    }

    fn from_stored(s: &str) -> Option<Self> {
        [
            AlertScope::Overall,
            AlertScope::SenderDomain,
            AlertScope::Provider,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An alert rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRule {
    pub id: Uuid,
    pub name: String,
    pub kind: AlertKind,
    pub enabled: bool,
    /// A percentage (rate rules).
    pub threshold: Option<f64>,
    /// Minutes of data a rate rule looks at; minutes of silence for `agent_silent`.
    pub window_minutes: Option<i32>,
    /// After an alert of this rule and scope is resolved, no new one opens for this many minutes.
    pub cooldown_minutes: i32,
    /// Rate rules judge nothing on fewer outcomes (or attempts) than this in the window.
    pub min_volume: Option<i32>,
    pub scope: Option<AlertScope>,
    /// Only this sender domain, provider, blocklisted subject, audited domain or agent host.
    pub scope_value: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<alert_rule::Model> for AlertRule {
    type Error = ApiError;
    fn try_from(r: alert_rule::Model) -> Result<Self, ApiError> {
        Ok(Self {
            kind: AlertKind::from_stored(&r.kind)
                .ok_or_else(|| ApiError::internal(format!("stored rule kind {}", r.kind)))?,
            scope: r.scope.as_deref().and_then(AlertScope::from_stored),
            id: r.id,
            name: r.name,
            enabled: r.enabled,
            threshold: r.threshold,
            window_minutes: r.window_minutes,
            cooldown_minutes: r.cooldown_minutes,
            min_volume: r.min_volume,
            scope_value: r.scope_value,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlertRule {
    pub kind: AlertKind,
    /// Default: a name describing the kind.
    #[schema(example = "Gmail acceptance below 80 %")]
    pub name: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Rate rules: a percentage above 0 and at most 100 (required). Other kinds take none.
    #[schema(example = 80.0)]
    pub threshold: Option<f64>,
    /// Rate rules: 1 to 10080 minutes (default 60). `agent_silent`: 2 to 10080 (default 15).
    #[schema(example = 30)]
    pub window_minutes: Option<i32>,
    /// 0 to 10080 (default 60).
    pub cooldown_minutes: Option<i32>,
    /// Rate rules: 1 or more (default 20).
    pub min_volume: Option<i32>,
    /// `acceptance_rate_below`, `hard_bounce_rate_above`: overall (default), sender_domain or provider.
    /// The spike kinds: provider.
    pub scope: Option<AlertScope>,
    /// Only this sender domain or provider (rate rules scoped by one), blocklisted subject, audited domain or
    /// agent host.
    #[schema(example = "google")]
    pub scope_value: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleUpdate {
    pub name: Option<String>,
    /// False pauses the rule and resolves its open alerts.
    pub enabled: Option<bool>,
    pub threshold: Option<f64>,
    pub window_minutes: Option<i32>,
    pub cooldown_minutes: Option<i32>,
    pub min_volume: Option<i32>,
    pub scope: Option<AlertScope>,
    /// An empty string clears it.
    pub scope_value: Option<String>,
}

const MAX_WINDOW: i32 = 7 * 24 * 60;

/// Applies defaults and checks a rule's settings against what its kind uses.
fn validate(kind: AlertKind, spec: RuleSpec) -> ApiResult<RuleSpec> {
    let mut spec = spec;
    spec.name = required_name("name", &spec.name, 200)?;
    if !(0..=MAX_WINDOW).contains(&spec.cooldown_minutes) {
        return Err(ApiError::invalid_field(
            "cooldown_minutes",
            format!("must be between 0 and {MAX_WINDOW}"),
        ));
    }
    spec.scope_value = match spec.scope_value.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.len() > 253 || v.chars().any(char::is_control) => {
            return Err(ApiError::invalid_field(
                "scope_value",
                "must be at most 253 characters, without control characters",
            ));
        }
        Some(v) => Some(v.to_ascii_lowercase()),
    };
    let unused = |field: &str| {
        ApiError::invalid_field(field, format!("does not apply to {} rules", kind.as_str()))
    };
    if kind.is_rate() {
        match spec.threshold {
            Some(t) if t > 0.0 && t <= 100.0 => {}
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "threshold",
                    "a percentage above 0 and at most 100",
                ));
            }
            None => {
                return Err(ApiError::invalid_field(
                    "threshold",
                    "required: a percentage above 0 and at most 100",
                ));
            }
        }
        let window = spec.window_minutes.unwrap_or(60);
        if !(1..=MAX_WINDOW).contains(&window) {
            return Err(ApiError::invalid_field(
                "window_minutes",
                format!("must be between 1 and {MAX_WINDOW}"),
            ));
        }
        spec.window_minutes = Some(window);
        let volume = spec.min_volume.unwrap_or(20);
        if volume < 1 {
            return Err(ApiError::invalid_field("min_volume", "must be 1 or more"));
        }
        spec.min_volume = Some(volume);
        let spike = matches!(
            kind,
            AlertKind::ProviderDeferralSpike | AlertKind::ProviderBounceSpike
        );
        let scope = spec.scope.clone().unwrap_or_else(|| {
            if spike {
                SCOPE_PROVIDER.into()
            } else {
                SCOPE_OVERALL.into()
            }
        });
        if spike && scope != SCOPE_PROVIDER {
            return Err(ApiError::invalid_field(
                "scope",
                "a provider spike is watched per provider: scope must be provider",
            ));
        }
        if scope == SCOPE_OVERALL && spec.scope_value.is_some() {
            return Err(ApiError::invalid_field(
                "scope_value",
                "an overall rule has no scope value; use scope sender_domain or provider",
            ));
        }
        spec.scope = Some(scope);
    } else {
        if spec.threshold.is_some() {
            return Err(unused("threshold"));
        }
        if spec.min_volume.is_some() {
            return Err(unused("min_volume"));
        }
        if spec.scope.is_some() {
            return Err(unused("scope"));
        }
        if kind == AlertKind::AgentSilent {
            let window = spec.window_minutes.unwrap_or(15);
            if !(2..=MAX_WINDOW).contains(&window) {
                return Err(ApiError::invalid_field(
                    "window_minutes",
                    format!("minutes of silence, between 2 and {MAX_WINDOW}"),
                ));
            }
            spec.window_minutes = Some(window);
        } else if spec.window_minutes.is_some() {
            return Err(unused("window_minutes"));
        }
    }
    Ok(spec)
}

/// Create an alert rule.
#[utoipa::path(
    tag = "alerts",
    request_body = NewAlertRule,
    responses((status = 201, description = "Created", body = AlertRule), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/alert-rules")]
pub async fn create_rule(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<NewAlertRule>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let spec = validate(
        b.kind,
        RuleSpec {
            name: b.name.unwrap_or_else(|| b.kind.default_name().to_string()),
            kind: b.kind.as_str().to_string(),
            enabled: b.enabled.unwrap_or(true),
            threshold: b.threshold,
            window_minutes: b.window_minutes,
            cooldown_minutes: b.cooldown_minutes.unwrap_or(60),
            min_volume: b.min_volume,
            scope: b.scope.map(|s| s.as_str().to_string()),
            scope_value: b.scope_value,
        },
    )?;
    let row = state.store.create_alert_rule(auth.tenant, &spec).await?;
    Ok(HttpResponse::Created().json(AlertRule::try_from(row)?))
}

listing!(AlertRuleList, AlertRule);

/// The tenant's alert rules (new tenants start with a default set).
#[utoipa::path(
    tag = "alerts",
    params(ListParams),
    responses((status = 200, description = "One page of rules", body = AlertRuleList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/alert-rules")]
pub async fn list_rules(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<AlertRuleList>> {
    let page = state.store.list_alert_rules(auth.tenant, q.page()?).await?;
    let items = page
        .items
        .into_iter()
        .map(AlertRule::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(web::Json(AlertRuleList {
        items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One alert rule.
#[utoipa::path(
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Alert rule id")),
    responses((status = 200, description = "The rule", body = AlertRule), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/alert-rules/{id}")]
pub async fn get_rule(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<AlertRule>> {
    let row = state
        .store
        .find_alert_rule(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert rule"))?;
    Ok(web::Json(row.try_into()?))
}

/// Change an alert rule (its kind stays). Disabling it resolves its open alerts.
#[utoipa::path(
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Alert rule id")),
    request_body = AlertRuleUpdate,
    responses((status = 200, description = "Updated", body = AlertRule), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[patch("/v1/alert-rules/{id}")]
pub async fn update_rule(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: ValidJson<AlertRuleUpdate>,
) -> ApiResult<web::Json<AlertRule>> {
    let b = body.into_inner();
    let row = state
        .store
        .find_alert_rule(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert rule"))?;
    let kind = AlertKind::from_stored(&row.kind)
        .ok_or_else(|| ApiError::internal(format!("stored rule kind {}", row.kind)))?;
    let mut spec = RuleSpec::from_model(&row);
    if let Some(n) = b.name {
        spec.name = n;
    }
    if let Some(e) = b.enabled {
        spec.enabled = e;
    }
    if b.threshold.is_some() {
        spec.threshold = b.threshold;
    }
    if b.window_minutes.is_some() {
        spec.window_minutes = b.window_minutes;
    }
    if let Some(c) = b.cooldown_minutes {
        spec.cooldown_minutes = c;
    }
    if b.min_volume.is_some() {
        spec.min_volume = b.min_volume;
    }
    if let Some(s) = b.scope {
        spec.scope = Some(s.as_str().to_string());
    }
    if let Some(v) = b.scope_value {
        spec.scope_value = Some(v);
    }
    let spec = validate(kind, spec)?;
    let row = state
        .store
        .update_alert_rule(auth.tenant, *id, &spec)
        .await?
        .ok_or_else(|| ApiError::not_found("alert rule"))?;
    Ok(web::Json(row.try_into()?))
}

/// Delete an alert rule. Its open alerts are resolved; its alerts stay in the history.
#[utoipa::path(
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Alert rule id")),
    responses((status = 204, description = "Deleted"), DeleteErrors),
    security(("bearer" = ["write"]))
)]
#[delete("/v1/alert-rules/{id}")]
pub async fn delete_rule(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if state.store.delete_alert_rule(auth.tenant, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("alert rule"))
    }
}

/// An alert: a rule's condition for one scope, from when it started to hold until it stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    pub id: Uuid,
    /// None for alerts Relaywatch raises itself (`webhook_disabled`) and after the rule was deleted.
    pub rule_id: Option<Uuid>,
    /// The rule's kind, or `webhook_disabled`.
    #[schema(example = "provider_deferral_spike")]
    pub kind: String,
    /// What it is about: `overall`, `provider:google`, `sender_domain:mail.example.com`,
    /// `blocklist:zen.spamhaus.org:192.0.2.10`, `domain:example.com`, `agent:mx1`, `webhook:<id>`.
    #[schema(example = "provider:google")]
    pub scope: String,
    /// `open` or `resolved`.
    pub status: String,
    pub summary: String,
    /// The measurement (a percentage for rate rules, minutes for silence) when last evaluated.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// What the rule saw: counts, listings, findings.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub opened_at: DateTime<Utc>,
    /// The last evaluation at which the condition held.
    pub last_seen_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

impl From<alert::Model> for Alert {
    fn from(a: alert::Model) -> Self {
        Self {
            details: serde_json::from_str(&a.details).unwrap_or_default(),
            id: a.id,
            rule_id: a.rule_id,
            kind: a.kind,
            scope: a.scope_key,
            status: a.status,
            summary: a.summary,
            value: a.value,
            threshold: a.threshold,
            opened_at: a.opened_at,
            last_seen_at: a.last_seen_at,
            resolved_at: a.resolved_at,
            resolution: a.resolution,
        }
    }
}

listing!(AlertList, Alert);

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertListParams {
    /// `open` or `resolved`; both when absent.
    pub status: Option<String>,
    /// Only alerts of this kind (`acceptance_rate_below`, ..., `webhook_disabled`).
    pub kind: Option<String>,
    /// Only alerts of this rule.
    pub rule_id: Option<Uuid>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Open and resolved alerts, newest first.
#[utoipa::path(
    tag = "alerts",
    params(AlertListParams),
    responses((status = 200, description = "One page of alerts", body = AlertList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/alerts")]
pub async fn list_alerts(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<AlertListParams>,
) -> ApiResult<web::Json<AlertList>> {
    let q = q.into_inner();
    let page = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    if let Some(s) = &q.status
        && s != ALERT_OPEN
        && s != ALERT_RESOLVED
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "status must be open or resolved",
        ));
    }
    let filter = AlertFilter {
        status: q.status,
        kind: q.kind,
        rule_id: q.rule_id,
    };
    let rows = state
        .store
        .list_alerts(auth.tenant, &filter, page.after, page.limit)
        .await?;
    Ok(web::Json(AlertList::from_page(rows, Alert::from)))
}
