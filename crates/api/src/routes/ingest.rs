//! What agents send: batches of delivery records (`POST /v1/ingest`) and heartbeats; and the agents' health.

use crate::auth::{Actor, Auth, Ingest, InstallationAdmin, Principal, Read};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::{ValidJson, declared_length, is_json_request, parse, read_body};
use crate::routes::{ListParams, ReadErrors, WriteErrors, listing};
use crate::startup::AppState;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Duration, Utc};
use futures::future::LocalBoxFuture;
use relaywatch_domain::events as types;
use relaywatch_domain::wire::{
    DeliveryRecord, Heartbeat, IngestBatch, IngestResult, MAX_RECORDS_PER_BATCH, Rejection,
};
use relaywatch_domain::{DkimSelector, DomainName, TenantId};
use relaywatch_store::deliveries::{FinishedMessage, NewDelivery, message_ref};
use relaywatch_store::entities::agent;
use relaywatch_store::events::NewEvent;
use relaywatch_store::observed_selectors::SeenSelector;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read as _;
use utoipa::ToSchema;

/// Attempts stamped further in the future than this are refused: a clock that wrong corrupts statistics.
const MAX_FUTURE_SKEW_SECS: i64 = 300;
const STATUSES: &[&str] = &[
    "sent",
    "deferred",
    "bounced",
    "expired",
    "force-expired",
    "undeliverable",
    "deliverable",
    "undeliverable-but-not-cached",
    "other",
];

/// The ingest body: JSON, optionally gzip-compressed (`Content-Encoding: gzip`), with its own size limits.
pub struct IngestBody(pub IngestBatch);

impl FromRequest for IngestBody {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (limit, inflated_limit) = req
            .app_data::<web::Data<AppState>>()
            .map(|s| {
                (
                    s.settings.max_ingest_bytes,
                    s.settings.max_ingest_decompressed_bytes,
                )
            })
            .unwrap_or((16 << 20, 64 << 20));
        let json = is_json_request(req);
        let declared = declared_length(req);
        let encoding = req
            .headers()
            .get(actix_web::http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send Content-Type: application/json",
                )
                .into());
            }
            let raw = read_body(&mut payload, declared, limit).await?;
            let body = match encoding.as_deref() {
                None | Some("identity") => raw.to_vec(),
                Some("gzip") | Some("x-gzip") => {
                    let mut out = Vec::new();
                    let mut reader =
                        flate2::read::GzDecoder::new(&raw[..]).take(inflated_limit as u64 + 1);
                    reader.read_to_end(&mut out).map_err(|e| {
                        ApiError::new(
                            ErrorCode::MalformedBody,
                            format!("the gzip body could not be decompressed: {e}"),
                        )
                    })?;
                    if out.len() > inflated_limit {
                        return Err(ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!(
                                "the decompressed body exceeds the limit of {inflated_limit} bytes"
                            ),
                        )
                        .into());
                    }
                    out
                }
                Some(other) => {
                    return Err(ApiError::new(
                        ErrorCode::UnsupportedMediaType,
                        format!("Content-Encoding `{other}` is not supported; use gzip"),
                    )
                    .into());
                }
            };
            Ok(IngestBody(parse(&body)?))
        })
    }
}

fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.len() > max => Err(format!("{field} is longer than {max} bytes")),
        _ => Ok(()),
    }
}

/// More signatures than this on one message is not a signing setup but a broken record.
const MAX_SIGNATURES_PER_RECORD: usize = 8;

/// A record's DKIM signatures as valid names, or why not.
fn signatures(r: &DeliveryRecord) -> Result<Vec<(DomainName, DkimSelector)>, String> {
    if r.dkim_signatures.len() > MAX_SIGNATURES_PER_RECORD {
        return Err(format!(
            "at most {MAX_SIGNATURES_PER_RECORD} dkim_signatures per record"
        ));
    }
    r.dkim_signatures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let domain = DomainName::parse(&s.domain)
                .map_err(|e| format!("dkim_signatures[{i}].domain: {e}"))?;
            let selector = DkimSelector::parse(&s.selector)
                .map_err(|e| format!("dkim_signatures[{i}].selector: {e}"))?;
            Ok((domain, selector))
        })
        .collect()
}

