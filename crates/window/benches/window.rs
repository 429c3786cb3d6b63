//! Aggregate throughput: tumbling vs sliding (size/slide = 300 and 600), count per status, on
//! parsed batches of generated CLF lines. Sliding cost should not grow with size/slide.

#![allow(missing_docs)]

use arrow_array::RecordBatch;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Operator, Parser};
use weir_format::clf::{ClfConfig, ClfParser};
use weir_source::gen::ClfGen;
use weir_window::{AggFn, AggSpec, Aggregate, AggregateConfig, WindowSpec};

fn batches(lines: usize, per_batch: usize) -> Vec<RecordBatch> {
    let mut g = ClfGen::new(1);
    let mut p = ClfParser::new(
        &ClfConfig {
            malformed_status: Some(999),
        },
        Some(&["timestamp".into(), "status".into()]),
    )
    .unwrap();
    let mut dead = DeadLetters::new("bench");
    (0..lines / per_batch)
        .map(|_| {
            let mut buf = Vec::new();
            for _ in 0..per_batch {
                g.line(&mut buf);
            }
            p.parse_chunk(&buf, 1, &mut dead);
            p.finish()
        })
        .collect()
}

fn run(cfg: &AggregateConfig, input: &[RecordBatch]) -> usize {
    let mut op = Aggregate::new(cfg, input[0].schema(), "bench").unwrap();
    let mut out = Emitter::default();
    let mut rows = 0;
    for b in input {
        op.on_batch(b, &mut out).unwrap();
        // Watermark: the newest event time minus a 30 s bound, as a source node would send.
        let max = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::TimestampMillisecondArray>()
            .unwrap()
            .values()
            .iter()
            .max()
            .copied()
            .unwrap();
        op.on_watermark(max - 30_000, &mut out).unwrap();
        rows += out.drain().count();
    }
    op.on_end(&mut out).unwrap();
    rows + out.drain().count()
}

fn bench(c: &mut Criterion) {
    let lines = 200_000;
    let input = batches(lines, 10_000);
    let cfg = |window: WindowSpec| AggregateConfig {
        time_field: Some("timestamp".into()),
        window,
        allowed_lateness: weir_core::config::Duration::from_ms(0),
        group_by: vec!["status".into()],
        aggregates: vec![AggSpec {
            func: AggFn::Count,
            field: None,
            name: None,
        }],
    };
    let mut group = c.benchmark_group("weir_window::Aggregate");
    group.throughput(Throughput::Elements(lines as u64));
    for (name, w) in [
        ("tumbling_5m", WindowSpec::tumbling(300_000)),
        ("sliding_5m_every_1s", WindowSpec::sliding(300_000, 1_000)),
        ("sliding_10m_every_1s", WindowSpec::sliding(600_000, 1_000)),
    ] {
        let cfg = cfg(w);
        group.bench_function(name, |b| {
            b.iter_batched(|| (), |_| run(&cfg, &input), BatchSize::SmallInput)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
