//! Webhook endpoints through the API: the secret shown once and stored encrypted, validation, scopes, and the SSRF
//! guard refusing private, loopback, link-local and metadata targets when the endpoint is created or changed.

use relaywatch_domain::Scope;
use relaywatch_tests::dns;
use relaywatch_tests::{spawn_app, spawn_app_allowing_loopback, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn an_endpoint_shows_its_secret_once_and_keeps_it_encrypted() {
    let app = spawn_app_allowing_loopback().await;
    let k = &app.admin_key;
    let r = app
        .post(
            "/v1/webhooks",
            k,
            json!({
                "url": "http://127.0.0.1:9/hook",
                "description": "on-call",
                "event_types": ["delivery.bounced", "alert.triggered", "delivery.bounced"]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.id();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        r.body["event_types"],
        json!(["alert.triggered", "delivery.bounced"])
    );
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["description"], "on-call");

    // Never again: not in a read, not in the listing.
    let one = app.get(&format!("/v1/webhooks/{id}"), k).await;
    assert_eq!(one.status, 200);
    assert!(one.body.get("secret").is_none());
    assert!(!one.text.contains(&secret));
    let all = app.get("/v1/webhooks", k).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    assert!(!all.text.contains(&secret));
    // At rest it is ciphertext that does not contain the secret.
    let row = app
        .store
        .find_webhook(app.tenant_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(row.secret.starts_with("v1."));
    assert!(!row.secret.contains(secret.trim_start_matches("whsec_")));
    assert_eq!(
        relaywatch_store::webhooks::signing_secrets(
            &row,
            &relaywatch_tests::test_cipher(),
            chrono::Utc::now()
        )
        .unwrap(),
        vec![secret.clone()]
    );

    let r = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            k,
            json!({"event_types": ["*"], "description": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["event_types"], json!(["*"]));
    assert!(r.body["description"].is_null());
    assert!(r.body.get("secret").is_none());

    let r = app.delete(&format!("/v1/webhooks/{id}"), k).await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get(&format!("/v1/webhooks/{id}"), k).await.status, 404);
    assert_eq!(
        app.delete(&format!("/v1/webhooks/{id}"), k).await.status,
        404
    );
}

#[tokio::test]
async fn invalid_endpoints_are_refused_with_the_field_named() {
    let app = spawn_app_allowing_loopback().await;
    let k = &app.admin_key;
    for (body, field, says) in [
        (
            json!({"url": "http://127.0.0.1:9/", "event_types": []}),
            "event_types",
            "at least one",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "event_types": ["alert.triggered", "delivery.*"]}),
            "event_types[1]",
            "unknown event type",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "event_types": ["webhook.test"]}),
            "event_types[0]",
            "unknown event type",
        ),
        (
            json!({"url": "ftp://127.0.0.1/", "event_types": ["*"]}),
            "url",
            "scheme",
        ),
        (
            json!({"url": "http://user:pw@127.0.0.1/", "event_types": ["*"]}),
            "url",
            "credentials",
        ),
        (
            json!({"url": "not a url", "event_types": ["*"]}),
            "url",
            "not a URL",
        ),
        (json!({"event_types": ["*"]}), "url", "missing field"),
    ] {
        let r = app.post("/v1/webhooks", k, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.code(), "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{}",
            r.text
        );
    }
    let r = app
        .post(
            "/v1/webhooks/00000000-0000-0000-0000-000000000000/rotate-secret",
            k,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    let id = app
        .post(
            "/v1/webhooks",
            k,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        )
        .await
        .id();
    let r = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            k,
            json!({"overlap_seconds": 700000}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "overlap_seconds");
    let r = app
        .get(&format!("/v1/webhooks/{id}/deliveries?status=lost"), k)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_query");
}

