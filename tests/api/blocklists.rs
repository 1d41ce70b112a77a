//! Blocklists against a real DNS server on loopback: listed with various codes, clean, refusal and undocumented
//! codes (never listings), a zone that lists everything (broken), a zone that times out (not tested), IPv6, domain
//! zones, TXT reasons; history through listed → cleared → listed; checks triggered by a bounce.

use relaywatch_audit::blocklist::{Subject, ZoneSpec};
use relaywatch_domain::Scope;
use relaywatch_tests::dnsbl::{DnsblServer, zone_def};
use relaywatch_tests::{TestApp, delivery, spawn_app_with};
use relaywatch_worker::blocklist::{self as bl, BlocklistSettings, Checker, SelfTest};
use serde_json::{Value, json};

fn v6_name(ip: &str, zone: &str) -> String {
    let q = Subject::parse(ip).unwrap().query_name(zone);
    q.trim_end_matches(&format!(".{zone}")).to_string()
}

fn bl_zone(listed: &[(&str, &str)]) -> String {
    let mut z = String::from("2.0.0.127 A 127.0.0.2\n");
    for (name, code) in listed {
        z.push_str(&format!("{name} A {code}\n"));
    }
    z
}

fn default_bl_listings() -> Vec<(String, String)> {
    vec![
        ("10.2.0.192".into(), "127.0.0.2".into()),
        ("11.2.0.192".into(), "127.0.0.4".into()),
        ("12.2.0.192".into(), "127.255.255.254".into()),
        ("13.2.0.192".into(), "127.0.0.99".into()),
        (v6_name("2001:db8::10", "bl.test"), "127.0.0.2".into()),
    ]
}

fn zones() -> Vec<ZoneSpec> {
    vec![
        zone_def(
            "bl.test",
            &["ipv4", "ipv6"],
            &[
                ("127.0.0.2", "spam source"),
                ("127.0.0.4", "exploited host"),
            ],
            &["127.255.255.254"],
        ),
        zone_def("all.test", &["ipv4"], &[("127.0.0.2", "listed")], &[]),
        zone_def("slow.test", &["ipv4"], &[("127.0.0.2", "listed")], &[]),
        zone_def(
            "dom.test",
            &["domain"],
            &[("127.0.1.2", "spam domain")],
            &[],
        ),
    ]
}

async fn dns(bl_listings: &[(String, String)]) -> DnsblServer {
    let listed: Vec<(&str, &str)> = bl_listings
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut bl_text = bl_zone(&listed);
    bl_text.push_str("10.2.0.192 TXT \"Listed: see https://bl.test/lookup?192.0.2.10\"\n");
    DnsblServer::start(
        &[
            ("bl.test", &bl_text),
            ("all.test", "* A 127.0.0.2\n"),
            ("slow.test", "2.0.0.127 A 127.0.0.2\n"),
            (
                "dom.test",
                "test A 127.0.1.2\nlisted-domain.example A 127.0.1.2\nlisted-domain.example TXT \"phishing landing pages\"\n",
            ),
        ],
        &["slow.test"],
    )
    .await
}

fn settings_for(server: &DnsblServer) -> BlocklistSettings {
    BlocklistSettings {
        nameservers: vec![server.addr],
        timeout_ms: 400,
        add: zones(),
        remove: relaywatch_audit::blocklist::default_zones()
            .into_iter()
            .map(|z| z.name)
            .collect(),
        ..BlocklistSettings::default()
    }
}

async fn app_for(server: &DnsblServer) -> TestApp {
    let s = settings_for(server);
    spawn_app_with(move |settings| settings.blocklists = s).await
}

fn result<'a>(body: &'a Value, zone: &str) -> &'a Value {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["zone"] == zone)
        .unwrap_or_else(|| panic!("no result for {zone} in {body}"))
}

