//! Webhook endpoints (URL, subscriptions, signing secrets encrypted at rest) and their deliveries: the queue the
//! delivery worker claims from, with every HTTP attempt recorded.
//!
//! A delivery is one event to one endpoint. Workers claim due deliveries with a lease (a token and an expiry) in a
//! transaction that first locks the endpoint's row, so at most `max_in_flight` deliveries of one endpoint are
//! leased at once across every node. A result is recorded only under the lease that claimed it: a worker that
//! comes back after its lease ran out (and another worker retried) changes nothing.

use crate::alerts::{OpenAlert, WEBHOOK_DISABLED};
use crate::entities::{webhook_attempt, webhook_delivery, webhook_endpoint, webhook_event};
use crate::events::{NewEvent, split_types};
use crate::secrets::{SecretCipher, UndecryptableSecret, generate_webhook_secret};
use crate::{Page, PageRequest, Store, StoreResult, now};
use chrono::{DateTime, Duration, Utc};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as types;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_DELIVERING: &str = "delivering";
pub const DELIVERY_SUCCEEDED: &str = "succeeded";
pub const DELIVERY_FAILED: &str = "failed";

/// The associated data a stored secret is bound to: its endpoint.
fn secret_context(endpoint: Uuid) -> String {
    format!("webhook:{endpoint}")
}

