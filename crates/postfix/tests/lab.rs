//! The lab's real Postfix log against its ground truth: every tagged message's recipients come out with the right final
//! status, DSN and tag, and the status totals equal what `grep -c status=<word>` counts.

mod common;

use std::collections::HashMap;

use relaywatch_postfix::correlate::FinishReason;
use relaywatch_postfix::{
    Correlator, CorrelatorConfig, DeliveryAttempt, MessageFinished, Parser, ParserConfig, Record,
    Status,
};

/// The lab log was written on 2026-11-28; its year-less stamps are read relative to the next day.
const REFERENCE: i64 = 1_796_000_000;

fn correlate(log: &[u8]) -> (Vec<DeliveryAttempt>, usize) {
    let (attempts, _, unknown) = correlate_all(log);
    (attempts, unknown)
}

fn correlate_all(log: &[u8]) -> (Vec<DeliveryAttempt>, Vec<MessageFinished>, usize) {
    let parser = Parser::new(ParserConfig {
        tag_headers: vec!["X-Delivery-Tag".into()],
        reference_unix: REFERENCE,
        ..Default::default()
    });
    let mut correlator = Correlator::new(CorrelatorConfig::default());
    let mut out = Vec::new();
    let mut unknown = 0;
    for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let event = parser.parse_line(line);
        unknown += usize::from(event.is_unknown());
        correlator.push(&event, &mut out);
    }
    correlator.flush(&mut out);
    let (mut attempts, mut finished) = (Vec::new(), Vec::new());
    for r in out {
        match r {
            Record::Delivery(a) => attempts.push(*a),
            Record::Finished(f) => finished.push(*f),
        }
    }
    (attempts, finished, unknown)
}

/// The sink's port 2525 serves these domains as one next hop, so their recipients share one SMTP transaction.
const SINK_DOMAINS: [&str; 3] = ["example.test", "partner.test", "bigcorp.test"];

/// What the lab's sink and Postfix configuration do to a recipient (see the lab's send_mail.py and sink.py):
/// the final status and the DSN of the last attempt.
fn expected(rcpt: &str) -> (Status, &'static str) {
    let (local, domain) = rcpt.split_once('@').unwrap();
    let prefix = |p: &str| local.starts_with(p);
    match domain {
        "busyhost.test" => (Status::Expired, "4.3.2"),
        "down.test" => (Status::Expired, "4.4.1"),
        "nowhere.invalid" => (Status::Bounced, "5.0.0"),
        "lab.test" if prefix("nosuch.") => (Status::Bounced, "5.1.1"),
        "lab.test" => (Status::Sent, "2.0.0"),
        _ if prefix("unknown.") => (Status::Bounced, "5.1.1"),
        _ if prefix("full.") => (Status::Bounced, "5.2.2"),
        _ if prefix("spam.") => (Status::Bounced, "5.7.1"),
        _ if prefix("temp.") => (Status::Expired, "4.2.1"),
        _ if prefix("busy.") => (Status::Expired, "4.3.0"),
        _ if prefix("drop.") => (Status::Expired, "4.4.2"),
        _ if prefix("close421.") => (Status::Expired, "4.7.0"),
        _ if prefix("dtemp.") => (Status::Expired, "4.7.1"),
        _ => (Status::Sent, "2.0.0"),
    }
}

