//! "Are we blocklisted?": the tenant's current verdicts per (subject, zone), listing history, checks on demand, and
//! the zone set with each zone's health.

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ValidJson;
use crate::routes::{ReadErrors, WriteErrors, non_empty};
use crate::startup::AppState;
use actix_web::{get, post, put, web};
use chrono::{DateTime, Utc};
use relaywatch_audit::blocklist::{Subject, ZoneOverrides, ZoneSpec};
use relaywatch_store::PageRequest;
use relaywatch_store::blocklists::{HistoryFilter, StatusFilter, split_codes};
use relaywatch_worker::blocklist::{self as bl, SelfTest, ZoneResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The current verdict of one zone on one subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingStatus {
    /// The IP address or registered domain.
    #[schema(example = "192.0.2.10")]
    pub subject: String,
    /// `ipv4`, `ipv6` or `domain`.
    pub subject_kind: String,
    #[schema(example = "zen.spamhaus.org")]
    pub zone: String,
    /// `listed`, `clean` or `not_tested` (timeout, refused query, zone failing its self-test: never a listing).
    pub state: String,
    /// The zone's answers, for a listing.
    #[schema(example = json!(["127.0.0.2"]))]
    pub codes: Vec<String>,
    /// What the codes mean (`SBL: a known spam source ...`).
    pub meaning: Option<String>,
    /// The zone's TXT explanation for a listing; why it was not tested otherwise.
    pub reason: Option<String>,
    /// Only policy or reputation codes, or an informational zone: shown, never alerted on.
    pub informational: bool,
    /// Start of the open listing (kept while later checks are not tested).
    pub listed_since: Option<DateTime<Utc>>,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingStatusList {
    pub items: Vec<ListingStatus>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingQuery {
    /// `listed` (default), `clean`, `not_tested` or `all`.
    pub state: Option<String>,
    /// One IP address or domain.
    pub subject: Option<String>,
    /// One zone.
    pub zone: Option<String>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

fn page(limit: Option<u64>, cursor: &Option<String>) -> ApiResult<PageRequest> {
    crate::routes::ListParams {
        limit,
        cursor: cursor.clone(),
    }
    .page()
}

/// Normalises a subject filter the way subjects are stored (a domain as its registered domain).
fn subject_filter(v: &Option<String>) -> ApiResult<Option<String>> {
    non_empty(v)
        .map(|s| {
            Subject::parse(&s)
                .map(|s| s.to_string())
                .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("subject: {e}")))
        })
        .transpose()
}

/// The tenant's current blocklist verdicts: listings by default, or every state.
#[utoipa::path(
    tag = "blocklists",
    operation_id = "list_listings",
    params(ListingQuery),
    responses((status = 200, description = "One page of verdicts", body = ListingStatusList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/listings")]
pub async fn list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListingQuery>,
) -> ApiResult<web::Json<ListingStatusList>> {
    let wanted = match non_empty(&q.state).as_deref() {
        None | Some("listed") => Some("listed".to_string()),
        Some("all") => None,
        Some(s @ ("clean" | "not_tested")) => Some(s.to_string()),
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("state `{other}`: expected listed, clean, not_tested or all"),
            ));
        }
    };
    let filter = StatusFilter {
        state: wanted,
        subject: subject_filter(&q.subject)?,
        zone: non_empty(&q.zone).map(|z| z.to_ascii_lowercase()),
    };
    let rows = state
        .store
        .list_blocklist_status(auth.tenant, &filter, page(q.limit, &q.cursor)?)
        .await?;
    Ok(web::Json(ListingStatusList {
        next_cursor: rows.next_cursor.map(|c| c.to_string()),
        items: rows
            .items
            .into_iter()
            .map(|r| ListingStatus {
                codes: split_codes(&r.codes),
                subject: r.subject,
                subject_kind: r.subject_kind,
                zone: r.zone,
                state: r.state,
                meaning: r.meaning,
                reason: r.reason,
                informational: r.informational,
                listed_since: r.listed_since,
                checked_at: r.checked_at,
            })
            .collect(),
    }))
}

