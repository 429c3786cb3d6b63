//! Expression evaluation on 8,192-row batches shaped like the bundled jobs' records: the
//! filters, keys and conditions the examples use, a batch at a time.

#![allow(missing_docs)]

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt16Array, UInt64Array};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_expr::Expr;
use weir_testkit::Rng;

const ROWS: usize = 8192;

/// Deterministic rows: statuses mostly 200 with some 3xx-5xx, a few null byte counts, a
/// quarter of the messages DDOS with a target, paths under a handful of folders.
fn batch() -> RecordBatch {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut status = Vec::with_capacity(ROWS);
    let mut bytes = Vec::with_capacity(ROWS);
    let mut kind = Vec::with_capacity(ROWS);
    let mut target = Vec::with_capacity(ROWS);
    let mut path = Vec::with_capacity(ROWS);
    let mut method = Vec::with_capacity(ROWS);
    for i in 0..ROWS {
        let r = rng.next_u64();
        status.push([200u16, 200, 200, 200, 304, 404, 500, 503][(r % 8) as usize]);
        bytes.push((!r.is_multiple_of(17)).then_some((r >> 8) % 100_000));
        let ddos = (r >> 20).is_multiple_of(4);
        kind.push(if ddos { "DDOS" } else { "SCAN" });
        target.push(
            (ddos || (r >> 24).is_multiple_of(3))
                .then(|| format!("10.0.{}.{}", (r >> 30) % 256, i % 256)),
        );
        let dir = [
            "/images/",
            "/shuttle/missions/",
            "/history/apollo/",
            "/cgi-bin/",
            "/",
        ][((r >> 40) % 5) as usize];
        path.push(format!(
            "{dir}file{}.{}",
            (r >> 44) % 1000,
            ["gif", "html", "jpg"][((r >> 54) % 3) as usize]
        ));
        method.push(["GET", "GET", "GET", "POST", "HEAD"][((r >> 58) % 5) as usize]);
    }
    RecordBatch::try_from_iter([
        ("status", Arc::new(UInt16Array::from(status)) as ArrayRef),
        ("bytes", Arc::new(UInt64Array::from(bytes)) as _),
        ("type", Arc::new(StringArray::from(kind)) as _),
        ("target_ip", Arc::new(StringArray::from(target)) as _),
        ("path", Arc::new(StringArray::from(path)) as _),
        ("method", Arc::new(StringArray::from(method)) as _),
    ])
    .unwrap()
}

/// Expressions both engines accept; `WEIR_EXPR_BENCH_EXTRA=1` adds the function library's.
fn cases() -> Vec<(&'static str, &'static str)> {
    let mut cases = vec![
        ("mask_compare", "status >= 500"),
        (
            "mask_and_is_not_null",
            "type = 'DDOS' AND target_ip IS NOT NULL",
        ),
        ("mask_in_list", "status IN (404, 500, 503)"),
        ("value_arith", "bytes / 1024 + status"),
        ("value_class", "status / 100"),
    ];
    if std::env::var_os("WEIR_EXPR_BENCH_EXTRA").is_some() {
        cases.extend([
            ("mask_like", "path LIKE '/images/%'"),
            ("mask_lower", "lower(method) = 'get'"),
            ("value_case", "CASE WHEN status >= 500 THEN 1 ELSE 0 END"),
            ("value_coalesce", "coalesce(bytes, 0)"),
            ("mask_regexp_like", "regexp_like(path, 'gif$')"),
            ("value_substr", "substr(path, 1, 7)"),
        ]);
    }
    cases
}

fn bench(c: &mut Criterion) {
    let b = batch();
    let mut group = c.benchmark_group("weir_expr");
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, text) in cases() {
        let e = Expr::parse(text).unwrap().bind(&b.schema()).unwrap();
        if name.starts_with("mask") {
            group.bench_function(name, |bench| bench.iter(|| e.eval_mask_rows(&b).unwrap()));
        } else {
            group.bench_function(name, |bench| bench.iter(|| e.eval_rows(&b).unwrap()));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
