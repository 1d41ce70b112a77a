//! Alert rule evaluation: every minute, every enabled rule of every tenant is compared with the stored data. A
//! scope in breach without an open alert opens one (unless the cool-down since the last one's resolution is still
//! running); an open alert whose scope is no longer in breach is resolved. The store keeps it to one open alert per
//! rule and scope, also when several nodes evaluate at once.

use chrono::{DateTime, Duration, Utc};
use relaywatch_audit::{Finding, Report, Severity};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as types;
use relaywatch_store::alerts::{
    ACCEPTANCE_RATE_BELOW, AGENT_SILENT, AUDIT_REGRESSED, BLOCKLIST_LISTED, HARD_BOUNCE_RATE_ABOVE,
    OpenAlert, PROVIDER_BOUNCE_SPIKE, PROVIDER_DEFERRAL_SPIKE, SCOPE_OVERALL,
};
use relaywatch_store::entities::{agent, alert, alert_rule};
use relaywatch_store::events::NewEvent;
use relaywatch_store::{PageRequest, Store, StoreResult};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What one evaluation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub opened: usize,
    pub resolved: usize,
}

impl std::ops::AddAssign for Evaluation {
    fn add_assign(&mut self, o: Self) {
        self.opened += o.opened;
        self.resolved += o.resolved;
    }
}

/// A scope in breach of a rule.
struct Breach {
    scope_key: String,
    value: Option<f64>,
    summary: String,
    details: serde_json::Value,
    /// Events that go out with `alert.triggered` when this opens an alert.
    on_open: Vec<NewEvent>,
}

/// Evaluates every tenant's rules at `now`.
pub async fn evaluate_all(store: &Store, now: DateTime<Utc>) -> StoreResult<Evaluation> {
    let mut total = Evaluation::default();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let tenants = store.list_all_tenants(page).await?;
        for t in &tenants.items {
            match evaluate_tenant(store, TenantId(t.id), now).await {
                Ok(e) => total += e,
                // One tenant's trouble does not stop the others' alerts.
                Err(e) => tracing::warn!(tenant = %t.id, error = %e, "alert evaluation failed"),
            }
        }
        match tenants.next_cursor {
            Some(c) => page.after = Some(c),
            None => return Ok(total),
        }
    }
}

