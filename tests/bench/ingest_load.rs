//! Load and latency figures for the ingest and lookup paths, measured through the real HTTP API.
//!
//! ```text
//! ingest-load ingest  --api-url URL --api-key KEY --log FILE [--repeat N] [--batch 2000] [--concurrency 2]
//! ingest-load lookups --api-url URL --api-key KEY --log FILE [--samples 2000]
//! ```
//!
//! `ingest` parses a Postfix log (plain or .gz) with the same parser and correlator as the agent, then replays its
//! records through `POST /v1/ingest` (gzip) `--repeat` times, each time as another mail host so the ids differ, and
//! prints records/s. `lookups` times `GET /v1/messages?tag=`, `?recipient=` and `?message_id=` for values taken from
//! the log and prints p50/p99/max per kind. Figures go to stdout as `name=value` lines.

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
    let key = arg(&args, "--api-key").expect("--api-key");
    let log = arg(&args, "--log").expect("--log");
    relaywatch_tests::install_crypto_provider();
    let client = reqwest::Client::new();
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
                let mut times = Vec::new();
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
                    let _ = res.bytes().await;
                    times.push(started.elapsed());
                }
                times.sort();
                println!("lookup_{kind}_count={}", times.len());
                println!("lookup_{kind}_p50_ms={:.2}", percentile(&times, 0.50));
                println!("lookup_{kind}_p99_ms={:.2}", percentile(&times, 0.99));
                println!("lookup_{kind}_max_ms={:.2}", percentile(&times, 1.0));
            }
        }
        _ => {
            eprintln!(
                "usage: ingest-load ingest|lookups --api-url URL --api-key KEY --log FILE [--repeat N] [--batch N] [--concurrency N] [--samples N]"
            );
            std::process::exit(2);
        }
    }
}
