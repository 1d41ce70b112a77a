//! "Did the mail to this customer arrive?": messages, trails, recipients, statistics.

use relaywatch_tests::{delivery, lab_records, spawn_app};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The last attempt per (tag, recipient) in the records, as the correlator saw it.
fn expected_by_tag(records: &[Value]) -> HashMap<String, HashMap<String, Value>> {
    let mut by: HashMap<String, HashMap<String, Value>> = HashMap::new();
    for r in records.iter().filter(|r| r["kind"] == "delivery") {
        let (Some(tag), Some(rcpt)) = (r["tag"].as_str(), r["recipient"].as_str()) else {
            continue;
        };
        by.entry(tag.to_string())
            .or_default()
            .insert(rcpt.to_string(), r.clone());
    }
    by
}

#[tokio::test]
async fn every_tagged_message_of_the_lab_log_is_found_with_each_recipients_outcome() {
    let app = spawn_app().await;
    let Some(records) = lab_records() else { return };
    for chunk in records.chunks(2000) {
        assert_eq!(app.ingest(&app.admin_key, chunk.to_vec()).await.status, 200);
    }
    let expected = expected_by_tag(&records);
    assert!(expected.len() > 300, "{} tags", expected.len());
    let mut checked = 0;
    for (tag, recipients) in &expected {
        let r = app
            .get(&format!("/v1/messages?tag={tag}"), &app.admin_key)
            .await;
        assert_eq!(r.status, 200);
        let items = r.body["items"].as_array().unwrap();
        assert!(!items.is_empty(), "no message for tag {tag}");
        let mut got: HashMap<String, Value> = HashMap::new();
        for m in items {
            assert_eq!(m["tag"], tag.as_str());
            for rs in m["recipients"].as_array().unwrap() {
                let rcpt = rs["recipient"].as_str().unwrap().to_string();
                // With several messages per tag (a bounce notice shares none; retries share the message), keep the latest.
                let newer = got.get(&rcpt).is_none_or(|old| {
                    old["last_attempt_at"].as_str() < rs["last_attempt_at"].as_str()
                });
                if newer {
                    got.insert(rcpt, rs.clone());
                }
            }
        }
        for (rcpt, want) in recipients {
            let have = got
                .get(rcpt)
                .unwrap_or_else(|| panic!("tag {tag}: recipient {rcpt} missing"));
            assert_eq!(have["status"], want["status"], "tag {tag} {rcpt}");
            assert_eq!(have["dsn"], want["dsn"], "tag {tag} {rcpt}");
            assert_eq!(have["reply"], want["reply"], "tag {tag} {rcpt}");
            if want["status"] != "sent" {
                assert_eq!(
                    have["bounce_class"]["reason"], want["bounce_class"]["reason"],
                    "tag {tag} {rcpt}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked} recipients checked");
    // Message-IDs as the agent sends them (bare) find their messages.
    let mut looked_up = 0;
    for r in records
        .iter()
        .filter(|r| r["kind"] == "delivery")
        .step_by(20)
    {
        let Some(mid) = r["message_id"].as_str() else {
            continue;
        };
        assert!(!mid.starts_with('<'), "the agent sends {mid}");
        let found = app
            .get(
                &format!("/v1/messages?message_id={}", urlencode(mid)),
                &app.admin_key,
            )
            .await;
        let items = found.body["items"].as_array().unwrap();
        assert!(
            items.iter().any(|m| m["queue_id"] == r["queue_id"]),
            "{mid}: {}",
            found.text
        );
        looked_up += 1;
    }
    assert!(looked_up > 30, "{looked_up} Message-IDs looked up");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_message_trail_lists_every_attempt_in_order() {
    let app = spawn_app().await;
    let mut first = delivery("Q7", "slow@example.org", "deferred", 30);
    first["dsn"] = json!("4.7.1");
    first["reply"] = json!(
        "host mx.example.org[192.0.2.25] said: 451 4.7.1 Greylisted, try again later (in reply to RCPT TO command)"
    );
    first["bounce_class"] = json!({"severity": "soft", "reason": "greylisted"});
    let mut second = delivery("Q7", "slow@example.org", "sent", 10);
    second["position"] = json!(1);
    app.ingest(&app.admin_key, vec![second, first]).await;

    let list = app
        .get("/v1/messages?message_id=Q7@app.example.com", &app.admin_key)
        .await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "Message-ID lookup works without angle brackets: {}",
        list.text
    );
    let m = &items[0];
    // Sent with brackets, stored and shown bare; the bracketed form finds it too.
    assert_eq!(m["message_id"], "Q7@app.example.com");
    let bracketed = app
        .get(
            "/v1/messages?message_id=%3CQ7@app.example.com%3E",
            &app.admin_key,
        )
        .await;
    assert_eq!(bracketed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(m["recipients"][0]["status"], "sent");
    assert_eq!(m["recipients"][0]["attempts"], 2);
    let id = m["id"].as_str().unwrap();
    let trail = app.get(&format!("/v1/messages/{id}"), &app.admin_key).await;
    let attempts = trail.body["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], "deferred");
    assert_eq!(attempts[0]["bounce_class"]["reason"], "greylisted");
    assert_eq!(attempts[0]["relay_ip"], "192.0.2.25");
    assert_eq!(attempts[0]["delays"]["connection"], 0.7);
    assert_eq!(attempts[1]["status"], "sent");
    assert_eq!(
        app.get(
            &format!("/v1/messages/{}", uuid::Uuid::now_v7()),
            &app.admin_key
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn messages_filter_by_recipient_sender_status_class_and_time() {
    let app = spawn_app().await;
    app.ingest(
        &app.admin_key,
        vec![
            delivery("QA", "ann@example.org", "sent", 120),
            delivery("QB", "bob@example.org", "bounced", 60),
            delivery("QC", "cy@example.org", "sent", 5),
        ],
    )
    .await;
    let ids = |r: &relaywatch_tests::Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["queue_id"].as_str().unwrap().to_string())
            .collect()
    };
    let k = &app.admin_key;
    assert_eq!(
        ids(&app.get("/v1/messages", k).await),
        ["QC", "QB", "QA"],
        "newest first"
    );
    assert_eq!(
        ids(&app.get("/v1/messages?recipient=bob@example.org", k).await),
        ["QB"]
    );
    assert_eq!(
        ids(&app.get("/v1/messages?status=bounced", k).await),
        ["QB"]
    );
    assert_eq!(
        ids(&app
            .get("/v1/messages?bounce_class=unknown_recipient", k)
            .await),
        ["QB"]
    );
    assert_eq!(
        ids(&app
            .get("/v1/messages?sender=app@example.com&tag=tag-QA", k)
            .await),
        ["QA"]
    );
    let since = (chrono::Utc::now() - chrono::Duration::minutes(90)).to_rfc3339();
    let r = app
        .client
        .get(app.url("/v1/messages"))
        .query(&[("from", since.as_str())])
        .bearer_auth(k)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    // Cursor pagination walks all three once.
    let page1 = app.get("/v1/messages?limit=2", k).await;
    assert_eq!(ids(&page1), ["QC", "QB"]);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(&format!("/v1/messages?limit=2&cursor={cursor}"), k)
        .await;
    assert_eq!(ids(&page2), ["QA"]);
    assert!(page2.body["next_cursor"].is_null());
    assert_eq!(app.get("/v1/messages?cursor=garbage", k).await.status, 400);
    assert_eq!(app.get("/v1/messages?limit=0", k).await.status, 400);
}

#[tokio::test]
async fn a_recipient_report_says_whether_to_stop_mailing() {
    let app = spawn_app().await;
    app.ingest(
        &app.admin_key,
        vec![
            delivery("Q1", "gone@example.org", "sent", 120),
            delivery("Q2", "gone@example.org", "bounced", 10),
            delivery("Q3", "fine@example.org", "sent", 10),
        ],
    )
    .await;
    let r = app
        .get("/v1/recipients/gone@example.org", &app.admin_key)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["hard_bounced"], true);
    assert_eq!(r.body["last_status"], "bounced");
    let d = r.body["deliveries"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["status"], "bounced", "newest first");
    assert!(d[0]["reply"].as_str().unwrap().contains("User unknown"));
    let r = app
        .get("/v1/recipients/fine@example.org", &app.admin_key)
        .await;
    assert_eq!(r.body["hard_bounced"], false);
    let r = app
        .get("/v1/recipients/never@example.org", &app.admin_key)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["deliveries"].as_array().unwrap().is_empty());
    assert!(r.body["last_status"].is_null());
}

#[tokio::test]
async fn statistics_add_up_by_bucket_and_group() {
    let app = spawn_app().await;
    let mut gmail = delivery("QG", "a@gmail.com", "sent", 30);
    gmail["relay"] = json!("gmail-smtp-in.l.google.com[142.250.1.27]:25");
    let mut hosted = delivery("QH", "b@acme.example", "bounced", 30);
    hosted["relay"] = json!("acme-example.mail.protection.outlook.com[52.101.1.1]:25");
    let mut deferred = delivery("QD", "c@yahoo.com", "deferred", 30);
    deferred["relay"] = json!("mta5.am0.yahoodns.net[67.195.204.1]:25");
    app.ingest(
        &app.admin_key,
        vec![
            gmail,
            hosted,
            deferred,
            delivery("QS", "d@example.org", "sent", 30),
        ],
    )
    .await;

    let to = chrono::Utc::now() + chrono::Duration::minutes(1);
    let from = to - chrono::Duration::hours(3);
    let q = |extra: &str| {
        format!(
            "/v1/stats/deliveries?from={}&to={}&interval=hour{extra}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let r = app.get(&q(""), &app.admin_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = &r.body["totals"];
    assert_eq!(
        (
            t["sent"].as_i64(),
            t["bounced"].as_i64(),
            t["deferred"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert!((t["acceptance_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    let points = r.body["series"][0]["points"].as_array().unwrap();
    assert!(
        points.len() >= 3 && points.len() <= 4,
        "one point per hour, zeros included: {}",
        points.len()
    );
    let summed: i64 = points.iter().map(|p| p["sent"].as_i64().unwrap()).sum();
    assert_eq!(summed, 2);

    let r = app.get(&q("&group_by=provider"), &app.admin_key).await;
    let groups: HashMap<String, i64> = r.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap_or("(none)").to_string(),
                s["totals"]["sent"].as_i64().unwrap()
                    + s["totals"]["bounced"].as_i64().unwrap()
                    + s["totals"]["deferred"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups.get("google"), Some(&1), "{groups:?}");
    assert_eq!(
        groups.get("microsoft"),
        Some(&1),
        "hosted domains are known by their relay: {groups:?}"
    );
    assert_eq!(groups.get("yahoo"), Some(&1), "{groups:?}");
    assert_eq!(groups.get("(none)"), Some(&1), "{groups:?}");

    let r = app
        .get(&q("&group_by=recipient_domain"), &app.admin_key)
        .await;
    assert_eq!(r.body["series"].as_array().unwrap().len(), 4);
    let r = app.get(&q("&group_by=bounce_class"), &app.admin_key).await;
    assert!(r.text.contains("unknown_recipient"));

    let bounces = app.get("/v1/stats/bounces", &app.admin_key).await;
    let items = bounces.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", bounces.text);
    assert!(items.iter().any(
        |i| i["recipient_domain"] == "acme.example" && i["bounce_class"] == "unknown_recipient"
    ));

    for bad in [
        "interval=week",
        "group_by=colour",
        "interval=minute&from=2020-01-01T00:00:00Z",
        "from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
    ] {
        let r = app
            .get(&format!("/v1/stats/deliveries?{bad}"), &app.admin_key)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
}

#[tokio::test]
async fn retention_expires_old_history() {
    let app = spawn_app().await;
    app.ingest(
        &app.admin_key,
        vec![
            delivery("QOLD", "a@example.org", "sent", 60 * 24 * 10),
            delivery("QNEW", "b@example.org", "sent", 5),
        ],
    )
    .await;
    let r = app
        .patch(
            &format!("/v1/tenants/{}", app.tenant_id),
            &app.admin_key,
            json!({"retention_days": 7}),
        )
        .await;
    assert_eq!(r.status, 200);
    let report = relaywatch_worker::housekeeping::run_once(&app.store, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(report.expired_deliveries, 1);
    assert_eq!(report.expired_messages, 1);
    let left = app.get("/v1/messages", &app.admin_key).await;
    let items = left.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["queue_id"], "QNEW");
}

#[tokio::test]
async fn messages_to_a_busy_address_page_newest_first_even_when_retries_reorder_its_attempts() {
    let app = spawn_app().await;
    let k = &app.admin_key;
    let (mut batch, mut late, mut expected) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..60i64 {
        let q = format!("QB{n:02}");
        let first = 500 - 5 * n; // minutes ago: QB59 is the newest message
        if n % 4 == 0 {
            // Deferred, then delivered 200 minutes later: its latest attempt is newer than many newer messages'.
            batch.push(delivery(&q, "busy@example.org", "deferred", first));
            batch.push(delivery(&q, "busy@example.org", "sent", first - 200));
        } else if n % 7 == 0 {
            // Its earliest attempt (to another address) arrives in a later batch: first seen moves back to it.
            batch.push(delivery(&q, "busy@example.org", "sent", first - 30));
            late.push(delivery(&q, "other@example.org", "deferred", first));
        } else {
            batch.push(delivery(&q, "busy@example.org", "sent", first));
        }
        batch.push(delivery(
            &format!("QX{n:02}"),
            "someone@example.org",
            "sent",
            first - 1,
        ));
        expected.push(q);
    }
    expected.reverse();
    assert_eq!(app.ingest(k, batch).await.status, 200);
    assert_eq!(app.ingest(k, late).await.status, 200);
    let queue_ids = |r: &relaywatch_tests::Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["queue_id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/messages?recipient=busy@example.org&limit=7".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, k).await;
        assert_eq!(page.status, 200);
        got.extend(queue_ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(got, expected, "every message once, newest first");
    let deferred: Vec<String> = expected
        .iter()
        .filter(|q| q[2..].parse::<i64>().unwrap() % 4 == 0)
        .cloned()
        .collect();
    assert_eq!(
        queue_ids(
            &app.get(
                "/v1/messages?recipient=busy@example.org&status=deferred&limit=100",
                k
            )
            .await
        ),
        deferred
    );
    assert_eq!(
        queue_ids(
            &app.get("/v1/messages?recipient=busy@example.org&tag=tag-QB10", k)
                .await
        ),
        ["QB10"]
    );
    let from = (chrono::Utc::now() - chrono::Duration::minutes(252)).to_rfc3339();
    let r = app
        .client
        .get(app.url("/v1/messages"))
        .query(&[("recipient", "busy@example.org"), ("from", from.as_str())])
        .bearer_auth(k)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let since: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        since,
        expected[..10]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    // The address's latest attempts: the late deliveries of the deferred messages.
    let r = app.get("/v1/recipients/busy@example.org?limit=3", k).await;
    let latest: Vec<&str> = r.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(latest, ["QB56", "QB52", "QB48"]);
}
