//! The agent ↔ API wire format of `POST /v1/ingest` and `POST /v1/agents/heartbeat`.
//!
//! A batch carries the agent's identity and a list of records. Records are the JSON form of the `relaywatch-postfix`
//! correlator's output (`kind` = `delivery` or `finished`), so the agent can serialise what it has without copying.
//! Every delivery has a stable `id` derived from its content and position in the log: sending the same record twice
//! is harmless, the server counts it as a duplicate.
//!
//! Unknown fields are ignored, so newer agents can add fields without breaking older servers.

use serde::{Deserialize, Serialize};

/// Largest number of records in one batch.
pub const MAX_RECORDS_PER_BATCH: usize = 5_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInfo {
    /// The mail host the agent runs on (`mx1.example.com`).
    pub host_name: String,
    /// The agent's version.
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestBatch {
    pub agent: AgentInfo,
    /// Records in log order.
    pub records: Vec<serde_json::Value>,
}

/// Postfix's four-part delay breakdown `delays=a/b/c/d`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delays {
    pub before_queue: f64,
    pub in_queue: f64,
    pub connection: f64,
    pub transmission: f64,
}

/// The class of a failed attempt: hard or soft, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BounceClassWire {
    /// `hard`, `soft` or `undetermined`.
    pub severity: String,
    /// `unknown_recipient`, `mailbox_full`, `policy_authentication`, `reputation`, `rate_limited`, ...
    pub reason: String,
}

/// One delivery attempt: one Postfix status line with its message's context.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryRecord {
    /// Stable, time-ordered id (UUID text).
    pub id: String,
    /// RFC 3339.
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub host: String,
    #[serde(default)]
    pub instance: Option<String>,
    pub queue_id: String,
    #[serde(default)]
    pub daemon: Option<String>,
    pub recipient: Option<String>,
    #[serde(default)]
    pub orig_recipient: Option<String>,
    /// `sent`, `deferred`, `bounced`, `expired`, `force-expired`, `undeliverable`, `deliverable`, ...
    pub status: String,
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub relay: Option<String>,
    #[serde(default)]
    pub delay: Option<f64>,
    #[serde(default)]
    pub delays: Option<Delays>,
    #[serde(default)]
    pub reply: Option<String>,
    #[serde(default)]
    pub reply_code: Option<u16>,
    #[serde(default)]
    pub bounce_class: Option<BounceClassWire>,
    #[serde(default)]
    pub position: u32,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub nrcpt: Option<u32>,
    #[serde(default)]
    pub client: Option<String>,
    /// The DKIM signatures the signer (opendkim) logged adding to the message. Absent from agents that predate it, and
    /// when the log shows none.
    #[serde(default)]
    pub dkim_signatures: Vec<DkimSignatureWire>,
}

/// One DKIM signature of a message: the key is at `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DkimSignatureWire {
    /// `d=`, the signing domain.
    pub domain: String,
    /// `s=`, the selector.
    pub selector: String,
}

/// What the server did with a batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResult {
    /// Records stored now.
    pub accepted: u64,
    /// Records the server already had (same id): not stored again.
    pub duplicate: u64,
    /// Records refused; `rejections` says which and why. A rejected record will be refused again if resent.
    pub rejected: u64,
    /// Deliveries whose sender domain no tenant registered (shared-host agents only): counted, not stored.
    #[serde(default)]
    pub unrouted: u64,
    pub rejections: Vec<Rejection>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejection {
    /// Index of the record in the batch.
    pub index: usize,
    pub id: Option<String>,
    pub reason: String,
}

/// The agent's periodic report on itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    pub host_name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub lines_read: u64,
    #[serde(default)]
    pub records_shipped: u64,
    #[serde(default)]
    pub spool_bytes: u64,
    /// Seconds between the newest line read and now.
    #[serde(default)]
    pub lag_seconds: Option<f64>,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A Message-ID in the form Relaywatch stores and looks up: without the header's angle brackets (`id@host`), which
/// is how the agent sends it and how operators usually paste it. `<id@host>` and `id@host` name the same message.
pub fn bare_message_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::bare_message_id;

    #[test]
    fn message_ids_lose_their_angle_brackets_only() {
        assert_eq!(bare_message_id("<a.1@app.example>"), "a.1@app.example");
        assert_eq!(bare_message_id("a.1@app.example"), "a.1@app.example");
        assert_eq!(bare_message_id(" <a@b> "), "a@b");
        // Only a matching pair goes: a malformed id is kept as written.
        assert_eq!(bare_message_id("<a@b"), "<a@b");
        assert_eq!(bare_message_id("a@b>"), "a@b>");
        assert_eq!(bare_message_id("<>"), "");
    }
}
