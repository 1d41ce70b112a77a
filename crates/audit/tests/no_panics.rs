//! Whatever the DNS says, the rules answer with findings, never a panic, and the audit settles.

use proptest::prelude::*;
use relaywatch_audit::{Answer, Answers, AuditInput, Rdata, RecordType, evaluate};

fn record() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "v=spf1( [-+~?]?(all|include:[a-z.%{}]{0,12}|a(:[a-z.]{0,8})?(/[0-9]{1,3})?(//[0-9]{1,3})?|mx|ptr|ip4:[0-9./]{0,18}|ip6:[0-9a-f:/]{0,20}|exists:[a-z.%{}]{0,10}|redirect=[a-z.]{0,10}|[a-z]{1,5}=[a-z]{0,4})){0,8}",
        "v=DMARC1(; ?(p|sp|np|t|psd|pct|rua|ruf|fo|adkim|rf|ri|x)=[a-z0-9:@.,!]{0,12}){0,8};?",
        "v=DKIM1(; ?(k|p|t|h|s)=[A-Za-z0-9+/=:]{0,40}){0,4}",
        "v=STSv1; id=[a-z0-9!]{0,40}",
        "v=TLSRPTv1(; rua=[a-z:@./,]{0,30})?",
        "v=BIMI1(; [la]=[a-z:/.]{0,20}){0,2}",
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::NxDomain),
        Just(Answer::Failed("timed out".into())),
        prop::collection::vec(record(), 0..3).prop_map(|v| Answer::Records(
            v.into_iter()
                .map(|t| Rdata::Txt(vec![t.into_bytes()]))
                .collect()
        )),
        prop::collection::vec((any::<u16>(), "[a-z0-9.]{0,12}"), 0..12).prop_map(|v| {
            Answer::Records(
                v.into_iter()
                    .map(|(preference, exchange)| Rdata::Mx {
                        preference,
                        exchange,
                    })
                    .collect(),
            )
        }),
        prop::collection::vec(any::<[u8; 4]>(), 0..3)
            .prop_map(|v| Answer::Records(v.into_iter().map(|o| Rdata::A(o.into())).collect())),
        "[a-z0-9.-]{0,20}"
            .prop_map(|n| Answer::Records(vec![Rdata::Ptr(n.clone()), Rdata::Cname(n)])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn any_answers_settle_without_panicking(answers in prop::collection::vec(answer(), 1..40)) {
        let input = AuditInput {
            domain: "example.com".into(),
            selectors: vec!["s1".into()],
            sending_ips: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            helo: Some("mail.example.com".into()),
            daily_volume: Some(10_000),
            ..Default::default()
        };
        let mut known = Answers::new();
        let mut pool = answers.into_iter().cycle();
        let mut rounds = 0;
        loop {
            let e = evaluate(&input, &known);
            prop_assert!(e.report.scorecard.score <= 100);
            if e.missing.is_empty() {
                break;
            }
            rounds += 1;
            prop_assert!(rounds < 60, "no fixpoint after 60 rounds");
            for q in e.missing {
                let a = pool.next().unwrap();
                // A and AAAA questions get address-shaped answers half of the time.
                let a = match (q.rtype, &a) {
                    (RecordType::Aaaa, Answer::Records(_)) => Answer::Records(vec![Rdata::Aaaa("2001:db8::1".parse().unwrap())]),
                    _ => a,
                };
                known.insert(q, a);
            }
        }
    }
}
