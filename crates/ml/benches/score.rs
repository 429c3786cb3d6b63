//! Scoring throughput of the flat forest: records per second for 50 and 100 trees of an
//! isolation forest (depth 8) and of the unsupervised random forest (depth up to 15), on 38
//! features as KDD Cup 1999's numeric columns. Training time of both on 100,000 records.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir_ml::iforest::{self, IsolationParams};
use weir_ml::rf::{self, ForestParams};
use weir_ml::{Matrix, Rng};

const WIDTH: usize = 38;

/// Records with a mix of heavy-tailed counts, rates in [0, 1] and near-constant flags.
fn records(n: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 0);
    let mut v = Vec::with_capacity(n * WIDTH);
    for _ in 0..n {
        let kind = rng.below(4) as f32;
        for f in 0..WIDTH {
            let u = rng.unit() as f32;
            v.push(match f % 3 {
                0 => (kind * 100.0) / (u + 0.01),
                1 => (u + kind * 0.2).min(1.0),
                _ => f32::from(u < 0.02),
            });
        }
    }
    Matrix::from_rows(WIDTH, v)
}

fn score(c: &mut Criterion) {
    let train = records(100_000, 1);
    let test = records(65_536, 2);
    let mut g = c.benchmark_group("weir_ml::Forest::score");
    g.throughput(Throughput::Elements(test.rows() as u64));
    for trees in [50, 100] {
        let iso = iforest::train(
            &train,
            &IsolationParams {
                trees,
                threads: 2,
                ..Default::default()
            },
            &|| {},
        );
        let forest = rf::train(
            &train,
            &ForestParams {
                trees,
                threads: 2,
                ..Default::default()
            },
            &|| {},
        );
        eprintln!(
            "{trees} trees: iforest {} nodes, depth {}; rf {} nodes, depth {}",
            iso.nodes(),
            iso.depth(),
            forest.nodes(),
            forest.depth()
        );
        let mut out = vec![0.0; test.rows()];
        g.bench_function(BenchmarkId::new("iforest", trees), |b| {
            b.iter(|| iso.score(black_box(test.values()), &mut out))
        });
        g.bench_function(BenchmarkId::new("rf", trees), |b| {
            b.iter(|| forest.score(black_box(test.values()), &mut out))
        });
    }
    g.finish();
}

fn train(c: &mut Criterion) {
    let data = records(100_000, 3);
    let mut g = c.benchmark_group("weir_ml::train");
    g.sample_size(10);
    g.throughput(Throughput::Elements(data.rows() as u64));
    g.bench_function("iforest_100_trees", |b| {
        b.iter(|| {
            iforest::train(
                &data,
                &IsolationParams {
                    threads: 2,
                    ..Default::default()
                },
                &|| {},
            )
        })
    });
    g.bench_function("rf_100_trees", |b| {
        b.iter(|| {
            rf::train(
                &data,
                &ForestParams {
                    threads: 2,
                    ..Default::default()
                },
                &|| {},
            )
        })
    });
    g.finish();
}

criterion_group!(benches, score, train);
criterion_main!(benches);
