//! Load and latency figures for the ingest and lookup paths, measured through the real HTTP API.
//!
//! ```text
//! ingest-load ingest  --api-url URL --api-key KEY --log FILE [--repeat N] [--batch 2000] [--concurrency 2]
//! ingest-load lookups --api-url URL --api-key KEY --log FILE [--samples 2000]
//! ingest-load history --api-url URL --keys FILE [--samples 2000] [--concurrency 1]
//! ```
//!
//! `ingest` parses a Postfix log (plain or .gz) with the same parser and correlator as the agent, then replays its
//! records through `POST /v1/ingest` (gzip) `--repeat` times, each time as another mail host so the ids differ, and
//! prints records/s. `lookups` times `GET /v1/messages?tag=`, `?recipient=` and `?message_id=` for values taken from
//! the log and prints p50/p99/max per kind. `history` does the same against a database filled by `seed-history`,
//! with the key and sample values from its keys file: `GET /v1/messages?tag=`, `?message_id=`, `?recipient=` and
//! `GET /v1/recipients/{address}` for values drawn from random rows (so weighted by volume), then both recipient
//! endpoints and the tag listing for the heaviest addresses and tags only, and prints p50/p95/p99/max per kind.
//! Figures go to stdout as `name=value` lines.

use serde_json::Value;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn read_log(path: &str) -> Vec<u8> {
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    if path.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gzip log");
        out
    } else {
        raw
    }
}

