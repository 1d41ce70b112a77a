use relaywatch_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn register_read_update_and_remove_an_ip() {
    let app = spawn_app().await;
    let key = &app.admin_key;
    let r = app
        .post(
            "/v1/sending-ips",
            key,
            json!({"network": "192.0.2.10/32", "description": "mx1 outbound"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["network"], "192.0.2.10");
    let id = r.id();
    let r = app
        .post("/v1/sending-ips", key, json!({"network": "2001:DB8::/48"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["network"], "2001:db8::/48");

    let r = app
        .patch(
            &format!("/v1/sending-ips/{id}"),
            key,
            json!({"description": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["description"].is_null());
    assert_eq!(
        app.get("/v1/sending-ips", key).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.delete(&format!("/v1/sending-ips/{id}"), key)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&format!("/v1/sending-ips/{id}"), key).await.status,
        404
    );
}

#[tokio::test]
async fn invalid_networks_are_422_with_the_reason() {
    let app = spawn_app().await;
    for (bad, hint) in [
        ("300.1.1.1", "not an IP address"),
        ("mail.example.com", "not an IP address"),
        ("192.0.2.5/24", "host bits"),
        ("10.0.0.0/8", "too wide"),
        ("2001:db8::/31", "too wide"),
    ] {
        let r = app
            .post("/v1/sending-ips", &app.admin_key, json!({"network": bad}))
            .await;
        assert_eq!(r.status, 422, "{bad} was accepted");
        assert_eq!(r.body["errors"][0]["field"], "network");
        assert!(
            r.body["detail"].as_str().unwrap().contains(hint),
            "{bad}: {}",
            r.text
        );
    }
    let r = app
        .post(
            "/v1/sending-ips",
            &app.admin_key,
            json!({"network": "192.0.2.1", "description": "x".repeat(501)}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "description");
}

#[tokio::test]
async fn the_same_network_twice_is_a_conflict() {
    let app = spawn_app().await;
    assert_eq!(
        app.post(
            "/v1/sending-ips",
            &app.admin_key,
            json!({"network": "192.0.2.1"})
        )
        .await
        .status,
        201
    );
    let r = app
        .post(
            "/v1/sending-ips",
            &app.admin_key,
            json!({"network": "192.0.2.1/32"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "already_exists");
}
