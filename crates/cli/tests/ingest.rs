//! The http source end to end: `weir run` serves `/ingest/<source>`, `weir gen clicks --to`
//! posts to it, and the windowed counts equal those of the same clicks counted here; a record
//! with a bad field becomes a dead letter, a malformed one is refused with 400, and SIGTERM
//! stops the run with every answered record counted.

mod common;

use std::process::Command;

use common::{root, Serving};

const PIPELINE: &str = r#"
[server]
listen = "127.0.0.1:0"

[source.clicks]
type = "http"
ack = "checkpoint"                   # without checkpoints: answered once the pipeline took them
format = { type = "json", fields = [
  { name = "timestamp", type = "timestamp", required = true },
  { name = "action", type = "string", required = true },
] }
event_time = { field = "timestamp", max_out_of_orderness = "5s" }

[stage.per_action]
type = "aggregate"
input = "clicks"
time_field = "timestamp"
window = { type = "tumbling", size = "1m" }
group_by = ["action"]
aggregates = [{ fn = "count" }]

[sink.counts]
type = "jsonl"
input = "per_action"
path = "counts.jsonl"

[sink.bad]
type = "jsonl"
input = "clicks.errors"
path = "bad.jsonl"
"#;

/// Event times start here in both runs of the generator (its default is the wall clock, so
/// the oracle's run could fall into other minutes).
const START: &str = "2026-12-01T10:00:00Z";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn clicks_posted_over_http_are_counted_like_the_same_clicks_read_here() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, PIPELINE).unwrap();
    let run = Serving::start(dir.path(), &file);
    let (url, first) = (run.url.clone(), run.first.clone());
    assert!(
        first.contains(&format!("POST events to {url}/ingest/clicks")),
        "{first}"
    );

    let ingest = format!("{url}/ingest/clicks");
    let gen = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(root())
        .args([
            "gen", "clicks", "-n", "30000", "--seed", "7", "--start", START, "--to", &ingest,
        ])
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );

    let post = |body: &str| {
        let mut r = agent()
            .post(&ingest)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    // Valid JSON with a bad field: accepted here, a dead letter there.
    let (status, body) = post(r#"{"timestamp": "yesterday", "action": "view"}"#);
    assert_eq!((status, body.trim()), (200, r#"{"accepted":1}"#));
    // Not JSON: refused, nothing accepted.
    let (status, body) = post(r#"[{"timestamp": "2026-12-01T10:00:00Z", "action": "view"}, {"#);
    assert_eq!(status, 400, "{body}");

    // Every batch was answered, so the pipeline holds every record: a graceful stop
    // (Ctrl-C, SIGTERM) flushes them all.
    run.stop();

    // The oracle: the same clicks, counted per minute and action here.
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(root())
        .args([
            "gen", "clicks", "-n", "30000", "--seed", "7", "--start", START,
        ])
        .output()
        .unwrap();
    let mut want = std::collections::BTreeMap::<(String, String), i64>::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_str().unwrap();
        let minute = format!("{}:00Z", &ts[..16]);
        *want
            .entry((minute, v["action"].as_str().unwrap().to_string()))
            .or_default() += 1;
    }
    let mut got = std::collections::BTreeMap::<(String, String), i64>::new();
    let counts = std::fs::read_to_string(dir.path().join("counts.jsonl")).unwrap();
    for line in counts.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let start = v["window_start"].as_str().unwrap();
        let minute = format!("{}:00Z", &start[..16]);
        let key = (minute, v["action"].as_str().unwrap().to_string());
        assert!(got.insert(key, v["count"].as_i64().unwrap()).is_none());
    }
    assert_eq!(got, want);

    let bad = std::fs::read_to_string(dir.path().join("bad.jsonl")).unwrap();
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(
        bad.contains("yesterday") && bad.contains("timestamp"),
        "{bad}"
    );
}

/// Real data through the endpoint: the Taobao clickstream sample (110,300 rows of Nov 2017),
/// posted as NDJSON in batches the way a shop's servers would, gives exactly the hot items and
/// busy categories the golden case `taobao-hot-items` computes from the same rows read as a
/// file. Nothing is refused and nothing becomes a dead letter.
#[test]
fn the_taobao_clickstream_posted_over_http_gives_the_golden_hot_items() {
    let csv = root().join("../shared/data/clickstream/taobao_UserBehavior.head110300.csv");
    let golden = root().join("tests/golden/taobao-hot-items");
    let Ok(text) = std::fs::read_to_string(&csv) else {
        panic!(
            "{} is missing: the shared data belongs beside the repository",
            csv.display()
        );
    };
    // The golden pipeline with the file source replaced by an http one taking the same fields.
    let mut doc: toml::Table =
        toml::from_str(&std::fs::read_to_string(golden.join("pipeline.toml")).unwrap()).unwrap();
    let sources = doc["source"].as_table_mut().unwrap();
    let clicks = sources["clicks"].as_table_mut().unwrap();
    clicks.insert("type".into(), "http".into());
    clicks.remove("path");
    let format = clicks["format"].as_table_mut().unwrap();
    format.insert("type".into(), "json".into());
    format.remove("header");
    doc.insert(
        "server".into(),
        toml::Value::Table(toml::from_str("listen = \"127.0.0.1:0\"").unwrap()),
    );
    let sinks = doc["sink"].as_table_mut().unwrap();
    let mut bad = toml::Table::new();
    bad.insert("type".into(), "jsonl".into());
    bad.insert("input".into(), "clicks.errors".into());
    bad.insert("path".into(), "out/bad.jsonl".into());
    sinks.insert("bad".into(), toml::Value::Table(bad));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, toml::to_string(&doc).unwrap()).unwrap();

    let run = Serving::start(dir.path(), &file);
    let url = run.url.clone();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            format!(
                r#"{{"user_id":{},"item_id":{},"category_id":{},"behavior":"{}","ts":{}}}"#,
                f[0], f[1], f[2], f[3], f[4]
            )
        })
        .collect();
    assert_eq!(lines.len(), 110_300);
    let mut accepted = 0;
    for batch in lines.chunks(5000) {
        let mut r = agent()
            .post(&format!("{url}/ingest/clicks"))
            .header("Content-Type", "application/x-ndjson")
            .send(batch.join("\n"))
            .unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        accepted += v["accepted"].as_u64().unwrap();
    }
    assert_eq!(accepted, 110_300);
    run.stop();

    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert_eq!(read(dir.path().join("out/bad.jsonl")), "", "dead letters");
    assert_eq!(
        read(dir.path().join("out/hot_items.jsonl")),
        read(golden.join("expected/out.jsonl"))
    );
    assert_eq!(
        read(dir.path().join("out/categories.jsonl")),
        read(golden.join("expected/categories.jsonl"))
    );
}
