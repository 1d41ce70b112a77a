use relaywatch_tests::spawn_app;

#[tokio::test]
async fn liveness_and_readiness_answer() {
    let app = spawn_app().await;
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready: serde_json::Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    app.get(&format!("/v1/sending-domains/{id}"), &app.admin_key)
        .await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"relaywatch_http_requests_total{method="GET",route="/v1/sending-domains/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("relaywatch_http_request_duration_seconds_bucket"));
    // The raw id never becomes a label.
    assert!(!text.contains(&id.to_string()));
}

#[tokio::test]
async fn docs_page_is_served_without_internet() {
    let app = spawn_app().await;
    let redirect = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("cdn."),
        "the docs page must not load assets from a CDN"
    );
    let js = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
}