/// One change of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingEvent {
    /// `listed`, `codes_changed` or `cleared`.
    pub kind: String,
    pub codes: Vec<String>,
    pub meaning: Option<String>,
    pub at: DateTime<Utc>,
}

/// One listing, from first seen to cleared.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingEpisode {
    pub id: uuid::Uuid,
    pub subject: String,
    pub zone: String,
    /// The latest codes.
    pub codes: Vec<String>,
    pub meaning: Option<String>,
    pub reason: Option<String>,
    pub informational: bool,
    /// Where to ask for removal.
    pub delist_url: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Absent while the listing is open.
    pub cleared_at: Option<DateTime<Utc>>,
    /// Listed, codes changed, cleared: oldest first.
    pub events: Vec<ListingEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingHistoryList {
    pub items: Vec<ListingEpisode>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub subject: Option<String>,
    pub zone: Option<String>,
    /// Listings open at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Listings first seen at or before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Listing history, newest first: when each listing was first and last seen, when it cleared, and its code changes.
#[utoipa::path(
    tag = "blocklists",
    operation_id = "list_listing_history",
    params(HistoryQuery),
    responses((status = 200, description = "One page of listings", body = ListingHistoryList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/listings/history")]
pub async fn history(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<HistoryQuery>,
) -> ApiResult<web::Json<ListingHistoryList>> {
    let filter = HistoryFilter {
        subject: subject_filter(&q.subject)?,
        zone: non_empty(&q.zone).map(|z| z.to_ascii_lowercase()),
        from: q.from,
        to: q.to,
    };
    let rows = state
        .store
        .list_blocklist_history(auth.tenant, &filter, page(q.limit, &q.cursor)?)
        .await?;
    Ok(web::Json(ListingHistoryList {
        next_cursor: rows.next_cursor.map(|c| c.to_string()),
        items: rows
            .items
            .into_iter()
            .map(|h| ListingEpisode {
                id: h.listing.id,
                subject: h.listing.subject,
                zone: h.listing.zone,
                codes: split_codes(&h.listing.codes),
                meaning: h.listing.meaning,
                reason: h.listing.reason,
                informational: h.listing.informational,
                delist_url: h.listing.delist_url,
                first_seen: h.listing.first_seen,
                last_seen: h.listing.last_seen,
                cleared_at: h.listing.cleared_at,
                events: h
                    .events
                    .into_iter()
                    .map(|e| ListingEvent {
                        kind: e.kind,
                        codes: split_codes(&e.codes),
                        meaning: e.meaning,
                        at: e.occurred_at,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// An IP address or a domain (checked as its registered domain).
    #[schema(example = "192.0.2.10")]
    pub subject: String,
    /// Only these zones (names from the tenant's zone set); default: every zone that lists the subject's kind.
    pub zones: Option<Vec<String>>,
}

/// One zone's verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneVerdict {
    pub zone: String,
    pub label: String,
    /// `listed`, `clean` or `not_tested`.
    pub state: String,
    pub codes: Vec<String>,
    pub meaning: Option<String>,
    /// TXT explanation of a listing, or why the zone was not tested.
    pub reason: Option<String>,
    pub informational: bool,
    pub delist_url: Option<String>,
}

impl From<&ZoneResult> for ZoneVerdict {
    fn from(r: &ZoneResult) -> Self {
        let (codes, meaning, reason) = r.parts();
        ZoneVerdict {
            zone: r.zone.clone(),
            label: r.label.clone(),
            state: r.outcome.state().to_string(),
            codes,
            meaning,
            reason,
            informational: r.informational(),
            delist_url: r.delist_url.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    pub subject: String,
    /// True when the subject is one of the tenant's sending IPs or domains: the verdicts then joined its history.
    pub recorded: bool,
    pub results: Vec<ZoneVerdict>,
}

/// Check an IP address or domain against the blocklists now (each zone's self-test first). Verdicts on the tenant's
/// own sending IPs and domains are recorded like a sweep's.
#[utoipa::path(
    tag = "blocklists",
    operation_id = "check_listing",
    request_body = CheckRequest,
    responses((status = 200, description = "Each zone's verdict", body = CheckResponse), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/listings/check")]
pub async fn check(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<CheckRequest>,
) -> ApiResult<web::Json<CheckResponse>> {
    let subject =
        Subject::parse(&body.subject).map_err(|e| ApiError::invalid_field("subject", e))?;
    let checker = &state.blocklists;
    let all = bl::tenant_zones(&state.store, checker.settings(), auth.tenant)
        .await
        .map_err(ApiError::internal)?;
    let zones: Vec<ZoneSpec> = match &body.zones {
        None => all,
        Some(names) => {
            if names.len() > 100 {
                return Err(ApiError::invalid_field("zones", "at most 100 zones"));
            }
            let mut picked = Vec::new();
            for n in names {
                let z = all
                    .iter()
                    .find(|z| z.name.eq_ignore_ascii_case(n.trim()))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "zones",
                            format!(
                                "`{n}` is not in the tenant's zone set (GET /v1/blocklist-zones)"
                            ),
                        )
                    })?;
                picked.push(z.clone());
            }
            picked
        }
    };
    let zones: Vec<ZoneSpec> = zones
        .into_iter()
        .filter(|z| z.lists(subject.kind()))
        .collect();
    let health = checker.zones_health(&zones, SelfTest::Strict).await;
    let results = checker
        .check_all(std::slice::from_ref(&subject), &zones, &health)
        .await;
    let (networks, domains) = state.store.blocklist_subjects(auth.tenant).await?;
    let recorded = owns(&subject, &networks, &domains);
    if recorded {
        state
            .store
            .record_blocklist_results(auth.tenant, &bl::to_records(&results), Utc::now())
            .await?;
    }
    Ok(web::Json(CheckResponse {
        subject: subject.to_string(),
        recorded,
        results: results.iter().map(|(_, r)| ZoneVerdict::from(r)).collect(),
    }))
}

/// Whether a subject is one of the tenant's sending IPs (inside a registered network) or domains.
fn owns(subject: &Subject, networks: &[String], domains: &[String]) -> bool {
    match subject {
        Subject::Ip(ip) => networks.iter().any(|n| {
            n.parse::<ipnet::IpNet>()
                .map(|net| net.contains(ip))
                .unwrap_or_else(|_| n.parse::<std::net::IpAddr>().is_ok_and(|a| a == *ip))
        }),
        Subject::Domain(d) => domains
            .iter()
            .any(|s| relaywatch_audit::blocklist::registered_domain(s) == *d),
    }
}

/// One answer's meaning in a zone definition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneCodeDefinition {
    /// One exact answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A range of answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A bit of the last octet (bitmask zones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    pub meaning: String,
    /// False for policy or reputation codes that are not a listing by themselves (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<bool>,
}

/// A blocklist zone, described by data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneDefinition {
    #[schema(example = "bl.example.net")]
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// `ipv4`, `ipv6`, `domain`.
    pub kinds: Vec<String>,
    #[serde(default)]
    pub recommended: bool,
    #[serde(default)]
    pub informational: bool,
    /// Removal page; `{subject}` is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delist: Option<String>,
    /// Answers that mean the query was refused.
    #[serde(default)]
    pub refused: Vec<String>,
    #[serde(default)]
    pub bitmask: bool,
    pub codes: Vec<ZoneCodeDefinition>,
    /// Self-test subject that must be listed (default RFC 5782's: 127.0.0.2, `test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_listed: Option<String>,
    /// Self-test subject that must not be listed (default 127.0.0.1, `invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clean: Option<String>,
}

impl ZoneDefinition {
    fn to_spec(&self) -> Result<ZoneSpec, String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let spec: ZoneSpec =
            serde_json::from_value(value).map_err(|e| format!("zone {}: {e}", self.name))?;
        spec.validate()?;
        Ok(spec)
    }

    fn from_spec(z: &ZoneSpec) -> Option<ZoneDefinition> {
        let mut value = serde_json::to_value(z).ok()?;
        if let Some(obj) = value.as_object_mut() {
            obj.remove("dqs");
        }
        serde_json::from_value(value).ok()
    }
}

/// A tenant's changes to the installation's zone set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneOverridesBody {
    /// Zones to add (one with the name of a default zone replaces it).
    pub add: Vec<ZoneDefinition>,
    /// Names of zones to leave out.
    pub remove: Vec<String>,
}

/// A zone of the tenant's set, with its last self-test.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneInfo {
    pub zone: ZoneDefinition,
    /// Whether the last sweep's self-test passed; absent before the first.
    pub healthy: Option<bool>,
    /// Why the zone is failing its self-test.
    pub health_reason: Option<String>,
    pub health_checked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneSet {
    pub zones: Vec<ZoneInfo>,
    pub overrides: ZoneOverridesBody,
}

async fn zone_set(state: &AppState, tenant: relaywatch_domain::TenantId) -> ApiResult<ZoneSet> {
    let overrides: ZoneOverrides = match state.store.blocklist_overrides(tenant).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => ZoneOverrides::default(),
    };
    let zones = state.blocklists.settings().zones_for(&overrides);
    let health = state.store.list_zone_health().await?;
    Ok(ZoneSet {
        zones: zones
            .iter()
            .filter_map(|z| {
                let h = health.iter().find(|h| h.zone == z.name);
                Some(ZoneInfo {
                    zone: ZoneDefinition::from_spec(z)?,
                    healthy: h.map(|h| h.healthy),
                    health_reason: h.and_then(|h| h.reason.clone()),
                    health_checked_at: h.map(|h| h.checked_at),
                })
            })
            .collect(),
        overrides: ZoneOverridesBody {
            add: overrides
                .add
                .iter()
                .filter_map(ZoneDefinition::from_spec)
                .collect(),
            remove: overrides.remove,
        },
    })
}

/// The zones the tenant's sweeps use (defaults, installation and tenant changes), each with its last self-test.
#[utoipa::path(
    tag = "blocklists",
    operation_id = "list_blocklist_zones",
    responses((status = 200, description = "The zone set", body = ZoneSet), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/blocklist-zones")]
pub async fn zone_list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
) -> ApiResult<web::Json<ZoneSet>> {
    Ok(web::Json(zone_set(&state, auth.tenant).await?))
}

/// Replace the tenant's changes to the zone set: zones to add, zones to leave out.
#[utoipa::path(
    tag = "blocklists",
    operation_id = "set_blocklist_zone_overrides",
    request_body = ZoneOverridesBody,
    responses((status = 200, description = "The zone set after the change", body = ZoneSet), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[put("/v1/blocklist-zones/overrides")]
pub async fn set_overrides(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<ZoneOverridesBody>,
) -> ApiResult<web::Json<ZoneSet>> {
    if body.add.len() > 50 || body.remove.len() > 100 {
        return Err(ApiError::invalid_field(
            "add",
            "at most 50 zones to add and 100 to remove",
        ));
    }
    let add = body
        .add
        .iter()
        .map(ZoneDefinition::to_spec)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("add", e))?;
    let overrides = ZoneOverrides {
        add,
        remove: body
            .remove
            .iter()
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect(),
    };
    let json = serde_json::to_string(&overrides).map_err(ApiError::internal)?;
    state
        .store
        .set_blocklist_overrides(auth.tenant, &json)
        .await?;
    Ok(web::Json(zone_set(&state, auth.tenant).await?))
}
