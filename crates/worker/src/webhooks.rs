//! Webhook delivery: every second a node claims the deliveries that are due (leased in the database, at most
//! `max_in_flight_per_endpoint` per endpoint across all nodes), sends each once through the SSRF-guarded sender,
//! and records the attempt: delivered, due again after an exponential backoff with jitter, or failed after the last
//! attempt. An endpoint that keeps failing is disabled (with an alert and a `webhook.disabled` event).
//!
//! A worker that dies mid-delivery leaves a lease that runs out; another worker then sends the delivery again with
//! the same `webhook-id`, so receivers can drop the repeat. A late result from the dead worker's lease is ignored.

use chrono::Utc;
use relaywatch_store::secrets::SecretCipher;
use relaywatch_store::webhooks::{
    AttemptOutcome, ClaimedDelivery, DisablePolicy, Recorded, signing_secrets,
};
use relaywatch_store::{Store, StoreResult};
use relaywatch_webhooks::{Delivery, Sender, WebhookSettings};
use std::sync::Arc;

/// Endpoints looked at per tick.
const ENDPOINTS_PER_TICK: u64 = 500;

/// Claims, sends and records webhook deliveries.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    sender: Sender,
    settings: Arc<WebhookSettings>,
    cipher: SecretCipher,
    name: String,
}

/// The JSON envelope of an event: `{"type", "timestamp", "data"}`, the same bytes on every attempt.
pub fn envelope(event: &relaywatch_store::entities::webhook_event::Model) -> Vec<u8> {
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    }))
    .unwrap_or_default()
}

impl Deliverer {
    pub fn new(
        store: Store,
        settings: WebhookSettings,
        cipher: SecretCipher,
        name: impl Into<String>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            sender: Sender::new(&settings)?,
            store,
            settings: Arc::new(settings),
            cipher,
            name: name.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leases what is due now, endpoint by endpoint.
    pub async fn claim_due(&self) -> StoreResult<Vec<ClaimedDelivery>> {
        let now = Utc::now();
        let lease_until = now
            + chrono::Duration::from_std(self.settings.lease())
                .unwrap_or_else(|_| chrono::Duration::minutes(5));
        let mut claimed = Vec::new();
        for endpoint in self
            .store
            .endpoints_with_due_deliveries_all_tenants(now, ENDPOINTS_PER_TICK)
            .await?
        {
            claimed.extend(
                self.store
                    .claim_webhook_deliveries(
                        endpoint,
                        now,
                        lease_until,
                        u64::from(self.settings.max_in_flight_per_endpoint.max(1)),
                    )
                    .await?,
            );
        }
        Ok(claimed)
    }

    /// Sends one claimed delivery (no bookkeeping).
    pub async fn send(&self, claim: &ClaimedDelivery) -> AttemptOutcome {
        let attempted_at = Utc::now();
        let secrets = match signing_secrets(&claim.endpoint, &self.cipher, attempted_at) {
            Ok(s) => s,
            Err(e) => {
                return AttemptOutcome {
                    attempted_at,
                    status_code: None,
                    latency_ms: 0,
                    error: Some(format!("{e}; rotate the endpoint's secret")),
                    response_excerpt: None,
                    succeeded: false,
                };
            }
        };
        let body = envelope(&claim.event);
        let id = claim.event.id.to_string();
        let out = self
            .sender
            .send(&Delivery {
                url: &claim.endpoint.url,
                id: &id,
                timestamp: attempted_at.timestamp(),
                body: &body,
                secrets: &secrets,
            })
            .await;
        AttemptOutcome {
            attempted_at,
            status_code: out.status,
            latency_ms: i64::try_from(out.latency.as_millis()).unwrap_or(i64::MAX),
            error: out.error,
            response_excerpt: out.response_excerpt,
            succeeded: out.succeeded,
        }
    }

    /// Records an attempt: done, due again after the backoff, or failed for good.
    pub async fn record(
        &self,
        claim: &ClaimedDelivery,
        outcome: &AttemptOutcome,
    ) -> StoreResult<Recorded> {
        let attempts_made = u32::try_from(claim.delivery.attempts.max(0)).unwrap_or(0) + 1;
        let retry_at = if outcome.succeeded {
            None
        } else {
            self.settings
                .retry_delay(attempts_made)
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| Utc::now() + d)
        };
        let policy = DisablePolicy {
            after_failures: i32::try_from(self.settings.disable_after_failures.max(1))
                .unwrap_or(i32::MAX),
            after: chrono::Duration::seconds(
                i64::try_from(self.settings.disable_after_secs).unwrap_or(i64::MAX / 1000),
            ),
        };
        let recorded = self
            .store
            .record_webhook_attempt(claim, outcome, retry_at, policy)
            .await?;
        if recorded.stale {
            tracing::info!(
                delivery = %claim.delivery.id,
                worker = %self.name,
                "webhook attempt not recorded: the lease ran out and another worker took the delivery over"
            );
        } else if recorded.disabled_endpoint {
            tracing::warn!(
                webhook = %claim.endpoint.id,
                url = %claim.endpoint.url,
                "webhook endpoint disabled after repeated failures"
            );
        }
        Ok(recorded)
    }

    async fn deliver(&self, claim: ClaimedDelivery) {
        let outcome = self.send(&claim).await;
        if let Err(e) = self.record(&claim, &outcome).await {
            // The lease runs out and another attempt follows; nothing is lost.
            tracing::warn!(delivery = %claim.delivery.id, error = %e, "could not record a webhook attempt");
        }
    }

    /// Claims what is due and delivers it, returning when every claimed delivery is recorded. Returns how many
    /// deliveries were attempted.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let claimed = self.claim_due().await?;
        let n = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|c| self.deliver(c))).await;
        Ok(n)
    }

    /// Claims what is due and delivers it in the background (the cron tick must not wait for slow receivers: the
    /// leases keep the next ticks from taking the same deliveries).
    pub async fn spawn_due(&self) -> StoreResult<usize> {
        let claimed = self.claim_due().await?;
        let n = claimed.len();
        for c in claimed {
            let this = self.clone();
            tokio::spawn(async move { this.deliver(c).await });
        }
        Ok(n)
    }
}

impl Deliverer {
    /// Removes events and delivery records older than the retention (`webhooks.retention_days`).
    pub async fn prune(&self, now: chrono::DateTime<Utc>) -> StoreResult<u64> {
        let cutoff = now - chrono::Duration::days(i64::from(self.settings.retention_days.max(1)));
        self.store.prune_webhook_events_all_tenants(cutoff).await
    }
}

/// Every few minutes: forget old events.
pub async fn on_prune_tick(
    _tick: apalis_cron::Tick,
    deliverer: apalis::prelude::Data<Deliverer>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let n = deliverer.prune(Utc::now()).await?;
    if n > 0 {
        tracing::info!(events = n, "old webhook events removed");
    }
    Ok(())
}

/// Every second: deliver what is due.
pub async fn on_tick(
    _tick: apalis_cron::Tick,
    deliverer: apalis::prelude::Data<Deliverer>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let n = deliverer.spawn_due().await?;
    if n > 0 {
        tracing::debug!(deliveries = n, "webhook deliveries started");
    }
    Ok(())
}
