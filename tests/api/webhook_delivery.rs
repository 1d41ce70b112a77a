//! Webhook delivery against real HTTP receivers on loopback: signatures checked with an independent implementation
//! of the Standard Webhooks scheme, retries after errors and timeouts, no duplicates across worker restarts, secret
//! rotation, disabling, the per-endpoint concurrency limit, redirects, and the SSRF guard at delivery time.

use relaywatch_store::events::emit;
use relaywatch_tests::receiver::{Answer, Receiver};
use relaywatch_tests::{
    TestApp, dns, spawn_app_allowing_loopback, spawn_app_with, test_cipher, test_webhook_settings,
    verify_standard_webhook,
};
use relaywatch_webhooks::WebhookSettings;
use relaywatch_worker::webhooks::Deliverer;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn deliverer(app: &TestApp, settings: WebhookSettings, name: &str) -> Deliverer {
    Deliverer::new(app.store.clone(), settings, test_cipher(), name).unwrap()
}

/// Registers an endpoint; returns its id and secret.
async fn endpoint(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let r = app
        .post(
            "/v1/webhooks",
            &app.admin_key,
            json!({"url": url, "event_types": types}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (r.id(), r.body["secret"].as_str().unwrap().to_string())
}

/// Runs the deliverer until the condition holds; fails the test after 30 seconds.
macro_rules! drive {
    ($d:expr, $done:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            $d.deliver_due().await.unwrap();
            if $done {
                break;
            }
            assert!(Instant::now() < deadline, "gave up waiting for deliveries");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/webhooks/{webhook}/deliveries"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

async fn emit_event(app: &TestApp, event_type: &str, data: Value) {
    emit(app.store.connection(), app.tenant_id, event_type, data)
        .await
        .unwrap();
}

fn assert_signed(secret: &str, req: &relaywatch_tests::receiver::Request) {
    assert!(
        verify_standard_webhook(
            secret,
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
            &req.body
        ),
        "signature {:?} does not verify",
        req.header("webhook-signature")
    );
}

#[tokio::test]
async fn deliveries_are_signed_the_standard_webhooks_way() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(200).await;
    let (id, secret) = endpoint(&app, &rx.url("/hook"), &["alert.triggered"]).await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");

    let queued = app
        .post(
            &format!("/v1/webhooks/{id}/test"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    assert_eq!(queued.body["status"], "pending");
    let event_id = queued.body["event_id"].as_str().unwrap().to_string();
    emit_event(&app, "alert.triggered", json!({"summary": "subscribed"})).await;
    emit_event(
        &app,
        "delivery.bounced",
        json!({"recipient": "not subscribed"}),
    )
    .await;
    drive!(d, rx.count() >= 2);
    // Once more: nothing else was due.
    assert_eq!(d.deliver_due().await.unwrap(), 0);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2, "only the test event and the subscribed type");
    let test = reqs
        .iter()
        .find(|r| r.json()["type"] == "webhook.test")
        .expect("the test event");
    assert_eq!(test.method, "POST");
    assert_eq!(test.path, "/hook");
    assert_eq!(test.header("content-type"), "application/json");
    assert_eq!(test.header("webhook-id"), event_id);
    let ts: i64 = test.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
    assert!(test.header("webhook-signature").starts_with("v1,"));
    assert_signed(&secret, test);
    // The independent check really checks: another secret, body or id fails.
    let other = relaywatch_store::secrets::generate_webhook_secret();
    let h = |n| test.header(n);
    assert!(!verify_standard_webhook(
        &other,
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &test.body
    ));
    assert!(!verify_standard_webhook(
        &secret,
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        b"{}"
    ));
    assert!(!verify_standard_webhook(
        &secret,
        "another-id",
        h("webhook-timestamp"),
        h("webhook-signature"),
        &test.body
    ));
    let body = test.json();
    assert_eq!(body["data"]["webhook_id"], id.as_str());
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());

    let alert = reqs
        .iter()
        .find(|r| r.json()["type"] == "alert.triggered")
        .unwrap();
    assert_eq!(alert.json()["data"]["summary"], "subscribed");
    assert_signed(&secret, alert);

    let log = deliveries(&app, &id).await;
    assert_eq!(log.len(), 2);
    for dlv in &log {
        assert_eq!(dlv["status"], "succeeded", "{dlv}");
        assert_eq!(dlv["attempt_count"], 1);
        assert_eq!(dlv["attempts"][0]["status_code"], 200);
        assert_eq!(dlv["attempts"][0]["succeeded"], true);
        assert!(dlv["next_attempt_at"].is_null());
        assert!(dlv["delivered_at"].is_string());
    }
    let one = app
        .get(
            &format!(
                "/v1/webhooks/{id}/deliveries/{}",
                queued.body["id"].as_str().unwrap()
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["event_type"], "webhook.test");
    assert_eq!(one.body["attempts"][0]["response_excerpt"], "ok");
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_the_same_id_until_it_recovers() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::start(
        vec![Answer::Status(500), Answer::Status(503)],
        Answer::Status(204),
    )
    .await;
    let (id, secret) = endpoint(&app, &rx.url("/hook"), &["*"]).await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");
    emit_event(&app, "blocklist.listed", json!({"subject": "192.0.2.10"})).await;
    drive!(d, deliveries(&app, &id).await[0]["status"] == "succeeded");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    let ids: BTreeSet<&str> = reqs.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one event, one webhook-id on every attempt");
    for r in &reqs {
        assert_signed(&secret, r);
        assert_eq!(r.body, reqs[0].body, "the same envelope every time");
    }
    // There was a backoff between attempts (50 ms base, at least 80 % of it after jitter).
    assert!(reqs[1].received - reqs[0].received >= Duration::from_millis(39));
    assert!(reqs[2].received - reqs[1].received >= Duration::from_millis(39));

    let dlv = &deliveries(&app, &id).await[0];
    assert_eq!(dlv["attempt_count"], 3);
    let attempts = dlv["attempts"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(204)]);
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    assert_eq!(attempts[2]["succeeded"], true);
    assert!(attempts[2]["error"].is_null());
    let ep = app.get(&format!("/v1/webhooks/{id}"), &app.admin_key).await;
    assert_eq!(ep.body["consecutive_failures"], 0);
    assert!(ep.body["last_success_at"].is_string());
    assert!(ep.body["last_failure_at"].is_string());
}

#[tokio::test]
async fn a_timeout_is_a_failed_attempt_and_is_retried() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::start(
        vec![Answer::After(Duration::from_secs(5), 200)],
        Answer::Status(200),
    )
    .await;
    let (id, secret) = endpoint(&app, &rx.url("/slow"), &["*"]).await;
    let settings = WebhookSettings {
        timeout_ms: 300,
        ..test_webhook_settings()
    };
    let d = deliverer(&app, settings, "worker-1");
    emit_event(&app, "audit.regressed", json!({"domain": "example.com"})).await;
    drive!(d, deliveries(&app, &id).await[0]["status"] == "succeeded");
    let dlv = &deliveries(&app, &id).await[0];
    let attempts = dlv["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{dlv}");
    assert!(attempts[0]["status_code"].is_null());
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300 ms"),
        "{dlv}"
    );
    assert_eq!(attempts[1]["status_code"], 200);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
    assert_signed(&secret, &reqs[1]);
}

#[tokio::test]
async fn a_delivery_gives_up_after_the_last_attempt_and_can_be_replayed() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(503).await;
    let (id, _) = endpoint(&app, &rx.url("/hook"), &["*"]).await;
    let settings = WebhookSettings {
        max_attempts: 3,
        ..test_webhook_settings()
    };
    let d = deliverer(&app, settings, "worker-1");
    emit_event(&app, "agent.silent", json!({"host_name": "mx1"})).await;
    drive!(d, deliveries(&app, &id).await[0]["status"] == "failed");
    let dlv = deliveries(&app, &id).await[0].clone();
    assert_eq!(dlv["attempt_count"], 3);
    assert!(dlv["next_attempt_at"].is_null());
    assert_eq!(dlv["last_status_code"], 503);
    assert_eq!(rx.count(), 3);
    // Failed is final: nothing more is sent.
    for _ in 0..5 {
        d.deliver_due().await.unwrap();
    }
    assert_eq!(rx.count(), 3);

    // Replay, now that the receiver works: same event id, fresh schedule.
    rx.set_default(Answer::Status(200));
    let path = format!(
        "/v1/webhooks/{id}/deliveries/{}/replay",
        dlv["id"].as_str().unwrap()
    );
    let r = app.post(&path, &app.admin_key, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["attempts"].as_array().unwrap().len(), 3);
    let again = app.post(&path, &app.admin_key, json!({})).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "delivery_in_progress");
    drive!(d, deliveries(&app, &id).await[0]["status"] == "succeeded");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[3].header("webhook-id"), reqs[0].header("webhook-id"));
    let dlv = deliveries(&app, &id).await[0].clone();
    assert_eq!(dlv["attempts"].as_array().unwrap().len(), 4);
    assert_eq!(dlv["attempt_count"], 1, "counting restarts with a replay");
    let unknown = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/00000000-0000-7000-8000-000000000000/replay"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_worker_restart_sends_nothing_twice_and_a_resend_keeps_the_webhook_id() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(200).await;
    let (id, secret) = endpoint(&app, &rx.url("/hook"), &["*"]).await;
    // A short timeout makes a short lease (timeout + grace), so a dead worker's lease runs out quickly.
    let settings = WebhookSettings {
        timeout_ms: 400,
        ..test_webhook_settings()
    };
    let a = deliverer(&app, settings.clone(), "worker-a");
    let b = deliverer(&app, settings.clone(), "worker-b");

    // Worker A claims the delivery and dies before sending.
    emit_event(&app, "alert.resolved", json!({"n": 1})).await;
    assert_eq!(a.claim_due().await.unwrap().len(), 1);
    assert_eq!(b.deliver_due().await.unwrap(), 0, "leased to A");
    assert_eq!(rx.count(), 0);
    drive!(b, rx.count() == 1);

    // Worker A claims the next one, sends it, and dies before recording it.
    emit_event(&app, "alert.resolved", json!({"n": 2})).await;
    let claimed = a.claim_due().await.unwrap();
    assert_eq!(claimed.len(), 1);
    let outcome = a.send(&claimed[0]).await;
    assert!(outcome.succeeded);
    assert_eq!(rx.count(), 2);
    // B finds it once A's lease ran out, and sends it again under the same webhook-id.
    drive!(b, rx.count() == 3);
    // A comes back: its late result changes nothing.
    let late = a.record(&claimed[0], &outcome).await.unwrap();
    assert!(late.stale);

    // A fresh worker (a restarted process) finds nothing to do.
    let c = deliverer(&app, settings, "worker-c");
    for _ in 0..3 {
        assert_eq!(c.deliver_due().await.unwrap(), 0);
    }
    assert_eq!(rx.count(), 3);

    let reqs = rx.requests();
    let first = reqs[0].header("webhook-id");
    let (second, resent) = (reqs[1].header("webhook-id"), reqs[2].header("webhook-id"));
    assert_ne!(first, second);
    assert_eq!(
        second, resent,
        "a resend carries the id receivers deduplicate by"
    );
    assert_eq!(reqs[1].body, reqs[2].body);
    for r in &reqs {
        assert_signed(&secret, r);
    }
    let log = deliveries(&app, &id).await;
    assert_eq!(log.len(), 2);
    for dlv in &log {
        assert_eq!(dlv["status"], "succeeded");
        assert_eq!(dlv["attempt_count"], 1, "{dlv}");
    }
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_during_the_overlap() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(200).await;
    let (id, old) = endpoint(&app, &rx.url("/hook"), &["*"]).await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");
    let k = &app.admin_key;

    let r = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            k,
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(r.body["previous_secret_expires_at"].is_string());
    app.post(&format!("/v1/webhooks/{id}/test"), k, json!({}))
        .await;
    drive!(d, rx.count() == 1);
    let req = &rx.requests()[0];
    let sigs: Vec<&str> = req.header("webhook-signature").split(' ').collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    // Each secret verifies on its own: receivers on the old and on the new secret both accept.
    assert_signed(&old, req);
    assert_signed(&new, req);

    // Rotating again with a one-second overlap: once it is over, only the newest secret signs.
    let r = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            k,
            json!({"overlap_seconds": 1}),
        )
        .await;
    let newest = r.body["secret"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.post(&format!("/v1/webhooks/{id}/test"), k, json!({}))
        .await;
    drive!(d, rx.count() == 2);
    let req = &rx.requests()[1];
    assert_eq!(req.header("webhook-signature").split(' ').count(), 1);
    assert_signed(&newest, req);
    for stale in [&old, &new] {
        assert!(!verify_standard_webhook(
            stale,
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
            &req.body
        ));
    }
    assert!(
        app.get(&format!("/v1/webhooks/{id}"), k).await.body["previous_secret_expires_at"]
            .is_null()
    );
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_with_a_reason_an_alert_and_an_event() {
    let app = spawn_app_allowing_loopback().await;
    let k = &app.admin_key;
    let broken = Receiver::answering(500).await;
    let watcher = Receiver::answering(200).await;
    let (bad, _) = endpoint(&app, &broken.url("/hook"), &["blocklist.listed"]).await;
    let (_good, good_secret) = endpoint(
        &app,
        &watcher.url("/ops"),
        &["webhook.disabled", "alert.triggered", "alert.resolved"],
    )
    .await;
    let settings = WebhookSettings {
        disable_after_failures: 3,
        disable_after_secs: 0,
        max_attempts: 10,
        ..test_webhook_settings()
    };
    let d = deliverer(&app, settings, "worker-1");
    emit_event(&app, "blocklist.listed", json!({"n": 1})).await;
    emit_event(&app, "blocklist.listed", json!({"n": 2})).await;
    drive!(
        d,
        app.get(&format!("/v1/webhooks/{bad}"), k).await.body["enabled"] == false
    );

    let ep = app.get(&format!("/v1/webhooks/{bad}"), k).await.body;
    let reason = ep["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("3 failed attempts"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    assert!(ep["disabled_at"].is_string());
    // Nothing queued for it stays pending.
    for dlv in deliveries(&app, &bad).await {
        assert_eq!(dlv["status"], "failed", "{dlv}");
    }
    let sent_before = broken.count();
    assert!(sent_before >= 3);

    // The other endpoint hears about it, and an alert is open.
    drive!(d, watcher.count() >= 2);
    let types: BTreeSet<String> = watcher
        .requests()
        .iter()
        .map(|r| {
            assert_signed(&good_secret, r);
            r.json()["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(types.contains("webhook.disabled"), "{types:?}");
    assert!(types.contains("alert.triggered"), "{types:?}");
    let disabled = watcher
        .requests()
        .into_iter()
        .find(|r| r.json()["type"] == "webhook.disabled")
        .unwrap()
        .json();
    assert_eq!(disabled["data"]["webhook_id"], bad.as_str());
    let alerts = app.get("/v1/alerts?status=open", k).await;
    let items = alerts.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", alerts.text);
    assert_eq!(items[0]["kind"], "webhook_disabled");
    assert_eq!(items[0]["scope"], format!("webhook:{bad}"));
    assert!(items[0]["rule_id"].is_null());

    // Disabled: no new deliveries, no test, no replay.
    emit_event(&app, "blocklist.listed", json!({"n": 3})).await;
    for _ in 0..3 {
        d.deliver_due().await.unwrap();
    }
    assert_eq!(broken.count(), sent_before);
    assert_eq!(deliveries(&app, &bad).await.len(), 2);
    let r = app
        .post(&format!("/v1/webhooks/{bad}/test"), k, json!({}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "webhook_disabled");
    let first = deliveries(&app, &bad).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/v1/webhooks/{bad}/deliveries/{first}/replay"),
            k,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "webhook_disabled");

    // Enabled again: clean record, alert resolved.
    let r = app
        .patch(&format!("/v1/webhooks/{bad}"), k, json!({"enabled": true}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["enabled"], true);
    assert!(r.body["disabled_reason"].is_null());
    assert_eq!(r.body["consecutive_failures"], 0);
    assert!(
        app.get("/v1/alerts?status=open", k).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let resolved = app.get("/v1/alerts?status=resolved", k).await;
    assert_eq!(resolved.body["items"][0]["kind"], "webhook_disabled");
    assert!(resolved.body["items"][0]["resolution"].is_string());
}

#[tokio::test]
async fn deliveries_to_one_endpoint_stay_within_its_concurrency_limit() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(200).await;
    rx.set_default(Answer::After(Duration::from_millis(200), 200));
    let (id, _) = endpoint(&app, &rx.url("/hook"), &["*"]).await;
    let settings = WebhookSettings {
        max_in_flight_per_endpoint: 2,
        ..test_webhook_settings()
    };
    // Two workers at once: the limit holds across them (it lives in the database).
    let a = deliverer(&app, settings.clone(), "worker-a");
    let b = deliverer(&app, settings, "worker-b");
    for n in 0..6 {
        emit_event(&app, "alert.triggered", json!({"n": n})).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.count() < 6 {
        let (x, y) = tokio::join!(a.deliver_due(), b.deliver_due());
        assert!(x.unwrap() + y.unwrap() <= 2);
        assert!(Instant::now() < deadline);
    }
    assert!(rx.max_in_flight() <= 2, "{} at once", rx.max_in_flight());
    let ids: BTreeSet<String> = rx
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 6, "each event once");
    assert!(
        deliveries(&app, &id)
            .await
            .iter()
            .all(|d| d["status"] == "succeeded")
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app_allowing_loopback().await;
    let target = Receiver::answering(200).await;
    let redirecting = Receiver::answering(200).await;
    redirecting.set_default(Answer::Redirect(target.url("/internal")));
    let to_metadata = Receiver::answering(200).await;
    to_metadata.set_default(Answer::Redirect(
        "http://169.254.169.254/latest/meta-data/".into(),
    ));
    let (a, _) = endpoint(&app, &redirecting.url("/hook"), &["*"]).await;
    let (b, _) = endpoint(&app, &to_metadata.url("/hook"), &["*"]).await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");
    emit_event(&app, "alert.triggered", json!({})).await;
    drive!(d, redirecting.count() >= 1 && to_metadata.count() >= 1);
    for (id, location) in [
        (&a, target.url("/internal")),
        (&b, "http://169.254.169.254/latest/meta-data/".to_string()),
    ] {
        let dlv = &deliveries(&app, id).await[0];
        let attempt = &dlv["attempts"][0];
        assert_eq!(attempt["status_code"], 302, "{dlv}");
        assert_eq!(attempt["succeeded"], false);
        let error = attempt["error"].as_str().unwrap();
        assert!(error.contains("redirects are not followed"), "{error}");
        assert!(error.contains(&location), "{error}");
    }
    assert_eq!(target.count(), 0, "the redirect target was never contacted");
}

#[tokio::test]
async fn the_guard_is_applied_again_at_delivery_time_to_the_resolved_address() {
    let rx = Receiver::answering(200).await;
    // At creation `hooks.test` is loopback (allowed in this installation).
    let before = dns::serve(&[("hooks.test", "@ A 127.0.0.1")]).await;
    let mut settings = test_webhook_settings();
    settings.nameservers = vec![before.addr];
    let app = spawn_app_with({
        let s = settings.clone();
        move |cfg| cfg.webhooks = s
    })
    .await;
    let url = format!("http://hooks.test:{}/hook", rx.addr.port());
    let (id, _) = endpoint(&app, &url, &["*"]).await;

    // Delivered through the vetted address: the system resolver does not know hooks.test, so the connection can only
    // have gone to the address the guard resolved and pinned.
    let d = deliverer(&app, settings.clone(), "worker-1");
    emit_event(&app, "alert.triggered", json!({"n": 1})).await;
    drive!(d, rx.count() == 1);
    assert_eq!(rx.requests()[0].path, "/hook");

    // The name now answers with a private address: refused, nothing sent.
    let after = dns::serve(&[("hooks.test", "@ A 10.0.0.7")]).await;
    let rebound = deliverer(
        &app,
        WebhookSettings {
            nameservers: vec![after.addr],
            ..settings.clone()
        },
        "worker-2",
    );
    emit_event(&app, "alert.triggered", json!({"n": 2})).await;
    drive!(
        rebound,
        deliveries(&app, &id).await[0]["attempt_count"] != 0
    );
    let dlv = &deliveries(&app, &id).await[0];
    let error = dlv["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("refused by the SSRF guard"), "{error}");
    assert!(error.contains("10.0.0.7"), "{error}");
    assert!(error.contains("private"), "{error}");
    assert_eq!(rx.count(), 1);

    // A worker of an installation that does not allow loopback refuses the loopback endpoint too.
    let strict = deliverer(
        &app,
        WebhookSettings {
            allow_networks: Vec::new(),
            ..settings
        },
        "worker-3",
    );
    let (literal, _) = endpoint(&app, &rx.url("/literal"), &["agent.recovered"]).await;
    emit_event(&app, "agent.recovered", json!({})).await;
    drive!(
        strict,
        deliveries(&app, &literal).await[0]["attempt_count"] != 0
    );
    let error = deliveries(&app, &literal).await[0]["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn ingest_announces_each_bounce_and_the_first_deferral_once() {
    let app = spawn_app_allowing_loopback().await;
    let rx = Receiver::answering(200).await;
    let (_id, secret) = endpoint(
        &app,
        &rx.url("/app"),
        &["delivery.bounced", "delivery.deferred"],
    )
    .await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");
    let bounced = relaywatch_tests::delivery("QB1", "gone@customer.example", "bounced", 3);
    let sent = relaywatch_tests::delivery("QS1", "ok@customer.example", "sent", 3);
    let mut deferred1 = relaywatch_tests::delivery("QD1", "slow@customer.example", "deferred", 4);
    deferred1["dsn"] = json!("4.7.0");
    deferred1["bounce_class"] = json!({"severity": "soft", "reason": "rate_limited"});
    let mut deferred2 = deferred1.clone();
    deferred2["id"] = json!(uuid::Uuid::now_v7().to_string());
    deferred2["time"] = json!((chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339());
    // Three days old: stored, but not announced.
    let old = relaywatch_tests::delivery("QOLD", "old@customer.example", "bounced", 3 * 24 * 60);
    let batch = vec![bounced, sent, deferred1, deferred2, old];
    let r = app.ingest(&app.admin_key, batch.clone()).await;
    assert_eq!(r.body["accepted"], 5, "{}", r.text);
    // The same batch again (an agent retry): nothing is announced twice.
    let r = app.ingest(&app.admin_key, batch).await;
    assert_eq!(r.body["duplicate"], 5, "{}", r.text);
    drive!(d, rx.count() >= 2);
    for _ in 0..3 {
        d.deliver_due().await.unwrap();
    }
    let reqs = rx.requests();
    assert_eq!(
        reqs.len(),
        2,
        "{:?}",
        reqs.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    let bounce = reqs
        .iter()
        .find(|r| r.json()["type"] == "delivery.bounced")
        .expect("a delivery.bounced event")
        .json();
    let data = &bounce["data"];
    assert_eq!(data["recipient"], "gone@customer.example");
    assert_eq!(data["dsn"], "5.1.1");
    assert_eq!(data["bounce_class"]["severity"], "hard");
    assert_eq!(data["bounce_class"]["reason"], "unknown_recipient");
    assert!(data["reply"].as_str().unwrap().contains("User unknown"));
    assert_eq!(data["tag"], "tag-QB1");
    assert_eq!(data["message_id"], "<QB1@app.example.com>");
    // The message can be looked up by the id the event names.
    let msg = app
        .get(
            &format!("/v1/messages/{}", data["message"].as_str().unwrap()),
            &app.admin_key,
        )
        .await;
    assert_eq!(msg.status, 200, "{}", msg.text);
    let deferral = reqs
        .iter()
        .find(|r| r.json()["type"] == "delivery.deferred")
        .expect("a delivery.deferred event")
        .json();
    assert_eq!(deferral["data"]["recipient"], "slow@customer.example");
    assert_eq!(deferral["data"]["dsn"], "4.7.0");
    for r in &reqs {
        assert_signed(&secret, r);
    }
}

#[tokio::test]
async fn deferral_events_are_rate_limited_and_unsubscribed_tenants_store_none() {
    let app = spawn_app_with(|s| {
        s.webhooks = relaywatch_tests::test_webhook_settings();
        s.webhooks.deferred_events_per_minute = 2;
    })
    .await;
    let (_id, _) = endpoint(&app, "http://127.0.0.1:9/", &["delivery.deferred"]).await;
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            relaywatch_tests::delivery(
                &format!("QD{i}"),
                &format!("r{i}@customer.example"),
                "deferred",
                1,
            )
        })
        .collect();
    assert_eq!(app.ingest(&app.admin_key, batch).await.body["accepted"], 5);
    let count = |tenant: relaywatch_domain::TenantId, t: &'static str| {
        let store = app.store.clone();
        async move {
            use relaywatch_store::entities::webhook_event;
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            webhook_event::Entity::find()
                .filter(webhook_event::Column::TenantId.eq(tenant.as_uuid()))
                .filter(webhook_event::Column::EventType.eq(t))
                .count(store.connection())
                .await
                .unwrap()
        }
    };
    assert_eq!(count(app.tenant_id, "delivery.deferred").await, 2);
    // Bounces: nobody subscribed, nothing stored.
    let bounced = relaywatch_tests::delivery("QB", "gone@customer.example", "bounced", 1);
    assert_eq!(
        app.ingest(&app.admin_key, vec![bounced]).await.body["accepted"],
        1
    );
    assert_eq!(count(app.tenant_id, "delivery.bounced").await, 0);
    // Another tenant without endpoints stores nothing either.
    let (other, key) = app.other_tenant("quiet").await;
    let rec = relaywatch_tests::delivery("QX", "x@customer.example", "deferred", 1);
    assert_eq!(app.ingest(&key, vec![rec]).await.body["accepted"], 1);
    assert_eq!(count(other, "delivery.deferred").await, 0);
}

#[tokio::test]
async fn old_events_and_their_finished_deliveries_are_pruned_but_queued_ones_stay() {
    let app = spawn_app_allowing_loopback().await;
    let ok = Receiver::answering(200).await;
    let down = Receiver::answering(500).await;
    let (delivered, _) = endpoint(&app, &ok.url("/hook"), &["alert.triggered"]).await;
    let (waiting, _) = endpoint(&app, &down.url("/hook"), &["alert.resolved"]).await;
    let d = deliverer(&app, test_webhook_settings(), "worker-1");
    emit_event(&app, "alert.triggered", json!({})).await;
    emit_event(&app, "alert.resolved", json!({})).await;
    drive!(d, ok.count() == 1 && down.count() >= 1);
    // Nothing is old yet.
    assert_eq!(d.prune(chrono::Utc::now()).await.unwrap(), 0);
    assert_eq!(deliveries(&app, &delivered).await.len(), 1);
    // A month and a day later: the delivered event goes, the one still being retried stays.
    let later = chrono::Utc::now() + chrono::Duration::days(31);
    assert_eq!(d.prune(later).await.unwrap(), 1);
    assert!(deliveries(&app, &delivered).await.is_empty());
    let kept = deliveries(&app, &waiting).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"], "pending");
    assert!(!kept[0]["attempts"].as_array().unwrap().is_empty());
}
