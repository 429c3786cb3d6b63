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

/// `n` rows with distinct keys `key-0..key-n` in one 5-minute window.
fn many_keys(n: usize) -> RecordBatch {
    use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray};
    use std::sync::Arc;
    let ts = TimestampMillisecondArray::from(vec![1_000i64; n]).with_timezone("UTC");
    let keys = StringArray::from_iter_values(
        (0..n).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)),
    );
    let bytes = Int64Array::from_iter_values((0..n as i64).map(|i| i * 7 % 5000));
    RecordBatch::try_from_iter([
        ("timestamp", Arc::new(ts) as _),
        ("host", Arc::new(keys) as _),
        ("bytes", Arc::new(bytes) as _),
    ])
    .unwrap()
}

/// Snapshot and restore of an aggregate holding 1 M keys (count and sum per host in an open
/// window), as a checkpoint takes and a restart reads them.
fn checkpoint(c: &mut Criterion) {
    let n = 1_000_000;
    let input = many_keys(n);
    let cfg = AggregateConfig {
        time_field: Some("timestamp".into()),
        window: WindowSpec::tumbling(300_000),
        allowed_lateness: weir_core::config::Duration::from_ms(0),
        group_by: vec!["host".into()],
        aggregates: vec![
            AggSpec {
                func: AggFn::Count,
                field: None,
                name: None,
            },
            AggSpec {
                func: AggFn::Sum,
                field: Some("bytes".into()),
                name: None,
            },
        ],
    };
    let mut op = Aggregate::new(&cfg, input.schema(), "bench").unwrap();
    let mut out = Emitter::default();
    for chunk in 0..n / 10_000 {
        op.on_batch(&input.slice(chunk * 10_000, 10_000), &mut out)
            .unwrap();
    }
    assert_eq!(op.state_keys(), n);
    let snap = op.snapshot().unwrap();
    eprintln!(
        "aggregate state of {n} keys: {} bytes, {:.1} bytes per key",
        snap.len(),
        snap.len() as f64 / n as f64
    );
    let mut group = c.benchmark_group("weir_window::checkpoint_1M_keys");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("snapshot", |b| b.iter(|| op.snapshot().unwrap().len()));
    group.bench_function("restore", |b| {
        b.iter(|| {
            let mut fresh = Aggregate::new(&cfg, input.schema(), "bench").unwrap();
            fresh.restore(&snap).unwrap();
            fresh.state_keys()
        })
    });
    group.finish();
}

criterion_group!(checkpoints, checkpoint);
criterion_main!(benches, checkpoints);