#[tokio::test]
async fn checks_tell_listed_clean_and_not_tested_apart() {
    let server = dns(&default_bl_listings()).await;
    let app = app_for(&server).await;
    let key = &app.admin_key;
    let check = |subject: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post("/v1/listings/check", key, json!({"subject": subject}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };

    let listed = check("192.0.2.10").await;
    assert_eq!(listed["subject"], "192.0.2.10");
    assert_eq!(listed["recorded"], false, "not one of the tenant's IPs");
    let bl = result(&listed, "bl.test");
    assert_eq!(bl["state"], "listed");
    assert_eq!(bl["codes"], json!(["127.0.0.2"]));
    assert_eq!(bl["meaning"], "spam source");
    assert!(
        bl["reason"].as_str().unwrap().contains("bl.test/lookup"),
        "TXT reason: {bl}"
    );
    // A zone that answers "listed" for its clean test point lists everything: not trusted.
    let all = result(&listed, "all.test");
    assert_eq!(all["state"], "not_tested");
    assert!(
        all["reason"].as_str().unwrap().contains("self-test"),
        "{all}"
    );
    // A zone that does not answer: not tested, never clean.
    assert_eq!(result(&listed, "slow.test")["state"], "not_tested");
    // Domain zones are not asked about addresses.
    assert!(
        listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["zone"] != "dom.test")
    );

    let other_code = check("192.0.2.11").await;
    assert_eq!(result(&other_code, "bl.test")["meaning"], "exploited host");
    // Refusal and undocumented answers are not listings.
    let refused = check("192.0.2.12").await;
    let r = result(&refused, "bl.test");
    assert_eq!(r["state"], "not_tested");
    assert!(r["reason"].as_str().unwrap().contains("refused"), "{r}");
    let odd = check("192.0.2.13").await;
    assert_eq!(result(&odd, "bl.test")["state"], "not_tested");
    assert_eq!(
        result(&check("192.0.2.20").await, "bl.test")["state"],
        "clean"
    );
    // IPv6 by nibbles.
    assert_eq!(
        result(&check("2001:db8::10").await, "bl.test")["state"],
        "listed"
    );
    assert_eq!(
        result(&check("2001:db8::11").await, "bl.test")["state"],
        "clean"
    );
    // Domains as their registered domain.
    let dom = check("mail.listed-domain.example").await;
    assert_eq!(dom["subject"], "listed-domain.example");
    let d = result(&dom, "dom.test");
    assert_eq!(d["state"], "listed");
    assert_eq!(d["reason"], "phishing landing pages");
    assert_eq!(
        result(&check("clean-domain.example").await, "dom.test")["state"],
        "clean"
    );

    // The tenant's own address: recorded, and then in the listings.
    let r = app
        .post("/v1/sending-ips", key, json!({"network": "192.0.2.8/29"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(check("192.0.2.10").await["recorded"], true);
    let listings = app.get("/v1/listings", key).await;
    assert_eq!(listings.status, 200, "{}", listings.text);
    let items = listings.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only listings by default: {items:?}");
    assert_eq!(items[0]["zone"], "bl.test");
    assert_eq!(items[0]["subject"], "192.0.2.10");
    assert!(items[0]["listed_since"].is_string());
    let all_states = app.get("/v1/listings?state=all", key).await;
    assert_eq!(all_states.body["items"].as_array().unwrap().len(), 3);
    let nt = app.get("/v1/listings?state=not_tested", key).await;
    assert_eq!(nt.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/v1/listings?state=maybe", key).await.status, 400);

    // Bad input.
    let r = app
        .post("/v1/listings/check", key, json!({"subject": "not a host!"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = app
        .post(
            "/v1/listings/check",
            key,
            json!({"subject": "192.0.2.10", "zones": ["nope.example"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let only = app
        .post(
            "/v1/listings/check",
            key,
            json!({"subject": "192.0.2.10", "zones": ["bl.test"]}),
        )
        .await;
    assert_eq!(only.body["results"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn history_follows_listed_cleared_and_listed_again() {
    let server = dns(&default_bl_listings()).await;
    let app = app_for(&server).await;
    let key = &app.admin_key;
    app.post("/v1/sending-ips", key, json!({"network": "192.0.2.10"}))
        .await;
    let settings = BlocklistSettings {
        add: vec![zones().remove(0)],
        ..settings_for(&server)
    };
    let checker = Checker::new(settings.clone()).unwrap();
    let sweep = || async {
        let zones = bl::tenant_zones(&app.store, &settings, app.tenant_id)
            .await
            .unwrap();
        let health = checker.zones_health(&zones, SelfTest::Strict).await;
        assert!(health.iter().all(|h| h.healthy), "{health:?}");
        bl::sweep_tenant(&app.store, &checker, app.tenant_id, &zones, &health)
            .await
            .unwrap()
    };
    let t = sweep().await;
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].kind.as_str(), t[0].subject.as_str()),
        ("listed", "192.0.2.10")
    );
    assert!(sweep().await.is_empty(), "still listed: no new transition");

    // A timeout is no evidence that the listing ended.
    app.store
        .record_blocklist_results(
            app.tenant_id,
            &[relaywatch_store::blocklists::CheckRecord {
                subject: "192.0.2.10".into(),
                subject_kind: "ipv4".into(),
                zone: "bl.test".into(),
                state: "not_tested".into(),
                codes: vec![],
                meaning: None,
                reason: Some("lookup failed: timed out".into()),
                informational: false,
                delist_url: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let nt = app.get("/v1/listings?state=not_tested", key).await;
    assert!(
        nt.body["items"][0]["listed_since"].is_string(),
        "{}",
        nt.text
    );

    server.replace_zones(&[("bl.test", &bl_zone(&[]))]).await;
    let t = sweep().await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].kind, "cleared");
    assert!(
        app.get("/v1/listings", key).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    server
        .replace_zones(&[("bl.test", &bl_zone(&[("10.2.0.192", "127.0.0.4")]))])
        .await;
    assert_eq!(sweep().await[0].kind, "listed");
    server
        .replace_zones(&[(
            "bl.test",
            &bl_zone(&[("10.2.0.192", "127.0.0.2"), ("10.2.0.192", "127.0.0.4")]),
        )])
        .await;
    assert_eq!(sweep().await[0].kind, "codes_changed");

    let h = app.get("/v1/listings/history", key).await;
    assert_eq!(h.status, 200, "{}", h.text);
    let episodes = h.body["items"].as_array().unwrap();
    assert_eq!(episodes.len(), 2, "{episodes:?}");
    let (newest, oldest) = (&episodes[0], &episodes[1]);
    assert!(newest["cleared_at"].is_null());
    assert_eq!(newest["codes"].as_array().unwrap().len(), 2);
    let kinds = |e: &Value| -> Vec<String> {
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(newest), ["listed", "codes_changed"]);
    assert_eq!(kinds(oldest), ["listed", "cleared"]);
    assert!(oldest["cleared_at"].is_string());
    assert_eq!(oldest["codes"], json!(["127.0.0.2"]));
    let filtered = app
        .get("/v1/listings/history?subject=192.0.2.99", key)
        .await;
    assert!(filtered.body["items"].as_array().unwrap().is_empty());

    // Another tenant sees none of it.
    let (_, other) = app.other_tenant("other").await;
    assert!(
        app.get("/v1/listings/history", &other).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        app.get("/v1/listings?state=all", &other).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_bounce_that_names_a_blocklist_triggers_a_check_of_that_ip_and_domain() {
    let server = dns(&default_bl_listings()).await;
    let app = app_for(&server).await;
    let key = &app.admin_key;
    app.post("/v1/sending-ips", key, json!({"network": "192.0.2.10"}))
        .await;
    let ingest = app.key_with(&[Scope::Ingest]).await;
    let mut blocked = delivery("AAA111", "user@example.net", "bounced", 1);
    blocked["reply"] = json!(
        "host mx.example.net[198.51.100.7] said: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using bl.test (in reply to RCPT TO command)"
    );
    let ordinary = delivery("BBB222", "nobody@example.net", "bounced", 1);
    let r = app.ingest(&ingest, vec![blocked.clone(), ordinary]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pending: Vec<String> = app
        .store
        .pending_blocklist_checks(app.tenant_id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.subject)
        .collect();
    assert_eq!(
        pending,
        ["192.0.2.10", "example.com"],
        "the blocked IP and the sender's domain only"
    );
    // A replayed batch does not queue the checks again.
    app.ingest(&ingest, vec![blocked]).await;
    assert_eq!(
        app.store
            .pending_blocklist_checks(app.tenant_id)
            .await
            .unwrap()
            .len(),
        2
    );

    let worker = bl::BlocklistWorker::new(app.store.clone(), settings_for(&server)).unwrap();
    worker.tick().await.unwrap();
    assert!(
        app.store
            .pending_blocklist_checks(app.tenant_id)
            .await
            .unwrap()
            .is_empty()
    );
    let listings = app.get("/v1/listings", key).await;
    let items = listings.body["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["subject"] == "192.0.2.10" && i["zone"] == "bl.test"),
        "{items:?}"
    );
    // The tick also self-tested the zones: the broken and silent ones say why, for admins.
    let zones = app.get("/v1/blocklist-zones", key).await;
    assert_eq!(zones.status, 200, "{}", zones.text);
    let z = |name: &str| {
        zones.body["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"]["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(z("bl.test")["healthy"], true);
    assert_eq!(z("all.test")["healthy"], false);
    assert!(
        z("all.test")["health_reason"]
            .as_str()
            .unwrap()
            .contains("list everything")
    );
    assert_eq!(z("slow.test")["healthy"], false);
}

#[tokio::test]
async fn tenants_add_and_remove_zones() {
    let server = dns(&default_bl_listings()).await;
    let app = app_for(&server).await;
    let key = &app.admin_key;
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/blocklist-zones/overrides",
            Some(key),
            Some(json!({
                "remove": ["all.test", "slow.test"],
                "add": [{"name": "extra.test", "kinds": ["ipv4"], "codes": [{"code": "127.0.0.2", "meaning": "listed"}]}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bl.test", "dom.test", "extra.test"]);
    let checked = app
        .post("/v1/listings/check", key, json!({"subject": "192.0.2.10"}))
        .await;
    let zones: Vec<&str> = checked.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["bl.test", "extra.test"]);
    // A zone definition that does not say what its codes mean is refused.
    let bad = app
        .call(
            reqwest::Method::PUT,
            "/v1/blocklist-zones/overrides",
            Some(key),
            Some(json!({"add": [{"name": "x.test", "kinds": ["ipv4"], "codes": [{"meaning": "?"}]}]})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    // Other tenants keep the installation's set.
    let (_, other) = app.other_tenant("other").await;
    let theirs = app.get("/v1/blocklist-zones", &other).await;
    assert_eq!(theirs.body["zones"].as_array().unwrap().len(), 4);
}