/// The selectors a batch showed, per tenant, with the earliest and latest attempt that showed each.
type SeenSelectors = HashMap<(TenantId, DomainName, DkimSelector), (DateTime<Utc>, DateTime<Utc>)>;

/// Turns one wire record into something storable (with its DKIM signatures), or says why not.
fn validate_delivery(
    r: DeliveryRecord,
    tenant: TenantId,
    now: DateTime<Utc>,
    oldest: DateTime<Utc>,
) -> Result<(NewDelivery, Vec<(DomainName, DkimSelector)>), String> {
    let signed = signatures(&r)?;
    let id = uuid::Uuid::parse_str(&r.id).map_err(|_| "id is not a UUID".to_string())?;
    let at = r.time.with_timezone(&Utc);
    if at > now + Duration::seconds(MAX_FUTURE_SKEW_SECS) {
        return Err(format!(
            "time {} is in the future (more than {MAX_FUTURE_SKEW_SECS} s ahead of the server's clock)",
            r.time
        ));
    }
    if at < oldest {
        return Err(format!(
            "time {} is older than the tenant's retention",
            r.time
        ));
    }
    if !STATUSES.contains(&r.status.as_str()) {
        return Err(format!("unknown status `{}`", r.status));
    }
    if r.host.len() > 253 || r.queue_id.len() > 32 {
        return Err("host is limited to 253 bytes and queue_id to 32".into());
    }
    if r.host.is_empty() || r.queue_id.is_empty() {
        return Err("host and queue_id must not be empty".into());
    }
    check_len("instance", &r.instance, 64)?;
    check_len("daemon", &r.daemon, 16)?;
    check_len("recipient", &r.recipient, 320)?;
    check_len("orig_recipient", &r.orig_recipient, 320)?;
    check_len("sender", &r.sender, 320)?;
    check_len("dsn", &r.dsn, 16)?;
    check_len("tag", &r.tag, 200)?;
    check_len("message_id", &r.message_id, 998)?;
    check_len("relay", &r.relay, 1024)?;
    check_len("client", &r.client, 1024)?;
    check_len("reply", &r.reply, 16 * 1024)?;
    let finite = |x: f64| x.is_finite() && x >= 0.0;
    if r.delay.is_some_and(|d| !finite(d)) {
        return Err("delay must be a non-negative number".into());
    }
    let delays = r
        .delays
        .map(|d| [d.before_queue, d.in_queue, d.connection, d.transmission]);
    if delays.is_some_and(|d| !d.iter().all(|x| finite(*x))) {
        return Err("delays must be non-negative numbers".into());
    }
    if r.bounce_class
        .as_ref()
        .is_some_and(|c| c.severity.len() > 16 || c.reason.len() > 32)
    {
        return Err("bounce_class is malformed".into());
    }
    let delivery = NewDelivery {
        tenant,
        id,
        attempt_at: at,
        host: r.host,
        instance: r.instance.unwrap_or_else(|| "postfix".into()),
        queue_id: r.queue_id,
        daemon: r.daemon,
        recipient: r.recipient,
        orig_recipient: r.orig_recipient,
        status: r.status,
        dsn: r.dsn,
        relay: r.relay,
        delay: r.delay,
        delays,
        reply: r.reply,
        reply_code: r.reply_code.map(i32::from),
        bounce_severity: r.bounce_class.as_ref().map(|c| c.severity.clone()),
        bounce_reason: r.bounce_class.map(|c| c.reason),
        tag: r.tag,
        message_id: r.message_id,
        sender: r.sender.filter(|s| !s.is_empty()),
        size: r.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        nrcpt: r.nrcpt.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        client: r.client,
        position: i32::try_from(r.position).unwrap_or(i32::MAX),
    };
    Ok((delivery, signed))
}

#[derive(Deserialize)]
struct FinishedRecord {
    time: DateTime<chrono::FixedOffset>,
    host: String,
    #[serde(default)]
    instance: Option<String>,
    queue_id: String,
    #[serde(default)]
    message_id: Option<String>,
}

/// Decides which tenant a record belongs to. Tenant-bound keys: their own tenant. Shared-host keys: the tenant that
/// registered the sender's domain (or a parent of it); none means unrouted.
struct Router<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    cache: HashMap<String, Option<TenantId>>,
    retention: HashMap<TenantId, i32>,
}