/// Subscribed event types as stored: sorted, without duplicates, comma-separated.
pub fn event_types_to_db(list: &[String]) -> String {
    let mut v: Vec<&str> = list.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

pub fn event_types_from_db(s: &str) -> Vec<String> {
    split_types(s)
}

/// A new endpoint, validated by the caller (URL vetted, event types known).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A delivery with its attempts, oldest attempt first.
#[derive(Debug, Clone)]
pub struct DeliveryTrail {
    pub delivery: webhook_delivery::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// Why a delivery cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayRefused {
    /// It is queued or being delivered already.
    InProgress,
    /// Its endpoint is disabled.
    EndpointDisabled,
}

impl Store {
    /// Creates an endpoint with a new signing secret; returns the row and the plaintext secret (shown once).
    pub async fn create_webhook(
        &self,
        tenant: TenantId,
        new: NewWebhook,
        cipher: &SecretCipher,
    ) -> StoreResult<(webhook_endpoint::Model, String)> {
        let id = Uuid::now_v7();
        let secret = generate_webhook_secret();
        let at = now();
        let row = webhook_endpoint::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.as_uuid()),
            url: Set(new.url),
            description: Set(new.description),
            event_types: Set(event_types_to_db(&new.event_types)),
            enabled: Set(new.enabled),
            disabled_reason: Set(None),
            disabled_at: Set(None),
            secret: Set(cipher.encrypt(&secret_context(id), &secret)),
            previous_secret: Set(None),
            previous_secret_expires_at: Set(None),
            consecutive_failures: Set(0),
            failing_since: Set(None),
            last_success_at: Set(None),
            last_failure_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let row = row.insert(self.connection()).await?;
        self.forget_subscriptions(tenant);
        Ok((row, secret))
    }

    pub async fn find_webhook(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<Option<webhook_endpoint::Model>> {
        crate::scoped::find::<webhook_endpoint::Entity>(self.connection(), tenant, id).await
    }

    pub async fn list_webhooks(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<webhook_endpoint::Model>> {
        crate::scoped::list::<webhook_endpoint::Entity>(self.connection(), tenant, page).await
    }

    /// Applies a change. Enabling a disabled endpoint clears its failure record and resolves the alert raised when
    /// it was disabled.
    pub async fn update_webhook(
        &self,
        tenant: TenantId,
        id: Uuid,
        update: WebhookUpdate,
    ) -> StoreResult<Option<webhook_endpoint::Model>> {
        let Some(row) = self.find_webhook(tenant, id).await? else {
            return Ok(None);
        };
        let was_enabled = row.enabled;
        let mut active: webhook_endpoint::ActiveModel = row.into();
        if let Some(url) = update.url {
            active.url = Set(url);
        }
        if let Some(d) = update.description {
            active.description = Set(d);
        }
        if let Some(t) = update.event_types {
            active.event_types = Set(event_types_to_db(&t));
        }
        let reenabled = update.enabled == Some(true) && !was_enabled;
        if let Some(enabled) = update.enabled {
            active.enabled = Set(enabled);
            if enabled {
                active.disabled_reason = Set(None);
                active.disabled_at = Set(None);
                active.consecutive_failures = Set(0);
                active.failing_since = Set(None);
            } else if was_enabled {
                active.disabled_reason = Set(Some("disabled through the API".into()));
                active.disabled_at = Set(Some(now()));
            }
        }
        active.updated_at = Set(now());
        let txn = self.connection().begin().await?;
        let row = active.update(&txn).await?;
        if reenabled {
            crate::alerts::resolve_open_by_key(
                &txn,
                tenant,
                &disabled_alert_open_key(id),
                "the webhook endpoint was enabled again",
            )
            .await?;
        }
        txn.commit().await?;
        self.forget_subscriptions(tenant);
        Ok(Some(row))
    }

    /// Deletes an endpoint with its deliveries; resolves its "disabled" alert if one is open.
    pub async fn delete_webhook(&self, tenant: TenantId, id: Uuid) -> StoreResult<bool> {
        let txn = self.connection().begin().await?;
        let deleted = crate::scoped::delete::<webhook_endpoint::Entity>(&txn, tenant, id).await?;
        if deleted {
            crate::alerts::resolve_open_by_key(
                &txn,
                tenant,
                &disabled_alert_open_key(id),
                "the webhook endpoint was deleted",
            )
            .await?;
        }
        txn.commit().await?;
        self.forget_subscriptions(tenant);
        Ok(deleted)
    }

    /// Replaces the signing secret. The old one keeps signing (beside the new one) for `overlap`, so receivers can
    /// switch without losing a delivery. Returns the row and the new plaintext secret.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: Uuid,
        overlap: Duration,
        cipher: &SecretCipher,
    ) -> StoreResult<Option<(webhook_endpoint::Model, String)>> {
        let Some(row) = self.find_webhook(tenant, id).await? else {
            return Ok(None);
        };
        let secret = generate_webhook_secret();
        let at = now();
        let old = row.secret.clone();
        // A current secret this installation cannot read (the installation secret changed) is not kept for overlap.
        let keep_old =
            overlap > Duration::zero() && cipher.decrypt(&secret_context(id), &old).is_ok();
        let mut active: webhook_endpoint::ActiveModel = row.into();
        active.secret = Set(cipher.encrypt(&secret_context(id), &secret));
        active.previous_secret = Set(keep_old.then_some(old));
        active.previous_secret_expires_at = Set(keep_old.then_some(at + overlap));
        active.updated_at = Set(at);
        Ok(Some((active.update(self.connection()).await?, secret)))
    }

    /// Queues the `webhook.test` event to one endpoint. `None` when there is no such endpoint.
    pub async fn queue_test_delivery(
        &self,
        tenant: TenantId,
        endpoint: &webhook_endpoint::Model,
    ) -> StoreResult<Option<webhook_delivery::Model>> {
        if endpoint.tenant_id != tenant.as_uuid() {
            return Ok(None);
        }
        let event = NewEvent::new(
            types::WEBHOOK_TEST,
            serde_json::json!({
                "webhook_id": endpoint.id,
                "message": "A test event from Relaywatch: if you can read this, the endpoint works and the signature can be verified.",
            }),
        );
        crate::events::emit_to_endpoint(self.connection(), tenant, endpoint.id, event).await
    }

    /// An endpoint's deliveries, newest first, each with its attempts. `before` is the cursor (last id seen).
    pub async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        endpoint: Uuid,
        status: Option<&str>,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<Page<DeliveryTrail>> {
        let mut q = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
            .order_by_desc(webhook_delivery::Column::Id);
        if let Some(s) = status {
            q = q.filter(webhook_delivery::Column::Status.eq(s));
        }
        if let Some(b) = before {
            q = q.filter(webhook_delivery::Column::Id.lt(b));
        }
        let rows = q.limit(limit + 1).all(self.connection()).await?;
        let page = crate::into_page(
            rows,
            PageRequest {
                after: before,
                limit,
            },
            |r| r.id,
        );
        let trails = self.with_attempts(tenant, page.items).await?;
        Ok(Page {
            items: trails,
            next_cursor: page.next_cursor,
        })
    }

    async fn with_attempts(
        &self,
        tenant: TenantId,
        deliveries: Vec<webhook_delivery::Model>,
    ) -> StoreResult<Vec<DeliveryTrail>> {
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id).collect();
        let mut by_delivery: BTreeMap<Uuid, Vec<webhook_attempt::Model>> = BTreeMap::new();
        if !ids.is_empty() {
            for a in webhook_attempt::Entity::find()
                .filter(webhook_attempt::Column::TenantId.eq(tenant.as_uuid()))
                .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
                .order_by_asc(webhook_attempt::Column::Id)
                .all(self.connection())
                .await?
            {
                by_delivery.entry(a.delivery_id).or_default().push(a);
            }
        }
        Ok(deliveries
            .into_iter()
            .map(|d| DeliveryTrail {
                attempts: by_delivery.remove(&d.id).unwrap_or_default(),
                delivery: d,
            })
            .collect())
    }

    pub async fn find_webhook_delivery(
        &self,
        tenant: TenantId,
        endpoint: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<DeliveryTrail>> {
        let Some(d) = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
            .filter(webhook_delivery::Column::Id.eq(id))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        Ok(self.with_attempts(tenant, vec![d]).await?.pop())
    }

    /// Queues a finished (failed or succeeded) delivery again, with a full retry schedule. The event keeps its id,
    /// so a receiver that did get it can tell.
    pub async fn replay_webhook_delivery(
        &self,
        tenant: TenantId,
        endpoint: &webhook_endpoint::Model,
        id: Uuid,
    ) -> StoreResult<Result<Option<DeliveryTrail>, ReplayRefused>> {
        let Some(trail) = self.find_webhook_delivery(tenant, endpoint.id, id).await? else {
            return Ok(Ok(None));
        };
        if !endpoint.enabled {
            return Ok(Err(ReplayRefused::EndpointDisabled));
        }
        let at = now();
        let res = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DELIVERY_PENDING),
            )
            .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(at))
            .col_expr(
                webhook_delivery::Column::LeaseToken,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                webhook_delivery::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(at))
            .filter(webhook_delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(webhook_delivery::Column::Id.eq(trail.delivery.id))
            .filter(webhook_delivery::Column::Status.is_in([DELIVERY_FAILED, DELIVERY_SUCCEEDED]))
            .exec(self.connection())
            .await?;
        if res.rows_affected == 0 {
            return Ok(Err(ReplayRefused::InProgress));
        }
        Ok(Ok(self
            .find_webhook_delivery(tenant, endpoint.id, id)
            .await?))
    }
}

