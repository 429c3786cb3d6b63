//! JSON-lines and CSV parser throughput on the records of the reference jobs: the DDOS
//! messages (4 declared fields, from the generator) and KDD Cup 1999 rows (41 features and a
//! label) from `../shared/data/kddcup99`, as CSV and as JSON objects.

#![allow(missing_docs)]

use std::io::Read;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::deadletter::DeadLetters;
use weir_format::{build_parser, FormatConfig};
use weir_source::gen::{DdosGen, LineGen};

const ROWS: usize = 100_000;

/// A column's name and declared type.
type Column = (String, &'static str);

/// The first `ROWS` rows of the KDD 10 % file and the column names (label last), or `None`
/// when `../shared/data` is not here.
fn kdd() -> Option<(Vec<u8>, Vec<Column>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/kddcup99");
    let Ok(f) = std::fs::File::open(dir.join("kddcup.data_10_percent.gz")) else {
        eprintln!("skipping the KDD benches: {} is not here", dir.display());
        return None;
    };
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut text)
        .unwrap();
    let end = memchr::memchr_iter(b'\n', &text).nth(ROWS - 1).unwrap() + 1;
    text.truncate(end);
    let names = std::fs::read_to_string(dir.join("kddcup.names")).unwrap();
    let mut cols: Vec<Column> = names
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, kind)| {
            let ty = match (kind, n) {
                ("symbolic.", _) => "string",
                (_, n) if n.ends_with("rate") => "float",
                _ => "uint",
            };
            (n.to_string(), ty)
        })
        .collect();
    cols.push(("label".into(), "string"));
    Some((text, cols))
}

fn fields(cols: &[Column]) -> String {
    let f: Vec<String> = cols
        .iter()
        .map(|(n, t)| format!(r#"{{"name":"{n}","type":"{t}"}}"#))
        .collect();
    f.join(",")
}

/// The KDD rows as JSON objects, numbers as numbers.
fn as_json(csv: &[u8], cols: &[Column]) -> Vec<u8> {
    let mut out = String::new();
    for line in std::str::from_utf8(csv).unwrap().lines() {
        out.push('{');
        for (i, ((name, ty), v)) in cols.iter().zip(line.split(',')).enumerate() {
            if i > 0 {
                out.push(',');
            }
            match *ty {
                "string" => out.push_str(&format!(r#""{name}":"{v}""#)),
                _ => out.push_str(&format!(r#""{name}":{v}"#)),
            }
        }
        out.push_str("}\n");
    }
    out.into_bytes()
}

fn run(c: &mut Criterion, group: &str, name: &str, cfg: &str, data: &[u8]) {
    let cfg: FormatConfig = serde_json::from_str(cfg).unwrap();
    let mut p = build_parser(&cfg, None).unwrap();
    let mut dead = DeadLetters::new("bench");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(ROWS as u64));
    let mut checked = false;
    // Inside the bench's closure, which runs only when the filter selects it, so that a
    // profile of one bench holds that bench's parsing alone.
    g.bench_function(name, |b| {
        // A bench over input the parser refuses would measure the dead-letter path.
        if !checked {
            p.parse_chunk(data, 1, &mut dead);
            assert_eq!(p.finish().num_rows(), ROWS, "{name}: {:?}", dead.take());
            checked = true;
        }
        b.iter(|| {
            p.parse_chunk(data, 1, &mut dead);
            p.finish()
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut ddos = Vec::new();
    let mut g = DdosGen::new(1, 1000, 0.01, 1_700_000_000_000, 1000.0);
    for _ in 0..ROWS {
        g.line(&mut ddos);
    }
    let ddos_cfg = r#"{"type":"json","fields":[
        {"name":"timestamp","type":"timestamp","required":true},
        {"name":"type","type":"string"},
        {"name":"target_ip","type":"string"},
        {"name":"source_ip","type":"string"}]}"#;
    run(
        c,
        "weir_format::json::JsonParser",
        "ddos_4_fields",
        ddos_cfg,
        &ddos,
    );
    let Some((csv, cols)) = kdd() else {
        return;
    };
    let f = fields(&cols);
    let json = as_json(&csv, &cols);
    let json_cfg = format!(r#"{{"type":"json","fields":[{f}]}}"#);
    run(
        c,
        "weir_format::json::JsonParser",
        "kdd_42_fields",
        &json_cfg,
        &json,
    );
    let csv_cfg = format!(r#"{{"type":"csv","header":false,"fields":[{f}]}}"#);
    run(
        c,
        "weir_format::csv::CsvParser",
        "kdd_42_fields",
        &csv_cfg,
        &csv,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
