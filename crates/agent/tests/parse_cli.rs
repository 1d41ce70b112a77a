//! `relaywatch-agent parse` as tools see it: the NDJSON field names, the stats keys, gzip and standard input.

use std::io::Write;
use std::process::{Command, Stdio};

const LOG: &str = "\
Nov 28 22:44:42 mail postfix/pickup[1]: B7438B6323: uid=0 from=<noreply@lab.test>
Nov 28 22:44:42 mail postfix/cleanup[2]: B7438B6323: info: header X-App-Tag: 9219d07f from local; from=<noreply@lab.test> to=<u@example.test>: tag
Nov 28 22:44:42 mail postfix/cleanup[2]: B7438B6323: message-id=<m1@lab.test>
Nov 28 22:44:42 mail postfix/qmgr[3]: B7438B6323: from=<noreply@lab.test>, size=1766, nrcpt=1 (queue active)
Nov 28 22:44:42 mail postfix/smtp[4]: B7438B6323: to=<u@example.test>, relay=mx[192.0.2.1]:25, delay=0.12, delays=0.05/0.03/0.02/0.01, dsn=5.1.1, status=bounced (host mx[192.0.2.1] said: 550 5.1.1 <u@example.test>: User unknown (in reply to RCPT TO command))
Nov 28 22:44:42 mail postfix/qmgr[3]: B7438B6323: removed
Nov 28 22:44:43 mail dovecot: imap-login: Login: user=<a>
Nov 28 22:44:43 mail postfix/smtpd[5]: something new in Postfix 9
";

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relaywatch-agent"))
}

fn run_stdin(args: &[&str], input: &[u8]) -> String {
    let mut child = agent()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_prints_one_delivery_per_line_with_the_documented_fields() {
    let out = run_stdin(
        &[
            "parse",
            "--json",
            "--tag-header",
            "X-App-Tag",
            "--reference-time",
            "1796000000",
            "-",
        ],
        LOG.as_bytes(),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for field in [
        "kind",
        "time",
        "host",
        "queue_id",
        "message_id",
        "tag",
        "sender",
        "recipient",
        "orig_recipient",
        "status",
        "dsn",
        "relay",
        "delay",
        "reply",
        "bounce_class",
    ] {
        assert!(v.get(field).is_some(), "field {field} missing in {v}");
    }
    assert_eq!(v["kind"], "delivery");
    assert_eq!(v["time"], "2026-11-28T22:44:42Z");
    assert_eq!(v["tag"], "9219d07f");
    assert_eq!(v["message_id"], "m1@lab.test");
    assert_eq!(v["status"], "bounced");
    assert_eq!(v["orig_recipient"], serde_json::Value::Null);
    assert_eq!(v["bounce_class"]["severity"], "hard");
    assert_eq!(v["bounce_class"]["reason"], "unknown_recipient");
}

#[test]
fn stats_counts_lines_unknowns_and_deliveries_also_from_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(LOG.as_bytes()).unwrap();
    gz.finish().unwrap();
    let out = agent()
        .args(["parse", "--stats"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lines"], 8);
    assert_eq!(
        v["unknown_lines"], 1,
        "the line of a future Postfix is counted, not dropped"
    );
    assert_eq!(v["not_postfix_lines"], 1);
    assert_eq!(v["deliveries"]["bounced"], 1);
    assert!(v["seconds"].is_number() && v["lines_per_second"].is_number());
}

#[test]
fn the_summary_is_for_people() {
    let out = run_stdin(&["parse", "-"], LOG.as_bytes());
    assert!(out.contains("not understood    1"), "{out}");
    assert!(out.contains("bounced"), "{out}");
}

#[test]
fn year_less_stamps_take_the_given_utc_offset() {
    let out = run_stdin(
        &[
            "parse",
            "--json",
            "--tag-header",
            "X-App-Tag",
            "--reference-time",
            "1796000000",
            "--utc-offset",
            "-300",
            "-",
        ],
        LOG.as_bytes(),
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["time"], "2026-11-28T22:44:42-05:00");
}