/// The secrets that sign a delivery now: the current one, and the previous one while its overlap lasts.
pub fn signing_secrets(
    endpoint: &webhook_endpoint::Model,
    cipher: &SecretCipher,
    at: DateTime<Utc>,
) -> Result<Vec<String>, UndecryptableSecret> {
    let ctx = secret_context(endpoint.id);
    let mut out = vec![cipher.decrypt(&ctx, &endpoint.secret)?];
    if let (Some(prev), Some(until)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) && at < until
        && let Ok(p) = cipher.decrypt(&ctx, prev)
    {
        out.push(p);
    }
    Ok(out)
}

fn disabled_alert_open_key(endpoint: Uuid) -> String {
    crate::alerts::open_key(None, WEBHOOK_DISABLED, &format!("webhook:{endpoint}"))
}

// ---- The delivery worker's side: across tenants, by design (the worker serves every tenant). ----

/// A delivery leased to a worker, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: webhook_delivery::Model,
    pub event: webhook_event::Model,
    pub endpoint: webhook_endpoint::Model,
    pub lease_token: Uuid,
}

/// What one HTTP attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub succeeded: bool,
}

/// When an endpoint that keeps failing is disabled: after this many failed attempts in a row, failing for at least
/// this long.
#[derive(Debug, Clone, Copy)]
pub struct DisablePolicy {
    pub after_failures: i32,
    pub after: Duration,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The lease had run out and another worker took the delivery over: nothing was recorded.
    pub stale: bool,
    /// This failure disabled the endpoint.
    pub disabled_endpoint: bool,
}

fn due_condition(at: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(webhook_delivery::Column::Status.eq(DELIVERY_PENDING))
                .add(webhook_delivery::Column::NextAttemptAt.lte(at)),
        )
        .add(
            Condition::all()
                .add(webhook_delivery::Column::Status.eq(DELIVERY_DELIVERING))
                .add(webhook_delivery::Column::LeaseUntil.lte(at)),
        )
}