impl<'a> Router<'a> {
    async fn tenant_for(&mut self, sender: Option<&str>) -> ApiResult<Option<TenantId>> {
        if !self.principal.routes_by_sender {
            return Ok(Some(self.principal.tenant));
        }
        let domain = sender
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if let Some(hit) = self.cache.get(&domain) {
            return Ok(*hit);
        }
        let tenant = if domain.is_empty() {
            None
        } else {
            self.state
                .store
                .route_sender_domain_all_tenants(&domain)
                .await?
        };
        self.cache.insert(domain, tenant);
        Ok(tenant)
    }

    async fn oldest_allowed(
        &mut self,
        tenant: TenantId,
        now: DateTime<Utc>,
    ) -> ApiResult<DateTime<Utc>> {
        let days = match self.retention.get(&tenant) {
            Some(d) => *d,
            None => {
                let d = self
                    .state
                    .store
                    .find_tenant(tenant)
                    .await?
                    .map(|t| t.retention_days)
                    .unwrap_or(30);
                self.retention.insert(tenant, d);
                d
            }
        };
        Ok(now - Duration::days(i64::from(days.max(1))))
    }
}

fn sender_domain_label(sender: Option<&str>) -> String {
    match sender.and_then(|s| s.rsplit_once('@')) {
        Some((_, d)) => d.to_ascii_lowercase(),
        None => "(null sender)".to_string(),
    }
}

/// Attempts older than this announce nothing: a backfill of last month's logs must not page anyone about last
/// month's bounces.
const DELIVERY_EVENT_MAX_AGE_HOURS: i64 = 48;