fn records(log: &[u8]) -> Vec<Value> {
    let out = relaywatch_tests::correlate_log(
        log,
        &["X-Delivery-Tag", "X-Relaywatch-Tag"],
        chrono::Utc::now().timestamp(),
    );
    out.iter()
        .filter(|r| matches!(r, relaywatch_postfix::Record::Delivery(_)))
        .map(|r| serde_json::to_value(r).expect("serialisable"))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_default();
    let api = arg(&args, "--api-url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    relaywatch_tests::install_crypto_provider();
    let client = reqwest::Client::new();
    if mode == "history" {
        history(&args, &api, &client).await;
        return;
    }
    let key = arg(&args, "--api-key").expect("--api-key");
    let log = arg(&args, "--log").expect("--log");
    let started = Instant::now();
    let base = records(&read_log(&log));
    eprintln!(
        "parsed {} delivery records in {:.1} s",
        base.len(),
        started.elapsed().as_secs_f64()
    );
    match mode.as_str() {
        "ingest" => {
            let repeat: usize = arg(&args, "--repeat")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let batch: usize = arg(&args, "--batch")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000);
            let concurrency: usize = arg(&args, "--concurrency")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            // Prepare every body first, so the figure measures the server, not this client's JSON encoding.
            let mut bodies = Vec::new();
            for round in 0..repeat {
                for chunk in base.chunks(batch) {
                    let recs: Vec<Value> = chunk
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if round > 0 {
                                let host =
                                    format!("{}-{round}", r["host"].as_str().unwrap_or("mx"));
                                r["host"] = Value::String(host);
                                // A new host means a new attempt: derive a distinct id the way the agent would.
                                let id =
                                    uuid::Uuid::parse_str(r["id"].as_str().unwrap_or_default())
                                        .unwrap_or_default();
                                let mut bytes = *id.as_bytes();
                                bytes[15] ^= round as u8;
                                bytes[14] ^= (round >> 8) as u8;
                                r["id"] = Value::String(uuid::Uuid::from_bytes(bytes).to_string());
                            }
                            r
                        })
                        .collect();
                    let body = serde_json::to_vec(
                        &serde_json::json!({"agent": {"host_name": "load"}, "records": recs}),
                    )
                    .unwrap();
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(&body).unwrap();
                    bodies.push((chunk.len(), enc.finish().unwrap()));
                }
            }
            let total: usize = bodies.iter().map(|(n, _)| n).sum();
            let queue = Arc::new(tokio::sync::Mutex::new(bodies));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (queue, client, api, key) =
                    (queue.clone(), client.clone(), api.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    let (mut accepted, mut duplicate, mut rejected) = (0u64, 0u64, 0u64);
                    loop {
                        let Some((_, body)) = queue.lock().await.pop() else {
                            break;
                        };
                        let res = client
                            .post(format!("{api}/v1/ingest"))
                            .bearer_auth(&key)
                            .header("content-type", "application/json")
                            .header("content-encoding", "gzip")
                            .body(body)
                            .send()
                            .await
                            .expect("server reachable");
                        let status = res.status();
                        let v: Value = res.json().await.unwrap_or_default();
                        assert!(status.is_success(), "{status}: {v}");
                        accepted += v["accepted"].as_u64().unwrap_or(0);
                        duplicate += v["duplicate"].as_u64().unwrap_or(0);
                        rejected += v["rejected"].as_u64().unwrap_or(0);
                    }
                    (accepted, duplicate, rejected)
                }));
            }
            let (mut a, mut d, mut r) = (0, 0, 0);
            for t in tasks {
                let (x, y, z) = t.await.unwrap();
                a += x;
                d += y;
                r += z;
            }
            let secs = started.elapsed().as_secs_f64();
            println!("records={total}");
            println!("accepted={a}");
            println!("duplicate={d}");
            println!("rejected={r}");
            println!("seconds={secs:.2}");
            println!("records_per_second={:.0}", total as f64 / secs);
        }
        "lookups" => {
            let samples: usize = arg(&args, "--samples")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000);
            let step = (base.len() / samples.max(1)).max(1);
            for (kind, field) in [
                ("tag", "tag"),
                ("recipient", "recipient"),
                ("message_id", "message_id"),
            ] {
                let (mut times, mut found) = (Vec::new(), 0usize);
                for r in base.iter().step_by(step).take(samples) {
                    let Some(value) = r[field].as_str() else {
                        continue;
                    };
                    let started = Instant::now();
                    let res = client
                        .get(format!("{api}/v1/messages"))
                        .query(&[(kind, value), ("limit", "20")])
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("server reachable");
                    assert!(res.status().is_success());
                    let body = res.bytes().await.unwrap_or_default();
                    times.push(started.elapsed());
                    // A fast empty answer is no answer: every value was taken from an ingested record.
                    found += usize::from(answered(&body));
                }
                times.sort();
                println!("lookup_{kind}_count={}", times.len());
                println!("lookup_{kind}_found={found}");
                println!("lookup_{kind}_p50_ms={:.2}", percentile(&times, 0.50));
                println!("lookup_{kind}_p99_ms={:.2}", percentile(&times, 0.99));
                println!("lookup_{kind}_max_ms={:.2}", percentile(&times, 1.0));
            }
        }
        _ => {
            eprintln!(
                "usage: ingest-load ingest|lookups --api-url URL --api-key KEY --log FILE [--repeat N] [--batch N] [--concurrency N] [--samples N]\n       ingest-load history --api-url URL --keys FILE [--samples N] [--concurrency N]"
            );
            std::process::exit(2);
        }
    }
}

/// One lookup kind: the URL for a sample value.
type UrlFor = fn(&str, &str) -> reqwest::Url;

fn messages_url(api: &str, param: &str, value: &str) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&format!("{api}/v1/messages")).expect("--api-url");
    url.query_pairs_mut()
        .append_pair(param, value)
        .append_pair("limit", "20");
    url
}

fn recipient_url(api: &str, address: &str) -> reqwest::Url {
    let mut url = reqwest::Url::parse(api).expect("--api-url");
    url.path_segments_mut()
        .expect("base URL")
        .extend(["v1", "recipients", address]);
    url.query_pairs_mut().append_pair("limit", "20");
    url
}

