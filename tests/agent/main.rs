//! relaywatch-agent against the real API: the agent (in-process, through its library) follows the lab's real Postfix
//! log and ships it to `POST /v1/ingest` of a spawned server; a restart in the middle resends nothing twice, and
//! the server's answers (messages by tag, delivery statistics) match a whole-log parse.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use relaywatch_agent::config::{Config, ConfigArgs};
use relaywatch_domain::Scope;
use relaywatch_tests::spawn_app;
use serde_json::Value;

fn lab_log() -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab/maillog.sample");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("SKIPPED: {} is absent", path.display());
            None
        }
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

fn start_agent(dir: &Path, api: &str, key: &str) -> Running {
    let key_file = dir.join("key");
    std::fs::write(&key_file, key).unwrap();
    let config = Config::load(&ConfigArgs {
        api_url: Some(api.to_string()),
        api_key_file: Some(key_file),
        logs: vec![dir.join("mail.log").to_string_lossy().into_owned()],
        state_dir: Some(dir.join("state")),
        tag_headers: vec!["X-Delivery-Tag".into()],
        host_name: Some("mx-lab".into()),
        poll_interval_ms: Some(20),
        batch_linger_ms: Some(100),
        heartbeat_interval_secs: Some(1),
        ..Default::default()
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            relaywatch_agent::run_cmd::run_config(config, stop).map_err(|e| format!("{e:#}"))
        })
    };
    Running { stop, thread }
}

impl Running {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .unwrap()
            .expect("the agent stops cleanly");
    }
}

fn expected(log: &[u8]) -> Vec<Value> {
    let parser = relaywatch_postfix::Parser::new(relaywatch_postfix::ParserConfig {
        tag_headers: vec!["X-Delivery-Tag".into()],
        reference_unix: chrono::Utc::now().timestamp(),
        ..Default::default()
    });
    let mut c = relaywatch_postfix::Correlator::default();
    let mut out = Vec::new();
    for l in log.split_inclusive(|&b| b == b'\n') {
        c.push(&parser.parse_line(l), &mut out);
    }
    c.flush(&mut out);
    out.iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .filter(|r| r["kind"] == "delivery")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_ships_a_real_postfix_log_once_through_a_restart() {
    let Some(log) = lab_log() else { return };
    let app = spawn_app().await;
    let key = app.key_with(&[Scope::Ingest]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let want = expected(&log);
    // The lab log's stamps are year-less; placed relative to now they must lie within the tenant's retention.
    let newest = want
        .iter()
        .filter_map(|r| r["time"].as_str())
        .max()
        .unwrap()
        .to_string();
    let age = chrono::Utc::now()
        - chrono::DateTime::parse_from_rfc3339(&newest)
            .unwrap()
            .to_utc();
    if age > chrono::Duration::days(25) {
        eprintln!("SKIPPED: the lab log ({newest}) is older than the test tenant's retention");
        return;
    }

    // First half, a clean stop, the second half, a new start on the same state directory.
    let half = log[..log.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&log[..half])
        .unwrap();
    let agent = start_agent(dir.path(), &app.address, &key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::spawn_blocking(move || agent.stop())
        .await
        .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&log[half..])
        .unwrap();
    let agent = start_agent(dir.path(), &app.address, &key);

    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::Duration::days(40)).format("%Y-%m-%dT00:00:00Z"),
        (now + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z"),
    );
    let stats_path = format!("/v1/stats/deliveries?from={from}&to={to}&interval=day");
    let total = |b: &Value| -> i64 {
        ["sent", "deferred", "bounced", "expired", "other"]
            .iter()
            .map(|k| b["totals"][k].as_i64().unwrap_or(0))
            .sum()
    };
    let mut stats = Value::Null;
    for _ in 0..150 {
        stats = app.get(&stats_path, &app.admin_key).await.body;
        if total(&stats) >= want.len() as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a doubled batch time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = {
        let s = app.get(&stats_path, &app.admin_key).await.body;
        if s.is_null() { stats } else { s }
    };
    tokio::task::spawn_blocking(move || agent.stop())
        .await
        .unwrap();

    let mut by_status: HashMap<String, i64> = HashMap::new();
    for r in &want {
        let s = r["status"].as_str().unwrap();
        let bucket = if ["sent", "deferred", "bounced", "expired"].contains(&s) {
            s
        } else {
            "other"
        };
        *by_status.entry(bucket.to_string()).or_default() += 1;
    }
    assert_eq!(
        total(&stats),
        want.len() as i64,
        "every delivery stored once: {stats}"
    );
    for (status, n) in &by_status {
        assert_eq!(
            stats["totals"][status].as_i64(),
            Some(*n),
            "{status}: {stats}"
        );
    }

    // A few tags, looked up the way an application would: each recipient's last status and DSN match the log.
    let mut last: HashMap<(String, String), &Value> = HashMap::new();
    for r in &want {
        if let (Some(tag), Some(rcpt)) = (r["tag"].as_str(), r["recipient"].as_str()) {
            last.insert((tag.to_string(), rcpt.to_string()), r);
        }
    }
    let mut tags: Vec<&String> = last.keys().map(|(t, _)| t).collect();
    tags.sort();
    tags.dedup();
    let mut checked = 0;
    for tag in tags.iter().step_by((tags.len() / 25).max(1)) {
        let body = app
            .get(&format!("/v1/messages?tag={tag}"), &app.admin_key)
            .await
            .body;
        let items = body["items"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert!(!items.is_empty(), "tag {tag} found");
        for m in items {
            for r in m["recipients"].as_array().unwrap() {
                let key = (
                    tag.to_string(),
                    r["recipient"].as_str().unwrap().to_string(),
                );
                let Some(w) = last.get(&key) else { continue };
                assert_eq!(r["status"], w["status"], "{key:?}: {m}");
                assert_eq!(r["dsn"], w["dsn"], "{key:?}: {m}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "checked {checked} recipients");
    // The agent reported itself.
    let agents = app.get("/v1/agents", &app.admin_key).await.body;
    assert!(agents.to_string().contains("mx-lab"), "{agents}");
}
