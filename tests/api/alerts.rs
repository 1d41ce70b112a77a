//! Alert rules: the API (defaults, validation, scopes), and for every kind the data that triggers it, data that must
//! not, its resolution and its cool-down, evaluated by the worker's evaluator at chosen times over stored data.

use chrono::{DateTime, Duration, Utc};
use relaywatch_domain::Scope;
use relaywatch_store::entities::{agent, alert_rule, webhook_event};
use relaywatch_tests::{TestApp, dns, spawn_app, spawn_app_allowing_loopback};
use relaywatch_worker::alerts::{Evaluation, evaluate_rule_with_listings, evaluate_tenant};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const GOOGLE: (&str, &str) = ("gmail.com", "gmail-smtp-in.l.google.com[142.250.1.27]:25");
const MICROSOFT: (&str, &str) = (
    "outlook.com",
    "outlook-com.olc.protection.outlook.com[52.101.1.1]:25",
);

/// `n` attempts of `status` to a provider's domain from `sender`, `minutes_ago`; bounces are hard unless `soft`.
fn attempts(
    n: usize,
    status: &str,
    to: (&str, &str),
    sender: &str,
    minutes_ago: i64,
    soft: bool,
) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let q = format!("Q{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
            let mut d =
                relaywatch_tests::delivery(&q, &format!("user{i}@{}", to.0), status, minutes_ago);
            d["relay"] = json!(to.1);
            d["sender"] = json!(sender);
            d["bounce_class"] = match (status, soft) {
                ("sent", _) => Value::Null,
                ("deferred", _) | (_, true) => {
                    json!({"severity": "soft", "reason": "rate_limited"})
                }
                _ => json!({"severity": "hard", "reason": "unknown_recipient"}),
            };
            d
        })
        .collect()
}

async fn ingest(app: &TestApp, records: Vec<Value>) {
    let n = records.len();
    let r = app.ingest(&app.admin_key, records).await;
    assert_eq!(r.body["accepted"], n, "{}", r.text);
}

