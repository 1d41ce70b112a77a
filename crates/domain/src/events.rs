//! The events Relaywatch tells the outside world about, by webhook. Names are part of the API contract: add new ones,
//! never rename old ones.

/// A recipient's attempt bounced (one event per bounced recipient, with its class, DSN and the server's reply).
pub const DELIVERY_BOUNCED: &str = "delivery.bounced";
/// A recipient's message was deferred (the first deferral of each recipient of a message; rate-limited per tenant).
pub const DELIVERY_DEFERRED: &str = "delivery.deferred";
/// A sending IP or domain appeared on a blocklist.
pub const BLOCKLIST_LISTED: &str = "blocklist.listed";
/// A listing is gone.
pub const BLOCKLIST_CLEARED: &str = "blocklist.cleared";
/// A domain audit found errors the previous run did not have.
pub const AUDIT_REGRESSED: &str = "audit.regressed";
/// A domain audit no longer finds errors the previous run had.
pub const AUDIT_RESOLVED: &str = "audit.resolved";
/// An alert rule's condition started to hold (or Relaywatch raised an alert itself).
pub const ALERT_TRIGGERED: &str = "alert.triggered";
/// An open alert's condition no longer holds.
pub const ALERT_RESOLVED: &str = "alert.resolved";
/// An agent has not been heard from for longer than the agent_silent rule allows.
pub const AGENT_SILENT: &str = "agent.silent";
/// A silent agent was heard from again.
pub const AGENT_RECOVERED: &str = "agent.recovered";
/// A webhook endpoint kept failing and was disabled (sent to the tenant's other endpoints).
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
/// Sent by `POST /v1/webhooks/{id}/test` to that endpoint only; cannot be subscribed to.
pub const WEBHOOK_TEST: &str = "webhook.test";

/// Subscribing to this receives every type (except `webhook.test`, which only the test endpoint sends).
pub const ALL_EVENTS: &str = "*";

/// Every event type an endpoint can subscribe to, with what it means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        DELIVERY_BOUNCED,
        "an attempt to a recipient bounced: recipient, class, DSN, reply",
    ),
    (
        DELIVERY_DEFERRED,
        "a recipient's message was deferred (first deferral per recipient and message, rate-limited)",
    ),
    (BLOCKLIST_LISTED, "a sending IP or domain is on a blocklist"),
    (BLOCKLIST_CLEARED, "a blocklist listing is gone"),
    (
        AUDIT_REGRESSED,
        "a domain audit found errors the previous run did not have",
    ),
    (
        AUDIT_RESOLVED,
        "a domain audit no longer finds errors the previous run had",
    ),
    (ALERT_TRIGGERED, "an alert opened"),
    (ALERT_RESOLVED, "an alert was resolved"),
    (AGENT_SILENT, "an agent stopped reporting"),
    (AGENT_RECOVERED, "a silent agent reports again"),
    (
        WEBHOOK_DISABLED,
        "another webhook endpoint kept failing and was disabled",
    ),
];

/// True for a type an endpoint may subscribe to (`*` included).
pub fn is_subscribable(event_type: &str) -> bool {
    event_type == ALL_EVENTS || EVENT_TYPES.iter().any(|(t, _)| *t == event_type)
}

/// Whether an endpoint subscribed to `subscribed` receives `event_type`.
pub fn subscribed_to<'a>(mut subscribed: impl Iterator<Item = &'a str>, event_type: &str) -> bool {
    event_type != WEBHOOK_TEST && subscribed.any(|s| s == ALL_EVENTS || s == event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_by_name_or_star_but_never_the_test_event() {
        assert!(subscribed_to(
            ["delivery.bounced"].into_iter(),
            DELIVERY_BOUNCED
        ));
        assert!(!subscribed_to(
            ["delivery.bounced"].into_iter(),
            ALERT_TRIGGERED
        ));
        assert!(subscribed_to(["*"].into_iter(), AGENT_SILENT));
        assert!(!subscribed_to(["*"].into_iter(), WEBHOOK_TEST));
        assert!(is_subscribable("*"));
        assert!(is_subscribable("blocklist.listed"));
        assert!(!is_subscribable("webhook.test"));
        assert!(!is_subscribable("delivery.*"));
    }
}
