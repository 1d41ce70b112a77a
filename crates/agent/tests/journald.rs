//! The journald source.
//!
//! The real one: the lab's Postfix log turned into journal entries (`_HOSTNAME`, `SYSLOG_IDENTIFIER`, `SYSLOG_PID`,
//! `__REALTIME_TIMESTAMP`, `MESSAGE`; one message not UTF-8), written into a real journal file by systemd's own
//! `systemd-journal-remote` (journal export format in, `.journal` file out), and read by the real
//! `journalctl --file=... -o json -f` that the agent runs. Records must equal a parse of the same lines from a file;
//! a SIGKILL once everything is acknowledged must resend nothing on restart (the cursor resumes), and SIGKILLs at
//! random moments while the journal grows must lose nothing and add nothing. Skipped (loudly) without
//! systemd-journal-remote: `apt-get install systemd-journal-remote`.
//!
//! A stand-in journalctl (a small script printing real-format JSON lines) covers what a real journal cannot be made
//! to do: journalctl ending again and again (restarted after the last cursor, with backoff), lines that are not JSON
//! entries (counted, skipped), and no journalctl at all (a configuration error).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use relaywatch_postfix::{EventKind, Parser, ParserConfig};
use serde_json::Value;

/// One journal entry: a log line's fields as journald stores them.
#[derive(Clone)]
struct JEntry {
    realtime: i64,
    host: Vec<u8>,
    /// `None`: no SYSLOG_IDENTIFIER (as the kernel's entries).
    ident: Option<Vec<u8>>,
    pid: Option<u32>,
    message: Vec<u8>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The test's log: the lab sample with other programs' lines among it and one Postfix line that is not UTF-8, and
/// the same as journal entries (plus entries without an identifier, which have no file form). `starts[i]` is the
/// index of line `i`'s entry.
struct Fixture {
    lines: Vec<Vec<u8>>,
    entries: Vec<JEntry>,
    /// Entry index where each line's entry is.
    line_entry: Vec<usize>,
    /// Queue id of the line whose message is not UTF-8.
    binary_qid: String,
}

fn fixture() -> Option<Fixture> {
    let sample = sample_lines()?;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut binary_qid = String::new();
    for (i, l) in sample.iter().enumerate() {
        let mut l = l.clone();
        if binary_qid.is_empty() && memchr::memmem::find(&l, b"status=sent (250 ").is_some() {
            let at = memchr::memmem::find(&l, b"status=sent (250 ").unwrap() + 17;
            l.splice(at..at, b"\xff\xfe\xc3(".iter().copied());
            let msg = String::from_utf8_lossy(&l).into_owned();
            binary_qid = msg
                .split("]: ")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string();
        }
        lines.push(l.clone());
        if i % 97 == 50 {
            let stamp = &l[..16];
            lines.push(
                [
                    stamp,
                    b"mail sshd[812]: Accepted publickey for ops from 127.0.0.1 port 50022 ssh2\n",
                ]
                .concat(),
            );
            lines.push(
                [
                    stamp,
                    b"mail CRON[4410]: (root) CMD (command -v debian-sa1 > /dev/null)\n",
                ]
                .concat(),
            );
        }
    }
    let parser = Parser::new(ParserConfig {
        reference_unix: now_unix(),
        ..Default::default()
    });
    let mut entries = Vec::new();
    let mut line_entry = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let line = l.strip_suffix(b"\n").unwrap_or(l);
        let (header, msg) = parser
            .parse_header(line)
            .expect("sample lines have headers");
        line_entry.push(entries.len());
        entries.push(JEntry {
            realtime: header.time.unix_micros,
            host: header.host.as_bytes().to_vec(),
            ident: Some(header.program.name.as_bytes().to_vec()),
            pid: header.pid,
            message: msg.to_vec(),
        });
        if i % 211 == 100 {
            // The kernel's entries have no SYSLOG_IDENTIFIER; same second, so the correlator's clock does not move.
            entries.push(JEntry {
                realtime: header.time.unix_micros,
                host: header.host.as_bytes().to_vec(),
                ident: None,
                pid: None,
                message: b"e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex".to_vec(),
            });
        }
    }
    assert!(!binary_qid.is_empty());
    Some(Fixture {
        lines,
        entries,
        line_entry,
        binary_qid,
    })
}

