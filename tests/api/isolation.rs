//! Tenant isolation, driven by a table of every tenant-scoped endpoint. A test compares the table with the OpenAPI
//! document, so a new endpoint that is not in the table fails the suite until someone decides how to test it.

use relaywatch_tests::{TestApp, spawn_app_allowing_loopback as spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// Endpoints that address one object of a tenant: (method, path, body). `{id}` is replaced by tenant A's object of
/// the resource named by the path's first segment after /v1.
fn object_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/v1/api-keys/{id}", None),
        (Method::DELETE, "/v1/api-keys/{id}", None),
        (Method::GET, "/v1/users/{id}", None),
        (Method::DELETE, "/v1/users/{id}", None),
        (Method::GET, "/v1/sending-domains/{id}", None),
        (
            Method::PATCH,
            "/v1/sending-domains/{id}",
            Some(json!({"dkim_selectors": ["stolen"]})),
        ),
        (Method::DELETE, "/v1/sending-domains/{id}", None),
        (Method::GET, "/v1/sending-ips/{id}", None),
        (
            Method::PATCH,
            "/v1/sending-ips/{id}",
            Some(json!({"description": "stolen"})),
        ),
        (Method::DELETE, "/v1/sending-ips/{id}", None),
        (Method::GET, "/v1/messages/{id}", None),
        // Audits address a domain by name ({domain} is tenant A's) and a run by id.
        (Method::POST, "/v1/domains/{domain}/audits", Some(json!({}))),
        (Method::GET, "/v1/domains/{domain}/audits", None),
        (Method::GET, "/v1/domains/{domain}/audits/latest", None),
        (Method::GET, "/v1/domains/{domain}/audits/{id}", None),
        (Method::GET, "/v1/webhooks/{id}", None),
        (
            Method::PATCH,
            "/v1/webhooks/{id}",
            Some(json!({"event_types": ["agent.silent"]})),
        ),
        (Method::DELETE, "/v1/webhooks/{id}", None),
        (
            Method::POST,
            "/v1/webhooks/{id}/rotate-secret",
            Some(json!({"overlap_seconds": 0})),
        ),
        (Method::POST, "/v1/webhooks/{id}/test", Some(json!({}))),
        (Method::GET, "/v1/webhooks/{id}/deliveries", None),
        (
            Method::GET,
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            None,
        ),
        (
            Method::POST,
            "/v1/webhooks/{id}/deliveries/{delivery_id}/replay",
            Some(json!({})),
        ),
        (Method::GET, "/v1/alert-rules/{id}", None),
        (
            Method::PATCH,
            "/v1/alert-rules/{id}",
            Some(json!({"name": "stolen", "enabled": false})),
        ),
        (Method::DELETE, "/v1/alert-rules/{id}", None),
    ]
}

/// Listings, searches and aggregates over a tenant's data, with the query that would reveal the most.
const LISTINGS: &[(&str, &str)] = &[
    ("/v1/api-keys", ""),
    ("/v1/users", ""),
    ("/v1/sending-domains", ""),
    ("/v1/sending-ips", ""),
    ("/v1/agents", ""),
    ("/v1/messages", ""),
    ("/v1/messages", "?tag=secret-tag"),
    ("/v1/messages", "?recipient=secret-rcpt@a-customer.example"),
    (
        "/v1/stats/deliveries",
        "?group_by=recipient_domain&interval=hour",
    ),
    ("/v1/stats/bounces", ""),
    ("/v1/audit-schedule", ""),
    ("/v1/listings", "?state=all"),
    ("/v1/listings/history", ""),
    ("/v1/blocklist-zones", ""),
    ("/v1/webhooks", ""),
    ("/v1/alert-rules", ""),
    ("/v1/alerts", ""),
];

/// Lookups by a value rather than an id: another tenant gets an empty answer, never tenant A's data.
const LOOKUPS: &[&str] = &["/v1/recipients/{address}"];

/// Values of tenant A's data that must never appear in an answer to tenant B.
const MARKERS: &[&str] = &[
    "secret-rcpt",
    "a-customer.example",
    "secret-tag",
    "a.example",
    "a-secret-hook",
    "a-secret-rule",
    "a-secret-alert",
];

/// Writes that only ever go into the caller's own tenant (their isolation is tested in ingest.rs).
const OWN_TENANT_WRITES: &[&str] = &[
    "/v1/ingest",
    "/v1/agents/heartbeat",
    "/v1/listings/check",
    "/v1/blocklist-zones/overrides",
];

