//! "Did the mail to this customer arrive, and if not, what did their server say?"

use crate::auth::{Auth, Read};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::{ReadErrors, non_empty};
use crate::startup::AppState;
use actix_web::{get, web};
use chrono::{DateTime, Utc};
use relaywatch_store::deliveries::{MessageCursor, MessageFilter, MessageTrail};
use relaywatch_store::entities::delivery;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// hard / soft / undetermined, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BounceClass {
    pub severity: String,
    pub reason: String,
}

/// Postfix's delays=a/b/c/d, in seconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delays {
    pub before_queue: Option<f64>,
    pub in_queue: Option<f64>,
    pub connection: Option<f64>,
    pub transmission: Option<f64>,
}

/// One delivery attempt as Postfix logged it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub id: uuid::Uuid,
    pub time: DateTime<Utc>,
    /// The mail host that made the attempt.
    pub host: String,
    pub queue_id: String,
    pub daemon: Option<String>,
    pub recipient: Option<String>,
    pub orig_recipient: Option<String>,
    /// sent, deferred, bounced, expired, ...
    pub status: String,
    pub dsn: Option<String>,
    pub relay: Option<String>,
    pub relay_host: Option<String>,
    pub relay_ip: Option<String>,
    pub provider: Option<String>,
    /// Seconds from queue entry to the end of this attempt.
    pub delay: Option<f64>,
    pub delays: Delays,
    /// What the receiving server (or Postfix) said.
    pub reply: Option<String>,
    pub reply_code: Option<i32>,
    pub bounce_class: Option<BounceClass>,
}

impl From<&delivery::Model> for Attempt {
    fn from(d: &delivery::Model) -> Self {
        Self {
            id: d.id,
            time: d.attempt_at,
            host: d.host.clone(),
            queue_id: d.queue_id.clone(),
            daemon: d.daemon.clone(),
            recipient: d.recipient.clone(),
            orig_recipient: d.orig_recipient.clone(),
            status: d.status.clone(),
            dsn: d.dsn.clone(),
            relay: d.relay.clone(),
            relay_host: d.relay_host.clone(),
            relay_ip: d.relay_ip.clone(),
            provider: d.provider.clone(),
            delay: d.delay,
            delays: Delays {
                before_queue: d.delay_before_queue,
                in_queue: d.delay_in_queue,
                connection: d.delay_connection,
                transmission: d.delay_transmission,
            },
            reply: d.reply.clone(),
            reply_code: d.reply_code,
            bounce_class: bounce_class(d),
        }
    }
}

fn bounce_class(d: &delivery::Model) -> Option<BounceClass> {
    match (&d.bounce_severity, &d.bounce_reason) {
        (Some(s), Some(r)) => Some(BounceClass {
            severity: s.clone(),
            reason: r.clone(),
        }),
        _ => None,
    }
}

/// Where one recipient of a message stands: its latest attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipientStatus {
    pub recipient: String,
    /// Status of the latest attempt.
    pub status: String,
    pub dsn: Option<String>,
    pub reply: Option<String>,
    pub relay: Option<String>,
    pub bounce_class: Option<BounceClass>,
    pub attempts: u32,
    pub last_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: uuid::Uuid,
    pub host: String,
    pub queue_id: String,
    /// The Message-ID header, without its angle brackets (`id@host`).
    pub message_id: Option<String>,
    /// The application's tag header value.
    pub tag: Option<String>,
    pub sender: Option<String>,
    pub size: Option<i64>,
    pub client: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    /// When Postfix removed it from the queue; absent while it is still queued.
    pub finished_at: Option<DateTime<Utc>>,
    pub recipients: Vec<RecipientStatus>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: Message,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

fn recipients(attempts: &[delivery::Model]) -> Vec<RecipientStatus> {
    let mut by: BTreeMap<&str, RecipientStatus> = BTreeMap::new();
    for d in attempts {
        let Some(r) = d.recipient.as_deref() else {
            continue;
        };
        let entry = by.entry(r).or_insert_with(|| RecipientStatus {
            recipient: r.to_string(),
            status: d.status.clone(),
            dsn: None,
            reply: None,
            relay: None,
            bounce_class: None,
            attempts: 0,
            last_attempt_at: d.attempt_at,
        });
        entry.attempts += 1;
        // Attempts arrive oldest first, so the last one seen is the current state.
        if d.attempt_at >= entry.last_attempt_at {
            entry.status = d.status.clone();
            entry.dsn = d.dsn.clone();
            entry.reply = d.reply.clone();
            entry.relay = d.relay.clone();
            entry.bounce_class = bounce_class(d);
            entry.last_attempt_at = d.attempt_at;
        }
    }
    by.into_values().collect()
}

