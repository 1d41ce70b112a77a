//! Parser and correlator throughput on the lab's real log (or any log named by RELAYWATCH_BENCH_LOG).
//! The end-to-end figure with file reading is `relaywatch-agent parse --stats` on gen_big_log.py's output.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relaywatch_postfix::{Correlator, Parser, ParserConfig};

fn log() -> Option<Vec<u8>> {
    let path = std::env::var("RELAYWATCH_BENCH_LOG").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/lab/maillog.sample"
        )
        .to_string()
    });
    match std::fs::read(&path) {
        Ok(data) => Some(data),
        Err(e) => {
            eprintln!(
                "SKIPPED: cannot read {path}: {e}; set RELAYWATCH_BENCH_LOG to a Postfix log"
            );
            None
        }
    }
}

fn bench(c: &mut Criterion) {
    let Some(data) = log() else { return };
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let parser = Parser::new(ParserConfig {
        tag_headers: vec!["X-Delivery-Tag".into()],
        reference_unix: 1_796_000_000,
        ..Default::default()
    });
    let mut group = c.benchmark_group("postfix");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_line", |b| {
        b.iter(|| {
            let mut unknown = 0usize;
            for l in &lines {
                unknown += usize::from(parser.parse_line(l).is_unknown());
            }
            unknown
        })
    });
    group.bench_function("parse_and_correlate", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            let mut correlator = Correlator::default();
            let mut records = 0usize;
            for l in &lines {
                correlator.push(&parser.parse_line(l), &mut out);
                records += out.len();
                out.clear();
            }
            correlator.flush(&mut out);
            records + out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