/// Deletes every rule of the tenant and creates this one; returns its row.
async fn only_rule(app: &TestApp, body: Value) -> alert_rule::Model {
    let k = &app.admin_key;
    for r in app.get("/v1/alert-rules?limit=500", k).await.body["items"]
        .as_array()
        .unwrap()
    {
        let id = r["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/v1/alert-rules/{id}"), k).await.status,
            204
        );
    }
    let r = app.post("/v1/alert-rules", k, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.store
        .find_alert_rule(app.tenant_id, r.id().parse().unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn eval(app: &TestApp, at: DateTime<Utc>) -> Evaluation {
    evaluate_tenant(&app.store, app.tenant_id, at)
        .await
        .unwrap()
}

async fn alerts(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/alerts{query}"), &app.admin_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// Data of the events of this type in the outbox, oldest first (an endpoint subscribed to `*` must exist).
async fn events(app: &TestApp, event_type: &str) -> Vec<Value> {
    webhook_event::Entity::find()
        .filter(webhook_event::Column::TenantId.eq(app.tenant_id.as_uuid()))
        .filter(webhook_event::Column::EventType.eq(event_type))
        .order_by_asc(webhook_event::Column::Id)
        .all(app.store.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

async fn subscribe_everything(app: &TestApp) {
    let r = app
        .post(
            "/v1/webhooks",
            &app.admin_key,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn opened(n: usize) -> Evaluation {
    Evaluation {
        opened: n,
        resolved: 0,
    }
}

fn resolved(n: usize) -> Evaluation {
    Evaluation {
        opened: 0,
        resolved: n,
    }
}

const NOTHING: Evaluation = Evaluation {
    opened: 0,
    resolved: 0,
};

#[tokio::test]
async fn tenants_start_with_a_default_rule_of_every_kind() {
    let app = spawn_app().await;
    let r = app.get("/v1/alert-rules", &app.admin_key).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{}", r.text);
    let kinds: BTreeSet<&str> = items.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "acceptance_rate_below",
            "agent_silent",
            "audit_regressed",
            "blocklist_listed",
            "hard_bounce_rate_above",
            "provider_bounce_spike",
            "provider_deferral_spike",
        ])
    );
    assert!(items.iter().all(|r| r["enabled"] == true));
    let (_, key_b) = app.other_tenant("tenant b").await;
    let b = app.get("/v1/alert-rules", &key_b).await;
    assert_eq!(b.body["items"].as_array().unwrap().len(), 8);
    // A quiet tenant raises nothing with its defaults.
    assert_eq!(eval(&app, Utc::now()).await, NOTHING);
}

#[tokio::test]
async fn rules_are_validated_against_their_kind() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    for (body, field) in [
        (json!({"kind": "acceptance_rate_below"}), "threshold"),
        (
            json!({"kind": "acceptance_rate_below", "threshold": 0}),
            "threshold",
        ),
        (
            json!({"kind": "acceptance_rate_below", "threshold": 101}),
            "threshold",
        ),
        (
            json!({"kind": "acceptance_rate_below", "threshold": 90, "window_minutes": 0}),
            "window_minutes",
        ),
        (
            json!({"kind": "acceptance_rate_below", "threshold": 90, "min_volume": 0}),
            "min_volume",
        ),
        (
            json!({"kind": "acceptance_rate_below", "threshold": 90, "scope_value": "google"}),
            "scope_value",
        ),
        (
            json!({"kind": "provider_deferral_spike", "threshold": 50, "scope": "overall"}),
            "scope",
        ),
        (
            json!({"kind": "blocklist_listed", "threshold": 1}),
            "threshold",
        ),
        (
            json!({"kind": "audit_regressed", "window_minutes": 5}),
            "window_minutes",
        ),
        (
            json!({"kind": "agent_silent", "window_minutes": 1}),
            "window_minutes",
        ),
        (
            json!({"kind": "agent_silent", "cooldown_minutes": -1}),
            "cooldown_minutes",
        ),
        (json!({"kind": "mood_swing"}), "kind"),
        (json!({"kind": "agent_silent", "name": ""}), "name"),
    ] {
        let r = app.post("/v1/alert-rules", k, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.text);
    }
    let r = app
        .post(
            "/v1/alert-rules",
            k,
            json!({"kind": "provider_bounce_spike", "threshold": 25, "scope_value": "Google"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["scope"], "provider");
    assert_eq!(r.body["scope_value"], "google");
    assert_eq!(r.body["window_minutes"], 60);
    assert_eq!(r.body["min_volume"], 20);
    assert_eq!(r.body["cooldown_minutes"], 60);
    assert_eq!(r.body["name"], "Bounce spike at a provider");
    let id = r.id();
    let r = app
        .patch(
            &format!("/v1/alert-rules/{id}"),
            k,
            json!({"kind": "agent_silent"}),
        )
        .await;
    assert_eq!(r.status, 422, "the kind cannot change: {}", r.text);
    let r = app
        .patch(
            &format!("/v1/alert-rules/{id}"),
            k,
            json!({"threshold": 40, "window_minutes": 10}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["threshold"], 40.0);
    assert_eq!(r.body["window_minutes"], 10);
    let r = app
        .patch(
            &format!("/v1/alert-rules/{id}"),
            k,
            json!({"threshold": 400}),
        )
        .await;
    assert_eq!(r.status, 422);

    let read = app.key_with(&[Scope::Read]).await;
    assert_eq!(app.get("/v1/alert-rules", &read).await.status, 200);
    assert_eq!(
        app.get(&format!("/v1/alert-rules/{id}"), &read)
            .await
            .status,
        200
    );
    assert_eq!(app.get("/v1/alerts", &read).await.status, 200);
    let r = app
        .post("/v1/alert-rules", &read, json!({"kind": "agent_silent"}))
        .await;
    assert_eq!((r.status, r.code()), (403, "insufficient_scope"));
    let r = app.delete(&format!("/v1/alert-rules/{id}"), &read).await;
    assert_eq!(r.status, 403);
    let r = app.get("/v1/alerts?status=maybe", k).await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
}

#[tokio::test]
async fn acceptance_rate_overall_triggers_resolves_and_cools_down() {
    let app = spawn_app_allowing_loopback().await;
    subscribe_everything(&app).await;
    only_rule(
        &app,
        json!({"kind": "acceptance_rate_below", "threshold": 90, "window_minutes": 60,
               "min_volume": 10, "cooldown_minutes": 30}),
    )
    .await;
    let t0 = Utc::now();
    let s = "app@example.com";
    // Too few outcomes to judge.
    ingest(&app, attempts(5, "bounced", GOOGLE, s, 5, false)).await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    // 95 % accepted: fine. Deferrals are not outcomes and do not lower the rate.
    ingest(&app, attempts(95, "sent", GOOGLE, s, 5, false)).await;
    ingest(&app, attempts(50, "deferred", GOOGLE, s, 5, false)).await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    // Attempts older than the window do not count.
    ingest(&app, attempts(100, "bounced", GOOGLE, s, 90, false)).await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    // 95 of 110: 86.4 % < 90 %.
    ingest(&app, attempts(10, "bounced", GOOGLE, s, 5, false)).await;
    assert_eq!(eval(&app, t0).await, opened(1));
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["scope"], "overall");
    assert_eq!(open[0]["kind"], "acceptance_rate_below");
    assert_eq!(open[0]["value"], 86.4);
    assert_eq!(open[0]["threshold"], 90.0);
    assert_eq!(open[0]["details"]["sent"], 95);
    assert!(
        open[0]["summary"].as_str().unwrap().contains("86.4 %"),
        "{}",
        open[0]
    );
    // No storm: still one.
    assert_eq!(eval(&app, t0 + Duration::minutes(1)).await, NOTHING);
    assert_eq!(alerts(&app, "").await.len(), 1);
    let triggered = events(&app, "alert.triggered").await;
    assert_eq!(triggered.len(), 1);
    assert_eq!(triggered[0]["id"], open[0]["id"]);
    assert_eq!(triggered[0]["kind"], "acceptance_rate_below");
    assert!(triggered[0]["rule_name"].is_string());

    // Recovery: 295 of 310 accepted.
    ingest(&app, attempts(200, "sent", GOOGLE, s, 3, false)).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(2)).await, resolved(1));
    assert!(alerts(&app, "?status=open").await.is_empty());
    let done = alerts(&app, "?status=resolved").await;
    assert_eq!(done[0]["id"], open[0]["id"]);
    assert!(done[0]["resolved_at"].is_string());
    assert_eq!(events(&app, "alert.resolved").await.len(), 1);

    // Breached again within the cool-down: quiet; after it: a new alert.
    ingest(&app, attempts(100, "bounced", GOOGLE, s, 3, false)).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(3)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(20)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(33)).await, opened(1));
    assert_eq!(alerts(&app, "").await.len(), 2);
    assert_eq!(events(&app, "alert.triggered").await.len(), 2);
}

#[tokio::test]
async fn acceptance_rate_is_judged_per_provider_and_per_sender_domain() {
    let app = spawn_app().await;
    let t0 = Utc::now();
    ingest(
        &app,
        attempts(10, "sent", GOOGLE, "a@shop.example", 5, false),
    )
    .await;
    ingest(
        &app,
        attempts(20, "bounced", GOOGLE, "a@shop.example", 5, false),
    )
    .await;
    ingest(
        &app,
        attempts(40, "sent", MICROSOFT, "a@news.example", 5, false),
    )
    .await;
    ingest(
        &app,
        attempts(1, "bounced", MICROSOFT, "a@news.example", 5, false),
    )
    .await;

    let rule = only_rule(
        &app,
        json!({"kind": "acceptance_rate_below", "threshold": 80, "window_minutes": 30,
               "min_volume": 10, "scope": "provider", "cooldown_minutes": 10}),
    )
    .await;
    assert_eq!(eval(&app, t0).await, opened(1));
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["scope"], "provider:google");
    assert_eq!(open[0]["rule_id"], rule.id.to_string());
    // Resolution and cool-down for one provider.
    ingest(
        &app,
        attempts(200, "sent", GOOGLE, "a@shop.example", 4, false),
    )
    .await;
    assert_eq!(eval(&app, t0).await, resolved(1));
    ingest(
        &app,
        attempts(400, "bounced", GOOGLE, "a@shop.example", 4, false),
    )
    .await;
    assert_eq!(eval(&app, t0 + Duration::minutes(1)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(12)).await, opened(1));

    // Only one provider watched: Microsoft is healthy, so nothing.
    only_rule(
        &app,
        json!({"kind": "acceptance_rate_below", "threshold": 80, "scope": "provider",
               "scope_value": "microsoft", "min_volume": 10}),
    )
    .await;
    assert_eq!(eval(&app, t0).await, NOTHING);

    // Per sender domain: shop.example is bad, news.example is fine.
    only_rule(
        &app,
        json!({"kind": "acceptance_rate_below", "threshold": 80, "scope": "sender_domain",
               "min_volume": 10}),
    )
    .await;
    assert_eq!(eval(&app, t0).await, opened(1));
    let scopes: Vec<String> = alerts(&app, "?status=open")
        .await
        .iter()
        .map(|a| a["scope"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(scopes, ["sender_domain:shop.example"]);
}

/// A provider spike rule (`kind`, 50 %, 30 minutes, at least 10 attempts, 10 minutes cool-down): Google's attempts
/// in `status` trigger it, Microsoft's do not; recovery resolves it; a relapse waits out the cool-down; attempts that
/// leave the window resolve it too.
async fn provider_spike(kind: &str, status: &str) {
    let app = spawn_app().await;
    only_rule(
        &app,
        json!({"kind": kind, "threshold": 50, "window_minutes": 30, "min_volume": 10,
               "cooldown_minutes": 10}),
    )
    .await;
    let s = "app@example.com";
    let t0 = Utc::now();
    // Microsoft: 2 of 20 in the window, and many more before it: no spike.
    ingest(&app, attempts(18, "sent", MICROSOFT, s, 1, false)).await;
    ingest(&app, attempts(2, status, MICROSOFT, s, 1, false)).await;
    ingest(&app, attempts(40, status, MICROSOFT, s, 45, false)).await;
    // Google: fewer than 10 attempts, all failing: too few to judge.
    ingest(&app, attempts(6, status, GOOGLE, s, 1, false)).await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    // Google: 12 of 16.
    ingest(&app, attempts(6, status, GOOGLE, s, 1, false)).await;
    ingest(&app, attempts(4, "sent", GOOGLE, s, 1, false)).await;
    assert_eq!(eval(&app, t0).await, opened(1));
    assert_eq!(
        eval(&app, t0).await,
        NOTHING,
        "one open alert per rule and scope"
    );
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["scope"], "provider:google");
    assert_eq!(open[0]["kind"], kind);
    assert_eq!(open[0]["value"], 75.0);
    // Recovery: 12 of 96.
    ingest(&app, attempts(80, "sent", GOOGLE, s, 1, false)).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(1)).await, resolved(1));
    // Relapse: 112 of 196. Quiet until the cool-down (10 minutes from the resolution) is over.
    ingest(&app, attempts(100, status, GOOGLE, s, 1, false)).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(2)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(10)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(12)).await, opened(1));
    // Once the attempts have left the window, it is resolved.
    assert_eq!(eval(&app, t0 + Duration::minutes(40)).await, resolved(1));
    assert_eq!(alerts(&app, "?status=resolved").await.len(), 2);
}

