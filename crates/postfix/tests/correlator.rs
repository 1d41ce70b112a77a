//! The correlator's state machine on small hand-written logs in Postfix's own words.

use relaywatch_postfix::correlate::FinishReason;
use relaywatch_postfix::{
    Correlator, CorrelatorConfig, DeliveryAttempt, MessageFinished, Parser, ParserConfig, Record,
    Status,
};

fn run(
    config: CorrelatorConfig,
    log: &str,
) -> (Vec<DeliveryAttempt>, Vec<MessageFinished>, Correlator) {
    let parser = Parser::new(ParserConfig {
        reference_unix: 1_796_000_000,
        tag_headers: vec!["X-Relaywatch-Tag".into(), "X-Mailer-Tag".into()],
        ..Default::default()
    });
    let mut c = Correlator::new(config);
    let mut out = Vec::new();
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        c.push(&parser.parse_line(line.as_bytes()), &mut out);
    }
    c.flush(&mut out);
    let (mut a, mut f) = (Vec::new(), Vec::new());
    for r in out {
        match r {
            Record::Delivery(d) => a.push(*d),
            Record::Finished(m) => f.push(*m),
        }
    }
    (a, f, c)
}

const LIFE: &str = "
Nov 28 22:44:42 mail postfix/smtpd[1]: 4A1B2C3D4E: client=app.example.com[192.0.2.10], sasl_method=PLAIN, sasl_username=app
Nov 28 22:44:42 mail postfix/cleanup[2]: 4A1B2C3D4E: message-id=<m1@app.example.com>
Nov 28 22:44:42 mail postfix/cleanup[2]: 4A1B2C3D4E: info: header X-Relaywatch-Tag: t-1 from app.example.com[192.0.2.10]; from=<app@example.com> to=<a@example.net> proto=ESMTP helo=<app>: relaywatch
Nov 28 22:44:42 mail postfix/qmgr[3]: 4A1B2C3D4E: from=<app@example.com>, size=1234, nrcpt=2 (queue active)
Nov 28 22:44:43 mail postfix/smtp[4]: 4A1B2C3D4E: to=<a@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1)
Nov 28 22:44:43 mail postfix/smtp[4]: 4A1B2C3D4E: to=<b@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.net[198.51.100.1] said: 550 5.1.1 <b@example.net>: User unknown (in reply to RCPT TO command))
Nov 28 22:44:43 mail postfix/bounce[5]: 4A1B2C3D4E: sender non-delivery notification: 5B2C3D4E5F
Nov 28 22:44:43 mail postfix/qmgr[3]: 4A1B2C3D4E: removed
Nov 28 22:44:43 mail postfix/cleanup[2]: 5B2C3D4E5F: message-id=<notice@mail.example.com>
Nov 28 22:44:43 mail postfix/qmgr[3]: 5B2C3D4E5F: from=<>, size=3000, nrcpt=1 (queue active)
Nov 28 22:44:44 mail postfix/local[6]: 5B2C3D4E5F: to=<app@example.com>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 28 22:44:44 mail postfix/qmgr[3]: 5B2C3D4E5F: removed
";

#[test]
fn a_message_life_carries_its_context_into_every_attempt() {
    let (a, f, c) = run(CorrelatorConfig::default(), LIFE);
    assert_eq!(a.len(), 3);
    let (sent, bounced) = (&a[0], &a[1]);
    assert_eq!(sent.status, Status::Sent);
    assert_eq!(sent.message_id.as_deref(), Some("m1@app.example.com"));
    assert_eq!(sent.tag.as_deref(), Some("t-1"));
    assert_eq!(sent.sender.as_deref(), Some("app@example.com"));
    assert_eq!(sent.size, Some(1234));
    assert_eq!(sent.client.as_deref(), Some("app.example.com[192.0.2.10]"));
    assert_eq!(sent.sasl_username.as_deref(), Some("app"));
    assert_eq!(sent.bounce_class, None);
    assert_eq!((sent.position, bounced.position), (0, 1));
    assert_eq!(bounced.reply_code, Some(550));
    assert_eq!(
        bounced.bounce_class.unwrap().reason,
        relaywatch_postfix::BounceReason::UnknownRecipient
    );
    // The bounce notice knows which message it reports on.
    assert_eq!(a[2].notice_of.as_deref(), Some("4A1B2C3D4E"));
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].reason, f[0].sent, f[0].bounced),
        (FinishReason::Removed, 1, 1)
    );
    assert_eq!(c.in_flight(), 0, "finished messages are forgotten");
}

