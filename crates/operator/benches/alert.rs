//! Filter + alert throughput on parsed DDOS messages (the ddos-alert job minus parsing).

#![allow(missing_docs)]

use arrow_array::RecordBatch;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::config::Duration;
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Operator};
use weir_format::{build_parser, FormatConfig};
use weir_operator::alert::{Alert, AlertConfig};
use weir_operator::filter::{Filter, FilterConfig};
use weir_source::gen::{DdosGen, LineGen};

fn batches(n: usize, per_batch: usize, attack_share: f64) -> Vec<RecordBatch> {
    let fmt: FormatConfig = serde_json::from_str(
        r#"{"type":"json","fields":[{"name":"timestamp","type":"timestamp"},{"name":"type","type":"string"},
            {"name":"target_ip","type":"string"},{"name":"source_ip","type":"string"}]}"#,
    )
    .unwrap();
    let mut p = build_parser(&fmt, None).unwrap();
    let mut g = DdosGen::new(1, 1000, attack_share, 1_700_000_000_000, 1000.0);
    let mut dead = DeadLetters::new("bench");
    (0..n / per_batch)
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

fn bench(c: &mut Criterion) {
    let n = 200_000;
    // 1 % attacks (2 % of messages pass the filter), and 100 % (every message reaches the alert).
    let mixed = batches(n, 10_000, 0.01);
    let all_ddos = batches(n, 10_000, 1.0);
    let schema = mixed[0].schema();
    let mut group = c.benchmark_group("weir_operator::alert::Alert");
    group.throughput(Throughput::Elements(n as u64));
    let contributors = vec!["timestamp".to_string(), "source_ip".to_string()];
    for (name, fields, input) in [
        ("filter_alert", vec![], &mixed),
        (
            "filter_alert_with_contributors",
            contributors.clone(),
            &mixed,
        ),
        ("all_ddos_filter_alert", vec![], &all_ddos),
        (
            "all_ddos_filter_alert_with_contributors",
            contributors,
            &all_ddos,
        ),
    ] {
        let cfg = AlertConfig {
            time_field: "timestamp".into(),
            key: vec!["target_ip".into()],
            window: Duration::from_ms(300_000),
            threshold: 10,
            fields,
            max_contributors: 10,
            allowed_lateness: Duration::from_ms(0),
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let f = Filter::new(
                        &FilterConfig {
                            condition: "type = 'DDOS'".into(),
                        },
                        schema.clone(),
                        "f",
                    )
                    .unwrap();
                    (f, Alert::new(&cfg, schema.clone(), "a").unwrap())
                },
                |(mut f, mut a)| {
                    let mut out = Emitter::default();
                    let mut alerts = 0;
                    for b in input {
                        f.on_batch(b, &mut out).unwrap();
                        for (_, m) in out.out.drain(..).collect::<Vec<_>>() {
                            if let weir_core::Message::Data(kept) = m {
                                let mut o2 = Emitter::default();
                                a.on_batch(&kept, &mut o2).unwrap();
                                alerts += o2.out.len();
                            }
                        }
                    }
                    alerts
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
