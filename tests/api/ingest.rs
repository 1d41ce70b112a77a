//! POST /v1/ingest and heartbeats: idempotence, validation, limits, routing, agents.

use relaywatch_domain::Scope;
use relaywatch_tests::{delivery, lab_records, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_replayed_batch_changes_nothing() {
    let app = spawn_app().await;
    let Some(records) = lab_records() else { return };
    let deliveries = records.iter().filter(|r| r["kind"] == "delivery").count() as u64;
    assert!(
        deliveries > 900,
        "the lab log has about 966 attempts, got {deliveries}"
    );
    let mut accepted = 0;
    for chunk in records.chunks(1000) {
        let r = app.ingest(&app.admin_key, chunk.to_vec()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["rejected"], 0, "{}", r.text);
        accepted += r.body["accepted"].as_u64().unwrap();
    }
    assert_eq!(accepted, deliveries);
    // The same records again, plain and gzip-compressed: all duplicates.
    let r = app.ingest(&app.admin_key, records[..1000].to_vec()).await;
    assert_eq!(r.body["accepted"], 0);
    let dup_in_first = records[..1000]
        .iter()
        .filter(|r| r["kind"] == "delivery")
        .count() as u64;
    assert_eq!(r.body["duplicate"], dup_in_first);
    let r = app
        .ingest_gzip(&app.admin_key, records[1000..].to_vec())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 0);
    // The statistics count every attempt once.
    let stats = app
        .get(
            "/v1/stats/deliveries?interval=day&from=2000-01-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    let t = &stats.body["totals"];
    let sum = ["sent", "deferred", "bounced", "expired", "other"]
        .iter()
        .map(|k| t[k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(sum as u64, deliveries, "{}", stats.text);
}

#[tokio::test]
async fn the_same_record_twice_in_one_batch_is_stored_once() {
    let app = spawn_app().await;
    let d = delivery("Q1", "a@example.org", "sent", 5);
    let r = app.ingest(&app.admin_key, vec![d.clone(), d]).await;
    assert_eq!(r.body["accepted"], 1);
    assert_eq!(r.body["duplicate"], 1);
}

#[tokio::test]
async fn bad_records_are_refused_with_a_reason_and_the_rest_is_kept() {
    let app = spawn_app().await;
    let good = delivery("Q1", "a@example.org", "sent", 5);
    let mut future = delivery("Q2", "b@example.org", "sent", 0);
    future["time"] = json!((chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339());
    let mut ancient = delivery("Q3", "c@example.org", "sent", 0);
    ancient["time"] = json!((chrono::Utc::now() - chrono::Duration::days(45)).to_rfc3339());
    let mut bad_status = delivery("Q4", "d@example.org", "sent", 5);
    bad_status["status"] = json!("delivered-ish");
    let mut bad_id = delivery("Q5", "e@example.org", "sent", 5);
    bad_id["id"] = json!("not-a-uuid");
    let mut negative = delivery("Q6", "f@example.org", "sent", 5);
    negative["delay"] = json!(-3.0);
    let missing = json!({"kind": "delivery", "id": uuid::Uuid::now_v7().to_string()});
    let unknown = json!({"kind": "gossip"});
    let r = app
        .ingest(
            &app.admin_key,
            vec![
                good, future, ancient, bad_status, bad_id, negative, missing, unknown,
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 1, "{}", r.text);
    assert_eq!(r.body["rejected"], 7, "{}", r.text);
    let reasons: Vec<(u64, String)> = r.body["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |i: u64| {
        reasons
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason(1).contains("future"), "{reasons:?}");
    assert!(reason(2).contains("retention"), "{reasons:?}");
    assert!(reason(3).contains("unknown status"), "{reasons:?}");
    assert!(reason(4).contains("UUID"), "{reasons:?}");
    assert!(reason(5).contains("delay"), "{reasons:?}");
    assert!(
        reason(6).contains("not a valid delivery record"),
        "{reasons:?}"
    );
    assert!(reason(7).contains("unknown record kind"), "{reasons:?}");
}

#[tokio::test]
async fn ingest_needs_the_ingest_scope_and_respects_limits() {
    let app = spawn_app().await;
    let read = app.key_with(&[Scope::Read]).await;
    let r = app
        .ingest(&read, vec![delivery("Q1", "a@example.org", "sent", 1)])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "insufficient_scope");
    let ingest = app.key_with(&[Scope::Ingest]).await;
    assert_eq!(
        app.ingest(&ingest, vec![delivery("Q1", "a@example.org", "sent", 1)])
            .await
            .status,
        200
    );

    let too_many: Vec<_> = (0..5_001).map(|_| json!({"kind": "finished"})).collect();
    let r = app.ingest(&ingest, too_many).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "records");

    let r = app.ingest(&ingest, vec![]).await;
    assert_eq!(r.status, 200);
    let r = app
        .post(
            "/v1/ingest",
            &ingest,
            json!({"agent": {"host_name": ""}, "records": []}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .post("/v1/ingest", &ingest, json!({"records": []}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "agent");
}

#[tokio::test]
async fn compression_bombs_and_bad_encodings_are_refused() {
    let app = spawn_app().await;
    // 80 MiB of spaces inside the JSON compress to about 80 KiB, far past the 64 MiB decompressed limit.
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b"{\"agent\": {\"host_name\": \"mx1\"}, \"records\": [")
        .unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..80 {
        enc.write_all(&spaces).unwrap();
    }
    enc.write_all(b"]}").unwrap();
    let body = enc.finish().unwrap();
    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(b"definitely not gzip".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(b"{}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn heartbeats_and_batches_keep_the_agent_list_current() {
    let app = spawn_app().await;
    let ingest = app.key_with(&[Scope::Ingest]).await;
    let hb = json!({"host_name": "mx2", "version": "0.1.0", "lines_read": 1000, "records_shipped": 40, "spool_bytes": 0, "lag_seconds": 0.5});
    let r = app.post("/v1/agents/heartbeat", &ingest, hb).await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.ingest(
        &ingest,
        vec![
            delivery("Q1", "a@example.org", "sent", 1),
            delivery("Q2", "b@example.org", "sent", 1),
        ],
    )
    .await;
    let agents = app.get("/v1/agents", &app.admin_key).await;
    let items = agents.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", agents.text);
    let mx1 = items.iter().find(|a| a["host_name"] == "mx1").unwrap();
    assert_eq!(mx1["records_accepted"], 2);
    assert_eq!(mx1["silent"], false);
    let mx2 = items.iter().find(|a| a["host_name"] == "mx2").unwrap();
    assert_eq!(mx2["lines_read"], 1000);
    assert_eq!(mx2["version"], "0.1.0");
    let r = app
        .post("/v1/agents/heartbeat", &ingest, json!({"host_name": ""}))
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn a_shared_host_key_routes_by_sender_domain() {
    let app = spawn_app().await;
    let (_, acme_key) = app.other_tenant("acme").await;
    let (_, globex_key) = app.other_tenant("globex").await;
    assert_eq!(
        app.post(
            "/v1/sending-domains",
            &acme_key,
            json!({"domain": "acme.example"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.post(
            "/v1/sending-domains",
            &globex_key,
            json!({"domain": "globex.example"})
        )
        .await
        .status,
        201
    );
    let new = relaywatch_store::api_keys::NewKey {
        name: "shared mx",
        scopes: [Scope::Ingest].into_iter().collect(),
        installation_admin: false,
        expires_at: None,
        created_by_user: None,
        routes_by_sender: true,
    };
    let (_, shared) = app.store.issue_api_key(app.tenant_id, new).await.unwrap();

    let mut a = delivery("QA", "x@example.org", "sent", 3);
    a["sender"] = json!("billing@mail.acme.example"); // a subdomain of a registered domain
    let mut g = delivery("QG", "y@example.org", "bounced", 3);
    g["sender"] = json!("news@globex.example");
    let mut nobody = delivery("QN", "z@example.org", "sent", 3);
    nobody["sender"] = json!("root@unknown.example");
    let r = app.ingest(&shared, vec![a, g, nobody]).await;
    assert_eq!(r.body["accepted"], 2, "{}", r.text);
    assert_eq!(r.body["unrouted"], 1, "{}", r.text);

    let acme_msgs = app.get("/v1/messages", &acme_key).await;
    assert_eq!(acme_msgs.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(acme_msgs.body["items"][0]["queue_id"], "QA");
    let globex_msgs = app.get("/v1/messages", &globex_key).await;
    assert_eq!(globex_msgs.body["items"][0]["queue_id"], "QG");
    let own = app.get("/v1/messages", &app.admin_key).await;
    assert!(
        own.body["items"].as_array().unwrap().is_empty(),
        "the key's own tenant gets none: {}",
        own.text
    );

    let unrouted = app.get("/v1/unrouted-senders", &app.admin_key).await;
    assert_eq!(
        unrouted.body["items"][0]["sender_domain"],
        "unknown.example"
    );
    assert_eq!(unrouted.body["items"][0]["deliveries"], 1);
    assert_eq!(app.get("/v1/unrouted-senders", &acme_key).await.status, 403);
}

#[tokio::test]
async fn stored_deliveries_are_counted_in_metrics_once() {
    let app = spawn_app().await;
    let d = delivery("Q1", "a@example.org", "bounced", 1);
    app.ingest(&app.admin_key, vec![d.clone()]).await;
    app.ingest(&app.admin_key, vec![d]).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        r#"relaywatch_deliveries_total{{bounce_class="unknown_recipient",status="bounced",tenant="{}"}} 1"#,
        app.tenant_id
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
}

#[tokio::test]
async fn stored_deliveries_are_sent_to_statsd() {
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = relaywatch_tests::spawn_app_with(|s| {
        s.statsd_addr = Some(addr);
        s.statsd_prefix = "mail".into();
    })
    .await;
    let records = vec![
        delivery("Q1", "a@example.org", "sent", 1),
        delivery("Q2", "b@example.org", "sent", 1),
        delivery("Q3", "c@example.org", "bounced", 1),
    ];
    app.ingest(&app.admin_key, records.clone()).await;
    let mut buf = [0u8; 4096];
    let n = listener.recv(&mut buf).expect("a statsd datagram arrives");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    let t = app.tenant_id;
    assert!(
        text.contains(&format!("mail.{t}.deliveries.sent:2|c")),
        "{text}"
    );
    assert!(
        text.contains(&format!("mail.{t}.deliveries.bounced:1|c")),
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("mail.{t}.delay:1500|ms")).count(),
        3,
        "{text}"
    );
    // A replay stores nothing and sends nothing.
    app.ingest(&app.admin_key, records).await;
    listener
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    assert!(
        listener.recv(&mut buf).is_err(),
        "a replay must not be counted again"
    );
}
