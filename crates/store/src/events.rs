//! Tenant events and their fan-out to webhook endpoints: the one entry point every feature calls to tell the
//! outside world something happened.
//!
//! [`emit`] writes the event into the outbox (`webhook_events`) and one `pending` delivery per enabled endpoint
//! subscribed to its type, in one transaction (a savepoint when the caller passes its own transaction), so an
//! event is never half fanned out. Events are idempotent by id: emitting the same id again changes nothing, which
//! is what [`emit_keyed`] is for (the id is derived from a key the caller names, e.g. a listing's id and time).
//! An event no endpoint subscribes to is not stored at all.

use crate::entities::{webhook_delivery, webhook_endpoint, webhook_event};
use crate::{Store, StoreResult, now};
use chrono::{DateTime, Utc};
use relaywatch_domain::TenantId;
use relaywatch_domain::events as types;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionSession,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An event to emit.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event id: the `webhook-id` receivers deduplicate by.
    pub id: Uuid,
    pub event_type: String,
    /// The envelope's `data`.
    pub data: serde_json::Value,
    /// The envelope's `timestamp`: when it happened.
    pub occurred_at: DateTime<Utc>,
}

impl NewEvent {
    /// An event with a fresh (time-ordered) id.
    pub fn new(event_type: &str, data: serde_json::Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_string(),
            data,
            occurred_at: now(),
        }
    }

    /// An event whose id is derived from `key`: emitting it twice stores and delivers it once.
    pub fn keyed(tenant: TenantId, event_type: &str, key: &str, data: serde_json::Value) -> Self {
        Self {
            id: event_id(tenant, event_type, key),
            ..Self::new(event_type, data)
        }
    }

    pub fn at(mut self, occurred_at: DateTime<Utc>) -> Self {
        self.occurred_at = occurred_at;
        self
    }
}

/// The id of the event of `tenant` of this type and key.
pub fn event_id(tenant: TenantId, event_type: &str, key: &str) -> Uuid {
    let mut h = Sha256::new();
    for part in ["relaywatch-event", &tenant.to_string(), event_type, key] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// Emits one event of `tenant` to every enabled endpoint subscribed to `event_type`.
pub async fn emit<C>(
    db: &C,
    tenant: TenantId,
    event_type: &str,
    data: serde_json::Value,
) -> StoreResult<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    emit_events(db, tenant, vec![NewEvent::new(event_type, data)]).await?;
    Ok(())
}

/// Like [`emit`], idempotent by `key`: the same tenant, type and key make the same event, delivered once.
pub async fn emit_keyed<C>(
    db: &C,
    tenant: TenantId,
    event_type: &str,
    key: &str,
    data: serde_json::Value,
) -> StoreResult<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    emit_events(
        db,
        tenant,
        vec![NewEvent::keyed(tenant, event_type, key, data)],
    )
    .await?;
    Ok(())
}

/// What [`emit_events`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EmitReport {
    /// Events stored now (not before, and with at least one subscriber).
    pub events: u64,
    /// Deliveries queued for them.
    pub deliveries: u64,
}

/// Subscriptions of a tenant's enabled endpoints: (endpoint id, subscribed types).
async fn subscriptions(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> StoreResult<Vec<(Uuid, Vec<String>)>> {
    let rows: Vec<(Uuid, String)> = webhook_endpoint::Entity::find()
        .select_only()
        .column(webhook_endpoint::Column::Id)
        .column(webhook_endpoint::Column::EventTypes)
        .filter(webhook_endpoint::Column::TenantId.eq(tenant.as_uuid()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, types)| (id, split_types(&types)))
        .collect())
}

pub(crate) fn split_types(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Emits several events of one tenant in one transaction. Each goes to the enabled endpoints subscribed to its type.
pub async fn emit_events<C>(
    db: &C,
    tenant: TenantId,
    events: Vec<NewEvent>,
) -> StoreResult<EmitReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    if events.is_empty() {
        return Ok(EmitReport::default());
    }
    let subs = subscriptions(db, tenant).await?;
    let routed: Vec<(NewEvent, Vec<Uuid>)> = events
        .into_iter()
        .filter_map(|e| {
            let targets: Vec<Uuid> = subs
                .iter()
                .filter(|(_, types)| {
                    types::subscribed_to(types.iter().map(String::as_str), &e.event_type)
                })
                .map(|(id, _)| *id)
                .collect();
            (!targets.is_empty()).then_some((e, targets))
        })
        .collect();
    if routed.is_empty() {
        return Ok(EmitReport::default());
    }
    let txn = db.begin().await?;
    let report = store_routed(&txn, tenant, routed).await?;
    txn.commit().await?;
    Ok(report)
}

