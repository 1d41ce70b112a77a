use relaywatch_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn register_read_update_and_remove_a_domain() {
    let app = spawn_app().await;
    let key = &app.admin_key;
    let r = app
        .post(
            "/v1/sending-domains",
            key,
            json!({"domain": "Mail.Example.COM.", "dkim_selectors": ["S2024", "google"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["domain"], "mail.example.com");
    assert_eq!(r.body["dkim_selectors"], json!(["google", "s2024"]));
    let id = r.id();

    let r = app.get(&format!("/v1/sending-domains/{id}"), key).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["domain"], "mail.example.com");

    let r = app
        .patch(
            &format!("/v1/sending-domains/{id}"),
            key,
            json!({"dkim_selectors": ["s2025"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dkim_selectors"], json!(["s2025"]));

    let r = app.delete(&format!("/v1/sending-domains/{id}"), key).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.get(&format!("/v1/sending-domains/{id}"), key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete(&format!("/v1/sending-domains/{id}"), key)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_domain_is_registered_once_per_tenant() {
    let app = spawn_app().await;
    assert_eq!(
        app.post(
            "/v1/sending-domains",
            &app.admin_key,
            json!({"domain": "example.com"})
        )
        .await
        .status,
        201
    );
    let r = app
        .post(
            "/v1/sending-domains",
            &app.admin_key,
            json!({"domain": "EXAMPLE.com"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "already_exists");
    // Another tenant may register the same domain: registrations do not reveal each other.
    let (_, other) = app.other_tenant("other").await;
    assert_eq!(
        app.post(
            "/v1/sending-domains",
            &other,
            json!({"domain": "example.com"})
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn invalid_domains_and_selectors_are_422_naming_the_field() {
    let app = spawn_app().await;
    for bad in [
        "",
        "localhost",
        "exa mple.com",
        "-bad.example",
        "a..b.com",
        "192.0.2.1",
        "bücher.de",
        "under_score.com",
    ] {
        let r = app
            .post(
                "/v1/sending-domains",
                &app.admin_key,
                json!({"domain": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{bad:?} was accepted");
        assert_eq!(r.code(), "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "domain");
    }
    let r = app
        .post(
            "/v1/sending-domains",
            &app.admin_key,
            json!({"domain": "example.com", "dkim_selectors": ["ok", "not ok"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "dkim_selectors[1]");
}

#[tokio::test]
async fn listings_are_paginated_by_cursor() {
    let app = spawn_app().await;
    for d in ["a.example", "b.example", "c.example"] {
        assert_eq!(
            app.post("/v1/sending-domains", &app.admin_key, json!({"domain": d}))
                .await
                .status,
            201
        );
    }
    let first = app.get("/v1/sending-domains?limit=2", &app.admin_key).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app
        .get(
            &format!("/v1/sending-domains?limit=2&cursor={cursor}"),
            &app.admin_key,
        )
        .await;
    let items = second.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["domain"], "c.example");
    assert!(second.body["next_cursor"].is_null());
}
