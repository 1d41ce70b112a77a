//! Authentication and authorisation of every endpoint, driven by the served OpenAPI document: each operation's
//! `bearer` security requirement names the scope (or `installation_admin`) it needs, and this test proves the server
//! enforces exactly that, so the document SDK users read and the server cannot disagree, and a new endpoint is
//! covered the moment it is documented.
//!
//! For every secured operation: no credentials, an expired, a tampered, an `alg: none` and a wrongly signed token,
//! and a revoked key are 401; a key holding every scope but the one needed is 403; a key holding only that one gets
//! past authorisation. For every operation with a request body: a body over the limit is 413 and a body of the wrong
//! shape is 422, both as problem documents.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use relaywatch_domain::Scope;
use relaywatch_tests::{Reply, TEST_MAX_BODY_BYTES, TEST_SIGNING_SECRET, TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// The ingest limit in this test, small so that an oversized ingest body stays cheap to send.
const TEST_MAX_INGEST_BYTES: usize = 128 * 1024;

#[derive(Debug)]
struct Operation {
    method: Method,
    /// The documented path, `{...}` parameters included.
    template: String,
    /// The path with its parameters filled in with well-formed values that name nothing.
    path: String,
    /// What the security requirement names: a scope, `installation_admin`, or nothing (any valid credentials).
    needs: Option<String>,
    has_body: bool,
}

fn fill(template: &str) -> String {
    template
        .replace("{id}", "0190f3a5-7c1e-7c4b-9a6e-2f4d5b6c7d8e")
        .replace("{delivery_id}", "0190f3a5-7c1e-7c4b-9a6e-2f4d5b6c7d8f")
        .replace("{domain}", "nothing-here.example")
        .replace("{address}", "nobody@nothing-here.example")
}

async fn secured_operations(app: &TestApp) -> Vec<Operation> {
    let spec = app.served_spec().await;
    let mut ops = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let Some(requirements) = op["security"].as_array() else {
                continue;
            };
            let Some(bearer) = requirements.iter().find_map(|r| r.get("bearer")) else {
                continue;
            };
            let names: Vec<String> = bearer
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert!(names.len() <= 1, "{method} {template}: one scope at most");
            assert!(
                placeholders_known(template),
                "{template}: a path parameter this test cannot fill"
            );
            ops.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: fill(template),
                template: template.clone(),
                needs: names.into_iter().next(),
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    ops
}

fn placeholders_known(template: &str) -> bool {
    !fill(template).contains('{')
}

/// Keys of the test's tenant: every scope but `without`, and only `with`.
async fn key_without(app: &TestApp, without: Scope) -> String {
    let scopes: Vec<Scope> = [Scope::Read, Scope::Write, Scope::Ingest, Scope::Admin]
        .into_iter()
        .filter(|s| *s != without)
        .collect();
    app.key_with(&scopes).await
}

fn scope(name: &str) -> Scope {
    match name {
        "read" => Scope::Read,
        "write" => Scope::Write,
        "ingest" => Scope::Ingest,
        "admin" => Scope::Admin,
        other => panic!("unknown scope {other:?} in the OpenAPI document"),
    }
}

fn jwt(claims: &Value, secret: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

async fn send(app: &TestApp, op: &Operation, token: Option<&str>, body: Option<Vec<u8>>) -> Reply {
    // Without a body of its own, an operation that takes one gets a well-formed one, so that only the credentials
    // can be what is refused.
    let body = body.or_else(|| op.has_body.then(|| b"{}".to_vec()));
    app.call_raw(
        op.method.clone(),
        &op.path,
        token,
        body.map(|b| ("application/json", b)),
    )
    .await
}

fn assert_problem(r: &Reply, status: u16, codes: &[&str], what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    let code = r.code();
    assert!(
        codes.contains(&code),
        "{what}: code {code:?}, expected one of {codes:?}"
    );
}

#[tokio::test]
async fn every_secured_operation_refuses_bad_credentials_and_missing_scopes() {
    let app = spawn_app_with(|s| s.max_ingest_bytes = TEST_MAX_INGEST_BYTES).await;
    let ops = secured_operations(&app).await;
    assert!(
        ops.len() >= 55,
        "only {} secured operations documented",
        ops.len()
    );

    // Credentials that must never work.
    let me = app
        .get(
            "/v1/me",
            &app.login(&app.admin_email, &app.admin_password).await,
        )
        .await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": me.body["user_id"], "tid": app.tenant_id.to_string(), "role": "owner",
        "iss": "relaywatch", "aud": "relaywatch-api", "iat": now - 600, "exp": now - 120
    });
    let expired = jwt(&claims, TEST_SIGNING_SECRET.as_bytes(), Algorithm::HS256);
    let mut live_claims = claims.clone();
    live_claims["exp"] = json!(now + 600);
    let wrong_key = jwt(&live_claims, b"not the server's secret", Algorithm::HS256);
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(serde_json::to_vec(&live_claims).unwrap())
    );
    let valid = jwt(
        &live_claims,
        TEST_SIGNING_SECRET.as_bytes(),
        Algorithm::HS256,
    );
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let mut payload = live_claims.clone();
    payload["tid"] = json!(uuid::Uuid::nil().to_string());
    parts[1] = engine.encode(serde_json::to_vec(&payload).unwrap());
    let tampered = parts.join(".");
    let revoked = app.key_with(&[Scope::Read, Scope::Write]).await;
    let revoked_id = app.get("/v1/me", &revoked).await.body["api_key_id"]
        .as_str()
        .expect("a key's identity names the key")
        .to_string();
    let r = app
        .delete(&format!("/v1/api-keys/{revoked_id}"), &app.admin_key)
        .await;
    assert!((200..300).contains(&r.status), "revoking: {}", r.text);

    let (_, other_tenants_admin) = app.other_tenant("not an installation admin").await;
    for op in &ops {
        let what = format!("{} {}", op.method, op.template);
        let r = send(&app, op, None, None).await;
        assert_problem(
            &r,
            401,
            &["missing_credentials"],
            &format!("{what}, no credentials"),
        );
        for (name, token, codes) in [
            ("expired token", &expired, &["token_expired"][..]),
            (
                "token signed with another key",
                &wrong_key,
                &["invalid_token"],
            ),
            ("alg none", &alg_none, &["invalid_token"]),
            ("tampered token", &tampered, &["invalid_token"]),
            ("revoked key", &revoked, &["invalid_api_key"]),
        ] {
            let r = send(&app, op, Some(token), None).await;
            assert_problem(&r, 401, codes, &format!("{what}, {name}"));
        }

        match op.needs.as_deref() {
            None => {}
            Some("installation_admin") => {
                let r = send(&app, op, Some(&other_tenants_admin), None).await;
                assert_problem(
                    &r,
                    403,
                    &["installation_admin_required"],
                    &format!("{what}, a tenant's all-scopes key"),
                );
            }
            Some(name) => {
                let needed = scope(name);
                let r = send(&app, op, Some(&key_without(&app, needed).await), None).await;
                assert_problem(
                    &r,
                    403,
                    &["insufficient_scope"],
                    &format!("{what}, every scope but `{name}`"),
                );
                let only = app.key_with(&[needed]).await;
                let r = send(&app, op, Some(&only), None).await;
                assert!(
                    ![401, 403].contains(&r.status),
                    "{what}: a key with only `{name}` is refused: {} {}",
                    r.status,
                    r.text
                );
            }
        }
    }
}

