//! `relaywatch-agent run` against a real HTTP server: an API outage with a bounded spool that drains in order, bad
//! input, configuration errors, heartbeats and metrics; `relaywatch-agent check`.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str) -> Option<String> {
    // A plain HTTP/1.0 GET: the metrics listener closes the connection after answering.
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    use std::io::Write;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn spool_bytes(state: &Path) -> u64 {
    std::fs::read_dir(state.join("spool"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".batch"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn api_outage_spools_within_its_cap_then_drains_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lines) = generate_log(dir.path(), 24_000, 11) else {
        eprintln!("SKIPPED: ../shared/lab or python3 missing");
        return;
    };
    let expected = parse_whole(&lines, "X-Delivery-Tag");
    let expected_ids = delivery_ids(&expected);
    let server = IngestServer::start();
    let log = dir.path().join("mail.log");
    let port = free_port();
    let cap: u64 = 60_000;
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    spec.extra.extend([
        "--batch-max-records".into(),
        "200".into(),
        "--spool-max-bytes".into(),
        cap.to_string(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{port}"),
    ]);
    let agent = spec.spawn(0);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");

    // A third while the API is up.
    let third = lines.len() / 3;
    append(&log, &lines[..third].concat());
    let first_ids: HashSet<String> = delivery_ids(&parse_whole(&lines[..third], "X-Delivery-Tag"))
        .into_iter()
        .collect();
    assert!(wait_for(Duration::from_secs(30), || {
        let r = server.received.lock().unwrap();
        first_ids
            .iter()
            .filter(|id| r.seen.contains_key(*id))
            .count()
            * 10
            >= first_ids.len() * 9
    }));

    // The API goes away while Postfix keeps writing.
    server.set_mode(Mode::Down);
    let before = server.unique();
    let mut max_spool = 0;
    for chunk in lines[third..].chunks(2_000) {
        append(&log, &chunk.concat());
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(30));
            max_spool = max_spool.max(spool_bytes(&spec.state_dir));
        }
    }
    assert!(wait_for(Duration::from_secs(20), || agent
        .stderr()
        .contains("spool full")));
    std::thread::sleep(Duration::from_millis(500));
    max_spool = max_spool.max(spool_bytes(&spec.state_dir));
    let text = get(&metrics_url).expect("metrics answer");
    let lines_read = metric(&text, "relaywatch_agent_lines_read_total").unwrap();
    assert!(
        (lines_read as usize) < lines.len(),
        "reading pauses while the spool is full ({lines_read} of {} lines read)",
        lines.len()
    );
    assert!(metric(&text, "relaywatch_agent_spool_full_pauses_total").unwrap() >= 1.0);
    assert!(metric(&text, "relaywatch_agent_ship_errors_total").unwrap() >= 1.0);
    assert_eq!(
        server.unique(),
        before,
        "nothing arrives while the API is down"
    );
    // The cap can be passed by at most one batch (200 records, well under 60 KB compressed).
    assert!(max_spool > cap / 2, "the spool grew ({max_spool} bytes)");
    assert!(
        max_spool <= cap + 60_000,
        "the spool stays near its cap ({max_spool} bytes)"
    );

    // Back: everything arrives, once, in log order.
    server.set_mode(Mode::Up);
    assert!(
        wait_for(Duration::from_secs(120), || server.unique()
            >= expected_ids.len()),
        "everything arrives after the outage: {} of {}\n{}",
        server.unique(),
        expected_ids.len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    agent.terminate();
    let r = server.received.lock().unwrap();
    assert_eq!(
        r.unique_ids(),
        expected_ids,
        "every delivery once, in log order"
    );
    eprintln!(
        "outage: {} deliveries, max spool {max_spool} bytes (cap {cap}), {} wire resends",
        expected_ids.len(),
        r.wire_duplicates()
    );
}

#[test]
fn bad_input_is_counted_and_the_agent_keeps_going() {
    let Some(sample) = sample_lines() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut lines: Vec<Vec<u8>> = Vec::new();
    // Binary garbage (NUL, invalid UTF-8, control bytes), a 1 MB line, and a log that is not Postfix at all.
    let mut x: u64 = 0x1234_5678;
    let garbage: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .filter(|&b| b != b'\n')
        .collect();
    for g in garbage.chunks(700) {
        lines.push([g, b"\n"].concat());
    }
    let mut big = vec![b'A'; 1 << 20];
    big.push(b'\n');
    lines.push(big);
    lines.push(
        b"Nov 28 22:44:40 mail postfix/smtp[1]: "
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'z', 1 << 20))
            .chain([b'\n'])
            .collect(),
    );
    for i in 0..500 {
        lines.push(format!("Nov 28 22:44:41 mail sshd[{i}]: Accepted publickey for root from 192.0.2.{} port 22\n", i % 250).into_bytes());
    }
    lines.push(
        b"Nov 28 22:44:41 mail postfix/smtp[9]: ABCDEF1234: something Postfix never logs\n"
            .to_vec(),
    );
    lines.extend(sample.iter().cloned());
    lines.push(b"\xff\xfe\x00 trailing garbage\n".to_vec());

    let expected_ids = delivery_ids(&parse_whole(&lines, "X-Delivery-Tag"));
    assert!(expected_ids.len() > 100);
    let server = IngestServer::start();
    let port = free_port();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    spec.extra
        .extend(["--metrics-listen".into(), format!("127.0.0.1:{port}")]);
    let mut agent = spec.spawn(0);
    for chunk in lines.chunks(300) {
        append(&log, &chunk.concat());
    }
    assert!(
        wait_for(Duration::from_secs(60), || server.unique()
            >= expected_ids.len()),
        "{} of {} deliveries\n{}",
        server.unique(),
        expected_ids.len(),
        agent.stderr()
    );
    let text = get(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent is still running"
    );
    assert!(
        metric(&text, "relaywatch_agent_unknown_lines_total").unwrap() >= 29.0,
        "{text}"
    );
    assert!(metric(&text, "relaywatch_agent_not_postfix_lines_total").unwrap() >= 500.0);
    assert!(metric(&text, "relaywatch_agent_lines_cut_total").unwrap() >= 2.0);
    assert_eq!(
        metric(&text, "relaywatch_agent_lines_read_total").unwrap() as usize,
        lines.len()
    );
    let r = server.received.lock().unwrap();
    let got: HashSet<String> = r.seen.keys().cloned().collect();
    assert_eq!(got, expected_ids.into_iter().collect::<HashSet<_>>());
    drop(r);
    agent.terminate();
}