/// The `delivery.bounced` and `delivery.deferred` events of a batch, for tenants with an endpoint subscribed to
/// them (a cached lookup, so tenants without one cost a map lookup per failed attempt). Event ids are derived from
/// the attempt (bounces) or from the message and recipient (deferrals: only the first deferral is announced), so a
/// batch sent twice announces everything once. Deferrals are also limited per tenant and minute.
async fn delivery_events(
    state: &AppState,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> ApiResult<HashMap<TenantId, Vec<NewEvent>>> {
    let mut wanted: HashMap<(TenantId, &'static str), bool> = HashMap::new();
    let mut out: HashMap<TenantId, Vec<NewEvent>> = HashMap::new();
    let mut deferred: HashMap<TenantId, Vec<NewEvent>> = HashMap::new();
    let oldest = now - Duration::hours(DELIVERY_EVENT_MAX_AGE_HOURS);
    for d in deliveries {
        let event_type = match d.status.as_str() {
            "bounced" => types::DELIVERY_BOUNCED,
            "deferred" => types::DELIVERY_DEFERRED,
            _ => continue,
        };
        if d.attempt_at < oldest {
            continue;
        }
        let subscribed = match wanted.get(&(d.tenant, event_type)) {
            Some(w) => *w,
            None => {
                let w = state.store.subscribes(d.tenant, event_type).await?;
                wanted.insert((d.tenant, event_type), w);
                w
            }
        };
        if !subscribed {
            continue;
        }
        let message = message_ref(
            d.tenant,
            &d.host,
            &d.instance,
            &d.queue_id,
            d.message_id.as_deref(),
        );
        let data = serde_json::json!({
            "message": message,
            "message_id": d.message_id,
            "tag": d.tag,
            "sender": d.sender,
            "recipient": d.recipient,
            "orig_recipient": d.orig_recipient,
            "status": d.status,
            "dsn": d.dsn,
            "reply": d.reply,
            "reply_code": d.reply_code,
            "bounce_class": d.bounce_severity.as_ref().map(|severity| serde_json::json!({
                "severity": severity,
                "reason": d.bounce_reason,
            })),
            "relay": d.relay,
            "host": d.host,
            "queue_id": d.queue_id,
            "attempted_at": d.attempt_at,
        });
        if event_type == types::DELIVERY_BOUNCED {
            let key = format!("{}:{}", d.id, d.attempt_at.timestamp_micros());
            out.entry(d.tenant)
                .or_default()
                .push(NewEvent::keyed(d.tenant, event_type, &key, data).at(d.attempt_at));
        } else {
            let key = format!("{message}:{}", d.recipient.as_deref().unwrap_or(""));
            deferred
                .entry(d.tenant)
                .or_default()
                .push(NewEvent::keyed(d.tenant, event_type, &key, data).at(d.attempt_at));
        }
    }
    for (tenant, mut events) in deferred {
        // One deferral per message and recipient: drop this batch's repeats before spending the budget on them.
        events.sort_by_key(|e| e.id);
        events.dedup_by_key(|e| e.id);
        let granted = state.store.take_deferred_budget(
            tenant,
            events.len() as u32,
            state.settings.webhooks.deferred_events_per_minute,
        );
        events.truncate(granted as usize);
        out.entry(tenant).or_default().extend(events);
    }
    Ok(out)
}

/// What the metrics count of one attempt: tenant, status, bounce reason, delay.
type Observed = (TenantId, String, Option<String>, Option<f64>);

/// Store a batch of delivery records from an agent. Idempotent: a record whose id is stored already counts as a
/// duplicate and changes nothing.
#[utoipa::path(
    tag = "ingest",
    request_body(content = IngestBatch, description = "JSON, optionally with Content-Encoding: gzip"),
    responses((status = 200, description = "Per-batch counts; rejected records are listed with their reason", body = IngestResult), WriteErrors),
    security(("bearer" = ["ingest"]))
)]
#[post("/v1/ingest")]
pub async fn ingest(
    auth: Auth<Ingest>,
    state: web::Data<AppState>,
    body: IngestBody,
) -> ApiResult<web::Json<IngestResult>> {
    let batch = body.0;
    if batch.records.len() > MAX_RECORDS_PER_BATCH {
        return Err(ApiError::invalid_field(
            "records",
            format!("at most {MAX_RECORDS_PER_BATCH} records per batch"),
        ));
    }
    let host_name = batch.agent.host_name.trim().to_string();
    if host_name.is_empty() || host_name.len() > 253 {
        return Err(ApiError::invalid_field(
            "agent.host_name",
            "must be 1 to 253 characters",
        ));
    }
    let now = Utc::now();
    let mut router = Router {
        state: &state,
        principal: &auth.principal,
        cache: HashMap::new(),
        retention: HashMap::new(),
    };
    let mut result = IngestResult::default();
    let mut deliveries = Vec::new();
    let mut finished = Vec::new();
    let mut unrouted: HashMap<String, u64> = HashMap::new();
    let mut seen_selectors = SeenSelectors::new();
    for (index, value) in batch.records.into_iter().enumerate() {
        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
        let mut reject = |reason: String| {
            result.rejections.push(Rejection {
                index,
                id: id.clone(),
                reason,
            })
        };
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("delivery") => {
                let record: DeliveryRecord = match serde_json::from_value(value) {
                    Ok(r) => r,
                    Err(e) => {
                        reject(format!("not a valid delivery record: {e}"));
                        continue;
                    }
                };
                let Some(tenant) = router.tenant_for(record.sender.as_deref()).await? else {
                    *unrouted
                        .entry(sender_domain_label(record.sender.as_deref()))
                        .or_default() += 1;
                    continue;
                };
                let oldest = router.oldest_allowed(tenant, now).await?;
                match validate_delivery(record, tenant, now, oldest) {
                    Ok((d, signed)) => {
                        for (domain, selector) in signed {
                            let at = d.attempt_at;
                            let span = seen_selectors
                                .entry((tenant, domain, selector))
                                .or_insert((at, at));
                            *span = (span.0.min(at), span.1.max(at));
                        }
                        deliveries.push(d)
                    }
                    Err(reason) => reject(reason),
                }
            }
            Some("finished") => {
                let record: FinishedRecord = match serde_json::from_value(value) {
                    Ok(r) => r,
                    Err(e) => {
                        reject(format!("not a valid finished record: {e}"));
                        continue;
                    }
                };
                // Message ends carry no sender; on shared hosts they reach every tenant's copy only through the
                // deliveries, so they are applied to the key's tenant alone.
                finished.push(FinishedMessage {
                    tenant: auth.tenant,
                    host: record.host,
                    instance: record.instance.unwrap_or_else(|| "postfix".into()),
                    queue_id: record.queue_id,
                    message_id: record.message_id,
                    finished_at: record.time.with_timezone(&Utc),
                });
            }
            other => reject(format!(
                "unknown record kind {other:?}; expected \"delivery\" or \"finished\""
            )),
        }
    }
    result.rejected = result.rejections.len() as u64;
    result.unrouted = unrouted.values().sum();
    // What metrics need of each attempt, kept before the batch moves into the store: only attempts the store reports
    // as newly stored are counted, so replays never inflate counters.
    let observed: HashMap<(uuid::Uuid, i64), Observed> = deliveries
        .iter()
        .map(|d| {
            let key = (d.id, d.attempt_at.timestamp_micros());
            (
                key,
                (d.tenant, d.status.clone(), d.bounce_reason.clone(), d.delay),
            )
        })
        .collect();
    // Bounces and deferrals whose reply says a blocklist refused us: that sending IP and domain are checked at once.
    let blocked: Vec<((uuid::Uuid, i64), TenantId, Vec<String>)> = deliveries
        .iter()
        .filter(|d| d.status == "bounced" || d.status == "deferred")
        .filter_map(|d| {
            let hint = relaywatch_audit::blocklist::block_hint(d.reply.as_deref()?)?;
            let mut subjects: Vec<String> = hint.ip.map(|ip| ip.to_string()).into_iter().collect();
            if let Some((_, domain)) = d.sender.as_deref().and_then(|s| s.rsplit_once('@')) {
                subjects.push(domain.to_ascii_lowercase());
            }
            Some(((d.id, d.attempt_at.timestamp_micros()), d.tenant, subjects))
        })
        .collect();
    let events = delivery_events(&state, &deliveries, now).await?;
    let counts = state.store.ingest(deliveries, finished).await?;
    // After the attempts: should this fail, the agent resends the batch and the (idempotent) upsert runs again.
    let mut learned: HashMap<TenantId, Vec<SeenSelector>> = HashMap::new();
    for ((tenant, domain, selector), (first_seen, last_seen)) in seen_selectors {
        learned.entry(tenant).or_default().push(SeenSelector {
            domain,
            selector,
            first_seen,
            last_seen,
        });
    }
    for (tenant, seen) in learned {
        state.store.record_observed_selectors(tenant, &seen).await?;
    }
    for (key, tenant, subjects) in &blocked {
        if !counts.stored.contains(key) {
            continue;
        }
        for subject in subjects {
            state
                .store
                .request_blocklist_check(*tenant, subject, "a bounce named a blocklist")
                .await?;
        }
    }
    // After the attempts are stored. Should this fail, the agent sends the batch again: its attempts are then
    // duplicates, and its events, keyed by attempt, are emitted once.
    for (tenant, events) in events {
        state.store.emit_events(tenant, events).await?;
    }
    let mut per_tenant: HashMap<TenantId, (HashMap<&str, u64>, Vec<u64>)> = HashMap::new();
    for (tenant, status, reason, delay) in counts.stored.iter().filter_map(|key| observed.get(key))
    {
        state
            .metrics
            .observe_delivery(&tenant.to_string(), status, reason.as_deref(), *delay);
        let entry = per_tenant.entry(*tenant).or_default();
        *entry.0.entry(status.as_str()).or_default() += 1;
        if let Some(delay) = delay {
            entry.1.push((delay * 1000.0) as u64);
        }
    }
    if let Some(statsd) = &state.statsd {
        for (tenant, (statuses, delays)) in per_tenant {
            let counts: Vec<(String, u64)> = statuses
                .into_iter()
                .map(|(s, n)| (s.to_string(), n))
                .collect();
            statsd.send(&tenant.to_string(), &counts, &delays);
        }
    }
    result.accepted = counts.accepted;
    result.duplicate = counts.duplicate;
    if !unrouted.is_empty() {
        state.store.record_unrouted(&unrouted, &host_name).await?;
    }
    let key_id = match auth.actor {
        Actor::ApiKey { id } => Some(id.as_uuid()),
        Actor::User { .. } => None,
    };
    state
        .store
        .record_agent_batch(
            auth.tenant,
            &host_name,
            key_id,
            batch.agent.version.as_deref(),
            counts.accepted,
        )
        .await?;
    Ok(web::Json(result))
}