impl Store {
    /// Endpoints (of any tenant) with deliveries due at `at`: pending and due, or leased by a worker whose lease ran
    /// out.
    pub async fn endpoints_with_due_deliveries_all_tenants(
        &self,
        at: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Uuid>> {
        let mut out: Vec<Uuid> = Vec::new();
        // Deliveries of a disabled endpoint wait, untouched, until it is enabled again.
        let enabled = webhook_endpoint::Entity::find()
            .select_only()
            .column(webhook_endpoint::Column::Id)
            .filter(webhook_endpoint::Column::Enabled.eq(true));
        for cond in [
            Condition::all()
                .add(webhook_delivery::Column::Status.eq(DELIVERY_PENDING))
                .add(webhook_delivery::Column::NextAttemptAt.lte(at)),
            Condition::all()
                .add(webhook_delivery::Column::Status.eq(DELIVERY_DELIVERING))
                .add(webhook_delivery::Column::LeaseUntil.lte(at)),
        ] {
            let ids: Vec<Uuid> = webhook_delivery::Entity::find()
                .select_only()
                .column(webhook_delivery::Column::EndpointId)
                .distinct()
                .filter(cond)
                .filter(
                    webhook_delivery::Column::EndpointId
                        .in_subquery(sea_orm::QueryTrait::into_query(enabled.clone())),
                )
                .limit(limit)
                .into_tuple()
                .all(self.connection())
                .await?;
            for id in ids {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Leases up to `max_in_flight` minus the endpoint's live leases of its due deliveries, oldest first, until
    /// `lease_until`. The endpoint's row is locked for the duration, so concurrent claims (other workers, other
    /// nodes) count each other's leases. A disabled or deleted endpoint yields nothing.
    pub async fn claim_webhook_deliveries(
        &self,
        endpoint: Uuid,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_in_flight: u64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let txn = self.connection().begin().await?;
        // A write first: on PostgreSQL it locks the endpoint's row, on SQLite it takes the write lock, before
        // anything is read.
        let locked = webhook_endpoint::Entity::update_many()
            .col_expr(
                webhook_endpoint::Column::ConsecutiveFailures,
                Expr::col(webhook_endpoint::Column::ConsecutiveFailures),
            )
            .filter(webhook_endpoint::Column::Id.eq(endpoint))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .exec(&txn)
            .await?;
        if locked.rows_affected == 0 {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        let live = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
            .filter(webhook_delivery::Column::Status.eq(DELIVERY_DELIVERING))
            .filter(webhook_delivery::Column::LeaseUntil.gt(at))
            .count(&txn)
            .await?;
        let slots = max_in_flight.saturating_sub(live);
        if slots == 0 {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        let candidates = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
            .filter(due_condition(at))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(slots)
            .all(&txn)
            .await?;
        let mut claimed = Vec::new();
        for d in candidates {
            let token = Uuid::now_v7();
            let res = webhook_delivery::Entity::update_many()
                .col_expr(
                    webhook_delivery::Column::Status,
                    Expr::value(DELIVERY_DELIVERING),
                )
                .col_expr(webhook_delivery::Column::LeaseToken, Expr::value(token))
                .col_expr(
                    webhook_delivery::Column::LeaseUntil,
                    Expr::value(lease_until),
                )
                .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(at))
                .filter(webhook_delivery::Column::Id.eq(d.id))
                .filter(due_condition(at))
                .exec(&txn)
                .await?;
            if res.rows_affected == 1 {
                claimed.push((d, token));
            }
        }
        let endpoint_row = webhook_endpoint::Entity::find_by_id(endpoint)
            .one(&txn)
            .await?;
        let event_ids: Vec<Uuid> = claimed.iter().map(|(d, _)| d.event_id).collect();
        let events: BTreeMap<Uuid, webhook_event::Model> = if event_ids.is_empty() {
            BTreeMap::new()
        } else {
            webhook_event::Entity::find()
                .filter(webhook_event::Column::Id.is_in(event_ids))
                .all(&txn)
                .await?
                .into_iter()
                .map(|e| (e.id, e))
                .collect()
        };
        txn.commit().await?;
        let Some(endpoint_row) = endpoint_row else {
            return Ok(Vec::new());
        };
        Ok(claimed
            .into_iter()
            .filter_map(|(d, token)| {
                let event = events.get(&d.event_id)?.clone();
                Some(ClaimedDelivery {
                    delivery: webhook_delivery::Model {
                        status: DELIVERY_DELIVERING.into(),
                        lease_token: Some(token),
                        lease_until: Some(lease_until),
                        ..d
                    },
                    event,
                    endpoint: endpoint_row.clone(),
                    lease_token: token,
                })
            })
            .collect())
    }

    /// Records an attempt of a claimed delivery: the attempt row, the delivery's new state (`retry_at`: when to try
    /// again; `None` after a failure: give up) and the endpoint's health. A failure that makes the endpoint meet
    /// `disable` disables it, fails its queued deliveries, raises an alert and emits `webhook.disabled`.
    pub async fn record_webhook_attempt(
        &self,
        claim: &ClaimedDelivery,
        outcome: &AttemptOutcome,
        retry_at: Option<DateTime<Utc>>,
        disable: DisablePolicy,
    ) -> StoreResult<Recorded> {
        let d = &claim.delivery;
        let tenant = TenantId(d.tenant_id);
        let at = outcome.attempted_at;
        let txn = self.connection().begin().await?;
        // Endpoint first, as the claim does, so the two never wait on each other in opposite orders.
        let mut health = webhook_endpoint::Entity::update_many()
            .filter(webhook_endpoint::Column::Id.eq(d.endpoint_id))
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now()));
        health = if outcome.succeeded {
            health
                .col_expr(
                    webhook_endpoint::Column::ConsecutiveFailures,
                    Expr::value(0),
                )
                .col_expr(
                    webhook_endpoint::Column::FailingSince,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(webhook_endpoint::Column::LastSuccessAt, Expr::value(at))
        } else {
            health
                .col_expr(
                    webhook_endpoint::Column::ConsecutiveFailures,
                    Expr::col(webhook_endpoint::Column::ConsecutiveFailures).add(1),
                )
                .col_expr(
                    webhook_endpoint::Column::FailingSince,
                    Expr::from(Func::coalesce([
                        Expr::col(webhook_endpoint::Column::FailingSince),
                        Expr::value(at),
                    ])),
                )
                .col_expr(webhook_endpoint::Column::LastFailureAt, Expr::value(at))
        };
        // Lock order: endpoint, then delivery (as in the claim).
        health.exec(&txn).await?;
        let endpoint_now = webhook_endpoint::Entity::find_by_id(d.endpoint_id)
            .one(&txn)
            .await?;
        // An endpoint disabled meanwhile (by another attempt's failure, or paused) gets no retry of a failure.
        let retry_at = retry_at.filter(|_| endpoint_now.as_ref().is_some_and(|e| e.enabled));
        let error = match (&outcome.error, retry_at, &endpoint_now) {
            (Some(e), None, Some(ep)) if !ep.enabled && !outcome.succeeded => {
                Some(format!("{e}; not retried: the endpoint is disabled"))
            }
            (e, _, _) => e.clone(),
        };
        // The delivery must still be ours: it is updated only under the lease token that claimed it.
        let mut upd = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::value(d.attempts + 1),
            )
            .col_expr(
                webhook_delivery::Column::LeaseToken,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                webhook_delivery::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(outcome.status_code.map(i32::from)),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                Expr::value(error.clone()),
            )
            .col_expr(
                webhook_delivery::Column::LastLatencyMs,
                Expr::value(clamp_ms(outcome.latency_ms)),
            )
            .col_expr(webhook_delivery::Column::LastAttemptAt, Expr::value(at))
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now()))
            .filter(webhook_delivery::Column::Id.eq(d.id))
            .filter(webhook_delivery::Column::Status.eq(DELIVERY_DELIVERING))
            .filter(webhook_delivery::Column::LeaseToken.eq(claim.lease_token));
        upd = if outcome.succeeded {
            upd.col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DELIVERY_SUCCEEDED),
            )
            .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(at))
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
        } else if let Some(retry) = retry_at {
            upd.col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DELIVERY_PENDING),
            )
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(retry))
        } else {
            upd.col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DELIVERY_FAILED),
            )
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
        };
        if upd.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(Recorded {
                stale: true,
                ..Recorded::default()
            });
        }
        webhook_attempt::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(d.tenant_id),
            delivery_id: Set(d.id),
            endpoint_id: Set(d.endpoint_id),
            attempt: Set(d.attempts + 1),
            attempted_at: Set(at),
            status_code: Set(outcome.status_code.map(i32::from)),
            latency_ms: Set(clamp_ms(outcome.latency_ms)),
            error: Set(outcome.error.clone()),
            response_excerpt: Set(outcome.response_excerpt.clone()),
            succeeded: Set(outcome.succeeded),
        }
        .insert(&txn)
        .await?;
        let mut recorded = Recorded::default();
        if !outcome.succeeded
            && let Some(ep) = endpoint_now
            && ep.enabled
            && ep.consecutive_failures >= disable.after_failures
            && ep
                .failing_since
                .is_some_and(|since| at - since >= disable.after)
        {
            disable_endpoint(&txn, tenant, &ep, outcome, at).await?;
            recorded.disabled_endpoint = true;
        }
        txn.commit().await?;
        if recorded.disabled_endpoint {
            self.forget_subscriptions(tenant);
        }
        Ok(recorded)
    }

    /// Removes events (with their deliveries and attempts) created before `cutoff`, across tenants.
    pub async fn prune_webhook_events_all_tenants(
        &self,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // Deliveries and attempts go first, explicitly: foreign-key cascades are not relied on for bulk deletes.
        let old_events = webhook_event::Entity::find()
            .select_only()
            .column(webhook_event::Column::Id)
            .filter(webhook_event::Column::CreatedAt.lt(cutoff));
        let old_deliveries = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(
                webhook_delivery::Column::EventId
                    .in_subquery(sea_orm::QueryTrait::into_query(old_events.clone())),
            )
            .filter(webhook_delivery::Column::Status.is_in([DELIVERY_SUCCEEDED, DELIVERY_FAILED]));
        webhook_attempt::Entity::delete_many()
            .filter(
                webhook_attempt::Column::DeliveryId
                    .in_subquery(sea_orm::QueryTrait::into_query(old_deliveries.clone())),
            )
            .exec(self.connection())
            .await?;
        webhook_delivery::Entity::delete_many()
            .filter(
                webhook_delivery::Column::Id
                    .in_subquery(sea_orm::QueryTrait::into_query(old_deliveries)),
            )
            .exec(self.connection())
            .await?;
        // Events that still have a delivery in flight stay until it is done.
        let busy = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::EventId);
        let res = webhook_event::Entity::delete_many()
            .filter(webhook_event::Column::CreatedAt.lt(cutoff))
            .filter(
                webhook_event::Column::Id.not_in_subquery(sea_orm::QueryTrait::into_query(busy)),
            )
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected)
    }
}