#[tokio::test]
async fn every_operation_with_a_body_refuses_oversized_and_misshapen_ones() {
    let app = spawn_app_with(|s| s.max_ingest_bytes = TEST_MAX_INGEST_BYTES).await;
    let ops = secured_operations(&app).await;
    let with_body: Vec<&Operation> = ops.iter().filter(|o| o.has_body).collect();
    assert!(
        with_body.len() >= 20,
        "{} operations with a body",
        with_body.len()
    );
    let limit = TEST_MAX_BODY_BYTES.max(TEST_MAX_INGEST_BYTES);
    // Valid JSON, just too long: a string of `limit` bytes inside an object.
    let oversized = serde_json::to_vec(&json!({ "padding": "x".repeat(limit) })).unwrap();
    for op in with_body {
        let what = format!("{} {}", op.method, op.template);
        let r = send(&app, op, Some(&app.admin_key), Some(oversized.clone())).await;
        assert_problem(
            &r,
            413,
            &["payload_too_large"],
            &format!("{what}, oversized"),
        );
        // A JSON value of the wrong type for every documented body.
        let r = send(&app, op, Some(&app.admin_key), Some(b"[1, 2, 3]".to_vec())).await;
        assert_problem(
            &r,
            422,
            &["validation_failed", "malformed_body"],
            &format!("{what}, a JSON array"),
        );
    }
}