#[tokio::test]
async fn a_deferral_spike_at_one_provider_triggers_and_resolves() {
    provider_spike("provider_deferral_spike", "deferred").await;
}

#[tokio::test]
async fn a_bounce_spike_at_one_provider_triggers_and_resolves() {
    provider_spike("provider_bounce_spike", "bounced").await;
}

#[tokio::test]
async fn a_hard_bounce_rate_above_the_threshold_triggers_and_soft_bounces_do_not() {
    let app = spawn_app().await;
    only_rule(
        &app,
        json!({"kind": "hard_bounce_rate_above", "threshold": 5, "window_minutes": 60,
               "min_volume": 20, "cooldown_minutes": 15}),
    )
    .await;
    let s = "app@example.com";
    let t0 = Utc::now();
    ingest(&app, attempts(100, "sent", GOOGLE, s, 5, false)).await;
    ingest(&app, attempts(3, "bounced", GOOGLE, s, 5, false)).await;
    // 20 soft bounces: not hard.
    ingest(&app, attempts(20, "bounced", GOOGLE, s, 5, true)).await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    // 10 of 130 hard: 7.7 %.
    ingest(&app, attempts(5, "bounced", MICROSOFT, s, 5, false)).await;
    ingest(&app, attempts(2, "bounced", GOOGLE, s, 5, false)).await;
    assert_eq!(eval(&app, t0).await, opened(1));
    let open = alerts(&app, "?status=open&kind=hard_bounce_rate_above").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["value"], 7.7);
    assert_eq!(open[0]["details"]["hard_bounced"], 10);
    ingest(&app, attempts(200, "sent", GOOGLE, s, 4, false)).await;
    assert_eq!(eval(&app, t0).await, resolved(1));
    ingest(&app, attempts(40, "bounced", GOOGLE, s, 4, false)).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(5)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(16)).await, opened(1));
}

