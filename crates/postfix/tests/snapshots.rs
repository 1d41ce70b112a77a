//! Snapshots of the parsed events and correlated records of representative real files. A change in what the parser
//! understands shows up as a reviewable diff (`cargo insta review`).

mod common;

use relaywatch_postfix::{Correlator, Parser, ParserConfig};
use serde_json::{Value, json};

fn parser() -> Parser {
    Parser::new(ParserConfig {
        tag_headers: vec!["X-Delivery-Tag".into()],
        reference_unix: 1_796_000_000,
        ..Default::default()
    })
}

/// Each line with its event, as JSON.
fn events(rel: &str, take: usize) -> Option<Value> {
    let path = common::require(rel)?;
    let data = std::fs::read(path).unwrap();
    let p = parser();
    let rows: Vec<Value> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .take(take)
        .map(|l| json!({ "line": String::from_utf8_lossy(l), "event": p.parse_line(l) }))
        .collect();
    Some(Value::Array(rows))
}

/// The correlator's records for a whole file.
fn records(rel: &str) -> Option<Value> {
    let path = common::require(rel)?;
    let data = std::fs::read(path).unwrap();
    let p = parser();
    let mut c = Correlator::default();
    let mut out = Vec::new();
    for l in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        c.push(&p.parse_line(l), &mut out);
    }
    c.flush(&mut out);
    Some(serde_json::to_value(&out).unwrap())
}

macro_rules! snapshot {
    ($name:ident, $value:expr) => {
        #[test]
        fn $name() {
            let Some(v) = $value else { return };
            insta::assert_json_snapshot!(stringify!($name), v);
        }
    };
}

snapshot!(
    events_pflogsumm_sample,
    events("corpus/postfix-logs/pflogsumm-go-sample.log", 1000)
);
snapshot!(
    events_rfc3339_iso8601,
    events("corpus/postfix-logs/youyo-test-iso8601.log", 1000)
);
snapshot!(
    events_malformed_and_postscreen,
    events("corpus/postfix-logs/sergeymakinen-exporter-mail.log", 1000)
);
snapshot!(
    events_smtpd_rejects,
    events("corpus/postfix-logs/fail2ban-postfix.log", 1000)
);
snapshot!(events_lab_first_lines, events("lab/maillog.sample", 60));
snapshot!(
    records_pflogsumm_sample,
    records("corpus/postfix-logs/pflogsumm-go-sample.log")
);
snapshot!(records_youyo, records("corpus/postfix-logs/youyo-test.log"));
