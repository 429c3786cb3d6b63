//! Aggregate throughput: tumbling vs sliding (size/slide = 300 and 600), count per status, on
//! parsed batches of generated CLF lines. Sliding cost should not grow with size/slide.
//! Top-K on a Nexmark-q5-like stream of bids (the auctions with the most bids per sliding
//! window), beside the aggregate that counts the same windows.

#![allow(missing_docs)]

use arrow_array::RecordBatch;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Operator, Parser};
use weir_format::clf::{ClfConfig, ClfParser};
use weir_source::gen::ClfGen;
use weir_window::topk::Approximate;
use weir_window::{AggFn, AggSpec, Aggregate, AggregateConfig, TopK, TopKConfig, WindowSpec};

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
    let op = Aggregate::new(cfg, input[0].schema(), "bench").unwrap();
    drive(op, input)
}

/// Feeds `input` to `op` with a watermark 30 s behind the newest event after each batch, as
/// a source node would; returns the messages it emitted.
fn drive(mut op: impl Operator, input: &[RecordBatch]) -> usize {
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

/// Nexmark-like bids (`date_time`, `auction`) in batches of 8 192, `per_sec` bids per second
/// of event time, in order: half go to one of the 100 newest auctions (the hot ones), half to
/// one of the 10 000 newest; a new auction opens every 50 bids.
fn bids(n: usize, per_sec: i64) -> Vec<RecordBatch> {
    use arrow_array::{Int64Array, TimestampMillisecondArray};
    use std::sync::Arc;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ts, mut auction) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n as i64 {
        ts.push(1_600_000_000_000 + i * 1000 / per_sec);
        let newest = 10_000 + i / 50;
        let r = next();
        let back = if r & 1 == 0 { r % 100 } else { r % 10_000 };
        auction.push(newest - (back >> 1) as i64);
    }
    (0..n)
        .step_by(8192)
        .map(|at| {
            let end = (at + 8192).min(n);
            let t = TimestampMillisecondArray::from(ts[at..end].to_vec()).with_timezone("UTC");
            RecordBatch::try_from_iter([
                ("date_time", Arc::new(t) as _),
                (
                    "auction",
                    Arc::new(Int64Array::from(auction[at..end].to_vec())) as _,
                ),
            ])
            .unwrap()
        })
        .collect()
}

/// Top-K of auctions by bids (k = 1 is Nexmark q5, "hot items"; k = 10 a leaderboard), and
/// the aggregate that counts bids per auction over the same windows (it emits every
/// auction's count at every slide), 1 M bids.
fn top_k(c: &mut Criterion) {
    let n = 1_000_000;
    let count = AggSpec {
        func: AggFn::Count,
        field: None,
        name: None,
    };
    let mut group = c.benchmark_group("weir_window::TopK");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    // 10 s / 2 s at 10 000 bids/s (Nexmark's default rate), 10 min / 1 s at 1 000 bids/s.
    for (name, window, per_sec) in [
        ("10s_every_2s", WindowSpec::sliding(10_000, 2_000), 10_000),
        ("10m_every_1s", WindowSpec::sliding(600_000, 1_000), 1_000),
    ] {
        let input = bids(n, per_sec);
        let schema = input[0].schema();
        // Exact, and approximate with 100 counters per pane (a pane of 10 min / 1 s holds
        // ~700 auctions, so Space-Saving evicts).
        for (k, counters) in [(1, None), (10, None), (10, Some(100))] {
            let cfg = TopKConfig {
                time_field: Some("date_time".into()),
                window,
                allowed_lateness: weir_core::config::Duration::from_ms(0),
                key: vec!["auction".into()],
                group_by: Vec::new(),
                by: count.clone(),
                k,
                emit: weir_window::topk::Emit::All,
                approximate: counters.map(|counters| Approximate { counters }),
            };
            let label = match counters {
                None => format!("{name}_k{k}"),
                Some(c) => format!("{name}_k{k}_approximate_{c}"),
            };
            group.bench_function(label, |b| {
                b.iter(|| drive(TopK::new(&cfg, schema.clone(), "bench").unwrap(), &input))
            });
        }
        let cfg = AggregateConfig {
            time_field: Some("date_time".into()),
            window,
            allowed_lateness: weir_core::config::Duration::from_ms(0),
            group_by: vec!["auction".into()],
            aggregates: vec![count.clone()],
        };
        group.bench_function(format!("{name}_aggregate_all_rows"), |b| {
            b.iter(|| {
                drive(
                    Aggregate::new(&cfg, schema.clone(), "bench").unwrap(),
                    &input,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(top_ks, top_k);

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
criterion_main!(benches, top_ks, checkpoints);