/// The blocklist store end to end: a recorded listing opens the rule's alert through the real source and sends
/// `blocklist.listed`; a clean check resolves it and sends `blocklist.cleared`. Informational listings stay quiet.
#[tokio::test]
async fn recorded_listings_feed_the_rule_and_the_webhook_events() {
    let app = spawn_app_allowing_loopback().await;
    subscribe_everything(&app).await;
    only_rule(&app, json!({"kind": "blocklist_listed"})).await;
    let verdict =
        |zone: &str, state: &str, informational: bool| relaywatch_store::blocklists::CheckRecord {
            subject: "192.0.2.10".into(),
            subject_kind: "ipv4".into(),
            zone: zone.into(),
            state: state.into(),
            codes: if state == "listed" {
                vec!["127.0.0.2".into()]
            } else {
                vec![]
            },
            meaning: (state == "listed").then(|| "SBL".to_string()),
            reason: None,
            informational,
            delist_url: Some("https://check.spamhaus.org/results/?query=192.0.2.10".into()),
        };
    let record = |records: Vec<relaywatch_store::blocklists::CheckRecord>| {
        let app = &app;
        async move {
            app.store
                .record_blocklist_results(app.tenant_id, &records, Utc::now())
                .await
                .unwrap()
        }
    };
    let t0 = Utc::now();
    record(vec![
        verdict("zen.spamhaus.org", "listed", false),
        verdict("dnsbl-3.uceprotect.net", "listed", true),
    ])
    .await;
    assert_eq!(
        eval(&app, t0).await,
        opened(1),
        "the informational listing does not alert"
    );
    let listed = events(&app, "blocklist.listed").await;
    assert_eq!(listed.len(), 2);
    let zen = listed
        .iter()
        .find(|e| e["zone"] == "zen.spamhaus.org")
        .unwrap();
    assert_eq!(zen["subject"], "192.0.2.10");
    assert_eq!(zen["codes"], json!(["127.0.0.2"]));
    assert_eq!(zen["informational"], false);
    assert!(zen["delist_url"].as_str().unwrap().contains("spamhaus"));
    // Still listed: no new event, no new alert.
    record(vec![verdict("zen.spamhaus.org", "listed", false)]).await;
    assert_eq!(events(&app, "blocklist.listed").await.len(), 2);
    assert_eq!(eval(&app, t0 + Duration::minutes(1)).await, NOTHING);
    record(vec![verdict("zen.spamhaus.org", "clean", false)]).await;
    assert_eq!(eval(&app, t0 + Duration::minutes(2)).await, resolved(1));
    let cleared = events(&app, "blocklist.cleared").await;
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["zone"], "zen.spamhaus.org");
}