fn message(t: &MessageTrail) -> Message {
    let m = &t.message;
    Message {
        id: m.id,
        host: m.host.clone(),
        queue_id: m.queue_id.clone(),
        message_id: m.message_id.clone(),
        tag: m.tag.clone(),
        sender: m.sender.clone(),
        size: m.size,
        client: m.client.clone(),
        first_seen_at: m.first_seen_at,
        finished_at: m.finished_at,
        recipients: recipients(&t.attempts),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// The application's tag header value.
    pub tag: Option<String>,
    /// A recipient address: messages with at least one attempt to it.
    pub recipient: Option<String>,
    /// The Message-ID header, with or without angle brackets.
    pub message_id: Option<String>,
    /// The envelope sender.
    pub sender: Option<String>,
    /// Messages with at least one attempt of this status (sent, deferred, bounced, expired).
    pub status: Option<String>,
    /// Messages with at least one attempt of this bounce reason (unknown_recipient, mailbox_full, reputation, ...).
    pub bounce_class: Option<String>,
    /// First seen at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// First seen before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// Find messages by tag, recipient, Message-ID, sender, status or bounce class, newest first, each with where every
/// recipient stands.
#[utoipa::path(
    tag = "messages",
    operation_id = "list_messages",
    params(MessageQuery),
    responses((status = 200, description = "One page of messages", body = MessageList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/messages")]
pub async fn list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<MessageQuery>,
) -> ApiResult<web::Json<MessageList>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 200",
        ));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(MessageCursor::decode(c).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "cursor is not one this API returned",
            )
        })?),
        None => None,
    };
    // Stored bare; the header's form with angle brackets finds the same message.
    let message_id =
        non_empty(&q.message_id).map(|m| relaywatch_domain::wire::bare_message_id(&m).to_string());
    let filter = MessageFilter {
        tag: non_empty(&q.tag),
        recipient: non_empty(&q.recipient),
        message_id,
        sender: non_empty(&q.sender),
        status: non_empty(&q.status),
        bounce_class: non_empty(&q.bounce_class),
        from: q.from,
        to: q.to,
    };
    let (trails, next) = state
        .store
        .list_messages(auth.tenant, &filter, cursor, limit)
        .await?;
    Ok(web::Json(MessageList {
        items: trails.iter().map(message).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// A message's full trail: every attempt in order, with reply texts and delays.
#[utoipa::path(
    tag = "messages",
    operation_id = "get_message",
    params(("id" = uuid::Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The message and its attempts", body = MessageDetail), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/messages/{id}")]
pub async fn get(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<MessageDetail>> {
    let trail = state
        .store
        .find_message(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    Ok(web::Json(MessageDetail {
        message: message(&trail),
        attempts: trail.attempts.iter().map(Attempt::from).collect(),
    }))
}

/// One attempt to an address, with the message it belonged to.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientAttempt {
    #[serde(flatten)]
    pub attempt: Attempt,
    pub message: uuid::Uuid,
    pub tag: Option<String>,
    pub sender: Option<String>,
}

/// Why didn't this address get our mail?
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientReport {
    pub address: String,
    /// The latest final outcome to this address was a hard bounce: stop mailing it.
    pub hard_bounced: bool,
    /// Status of the latest attempt, if any.
    pub last_status: Option<String>,
    /// The latest attempts, newest first.
    pub deliveries: Vec<RecipientAttempt>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// How many attempts to return, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
}

/// The latest deliveries to an address, and whether it hard-bounced.
#[utoipa::path(
    tag = "messages",
    operation_id = "get_recipient",
    params(("address" = String, Path, description = "Recipient address"), RecipientQuery),
    responses((status = 200, description = "The address's recent history", body = RecipientReport), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/recipients/{address}")]
pub async fn recipient(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    address: web::Path<String>,
    q: web::Query<RecipientQuery>,
) -> ApiResult<web::Json<RecipientReport>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 200",
        ));
    }
    let address = address.into_inner();
    let history = state
        .store
        .recipient_history(auth.tenant, &address, limit)
        .await?;
    let last_final = history.iter().find(|d| d.status != "deferred");
    let hard_bounced = last_final.is_some_and(|d| {
        matches!(d.status.as_str(), "bounced" | "expired")
            && d.bounce_severity.as_deref() == Some("hard")
    });
    Ok(web::Json(RecipientReport {
        address,
        hard_bounced,
        last_status: history.first().map(|d| d.status.clone()),
        deliveries: history
            .iter()
            .map(|d| RecipientAttempt {
                attempt: Attempt::from(d),
                message: d.message_ref,
                tag: d.tag.clone(),
                sender: d.sender.clone(),
            })
            .collect(),
    }))
}
