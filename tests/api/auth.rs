use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use relaywatch_domain::Scope;
use relaywatch_tests::{TEST_SIGNING_SECRET, TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

fn claims_for(app: &TestApp, user_id: &str, exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user_id, "tid": app.tenant_id.to_string(), "role": "owner",
        "iss": "relaywatch", "aud": "relaywatch-api", "iat": now, "exp": now + exp_offset
    })
}

async fn admin_user_id(app: &TestApp) -> String {
    let token = app.login(&app.admin_email, &app.admin_password).await;
    app.get("/v1/me", &token).await.body["user_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn login_issues_a_token_that_identifies_the_user() {
    let app = spawn_app().await;
    let r = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": app.admin_email, "password": app.admin_password})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let token = r.body["access_token"].as_str().unwrap();
    let me = app.get("/v1/me", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["kind"], "user");
    assert_eq!(me.body["role"], "owner");
    assert_eq!(me.body["tenant_id"], app.tenant_id.to_string());
    assert_eq!(me.body["installation_admin"], true);
    assert_eq!(
        me.body["scopes"],
        json!(["read", "write", "ingest", "admin"])
    );
}

#[tokio::test]
async fn login_with_a_case_different_email_works() {
    let app = spawn_app().await;
    app.login(&app.admin_email.to_uppercase(), &app.admin_password)
        .await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let app = spawn_app().await;
    for (email, password) in [
        (app.admin_email.as_str(), "wrong password!"),
        ("nobody@example.com", "whatever12345"),
    ] {
        let r = app
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.code(), "invalid_credentials");
    }
}

#[tokio::test]
async fn api_keys_identify_their_tenant_and_scopes() {
    let app = spawn_app().await;
    let key = app.key_with(&[Scope::Read]).await;
    let me = app.get("/v1/me", &key).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["kind"], "api_key");
    assert_eq!(me.body["scopes"], json!(["read"]));
    assert_eq!(me.body["installation_admin"], false);
}

#[tokio::test]
async fn missing_and_malformed_credentials_are_401() {
    let app = spawn_app().await;
    let r = app.call(Method::GET, "/v1/me", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "missing_credentials");
    let basic = app
        .client
        .get(app.url("/v1/me"))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert!(basic.headers().get("www-authenticate").is_some());
    for bad in ["not-a-token", "rw_not-a-real-key", "a.b.c", ""] {
        let r = app.get("/v1/me", bad).await;
        assert_eq!(r.status, 401, "{bad:?}");
        assert!(
            ["invalid_token", "invalid_api_key", "missing_credentials"].contains(&r.code()),
            "{bad:?}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let app = spawn_app().await;
    let token = app.login(&app.admin_email, &app.admin_password).await;
    // Change the payload: the signature no longer matches.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    payload["role"] = json!("owner");
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 3600);
    parts[1] = engine.encode(serde_json::to_vec(&payload).unwrap());
    let r = app.get("/v1/me", &parts.join(".")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "invalid_token");
    // Flip the last character of the signature.
    let mut sig = token.clone();
    let last = sig.pop().unwrap();
    sig.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(app.get("/v1/me", &sig).await.status, 401);
}

#[tokio::test]
async fn tokens_signed_with_another_key_or_alg_none_are_refused() {
    let app = spawn_app().await;
    let user = admin_user_id(&app).await;
    let claims = claims_for(&app, &user, 600);
    let right = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(TEST_SIGNING_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get("/v1/me", &right).await.status,
        200,
        "a token with the server's key works"
    );
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another secret").unwrap(),
    )
    .unwrap();
    let r = app.get("/v1/me", &wrong).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "invalid_token");
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(serde_json::to_vec(&claims).unwrap())
    );
    let r = app.get("/v1/me", &none).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "invalid_token");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(TEST_SIGNING_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get("/v1/me", &hs512).await.status,
        401,
        "only HS256 is accepted"
    );
}

#[tokio::test]
async fn expired_tokens_say_so() {
    let app = spawn_app().await;
    let user = admin_user_id(&app).await;
    let claims = claims_for(&app, &user, -120);
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(TEST_SIGNING_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = app.get("/v1/me", &token).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "token_expired");
}

#[tokio::test]
async fn a_token_for_another_tenant_than_the_user_is_refused() {
    let app = spawn_app().await;
    let user = admin_user_id(&app).await;
    let (other, _) = app.other_tenant("other").await;
    let mut claims = claims_for(&app, &user, 600);
    claims["tid"] = json!(other.to_string());
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(TEST_SIGNING_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(app.get("/v1/me", &token).await.status, 401);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let app = spawn_app().await;
    let read = app.key_with(&[Scope::Read]).await;
    let ingest = app.key_with(&[Scope::Ingest]).await;
    let write = app.key_with(&[Scope::Read, Scope::Write]).await;

    let r = app
        .post(
            "/v1/sending-domains",
            &read,
            json!({"domain": "example.com"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "insufficient_scope");
    assert_eq!(app.get("/v1/sending-domains", &ingest).await.status, 403);
    assert_eq!(app.get("/v1/sending-domains", &read).await.status, 200);
    assert_eq!(
        app.post(
            "/v1/sending-domains",
            &write,
            json!({"domain": "example.com"})
        )
        .await
        .status,
        201
    );
    // Key and user management need `admin`.
    assert_eq!(app.get("/v1/api-keys", &write).await.status, 403);
    assert_eq!(
        app.post(
            "/v1/api-keys",
            &write,
            json!({"name": "x", "scopes": ["read"]})
        )
        .await
        .status,
        403
    );
    assert_eq!(app.get("/v1/users", &write).await.status, 403);
    // Tenants need an installation admin, whatever the scopes.
    let (_, tenant_admin) = app.other_tenant("other").await;
    let r = app.get("/v1/tenants", &tenant_admin).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "installation_admin_required");
}

#[tokio::test]
async fn viewer_role_only_reads() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/users", &app.admin_key, json!({"email": "support@example.com", "password": "a long enough pass", "role": "viewer"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = app.login("support@example.com", "a long enough pass").await;
    assert_eq!(app.get("/v1/sending-domains", &token).await.status, 200);
    let r = app
        .post(
            "/v1/sending-domains",
            &token,
            json!({"domain": "example.com"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "insufficient_scope");
    assert_eq!(app.get("/v1/api-keys", &token).await.status, 403);
}