#[test]
fn a_refused_key_stops_the_agent_with_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, b"Nov 28 22:44:42 mail postfix/smtp[2]: B7438B6323: to=<a@example.test>, relay=x[127.0.0.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n");
    let server = IngestServer::start();
    server.set_mode(Mode::BadKey);
    let spec = AgentSpec::new(dir.path(), &server.url(), &log);
    let mut agent = spec.spawn(0);
    let status = {
        let mut s = None;
        wait_for(Duration::from_secs(20), || {
            s = agent.child.try_wait().unwrap();
            s.is_some()
        });
        s.expect("the agent stops instead of retrying forever")
    };
    assert_eq!(status.code(), Some(78), "EX_CONFIG");
    let err = agent.stderr();
    assert!(err.contains("401") && err.contains("api_key"), "{err}");
    assert!(!err.contains(KEY), "the key never appears in logs");
    // The batch is still in the spool for the next start with the right key.
    assert!(spool_bytes(&spec.state_dir) > 0);
    server.set_mode(Mode::Up);
    let agent = spec.spawn(1);
    assert!(wait_for(Duration::from_secs(20), || server.unique() == 1));
    agent.terminate();
}

#[test]
fn heartbeats_report_progress_and_sigterm_stops_cleanly() {
    let Some(sample) = sample_lines() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, &sample.concat());
    let server = IngestServer::start();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    spec.extra
        .retain(|a| a != "--heartbeat-interval-secs" && a != "0");
    spec.extra
        .extend(["--heartbeat-interval-secs".into(), "1".into()]);
    let agent = spec.spawn(0);
    assert!(wait_for(Duration::from_secs(20), || {
        server
            .received
            .lock()
            .unwrap()
            .heartbeats
            .iter()
            .any(|h| h["records_shipped"].as_u64() > Some(0))
    }));
    let hb = server
        .received
        .lock()
        .unwrap()
        .heartbeats
        .last()
        .cloned()
        .unwrap();
    assert_eq!(hb["host_name"], "mx-test");
    assert_eq!(hb["lines_read"].as_u64(), Some(sample.len() as u64));
    assert!(hb["version"].as_str().is_some());
    let status = agent.terminate();
    assert!(status.success(), "SIGTERM is an orderly stop: {status:?}");
}

