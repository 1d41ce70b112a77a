//! Bad bodies and query strings get problem documents with stable codes, never a panic or an HTML page.

use relaywatch_tests::{TEST_MAX_BODY_BYTES, spawn_app};
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let r = app
        .post_raw(
            "/v1/sending-domains",
            &app.admin_key,
            "application/json",
            b"{\"domain\": ".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "malformed_body");
}

#[tokio::test]
async fn wrong_types_missing_and_unknown_fields_are_422() {
    let app = spawn_app().await;
    for body in [
        json!({"domain": 42}),
        json!({}),
        json!({"domain": "example.com", "colour": "blue"}),
        json!([1, 2]),
    ] {
        let r = app
            .post("/v1/sending-domains", &app.admin_key, body.clone())
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.code(), "validation_failed");
        assert!(!r.body["errors"].as_array().unwrap().is_empty());
    }
    let r = app
        .post("/v1/sending-domains", &app.admin_key, json!({}))
        .await;
    assert_eq!(r.body["errors"][0]["field"], "domain", "{}", r.text);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let r = app
        .post_raw(
            "/v1/sending-domains",
            &app.admin_key,
            "text/plain",
            b"example.com".to_vec(),
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.code(), "unsupported_media_type");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let big =
        json!({"domain": "example.com", "dkim_selectors": vec!["s"; TEST_MAX_BODY_BYTES / 3]});
    let r = app
        .post_raw(
            "/v1/sending-domains",
            &app.admin_key,
            "application/json",
            serde_json::to_vec(&big).unwrap(),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "payload_too_large");
}

#[tokio::test]
async fn bad_query_strings_are_400() {
    let app = spawn_app().await;
    for q in ["limit=0", "limit=501", "limit=ten", "cursor=nope"] {
        let r = app
            .get(&format!("/v1/sending-domains?{q}"), &app.admin_key)
            .await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.code(), "invalid_query");
    }
}

#[tokio::test]
async fn unknown_paths_and_bad_ids_are_404_problems() {
    let app = spawn_app().await;
    let r = app.get("/v1/nothing-here", &app.admin_key).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    let r = app
        .get("/v1/sending-domains/not-a-uuid", &app.admin_key)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn non_utf8_and_binary_bodies_do_not_break_the_server() {
    let app = spawn_app().await;
    let r = app
        .post_raw(
            "/v1/sending-domains",
            &app.admin_key,
            "application/json",
            vec![0xff, 0xfe, 0x00, 0x7b],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "malformed_body");
    let r = app
        .post(
            "/v1/sending-domains",
            &app.admin_key,
            json!({"domain": "ex\u{0}ample.com"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