#[test]
fn lines_out_of_order_within_a_second_still_meet_their_context() {
    // The delivery is logged before qmgr's line and cleanup's tag, and a status line comes after `removed`.
    let log = "
Nov 28 22:44:42 mail postfix/smtp[4]: 6C3D4E5F6A: to=<a@example.net>, relay=mx[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
Nov 28 22:44:42 mail postfix/qmgr[3]: 6C3D4E5F6A: removed
Nov 28 22:44:42 mail postfix/smtp[4]: 6C3D4E5F6A: to=<b@example.net>, relay=mx[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
Nov 28 22:44:42 mail postfix/cleanup[2]: 6C3D4E5F6A: info: header X-Mailer-Tag: late-tag from local; from=<app@example.com> to=<a@example.net>
Nov 28 22:44:42 mail postfix/qmgr[3]: 6C3D4E5F6A: from=<app@example.com>, size=10, nrcpt=2 (queue active)
Nov 28 22:44:43 mail postfix/qmgr[3]: 7D4E5F6A7B: removed
";
    let (a, f, _) = run(CorrelatorConfig::default(), log);
    assert_eq!(a.len(), 2);
    assert!(
        a.iter().all(|x| x.tag.as_deref() == Some("late-tag")),
        "{a:?}"
    );
    assert!(
        a.iter()
            .all(|x| x.sender.as_deref() == Some("app@example.com"))
    );
    assert_eq!(f[0].sent, 2, "both attempts count for the finished message");
}

#[test]
fn a_reused_queue_id_starts_a_new_message() {
    // lightmeter's case: the old message's `removed` is missing and Postfix hands out the same id again.
    let log = "
Nov 28 22:44:42 mail postfix/pickup[1]: 8E5F6A7B8C: uid=0 from=<old@example.com>
Nov 28 22:44:42 mail postfix/cleanup[2]: 8E5F6A7B8C: message-id=<old@example.com>
Nov 28 22:44:42 mail postfix/qmgr[3]: 8E5F6A7B8C: from=<old@example.com>, size=10, nrcpt=1 (queue active)
Nov 28 22:44:50 mail postfix/smtpd[4]: 8E5F6A7B8C: client=new.example.com[192.0.2.7]
Nov 28 22:44:50 mail postfix/cleanup[2]: 8E5F6A7B8C: message-id=<new@example.com>
Nov 28 22:44:50 mail postfix/qmgr[3]: 8E5F6A7B8C: from=<new@example.com>, size=20, nrcpt=1 (queue active)
Nov 28 22:44:51 mail postfix/smtp[5]: 8E5F6A7B8C: to=<x@example.net>, relay=mx[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
";
    let (a, f, _) = run(CorrelatorConfig::default(), log);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].reason, FinishReason::QueueIdReused);
    assert_eq!(f[0].message_id.as_deref(), Some("old@example.com"));
    assert_eq!(a[0].message_id.as_deref(), Some("new@example.com"));
    assert_eq!(a[0].client.as_deref(), Some("new.example.com[192.0.2.7]"));
}

#[test]
fn an_expiry_names_every_recipient_still_deferred() {
    let log = "
Nov 28 22:44:42 mail postfix/qmgr[3]: 9F6A7B8C9D: from=<app@example.com>, size=10, nrcpt=3 (queue active)
Nov 28 22:44:42 mail postfix/smtp[5]: 9F6A7B8C9D: to=<a@example.net>, relay=none, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection refused)
Nov 28 22:44:42 mail postfix/smtp[5]: 9F6A7B8C9D: to=<b@example.net>, relay=none, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection refused)
Nov 28 22:44:42 mail postfix/smtp[5]: 9F6A7B8C9D: to=<c@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
Nov 29 22:44:42 mail postfix/qmgr[3]: 9F6A7B8C9D: from=<app@example.com>, status=expired, returned to sender
Nov 29 22:44:42 mail postfix/qmgr[3]: 9F6A7B8C9D: removed
";
    let (a, f, _) = run(CorrelatorConfig::default(), log);
    let expired: Vec<_> = a.iter().filter(|x| x.status == Status::Expired).collect();
    assert_eq!(expired.len(), 2);
    assert_eq!(expired[0].recipient.as_deref(), Some("a@example.net"));
    assert_eq!(
        expired[0].dsn.as_deref(),
        Some("4.4.1"),
        "an expiry reports the last deferral's DSN"
    );
    assert_eq!(expired[1].recipient.as_deref(), Some("b@example.net"));
    assert_eq!((f[0].expired, f[0].sent, f[0].deferred), (2, 1, 2));
}