#[tokio::test]
async fn a_blocklist_listing_triggers_and_its_clearing_resolves() {
    let app = spawn_app_allowing_loopback().await;
    subscribe_everything(&app).await;
    let rule = only_rule(
        &app,
        json!({"kind": "blocklist_listed", "cooldown_minutes": 30}),
    )
    .await;
    let t0 = Utc::now();
    let listed = vec![("192.0.2.10".to_string(), "zen.spamhaus.org".to_string())];
    let run = |listings: Vec<(String, String)>, at: DateTime<Utc>| {
        let (store, tenant, rule) = (app.store.clone(), app.tenant_id, rule.clone());
        async move {
            evaluate_rule_with_listings(&store, tenant, &rule, at, listings)
                .await
                .unwrap()
        }
    };
    // Nothing listed; and the store's source (no listing recorded) lists nothing.
    assert_eq!(run(Vec::new(), t0).await, NOTHING);
    assert_eq!(eval(&app, t0).await, NOTHING);
    assert_eq!(run(listed.clone(), t0).await, opened(1));
    assert_eq!(
        run(listed.clone(), t0).await,
        NOTHING,
        "one open alert per listing"
    );
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open[0]["scope"], "blocklist:zen.spamhaus.org:192.0.2.10");
    assert!(
        open[0]["summary"]
            .as_str()
            .unwrap()
            .contains("zen.spamhaus.org")
    );
    // A second listing is its own alert.
    let mut two = listed.clone();
    two.push(("192.0.2.10".into(), "b.barracudacentral.org".into()));
    assert_eq!(run(two.clone(), t0).await, opened(1));
    // Cleared from one list.
    assert_eq!(
        run(listed.clone(), t0 + Duration::minutes(1)).await,
        resolved(1)
    );
    // Listed there again within the cool-down: quiet; later: a new alert.
    assert_eq!(run(two.clone(), t0 + Duration::minutes(2)).await, NOTHING);
    assert_eq!(run(two, t0 + Duration::minutes(32)).await, opened(1));
    assert_eq!(events(&app, "alert.triggered").await.len(), 3);
    assert_eq!(events(&app, "alert.resolved").await.len(), 1);
    // A rule for another subject ignores these listings.
    let other = only_rule(
        &app,
        json!({"kind": "blocklist_listed", "scope_value": "192.0.2.99"}),
    )
    .await;
    let n = evaluate_rule_with_listings(&app.store, app.tenant_id, &other, t0, listed)
        .await
        .unwrap();
    assert_eq!(n, NOTHING);
}

