use relaywatch_domain::Scope;
use relaywatch_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_key_is_shown_once_and_works_until_revoked() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            json!({"name": "agent on mx1", "scopes": ["ingest", "read"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("rw_"));
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(r.body["scopes"], json!(["read", "ingest"]));
    let id = r.id();

    assert_eq!(app.get("/v1/me", &key).await.status, 200);
    let listed = app.get("/v1/api-keys", &app.admin_key).await;
    assert!(!listed.text.contains(&key), "listings never contain a key");
    let one = app.get(&format!("/v1/api-keys/{id}"), &app.admin_key).await;
    assert!(one.body.get("key").is_none());
    assert!(!one.body["last_used_at"].is_null(), "use is recorded");

    let r = app
        .delete(&format!("/v1/api-keys/{id}"), &app.admin_key)
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.body["revoked_at"].is_null());
    let r = app.get("/v1/me", &key).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "invalid_api_key");
    assert_eq!(
        app.delete(&format!("/v1/api-keys/{id}"), &app.admin_key)
            .await
            .status,
        200,
        "revoking twice is harmless"
    );
}

#[tokio::test]
async fn keys_are_stored_only_as_digests() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            json!({"name": "n", "scopes": ["read"]}),
        )
        .await;
    let key = r.body["key"].as_str().unwrap();
    let row = app
        .store
        .find_api_key(app.tenant_id, r.id().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(row.key_hash, key);
    assert!(!row.key_hash.contains(&key[3..]));
    assert_eq!(row.key_hash.len(), 64);
}

#[tokio::test]
async fn a_key_cannot_grant_more_than_its_creator_holds() {
    let app = spawn_app().await;
    let admin_only = app.key_with(&[Scope::Admin, Scope::Read]).await;
    let r = app
        .post(
            "/v1/api-keys",
            &admin_only,
            json!({"name": "escalate", "scopes": ["write"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "scopes");
    assert_eq!(
        app.post(
            "/v1/api-keys",
            &admin_only,
            json!({"name": "ok", "scopes": ["read"]})
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn invalid_key_requests_are_422() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes[0]"),
        (json!({"name": "  ", "scopes": ["read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let r = app.post("/v1/api-keys", &app.admin_key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.text);
    }
}

#[tokio::test]
async fn expired_keys_stop_working() {
    let app = spawn_app().await;
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let r = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            json!({"name": "short", "scopes": ["read"], "expires_at": soon}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(app.get("/v1/me", &key).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = app.get("/v1/me", &key).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "invalid_api_key");
}
