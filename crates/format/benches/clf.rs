//! CLF parser throughput on generated NASA-like lines (0.5 % malformed).

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::deadletter::DeadLetters;
use weir_core::Parser;
use weir_format::clf::{ClfConfig, ClfParser};
use weir_format::template::{Dialect, TemplateConfig, TemplateParser};
use weir_source::gen::ClfGen;

fn input(lines: usize) -> Vec<u8> {
    let mut g = ClfGen::new(1);
    let mut buf = Vec::new();
    for _ in 0..lines {
        g.line(&mut buf);
    }
    buf
}

fn bench(c: &mut Criterion) {
    let lines = 100_000;
    let data = input(lines);
    let cfg = ClfConfig {
        malformed_status: Some(999),
    };
    let mut group = c.benchmark_group("weir_format::clf::ClfParser");
    group.throughput(Throughput::Elements(lines as u64));
    let projections: [(&str, Option<Vec<String>>); 2] = [
        (
            "timestamp_status",
            Some(vec!["timestamp".into(), "status".into()]),
        ),
        ("all_fields", None),
    ];
    for (name, proj) in projections {
        let mut p = ClfParser::new(&cfg, proj.as_deref()).unwrap();
        let mut dead = DeadLetters::new("bench");
        group.bench_function(name, |b| {
            b.iter(|| {
                p.parse_chunk(&data, 1, &mut dead);
                dead.take();
                p.finish()
            })
        });
    }
    group.throughput(Throughput::Bytes(data.len() as u64));
    let mut p = ClfParser::new(&cfg, Some(&["timestamp".into(), "status".into()])).unwrap();
    let mut dead = DeadLetters::new("bench");
    group.bench_function("timestamp_status_bytes", |b| {
        b.iter(|| {
            p.parse_chunk(&data, 1, &mut dead);
            dead.take();
            p.finish()
        })
    });
    group.finish();

    // The same lines read by the Apache `common` template: the target is within 20 %
    // of the CLF parser.
    let mut group = c.benchmark_group("weir_format::template::TemplateParser");
    group.throughput(Throughput::Elements(lines as u64));
    let tcfg = TemplateConfig {
        log_format: "common".into(),
        malformed_status: Some(999),
    };
    for (name, proj) in [
        (
            "timestamp_status",
            Some(vec!["timestamp".to_string(), "status".to_string()]),
        ),
        ("all_fields", None),
    ] {
        let mut p = TemplateParser::new(Dialect::Apache, &tcfg, proj.as_deref()).unwrap();
        let mut dead = DeadLetters::new("bench");
        group.bench_function(name, |b| {
            b.iter(|| {
                p.parse_chunk(&data, 1, &mut dead);
                dead.take();
                p.finish()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