impl Fixture {
    /// Line counts at which the log's second changes (clean places to stop writing for a while).
    fn second_boundaries(&self) -> Vec<usize> {
        (1..self.lines.len())
            .filter(|&i| {
                self.entries[self.line_entry[i]].realtime / 1_000_000
                    > self.entries[self.line_entry[i - 1]].realtime / 1_000_000
            })
            .collect()
    }
    /// The entries of lines `from..to` (with the identifier-less entries after them).
    fn entries_of(&self, from: usize, to: usize) -> &[JEntry] {
        let end = if to == self.lines.len() {
            self.entries.len()
        } else {
            self.line_entry[to]
        };
        &self.entries[self.line_entry[from]..end]
    }
    fn expected(&self, upto: usize) -> Vec<Value> {
        parse_whole(&self.lines[..upto], "X-Delivery-Tag")
    }
}

/// The journal export format (what `journalctl -o export` writes and `systemd-journal-remote` reads).
fn export(entries: &[JEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
        if v.iter().all(|&b| (0x20..0x7f).contains(&b)) {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v);
        } else {
            out.extend_from_slice(k.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v);
        }
        out.push(b'\n');
    };
    for e in entries {
        field(
            &mut out,
            "__REALTIME_TIMESTAMP",
            e.realtime.to_string().as_bytes(),
        );
        field(
            &mut out,
            "__MONOTONIC_TIMESTAMP",
            (e.realtime - 1_700_000_000_000_000).to_string().as_bytes(),
        );
        field(&mut out, "_BOOT_ID", b"6c7c6013a8a843dbaa4e4f6e0e2ba3a8");
        field(&mut out, "_HOSTNAME", &e.host);
        field(&mut out, "PRIORITY", b"6");
        field(&mut out, "SYSLOG_FACILITY", b"2");
        if let Some(id) = &e.ident {
            field(&mut out, "SYSLOG_IDENTIFIER", id);
            field(&mut out, "_TRANSPORT", b"syslog");
        } else {
            field(&mut out, "_TRANSPORT", b"kernel");
        }
        if let Some(pid) = e.pid {
            field(&mut out, "SYSLOG_PID", pid.to_string().as_bytes());
            field(&mut out, "_PID", pid.to_string().as_bytes());
        }
        field(&mut out, "MESSAGE", &e.message);
        out.push(b'\n');
    }
    out
}

/// A JSON line as `journalctl -o json` writes it (for the stand-in journalctl).
fn json_line(e: &JEntry, n: usize) -> Vec<u8> {
    let text_or_bytes = |v: &[u8]| match std::str::from_utf8(v) {
        Ok(s) => Value::from(s),
        Err(_) => Value::from(v.iter().map(|&b| Value::from(b)).collect::<Vec<_>>()),
    };
    let mut o = serde_json::Map::new();
    o.insert(
        "__CURSOR".into(),
        format!(
            "s=0123abcd;i={n:x};b=6c7c6013a8a843dbaa4e4f6e0e2ba3a8;m={n:x};t={:x};x={:x}",
            e.realtime,
            n * 7919
        )
        .into(),
    );
    o.insert("__REALTIME_TIMESTAMP".into(), e.realtime.to_string().into());
    o.insert("__MONOTONIC_TIMESTAMP".into(), n.to_string().into());
    o.insert("_BOOT_ID".into(), "6c7c6013a8a843dbaa4e4f6e0e2ba3a8".into());
    o.insert("_HOSTNAME".into(), text_or_bytes(&e.host));
    if let Some(id) = &e.ident {
        o.insert("SYSLOG_IDENTIFIER".into(), text_or_bytes(id));
    }
    if let Some(pid) = e.pid {
        o.insert("SYSLOG_PID".into(), pid.to_string().into());
        o.insert("_PID".into(), pid.to_string().into());
    }
    o.insert("MESSAGE".into(), text_or_bytes(&e.message));
    serde_json::to_vec(&Value::Object(o)).unwrap()
}