/// Paths that are not tenant-scoped objects: health, login, identity, and installation administration (guarded by
/// `installation_admin_required`, tested in auth.rs and tenants.rs).
fn not_tenant_scoped(path: &str) -> bool {
    !path.starts_with("/v1/")
        || path.starts_with("/v1/tenants")
        || path == "/v1/unrouted-senders"
        || path == "/v1/me"
        || path == "/v1/auth/login"
}

/// Creates one object of every resource in tenant A and returns their ids by resource segment.
async fn objects_of_tenant_a(app: &TestApp) -> HashMap<&'static str, String> {
    let k = &app.admin_key;
    let mut ids = HashMap::new();
    ids.insert(
        "api-keys",
        app.post("/v1/api-keys", k, json!({"name": "a", "scopes": ["read"]}))
            .await
            .id(),
    );
    ids.insert(
        "users",
        app.post("/v1/users", k, json!({"email": "a@example.com", "password": "correct horse battery", "role": "viewer"})).await.id(),
    );
    ids.insert(
        "sending-domains",
        app.post(
            "/v1/sending-domains",
            k,
            json!({"domain": "a.example", "dkim_selectors": ["s1"]}),
        )
        .await
        .id(),
    );
    ids.insert(
        "sending-ips",
        app.post(
            "/v1/sending-ips",
            k,
            json!({"network": "192.0.2.1", "description": "a"}),
        )
        .await
        .id(),
    );
    let mut d =
        relaywatch_tests::delivery("QSECRET", "secret-rcpt@a-customer.example", "bounced", 5);
    d["tag"] = json!("secret-tag");
    assert_eq!(app.ingest(k, vec![d]).await.body["accepted"], 1);
    let messages = app.get("/v1/messages", k).await;
    ids.insert(
        "messages",
        messages.body["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    // A blocklist listing of tenant A's domain and a zone of its own.
    app.store
        .record_blocklist_results(
            app.tenant_id,
            &[relaywatch_store::blocklists::CheckRecord {
                subject: "a.example".into(),
                subject_kind: "domain".into(),
                zone: "bl.a-customer.example".into(),
                state: "listed".into(),
                codes: vec!["127.0.1.2".into()],
                meaning: Some("spam domain".into()),
                reason: None,
                informational: false,
                delist_url: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = app
        .call(
            Method::PUT,
            "/v1/blocklist-zones/overrides",
            Some(k),
            Some(json!({"add": [{"name": "bl.a-customer.example", "kinds": ["domain"], "codes": [{"code": "127.0.1.2", "meaning": "spam domain"}]}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.get("/v1/listings", k).await.text.contains("a.example"));
    // An audit run of tenant A's domain, for /v1/domains/{domain}/audits/{id}.
    ids.insert(
        "domains",
        app.post(
            &format!("/v1/domains/{TENANT_A_DOMAIN}/audits"),
            k,
            json!({}),
        )
        .await
        .id(),
    );
    // A webhook endpoint, a queued delivery of it, an alert rule and an alert.
    let hook = app
        .post(
            "/v1/webhooks",
            k,
            json!({"url": "http://127.0.0.1:9/a-secret-hook", "event_types": ["audit.resolved"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    ids.insert("webhooks", hook.id());
    let test = app
        .post(&format!("/v1/webhooks/{}/test", hook.id()), k, json!({}))
        .await;
    assert_eq!(test.status, 202, "{}", test.text);
    ids.insert("webhook-deliveries", test.id());
    let rule = app
        .post(
            "/v1/alert-rules",
            k,
            json!({"kind": "agent_silent", "name": "a-secret-rule"}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.text);
    ids.insert("alert-rules", rule.id());
    let alert = app
        .store
        .open_alert(
            app.tenant_id,
            &relaywatch_store::alerts::OpenAlert {
                rule: None,
                kind: "webhook_disabled".into(),
                scope_key: "a-secret-alert".into(),
                summary: "a-secret-alert".into(),
                value: None,
                threshold: None,
                details: json!({}),
                cooldown_minutes: 0,
            },
            chrono::Utc::now(),
            Vec::new(),
        )
        .await
        .unwrap()
        .unwrap();
    ids.insert("alerts", alert.id.to_string());
    ids
}

/// Tenant A's sending domain, the `{domain}` of audit endpoints.
const TENANT_A_DOMAIN: &str = "a.example";

#[tokio::test]
async fn another_tenants_key_can_neither_read_nor_change_objects() {
    let app = spawn_app().await;
    let ids = objects_of_tenant_a(&app).await;
    let (_, key_b) = app.other_tenant("tenant b").await;

    for (method, template, body) in object_endpoints() {
        let resource = template
            .trim_start_matches("/v1/")
            .split('/')
            .next()
            .unwrap();
        let path = template
            .replace("{id}", &ids[resource])
            .replace("{delivery_id}", &ids["webhook-deliveries"])
            .replace("{domain}", TENANT_A_DOMAIN);
        let r = app.call(method.clone(), &path, Some(&key_b), body).await;
        assert_eq!(
            r.status, 404,
            "{method} {template} with tenant B's key: {}",
            r.text
        );
        assert_eq!(r.code(), "not_found");
    }
    for (listing, query) in LISTINGS {
        let r = app.get(&format!("{listing}{query}"), &key_b).await;
        assert_eq!(r.status, 200, "{listing}{query}: {}", r.text);
        for id in ids
            .values()
            .map(String::as_str)
            .chain(MARKERS.iter().copied())
        {
            assert!(
                !r.text.contains(id),
                "{listing}{query} of tenant B shows tenant A's {id}"
            );
        }
    }
    for lookup in LOOKUPS {
        let r = app
            .get(
                &lookup.replace("{address}", "secret-rcpt@a-customer.example"),
                &key_b,
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.body["deliveries"]
                .as_array()
                .is_some_and(|d| d.is_empty()),
            "{lookup}: {}",
            r.text
        );
        assert_eq!(r.body["hard_bounced"], false);
    }

    // Tenant A's objects are untouched.
    let k = &app.admin_key;
    assert!(
        app.get(&format!("/v1/api-keys/{}", ids["api-keys"]), k)
            .await
            .body["revoked_at"]
            .is_null()
    );
    assert_eq!(
        app.get(&format!("/v1/users/{}", ids["users"]), k)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(
            &format!("/v1/sending-domains/{}", ids["sending-domains"]),
            k
        )
        .await
        .body["dkim_selectors"],
        json!(["s1"])
    );
    assert_eq!(
        app.get(&format!("/v1/sending-ips/{}", ids["sending-ips"]), k)
            .await
            .body["description"],
        "a"
    );
    let hook = app
        .get(&format!("/v1/webhooks/{}", ids["webhooks"]), k)
        .await;
    assert_eq!(hook.body["event_types"], json!(["audit.resolved"]));
    assert!(
        hook.body["previous_secret_expires_at"].is_null(),
        "the secret was not rotated"
    );
    assert_eq!(
        app.get(&format!("/v1/webhooks/{}/deliveries", ids["webhooks"]), k)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no test delivery was queued by tenant B"
    );
    let rule = app
        .get(&format!("/v1/alert-rules/{}", ids["alert-rules"]), k)
        .await;
    assert_eq!(rule.body["name"], "a-secret-rule");
    assert_eq!(rule.body["enabled"], true);
}

#[tokio::test]
async fn a_user_token_of_another_tenant_is_isolated_too() {
    let app = spawn_app().await;
    let ids = objects_of_tenant_a(&app).await;
    let (_, key_b) = app.other_tenant("tenant b").await;
    let r = app
        .post(
            "/v1/users",
            &key_b,
            json!({"email": "b@example.com", "password": "correct horse battery", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let token_b = app.login("b@example.com", "correct horse battery").await;
    for (method, template, body) in object_endpoints() {
        let resource = template
            .trim_start_matches("/v1/")
            .split('/')
            .next()
            .unwrap();
        let r = app
            .call(
                method.clone(),
                &template
                    .replace("{id}", &ids[resource])
                    .replace("{delivery_id}", &ids["webhook-deliveries"])
                    .replace("{domain}", TENANT_A_DOMAIN),
                Some(&token_b),
                body,
            )
            .await;
        assert_eq!(
            r.status, 404,
            "{method} {template} with tenant B's user token"
        );
    }
}

#[test]
fn every_tenant_scoped_endpoint_is_in_the_isolation_table() {
    let spec = serde_json::to_value(relaywatch_api::openapi::document()).unwrap();
    let table: BTreeSet<(String, String)> = object_endpoints()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), p.to_string()))
        .collect();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if not_tenant_scoped(path) {
            continue;
        }
        if LOOKUPS.contains(&path.as_str()) || OWN_TENANT_WRITES.contains(&path.as_str()) {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if path.contains('{') {
                assert!(
                    table.contains(&(method.clone(), path.clone())),
                    "{method} {path} is tenant-scoped but missing from the isolation table in tests/api/isolation.rs"
                );
            } else if method == "GET" {
                assert!(
                    LISTINGS.iter().any(|(p, _)| p == path),
                    "GET {path} is a listing missing from LISTINGS"
                );
            }
        }
    }
}
