//! Domain audits through the API and the worker's run queue, against a real DNS server on loopback; scheduling
//! on SQLite and PostgreSQL (whichever `spawn_app` uses).

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use relaywatch_domain::{DkimSelector, DomainName, TenantId};
use relaywatch_store::audits::AuditSchedule;
use relaywatch_tests::{TestApp, spawn_app};
use relaywatch_worker::audit::schedule::{enqueue_due, run_queued};
use relaywatch_worker::audit::{AuditSettings, Auditor};
use relaywatch_worker::dns::DnsSettings;
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// An authoritative server for one zone on 127.0.0.1, and an auditor pointed at it.
async fn dns_with(origin: &str, records: &str) -> (Server<Catalog>, Auditor) {
    let mut catalog = Catalog::new();
    let name = Name::from_str(&format!("{origin}.")).unwrap();
    let text = format!(
        "$TTL 60\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ NS ns.test.\n{records}\n"
    );
    let (name, recs) = Parser::new(text, None, Some(name)).parse().unwrap();
    let zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        name.clone(),
        recs,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .unwrap();
    catalog.upsert(LowerName::new(&name), vec![Arc::new(zone)]);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    let auditor = Auditor::new(AuditSettings {
        dns: DnsSettings {
            nameservers: vec![addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        smtp_checks: false,
        ..AuditSettings::default()
    })
    .unwrap();
    (server, auditor)
}

const ZONE_POLICY_NONE: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@good.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
"#;

const ZONE_POLICY_REJECT: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
"#;

fn codes(v: &Value) -> Vec<String> {
    let mut c: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    c.sort();
    c
}

async fn register(app: &TestApp, domain: &str) {
    let r = app
        .post(
            "/v1/sending-domains",
            &app.admin_key,
            json!({"domain": domain}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn a_requested_audit_runs_and_its_history_shows_what_changed() {
    let app = spawn_app().await;
    register(&app, "good.test").await;
    let k = &app.admin_key;

    let queued = app.post("/v1/domains/good.test/audits", k, json!({})).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    assert_eq!(queued.body["status"], "queued");
    let id = queued.id();

    let (_dns, auditor) = dns_with("good.test", ZONE_POLICY_NONE).await;
    assert_eq!(
        run_queued(&app.store, &auditor, "test-worker", 10)
            .await
            .unwrap(),
        1
    );
    // Nothing is left: a second pass finds no queued run.
    assert_eq!(
        run_queued(&app.store, &auditor, "test-worker", 10)
            .await
            .unwrap(),
        0
    );

    let run = app
        .get(&format!("/v1/domains/good.test/audits/{id}"), k)
        .await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.body["status"], "completed");
    assert_eq!(run.body["trigger"], "request");
    // Registered without selectors: DKIM cannot be checked; p=none is a warning; MTA-STS is absent.
    assert_eq!(
        codes(&run.body["findings"]),
        vec![
            "dkim.no_selectors",
            "dmarc.policy_none",
            "mta_sts.not_deployed"
        ]
    );
    assert_eq!(run.body["score"], 90);
    assert_eq!(run.body["grade"], "A");
    assert_eq!(run.body["complete"], true);
    assert_eq!(run.body["warnings"], 2);
    let f = &run.body["findings"][1];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["subject"], "good.test");
    assert!(f["evidence"].as_str().unwrap().contains("p=none"));
    assert!(!f["remediation"].as_str().unwrap().is_empty());
    assert_eq!(
        codes(&run.body["new_findings"]).len(),
        3,
        "a first run's findings are all new"
    );

    // The operator fixes the policy; the next run reports the warning as resolved.
    app.post("/v1/domains/good.test/audits", k, json!({})).await;
    let (_dns2, fixed) = dns_with("good.test", ZONE_POLICY_REJECT).await;
    assert_eq!(
        run_queued(&app.store, &fixed, "test-worker", 10)
            .await
            .unwrap(),
        1
    );
    let latest = app.get("/v1/domains/good.test/audits/latest", k).await;
    assert_eq!(latest.status, 200);
    assert_ne!(latest.body["id"], id.as_str());
    assert_eq!(
        codes(&latest.body["resolved_findings"]),
        vec!["dmarc.policy_none"]
    );
    assert_eq!(codes(&latest.body["new_findings"]), Vec::<String>::new());

    let history = app.get("/v1/domains/good.test/audits?limit=1", k).await;
    assert_eq!(history.status, 200);
    assert_eq!(history.body["items"][0]["id"], latest.body["id"]);
    let next = history.body["next_cursor"].as_str().expect("a second page");
    let older = app
        .get(
            &format!("/v1/domains/good.test/audits?limit=1&cursor={next}"),
            k,
        )
        .await;
    assert_eq!(older.body["items"][0]["id"], id.as_str());
    assert!(older.body["next_cursor"].is_null());
}

#[tokio::test]
async fn audits_of_unknown_domains_and_without_write_scope_are_refused() {
    let app = spawn_app().await;
    register(&app, "good.test").await;
    let r = app
        .post("/v1/domains/other.test/audits", &app.admin_key, json!({}))
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app
        .get("/v1/domains/good.test/audits/latest", &app.admin_key)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "not_found"),
        "no completed run yet"
    );
    let read_only = app.key_with(&[relaywatch_domain::Scope::Read]).await;
    let r = app
        .post("/v1/domains/good.test/audits", &read_only, json!({}))
        .await;
    assert_eq!((r.status, r.code()), (403, "insufficient_scope"));
    let r = app.get("/v1/domains/good.test/audits", &read_only).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_schedule_can_be_read_and_set_but_not_more_often_than_hourly() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let r = app.get("/v1/audit-schedule", k).await;
    assert_eq!(
        r.body,
        json!({"cron": "0 0 */6 * * *", "enabled": true, "smtp_checks": true})
    );
    let body = json!({"cron": "0 15 3 * * *", "enabled": true, "smtp_checks": false});
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/audit-schedule",
            Some(k),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/v1/audit-schedule", k).await.body, body);
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/audit-schedule",
            Some(k),
            Some(json!({"cron": "0 */5 * * * *", "enabled": true, "smtp_checks": true})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(r.body["errors"][0]["field"], "cron");
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[tokio::test]
async fn two_workers_on_one_tick_queue_and_run_each_tenants_audit_once() {
    let app = spawn_app().await;
    let store = &app.store;
    for d in ["a.test", "b.test"] {
        store
            .add_sending_domain(
                app.tenant_id,
                &DomainName::parse(d).unwrap(),
                &[DkimSelector::parse("s1").unwrap()],
            )
            .await
            .unwrap();
    }
    let (other, _) = app.other_tenant("tenant b").await;
    store
        .add_sending_domain(other, &DomainName::parse("c.test").unwrap(), &[])
        .await
        .unwrap();
    // Tenant b audits only at 03:00.
    store
        .set_audit_schedule(
            other,
            &AuditSchedule {
                cron: "0 0 3 * * *".into(),
                enabled: true,
                smtp_checks: true,
            },
        )
        .await
        .unwrap();
    let default = AuditSchedule {
        cron: "0 0 */6 * * *".into(),
        enabled: true,
        smtp_checks: true,
    };

    // Two nodes tick for the minute that contains 06:00 at the same moment.
    let (after, until) = (at("2026-11-29T05:59:30Z"), at("2026-11-29T06:00:30Z"));
    let (n1, n2) = tokio::join!(
        enqueue_due(store, &default, after, until),
        enqueue_due(store, &default, after, until)
    );
    let (n1, n2) = (n1.unwrap(), n2.unwrap());
    assert_eq!(
        n1 + n2,
        2,
        "tenant a's two domains are queued once between both nodes ({n1} + {n2})"
    );
    // The next minute is not due; nor is tenant b.
    assert_eq!(
        enqueue_due(store, &default, until, until + chrono::Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
    // Tenant b's 03:00 comes.
    assert_eq!(
        enqueue_due(
            store,
            &default,
            at("2026-11-29T02:59:30Z"),
            at("2026-11-29T03:00:30Z")
        )
        .await
        .unwrap(),
        1
    );

    // Two workers claim at once: every queued run goes to exactly one of them.
    let (c1, c2) = tokio::join!(
        store.claim_queued_audits_all_tenants("worker-1", 10),
        store.claim_queued_audits_all_tenants("worker-2", 10)
    );
    let (c1, c2) = (c1.unwrap(), c2.unwrap());
    let mut ids: Vec<_> = c1.iter().chain(&c2).map(|r| r.id).collect();
    assert_eq!(ids.len(), 3, "{} + {} claims", c1.len(), c2.len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "a run was claimed twice");
    assert!(
        c1.iter()
            .chain(&c2)
            .all(|r| r.trigger == "schedule" && r.schedule_key.is_some())
    );
    assert!(
        store
            .claim_queued_audits_all_tenants("worker-3", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = TenantId(other.as_uuid());
}

#[tokio::test]
async fn observed_bulk_volume_turns_on_the_bulk_sender_rules() {
    let app = spawn_app().await;
    register(&app, "bulk.test").await;
    let records: Vec<Value> = (0..5000)
        .map(|i| {
            let mut d = relaywatch_tests::delivery(
                &format!("Q{i:05}"),
                &format!("user{i}@gmail.example"),
                "sent",
                30,
            );
            d["sender"] = json!("app@bulk.test");
            d
        })
        .collect();
    let r = app.ingest(&app.admin_key, records).await;
    assert_eq!(r.body["accepted"], 5000, "{}", r.text);

    let queued = app
        .post("/v1/domains/bulk.test/audits", &app.admin_key, json!({}))
        .await;
    let (_dns, auditor) = dns_with(
        "bulk.test",
        "@ TXT \"v=spf1 ip4:192.0.2.10 -all\"\n@ MX 10 mx1\nmx1 A 192.0.2.25\n",
    )
    .await;
    assert_eq!(
        run_queued(&app.store, &auditor, "test-worker", 10)
            .await
            .unwrap(),
        1
    );
    let run = app
        .get(
            &format!("/v1/domains/bulk.test/audits/{}", queued.id()),
            &app.admin_key,
        )
        .await;
    let found = codes(&run.body["findings"]);
    for code in [
        "dmarc.bulk_sender_unaligned",
        "dmarc.bulk_sender_without_policy",
        "dmarc.missing",
    ] {
        assert!(
            found.contains(&code.to_string()),
            "{code} missing from {found:?}"
        );
    }
    let unaligned = run.body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "dmarc.bulk_sender_unaligned")
        .unwrap();
    assert!(
        unaligned["evidence"]
            .as_str()
            .unwrap()
            .starts_with("5000 messages a day"),
        "{unaligned}"
    );
}

#[tokio::test]
async fn a_selector_learned_from_opendkim_lines_is_audited_and_shown_on_the_domain() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let r = app
        .post(
            "/v1/sending-domains",
            k,
            json!({"domain": "learned.test", "dkim_selectors": ["s1"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let domain_id = r.id();
    assert_eq!(r.body["learned_dkim_selectors"], json!([]));

    // The agent saw opendkim sign with `old2019` (not registered) and with the registered `s1`; an older agent's
    // record without the field is still accepted; a record with a malformed signature is refused with its reason.
    let mut signed = relaywatch_tests::delivery("Q00001", "a@example.org", "sent", 30);
    signed["sender"] = json!("app@learned.test");
    signed["dkim_signatures"] = json!([
        {"domain": "Learned.TEST", "selector": "old2019"},
        {"domain": "learned.test", "selector": "s1"}
    ]);
    let mut later = relaywatch_tests::delivery("Q00002", "b@example.org", "sent", 5);
    later["dkim_signatures"] = json!([{"domain": "learned.test", "selector": "old2019"}]);
    let unsigned = relaywatch_tests::delivery("Q00003", "c@example.org", "sent", 5);
    let mut broken = relaywatch_tests::delivery("Q00004", "d@example.org", "sent", 5);
    broken["dkim_signatures"] = json!([{"domain": "learned.test", "selector": "bad selector"}]);
    let r = app.ingest(k, vec![signed, later, unsigned, broken]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 3, "{}", r.text);
    assert_eq!(r.body["rejections"][0]["index"], 3, "{}", r.text);
    assert!(
        r.body["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("dkim_signatures[0].selector"),
        "{}",
        r.text
    );

    let d = app
        .get(&format!("/v1/sending-domains/{domain_id}"), k)
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let learned = d.body["learned_dkim_selectors"].as_array().unwrap();
    let names: Vec<&str> = learned
        .iter()
        .map(|l| l["selector"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["old2019", "s1"], "{}", d.text);
    // First and last seen span the two attempts that carried it (30 and 5 minutes ago).
    let first = chrono::DateTime::parse_from_rfc3339(learned[0]["first_seen_at"].as_str().unwrap())
        .unwrap();
    let last =
        chrono::DateTime::parse_from_rfc3339(learned[0]["last_seen_at"].as_str().unwrap()).unwrap();
    assert!(last - first >= chrono::Duration::minutes(24), "{}", d.text);
    // The list shows the same.
    let list = app.get("/v1/sending-domains", k).await;
    assert_eq!(
        list.body["items"][0]["learned_dkim_selectors"][0]["selector"],
        "old2019"
    );

    // A backfill of an older log moves first_seen back and leaves last_seen (the stored upsert, not the batch).
    let mut older = relaywatch_tests::delivery("Q00005", "e@example.org", "sent", 90);
    older["dkim_signatures"] = json!([{"domain": "learned.test", "selector": "old2019"}]);
    assert_eq!(app.ingest(k, vec![older]).await.body["accepted"], 1);
    let d2 = app
        .get(&format!("/v1/sending-domains/{domain_id}"), k)
        .await;
    let l2 = &d2.body["learned_dkim_selectors"][0];
    let first2 =
        chrono::DateTime::parse_from_rfc3339(l2["first_seen_at"].as_str().unwrap()).unwrap();
    assert!(
        first - first2 >= chrono::Duration::minutes(55),
        "{}",
        d2.text
    );
    assert_eq!(
        l2["last_seen_at"], learned[0]["last_seen_at"],
        "{}",
        d2.text
    );

    // s1 is a good key; old2019 was revoked when it was retired, but the signer still uses it: only the learned
    // selector finds that.
    let dns = relaywatch_tests::dns::serve(&[(
        "learned.test",
        r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@learned.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@learned.test"
s1._domainkey TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
old2019._domainkey TXT "v=DKIM1; p="
"#,
    )])
    .await;
    let auditor = Auditor::new(AuditSettings {
        dns: DnsSettings {
            nameservers: vec![dns.addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        smtp_checks: false,
        ..AuditSettings::default()
    })
    .unwrap();
    let queued = app
        .post("/v1/domains/learned.test/audits", k, json!({}))
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    assert_eq!(
        run_queued(&app.store, &auditor, "test-worker", 10)
            .await
            .unwrap(),
        1
    );
    let run = app
        .get(
            &format!("/v1/domains/learned.test/audits/{}", queued.id()),
            k,
        )
        .await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(
        codes(&run.body["findings"]),
        vec!["dkim.key_revoked", "mta_sts.not_deployed"],
        "{}",
        run.text
    );
    let revoked = run.body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "dkim.key_revoked")
        .unwrap();
    assert_eq!(revoked["subject"], "old2019._domainkey.learned.test");
    assert!(
        revoked["evidence"]
            .as_str()
            .unwrap()
            .contains("learned from the mail log"),
        "{revoked}"
    );
}

/// An auditor asking the test DNS server at `addr`, SMTP probes off.
fn auditor_at(addr: std::net::SocketAddr) -> Auditor {
    Auditor::new(AuditSettings {
        dns: DnsSettings {
            nameservers: vec![addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        smtp_checks: false,
        ..AuditSettings::default()
    })
    .unwrap()
}

/// Queues an audit of `domain`, runs it, and returns the run.
async fn audit_now(app: &TestApp, auditor: &Auditor, domain: &str) -> Value {
    let queued = app
        .post(
            &format!("/v1/domains/{domain}/audits"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    assert_eq!(
        run_queued(&app.store, auditor, "test-worker", 10)
            .await
            .unwrap(),
        1
    );
    let run = app
        .get(
            &format!("/v1/domains/{domain}/audits/{}", queued.id()),
            &app.admin_key,
        )
        .await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    run.body
}

const HELO_ZONE: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
out A 192.0.2.10
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@helo.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@helo.test"
s1._domainkey TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
"#;

#[tokio::test]
async fn a_sending_ips_helo_name_is_validated_kept_apart_from_the_description_and_checked_against_its_ptr()
 {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let r = app
        .post(
            "/v1/sending-domains",
            k,
            json!({"domain": "helo.test", "dkim_selectors": ["s1"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for bad in ["not a name", "-x-.helo.test", "a..b"] {
        let r = app
            .post(
                "/v1/sending-ips",
                k,
                json!({"network": "192.0.2.10", "helo_name": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], "helo_name", "{}", r.text);
    }
    let r = app
        .post(
            "/v1/sending-ips",
            k,
            json!({"network": "192.0.2.10", "description": "outbound", "helo_name": "Out.Helo.Test."}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["helo_name"], "out.helo.test");
    let ip = r.id();

    let dns = relaywatch_tests::dns::serve(&[
        ("helo.test", HELO_ZONE),
        ("2.0.192.in-addr.arpa", "10 PTR out.helo.test.\n"),
    ])
    .await;
    let auditor = auditor_at(dns.addr);
    let run = audit_now(&app, &auditor, "helo.test").await;
    assert_eq!(
        codes(&run["findings"]),
        vec!["mta_sts.not_deployed"],
        "PTR equals the HELO name: {run}"
    );

    // The server now says another name in HELO: the PTR no longer matches. The description is left alone.
    let r = app
        .patch(
            &format!("/v1/sending-ips/{ip}"),
            k,
            json!({"helo_name": "other.helo.test"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["helo_name"], "other.helo.test");
    assert_eq!(r.body["description"], "outbound");
    let r = app
        .patch(
            &format!("/v1/sending-ips/{ip}"),
            k,
            json!({"helo_name": "bad name"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let run = audit_now(&app, &auditor, "helo.test").await;
    let mismatch = run["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "ptr.helo_mismatch")
        .unwrap_or_else(|| panic!("no ptr.helo_mismatch in {run}"));
    assert_eq!(mismatch["subject"], "192.0.2.10");
    assert!(
        mismatch["evidence"]
            .as_str()
            .unwrap()
            .contains("HELO name other.helo.test"),
        "{mismatch}"
    );

    // null clears it (and the check with it).
    let r = app
        .patch(
            &format!("/v1/sending-ips/{ip}"),
            k,
            json!({"helo_name": null}),
        )
        .await;
    assert!(r.body["helo_name"].is_null(), "{}", r.text);
    assert_eq!(r.body["description"], "outbound");
}

#[tokio::test]
async fn a_sending_network_is_audited_address_by_address_up_to_a_cap() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let r = app
        .post(
            "/v1/sending-domains",
            k,
            json!({"domain": "cidr.test", "dkim_selectors": ["s1"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for network in ["192.0.2.8/29", "198.51.100.0/23"] {
        let r = app
            .post("/v1/sending-ips", k, json!({"network": network}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // Of the /29's six usable addresses only .9 has a (forward-confirmed) PTR.
    let dns = relaywatch_tests::dns::serve(&[
        (
            "cidr.test",
            r#"@ TXT "v=spf1 ip4:192.0.2.8/29 -all"
@ MX 10 mx1
mx1 A 192.0.2.25
out A 192.0.2.9
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@cidr.test"
s1._domainkey TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
"#,
        ),
        ("2.0.192.in-addr.arpa", "9 PTR out.cidr.test.\n"),
    ])
    .await;
    let run = audit_now(&app, &auditor_at(dns.addr), "cidr.test").await;
    let findings = run["findings"].as_array().unwrap();
    let mut missing: Vec<&str> = findings
        .iter()
        .filter(|f| f["code"] == "ptr.missing")
        .map(|f| f["subject"].as_str().unwrap())
        .filter(|s| s.starts_with("192.0.2."))
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        vec![
            "192.0.2.10",
            "192.0.2.11",
            "192.0.2.12",
            "192.0.2.13",
            "192.0.2.14"
        ],
        "{run}"
    );
    // The /23 has 510 usable addresses: the first 256 were audited, and the report says so.
    let sampled: Vec<&Value> = findings
        .iter()
        .filter(|f| f["code"] == "ptr.network_sampled")
        .collect();
    assert_eq!(sampled.len(), 1, "{run}");
    assert_eq!(sampled[0]["severity"], "info");
    assert_eq!(sampled[0]["subject"], "198.51.100.0/23");
    assert!(
        sampled[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("510 usable addresses, the first 256 audited"),
        "{}",
        sampled[0]
    );
    // Its addresses were asked about (this server does not serve their reverse zone: not tested, never clean).
    let not_tested: Vec<&str> = run["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["area"] == "ptr")
        .map(|n| n["subject"].as_str().unwrap())
        .collect();
    assert_eq!(not_tested.len(), 256, "{not_tested:?}");
    assert!(not_tested.contains(&"198.51.100.1") && not_tested.contains(&"198.51.101.0"));
}