/// `relaywatch-agent check` with the spec's API, key and state directory: exit code and standard output.
fn check_output(spec: &AgentSpec, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
        .arg("check")
        .args(["--api-url", &spec.api_url])
        .arg("--api-key-file")
        .arg(&spec.key_file)
        .arg("--state-dir")
        .arg(&spec.state_dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_reports_each_problem_and_fails_on_a_refused_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(
        &log,
        b"Nov 28 22:44:42 mail postfix/qmgr[2]: B7438B6323: removed\n",
    );
    let server = IngestServer::start();
    let spec = AgentSpec::new(dir.path(), &server.url(), &log);
    let run = |extra: &[&str]| check_output(&spec, extra);
    let (code, out) = run(&["--log", log.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok   API") && out.contains("may ingest"),
        "{out}"
    );
    assert!(
        out.contains(&format!("ok   {} is readable", log.display())),
        "{out}"
    );

    let (code, out) = run(&["--log", "/nonexistent/mail.log"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL /nonexistent/mail.log"), "{out}");

    server.set_mode(Mode::BadKey);
    let (code, out) = run(&["--log", log.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL API") && out.contains("401"), "{out}");

    server.set_mode(Mode::Down);
    let (code, out) = run(&["--log", log.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not reachable"), "{out}");
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(
        &log,
        b"Nov 28 22:44:42 mail postfix/qmgr[2]: B7438B6323: removed\n",
    );
    let server = IngestServer::start();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "api_url = \"http://127.0.0.1:1\"\napi_key = \"rw_wrong\"\nlogs = [\"/nonexistent\"]\nstate_dir = {:?}\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let check = |envs: &[(&str, String)], args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
            .arg("check")
            .arg("--config")
            .arg(&config)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The file alone: unreachable API, missing log.
    let (code, out) = check(&[], &[]);
    assert_eq!(code, Some(1), "{out}");
    // The environment fixes all three.
    let env = [
        ("RELAYWATCH_AGENT_API_URL", server.url()),
        (
            "RELAYWATCH_AGENT_API_KEY_FILE",
            key_file.display().to_string(),
        ),
        ("RELAYWATCH_AGENT_LOGS", log.display().to_string()),
    ];
    let (code, out) = check(&env, &[]);
    assert_eq!(code, Some(0), "{out}");
    // A flag beats the environment.
    let (code, out) = check(&env, &["--log", "/nonexistent/other.log"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("/nonexistent/other.log"), "{out}");
}

#[test]
fn backfill_ships_old_logs_plain_and_gzipped_with_a_summary() {
    let Some(sample) = sample_lines() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The older half compressed, the newer half plain, as logrotate leaves them.
    let half = sample.len() / 2;
    let old = dir.path().join("mail.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&old).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut enc, &sample[..half].concat()).unwrap();
    enc.finish().unwrap();
    let newer = dir.path().join("mail.log.1");
    std::fs::write(&newer, sample[half..].concat()).unwrap();
    let server = IngestServer::start();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
            .arg("backfill")
            .arg(&old)
            .arg(&newer)
            .args([
                "--api-url",
                &server.url(),
                "--tag-header",
                "X-Delivery-Tag",
                "--batch-max-records",
                "100",
            ])
            .arg("--api-key-file")
            .arg(&key_file)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: HashSet<String> = delivery_ids(&parse_whole(&sample, "X-Delivery-Tag"))
        .into_iter()
        .collect();
    let got: HashSet<String> = server
        .received
        .lock()
        .unwrap()
        .seen
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        got, want,
        "one pass over both files equals a parse of the whole log"
    );
    assert!(
        stdout.contains(&format!("lines={}", sample.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("deliveries={}", want.len())),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate=0"), "{stdout}");
    // Running it again is harmless: the server sees the same ids.
    let again = String::from_utf8_lossy(&run().stdout).into_owned();
    assert!(
        again.contains("accepted=") && !again.contains("duplicate=0"),
        "{again}"
    );
    assert_eq!(server.unique(), want.len());
}

#[test]
fn a_503_with_retry_after_is_waited_out_and_nothing_is_lost() {
    let Some(sample) = sample_lines() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let server = IngestServer::start();
    server.set_mode(Mode::Unavailable);
    let spec = AgentSpec::new(dir.path(), &server.url(), &log);
    let agent = spec.spawn(0);
    append(&log, &sample.concat());
    assert!(wait_for(Duration::from_secs(20), || server
        .received
        .lock()
        .unwrap()
        .refused
        >= 2));
    // Retry-After: 1 means about one attempt a second, not a tight loop.
    let refused = server.received.lock().unwrap().refused;
    std::thread::sleep(Duration::from_secs(3));
    let more = server.received.lock().unwrap().refused - refused;
    assert!(
        (1..=5).contains(&more),
        "{more} attempts in 3 s under Retry-After: 1"
    );
    assert_eq!(server.unique(), 0);
    server.set_mode(Mode::Up);
    let want = delivery_ids(&parse_whole(&sample, "X-Delivery-Tag"));
    assert!(wait_for(Duration::from_secs(30), || server.unique() == want.len()));
    assert_eq!(server.received.lock().unwrap().unique_ids(), want);
    agent.terminate();
}

/// postlogd may create a new log as mode 0600 root: the agent says plainly that it cannot read it. As root (CI) the
/// binary runs as `nobody`, since root reads any file; otherwise as the current user with the file's mode at 000.
#[test]
fn a_log_the_agent_cannot_read_is_reported_as_such() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:\t0\t"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("mail.log");
    append(
        &log,
        b"Nov 28 22:44:42 mail postfix/qmgr[2]: B7438B6323: removed\n",
    );
    std::fs::set_permissions(
        &log,
        std::fs::Permissions::from_mode(if is_root { 0o600 } else { 0o000 }),
    )
    .unwrap();
    // The binary and the key where an unprivileged user can reach them (the build directory may be under /root).
    let bin = dir.path().join("relaywatch-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_relaywatch-agent"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.arg("check")
        .args(["--api-url", "http://127.0.0.1:9"])
        .arg("--api-key-file")
        .arg(&key_file)
        .arg("--state-dir")
        .arg(&state)
        .arg("--log")
        .arg(&log)
        .env_clear();
    if is_root {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL {} is not readable by this user (permission denied",
            log.display()
        )),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A glob is expanded again while the agent runs: logs created later are followed from their beginning (also one
/// created while the agent was down, although it starts at the end of logs it finds on its first start), and the
/// rotated generations the glob also matches are not followed as logs of their own.
#[test]
fn logs_created_later_under_a_glob_are_followed_but_rotated_generations_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(old), Some(a), Some(b), Some(c)) = (
        generate_log(dir.path(), 1_500, 31),
        generate_log(dir.path(), 3_000, 32),
        generate_log(dir.path(), 3_000, 33),
        generate_log(dir.path(), 3_000, 34),
    ) else {
        eprintln!("SKIPPED: ../shared/lab or python3 missing");
        return;
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // There before the first start, which begins at the end of what exists: none of it is wanted.
    append(&logs.join("old.log"), &old.concat());
    let server = IngestServer::start();
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &logs.join("unused"));
    spec.logs = vec![logs.join("*.log*")];
    spec.extra.extend(["--start-at".into(), "end".into()]);
    spec.env
        .push(("RELAYWATCH_AGENT_GLOB_RESCAN_MS".into(), "100".into()));
    let agent = spec.spawn(0);
    std::thread::sleep(Duration::from_millis(500));

    // a.log appears, is rotated by rename halfway (a.log.1 matches the glob too), and b.log appears.
    let (a1, a2) = a.split_at(a.len() / 2);
    append(&logs.join("a.log"), &a1.concat());
    std::thread::sleep(Duration::from_millis(600));
    std::fs::rename(logs.join("a.log"), logs.join("a.log.1")).unwrap();
    append(&logs.join("a.log"), &a2.concat());
    append(&logs.join("b.log"), &b.concat());
    let mut want: Vec<String> = delivery_ids(&parse_whole(&a, "X-Delivery-Tag"));
    want.extend(delivery_ids(&parse_whole(&b, "X-Delivery-Tag")));
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= want.len()),
        "{} of {} deliveries arrived",
        server.unique(),
        want.len()
    );
    assert!(agent.terminate().success());

    // c.log is created while the agent is down: the glob was expanded before, so c.log is new and read whole.
    append(&logs.join("c.log"), &c.concat());
    let agent = spec.spawn(1);
    want.extend(delivery_ids(&parse_whole(&c, "X-Delivery-Tag")));
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= want.len()),
        "{} of {} deliveries arrived after the restart",
        server.unique(),
        want.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let first_run = std::fs::read_to_string(spec.state_dir.with_extension("stderr.0")).unwrap();
    assert!(agent.terminate().success());

    let got: HashSet<String> = server
        .received
        .lock()
        .unwrap()
        .unique_ids()
        .into_iter()
        .collect();
    let want_set: HashSet<String> = want.iter().cloned().collect();
    assert_eq!(got.len(), server.unique());
    assert!(
        got == want_set,
        "missing {}, unexpected {} (old.log's lines must not be shipped)",
        want_set.difference(&got).count(),
        got.difference(&want_set).count()
    );
    let old_ids: HashSet<String> = delivery_ids(&parse_whole(&old, "X-Delivery-Tag"))
        .into_iter()
        .collect();
    assert!(got.is_disjoint(&old_ids));
    // The generation was read by a.log's follower, never as a log of its own.
    assert!(first_run.contains("b.log"), "{first_run}");
    let new_logs: Vec<&str> = first_run
        .lines()
        .filter(|l| l.contains("a new log matches a configured glob"))
        .collect();
    assert_eq!(new_logs.len(), 2, "a.log and b.log: {new_logs:?}");
    assert!(
        new_logs.iter().all(|l| !l.contains("a.log.1")),
        "{new_logs:?}"
    );
}

/// The delivery ids in a spool batch file (`RWSPOOL1\n`, a metadata line, the gzipped wire batch).
fn batch_file_ids(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let rest = bytes.strip_prefix(b"RWSPOOL1\n").expect("a spool batch");
    let body = &rest[rest.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut json)
        .unwrap();
    let batch: serde_json::Value = serde_json::from_slice(&json).unwrap();
    delivery_ids(batch["records"].as_array().unwrap())
}

/// A 413 makes the agent split the batch until the parts fit; nothing is lost or sent twice.
#[test]
fn a_413_splits_the_batch_until_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lines) = generate_log(dir.path(), 8_000, 41) else {
        eprintln!("SKIPPED: ../shared/lab or python3 missing");
        return;
    };
    let log = dir.path().join("mail.log");
    append(&log, &lines.concat());
    let server = IngestServer::start();
    server.limits.lock().unwrap().max_records = 150;
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    spec.extra
        .extend(["--batch-max-records".into(), "1000".into()]);
    let agent = spec.spawn(0);
    let want = delivery_ids(&parse_whole(&lines, "X-Delivery-Tag"));
    assert!(want.len() > 1_000, "{} deliveries", want.len());
    assert!(
        wait_for(Duration::from_secs(60), || server.unique() >= want.len()),
        "{} of {} deliveries arrived",
        server.unique(),
        want.len()
    );
    assert!(agent.terminate().success());
    let r = server.received.lock().unwrap();
    assert!(r.too_large > 0, "no batch was over the limit");
    assert!(r.max_batch_records <= 150, "{}", r.max_batch_records);
    assert_eq!(r.unique_ids(), want);
    assert_eq!(r.wire_duplicates(), 0, "a part was sent twice");
}

/// A batch the API refuses as malformed (422) is put aside in spool/rejected/, said loudly, and shipping goes on:
/// what arrived plus what was put aside is the whole log, each delivery in exactly one of them.
#[test]
fn a_422_puts_the_batch_aside_and_shipping_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lines) = generate_log(dir.path(), 6_000, 42) else {
        eprintln!("SKIPPED: ../shared/lab or python3 missing");
        return;
    };
    let want = delivery_ids(&parse_whole(&lines, "X-Delivery-Tag"));
    let poisoned = want[want.len() / 3].clone();
    let log = dir.path().join("mail.log");
    let (first, second) = lines.split_at(lines.len() / 2);
    append(&log, &first.concat());
    let server = IngestServer::start();
    server.limits.lock().unwrap().poisoned_id = Some(poisoned.clone());
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    let at = spec
        .extra
        .iter()
        .position(|a| a == "--heartbeat-interval-secs")
        .unwrap();
    spec.extra[at + 1] = "1".into();
    spec.extra
        .extend(["--batch-max-records".into(), "200".into()]);
    let agent = spec.spawn(0);
    let rejected_dir = spec.state_dir.join("spool/rejected");
    assert!(
        wait_for(Duration::from_secs(60), || rejected_dir
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())),
        "no batch was put aside"
    );
    // Lines written after the refusal are shipped too.
    append(&log, &second.concat());
    let put_aside: Vec<String> = {
        let files: Vec<_> = rejected_dir
            .read_dir()
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        batch_file_ids(&files[0])
    };
    assert!(put_aside.contains(&poisoned));
    assert!(
        wait_for(Duration::from_secs(60), || server.unique()
            + put_aside.len()
            >= want.len()),
        "{} arrived + {} put aside of {}",
        server.unique(),
        put_aside.len(),
        want.len()
    );
    // The refusal is in the heartbeat's last error, for `GET /v1/agents`.
    assert!(
        wait_for(Duration::from_secs(10), || server
            .received
            .lock()
            .unwrap()
            .heartbeats
            .iter()
            .any(|h| h["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("422")))),
        "no heartbeat reported the 422"
    );
    let stderr = agent.stderr();
    assert!(agent.terminate().success());
    assert!(
        stderr.contains("malformed (422)") && stderr.contains("spool/rejected"),
        "{stderr}"
    );

    let r = server.received.lock().unwrap();
    assert_eq!(r.malformed, 1, "a refused batch is not resent");
    let arrived: HashSet<String> = r.unique_ids().into_iter().collect();
    let aside: HashSet<String> = put_aside.iter().cloned().collect();
    assert!(arrived.is_disjoint(&aside));
    let all: HashSet<String> = arrived.union(&aside).cloned().collect();
    assert_eq!(all, want.iter().cloned().collect::<HashSet<_>>());
}

/// A self-hosted API whose certificate comes from the operator's own CA: with `--tls-ca-file` the agent checks and
/// ships over HTTPS; without it the certificate is refused, `check` says why, and nothing is shipped.
#[test]
fn a_custom_ca_lets_the_agent_ship_to_a_self_hosted_https_api() {
    let Some(sample) = sample_lines() else {
        eprintln!("SKIPPED: ../shared/lab missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, &sample.concat());
    let ca = TestCa::new();
    let ca_file = dir.path().join("relaywatch-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = IngestServer::start_tls(&ca);
    assert!(server.url().starts_with("https://localhost:"));
    let mut spec = AgentSpec::new(dir.path(), &server.url(), &log);
    let check = |extra: &[&str]| {
        let mut args = vec!["--log", log.to_str().unwrap()];
        args.extend_from_slice(extra);
        check_output(&spec, &args)
    };
    let (code, out) = check(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL API") && out.to_lowercase().contains("certificate"),
        "the refusal names the certificate: {out}"
    );
    let (code, out) = check(&["--tls-ca-file", ca_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("may ingest"), "{out}");

    // The agent without the CA ships nothing (and keeps the batches); with it, everything arrives once.
    let untrusting = spec.spawn(0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.unique(), 0);
    let said = untrusting.stderr();
    assert!(untrusting.terminate().success());
    assert!(
        said.contains("shipping failed") && said.to_lowercase().contains("certificate"),
        "{said}"
    );
    spec.extra
        .extend(["--tls-ca-file".into(), ca_file.to_str().unwrap().into()]);
    let agent = spec.spawn(1);
    let want = delivery_ids(&parse_whole(&sample, "X-Delivery-Tag"));
    assert!(
        wait_for(Duration::from_secs(30), || server.unique() >= want.len()),
        "{} of {} deliveries arrived over HTTPS",
        server.unique(),
        want.len()
    );
    assert!(agent.terminate().success());
    assert_eq!(server.received.lock().unwrap().unique_ids(), want);
}
