//! Domain audits: request a run, read a domain's history and its latest result, and the tenant's audit schedule.
//! The worker carries out queued runs within seconds; clients poll the run (or `latest`).

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{ListParams, ReadErrors, WriteErrors};
use crate::startup::AppState;
use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{DomainName, TenantId};
use relaywatch_store::audits::AuditSchedule as StoredSchedule;
use relaywatch_store::entities::{audit_run, sending_domain};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::ToSchema;

/// The installation default, as in the worker (every 6 hours, on the hour, UTC).
const DEFAULT_SCHEDULE: &str = "0 0 */6 * * *";

/// One finding of an audit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditFinding {
    /// Stable code, `<area>.<name>`: `spf.too_many_lookups`, `dkim.rsa_key_weak`, `dmarc.policy_none`, ...
    #[schema(example = "spf.too_many_lookups")]
    pub code: String,
    /// `error`, `warning` or `info`.
    #[schema(example = "error")]
    pub severity: String,
    pub title: String,
    /// The domain, `<selector>._domainkey.<domain>`, IP address or MX host the finding is about.
    pub subject: String,
    /// The record text, lookup chain or server answer that shows it.
    pub evidence: String,
    /// The RFC section or provider rule it rests on.
    pub reference: String,
    pub remediation: String,
}

/// A check that could not be made (a DNS timeout, an unreachable server): never counted as passed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotTested {
    pub area: String,
    pub subject: String,
    pub reason: String,
}

/// Status of one area on the scorecard: `pass`, `warning`, `fail` or `not_tested`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AreaScore {
    #[schema(example = "spf")]
    pub area: String,
    #[schema(example = "pass")]
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct StoredScorecard {
    complete: bool,
    areas: Vec<AreaScore>,
}

#[derive(Debug, Deserialize)]
struct StoredReport {
    findings: Vec<AuditFinding>,
    not_tested: Vec<NotTested>,
    scorecard: StoredScorecard,
}

/// One audit run of a sending domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRun {
    pub id: uuid::Uuid,
    #[schema(example = "mail.example.com")]
    pub domain: String,
    /// `schedule` or `request`.
    pub trigger: String,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// 0 to 100: 100 minus 20 per error and 5 per warning.
    pub score: Option<i32>,
    /// A to F; any error rules out an A.
    pub grade: Option<String>,
    /// False when some checks could not be made: the grade is then an upper bound.
    pub complete: Option<bool>,
    pub errors: i32,
    pub warnings: i32,
    pub infos: i32,
    pub not_tested_count: i32,
    pub areas: Vec<AreaScore>,
    pub findings: Vec<AuditFinding>,
    pub not_tested: Vec<NotTested>,
    /// Findings the previous completed run did not have.
    pub new_findings: Vec<AuditFinding>,
    /// Findings of the previous completed run that are gone.
    pub resolved_findings: Vec<AuditFinding>,
    /// Why Relaywatch could not carry out the run (status `failed`).
    pub failure: Option<String>,
}

fn parse_list(json: &Option<String>) -> Vec<AuditFinding> {
    json.as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

impl From<audit_run::Model> for AuditRun {
    fn from(r: audit_run::Model) -> Self {
        let report: Option<StoredReport> = r
            .report
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let (findings, not_tested, complete, areas) = match report {
            Some(rep) => (
                rep.findings,
                rep.not_tested,
                Some(rep.scorecard.complete),
                rep.scorecard.areas,
            ),
            None => (Vec::new(), Vec::new(), None, Vec::new()),
        };
        Self {
            new_findings: parse_list(&r.new_findings),
            resolved_findings: parse_list(&r.resolved_findings),
            id: r.id,
            domain: r.domain,
            trigger: r.trigger,
            status: r.status,
            requested_at: r.requested_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            score: r.score,
            grade: r.grade,
            complete,
            errors: r.errors,
            warnings: r.warnings,
            infos: r.infos,
            not_tested_count: r.not_tested,
            areas,
            findings,
            not_tested,
            failure: r.failure,
        }
    }
}

super::listing!(AuditRunList, AuditRun);

async fn domain_of(
    state: &AppState,
    tenant: TenantId,
    raw: &str,
) -> ApiResult<sending_domain::Model> {
    // A name that does not parse cannot be registered: the same 404 as an unknown one.
    let name = DomainName::parse(raw).map_err(|_| ApiError::not_found("sending domain"))?;
    state
        .store
        .find_sending_domain_by_name(tenant, name.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("sending domain"))
}

/// Options of a requested audit; `{}` takes the tenant's defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRequest {
    /// Probe the MX hosts' STARTTLS in this run (default: the tenant schedule's `smtp_checks`).
    pub smtp_checks: Option<bool>,
}

