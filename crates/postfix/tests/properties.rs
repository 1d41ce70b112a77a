//! Properties: the parser and correlator never panic, whatever the bytes; and a rendered event parses back to itself.

use proptest::prelude::*;
use relaywatch_postfix::event::{Delays, DeliveryLine, Header, Program, Text};
use relaywatch_postfix::render::render_line;
use relaywatch_postfix::{
    Correlator, Event, EventKind, Parser, ParserConfig, Reply, Status, Timestamp,
};

fn parser() -> Parser {
    Parser::new(ParserConfig {
        reference_unix: 1_796_000_000,
        ..Default::default()
    })
}

/// Fragments real lines are made of, so random lines reach deep into the parser instead of failing at the header.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"Nov 28 22:44:42 mail postfix/smtp[1]: ".to_vec()),
        Just(b"2026-11-28T22:44:42.5+01:00 mail postfix-out/submission/smtpd[2]: ".to_vec()),
        Just(b"<22>1 2026-11-28T22:44:42Z mail postfix/qmgr 3 - [x a=\"]\"] ".to_vec()),
        Just(b"B7438B6323: ".to_vec()),
        Just(b"to=<".to_vec()),
        Just(b">, ".to_vec()),
        Just(b"relay=".to_vec()),
        Just(b"delays=0.1/0/0/".to_vec()),
        Just(b"status=".to_vec()),
        Just(b" (host x[1.2.3.4] said: 550 5.1.1 ".to_vec()),
        Just(b" (in reply to RCPT TO command)".to_vec()),
        Just(b"NOQUEUE: reject: RCPT from ".to_vec()),
        Just(b"; from=<".to_vec()),
        Just(b"info: header X-Relaywatch-Tag: ".to_vec()),
        Just(b" from local; ".to_vec()),
        Just(b"from=<a@b>, size=1, nrcpt=".to_vec()),
        Just(b"removed".to_vec()),
        Just(b"status=expired, returned to sender".to_vec()),
        Just(b"sender non-delivery notification: ".to_vec()),
        Just(b"TLS connection established from ".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]:".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let p = parser();
        let mut c = Correlator::default();
        let mut out = Vec::new();
        let e = p.parse_line(&bytes);
        c.push(&e, &mut out);
        c.flush(&mut out);
        let _ = serde_json::to_string(&e).unwrap();
    }

    #[test]
    fn lines_of_real_fragments_never_panic(parts in proptest::collection::vec(fragment(), 0..14)) {
        let line: Vec<u8> = parts.concat();
        let p = parser();
        let mut c = Correlator::default();
        let mut out = Vec::new();
        for piece in [&line[..], &line[..line.len() / 2]] {
            let e = p.parse_line(piece);
            c.push(&e, &mut out);
        }
        let mut out2 = Vec::new();
        let state = c.checkpoint(&mut out2);
        let json = serde_json::to_string(&state).unwrap();
        let back = serde_json::from_str(&json).unwrap();
        prop_assert!(Correlator::restore(Default::default(), back).is_ok());
    }

    #[test]
    fn a_rendered_delivery_parses_back_to_itself(
        secs in 946_684_800i64..4_102_444_800,
        micros in prop_oneof![Just(0u32), 1u32..1_000_000],
        offset in -720i16..=840,
        host in "[a-z][a-z0-9-]{0,15}",
        program in prop_oneof![
            Just("postfix/smtp"), Just("postfix-out/smtp"), Just("postfix/lmtp"), Just("postfix/local"),
            Just("postfix/virtual"), Just("postfix/pipe"), Just("postfix/error"), Just("postfix-239.58.50.50/smtp"),
        ],
        pid in proptest::option::of(1u32..4_000_000),
        qid in prop_oneof!["[0-9A-F]{10,11}", "[0-9][0-9b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]{14}"],
        to in "[a-z0-9._+=-]{1,20}@[a-z0-9.-]{1,20}",
        orig_to in proptest::option::of("[a-z0-9._+-]{1,12}(@[a-z0-9.-]{1,12})?"),
        relay in proptest::option::of(prop_oneof![
            Just("none".to_string()), Just("local".to_string()), "[a-z0-9.-]{1,20}\\[[0-9.]{7,15}\\]:25",
        ]),
        conn_use in proptest::option::of(1u32..100),
        delay in proptest::option::of(0u64..100_000_000),
        delays in proptest::option::of((0u64..1_000_000, 0u64..1_000, 0u64..1_000, 0u64..1_000)),
        dsn in proptest::option::of("[245]\\.[0-7]\\.[0-9]{1,2}"),
        status in prop_oneof![
            Just(Status::Sent), Just(Status::Deferred), Just(Status::Bounced), Just(Status::Expired),
            Just(Status::Undeliverable), Just(Status::Deliverable),
        ],
        reply in prop_oneof![
            Just(String::new()),
            "[ -~]{1,60}",
            "host [a-z.]{1,12}\\[[0-9.]{7,15}\\] said: [45][0-9]{2} [45]\\.[0-9]\\.[0-9] [ -~]{0,40} \\(in reply to RCPT TO command\\)",
            "connect to [a-z.]{1,12}\\[[0-9.]{7,15}\\]:25: Connection refused",
        ],
    ) {
        let time = Timestamp {
            unix_micros: secs * 1_000_000 + i64::from(micros),
            offset_minutes: offset,
        };
        let prog = program.as_bytes();
        let slash = prog.iter().rposition(|&b| b == b'/').unwrap();
        let header = Header {
            time,
            host: Text(host.as_bytes()),
            program: Program {
                name: Text(prog),
                instance: Text(&prog[..prog.iter().position(|&b| b == b'/').unwrap()]),
                service: None,
                daemon: Text(&prog[slash + 1..]),
            },
            pid,
        };
        let original = Event {
            header: Some(header),
            queue_id: Some(Text(qid.as_bytes())),
            kind: EventKind::Delivery(Box::new(DeliveryLine {
                to: Text(to.as_bytes()),
                orig_to: orig_to.as_deref().map(|o| Text(o.as_bytes())),
                relay: relay.as_deref().map(|r| Text(r.as_bytes())),
                conn_use,
                delay: delay.map(|d| d as f64 / 100.0),
                delays: delays.map(|(a, b, c, d)| Delays {
                    before_queue: a as f64 / 100.0,
                    in_queue: b as f64 / 100.0,
                    connection: c as f64 / 100.0,
                    transmission: d as f64 / 100.0,
                }),
                dsn: dsn.as_deref().map(|d| Text(d.as_bytes())),
                status,
                reply: Reply::parse(reply.as_bytes()),
                utf8: Default::default(),
            })),
        };
        let line = render_line(&original).expect("deliveries render");
        let parsed = parser().parse_line(line.as_bytes());
        prop_assert_eq!(parsed, original, "line: {}", line);
    }

    #[test]
    fn rendered_queue_lines_parse_back_to_themselves(
        secs in 946_684_800i64..4_102_444_800,
        qid in "[0-9A-F]{10,11}",
        from in "([a-z0-9._+-]{1,12}@[a-z0-9.-]{1,12})?",
        size in proptest::option::of(0u64..100_000_000),
        nrcpt in proptest::option::of(1u32..1000),
        uid in proptest::option::of(0u32..70_000),
        forced in any::<bool>(),
        message_id in "<[!-=?-~]{1,40}>",
        which in 0usize..5,
    ) {
        let (program, kind) = match which {
            0 => ("postfix/qmgr", EventKind::QueueActive { from: Text(from.as_bytes()), size, nrcpt }),
            1 => ("postfix/qmgr", EventKind::Expired { from: Text(from.as_bytes()), forced }),
            2 => ("postfix/qmgr", EventKind::Removed),
            3 => ("postfix/cleanup", EventKind::MessageId { message_id: Text(message_id.as_bytes()) }),
            _ => ("postfix/pickup", EventKind::Pickup { uid, from: Text(from.as_bytes()) }),
        };
        let prog = program.as_bytes();
        let original = Event {
            header: Some(Header {
                time: Timestamp::from_unix_seconds(secs),
                host: Text(b"mail"),
                program: Program { name: Text(prog), instance: Text(b"postfix"), service: None, daemon: Text(&prog[8..]) },
                pid: Some(42),
            }),
            queue_id: Some(Text(qid.as_bytes())),
            kind,
        };
        let line = render_line(&original).expect("queue lines render");
        prop_assert_eq!(parser().parse_line(line.as_bytes()), original, "line: {}", line);
    }
}
