//! weir with message brokers end to end, against the servers on this machine: NATS
//! JetStream on 127.0.0.1:4222 (a file published to a stream by a `nats` sink, read back into
//! windowed counts, a run killed again and again commits exactly what one uninterrupted run
//! does) and Mosquitto on 127.0.0.1:1883 (no row lost while the reader is killed).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;

use weir_testkit::nats::TestStream;

fn weir(dir: &Path, pipeline: &str, args: &[&str]) -> std::process::Child {
    let file = dir.join(format!("p{}.toml", args.len()));
    std::fs::write(&file, pipeline).unwrap();
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(root())
        .arg("run")
        .arg(&file)
        .arg("--quiet")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: std::process::Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads the stream into per-minute status counts; `consumer` and the output path vary.
fn counting(s: &TestStream, consumer: &str, out: &Path, extra: &str) -> String {
    format!(
        r#"
[source.clicks]
type = "nats"
stream = "{stream}"
consumer = "{consumer}"
stop_when_caught_up = true
{extra}
format = {{ type = "json", fields = [
  {{ name = "timestamp", type = "timestamp", required = true }},
  {{ name = "status", type = "int" }},
] }}
event_time = {{ field = "timestamp", max_out_of_orderness = "10s" }}

[stage.per_minute]
type = "aggregate"
input = "clicks"
time_field = "timestamp"
window = {{ type = "tumbling", size = "1m" }}
group_by = ["status"]
aggregates = [{{ fn = "count" }}]

[sink.out]
type = "jsonl"
input = "per_minute"
path = "{out}"
"#,
        stream = s.name,
        out = out.display()
    )
}

#[test]
fn a_stream_killed_and_resumed_commits_what_one_run_does() {
    let s = TestStream::new("kill");
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("examples/data/nasa_jul95_first10000.log.gz");
    // 1. Publish the bundled log as JSON rows.
    let publish = format!(
        r#"
[source.log]
type = "file"
path = "{input}"
format = {{ type = "clf" }}

[sink.stream]
type = "nats"
input = "log"
subject = "{subject}"
"#,
        input = input.display(),
        subject = s.subject
    );
    wait_ok(weir(dir.path(), &publish, &[]), "publishing");
    assert_eq!(
        s.messages(),
        10_000,
        "every line is a message in the stream"
    );

    // 2. One uninterrupted run.
    let reference = dir.path().join("reference.jsonl");
    let pipeline = counting(&s, "reference", &reference, "");
    wait_ok(
        weir(dir.path(), &pipeline, &["--workers", "1"]),
        "the reference run",
    );
    let want = std::fs::read_to_string(&reference).unwrap();
    assert!(want.lines().count() > 100, "{want}");

    // 3. The same, paced, killed with SIGKILL after each of several checkpoints.
    let out = dir.path().join("killed.jsonl");
    let state = dir.path().join("state");
    let pipeline = counting(&s, "killed", &out, "rate = 2500");
    let args = [
        "--checkpoint-dir",
        state.to_str().unwrap(),
        "--checkpoint-interval",
        "50ms",
    ];
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let workers = ["2", "1"][kills % 2];
        let mut run_args = args.to_vec();
        run_args.extend(["--workers", workers]);
        let mut child = weir(dir.path(), &pipeline, &run_args);
        if kills == 4 {
            wait_ok(child, "the last run");
            break;
        }
        // Kill between 300 and 700 ms in: a few checkpoints later, mid-stream.
        std::thread::sleep(Duration::from_millis(300 + 100 * kills as u64));
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run {kills} ended ({status}) before its kill: slow the pace down");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        assert!(Instant::now() < deadline, "the kill runs took too long");
    }
    let got = std::fs::read_to_string(&out).unwrap();
    if got != want {
        let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
        let at = g.iter().zip(&w).position(|(a, b)| a != b);
        let at = at.unwrap_or(g.len().min(w.len()));
        let keep = dir.keep();
        panic!(
            "committed output after {kills} kills differs at line {} ({} lines, want {}):\n got {:?}\nwant {:?}\n(kept in {})",
            at + 1,
            g.len(),
            w.len(),
            g.get(at),
            w.get(at),
            keep.display()
        );
    }
}

