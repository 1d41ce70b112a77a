//! Feeds arbitrary bytes, split into lines, through the parser, the correlator, a checkpoint round trip, the
//! renderer and the bounce classifier. Run with `cargo +nightly fuzz run parse_line` in crates/postfix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relaywatch_postfix::render::render_line;
use relaywatch_postfix::{Correlator, Parser, ParserConfig, classify};

fuzz_target!(|data: &[u8]| {
    let parser = Parser::new(ParserConfig {
        reference_unix: 1_796_000_000,
        ..Default::default()
    });
    let mut correlator = Correlator::default();
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let event = parser.parse_line(line);
        if let Some(rendered) = render_line(&event) {
            // A rendered event must parse again without panicking.
            let _ = parser.parse_line(rendered.as_bytes());
        }
        correlator.push(&event, &mut out);
    }
    let state = correlator.checkpoint(&mut out);
    let json = serde_json::to_string(&state).expect("state serialises");
    let back = serde_json::from_str(&json).expect("state deserialises");
    assert!(Correlator::restore(Default::default(), back).is_ok());
    let text = String::from_utf8_lossy(data);
    let _ = classify(None, &text);
});