fn clamp_ms(ms: i64) -> i32 {
    i32::try_from(Ord::max(ms, 0)).unwrap_or(i32::MAX)
}

async fn disable_endpoint(
    txn: &(impl ConnectionTrait + TransactionTrait),
    tenant: TenantId,
    ep: &webhook_endpoint::Model,
    outcome: &AttemptOutcome,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let since = ep.failing_since.unwrap_or(at);
    let reason = format!(
        "disabled after {} failed attempts in a row since {}; last error: {}",
        ep.consecutive_failures,
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        outcome.error.as_deref().unwrap_or("unknown"),
    );
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(reason.clone()),
        )
        .col_expr(webhook_endpoint::Column::DisabledAt, Expr::value(at))
        .filter(webhook_endpoint::Column::Id.eq(ep.id))
        .exec(txn)
        .await?;
    // What was still queued for it will not be sent; each can be replayed once the endpoint works again.
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DELIVERY_FAILED),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(format!("not sent: the endpoint was disabled ({reason})")),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(at))
        .filter(webhook_delivery::Column::EndpointId.eq(ep.id))
        .filter(webhook_delivery::Column::Status.eq(DELIVERY_PENDING))
        .exec(txn)
        .await?;
    let data = serde_json::json!({
        "webhook_id": ep.id,
        "url": ep.url,
        "reason": reason,
        "consecutive_failures": ep.consecutive_failures,
        "failing_since": since,
        "disabled_at": at,
    });
    let alert = OpenAlert {
        rule: None,
        kind: WEBHOOK_DISABLED.to_string(),
        scope_key: format!("webhook:{}", ep.id),
        summary: format!("Webhook endpoint {} was disabled: {reason}", ep.url),
        value: Some(f64::from(ep.consecutive_failures)),
        threshold: None,
        details: data.clone(),
        cooldown_minutes: 0,
    };
    crate::alerts::open_alert_in(
        txn,
        tenant,
        &alert,
        at,
        vec![NewEvent::new(types::WEBHOOK_DISABLED, data).at(at)],
    )
    .await?;
    Ok(())
}
