use relaywatch_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn installation_admins_create_tenants_with_domains_and_ips() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/tenants", &app.admin_key, json!({"name": "Acme", "domains": ["acme.example", "ACME.example"], "ips": ["198.51.100.7"]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let tenant_id = r.body["tenant"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["tenant"]["retention_days"], 30);
    let key = r.body["api_key"]["key"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["api_key"]["scopes"],
        json!(["read", "write", "ingest", "admin"])
    );

    let me = app.get("/v1/me", &key).await;
    assert_eq!(me.body["tenant_id"], tenant_id);
    assert_eq!(me.body["installation_admin"], false);
    let domains = app.get("/v1/sending-domains", &key).await;
    assert_eq!(domains.body["items"].as_array().unwrap().len(), 1);
    let ips = app.get("/v1/sending-ips", &key).await;
    assert_eq!(ips.body["items"][0]["network"], "198.51.100.7");

    let list = app.get("/v1/tenants", &app.admin_key).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let r = app
        .patch(
            &format!("/v1/tenants/{tenant_id}"),
            &app.admin_key,
            json!({"name": "Acme Corp", "retention_days": 90}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["retention_days"], 90);
    assert_eq!(
        app.get(&format!("/v1/tenants/{tenant_id}"), &app.admin_key)
            .await
            .body["name"],
        "Acme Corp"
    );

    assert_eq!(
        app.delete(&format!("/v1/tenants/{tenant_id}"), &app.admin_key)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get("/v1/me", &key).await.status,
        401,
        "a deleted tenant's keys stop working"
    );
    assert_eq!(
        app.get(&format!("/v1/tenants/{tenant_id}"), &app.admin_key)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn bad_tenant_requests_are_refused() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/tenants",
            &app.admin_key,
            json!({"name": "x", "domains": ["ok.example", "not a domain"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "domains[1]");
    let r = app
        .post(
            "/v1/tenants",
            &app.admin_key,
            json!({"name": "x", "ips": ["10.0.0.0/8"]}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["field"], "ips[0]");
    assert_eq!(
        app.get("/v1/tenants", &app.admin_key).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing half-made"
    );
    let id = app.tenant_id;
    let r = app
        .patch(
            &format!("/v1/tenants/{id}"),
            &app.admin_key,
            json!({"retention_days": 0}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .delete(&format!("/v1/tenants/{id}"), &app.admin_key)
        .await;
    assert_eq!(
        r.status, 422,
        "an admin cannot delete the tenant they stand in"
    );
}