#[tokio::test]
async fn reading_needs_read_and_changing_needs_write() {
    let app = spawn_app_allowing_loopback().await;
    let id = app
        .post(
            "/v1/webhooks",
            &app.admin_key,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        )
        .await
        .id();
    let read = app.key_with(&[Scope::Read]).await;
    let write = app.key_with(&[Scope::Write]).await;
    assert_eq!(app.get("/v1/webhooks", &read).await.status, 200);
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}/deliveries"), &read)
            .await
            .status,
        200
    );
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/v1/webhooks".to_string(),
            Some(json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/webhooks/{id}/test"),
            Some(json!({})),
        ),
        (
            reqwest::Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Some(json!({"enabled": false})),
        ),
        (reqwest::Method::DELETE, format!("/v1/webhooks/{id}"), None),
    ] {
        let r = app
            .call(method.clone(), &path, Some(&read), body.clone())
            .await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), "insufficient_scope");
        let r = app.call(method.clone(), &path, Some(&write), body).await;
        assert!(r.status < 300, "{method} {path} with write: {}", r.text);
    }
    // Reading needs read: a write-only key cannot list.
    assert_eq!(app.get("/v1/webhooks", &write).await.status, 403);
}

/// Zone `hooks.test`: names that resolve to addresses no webhook may reach, and one public name.
const HOOKS_ZONE: &str = "internal A 10.1.2.3
meta A 169.254.169.254
v6 AAAA fd00::1
loop A 127.0.0.1
mixed A 93.184.215.14
mixed A 192.168.1.1
public A 93.184.215.14
";

#[tokio::test]
async fn private_loopback_link_local_and_metadata_targets_are_refused() {
    let dns = dns::serve(&[("hooks.test", HOOKS_ZONE)]).await;
    // No network allowed: only public addresses.
    let app = spawn_app_with(|s| s.webhooks.nameservers = vec![dns.addr]).await;
    let k = &app.admin_key;
    for (url, ip, why) in [
        ("http://127.0.0.1:8080/hook", "127.0.0.1", "loopback"),
        ("http://10.0.0.5/hook", "10.0.0.5", "private"),
        ("http://172.20.1.1/", "172.20.1.1", "private"),
        ("http://192.168.0.10/", "192.168.0.10", "private"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
            "metadata",
        ),
        ("http://[::1]:8080/", "::1", "loopback"),
        (
            "http://[::ffff:10.0.0.1]/",
            "::ffff:10.0.0.1",
            "IPv4-mapped",
        ),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://100.64.0.1/", "100.64.0.1", "CGNAT"),
        ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
        ("http://2130706433/", "127.0.0.1", "loopback"),
        ("https://internal.hooks.test/hook", "10.1.2.3", "private"),
        ("https://meta.hooks.test/", "169.254.169.254", "metadata"),
        ("https://v6.hooks.test/", "fd00::1", "unique local"),
        ("https://loop.hooks.test/", "127.0.0.1", "loopback"),
        // One private answer among public ones is enough.
        ("https://mixed.hooks.test/", "192.168.1.1", "private"),
    ] {
        let r = app
            .post("/v1/webhooks", k, json!({"url": url, "event_types": ["*"]}))
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.text);
        assert_eq!(r.code(), "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "url");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(ip), "{url}: {detail}");
        assert!(detail.contains(why), "{url}: {detail}");
        assert!(detail.contains("webhooks.allow_networks"), "{detail}");
    }
    let r = app
        .post(
            "/v1/webhooks",
            k,
            json!({"url": "https://nowhere.hooks.test/", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("does not resolve"), "{}", r.text);

    // A public name is accepted (nothing is sent to it here) ...
    let r = app
        .post(
            "/v1/webhooks",
            k,
            json!({"url": "https://public.hooks.test/hook", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.id();
    // ... and cannot be moved to a private one afterwards.
    let r = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            k,
            json!({"url": "http://10.0.0.5/"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "url");
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}"), k).await.body["url"],
        "https://public.hooks.test/hook"
    );
}

#[tokio::test]
async fn an_allowed_network_is_accepted_and_only_that_one() {
    let app = spawn_app_allowing_loopback().await;
    let k = &app.admin_key;
    let ok = app
        .post(
            "/v1/webhooks",
            k,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    for url in [
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://169.254.169.254/",
    ] {
        let r = app
            .post("/v1/webhooks", k, json!({"url": url, "event_types": ["*"]}))
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.text);
    }
    // The default installation allows none: loopback is refused there.
    let strict = spawn_app().await;
    let r = strict
        .post(
            "/v1/webhooks",
            &strict.admin_key,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("loopback"), "{}", r.text);
}
