//! Crash safety: a generated log of realistic Postfix traffic is written while the agent is killed with SIGKILL at
//! random moments (also in the middle of rotations by rename, copytruncate and `postfix logrotate`) and restarted.
//! At the end every delivery of a whole-log parse must have arrived, none that is not in it, and each with exactly
//! the content the whole-log parse gives it. Resends of a batch that was acknowledged just before a kill are counted
//! (the API drops them by id); they are reported, not hidden.
//!
//! Size: `RELAYWATCH_CRASH_LINES` (default 30,000 for `cargo test`; the figure is 200,000+) and
//! `RELAYWATCH_CRASH_KILLS` (default 20).

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Shifts `mail.log.N` to `mail.log.N+1`, oldest first.
fn shift(dir: &Path) {
    let mut n = 1;
    while dir.join(format!("mail.log.{n}")).exists() {
        n += 1;
    }
    for i in (1..n).rev() {
        fs::rename(
            dir.join(format!("mail.log.{i}")),
            dir.join(format!("mail.log.{}", i + 1)),
        )
        .unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_doubles_nothing() {
    let n_lines = env_usize("RELAYWATCH_CRASH_LINES", 30_000);
    let min_kills = env_usize("RELAYWATCH_CRASH_KILLS", 20) as u32;
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("RELAYWATCH_KEEP_TMP").is_some() {
        eprintln!("keeping {}", dir.path().display());
    }
    let Some(lines) = generate_log(dir.path(), n_lines, 7) else {
        eprintln!("SKIPPED: ../shared/lab or python3 missing; set RELAYWATCH_SHARED");
        return;
    };
    let expected = parse_whole(&lines, "X-Delivery-Tag");
    let expected_ids = delivery_ids(&expected);
    assert!(
        expected_ids.len() > n_lines / 20,
        "the generated log has deliveries"
    );
    assert_eq!(
        expected_ids.iter().collect::<HashSet<_>>().len(),
        expected_ids.len(),
        "ids are unique in a whole-log parse"
    );

    let server = IngestServer::start();
    let logdir = dir.path().join("log");
    fs::create_dir_all(&logdir).unwrap();
    let log = logdir.join("mail.log");
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    spec.extra
        .extend(["--batch-max-records".into(), "300".into()]);
    let spec = Arc::new(spec);
    // The agent is installed on a host whose log exists. Before its first checkpoint it knows nothing to resume
    // from, so the torture starts once that checkpoint (the first file's fingerprint) is on disk.
    append(&log, &lines[..100].concat());
    let mut written = 100usize;
    let agent = Arc::new(Mutex::new(Some(spec.spawn(0))));
    assert!(
        wait_for(Duration::from_secs(20), || spec
            .state_dir
            .join("checkpoint.json")
            .exists()),
        "the first start saves where it begins"
    );
    let kills = Arc::new(AtomicU32::new(0));
    let writing = Arc::new(AtomicBool::new(true));

    // The killer: SIGKILL at random moments while the log is written, then a restart.
    let killer = {
        let (agent, kills, writing, spec) = (
            Arc::clone(&agent),
            Arc::clone(&kills),
            Arc::clone(&writing),
            Arc::clone(&spec),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            while writing.load(Ordering::SeqCst) || kills.load(Ordering::SeqCst) < min_kills {
                std::thread::sleep(Duration::from_millis(30 + rng.below(250)));
                let mut a = agent.lock().unwrap();
                if let Some(old) = a.take() {
                    old.kill9();
                }
                let k = kills.fetch_add(1, Ordering::SeqCst) + 1;
                *a = Some(spec.spawn(k));
            }
        })
    };

    // The writer: chunks of lines with pauses, and rotations of three kinds, some with the agent killed in them.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rotations = 9usize;
    let chunk_points: Vec<usize> = (1..=rotations)
        .map(|i| i * lines.len() / (rotations + 1))
        .collect();
    let mut rotation_no = 0;
    let mut old_writer: Option<fs::File> = None;
    while written < lines.len() {
        // A short chunk to a renamed log (postlogd before its reload), then the new file.
        let max_chunk = if old_writer.is_some() { 20 } else { 1200 };
        let end = (written + 1 + rng.below(max_chunk) as usize).min(lines.len());
        let next_rotation = chunk_points.get(rotation_no).copied().unwrap_or(usize::MAX);
        let end = end.min(next_rotation.max(written + 1));
        let chunk: Vec<u8> = lines[written..end].concat();
        match old_writer.take() {
            // `postfix logrotate`: postlogd writes to the renamed file until its reload.
            Some(mut w) => w.write_all(&chunk).unwrap(),
            None => append(&log, &chunk),
        }
        written = end;
        std::thread::sleep(Duration::from_millis(rng.below(25)));
        if written == next_rotation {
            let kill_inside = rotation_no % 2 == 0;
            let mut guard = agent.lock().unwrap();
            if kill_inside && let Some(old) = guard.take() {
                old.kill9();
                kills.fetch_add(1, Ordering::SeqCst);
            }
            match rotation_no % 3 {
                0 => {
                    shift(&logdir);
                    fs::rename(&log, logdir.join("mail.log.1")).unwrap();
                }
                1 => {
                    shift(&logdir);
                    fs::copy(&log, logdir.join("mail.log.1")).unwrap();
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&log)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                _ => {
                    let rotated = logdir.join(format!("mail.log-2026112{rotation_no}"));
                    let w = fs::OpenOptions::new().append(true).open(&log).unwrap();
                    fs::rename(&log, &rotated).unwrap();
                    old_writer = Some(w);
                    // Compressed after the next chunk went to it (see the loop head) — here, for simplicity, the
                    // compression happens at the next rotation point's start.
                }
            }
            if kill_inside {
                let k = kills.load(Ordering::SeqCst);
                *guard = Some(spec.spawn(k + 1000));
            }
            drop(guard);
            rotation_no += 1;
        }
        // gzip logs rotated by `postfix logrotate` once the writer has left them.
        if old_writer.is_none() {
            for e in fs::read_dir(&logdir).unwrap().filter_map(Result::ok) {
                let p = e.path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("mail.log-") && !name.ends_with(".gz") {
                    let gz = logdir.join(format!("{name}.gz"));
                    let mut enc = flate2::write::GzEncoder::new(
                        fs::File::create(&gz).unwrap(),
                        flate2::Compression::fast(),
                    );
                    enc.write_all(&fs::read(&p).unwrap()).unwrap();
                    // gzip keeps the original's modification time; rotation order depends on it.
                    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
                    enc.finish().unwrap().set_modified(mtime).unwrap();
                    fs::remove_file(&p).unwrap();
                }
            }
        }
    }
    writing.store(false, Ordering::SeqCst);
    killer.join().unwrap();

    let complete = wait_for(Duration::from_secs(180), || {
        server.unique() >= expected_ids.len()
    });
    // Anything still in flight after that would be a surplus record: give it a moment to show.
    std::thread::sleep(Duration::from_millis(1500));
    let last = agent.lock().unwrap().take().unwrap();
    let stderr = last.stderr();
    last.terminate();

    let received = server.received.lock().unwrap();
    let got: HashSet<&str> = received.seen.keys().map(String::as_str).collect();
    let want: HashSet<&str> = expected_ids.iter().map(String::as_str).collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let surplus: Vec<_> = got.difference(&want).take(5).collect();
    let by_id: HashMap<&str, &serde_json::Value> = expected
        .iter()
        .filter(|r| r["kind"] == "delivery")
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let mut first: HashMap<&str, &serde_json::Value> = HashMap::new();
    for d in &received.deliveries {
        first.entry(d["id"].as_str().unwrap()).or_insert(d);
    }
    let differing: Vec<_> = first
        .iter()
        .filter(|(id, v)| by_id.get(*id).is_some_and(|e| e != *v))
        .take(3)
        .collect();
    eprintln!(
        "crash test: {} lines, {} deliveries expected, {} unique received, {} kills, {} batches, \
         {} wire resends (dropped by id), missing {}, surplus {}, differing {}",
        lines.len(),
        expected_ids.len(),
        got.len(),
        kills.load(Ordering::SeqCst),
        received.batches,
        received.wire_duplicates(),
        want.difference(&got).count(),
        got.difference(&want).count(),
        differing.len(),
    );
    if std::env::var_os("RELAYWATCH_KEEP_TMP").is_some() {
        for id in want.difference(&got).take(20) {
            let r = by_id[id];
            eprintln!("missing {} {} {}", r["queue_id"], r["time"], r["recipient"]);
        }
        for id in got.difference(&want).take(20) {
            let r = first[id];
            eprintln!("surplus {} {} {}", r["queue_id"], r["time"], r["recipient"]);
        }
        let _ = dir.keep();
    }
    assert!(
        complete,
        "not everything arrived; missing e.g. {missing:?}\nlast agent's log:\n{stderr}"
    );
    assert!(missing.is_empty(), "missing {missing:?}");
    assert!(
        surplus.is_empty(),
        "ids a whole-log parse does not produce: {surplus:?}"
    );
    assert!(
        differing.is_empty(),
        "records differ from the whole-log parse: {differing:#?}"
    );
    assert!(kills.load(Ordering::SeqCst) >= min_kills);
    assert!(received.max_batch_records <= 5000);
}