/// Evaluates one tenant's enabled rules at `now`.
pub async fn evaluate_tenant(
    store: &Store,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> StoreResult<Evaluation> {
    let mut total = Evaluation::default();
    for rule in store.enabled_alert_rules(tenant).await? {
        total += evaluate_rule(store, tenant, &rule, now).await?;
    }
    Ok(total)
}

/// Evaluates one rule at `now`.
pub async fn evaluate_rule(
    store: &Store,
    tenant: TenantId,
    rule: &alert_rule::Model,
    now: DateTime<Utc>,
) -> StoreResult<Evaluation> {
    let listings = if rule.kind == BLOCKLIST_LISTED {
        store.open_blocklist_listings(tenant).await?
    } else {
        Vec::new()
    };
    evaluate_rule_with_listings(store, tenant, rule, now, listings).await
}

/// [`evaluate_rule`] with the blocklist listings (subject, zone) a `blocklist_listed` rule sees given by the caller
/// instead of read from the store (tests; other kinds ignore them).
pub async fn evaluate_rule_with_listings(
    store: &Store,
    tenant: TenantId,
    rule: &alert_rule::Model,
    now: DateTime<Utc>,
    listings: Vec<(String, String)>,
) -> StoreResult<Evaluation> {
    let open = store.open_alerts_of_rule(tenant, rule.id).await?;
    let mut agents = BTreeMap::new();
    let breaches = match rule.kind.as_str() {
        ACCEPTANCE_RATE_BELOW
        | HARD_BOUNCE_RATE_ABOVE
        | PROVIDER_DEFERRAL_SPIKE
        | PROVIDER_BOUNCE_SPIKE => rate_breaches(store, tenant, rule, now).await?,
        BLOCKLIST_LISTED => listing_breaches(rule, listings),
        AUDIT_REGRESSED => audit_breaches(store, tenant, rule, &open).await?,
        AGENT_SILENT => {
            agents = tenant_agents(store, tenant).await?;
            silence_breaches(rule, &agents, now)
        }
        other => {
            tracing::warn!(rule = %rule.id, kind = other, "unknown alert rule kind");
            return Ok(Evaluation::default());
        }
    };
    let mut result = Evaluation::default();
    let breached: BTreeSet<&str> = breaches.iter().map(|b| b.scope_key.as_str()).collect();
    for b in &breaches {
        if let Some(a) = open.iter().find(|a| a.scope_key == b.scope_key) {
            store
                .touch_alert(tenant, a.id, b.value, &b.details, now)
                .await?;
            continue;
        }
        let new = OpenAlert {
            rule: Some((rule.id, rule.name.clone())),
            kind: rule.kind.clone(),
            scope_key: b.scope_key.clone(),
            summary: b.summary.clone(),
            value: b.value,
            threshold: rule.threshold,
            details: b.details.clone(),
            cooldown_minutes: rule.cooldown_minutes,
        };
        if store
            .open_alert(tenant, &new, now, b.on_open.clone())
            .await?
            .is_some()
        {
            result.opened += 1;
        }
    }
    for a in open
        .iter()
        .filter(|a| !breached.contains(a.scope_key.as_str()))
    {
        let (resolution, extra) = resolution_of(rule, a, &agents, now);
        if store
            .resolve_alert(tenant, a, &resolution, now, extra)
            .await?
        {
            result.resolved += 1;
        }
    }
    Ok(result)
}

fn pct(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

async fn rate_breaches(
    store: &Store,
    tenant: TenantId,
    rule: &alert_rule::Model,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Breach>> {
    let Some(threshold) = rule.threshold else {
        return Ok(Vec::new());
    };
    let window = i64::from(rule.window_minutes.unwrap_or(60).max(1));
    let min_volume = i64::from(rule.min_volume.unwrap_or(1).max(1));
    let scope = rule.scope.as_deref().unwrap_or(SCOPE_OVERALL);
    let group = (scope != SCOPE_OVERALL).then_some(scope);
    let from = now - Duration::minutes(window);
    let rows = store
        .window_counts(tenant, from, now, group, rule.scope_value.as_deref())
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let (volume, part, breach, what) = match rule.kind.as_str() {
            ACCEPTANCE_RATE_BELOW => {
                let v = row.outcomes();
                let rate = pct(row.sent, v);
                (v, row.sent, rate < threshold, "accepted")
            }
            HARD_BOUNCE_RATE_ABOVE => {
                let v = row.outcomes();
                let rate = pct(row.hard_bounced, v);
                (v, row.hard_bounced, rate > threshold, "hard-bounced")
            }
            PROVIDER_DEFERRAL_SPIKE => {
                let rate = pct(row.deferred, row.total);
                (row.total, row.deferred, rate >= threshold, "deferred")
            }
            _ => {
                let rate = pct(row.bounced, row.total);
                (row.total, row.bounced, rate >= threshold, "bounced")
            }
        };
        if volume < min_volume || !breach {
            continue;
        }
        let value = pct(part, volume);
        let (scope_key, subject) = match &row.group {
            Some(g) => (
                format!("{scope}:{g}"),
                format!("{} {g}", scope.replace('_', " ")),
            ),
            None => (SCOPE_OVERALL.to_string(), "all mail".to_string()),
        };
        let counted = if matches!(
            rule.kind.as_str(),
            ACCEPTANCE_RATE_BELOW | HARD_BOUNCE_RATE_ABOVE
        ) {
            "final outcomes"
        } else {
            "attempts"
        };
        out.push(Breach {
            summary: format!(
                "{value} % of {counted} {what} for {subject} over the last {window} minutes ({part} of {volume}; threshold {threshold} %)"
            ),
            details: json!({
                "window_minutes": window,
                "from": from,
                "to": now,
                "group": row.group,
                "sent": row.sent,
                "deferred": row.deferred,
                "bounced": row.bounced,
                "expired": row.expired,
                "hard_bounced": row.hard_bounced,
                "attempts": row.total,
                "rate_percent": value,
                "threshold_percent": threshold,
            }),
            value: Some(value),
            scope_key,
            on_open: Vec::new(),
        });
    }
    Ok(out)
}

fn listing_breaches(rule: &alert_rule::Model, listings: Vec<(String, String)>) -> Vec<Breach> {
    listings
        .into_iter()
        .filter(|(subject, _)| {
            rule.scope_value
                .as_deref()
                .is_none_or(|only| subject.eq_ignore_ascii_case(only))
        })
        .map(|(subject, zone)| Breach {
            scope_key: format!("blocklist:{zone}:{subject}"),
            value: None,
            summary: format!("{subject} is listed on {zone}"),
            details: json!({ "subject": subject, "zone": zone }),
            on_open: Vec::new(),
        })
        .collect()
}

fn error_keys(findings: &[Finding]) -> BTreeMap<(String, String), &Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.key(), f))
        .collect()
}