#[tokio::test]
async fn a_silent_agent_triggers_and_recovers_with_its_events() {
    let app = spawn_app_allowing_loopback().await;
    subscribe_everything(&app).await;
    only_rule(
        &app,
        json!({"kind": "agent_silent", "window_minutes": 10, "cooldown_minutes": 30}),
    )
    .await;
    let ingest_key = app.key_with(&[Scope::Ingest]).await;
    let (app_ref, key) = (&app, &ingest_key);
    let heartbeat = || async move {
        let r = app_ref
            .post(
                "/v1/agents/heartbeat",
                key,
                json!({"host_name": "mx1", "version": "1"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    };
    heartbeat().await;
    let set_last_seen = |minutes_ago: i64| {
        let store = app.store.clone();
        async move {
            use sea_orm::sea_query::Expr;
            agent::Entity::update_many()
                .col_expr(
                    agent::Column::LastSeenAt,
                    Expr::value(Utc::now() - Duration::minutes(minutes_ago)),
                )
                .exec(store.connection())
                .await
                .unwrap();
        }
    };
    let now = Utc::now();
    // Heard from 5 minutes ago: fine.
    set_last_seen(5).await;
    assert_eq!(eval(&app, now).await, NOTHING);
    // 20 minutes of silence.
    set_last_seen(20).await;
    let now = Utc::now();
    assert_eq!(eval(&app, now).await, opened(1));
    assert_eq!(eval(&app, now + Duration::minutes(1)).await, NOTHING);
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open[0]["scope"], "agent:mx1");
    let silent = events(&app, "agent.silent").await;
    assert_eq!(silent.len(), 1);
    assert_eq!(silent[0]["host_name"], "mx1");
    assert!(silent[0]["silent_minutes"].as_i64().unwrap() >= 20);
    // It speaks again.
    heartbeat().await;
    assert_eq!(eval(&app, Utc::now()).await, resolved(1));
    let recovered = events(&app, "agent.recovered").await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0]["host_name"], "mx1");
    // Silent again within the cool-down: quiet (no alert, no event); after it: both.
    set_last_seen(20).await;
    let now = Utc::now();
    assert_eq!(eval(&app, now).await, NOTHING);
    assert_eq!(events(&app, "agent.silent").await.len(), 1);
    assert_eq!(eval(&app, now + Duration::minutes(31)).await, opened(1));
    assert_eq!(events(&app, "agent.silent").await.len(), 2);
}

