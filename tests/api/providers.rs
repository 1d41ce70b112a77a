//! "Provider" for domains the relay does not reveal: the recipient domain's MX (a real DNS server on loopback),
//! looked up by the worker, cached, used for the deliveries already stored and for those ingested afterwards.

use relaywatch_tests::{TestApp, delivery, dns, spawn_app};
use relaywatch_worker::dns::{DnsSettings, build_resolver};
use relaywatch_worker::providers::resolve_pending;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// A deferral that never reached a relay: the provider cannot come from the log.
fn unrelayed(queue_id: &str, recipient: &str) -> serde_json::Value {
    let mut d = delivery(queue_id, recipient, "deferred", 5);
    d["relay"] = json!("none");
    d["dsn"] = json!("4.4.1");
    d["reply"] = json!("connect to mx.example[192.0.2.99]:25: Connection timed out");
    d
}

async fn providers(app: &TestApp) -> HashMap<String, i64> {
    let to = chrono::Utc::now() + chrono::Duration::minutes(1);
    let from = to - chrono::Duration::hours(2);
    let r = app
        .get(
            &format!(
                "/v1/stats/deliveries?from={}&to={}&interval=hour&group_by=provider",
                from.format("%Y-%m-%dT%H:%M:%SZ"),
                to.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap_or("(none)").to_string(),
                s["totals"]["deferred"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn hosted_domains_get_their_provider_from_mx_even_without_a_relay() {
    let server = dns::serve(&[(
        "example",
        "acme MX 1 aspmx.l.google.com.\nacme MX 5 alt1.aspmx.l.google.com.\n\
         contoso MX 0 contoso-example.mail.protection.outlook.com.\n\
         selfhosted MX 10 mx.selfhosted.example.\n",
    )])
    .await;
    let resolver = build_resolver(&DnsSettings {
        nameservers: vec![server.addr],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap();
    let app = spawn_app().await;
    let r = app
        .ingest(
            &app.admin_key,
            vec![
                unrelayed("Q1", "a@acme.example"),
                unrelayed("Q2", "b@contoso.example"),
                unrelayed("Q3", "c@selfhosted.example"),
                unrelayed("Q4", "d@missing.example"),
            ],
        )
        .await;
    assert_eq!(r.body["accepted"], 4, "{}", r.text);
    assert_eq!(providers(&app).await.get("(none)"), Some(&4));

    let report = resolve_pending(&app.store, &resolver, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(report.domains, 4);
    assert_eq!(report.with_provider, 2);
    assert_eq!(report.deliveries_updated, 2);
    let groups = providers(&app).await;
    assert_eq!(groups.get("google"), Some(&1), "{groups:?}");
    assert_eq!(groups.get("microsoft"), Some(&1), "{groups:?}");
    assert_eq!(groups.get("(none)"), Some(&2), "{groups:?}");

    // Cached: nothing to ask again, and new attempts get the provider when they are stored.
    let again = resolve_pending(&app.store, &resolver, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(again.domains, 0, "{again:?}");
    app.ingest(&app.admin_key, vec![unrelayed("Q5", "e@acme.example")])
        .await;
    assert_eq!(providers(&app).await.get("google"), Some(&2));
}