/// A domain is in breach while errors that appeared in a run (compared with the run before) are still there.
async fn audit_breaches(
    store: &Store,
    tenant: TenantId,
    rule: &alert_rule::Model,
    open: &[alert::Model],
) -> StoreResult<Vec<Breach>> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let domains = store.list_sending_domains(tenant, page).await?;
        for d in &domains.items {
            if rule
                .scope_value
                .as_deref()
                .is_some_and(|only| !d.domain.eq_ignore_ascii_case(only))
            {
                continue;
            }
            let runs = store.latest_completed_audits(tenant, d.id, 2).await?;
            let Some(latest) = runs.first() else {
                continue;
            };
            let report: Option<Report> = latest
                .report
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok());
            let current = report
                .as_ref()
                .map(|r| r.findings.as_slice())
                .unwrap_or(&[]);
            let current = error_keys(current);
            // New errors of the latest run count only when there was a run before it to compare with.
            let new: Vec<Finding> = if runs.len() > 1 {
                latest
                    .new_findings
                    .as_deref()
                    .and_then(|j| serde_json::from_str::<Vec<Finding>>(j).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f.severity == Severity::Error)
                    .collect()
            } else {
                Vec::new()
            };
            let scope_key = format!("domain:{}", d.domain);
            let mut keys: BTreeMap<(String, String), Finding> = BTreeMap::new();
            if let Some(a) = open.iter().find(|a| a.scope_key == scope_key) {
                let seen: Vec<Finding> = serde_json::from_str::<serde_json::Value>(&a.details)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["findings"].clone()).ok())
                    .unwrap_or_default();
                for f in seen {
                    if let Some(now) = current.get(&f.key()) {
                        keys.insert(f.key(), (*now).clone());
                    }
                }
            }
            for f in new {
                keys.insert(f.key(), f);
            }
            if keys.is_empty() {
                continue;
            }
            let findings: Vec<Finding> = keys.into_values().collect();
            let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
            out.push(Breach {
                summary: format!(
                    "The audit of {} found {} new error{}: {}",
                    d.domain,
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" },
                    codes.join(", ")
                ),
                value: Some(findings.len() as f64),
                details: json!({
                    "domain": d.domain,
                    "audit_run_id": latest.id,
                    "findings": findings,
                }),
                scope_key,
                on_open: Vec::new(),
            });
        }
        match domains.next_cursor {
            Some(c) => page.after = Some(c),
            None => return Ok(out),
        }
    }
}

async fn tenant_agents(
    store: &Store,
    tenant: TenantId,
) -> StoreResult<BTreeMap<String, agent::Model>> {
    let mut out = BTreeMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let agents = store.list_agents(tenant, page).await?;
        for a in agents.items {
            out.insert(a.host_name.to_ascii_lowercase(), a);
        }
        match agents.next_cursor {
            Some(c) => page.after = Some(c),
            None => return Ok(out),
        }
    }
}

fn silence_breaches(
    rule: &alert_rule::Model,
    agents: &BTreeMap<String, agent::Model>,
    now: DateTime<Utc>,
) -> Vec<Breach> {
    let window = i64::from(rule.window_minutes.unwrap_or(15).max(1));
    agents
        .values()
        .filter(|a| {
            rule.scope_value
                .as_deref()
                .is_none_or(|only| a.host_name.eq_ignore_ascii_case(only))
        })
        .filter_map(|a| {
            let last = a.last_seen_at.unwrap_or(a.created_at);
            let silent = (now - last).num_minutes();
            (silent >= window).then(|| {
                let data = json!({
                    "agent_id": a.id,
                    "host_name": a.host_name,
                    "last_seen_at": a.last_seen_at,
                    "silent_minutes": silent,
                    "threshold_minutes": window,
                });
                Breach {
                    scope_key: format!("agent:{}", a.host_name.to_ascii_lowercase()),
                    value: Some(silent as f64),
                    summary: format!(
                        "Agent {} has not reported for {silent} minutes (threshold {window})",
                        a.host_name
                    ),
                    details: data.clone(),
                    on_open: vec![NewEvent::new(types::AGENT_SILENT, data).at(now)],
                }
            })
        })
        .collect()
}

/// Why an open alert is resolved now, and what else to announce with it.
fn resolution_of(
    rule: &alert_rule::Model,
    a: &alert::Model,
    agents: &BTreeMap<String, agent::Model>,
    now: DateTime<Utc>,
) -> (String, Vec<NewEvent>) {
    match rule.kind.as_str() {
        AGENT_SILENT => {
            let host = a.scope_key.trim_start_matches("agent:");
            match agents.get(host) {
                Some(ag) => (
                    format!("agent {} reports again", ag.host_name),
                    vec![
                        NewEvent::new(
                            types::AGENT_RECOVERED,
                            json!({
                                "agent_id": ag.id,
                                "host_name": ag.host_name,
                                "last_seen_at": ag.last_seen_at,
                                "silent_since": a.opened_at,
                            }),
                        )
                        .at(now),
                    ],
                ),
                None => ("the agent is gone".into(), Vec::new()),
            }
        }
        BLOCKLIST_LISTED => ("the listing is gone".into(), Vec::new()),
        AUDIT_REGRESSED => (
            "the latest audit no longer has these errors".into(),
            Vec::new(),
        ),
        _ => (
            "back within the threshold (or too little mail in the window to judge)".into(),
            Vec::new(),
        ),
    }
}

/// Every minute: evaluate every rule.
pub async fn on_tick(
    tick: apalis_cron::Tick,
    store: apalis::prelude::Data<Store>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let now =
        DateTime::<Utc>::from_timestamp(tick.get_timestamp() as i64, 0).unwrap_or_else(Utc::now);
    let e = evaluate_all(&store, now).await?;
    if e.opened > 0 || e.resolved > 0 {
        tracing::info!(opened = e.opened, resolved = e.resolved, "alerts");
    }
    Ok(())
}