#[test]
fn memory_is_bounded_and_evictions_are_counted() {
    let mut log = String::new();
    for i in 0..100 {
        log.push_str(&format!(
            "Nov 28 22:44:42 mail postfix/qmgr[3]: {:010X}: from=<a@example.com>, size=1, nrcpt=1 (queue active)\n",
            0xA000_0000u64 + i
        ));
    }
    let (_, _, c) = run(
        CorrelatorConfig {
            max_in_flight: 10,
            ..Default::default()
        },
        &log,
    );
    assert_eq!(c.in_flight(), 10);
    assert_eq!(c.evicted(), 90);
}

#[test]
fn a_header_reject_finishes_the_message_with_its_bounce() {
    let log = "
Nov 28 22:44:44 mail postfix/pickup[1]: 896D6B6349: uid=0 from=<app@lab.test>
Nov 28 22:44:44 mail postfix/cleanup[2]: 896D6B6349: info: header X-Relaywatch-Tag: rt from local; from=<app@lab.test> to=<john@example.test>: tag
Nov 28 22:44:44 mail postfix/cleanup[2]: 896D6B6349: reject: header X-Spam-Flag: YES from local; from=<app@lab.test> to=<john@example.test>: 5.7.1 Message content rejected
Nov 28 22:44:44 mail postfix/cleanup[2]: 896D6B6349: to=<john@example.test>, relay=none, delay=0, delays=0/0/0/0, dsn=5.7.1, status=bounced (Message content rejected)
";
    let (a, f, c) = run(CorrelatorConfig::default(), log);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].tag.as_deref(), Some("rt"));
    assert_eq!(a[0].daemon, "cleanup");
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].reason, f[0].bounced), (FinishReason::Rejected, 1));
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn ids_depend_on_content_and_position() {
    let (a, _, _) = run(CorrelatorConfig::default(), LIFE);
    let (b, _, _) = run(CorrelatorConfig::default(), LIFE);
    assert_eq!(a[0].id, b[0].id);
    assert_ne!(a[0].id, a[1].id);
    // UUIDv7 shape: version nibble 7, variant bits 10, and the time in the first 48 bits.
    let id = &a[0].id;
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "7");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    let millis = u64::from_str_radix(&id.replace('-', "")[..12], 16).unwrap();
    assert_eq!(millis as i64, a[0].time.unix_micros / 1000);
}

#[test]
fn instances_on_one_host_have_separate_queues() {
    // postfix-in and postfix-out both hand out 1A2B3C4D5E: two messages, not one.
    let log = "
Nov 28 22:44:42 mail postfix-in/cleanup[1]: 1A2B3C4D5E: message-id=<in@example.com>
Nov 28 22:44:42 mail postfix-out/cleanup[2]: 1A2B3C4D5E: message-id=<out@example.com>
Nov 28 22:44:43 mail postfix-in/lmtp[3]: 1A2B3C4D5E: to=<a@example.com>, relay=dovecot, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
Nov 28 22:44:43 mail postfix-out/smtp[4]: 1A2B3C4D5E: to=<a@example.com>, relay=mx[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)
";
    let (a, _, c) = run(CorrelatorConfig::default(), log);
    assert_eq!(a[0].message_id.as_deref(), Some("in@example.com"));
    assert_eq!(a[0].instance, "postfix-in");
    assert_eq!(a[1].message_id.as_deref(), Some("out@example.com"));
    assert_eq!(a[1].instance, "postfix-out");
    assert_ne!(a[0].id, a[1].id);
    assert_eq!(c.in_flight(), 2);
}