/// Audit a sending domain now.
///
/// Queues a run; the worker carries it out within seconds. Poll `GET /v1/domains/{domain}/audits/{id}`.
#[utoipa::path(
    tag = "audits",
    operation_id = "request_audit",
    params(("domain" = String, Path, description = "A registered sending domain", example = "mail.example.com")),
    request_body = AuditRequest,
    responses((status = 202, description = "Queued", body = AuditRun), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/domains/{domain}/audits")]
pub async fn request(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
    body: ValidJson<AuditRequest>,
) -> ApiResult<HttpResponse> {
    let d = domain_of(&state, auth.tenant, &domain).await?;
    let run = state
        .store
        .request_audit(auth.tenant, &d, body.smtp_checks)
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            "Location",
            format!("/v1/domains/{}/audits/{}", d.domain, run.id),
        ))
        .json(AuditRun::from(run)))
}

/// A domain's audit runs, newest first.
#[utoipa::path(
    tag = "audits",
    operation_id = "list_audits",
    params(("domain" = String, Path, description = "A registered sending domain"), ListParams),
    responses((status = 200, description = "One page of runs", body = AuditRunList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/domains/{domain}/audits")]
pub async fn history(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<AuditRunList>> {
    let d = domain_of(&state, auth.tenant, &domain).await?;
    let page = q.page()?;
    let runs = state
        .store
        .list_audits(auth.tenant, d.id, page.after, page.limit)
        .await?;
    Ok(web::Json(AuditRunList::from_page(runs, AuditRun::from)))
}

/// The latest completed audit of a domain: its findings, scorecard and what changed since the run before.
#[utoipa::path(
    tag = "audits",
    operation_id = "get_latest_audit",
    params(("domain" = String, Path, description = "A registered sending domain")),
    responses((status = 200, description = "The latest completed run", body = AuditRun), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/domains/{domain}/audits/latest")]
pub async fn latest(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> ApiResult<web::Json<AuditRun>> {
    let d = domain_of(&state, auth.tenant, &domain).await?;
    let run = state
        .store
        .latest_completed_audit(auth.tenant, d.id)
        .await?
        .ok_or_else(|| ApiError::not_found("completed audit"))?;
    Ok(web::Json(run.into()))
}

/// One audit run.
#[utoipa::path(
    tag = "audits",
    operation_id = "get_audit",
    params(
        ("domain" = String, Path, description = "A registered sending domain"),
        ("id" = uuid::Uuid, Path, description = "Audit run id")
    ),
    responses((status = 200, description = "The run", body = AuditRun), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/domains/{domain}/audits/{id}")]
pub async fn get(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<web::Json<AuditRun>> {
    let (domain, id) = path.into_inner();
    let d = domain_of(&state, auth.tenant, &domain).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::not_found("audit run"))?;
    let run = state
        .store
        .find_audit(auth.tenant, d.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("audit run"))?;
    Ok(web::Json(run.into()))
}

/// When the tenant's domains are audited.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditScheduleBody {
    /// Six-field cron expression (seconds first), UTC.
    #[schema(example = "0 0 */6 * * *")]
    pub cron: String,
    /// False pauses scheduled audits (requested ones still run).
    pub enabled: bool,
    /// Probe the MX hosts' STARTTLS on port 25.
    pub smtp_checks: bool,
}

/// The tenant's audit schedule (the installation default until set).
#[utoipa::path(
    tag = "audits",
    operation_id = "get_audit_schedule",
    responses((status = 200, description = "The schedule", body = AuditScheduleBody), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/audit-schedule")]
pub async fn get_schedule(
    auth: Auth<Read>,
    state: web::Data<AppState>,
) -> ApiResult<web::Json<AuditScheduleBody>> {
    let s = state
        .store
        .audit_schedule(auth.tenant)
        .await?
        .unwrap_or(StoredSchedule {
            cron: DEFAULT_SCHEDULE.into(),
            enabled: true,
            smtp_checks: true,
        });
    Ok(web::Json(AuditScheduleBody {
        cron: s.cron,
        enabled: s.enabled,
        smtp_checks: s.smtp_checks,
    }))
}

/// Set the tenant's audit schedule.
#[utoipa::path(
    tag = "audits",
    operation_id = "set_audit_schedule",
    request_body = AuditScheduleBody,
    responses((status = 200, description = "Saved", body = AuditScheduleBody), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[put("/v1/audit-schedule")]
pub async fn set_schedule(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<AuditScheduleBody>,
) -> ApiResult<web::Json<AuditScheduleBody>> {
    let body = body.into_inner();
    let schedule = cron::Schedule::from_str(&body.cron).map_err(|e| {
        ApiError::invalid_field("cron", format!("not a six-field cron expression: {e}"))
    })?;
    // More often than hourly would hammer other people's DNS and mail servers for no news.
    let mut upcoming = schedule.upcoming(Utc);
    if let (Some(a), Some(b)) = (upcoming.next(), upcoming.next())
        && b - a < chrono::Duration::hours(1)
    {
        return Err(ApiError::invalid_field(
            "cron",
            "must not fire more often than hourly",
        ));
    }
    state
        .store
        .set_audit_schedule(
            auth.tenant,
            &StoredSchedule {
                cron: body.cron.clone(),
                enabled: body.enabled,
                smtp_checks: body.smtp_checks,
            },
        )
        .await?;
    Ok(web::Json(body))
}
