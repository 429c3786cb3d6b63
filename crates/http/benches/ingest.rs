//! HTTP ingest's own work per request: checking and cutting a body into records (NDJSON, a
//! JSON array), on batches of 8192 generated clicks as `weir gen clicks --to` sends them.
//! The end-to-end figure (client, loopback, server, pipeline) is `bench/ingest.sh`'s.

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::{ReadOutcome, Source};
use weir_http::ingest::{split, BodyKind};
use weir_source::gen::{GenConfig, GenSource};

/// One batch of `n` clicks as NDJSON.
fn clicks(n: u64) -> Vec<u8> {
    let cfg: GenConfig = toml::from_str(&format!("kind = \"clicks\"\ncount = {n}")).unwrap();
    let mut src = GenSource::new(&cfg).unwrap();
    let mut buf = Vec::new();
    while src
        .read(&mut buf, std::time::Duration::from_millis(10))
        .unwrap()
        != ReadOutcome::Eof
    {}
    buf
}

fn bench(c: &mut Criterion) {
    let ndjson = clicks(8192);
    let mut array = b"[".to_vec();
    for (i, line) in ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(line);
    }
    array.push(b']');
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(8192));
    g.bench_function("split ndjson 8192 clicks", |b| {
        b.iter(|| split(BodyKind::Lines, &ndjson, &[]).records)
    });
    g.bench_function("split json array 8192 clicks", |b| {
        b.iter(|| split(BodyKind::Json, &array, &[]).records)
    });
    g.bench_function("split ndjson + received_field", |b| {
        b.iter(|| {
            split(
                BodyKind::Lines,
                &ndjson,
                &[("received_at", "2026-12-03T10:00:00.000Z")],
            )
            .records
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