#[test]
fn silent_messages_are_forgotten_and_counted() {
    // An SMTP transaction the client aborted after client= leaves no further line; a queued message keeps its state.
    let log = "
Nov 28 10:00:00 mail postfix/smtpd[1]: 2B3C4D5E6F: client=bot.example[192.0.2.66]
Nov 28 10:00:00 mail postfix/qmgr[3]: 3C4D5E6F7A: from=<app@example.com>, size=10, nrcpt=1 (queue active)
Nov 28 10:00:01 mail postfix/smtp[5]: 3C4D5E6F7A: to=<a@example.net>, relay=none, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection refused)
Nov 28 10:30:00 mail postfix/anvil[7]: statistics: max cache size 1 at Nov 28 10:00:00
Nov 28 11:20:00 mail postfix/anvil[7]: statistics: max cache size 1 at Nov 28 10:00:00
";
    let (_, _, c) = run(CorrelatorConfig::default(), log);
    assert_eq!(
        c.abandoned(),
        1,
        "the aborted transaction is forgotten after an hour of silence"
    );
    assert_eq!(c.in_flight(), 1, "the deferred message stays");
    assert_eq!(c.evicted(), 0);
}

#[test]
fn a_notice_logged_after_its_own_delivery_still_links_and_leaves_nothing_behind() {
    let log = "
Nov 01 00:03:14 mail postfix/qmgr[3]: 4297E4F4DC2: from=<noreply@lab.test>, size=2351, nrcpt=1 (queue active)
Nov 01 00:03:14 mail postfix/smtp[4]: 4297E4F4DC2: to=<j@example.com>, relay=mx[192.0.2.168]:25, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 01 00:03:14 mail postfix/cleanup[2]: 48C3F20F3D: message-id=<20261101000314.48C3F20F3D@mail.lab.test>
Nov 01 00:03:14 mail postfix/qmgr[3]: 48C3F20F3D: from=<>, size=2299, nrcpt=1 (queue active)
Nov 01 00:03:14 mail postfix/local[5]: 48C3F20F3D: to=<noreply@lab.test>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to file: /dev/null)
Nov 01 00:03:14 mail postfix/qmgr[3]: 48C3F20F3D: removed
Nov 01 00:03:14 mail postfix/bounce[6]: 4297E4F4DC2: sender delivery status notification: 48C3F20F3D
Nov 01 00:03:14 mail postfix/qmgr[3]: 4297E4F4DC2: removed
Nov 01 00:03:15 mail postfix/bounce[6]: 5A5A5A5A5A: sender non-delivery notification: 6B6B6B6B6B
";
    let (a, f, c) = run(CorrelatorConfig::default(), log);
    assert_eq!(a[1].queue_id, "48C3F20F3D");
    assert_eq!(a[1].notice_of.as_deref(), Some("4297E4F4DC2"));
    assert_eq!(f.len(), 2);
    assert_eq!(
        c.in_flight(),
        0,
        "a notice line never starts a message of its own"
    );
}

#[test]
fn empty_message_ids_are_none_and_malformed_ones_are_kept() {
    let log = "
Nov 01 00:03:14 mail postfix/cleanup[2]: 1A1A1A1A1A: message-id=
Nov 01 00:03:14 mail postfix/smtp[4]: 1A1A1A1A1A: to=<a@example.com>, relay=mx[192.0.2.1]:25, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 01 00:03:14 mail postfix/cleanup[2]: 2B2B2B2B2B: message-id=<>
Nov 01 00:03:14 mail postfix/smtp[4]: 2B2B2B2B2B: to=<a@example.com>, relay=mx[192.0.2.1]:25, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 01 00:03:14 mail postfix/cleanup[2]: 3C3C3C3C3C: message-id=<broken@id
Nov 01 00:03:14 mail postfix/smtp[4]: 3C3C3C3C3C: to=<a@example.com>, relay=mx[192.0.2.1]:25, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (250 ok)
";
    let (a, _, _) = run(CorrelatorConfig::default(), log);
    assert_eq!(a[0].message_id, None);
    assert_eq!(a[1].message_id, None);
    assert_eq!(a[2].message_id.as_deref(), Some("<broken@id"));
}