async fn run_audit(app: &TestApp, auditor: &relaywatch_worker::audit::Auditor, domain: &str) {
    let r = app
        .post(
            &format!("/v1/domains/{domain}/audits"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ran = relaywatch_worker::audit::schedule::run_queued(&app.store, auditor, "test", 10)
        .await
        .unwrap();
    assert_eq!(ran, 1);
}

fn auditor(dns: &dns::DnsServer) -> relaywatch_worker::audit::Auditor {
    relaywatch_worker::audit::Auditor::new(relaywatch_worker::audit::AuditSettings {
        dns: relaywatch_worker::dns::DnsSettings {
            nameservers: vec![dns.addr],
            timeout: std::time::Duration::from_secs(2),
            attempts: 1,
        },
        smtp_checks: false,
        ..relaywatch_worker::audit::AuditSettings::default()
    })
    .unwrap()
}

const CLEAN: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
"#;

/// `+all`: every host may send as the domain, an error.
const BROKEN: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 +all"
@ MX 10 mx1
mx1 A 192.0.2.25
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
"#;

#[tokio::test]
async fn an_audit_regression_triggers_with_its_events_and_a_fix_resolves_it() {
    let app = spawn_app_allowing_loopback().await;
    subscribe_everything(&app).await;
    for d in ["good.test", "born-broken.test"] {
        let r = app
            .post("/v1/sending-domains", &app.admin_key, json!({"domain": d}))
            .await;
        assert_eq!(r.status, 201);
    }
    only_rule(
        &app,
        json!({"kind": "audit_regressed", "cooldown_minutes": 60}),
    )
    .await;
    let clean_dns = dns::serve(&[("good.test", CLEAN), ("born-broken.test", BROKEN)]).await;
    let broken_dns = dns::serve(&[("good.test", BROKEN)]).await;
    let (clean, broken) = (auditor(&clean_dns), auditor(&broken_dns));
    let t0 = Utc::now();

    // A first audit that finds errors has nothing to regress from: no alert, no event.
    run_audit(&app, &clean, "born-broken.test").await;
    run_audit(&app, &clean, "good.test").await;
    assert_eq!(eval(&app, t0).await, NOTHING);
    assert!(events(&app, "audit.regressed").await.is_empty());

    // good.test breaks.
    run_audit(&app, &broken, "good.test").await;
    let regressed = events(&app, "audit.regressed").await;
    assert_eq!(regressed.len(), 1);
    assert_eq!(regressed[0]["domain"], "good.test");
    let codes = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(codes(&regressed[0]["new_findings"]).contains(&"spf.pass_all".to_string()));
    assert!(
        regressed[0]["new_findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "error")
    );
    assert_eq!(eval(&app, t0).await, opened(1));
    let open = alerts(&app, "?status=open").await;
    assert_eq!(open[0]["scope"], "domain:good.test");
    assert!(
        open[0]["summary"]
            .as_str()
            .unwrap()
            .contains("spf.pass_all")
    );
    // Still broken in the next run: the same alert stays open.
    run_audit(&app, &broken, "good.test").await;
    assert_eq!(eval(&app, t0 + Duration::minutes(1)).await, NOTHING);
    assert_eq!(alerts(&app, "").await.len(), 1);

    // Fixed: resolved, and audit.resolved goes out.
    run_audit(&app, &clean, "good.test").await;
    assert_eq!(eval(&app, t0 + Duration::minutes(2)).await, resolved(1));
    let fixed = events(&app, "audit.resolved").await;
    assert_eq!(fixed.len(), 1);
    assert!(codes(&fixed[0]["resolved_findings"]).contains(&"spf.pass_all".to_string()));

    // Broken again within the cool-down: quiet; after it: a new alert.
    run_audit(&app, &broken, "good.test").await;
    assert_eq!(eval(&app, t0 + Duration::minutes(3)).await, NOTHING);
    assert_eq!(eval(&app, t0 + Duration::minutes(63)).await, opened(1));
    assert_eq!(events(&app, "audit.regressed").await.len(), 2);
}

#[tokio::test]
async fn disabling_or_deleting_a_rule_resolves_its_alerts_and_keeps_the_history() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let rule = only_rule(&app, json!({"kind": "blocklist_listed"})).await;
    let listed = vec![("192.0.2.10".to_string(), "zen.spamhaus.org".to_string())];
    let t0 = Utc::now();
    assert_eq!(
        evaluate_rule_with_listings(&app.store, app.tenant_id, &rule, t0, listed.clone())
            .await
            .unwrap(),
        opened(1)
    );
    let r = app
        .patch(
            &format!("/v1/alert-rules/{}", rule.id),
            k,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let done = alerts(&app, "?status=resolved").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["resolution"], "the rule was disabled");
    // A disabled rule is not evaluated.
    assert_eq!(eval(&app, t0).await, NOTHING);

    app.patch(
        &format!("/v1/alert-rules/{}", rule.id),
        k,
        json!({"enabled": true, "cooldown_minutes": 0}),
    )
    .await;
    let rule = app
        .store
        .find_alert_rule(app.tenant_id, rule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        evaluate_rule_with_listings(&app.store, app.tenant_id, &rule, Utc::now(), listed)
            .await
            .unwrap(),
        opened(1)
    );
    assert_eq!(
        alerts(&app, &format!("?rule_id={}", rule.id)).await.len(),
        2
    );
    assert_eq!(
        app.delete(&format!("/v1/alert-rules/{}", rule.id), k)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&format!("/v1/alert-rules/{}", rule.id), k)
            .await
            .status,
        404
    );
    let all = alerts(&app, "").await;
    assert_eq!(all.len(), 2, "history stays");
    assert!(
        all.iter()
            .all(|a| a["status"] == "resolved" && a["rule_id"].is_null())
    );
    assert_eq!(all[0]["resolution"], "the rule was deleted");
    assert_eq!(alerts(&app, "?kind=blocklist_listed").await.len(), 2);
    assert!(alerts(&app, "?kind=agent_silent").await.is_empty());
}

#[tokio::test]
async fn nodes_evaluating_at_once_open_one_alert() {
    let app = spawn_app().await;
    let rule = only_rule(&app, json!({"kind": "blocklist_listed"})).await;
    let listed = vec![("192.0.2.10".to_string(), "zen.spamhaus.org".to_string())];
    let t0 = Utc::now();
    let results = futures_join(&app, &rule, listed, t0).await;
    assert_eq!(results.iter().map(|e| e.opened).sum::<usize>(), 1);
    assert_eq!(alerts(&app, "?status=open").await.len(), 1);
}

async fn futures_join(
    app: &TestApp,
    rule: &alert_rule::Model,
    listed: Vec<(String, String)>,
    at: DateTime<Utc>,
) -> Vec<Evaluation> {
    let runs = (0..4).map(|_| {
        let (store, tenant, rule, listed) = (
            app.store.clone(),
            app.tenant_id,
            rule.clone(),
            listed.clone(),
        );
        tokio::spawn(async move {
            evaluate_rule_with_listings(&store, tenant, &rule, at, listed)
                .await
                .unwrap()
        })
    });
    let mut out = Vec::new();
    for r in runs.collect::<Vec<_>>() {
        out.push(r.await.unwrap());
    }
    out
}