/// Lookups against a database filled by `seed-history`: p50/p95/p99/max per kind, over HTTP.
async fn history(args: &[String], api: &str, client: &reqwest::Client) {
    let keys: Value = serde_json::from_slice(
        &std::fs::read(arg(args, "--keys").expect("--keys FILE (written by seed-history)"))
            .expect("keys file"),
    )
    .expect("keys JSON");
    let key = arg(args, "--api-key")
        .or_else(|| keys["api_key"].as_str().map(str::to_string))
        .expect("api key");
    let samples: usize = arg(args, "--samples")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = arg(args, "--concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let list = |name: &str| -> Vec<String> {
        keys[name]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let kinds: [(&str, &str, UrlFor); 7] = [
        ("tag", "tags", |api, v| messages_url(api, "tag", v)),
        ("message_id", "message_ids", |api, v| {
            messages_url(api, "message_id", v)
        }),
        ("messages_by_recipient", "recipients", |api, v| {
            messages_url(api, "recipient", v)
        }),
        ("recipient", "recipients", recipient_url),
        ("heavy_tag", "heavy_tags", |api, v| {
            messages_url(api, "tag", v)
        }),
        (
            "heavy_messages_by_recipient",
            "heavy_recipients",
            |api, v| messages_url(api, "recipient", v),
        ),
        ("heavy_recipient", "heavy_recipients", recipient_url),
    ];
    // Warm-up: connections, prepared statements, the first pages of each index.
    for (_, list_name, url_for) in &kinds {
        for v in list(list_name).iter().take(20) {
            let _ = client
                .get(url_for(api, v))
                .bearer_auth(&key)
                .send()
                .await
                .expect("server reachable")
                .bytes()
                .await;
        }
    }
    for (kind, list_name, url_for) in kinds {
        let values = list(list_name);
        if values.is_empty() {
            continue;
        }
        // Heavy lists are short: cycle through them.
        let urls: Vec<reqwest::Url> = values
            .iter()
            .cycle()
            .take(samples)
            .map(|v| url_for(api, v))
            .collect();
        let queue = Arc::new(std::sync::Mutex::new(urls));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (queue, client, key) = (queue.clone(), client.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::new();
                let (mut bytes, mut found) = (0usize, 0usize);
                loop {
                    let Some(url) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let res = client
                        .get(url.clone())
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("server reachable");
                    let status = res.status();
                    let body = res.bytes().await.unwrap_or_default();
                    assert!(status.is_success(), "{url}: {status}");
                    times.push(t.elapsed());
                    bytes += body.len();
                    // Every sample value exists: an empty answer is a lookup that failed, however fast.
                    found += usize::from(answered(&body));
                }
                (times, bytes, found)
            }));
        }
        let mut times = Vec::new();
        let (mut bytes, mut found) = (0, 0);
        for t in tasks {
            let (t, b, f) = t.await.unwrap();
            times.extend(t);
            bytes += b;
            found += f;
        }
        let secs = started.elapsed().as_secs_f64();
        times.sort();
        println!("{kind}_count={}", times.len());
        println!("{kind}_found={found}");
        println!("{kind}_p50_ms={:.2}", percentile(&times, 0.50));
        println!("{kind}_p95_ms={:.2}", percentile(&times, 0.95));
        println!("{kind}_p99_ms={:.2}", percentile(&times, 0.99));
        println!("{kind}_max_ms={:.2}", percentile(&times, 1.0));
        println!("{kind}_mean_body_bytes={}", bytes / times.len().max(1));
        println!(
            "{kind}_requests_per_second={:.0}",
            times.len() as f64 / secs
        );
    }
}

/// Whether a lookup's answer lists something: messages (`items`) or an address's deliveries.
fn answered(body: &[u8]) -> bool {
    let v = serde_json::from_slice::<Value>(body).unwrap_or_default();
    v["items"]
        .as_array()
        .or(v["deliveries"].as_array())
        .is_some_and(|list| !list.is_empty())
}