#[test]
fn opendkim_signatures_reach_every_attempt_of_their_message_and_no_other() {
    // opendkim signs at end of message, between cleanup's lines and qmgr's; its line carries the host and the queue id
    // but no Postfix instance, so it is matched to the `postfix-out` instance's message by host and queue id. The
    // second message (other queue id) and the same queue id on another host stay unsigned; a signature for a queue id
    // never seen starts nothing.
    let log = "
Nov 28 22:44:42 mail postfix-out/smtpd[1]: 4A1B2C3D4E: client=app.example.com[192.0.2.10]
Nov 28 22:44:42 mail postfix-out/cleanup[2]: 4A1B2C3D4E: message-id=<m1@app.example.com>
Nov 28 22:44:42 mail opendkim[9]: 4A1B2C3D4E: DKIM-Signature field added (s=Mail2024, d=Example.COM)
Nov 28 22:44:42 mail opendkim[9]: 4A1B2C3D4E: DKIM-Signature field added (s=mail2024, d=example.com)
Nov 28 22:44:42 mail opendkim[9]: 4A1B2C3D4E: DKIM-Signature field added (s=esp1, d=esp.example.net)
Nov 28 22:44:42 mail opendkim[9]: 9F9F9F9F9F: DKIM-Signature field added (s=ghost, d=example.com)
Nov 28 22:44:42 other opendkim[9]: 5B2C3D4E5F: DKIM-Signature field added (s=wrong-host, d=example.com)
Nov 28 22:44:42 mail postfix-out/qmgr[3]: 4A1B2C3D4E: from=<app@example.com>, size=1234, nrcpt=2 (queue active)
Nov 28 22:44:42 mail postfix-out/smtpd[1]: 5B2C3D4E5F: client=app.example.com[192.0.2.10]
Nov 28 22:44:42 mail postfix-out/qmgr[3]: 5B2C3D4E5F: from=<app@example.com>, size=99, nrcpt=1 (queue active)
Nov 28 22:44:43 mail postfix-out/smtp[4]: 4A1B2C3D4E: to=<a@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 28 22:44:43 mail postfix-out/smtp[4]: 4A1B2C3D4E: to=<b@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.1, status=deferred (connect timed out)
Nov 28 22:44:43 mail postfix-out/smtp[4]: 5B2C3D4E5F: to=<c@example.net>, relay=mx.example.net[198.51.100.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
";
    let (a, _, c) = run(CorrelatorConfig::default(), log);
    assert_eq!(a.len(), 3);
    let signed: Vec<(String, String)> = a[0]
        .dkim_signatures
        .iter()
        .map(|s| (s.domain.clone(), s.selector.clone()))
        .collect();
    // Lower-cased, and the duplicate that differed only in case is kept once.
    assert_eq!(
        signed,
        vec![
            ("example.com".to_string(), "mail2024".to_string()),
            ("esp.example.net".to_string(), "esp1".to_string()),
        ]
    );
    assert_eq!(a[1].dkim_signatures, a[0].dkim_signatures);
    assert!(a[2].dkim_signatures.is_empty(), "{:?}", a[2]);
    // The ghost signature did not start a message: only the two real ones (one still has a deferred recipient).
    assert_eq!(c.in_flight(), 2);
    // On the wire: present when signed, absent otherwise (older servers see what they always saw).
    let json = serde_json::to_value(&a[0]).unwrap();
    assert_eq!(json["dkim_signatures"][0]["selector"], "mail2024");
    assert!(
        serde_json::to_value(&a[2])
            .unwrap()
            .get("dkim_signatures")
            .is_none()
    );
}
