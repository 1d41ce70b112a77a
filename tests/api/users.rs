use relaywatch_domain::Scope;
use relaywatch_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn users_are_created_listed_and_removed() {
    let app = spawn_app().await;
    let r = app.post("/v1/users", &app.admin_key, json!({"email": "Ops@Example.com", "password": "correct horse battery", "role": "admin"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["email"], "ops@example.com");
    assert!(r.body.get("password_hash").is_none());
    let id = r.id();
    let token = app.login("ops@example.com", "correct horse battery").await;
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["installation_admin"], false);
    assert_eq!(
        app.get("/v1/users", &app.admin_key).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get(&format!("/v1/users/{id}"), &app.admin_key)
            .await
            .status,
        200
    );
    assert_eq!(
        app.delete(&format!("/v1/users/{id}"), &app.admin_key)
            .await
            .status,
        204
    );
    let r = app.get("/v1/me", &token).await;
    assert_eq!(
        r.status, 401,
        "a removed user's token stops working at once"
    );
}

#[tokio::test]
async fn passwords_are_hashed_with_argon2id() {
    let app = spawn_app().await;
    let r = app.post("/v1/users", &app.admin_key, json!({"email": "a@example.com", "password": "correct horse battery", "role": "viewer"})).await;
    let row = app
        .store
        .find_user(app.tenant_id, r.id().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(row.password_hash.starts_with("$argon2id$"));
    assert!(!row.password_hash.contains("correct horse"));
}

#[tokio::test]
async fn bad_users_are_refused() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            json!({"email": "not an email", "password": "correct horse battery", "role": "viewer"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "role": "viewer"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "correct horse battery", "role": "god"}),
            "role",
        ),
    ] {
        let r = app.post("/v1/users", &app.admin_key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(
            r.body["errors"][0]["field"]
                .as_str()
                .unwrap()
                .contains(field),
            "{body}: {}",
            r.text
        );
    }
    let body =
        json!({"email": "a@example.com", "password": "correct horse battery", "role": "viewer"});
    assert_eq!(
        app.post("/v1/users", &app.admin_key, body.clone())
            .await
            .status,
        201
    );
    let r = app.post("/v1/users", &app.admin_key, body).await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn nobody_hands_out_a_role_above_their_own() {
    let app = spawn_app().await;
    let admin_key = app
        .key_with(&[Scope::Read, Scope::Write, Scope::Admin])
        .await;
    let r = app.post("/v1/users", &admin_key, json!({"email": "boss@example.com", "password": "correct horse battery", "role": "owner"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "role");
}