/// An agent's periodic report on itself.
#[utoipa::path(
    tag = "ingest",
    request_body = Heartbeat,
    responses((status = 204, description = "Recorded"), WriteErrors),
    security(("bearer" = ["ingest"]))
)]
#[post("/v1/agents/heartbeat")]
pub async fn heartbeat(
    auth: Auth<Ingest>,
    state: web::Data<AppState>,
    body: ValidJson<Heartbeat>,
) -> ApiResult<HttpResponse> {
    let hb = body.into_inner();
    if hb.host_name.trim().is_empty() || hb.host_name.len() > 253 {
        return Err(ApiError::invalid_field(
            "host_name",
            "must be 1 to 253 characters",
        ));
    }
    if hb.last_error.as_ref().is_some_and(|e| e.len() > 4096)
        || hb.version.as_ref().is_some_and(|v| v.len() > 64)
    {
        return Err(ApiError::invalid_field(
            "last_error",
            "last_error is limited to 4096 bytes and version to 64",
        ));
    }
    let key_id = match auth.actor {
        Actor::ApiKey { id } => Some(id.as_uuid()),
        Actor::User { .. } => None,
    };
    state
        .store
        .record_heartbeat(auth.tenant, key_id, &hb)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An agent seen by this tenant: when it was last heard from and how it is doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    pub id: uuid::Uuid,
    pub host_name: String,
    pub version: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// No heartbeat or batch for more than 5 minutes.
    pub silent: bool,
    pub lines_read: i64,
    pub records_shipped: i64,
    pub records_accepted: i64,
    pub spool_bytes: i64,
    /// Seconds between the newest log line the agent read and its last report.
    pub lag_seconds: Option<f64>,
    pub last_error: Option<String>,
}

