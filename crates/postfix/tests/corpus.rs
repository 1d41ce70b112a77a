//! Every file of the shared corpus of real Postfix logs: no panic, and the share of lines that become `Unknown`,
//! reported per file. Files that are fixtures of other parsers are read the way they store lines: grok-pattern YAML
//! (`data:` holds the message, the file name the daemon) and a TSV of daemon and message.

mod common;

use std::io::Read;
use std::path::Path;

use relaywatch_postfix::event::{Header, Program, Text};
use relaywatch_postfix::{Correlator, Event, EventKind, Parser, ParserConfig, Record, Timestamp};

struct Share {
    lines: usize,
    unknown: usize,
    comments: usize,
}

fn parser() -> Parser {
    Parser::new(ParserConfig {
        reference_unix: 1_796_000_000,
        ..Default::default()
    })
}

fn read(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    }
}

/// Parses whole syslog lines and feeds the correlator, which must not panic either.
fn share_of_log(data: &[u8]) -> Share {
    let p = parser();
    let mut c = Correlator::default();
    let mut out: Vec<Record> = Vec::new();
    let mut s = Share {
        lines: 0,
        unknown: 0,
        comments: 0,
    };
    for line in data.split(|&b| b == b'\n') {
        // Blank lines and `#` annotations are the fixtures' own comments, not log lines.
        if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
            s.comments += 1;
            continue;
        }
        let e = p.parse_line(line);
        s.lines += 1;
        s.unknown += usize::from(e.is_unknown());
        c.push(&e, &mut out);
    }
    c.flush(&mut out);
    s
}

fn header<'a>(daemon: &'a [u8]) -> Header<'a> {
    Header {
        time: Timestamp::from_unix_seconds(1_700_000_000),
        host: Text(b"corpus"),
        program: Program {
            name: Text(b"postfix/x"),
            instance: Text(b"postfix"),
            service: None,
            daemon: Text(daemon),
        },
        pid: Some(1),
    }
}

/// Undoes YAML double-quoted string escapes that the grok fixtures use.
fn yaml_unquote(s: &str) -> String {
    let s = s.trim();
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn every_corpus_file_parses_and_reports_its_unknown_share() {
    let Some(dir) = common::require("corpus/postfix-logs") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut report = Vec::new();
    let mut total = Share {
        lines: 0,
        unknown: 0,
        comments: 0,
    };
    for path in files.iter().filter(|p| p.is_file()) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let data = read(path);
        let s = if name.ends_with(".tsv") {
            let p = parser();
            let mut s = Share {
                lines: 0,
                unknown: 0,
                comments: 0,
            };
            for row in data.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
                let Some(tab) = row.iter().position(|&b| b == b'\t') else {
                    continue;
                };
                let e = p.parse_message(header(&row[..tab]), &row[tab + 1..]);
                s.lines += 1;
                s.unknown += usize::from(e.is_unknown());
            }
            s
        } else {
            share_of_log(&data)
        };
        report.push(format!(
            "{name:<50} {:>6} lines {:>6} unknown {:>6.1} %",
            s.lines,
            s.unknown,
            100.0 * s.unknown as f64 / s.lines.max(1) as f64
        ));
        total.lines += s.lines;
        total.unknown += s.unknown;
        // Files that hold only real, well-formed Postfix lines must be understood completely.
        if name.starts_with("crowdsec-")
            || name.starts_with("youyo-")
            || name.starts_with("pflogsumm-go")
            || name.starts_with("homoluctus-")
            || name.starts_with("DERIVED-hsn723")
            || name.starts_with("DERIVED-kumina")
        {
            assert_eq!(s.unknown, 0, "{name}: every line understood");
        }
        if name.ends_with(".tsv") {
            assert!(s.unknown * 10 < s.lines, "{name}: at least 90 % understood");
        }
    }
    eprintln!("unknown share per corpus file:\n{}", report.join("\n"));
    eprintln!(
        "all files: {} lines, {} unknown",
        total.lines, total.unknown
    );
    assert!(report.len() >= 20, "the corpus holds over twenty files");
}

#[test]
fn grok_pattern_fixtures_agree_on_queue_id_and_status() {
    let Some(dir) = common::require("corpus/postfix-logs/postfix-grok-patterns") else {
        return;
    };
    let p = parser();
    let (mut files, mut unknown, mut checked) = (0, Vec::new(), 0);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        // `smtpd_0012` is a smtpd line; `command_counter_data_0001` and `tls_features_0001` hold smtpd lines too.
        let daemon = name.rsplit_once('_').map(|(d, _)| d).unwrap_or(&name);
        let daemon = match daemon {
            "command_counter_data" | "tls_features" | "relay" | "delays" => "smtpd",
            "script" => "postfix-script",
            d => d,
        };
        let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
            continue;
        };
        let data = yaml_unquote(data);
        let e: Event<'_> = p.parse_message(header(daemon.as_bytes()), data.as_bytes());
        files += 1;
        if e.is_unknown() {
            unknown.push(format!("{name}: {data}"));
        }
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")).map(yaml_unquote))
        };
        if let Some(qid) = field("postfix_queueid")
            && !e.is_unknown()
        {
            // grok calls `NOQUEUE` a queue id; it is the absence of one.
            let expected = Some(qid).filter(|q| q != "NOQUEUE");
            assert_eq!(e.queue_id.map(|q| q.to_string()), expected, "{name}");
            checked += 1;
        }
        if let (Some(status), EventKind::Delivery(d)) = (field("postfix_status"), &e.kind) {
            assert_eq!(d.status.as_str(), status, "{name}");
            checked += 1;
        }
    }
    eprintln!(
        "grok fixtures: {files} files, {} unknown, {checked} fields agreed",
        unknown.len()
    );
    for u in &unknown {
        eprintln!("  unknown: {u}");
    }
    assert!(
        checked > 60,
        "queue ids and statuses were compared, {checked}"
    );
    assert!(
        unknown.len() * 10 < files,
        "at least 90 % of the grok fixtures understood"
    );
}

#[test]
fn non_utf8_bytes_are_kept() {
    let line = b"Nov 28 22:44:42 mail postfix/smtp[1]: B7438B6323: to=<caf\xe9@example.test>, relay=none, delay=0, delays=0/0/0/0, dsn=5.0.0, status=bounced (bad \xff byte)";
    let e = parser().parse_line(line);
    let EventKind::Delivery(d) = e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(d.to.as_bytes(), b"caf\xe9@example.test");
    assert_eq!(d.to.to_str(), "caf\u{fffd}@example.test");
    assert_eq!(d.reply.raw.as_bytes(), b"bad \xff byte");
}
