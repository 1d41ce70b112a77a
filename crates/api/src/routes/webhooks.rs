//! Webhook endpoints: where the tenant's events go, signed the Standard Webhooks way. The secret is shown once (at
//! creation and at rotation); deliveries and their attempts can be inspected, and a failed one replayed.

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ValidJson;
use crate::routes::{
    DeleteErrors, ListParams, ReadErrors, WebhookActionErrors, WriteErrors, listing, optional_text,
};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as types;
use relaywatch_store::entities::{webhook_attempt, webhook_endpoint};
use relaywatch_store::webhooks::{
    DELIVERY_DELIVERING, DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SUCCEEDED, DeliveryTrail,
    NewWebhook as StoredNew, ReplayRefused, WebhookUpdate as StoredUpdate, event_types_from_db,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Default overlap of a rotated secret: a day for receivers to switch.
const DEFAULT_OVERLAP_SECS: u64 = 86_400;
const MAX_OVERLAP_SECS: u64 = 7 * 86_400;

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    #[schema(example = "https://hooks.example.com/relaywatch")]
    pub url: String,
    pub description: Option<String>,
    /// Subscribed event types; `*` subscribes to all.
    #[schema(example = json!(["delivery.bounced", "alert.triggered"]))]
    pub event_types: Vec<String>,
    /// False when disabled through the API or by Relaywatch after repeated failures (see `disabled_reason`).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// After a rotation, deliveries are signed with the new and the previous secret until this time.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Failed attempts in a row (0 after any success).
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for Webhook {
    fn from(r: webhook_endpoint::Model) -> Self {
        let now = Utc::now();
        Self {
            id: r.id,
            event_types: event_types_from_db(&r.event_types),
            url: r.url,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            previous_secret_expires_at: r
                .previous_secret_expires_at
                .filter(|t| *t > now && r.previous_secret.is_some()),
            consecutive_failures: r.consecutive_failures,
            failing_since: r.failing_since,
            last_success_at: r.last_success_at,
            last_failure_at: r.last_failure_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An endpoint with its signing secret: only in the answers that create or rotate it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_<base64>`: the HMAC key is the base64-decoded part. Shown once; store it with the receiver.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://` (or `http://`) URL on the public internet: private, loopback, link-local and metadata addresses
    /// are refused unless the installation allows them.
    #[schema(example = "https://hooks.example.com/relaywatch")]
    pub url: String,
    #[schema(example = "on-call channel")]
    pub description: Option<String>,
    /// Event types to receive (`*` for all): delivery.bounced, delivery.deferred, blocklist.listed,
    /// blocklist.cleared, audit.regressed, audit.resolved, alert.triggered, alert.resolved, agent.silent,
    /// agent.recovered, webhook.disabled.
    #[schema(example = json!(["alert.triggered", "alert.resolved"]))]
    pub event_types: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    /// Replaces the description; an empty string clears it.
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// True enables a disabled endpoint again (and clears its failure record); false pauses it (its queued
    /// deliveries wait).
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing beside the new one, 0 to 604800 seconds (default 86400).
    pub overlap_seconds: Option<u64>,
}

/// Body of `POST /v1/webhooks/{id}/test` and of a replay: `{}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// One HTTP attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// 1 for the first attempt (counting restarts again after a replay).
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub succeeded: bool,
    /// Why it failed: a status, a timeout, a refused address, a redirect.
    pub error: Option<String>,
    /// The first bytes of the receiver's answer.
    pub response_excerpt: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(a: webhook_attempt::Model) -> Self {
        Self {
            attempt: a.attempt,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            succeeded: a.succeeded,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

/// One event to one endpoint, with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `webhook-id` header: the same on every attempt and replay, for receivers to deduplicate.
    pub event_id: Uuid,
    #[schema(example = "delivery.bounced")]
    pub event_type: String,
    /// `pending`, `delivering`, `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

impl From<DeliveryTrail> for WebhookDelivery {
    fn from(t: DeliveryTrail) -> Self {
        let d = t.delivery;
        Self {
            id: d.id,
            webhook_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            next_attempt_at: (d.status == DELIVERY_PENDING)
                .then_some(d.next_attempt_at)
                .flatten(),
            status: d.status,
            attempt_count: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            last_latency_ms: d.last_latency_ms,
            last_attempt_at: d.last_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
            attempts: t.attempts.into_iter().map(WebhookAttempt::from).collect(),
        }
    }
}

listing!(WebhookList, Webhook);
listing!(WebhookDeliveryList, WebhookDelivery);

fn event_types(field: &str, subscribed: &[String]) -> ApiResult<Vec<String>> {
    if subscribed.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            "name at least one event type (or `*` for all)",
        ));
    }
    if subscribed.len() > 50 {
        return Err(ApiError::invalid_field(field, "at most 50 event types"));
    }
    for (i, t) in subscribed.iter().enumerate() {
        if !types::is_subscribable(t) {
            let known: Vec<&str> = types::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(ApiError::invalid_field(
                format!("{field}[{i}]"),
                format!("unknown event type `{t}`; known: *, {}", known.join(", ")),
            ));
        }
    }
    Ok(subscribed.to_vec())
}

/// Parses, resolves and vets a URL: 422 on `url` saying exactly why it is refused.
async fn vetted_url(state: &AppState, raw: &str) -> ApiResult<String> {
    state
        .webhook_guard
        .vet(raw)
        .await
        .map(|v| v.url.to_string())
        .map_err(|e| ApiError::invalid_field("url", e.to_string()))
}

async fn endpoint(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
) -> ApiResult<webhook_endpoint::Model> {
    state
        .store
        .find_webhook(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Register a webhook endpoint. The answer holds its signing secret, shown this once.
#[utoipa::path(
    tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, description = "Registered; `secret` is shown only here", body = WebhookWithSecret), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/webhooks")]
pub async fn create(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<NewWebhook>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let event_types = event_types("event_types", &body.event_types)?;
    let description = optional_text("description", body.description.as_deref(), 500)?;
    let url = vetted_url(&state, &body.url).await?;
    let (row, secret) = state
        .store
        .create_webhook(
            auth.tenant,
            StoredNew {
                url,
                description,
                event_types,
                enabled: body.enabled.unwrap_or(true),
            },
            &state.cipher,
        )
        .await?;
    Ok(HttpResponse::Created().json(WebhookWithSecret {
        webhook: row.into(),
        secret,
    }))
}

/// The tenant's webhook endpoints.
#[utoipa::path(
    tag = "webhooks",
    params(ListParams),
    responses((status = 200, description = "One page of endpoints", body = WebhookList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/webhooks")]
pub async fn list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<WebhookList>> {
    let page = state.store.list_webhooks(auth.tenant, q.page()?).await?;
    Ok(web::Json(WebhookList::from_page(page, Webhook::from)))
}

/// One webhook endpoint.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, description = "The endpoint", body = Webhook), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/webhooks/{id}")]
pub async fn get(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Webhook>> {
    Ok(web::Json(endpoint(&state, auth.tenant, *id).await?.into()))
}

/// Change an endpoint: URL, description, subscriptions, enabled.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = WebhookUpdate,
    responses((status = 200, description = "Updated", body = Webhook), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[patch("/v1/webhooks/{id}")]
pub async fn update(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: ValidJson<WebhookUpdate>,
) -> ApiResult<web::Json<Webhook>> {
    let body = body.into_inner();
    endpoint(&state, auth.tenant, *id).await?;
    let event_types = match &body.event_types {
        Some(t) => Some(event_types("event_types", t)?),
        None => None,
    };
    let description = match &body.description {
        Some(d) => Some(optional_text("description", Some(d), 500)?),
        None => None,
    };
    let url = match &body.url {
        Some(u) => Some(vetted_url(&state, u).await?),
        None => None,
    };
    let row = state
        .store
        .update_webhook(
            auth.tenant,
            *id,
            StoredUpdate {
                url,
                description,
                event_types,
                enabled: body.enabled,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(web::Json(row.into()))
}

/// Delete an endpoint and its delivery history.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"), DeleteErrors),
    security(("bearer" = ["write"]))
)]
#[delete("/v1/webhooks/{id}")]
pub async fn delete(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    if state.store.delete_webhook(auth.tenant, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

/// Replace the signing secret. During the overlap (default a day) every delivery carries two signatures, one per
/// secret, so the receiver can switch at its own pace. The new secret is shown this once.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = RotateSecret,
    responses((status = 200, description = "Rotated; `secret` is the new one, shown only here", body = WebhookWithSecret), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/webhooks/{id}/rotate-secret")]
pub async fn rotate_secret(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: ValidJson<RotateSecret>,
) -> ApiResult<web::Json<WebhookWithSecret>> {
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::invalid_field(
            "overlap_seconds",
            format!("must be between 0 and {MAX_OVERLAP_SECS}"),
        ));
    }
    let (row, secret) = state
        .store
        .rotate_webhook_secret(
            auth.tenant,
            *id,
            chrono::Duration::seconds(overlap as i64),
            &state.cipher,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(web::Json(WebhookWithSecret {
        webhook: row.into(),
        secret,
    }))
}

/// Send a `webhook.test` event to this endpoint now (whatever it subscribed to). Follow it with
/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}`.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = EmptyBody,
    responses((status = 202, description = "Queued", body = WebhookDelivery), WebhookActionErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/webhooks/{id}/test")]
pub async fn test(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    _body: ValidJson<EmptyBody>,
) -> ApiResult<HttpResponse> {
    let ep = endpoint(&state, auth.tenant, *id).await?;
    if !ep.enabled {
        return Err(ApiError::new(
            ErrorCode::WebhookDisabled,
            "the endpoint is disabled; enable it with PATCH {\"enabled\": true} first",
        ));
    }
    let d = state
        .store
        .queue_test_delivery(auth.tenant, &ep)
        .await?
        .ok_or_else(|| ApiError::internal("the test delivery was not queued"))?;
    Ok(
        HttpResponse::Accepted().json(WebhookDelivery::from(DeliveryTrail {
            delivery: d,
            attempts: Vec::new(),
        })),
    )
}

/// `?status=&limit=&cursor=` of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only deliveries in this state: `pending`, `delivering`, `succeeded`, `failed`.
    pub status: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An endpoint's deliveries, newest first, with every attempt: status code, latency, error, next retry.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveryListParams),
    responses((status = 200, description = "One page of deliveries", body = WebhookDeliveryList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryListParams>,
) -> ApiResult<web::Json<WebhookDeliveryList>> {
    let q = q.into_inner();
    let page = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    if let Some(s) = &q.status
        && ![
            DELIVERY_PENDING,
            DELIVERY_DELIVERING,
            DELIVERY_SUCCEEDED,
            DELIVERY_FAILED,
        ]
        .contains(&s.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "status must be pending, delivering, succeeded or failed",
        ));
    }
    let ep = endpoint(&state, auth.tenant, *id).await?;
    let rows = state
        .store
        .list_webhook_deliveries(
            auth.tenant,
            ep.id,
            q.status.as_deref(),
            page.after,
            page.limit,
        )
        .await?;
    Ok(web::Json(WebhookDeliveryList::from_page(
        rows,
        WebhookDelivery::from,
    )))
}

/// One delivery with every attempt.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id")
    ),
    responses((status = 200, description = "The delivery", body = WebhookDelivery), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/webhooks/{id}/deliveries/{delivery_id}")]
pub async fn delivery(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<WebhookDelivery>> {
    let (id, delivery_id) = path.into_inner();
    let trail = state
        .store
        .find_webhook_delivery(auth.tenant, id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(web::Json(trail.into()))
}

/// Send a failed (or delivered) delivery again, with a fresh retry schedule. The event keeps its id (the
/// `webhook-id` header), so a receiver that got it before can tell.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id")
    ),
    request_body = EmptyBody,
    responses((status = 202, description = "Queued again", body = WebhookDelivery), WebhookActionErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/webhooks/{id}/deliveries/{delivery_id}/replay")]
pub async fn replay(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    _body: ValidJson<EmptyBody>,
) -> ApiResult<HttpResponse> {
    let (id, delivery_id) = path.into_inner();
    let ep = endpoint(&state, auth.tenant, id).await?;
    match state
        .store
        .replay_webhook_delivery(auth.tenant, &ep, delivery_id)
        .await?
    {
        Ok(Some(trail)) => Ok(HttpResponse::Accepted().json(WebhookDelivery::from(trail))),
        Ok(None) => Err(ApiError::not_found("delivery")),
        Err(ReplayRefused::EndpointDisabled) => Err(ApiError::new(
            ErrorCode::WebhookDisabled,
            "the endpoint is disabled; enable it with PATCH {\"enabled\": true} first",
        )),
        Err(ReplayRefused::InProgress) => Err(ApiError::new(
            ErrorCode::DeliveryInProgress,
            "the delivery is queued or being delivered already",
        )),
    }
}