/// Agents are called silent after this long without a word.
pub const SILENT_AFTER_SECS: i64 = 300;

impl From<agent::Model> for Agent {
    fn from(a: agent::Model) -> Self {
        Self {
            id: a.id,
            silent: relaywatch_store::agents::is_silent(
                a.last_seen_at,
                Utc::now(),
                SILENT_AFTER_SECS,
            ),
            host_name: a.host_name,
            version: a.version,
            last_seen_at: a.last_seen_at,
            lines_read: a.lines_read,
            records_shipped: a.records_shipped,
            records_accepted: a.records_accepted,
            spool_bytes: a.spool_bytes,
            lag_seconds: a.lag_seconds,
            last_error: a.last_error,
        }
    }
}

listing!(AgentList, Agent);

/// The tenant's agents.
#[utoipa::path(
    tag = "ingest",
    operation_id = "list_agents",
    params(ListParams),
    responses((status = 200, description = "One page of agents", body = AgentList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/agents")]
pub async fn agents(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<AgentList>> {
    let page = state.store.list_agents(auth.tenant, q.page()?).await?;
    Ok(web::Json(AgentList::from_page(page, Agent::from)))
}

/// A sender domain reported by shared-host agents that no tenant has registered.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnroutedSender {
    pub sender_domain: String,
    pub deliveries: i64,
    pub last_host: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnroutedSenderList {
    pub items: Vec<UnroutedSender>,
}

/// Deliveries that shared-host agents could not route to a tenant, by sender domain (installation admins).
#[utoipa::path(
    tag = "ingest",
    operation_id = "list_unrouted_senders",
    responses((status = 200, description = "Unrouted sender domains, most deliveries first", body = UnroutedSenderList), ReadErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[get("/v1/unrouted-senders")]
pub async fn unrouted_senders(
    _auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
) -> ApiResult<web::Json<UnroutedSenderList>> {
    let rows = state.store.list_unrouted_all_tenants().await?;
    Ok(web::Json(UnroutedSenderList {
        items: rows
            .into_iter()
            .map(|r| UnroutedSender {
                sender_domain: r.sender_domain,
                deliveries: r.deliveries,
                last_host: r.last_host,
                first_seen_at: r.first_seen_at,
                last_seen_at: r.last_seen_at,
            })
            .collect(),
    }))
}
