//! Sink throughput: window result rows (window_start, window_end, status, count, bytes) in
//! batches of 10 000, written as JSON lines, to a Parquet table (zstd, hourly partitions) and
//! to PostgreSQL (COPY + upsert; skipped if no server on 127.0.0.1:5432). And the archive:
//! 200 000 NASA log lines (the bundled sample, repeated) with their timestamps, one hour
//! folder, in batches of 10 000, written as lines with each codec.

#![allow(missing_docs)]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Int64Array, RecordBatch, TimestampMillisecondArray, UInt16Array};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::config::Duration;
use weir_core::Sink;
use weir_sink::archive::{ArchiveCodec, ArchiveConfig, ArchiveFormat, ArchiveSink};
use weir_sink::jsonl::{JsonlConfig, JsonlSink};
use weir_sink::parquet::{ParquetConfig, ParquetSink};
use weir_sink::postgres::{PostgresConfig, PostgresSink};

const ROWS: usize = 200_000;
const BATCH: usize = 10_000;

fn batches() -> Vec<RecordBatch> {
    (0..ROWS / BATCH)
        .map(|b| {
            let start: Vec<i64> = (0..BATCH)
                .map(|i| ((b * BATCH + i) / 20) as i64 * 1_000)
                .collect();
            let end: Vec<i64> = start.iter().map(|s| s + 300_000).collect();
            RecordBatch::try_from_iter([
                (
                    "window_start",
                    Arc::new(TimestampMillisecondArray::from(start).with_timezone("UTC")) as _,
                ),
                (
                    "window_end",
                    Arc::new(TimestampMillisecondArray::from(end).with_timezone("UTC")) as _,
                ),
                (
                    "status",
                    Arc::new(UInt16Array::from_iter_values(
                        (0..BATCH).map(|i| 200 + (i % 20) as u16),
                    )) as _,
                ),
                (
                    "count",
                    Arc::new(Int64Array::from_iter_values(
                        (0..BATCH as i64).map(|i| i % 97),
                    )) as _,
                ),
                (
                    "bytes",
                    Arc::new(Int64Array::from_iter_values(
                        (0..BATCH as i64).map(|i| i * 31),
                    )) as _,
                ),
            ])
            .unwrap()
        })
        .collect()
}

fn run(sink: &mut dyn Sink, input: &[RecordBatch]) {
    for b in input {
        sink.write(b).unwrap();
    }
    sink.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    let input = batches();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("weir_sink");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("jsonl", |b| {
        b.iter(|| {
            let cfg = JsonlConfig {
                path: dir.path().join("out.jsonl"),
            };
            run(&mut JsonlSink::create(&cfg).unwrap(), &input)
        })
    });
    g.bench_function("parquet_zstd_hourly", |b| {
        b.iter(|| {
            let cfg = ParquetConfig::at(dir.path().join("table"));
            run(&mut ParquetSink::create(&cfg).unwrap(), &input)
        })
    });
    let url = "host=127.0.0.1 port=5432 user=postgres dbname=test";
    match postgres::Client::connect(url, postgres::NoTls) {
        Ok(mut client) => {
            g.bench_function("postgres_upsert", |b| {
                b.iter(|| {
                    client
                        .batch_execute("DROP TABLE IF EXISTS weir_bench_sink")
                        .unwrap();
                    let cfg = PostgresConfig {
                        url: url.into(),
                        table: "weir_bench_sink".into(),
                        key: vec!["window_start".into(), "status".into()],
                        batch_rows: BATCH,
                        retries: 0,
                        max_backoff: Duration::from_ms(1000),
                    };
                    run(&mut PostgresSink::new(&cfg), &input)
                })
            });
        }
        Err(e) => eprintln!("skipping postgres_upsert: {e}"),
    }
    g.finish();
}

/// The bundled NASA sample's 10 000 lines (1 MiB) repeated to `ROWS`. Members are compressed
/// independently from 1 MiB of input each, so no codec can match an earlier copy.
fn raw_lines() -> (RecordBatch, u64) {
    use std::io::Read;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/data/nasa_jul95_first10000.log.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().cycle().take(ROWS).collect();
    let bytes = lines.iter().map(|l| l.len() as u64 + 1).sum();
    // 10 ms apart: one hour folder, as a busy server fills it.
    let times: Vec<i64> = (0..lines.len() as i64)
        .map(|i| 804_571_200_000 + i * 10)
        .collect();
    let b = RecordBatch::try_from_iter([
        (
            "timestamp",
            Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")) as _,
        ),
        ("line", Arc::new(arrow_array::StringArray::from(lines)) as _),
    ])
    .unwrap();
    (b, bytes)
}

fn bench_archive(c: &mut Criterion) {
    let (all, bytes) = raw_lines();
    let input: Vec<RecordBatch> = (0..ROWS / BATCH)
        .map(|i| all.slice(i * BATCH, BATCH))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("weir_sink::archive");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    for (name, codec, level) in [
        ("lines_gzip6", ArchiveCodec::Gzip, None),
        ("lines_gzip1", ArchiveCodec::Gzip, Some(1)),
        ("lines_zstd3", ArchiveCodec::Zstd, None),
        ("lines_none", ArchiveCodec::None, None),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let path = dir.path().join(name);
                let _ = std::fs::remove_dir_all(&path);
                let cfg = ArchiveConfig {
                    format: ArchiveFormat::Lines,
                    compression: Some(codec),
                    level,
                    ..ArchiveConfig::at(path)
                };
                run(&mut ArchiveSink::new(&cfg), &input)
            })
        });
    }
    // The codec alone on one thread, the same 1 MiB members: what the pool is measured against.
    let text: Vec<u8> = {
        let lines = all.column(1).as_string::<i32>();
        let mut t = Vec::new();
        for l in lines.iter().flatten() {
            t.extend_from_slice(l.as_bytes());
            t.push(b'\n');
        }
        t
    };
    g.bench_function("gzip6_codec_one_thread", |b| {
        b.iter(|| {
            let mut out = 0;
            for chunk in text.chunks(1 << 20) {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                std::io::Write::write_all(&mut e, chunk).unwrap();
                out += e.finish().unwrap().len();
            }
            out
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_archive);
criterion_main!(benches);