/// Emits one event to one endpoint, whatever it subscribed to (the test event). Returns the queued delivery.
pub(crate) async fn emit_to_endpoint<C>(
    db: &C,
    tenant: TenantId,
    endpoint: Uuid,
    event: NewEvent,
) -> StoreResult<Option<webhook_delivery::Model>>
where
    C: ConnectionTrait + TransactionTrait,
{
    let event_id = event.id;
    let txn = db.begin().await?;
    store_routed(&txn, tenant, vec![(event, vec![endpoint])]).await?;
    let row = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::TenantId.eq(tenant.as_uuid()))
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
        .filter(webhook_delivery::Column::EventId.eq(event_id))
        .one(&txn)
        .await?;
    txn.commit().await?;
    Ok(row)
}

async fn store_routed(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    routed: Vec<(NewEvent, Vec<Uuid>)>,
) -> StoreResult<EmitReport> {
    let mut report = EmitReport::default();
    let created = now();
    for (event, targets) in routed {
        let row = webhook_event::ActiveModel {
            id: Set(event.id),
            tenant_id: Set(tenant.as_uuid()),
            event_type: Set(event.event_type.clone()),
            data: Set(event.data.to_string()),
            occurred_at: Set(event.occurred_at),
            created_at: Set(created),
        };
        let inserted = webhook_event::Entity::insert_many([row])
            .on_conflict_do_nothing_on([webhook_event::Column::Id])
            .exec_without_returning(txn)
            .await?;
        if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            continue; // emitted before: its fan-out happened then
        }
        report.events += 1;
        let deliveries: Vec<webhook_delivery::ActiveModel> = targets
            .iter()
            .map(|endpoint| webhook_delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant.as_uuid()),
                endpoint_id: Set(*endpoint),
                event_id: Set(event.id),
                event_type: Set(event.event_type.clone()),
                status: Set(crate::webhooks::DELIVERY_PENDING.to_string()),
                attempts: Set(0),
                next_attempt_at: Set(Some(created)),
                lease_token: Set(None),
                lease_until: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                last_latency_ms: Set(None),
                last_attempt_at: Set(None),
                delivered_at: Set(None),
                created_at: Set(created),
                updated_at: Set(created),
            })
            .collect();
        report.deliveries += deliveries.len() as u64;
        webhook_delivery::Entity::insert_many(deliveries)
            .on_conflict_do_nothing_on([
                webhook_delivery::Column::EndpointId,
                webhook_delivery::Column::EventId,
            ])
            .exec_without_returning(txn)
            .await?;
    }
    Ok(report)
}

/// How long a node trusts what it read about a tenant's subscriptions. Changes made through this node are seen at
/// once; changes made through another node within this time.
const SUBSCRIPTION_CACHE_TTL: Duration = Duration::from_secs(5);

/// Per-node memory of which event types each tenant's endpoints subscribe to, so hot paths (ingest) can skip
/// building events nobody receives without asking the database on every batch; and the per-tenant budget of
/// `delivery.deferred` events.
#[derive(Debug, Default)]
pub struct EventCache {
    subscriptions: Mutex<HashMap<TenantId, (Instant, Vec<String>)>>,
    deferred_budget: Mutex<HashMap<TenantId, (i64, u32)>>,
}

impl Store {
    /// True when an enabled endpoint of `tenant` subscribes to `event_type` (cached for a few seconds).
    pub async fn subscribes(&self, tenant: TenantId, event_type: &str) -> StoreResult<bool> {
        let cached = {
            let map = self.events.subscriptions.lock().expect("cache lock");
            map.get(&tenant)
                .filter(|(at, _)| at.elapsed() < SUBSCRIPTION_CACHE_TTL)
                .map(|(_, types)| {
                    types::subscribed_to(types.iter().map(String::as_str), event_type)
                })
        };
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let mut all: Vec<String> = subscriptions(self.connection(), tenant)
            .await?
            .into_iter()
            .flat_map(|(_, t)| t)
            .collect();
        all.sort();
        all.dedup();
        let hit = types::subscribed_to(all.iter().map(String::as_str), event_type);
        self.events
            .subscriptions
            .lock()
            .expect("cache lock")
            .insert(tenant, (Instant::now(), all));
        Ok(hit)
    }

    /// Forgets what this node knows of a tenant's subscriptions (after an endpoint changed).
    pub fn forget_subscriptions(&self, tenant: TenantId) {
        self.events
            .subscriptions
            .lock()
            .expect("cache lock")
            .remove(&tenant);
    }

    /// Takes up to `wanted` of the tenant's `delivery.deferred` events for the current minute, out of
    /// `per_minute`; returns how many may be emitted. Per node.
    pub fn take_deferred_budget(&self, tenant: TenantId, wanted: u32, per_minute: u32) -> u32 {
        let minute = chrono::Utc::now().timestamp() / 60;
        let mut map = self.events.deferred_budget.lock().expect("cache lock");
        let entry = map.entry(tenant).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        let granted = wanted.min(per_minute.saturating_sub(entry.1));
        entry.1 += granted;
        granted
    }

    /// [`emit_events`] on this store's connection.
    pub async fn emit_events(
        &self,
        tenant: TenantId,
        events: Vec<NewEvent>,
    ) -> StoreResult<EmitReport> {
        emit_events(self.connection(), tenant, events).await
    }
}