#[test]
fn every_tagged_recipient_has_the_right_final_status_dsn_and_tag() {
    let (Some(log), Some(manifest)) = (
        common::require("lab/maillog.sample"),
        common::require("lab/sent-manifest.sample.jsonl"),
    ) else {
        return;
    };
    let log = std::fs::read(log).unwrap();
    let (attempts, finished, unknown) = correlate_all(&log);
    assert_eq!(
        unknown, 0,
        "every line of a real Postfix 3.7 log is understood"
    );
    // The lab deletes one deferred message with postsuper -d before it can expire.
    let deleted: Vec<&str> = finished
        .iter()
        .filter(|f| f.reason == FinishReason::Deleted)
        .filter_map(|f| f.tag.as_deref())
        .collect();
    assert_eq!(deleted.len(), 1, "one message deleted by postsuper");

    let mut by_tag: HashMap<&str, Vec<&DeliveryAttempt>> = HashMap::new();
    for a in &attempts {
        if let Some(t) = a.tag.as_deref() {
            by_tag.entry(t).or_default().push(a);
        }
    }
    let manifest = std::fs::read_to_string(manifest).unwrap();
    let (mut checked, mut rejected_before_queue, mut problems) = (0, 0, Vec::new());
    for line in manifest.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(tag) = m["tag"].as_str() else {
            continue;
        };
        let classes: Vec<&str> = m["classes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        // Submissions Postfix refused before queueing leave no delivery records: SMTP DATA not accepted,
        // a recipient refused at RCPT, or cleanup discarding/rejecting the message's content.
        let smtp = m["method"] == "smtp";
        let accepted = if smtp {
            m["result"]["data"][0].as_i64() == Some(250)
        } else {
            m["rc"].as_i64() == Some(0)
        };
        let records = by_tag.get(tag).cloned().unwrap_or_default();
        if !accepted || classes.contains(&"header_discard") {
            rejected_before_queue += 1;
            if !records.is_empty() {
                problems.push(format!(
                    "{tag}: refused before the queue, yet {} records",
                    records.len()
                ));
            }
            continue;
        }
        for rcpt in m["rcpts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r.as_str())
        {
            if smtp && !matches!(m["result"]["rcpt"][rcpt][0].as_i64(), Some(250 | 251)) {
                rejected_before_queue += 1;
                continue;
            }
            let in_sink_transaction =
                |r: &str| SINK_DOMAINS.iter().any(|d| r.ends_with(&format!("@{d}")));
            let spam_in_transaction = m["rcpts"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r.as_str())
                .any(|r| r.starts_with("spam.") && in_sink_transaction(r));
            let (status, dsn) = match expected(rcpt) {
                _ if classes.contains(&"header_reject") => (Status::Bounced, "5.7.1"),
                // The sink rejects the whole message after DATA, so every recipient of that transaction bounces.
                (Status::Sent, _) if spam_in_transaction && in_sink_transaction(rcpt) => {
                    (Status::Bounced, "5.7.1")
                }
                (Status::Expired, dsn) if deleted.contains(&tag) => (Status::Deferred, dsn),
                e => e,
            };
            let mut mine: Vec<&&DeliveryAttempt> = records
                .iter()
                .filter(|a| {
                    a.recipient.as_deref() == Some(rcpt)
                        || a.orig_recipient.as_deref() == Some(rcpt)
                })
                .collect();
            mine.sort_by_key(|a| (a.time, a.position));
            checked += 1;
            match mine.last() {
                None => problems.push(format!("{tag} {rcpt}: no delivery record")),
                Some(last) => {
                    if last.status != status
                        || last.dsn.as_deref() != Some(dsn)
                        || last.tag.as_deref() != Some(tag)
                    {
                        problems.push(format!(
                            "{tag} {rcpt}: got {:?} {:?} tag {:?}, expected {status:?} {dsn}",
                            last.status, last.dsn, last.tag
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "lab: {checked} tagged recipients checked, {rejected_before_queue} refused before the queue"
    );
    assert!(
        checked > 400,
        "the manifest holds hundreds of recipients, checked {checked}"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn status_totals_equal_grep_counts() {
    let Some(log) = common::require("lab/maillog.sample") else {
        return;
    };
    let log = std::fs::read(log).unwrap();
    let (attempts, _) = correlate(&log);
    for word in ["sent", "deferred", "bounced", "expired"] {
        // What `grep -c 'status=<word>[ ,]' maillog.sample` counts.
        let needle_space = format!("status={word} ");
        let needle_comma = format!("status={word},");
        let grep = log
            .split(|&b| b == b'\n')
            .filter(|l| {
                let l = String::from_utf8_lossy(l);
                l.contains(&needle_space) || l.contains(&needle_comma)
            })
            .count();
        let ours = attempts
            .iter()
            .filter(|a| a.status.as_str() == word)
            .count();
        eprintln!("status={word}: grep {grep}, correlator {ours}");
        assert_eq!(ours, grep, "status={word}");
    }
}

#[test]
fn ids_are_unique_and_replays_reproduce_them() {
    let Some(log) = common::require("lab/maillog.sample") else {
        return;
    };
    let log = std::fs::read(log).unwrap();
    let (first, _) = correlate(&log);
    let (second, _) = correlate(&log);
    let ids: std::collections::HashSet<&str> = first.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), first.len(), "one id per attempt");
    assert_eq!(
        first.iter().map(|a| &a.id).collect::<Vec<_>>(),
        second.iter().map(|a| &a.id).collect::<Vec<_>>()
    );
}

#[test]
fn checkpoint_in_the_middle_changes_nothing() {
    let Some(log) = common::require("lab/maillog.sample") else {
        return;
    };
    let log = std::fs::read(log).unwrap();
    let (whole, _) = correlate(&log);
    let parser = Parser::new(ParserConfig {
        tag_headers: vec!["X-Delivery-Tag".into()],
        reference_unix: REFERENCE,
        ..Default::default()
    });
    let lines: Vec<&[u8]> = log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut c = Correlator::default();
    let half = lines.len() / 2;
    for l in &lines[..half] {
        c.push(&parser.parse_line(l), &mut out);
    }
    // Save, serialise, restore: as the agent does with its file offset.
    let state = c.checkpoint(&mut out);
    let json = serde_json::to_string(&state).unwrap();
    let mut c = Correlator::restore(
        CorrelatorConfig::default(),
        serde_json::from_str(&json).unwrap(),
    )
    .unwrap();
    for l in &lines[half..] {
        c.push(&parser.parse_line(l), &mut out);
    }
    c.flush(&mut out);
    let resumed: Vec<DeliveryAttempt> = out
        .into_iter()
        .filter_map(|r| match r {
            Record::Delivery(a) => Some(*a),
            Record::Finished(_) => None,
        })
        .collect();
    assert_eq!(resumed.len(), whole.len());
    // Context may differ only for lines that arrived out of order across the cut; ids and statuses do not.
    for (a, b) in whole.iter().zip(&resumed) {
        assert_eq!((&a.id, a.status, &a.tag), (&b.id, b.status, &b.tag));
    }
}