fn journal_remote() -> Option<PathBuf> {
    let bin = [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())?;
    let journalctl = Command::new("journalctl").arg("--version").output().ok()?;
    journalctl.status.success().then_some(bin)
}

/// Appends entries to a real journal file (created on first use).
fn write_journal(remote: &Path, file: &Path, entries: &[JEntry]) {
    let mut child = Command::new(remote)
        .arg("-o")
        .arg(file)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&export(entries))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn newest_cursor_in(file: &Path) -> String {
    let out = Command::new("journalctl")
        .arg(format!("--file={}", file.display()))
        .args(["-o", "json", "-n", "1", "--no-pager"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    v["__CURSOR"].as_str().unwrap().to_string()
}

fn checkpoint_cursor(state: &Path) -> Option<String> {
    let text = std::fs::read_to_string(state.join("checkpoint.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["streams"]["journald:"]["cursor"]
        .as_str()
        .map(str::to_string)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

/// Processes whose command line mentions `needle` (journalctl children left behind).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && memchr::memmem::find(&cmd, needle.as_bytes()).is_some()
        {
            found.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    found
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Compares what the server has with a whole-log parse of the same lines; returns (missing, surplus, differing).
fn compare(received: &Received, expected: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let by_id: HashMap<&str, &Value> = expected
        .iter()
        .filter(|r| r["kind"] == "delivery")
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let got: HashSet<&str> = received.seen.keys().map(String::as_str).collect();
    let missing = by_id
        .keys()
        .filter(|id| !got.contains(*id))
        .map(|s| s.to_string())
        .collect();
    let surplus = got
        .iter()
        .filter(|id| !by_id.contains_key(*id))
        .map(|s| s.to_string())
        .collect();
    let differing = received
        .deliveries
        .iter()
        .filter(|d| {
            by_id
                .get(d["id"].as_str().unwrap())
                .is_some_and(|e| *e != *d)
        })
        .map(|d| format!("{d}\n  expected {}", by_id[d["id"].as_str().unwrap()]))
        .take(3)
        .collect();
    (missing, surplus, differing)
}

#[test]
fn a_real_journal_arrives_like_the_same_log_file_and_resumes_by_cursor_after_sigkill() {
    let Some(remote) = journal_remote() else {
        eprintln!(
            "SKIPPED: needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)"
        );
        return;
    };
    let Some(fx) = fixture() else {
        eprintln!("SKIPPED: ../shared/lab missing; set RELAYWATCH_SHARED");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postfix.journal");
    let server = IngestServer::start();
    let port = free_port();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &dir.path().join("unused.log"));
    spec.logs.clear();
    spec.extra.extend([
        "--journald".into(),
        format!("--journalctl-arg=--file={}", file.display()),
        "--batch-max-records".into(),
        "40".into(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{port}"),
    ]);
    let spec = Arc::new(spec);
    let bounds = fx.second_boundaries();
    let at = |fraction: f64| bounds[(bounds.len() as f64 * fraction) as usize];

    // Phase 1: a journal with 40 % of the log; the agent ships all of it.
    let p1 = at(0.4);
    write_journal(&remote, &file, fx.entries_of(0, p1));
    let agent = spec.spawn(0);
    let expected1 = fx.expected(p1);
    let ids1 = delivery_ids(&expected1);
    assert!(ids1.len() > 100, "the first part has deliveries");
    let last1 = newest_cursor_in(&file);
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= ids1.len()
            && checkpoint_cursor(&spec.state_dir).as_deref()
                == Some(last1.as_str())),
        "all of the first part arrives and its last cursor is checkpointed: {} of {} ids, checkpoint {:?}\n{}",
        server.unique(),
        ids1.len(),
        checkpoint_cursor(&spec.state_dir),
        agent.stderr()
    );
    let text = metrics(port);
    let entries1 = fx.entries_of(0, p1);
    let parser = Parser::new(ParserConfig {
        reference_unix: now_unix(),
        ..Default::default()
    });
    let not_postfix1 = fx.lines[..p1]
        .iter()
        .filter(|l| matches!(parser.parse_line(l).kind, EventKind::NotPostfix { .. }))
        .count()
        + entries1.iter().filter(|e| e.ident.is_none()).count();
    assert!(not_postfix1 > 20);
    assert_eq!(
        metric(&text, "relaywatch_agent_lines_read_total") as usize,
        entries1.len(),
        "{text}"
    );
    assert_eq!(
        metric(&text, "relaywatch_agent_not_postfix_lines_total") as usize,
        not_postfix1
    );
    assert_eq!(
        metric(&text, "relaywatch_agent_journal_malformed_total"),
        0.0
    );
    {
        let r = server.received.lock().unwrap();
        let (missing, surplus, differing) = compare(&r, &expected1);
        assert!(
            missing.is_empty() && surplus.is_empty(),
            "missing {missing:?}, surplus {surplus:?}"
        );
        assert!(
            differing.is_empty(),
            "records differ from the file parse: {differing:#?}"
        );
        // The entry whose MESSAGE is not UTF-8 (journalctl prints it as an array of bytes) arrived, decoded as the
        // file line is.
        let binary: Vec<&Value> = r
            .deliveries
            .iter()
            .filter(|d| d["queue_id"] == fx.binary_qid.as_str())
            .collect();
        assert!(
            binary
                .iter()
                .any(|d| d["reply"].as_str().is_some_and(|s| s.contains('\u{fffd}'))),
            "the non-UTF-8 message's delivery: {binary:?}"
        );
    }

    // SIGKILL with everything acknowledged; more entries while the agent is down; the restart resumes after the
    // checkpointed cursor: nothing of the first part is sent again.
    agent.kill9();
    let file_arg = format!("--file={}", file.display());
    assert!(
        wait_for(Duration::from_secs(5), || processes_mentioning(&file_arg)
            .is_empty()),
        "journalctl ends with the killed agent: {:?}",
        processes_mentioning(&file_arg)
    );
    let wire_before = server.received.lock().unwrap().deliveries.len();
    let p2 = at(0.6);
    write_journal(&remote, &file, fx.entries_of(p1, p2));
    let agent = spec.spawn(1);
    let ids2 = delivery_ids(&fx.expected(p2));
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= ids2.len()),
        "the second part arrives: {} of {}\n{}",
        server.unique(),
        ids2.len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    {
        let r = server.received.lock().unwrap();
        assert_eq!(
            r.wire_duplicates(),
            0,
            "a restart after acknowledged batches resends nothing"
        );
        assert_eq!(r.deliveries.len(), wire_before + ids2.len() - ids1.len());
    }
    assert!(
        agent
            .stderr()
            .contains("resuming the journal from checkpoint"),
        "{}",
        agent.stderr()
    );

    // Phase 3: the rest is written in pieces while the agent is killed with SIGKILL at random moments.
    let agent = Arc::new(Mutex::new(Some(agent)));
    let writing = Arc::new(AtomicBool::new(true));
    let kills = Arc::new(AtomicU32::new(0));
    let killer = {
        let (agent, writing, kills, spec) = (
            Arc::clone(&agent),
            Arc::clone(&writing),
            Arc::clone(&kills),
            Arc::clone(&spec),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            while writing.load(Ordering::SeqCst) || kills.load(Ordering::SeqCst) < 12 {
                std::thread::sleep(Duration::from_millis(40 + rng.below(300)));
                let mut a = agent.lock().unwrap();
                if let Some(old) = a.take() {
                    old.kill9();
                }
                let k = kills.fetch_add(1, Ordering::SeqCst) + 1;
                *a = Some(spec.spawn(10 + k));
            }
        })
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rest: Vec<usize> = bounds.iter().copied().filter(|&b| b > p2).collect();
    let mut from = p2;
    while from < fx.lines.len() {
        let to = rest
            .iter()
            .copied()
            .find(|&b| b >= from + 20 + rng.below(100) as usize)
            .unwrap_or(fx.lines.len());
        write_journal(&remote, &file, fx.entries_of(from, to));
        from = to;
        std::thread::sleep(Duration::from_millis(rng.below(200)));
    }
    writing.store(false, Ordering::SeqCst);
    killer.join().unwrap();
    let expected = fx.expected(fx.lines.len());
    let all = delivery_ids(&expected);
    let complete = wait_for(Duration::from_secs(120), || server.unique() >= all.len());
    std::thread::sleep(Duration::from_millis(1500));
    let last = agent.lock().unwrap().take().unwrap();
    let stderr = last.stderr();
    assert!(
        last.terminate().success(),
        "SIGTERM ends the agent cleanly\n{stderr}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || processes_mentioning(&file_arg)
            .is_empty()),
        "no journalctl left behind: {:?}",
        processes_mentioning(&file_arg)
    );
    let r = server.received.lock().unwrap();
    let (missing, surplus, differing) = compare(&r, &expected);
    eprintln!(
        "journald: {} entries, {} deliveries expected, {} unique received, {} kills, {} wire resends (dropped by id), \
         missing {}, surplus {}, differing {}",
        fx.entries.len(),
        all.len(),
        r.seen.len(),
        kills.load(Ordering::SeqCst),
        r.wire_duplicates(),
        missing.len(),
        surplus.len(),
        differing.len()
    );
    assert!(
        complete,
        "not everything arrived; missing e.g. {:?}\n{stderr}",
        &missing[..missing.len().min(5)]
    );
    assert!(missing.is_empty(), "missing {missing:?}");
    assert!(
        surplus.is_empty(),
        "ids a parse of the log file does not produce: {surplus:?}"
    );
    assert!(
        differing.is_empty(),
        "records differ from the file parse: {differing:#?}"
    );
    assert_eq!(
        checkpoint_cursor(&spec.state_dir),
        Some(newest_cursor_in(&file))
    );
    assert!(kills.load(Ordering::SeqCst) >= 12);
}

/// A stand-in journalctl: prints the JSON lines of `data` after `--after-cursor`, at most `per_run` of them, then
/// exits with status 1 (as a journalctl that failed) until everything was printed; then it waits like `-f`. Each run
/// appends its arguments to `runs`.
fn stand_in(dir: &Path, data: &Path, runs: &Path, per_run: usize) -> PathBuf {
    let script = dir.join("journalctl");
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env python3
import sys, time
args = sys.argv[1:]
with open({runs:?}, "a") as f:
    f.write("\t".join(args) + "\n")
after = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
lines = [l for l in open({data:?}, "rb").read().split(b"\n") if l]
start = 0
if after is not None:
    key = ('"__CURSOR":"' + after + '"').encode()
    start = next(i + 1 for i, l in enumerate(lines) if key in l)
out = lines[start:start + {per_run}]
sys.stdout.buffer.write(b"".join(l + b"\n" for l in out))
sys.stdout.flush()
if start + {per_run} < len(lines):
    sys.exit(1)
time.sleep(120)
"#
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn journalctl_that_ends_is_restarted_after_the_last_cursor_and_bad_lines_are_counted() {
    let Some(fx) = fixture() else {
        eprintln!("SKIPPED: ../shared/lab missing; set RELAYWATCH_SHARED");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("journal.json");
    let runs = dir.path().join("runs.txt");
    let mut out = Vec::new();
    let mut malformed = 0;
    for (n, e) in fx.entries.iter().enumerate() {
        out.extend_from_slice(&json_line(e, n + 1));
        out.push(b'\n');
        if n % 500 == 250 {
            // Not journal entries: counted and skipped, never fatal.
            out.extend_from_slice(b"this is not JSON at all\n");
            out.extend_from_slice(
                format!(r#"{{"__CURSOR":"s=broken{n}","MESSAGE":"no timestamp"}}"#).as_bytes(),
            );
            out.push(b'\n');
            out.extend_from_slice(br#"{"__CURSOR":"#);
            out.push(b'\n');
            malformed += 3;
        }
    }
    std::fs::write(&data, &out).unwrap();
    let per_run = 900;
    let script = stand_in(dir.path(), &data, &runs, per_run);
    let server = IngestServer::start();
    let port = free_port();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &dir.path().join("unused.log"));
    spec.logs.clear();
    spec.extra.extend([
        "--journald".into(),
        "--journalctl".into(),
        script.display().to_string(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{port}"),
    ]);
    // Restarts of journalctl fall between lines of one second: no idle flush may come between them.
    spec.env
        .push(("RELAYWATCH_AGENT_IDLE_FLUSH_MS".into(), "3000".into()));
    let agent = spec.spawn(0);
    let expected = fx.expected(fx.lines.len());
    let all = delivery_ids(&expected);
    assert!(
        wait_for(Duration::from_secs(90), || server.unique() >= all.len()),
        "{} of {} deliveries\n{}",
        server.unique(),
        all.len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(1000));
    let text = metrics(port);
    let stderr = agent.stderr();
    assert!(agent.terminate().success());

    let r = server.received.lock().unwrap();
    let (missing, surplus, differing) = compare(&r, &expected);
    assert!(
        missing.is_empty() && surplus.is_empty(),
        "missing {missing:?}, surplus {surplus:?}"
    );
    assert!(differing.is_empty(), "{differing:#?}");
    assert_eq!(
        r.wire_duplicates(),
        0,
        "a restarted journalctl resumes after the last entry read"
    );

    // Every run after the first starts after the last cursor the previous one printed.
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let runs_text = std::fs::read_to_string(&runs).unwrap();
    let runs: Vec<Vec<&str>> = runs_text.lines().map(|l| l.split('\t').collect()).collect();
    let expected_runs = lines.len().div_ceil(per_run);
    assert_eq!(runs.len(), expected_runs, "{runs_text}");
    for (k, args) in runs.iter().enumerate() {
        for a in ["-o", "json", "-a", "-f", "--no-tail"] {
            assert!(args.contains(&a), "run {k}: {args:?}");
        }
        let after = args.iter().find_map(|a| a.strip_prefix("--after-cursor="));
        if k == 0 {
            assert_eq!(after, None, "a first start reads from the journal's start");
            continue;
        }
        let want = lines[..k * per_run]
            .iter()
            .rev()
            .find_map(|l| relaywatch_agent::journal::find_cursor(l))
            .unwrap();
        assert_eq!(after, Some(want.as_str()), "run {k}");
    }
    assert!(
        stderr.contains("journalctl ended") && stderr.contains("starting it again after cursor"),
        "{stderr}"
    );
    assert_eq!(
        metric(&text, "relaywatch_agent_journalctl_restarts_total") as usize,
        expected_runs - 1,
        "{text}"
    );
    assert_eq!(
        metric(&text, "relaywatch_agent_journal_malformed_total") as usize,
        malformed
    );
    assert_eq!(
        metric(&text, "relaywatch_agent_lines_read_total") as usize,
        fx.entries.len() + malformed
    );
    let binary: Vec<&Value> = r
        .deliveries
        .iter()
        .filter(|d| d["queue_id"] == fx.binary_qid.as_str())
        .collect();
    assert!(
        binary
            .iter()
            .any(|d| d["reply"].as_str().is_some_and(|s| s.contains('\u{fffd}'))),
        "MESSAGE as an array of bytes: {binary:?}"
    );
}

#[test]
fn no_journalctl_is_a_clear_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = IngestServer::start();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &dir.path().join("unused.log"));
    spec.logs.clear();
    spec.extra.extend([
        "--journald".into(),
        "--journalctl".into(),
        dir.path().join("no-such-journalctl").display().to_string(),
    ]);
    let mut agent = spec.spawn(0);
    let mut status = None;
    wait_for(Duration::from_secs(20), || {
        status = agent.child.try_wait().unwrap();
        status.is_some()
    });
    let status = status.expect("the agent stops");
    assert_eq!(status.code(), Some(78), "EX_CONFIG\n{}", agent.stderr());
    let err = agent.stderr();
    assert!(
        err.contains("cannot start journalctl") && err.contains("not found"),
        "{err}"
    );

    // `check` says so too.
    let out = Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
        .args(["check", "--journald", "--host-name", "mx-test"])
        .arg("--journalctl")
        .arg(dir.path().join("no-such-journalctl"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL journald: cannot start journalctl"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// The agent on the real journal file `file`, with no log file.
fn journal_spec(dir: &Path, server: &IngestServer, file: &Path) -> AgentSpec {
    let mut spec = AgentSpec::new(dir, &server.url(), &dir.join("unused.log"));
    spec.logs.clear();
    spec.extra.extend([
        "--journald".into(),
        format!("--journalctl-arg=--file={}", file.display()),
    ]);
    spec
}

#[test]
fn a_first_start_at_the_end_saves_the_newest_cursor_before_reading() {
    let Some(remote) = journal_remote() else {
        eprintln!("SKIPPED: needs journalctl and systemd-journal-remote");
        return;
    };
    let Some(fx) = fixture() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postfix.journal");
    let bounds = fx.second_boundaries();
    let (p1, p2) = (bounds[bounds.len() / 3], bounds[bounds.len() * 2 / 3]);
    write_journal(&remote, &file, fx.entries_of(0, p1));
    let server = IngestServer::start();
    let mut spec = journal_spec(dir.path(), &server, &file);
    spec.extra.extend(["--start-at".into(), "end".into()]);
    let agent = spec.spawn(0);
    let newest = newest_cursor_in(&file);
    assert!(
        wait_for(Duration::from_secs(20), || checkpoint_cursor(
            &spec.state_dir
        )
        .as_deref()
            == Some(newest.as_str())),
        "the journal's newest entry is saved as where reading begins\n{}",
        agent.stderr()
    );
    // Killed before any batch: the restart must begin at that saved cursor, not at the journal's end by then.
    agent.kill9();
    write_journal(&remote, &file, fx.entries_of(p1, p2));
    let agent = spec.spawn(1);
    // What a parse of only the lines after the start gives (nothing before it is known).
    let expected = parse_whole(&fx.lines[p1..p2], "X-Delivery-Tag");
    let ids = delivery_ids(&expected);
    assert!(ids.len() > 50);
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= ids.len()),
        "{} of {}\n{}",
        server.unique(),
        ids.len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    agent.terminate();
    let r = server.received.lock().unwrap();
    let (missing, surplus, differing) = compare(&r, &expected);
    assert!(
        missing.is_empty() && surplus.is_empty(),
        "missing {missing:?}, surplus {surplus:?}"
    );
    assert!(differing.is_empty(), "{differing:#?}");
}

#[test]
fn a_cursor_journalctl_refuses_means_reading_from_the_start_and_check_reports_the_journal() {
    let Some(remote) = journal_remote() else {
        eprintln!("SKIPPED: needs journalctl and systemd-journal-remote");
        return;
    };
    let Some(fx) = fixture() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postfix.journal");
    let bounds = fx.second_boundaries();
    let p1 = bounds[bounds.len() / 4];
    write_journal(&remote, &file, fx.entries_of(0, p1));
    let server = IngestServer::start();
    let spec = journal_spec(dir.path(), &server, &file);

    // `check` runs journalctl the same way and shows the newest Postfix entry it can see.
    let out = Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
        .args([
            "check",
            "--journald",
            "--host-name",
            "mx-test",
            "--api-url",
            &server.url(),
        ])
        .arg(format!("--journalctl-arg=--file={}", file.display()))
        .arg("--api-key-file")
        .arg(&spec.key_file)
        .arg("--state-dir")
        .arg(&spec.state_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ok   journald: journalctl reads the journal (newest selected entry: "),
        "{text}"
    );

    // A checkpoint whose cursor this journal does not know how to seek to (another machine's, or damaged).
    std::fs::create_dir_all(&spec.state_dir).unwrap();
    std::fs::write(
        spec.state_dir.join("checkpoint.json"),
        r#"{"version":1,"acked_seq":0,"streams":{"journald:":{"position":{"file":null,"offset":0},"correlator":null,"cursor":"not a cursor"}}}"#,
    )
    .unwrap();
    let agent = spec.spawn(0);
    let expected = fx.expected(p1);
    let ids = delivery_ids(&expected);
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= ids.len()),
        "{} of {}\n{}",
        server.unique(),
        ids.len(),
        agent.stderr()
    );
    let stderr = agent.stderr();
    agent.terminate();
    assert!(stderr.contains("refuses the cursor"), "{stderr}");
    let r = server.received.lock().unwrap();
    let (missing, surplus, _) = compare(&r, &expected);
    assert!(
        missing.is_empty() && surplus.is_empty(),
        "missing {missing:?}, surplus {surplus:?}"
    );
}