#[test]
fn a_missing_stream_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = r#"
[source.s]
type = "nats"
stream = "WEIR_NO_SUCH_STREAM"
format = { type = "json", fields = [{ name = "a", type = "int" }] }

[sink.out]
type = "stdout"
input = "s"
"#;
    let out = weir(dir.path(), pipeline, &[]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("WEIR_NO_SUCH_STREAM") && err.contains("the stream does not exist"),
        "{err}"
    );
}

/// MQTT, against Mosquitto on 127.0.0.1:1883: rows published by weir's `mqtt` sink while a
/// checkpointed `mqtt` source is killed with SIGKILL three times all reach the committed
/// output (QoS 1 on a persistent session: at-least-once, nothing lost).
#[test]
fn mqtt_rows_survive_kills_of_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let id = std::process::id();
    let topic = format!("weircli/{id}/rows");
    let n = 1500;
    let input = dir.path().join("rows.jsonl");
    let rows: String = (0..n).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(&input, rows).unwrap();
    let out = dir.path().join("got.jsonl");
    let reader = format!(
        r#"
[source.rows]
type = "mqtt"
topics = ["{topic}"]
client_id = "weircli-{id}-reader"
stop_when_idle = "3s"
format = {{ type = "json", fields = [{{ name = "n", type = "int", required = true }}] }}

[sink.out]
type = "jsonl"
input = "rows"
path = "{out}"
"#,
        out = out.display()
    );
    let writer = format!(
        r#"
[source.rows]
type = "file"
path = "{input}"
rate = 250
format = {{ type = "json", fields = [{{ name = "n", type = "int" }}] }}

[sink.broker]
type = "mqtt"
input = "rows"
topic = "{topic}"
client_id = "weircli-{id}-writer"
"#,
        input = input.display()
    );
    let state = dir.path().join("state");
    let args = [
        "--checkpoint-dir",
        state.to_str().unwrap(),
        "--checkpoint-interval",
        "20ms",
    ];
    // The reader's first run makes its session (and subscription) before anything is sent.
    let mut child = weir(dir.path(), &reader, &args);
    std::thread::sleep(Duration::from_millis(700));
    let publisher = weir(dir.path(), &writer, &[]);
    for kill in 0..3 {
        std::thread::sleep(Duration::from_millis(900));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the reader ended before kill {kill}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        child = weir(dir.path(), &reader, &args);
    }
    wait_ok(publisher, "publishing");
    wait_ok(child, "the last reader run");
    let got = std::fs::read_to_string(&out).unwrap();
    let mut seen = vec![0u32; n];
    for l in got.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        seen[v["n"].as_u64().unwrap() as usize] += 1;
    }
    let missing: Vec<usize> = (0..n).filter(|i| seen[*i] == 0).collect();
    assert!(
        missing.is_empty(),
        "lost {} rows: {missing:?}",
        missing.len()
    );
    let repeated = seen.iter().filter(|c| **c > 1).count();
    // At-least-once: only rows read after a run's last checkpoint can come twice.
    assert!(repeated < n / 4, "{repeated} rows came more than once");
    // Discard the broker's sessions of this test.
    for role in ["reader", "writer"] {
        let discard = format!(
            r#"
[source.x]
type = "mqtt"
topics = ["{topic}"]
client_id = "weircli-{id}-{role}"
clean_session = true
stop_when_idle = "200ms"
format = {{ type = "json", fields = [{{ name = "n", type = "int" }}] }}

[sink.out]
type = "stdout"
input = "x"
"#
        );
        wait_ok(weir(dir.path(), &discard, &[]), "discarding a session");
    }
}
