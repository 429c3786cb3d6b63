//! The binary as a user runs it: check, run on the bundled example, stdin with idle close,
//! Ctrl-C, a closed stdout pipe.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.current_dir(root());
    c
}

#[test]
fn every_example_passes_check() {
    // The anomaly example scores with a model the user trains first (its header says how);
    // here a small one of two of its fields, so that check binds it to the stream.
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("train.csv");
    let rows: String = (0..200)
        .map(|i| format!("{},{}\n", i % 7, 100 + i * 13 % 251))
        .collect();
    std::fs::write(&csv, format!("duration,src_bytes\n{rows}")).unwrap();
    let model = tmp.path().join("kdd.model");
    let out = weir()
        .args(["train", "-i"])
        .arg(&csv)
        .arg("-o")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut check = weir();
            check.arg("check").arg(&path);
            if path.ends_with("anomaly.toml") {
                check.arg("--set").arg(format!(
                    "stage.scored.model={:?}",
                    model.display().to_string()
                ));
            }
            let out = check.output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn check_prints_every_problem_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(
        &p,
        r#"
[source.logs]
type = "file"
path = "/nonexistent/access.log"
format = { type = "clf" }

[stage.counts]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = { type = "tumbling", size = "5 minutes" }
aggregates = [{ fn = "count" }]

[stage.means]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = { type = "tumbling", size = "5m" }
aggregates = [{ fn = "avg" }]

[sink.out]
type = "stdout"
input = "counts"
color = true
"#,
    )
    .unwrap();
    let out = weir().arg("check").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 3 problems"), "{err}");
    assert!(
        err.contains("stage.counts.window.size: expected a duration like \"5m\""),
        "{err}"
    );
    assert!(
        err.contains("stage.means.aggregates[0].field: Avg needs a field"),
        "{err}"
    );
    assert!(
        err.contains("sink.out.color: unknown field `color`, expected `format`"),
        "{err}"
    );
    // With the config fixed, the missing input file is reported before running.
    let fixed = std::fs::read_to_string(&p)
        .unwrap()
        .replace("5 minutes", "5m")
        .replace(r#"fn = "avg""#, r#"fn = "count""#)
        .replace("color = true\n", "");
    std::fs::write(&p, fixed).unwrap();
    let out = weir().arg("run").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("source.logs.path: /nonexistent/access.log does not exist"));
}

#[test]
fn the_bundled_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("t.jsonl");
    let bad = tmp.path().join("m.jsonl");
    let out = weir()
        .args(["run", "examples/http-status.toml"])
        .arg(format!("--set=sink.table.path={}", table.display()))
        .arg(format!("--set=sink.malformed.path={}", bad.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 157, "JSON lines on a pipe");
    assert_eq!(stdout, std::fs::read_to_string(&table).unwrap());
    // Line 9001 (extra spaces before HTTP/1.0) is the 200 it was, not a 999 (issue 11).
    assert!(!stdout.contains(r#""status":999"#));
    assert!(
        stdout.contains(r#""window_end":"1995-07-01T07:10:00Z","status":200,"count":189,"bytes":"#)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("10,000 lines read"), "{summary}");
    assert!(
        summary.contains("10,000 rows parsed, 0 malformed"),
        "{summary}"
    );
    // Line 9001 has three spaces before HTTP/1.0: a real 200, counted as odd (issue 11).
    assert!(
        summary.contains("1 row kept with a request that is not `METHOD PATH PROTOCOL`"),
        "{summary}"
    );
    assert!(
        summary.contains("157 rows out; 44 windows closed"),
        "{summary}"
    );
    assert_eq!(
        std::fs::read_to_string(&bad)
            .unwrap_or_default()
            .lines()
            .count(),
        0
    );
}

fn clf(sec: u32, status: u16) -> String {
    format!("h - - [01/Jul/1995:00:00:{sec:02} -0400] \"GET / HTTP/1.0\" {status} 1\n")
}

fn stdin_job() -> std::process::Child {
    weir()
        .args(["run", "examples/http-status-stdin.toml", "--quiet"])
        .args(["--set", r#"stage.status_counts.window.size="10s""#])
        .args([
            "--set",
            r#"source.logs.event_time.max_out_of_orderness="0s""#,
        ])
        .args(["--set", r#"source.logs.event_time.idle_timeout="1s""#])
        .args(["--set", "sink.malformed.path=/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `tail -F | weir`: the input stays open, yet the last window closes once it is idle.
#[test]
fn idle_stdin_still_closes_the_window() {
    let mut child = stdin_job();
    let mut stdin = child.stdin.take().unwrap();
    for s in 1..10 {
        stdin.write_all(clf(s, 200).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains(r#""window_end":"1995-07-01T04:00:10Z","status":200,"count":9"#),
        "{first}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the window closed after {:?}",
        started.elapsed()
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Ctrl-C ends the input gracefully: the open window is flushed, the exit is clean.
#[cfg(unix)]
#[test]
fn ctrl_c_flushes_open_windows() {
    signal_flushes_open_windows("-INT");
}

/// Issue 10: SIGTERM (systemd, Docker, Kubernetes, `timeout`) ended the run at once with exit
/// 143: no flush, no summary. It is now the same graceful stop as Ctrl-C.
#[cfg(unix)]
#[test]
fn sigterm_flushes_open_windows() {
    signal_flushes_open_windows("-TERM");
}

fn signal_flushes_open_windows(signal: &str) {
    let mut child = stdin_job();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(clf(1, 404).as_bytes()).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#""status":404,"count":1"#), "{text:?}");
    drop(stdin);
}

/// `weir run … | head -1` ends quietly.
#[test]
fn closed_stdout_is_not_an_error() {
    let mut child = weir()
        .args([
            "run",
            "examples/http-status.toml",
            "--quiet",
            "--set",
            "sink.table.path=/dev/null",
            "--set",
            "sink.malformed.path=/dev/null",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(first.contains("window_start"));
}

/// Issue 10: `weir run … | head -2` processed all of its input (200 M lines, 86 s) after the
/// reader had gone. With standard output its only sink, the run now stops once the pipe
/// closes, quietly and with success.
#[test]
fn closed_stdout_stops_a_run_nobody_reads() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("endless.toml");
    std::fs::write(
        &p,
        r#"
[source.gen]
type = "generator"
kind = "clf"
count = 0                      # never ends by itself
format = { type = "clf" }

[sink.out]
type = "stdout"
input = "gen"
format = "jsonl"
"#,
    )
    .unwrap();
    let started = Instant::now();
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(&p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("\"status\""), "{line}");
    }
    drop(out);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the run went on for 30 s after its only reader left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The DDOS example: alerts fire once per episode, each with its trigger and at most the
/// configured number of contributors; a replay gives the same alerts, with any number of
/// workers (each key's alerts in firing order; alerts of different keys may interleave
/// differently when the alert stage runs as several instances).
#[test]
fn the_ddos_example_fires_alerts() {
    let run = |workers: &str| {
        let out = weir()
            .args([
                "run",
                "examples/ddos-alert.toml",
                "--quiet",
                "--workers",
                workers,
                "--set",
                "sink.alerts.path=/dev/null",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run("1");
    let alerts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(alerts.len() > 20, "{} alerts", alerts.len());
    let mut ids = std::collections::HashSet::new();
    for a in &alerts {
        assert!(a["count"].as_i64().unwrap() >= 10);
        assert!(a["contributors"].as_array().unwrap().len() <= 10);
        assert_eq!(a["trigger"]["timestamp"], a["trigger_time"]);
        assert!(
            ids.insert(a["alert_id"].as_str().unwrap().to_string()),
            "alert ids are unique"
        );
    }
    // Apart from the wall-clock fired_at, per key in firing order (a stable sort by key).
    let strip = |t: &str| {
        let mut v = t
            .lines()
            .map(|l| l.split(r#","fired_at""#).next().unwrap().to_string())
            .collect::<Vec<_>>();
        v.sort_by_key(|l| {
            let a: serde_json::Value = serde_json::from_str(&format!("{l}}}")).unwrap();
            a["target_ip"].as_str().unwrap().to_string()
        });
        v
    };
    let once = strip(&text);
    assert_eq!(strip(&run("1")), once, "a replay gives the same alerts");
    assert_eq!(
        strip(&run("3")),
        once,
        "three alert instances give the same alerts"
    );
}

#[test]
fn gen_ddos_is_deterministic_for_a_seed() {
    let gen = || {
        weir()
            .args([
                "gen",
                "ddos",
                "-n",
                "1000",
                "--seed",
                "7",
                "--start",
                "2026-01-01T00:00:00Z",
            ])
            .output()
            .unwrap()
            .stdout
    };
    let a = gen();
    assert_eq!(a, gen());
    assert_eq!(String::from_utf8(a).unwrap().lines().count(), 1000);
}

/// `weir gen ddos --http URL` POSTs the lines to an HTTP endpoint.
#[test]
fn gen_posts_to_http() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut lines = 0;
        for conn in listener.incoming().take(1) {
            let mut conn = conn.unwrap();
            // One keep-alive connection: read requests until the client closes it.
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut len = 0;
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                lines += body.iter().filter(|&&b| b == b'\n').count();
                conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
            }
        }
        lines
    });
    let out = weir()
        .args(["gen", "ddos", "-n", "20000", "--http", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.join().unwrap(), 20_000);
}

/// A pipeline in `dir` reading a copy of the bundled log (`in.log`), with `sinks` appended.
fn pipeline_with_sinks(dir: &Path, sinks: &str) -> PathBuf {
    let log = dir.join("in.log");
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(root().join("examples/data/nasa_jul95_first10000.log.gz")).unwrap(),
    );
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut gz, &mut text).unwrap();
    std::fs::write(&log, &text).unwrap();
    pipeline_reading(dir, &log, sinks)
}

/// A pipeline in `dir` counting statuses per 5 minutes of the CLF file `input`, with `sinks`
/// appended.
fn pipeline_reading(dir: &Path, input: &Path, sinks: &str) -> PathBuf {
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[source.logs]
type = "file"
path = "{}"
format = {{ type = "clf" }}
event_time = {{ field = "timestamp" }}

[stage.counts]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = {{ type = "tumbling", size = "5m" }}
group_by = ["status"]
aggregates = [{{ fn = "count" }}]
{sinks}"#,
            input.display()
        ),
    )
    .unwrap();
    p
}

/// Issue 10: a sink pointed at the input truncated it (1.1 MB cut to 402 B, exit 0); a
/// parquet sink pointed at a folder that was not a table emptied it; two sinks on one path
/// overwrote each other. `check` and `run` now refuse each, with the key path, and touch
/// nothing.
#[test]
fn output_paths_that_would_destroy_data_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path().display().to_string();
    let foreign = d.path().join("notes.jsonl");
    std::fs::write(&foreign, "a user's file\n").unwrap();
    std::fs::create_dir(d.path().join("warehouse")).unwrap();
    std::fs::write(d.path().join("warehouse/important.txt"), "keep me").unwrap();
    let cases = [
        (
            format!("[sink.o]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{dp}/in.log\"\n"),
            "sink.o.path: ",
            "is the input of source.logs",
        ),
        (
            format!(
                "[sink.o]\ntype = \"parquet\"\ninput = \"counts\"\npath = \"{dp}/warehouse\"\n"
            ),
            "sink.o.path: ",
            "not a weir table",
        ),
        (
            format!(
                "[sink.a]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{dp}/o.jsonl\"\n\
                 [sink.b]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{dp}/./o.jsonl\"\n"
            ),
            "sink.b.path: ",
            "overlaps the output of sink.a.path",
        ),
        (
            format!(
                "[sink.a]\ntype = \"parquet\"\ninput = \"counts\"\npath = \"{dp}/t\"\n\
                 [sink.b]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{dp}/t/x.jsonl\"\n"
            ),
            "sink.b.path: ",
            "overlaps the output of sink.a.path",
        ),
        (
            format!(
                "[sink.o]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{dp}/notes.jsonl\"\n"
            ),
            "sink.o.path: ",
            "was not written by weir",
        ),
        (
            format!(
                "[sink.o]\ntype = \"csv\"\ninput = \"counts\"\npath = \"{dp}/notes.jsonl/x.csv\"\n"
            ),
            "sink.o.path: ",
            "is not a directory",
        ),
    ];
    for (sinks, key, why) in cases {
        let p = pipeline_with_sinks(d.path(), &sinks);
        for cmd in ["check", "run"] {
            let out = weir().arg(cmd).arg(&p).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {sinks}: {err}");
            assert!(
                err.contains(key) && err.contains(why),
                "{cmd} {sinks}: {err}"
            );
        }
    }
    assert_eq!(
        std::fs::metadata(d.path().join("in.log")).unwrap().len(),
        1_106_157
    );
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "a user's file\n"
    );
    assert!(d.path().join("warehouse/important.txt").exists());
    assert!(!d.path().join("o.jsonl").exists());
}

/// Issue 10: with checkpoints, a staging folder that was a symbolic link was followed and the
/// files it pointed to deleted.
#[test]
fn a_staging_folder_that_is_a_link_is_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let victim = d.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("epoch-1"), "precious").unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join(".o.jsonl.weir")).unwrap();
    let sinks = format!(
        "[sink.o]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{}/o.jsonl\"\n",
        d.path().display()
    );
    let p = pipeline_with_sinks(d.path(), &sinks);
    let out = weir()
        .arg("run")
        .arg(&p)
        .arg("--checkpoint-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(victim.join("epoch-1")).unwrap(),
        "precious"
    );
}

/// Issue 10: `where = "bytes / (status - 304) >= 0"` on NASA's log ended the whole pipeline as
/// an "internal error" at the first 304. Each failing row now goes to `NAME.errors` with the
/// reason and the run goes on.
#[test]
fn a_row_whose_expression_fails_is_an_error_row() {
    let d = tempfile::tempdir().unwrap();
    let p = pipeline_with_sinks(
        d.path(),
        &format!(
            r#"
[stage.odd]
type = "filter"
input = "logs"
where = "bytes / (status - 304) >= 0"

[sink.kept]
type = "jsonl"
input = "odd"
path = "{0}/kept.jsonl"

[sink.errors]
type = "jsonl"
input = "odd.errors"
path = "{0}/errors.jsonl"

[sink.window_counts]
type = "jsonl"
input = "counts"
path = "{0}/counts.jsonl"
"#,
            d.path().display()
        ),
    );
    let out = weir().arg("run").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Oracle: 304 answers with a byte count divide by zero; other lines are kept when the
    // (truncating) quotient is not negative; a null size is null, not kept, and no error.
    let log = std::fs::read_to_string(d.path().join("in.log")).unwrap();
    let (mut zero_div, mut kept) = (0, 0);
    for line in log.lines() {
        let tail: Vec<&str> = line.rsplitn(3, ' ').collect();
        let (bytes, status) = (tail[0], tail[1].parse::<i64>().unwrap());
        match (status, bytes) {
            (_, "-") => {}
            (304, _) => zero_div += 1,
            (s, b) => kept += usize::from(b.parse::<i64>().unwrap() / (s - 304) >= 0),
        }
    }
    assert!(
        zero_div > 100,
        "the sample has 304s with a size: {zero_div}"
    );
    let errors = std::fs::read_to_string(d.path().join("errors.jsonl")).unwrap();
    assert_eq!(errors.lines().count(), zero_div, "{err}");
    let first: serde_json::Value = serde_json::from_str(errors.lines().next().unwrap()).unwrap();
    assert_eq!(first["node"], "odd");
    assert_eq!(
        first["reason"],
        "evaluating `bytes / (status - 304) >= 0`: Divide by zero error"
    );
    assert!(
        first["raw"].as_str().unwrap().contains("\"status\":304"),
        "{first}"
    );
    let kept_rows = std::fs::read_to_string(d.path().join("kept.jsonl")).unwrap();
    assert_eq!(kept_rows.lines().count(), kept);
    assert!(
        err.contains(&format!("{zero_div} errors (to odd.errors)")),
        "{err}"
    );
}

/// Issue 10: one line dated 2095 in NASA's July 1995 log moved the watermark a century ahead,
/// and every later record was late. It is refused now (`max_future`), with the reason, and
/// the counts equal those of the log without it.
#[test]
fn a_far_future_timestamp_does_not_poison_event_time() {
    let d = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[sink.out]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{0}/out.jsonl\"\n\
         [sink.bad]\ntype = \"jsonl\"\ninput = \"logs.errors\"\npath = \"{0}/bad.jsonl\"\n",
        d.path().display()
    );
    let p = pipeline_with_sinks(d.path(), &sinks);
    let run = || {
        let out = weir().arg("run").arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        (
            std::fs::read_to_string(d.path().join("out.jsonl")).unwrap(),
            err,
        )
    };
    let (clean, _) = run();
    let log = std::fs::read_to_string(d.path().join("in.log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    let poison = r#"evil.example - - [04/Jul/2095:12:00:00 -0400] "GET /x HTTP/1.0" 200 1"#;
    lines.insert(5_000, poison);
    std::fs::write(d.path().join("in.log"), lines.join("\n") + "\n").unwrap();
    let (poisoned, err) = run();
    assert_eq!(poisoned, clean, "{err}");
    assert!(err.contains(", 0 late,"), "{err}");
    let bad = std::fs::read_to_string(d.path().join("bad.jsonl")).unwrap();
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(
        bad.contains("event time 2095-07-04T16:00:00Z is after"),
        "{bad}"
    );
}

/// Issue 10: a corrupt gzip input stopped the run with its error printed three times, open
/// windows unwritten and no summary. Now the input ends at the damage: what was read is
/// counted and flushed, the summary is printed, and the run fails with one error naming the
/// file and where.
#[test]
fn corrupt_gzip_input_flushes_what_was_read_and_fails_once() {
    let d = tempfile::tempdir().unwrap();
    let mut gz = std::fs::read(root().join("examples/data/nasa_jul95_first10000.log.gz")).unwrap();
    let at = gz.len() * 6 / 10;
    for (i, b) in gz[at..at + 4096].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let input = d.path().join("broken.log.gz");
    std::fs::write(&input, &gz).unwrap();
    let p = pipeline_reading(
        d.path(),
        &input,
        &format!(
            "[sink.out]\ntype = \"jsonl\"\ninput = \"counts\"\npath = \"{}/out.jsonl\"\n",
            d.path().display()
        ),
    );
    let out = weir().arg("run").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let what = "broken.log.gz is not valid gzip from near compressed byte";
    assert_eq!(err.matches(what).count(), 1, "{err}");
    assert!(
        err.contains("weir: finished in"),
        "the summary is printed: {err}"
    );
    let rows = std::fs::read_to_string(d.path().join("out.jsonl")).unwrap();
    let counted: u64 = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(
        (3_000..10_000).contains(&counted),
        "the lines before the damage are counted and flushed: {counted}"
    );
}

/// Issue 11: a pasted format string weir cannot read is one problem at `weir check`, named at
/// its key, without a second one for the event time it hides.
#[test]
fn check_names_an_unsupported_log_format_directive() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("apache.toml");
    let input = root().join("examples/data/nasa_jul95_first10000.log.gz");
    let pipeline = |fmt: &str| {
        format!(
            r#"
[source.logs]
type = "file"
path = "{}"
format = {{ type = "apache", log_format = '{fmt}' }}
event_time = {{ field = "timestamp", max_out_of_orderness = "30s" }}

[stage.counts]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = {{ type = "tumbling", size = "5m" }}
group_by = ["status", "vhost"]
aggregates = [{{ fn = "count" }}, {{ fn = "avg", field = "time_us" }}]

[sink.out]
type = "stdout"
input = "counts"
"#,
            input.display()
        )
    };
    std::fs::write(&p, pipeline(r#"%v %h %l %u %{%d/%b/%Y}t "%r" %>s %b %D"#)).unwrap();
    let out = weir().arg("check").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has 1 problem:"), "{err}");
    assert!(
        err.contains("source.logs.format.log_format: %{%d/%b/%Y}t: custom time formats are not supported; log with %t"),
        "{err}"
    );
    std::fs::write(&p, pipeline(r#"%v %h %l %u %t "%r" %>s %b %D"#)).unwrap();
    let out = weir().arg("check").arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("vhost: Utf8") && text.contains("time_us"),
        "{text}"
    );
}

/// The trends example on a shortened clickstream (generated, not posted): every window's lists are ranks 1..5 by
/// falling count, and the change rows printed on stdout, applied in order, rebuild the last
/// window's list of the cart file.
#[test]
fn trends_example_ranks_and_its_changes_replay_to_the_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str| tmp.path().join(name);
    let out = weir()
        .args(["run", "examples/trends.toml", "--quiet"])
        // The example serves HTTP ingest; here it replays the generator's clicks instead.
        .args(["--set", "source.clicks.type=generator"])
        .args(["--set", "source.clicks.kind=clicks"])
        .args(["--set", "source.clicks.count=200000"])
        .args(["--set", "source.clicks.start=2026-12-01T10:00:00Z"])
        .args(["--set", "server.listen=127.0.0.1:0"])
        .arg("--set")
        .arg(format!(
            "sink.cart_file.path={}",
            file("cart.jsonl").display()
        ))
        .arg("--set")
        .arg(format!(
            "sink.search_file.path={}",
            file("search.jsonl").display()
        ))
        .arg("--set")
        .arg(format!(
            "sink.category_file.path={}",
            file("cat.jsonl").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (mut last, mut last_end) = (Vec::new(), String::new());
    for (name, key, value) in [
        ("cart.jsonl", "product_id", "count"),
        ("search.jsonl", "query", "users"),
        ("cat.jsonl", "category", "count"),
    ] {
        let rows = rows(&file(name));
        // 200 s of event time at 1 ms per event, windows every 10 s until the last event
        // has left the 10-minute window.
        assert!(rows.len() >= 5 * 70, "{name}: {} rows", rows.len());
        let mut by_end: std::collections::BTreeMap<String, Vec<(i64, String, i64)>> =
            Default::default();
        for r in &rows {
            by_end
                .entry(r["window_end"].as_str().unwrap().into())
                .or_default()
                .push((
                    r["rank"].as_i64().unwrap(),
                    r[key].as_str().unwrap().into(),
                    r[value].as_i64().unwrap(),
                ));
        }
        for (end, list) in &by_end {
            let ranks: Vec<i64> = list.iter().map(|r| r.0).collect();
            assert_eq!(ranks, [1, 2, 3, 4, 5], "{name} at {end}");
            assert!(
                list.windows(2).all(|w| w[0].2 >= w[1].2),
                "{name} at {end}: {list:?}"
            );
        }
        if name == "cart.jsonl" {
            (last_end, last) = by_end.into_iter().next_back().unwrap();
        }
    }
    // Replay the changes on stdout (JSON lines when piped) up to that window; the next one
    // closes without any key, so everything leaves there.
    let mut list: std::collections::BTreeMap<i64, (String, i64)> = Default::default();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let changes: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(changes
        .iter()
        .all(|c| c["window_end"].as_str().unwrap() <= last_end.as_str() || c["change"] == "left"));
    for c in changes
        .iter()
        .filter(|c| c["window_end"].as_str().unwrap() <= last_end.as_str())
    {
        let line = c.to_string();
        let item = c["product_id"].as_str().unwrap().to_string();
        if c["change"] == "left" {
            let prev = c["previous_rank"].as_i64().unwrap();
            assert_eq!(list.get(&prev).map(|e| &e.0), Some(&item), "{line}");
            list.remove(&prev);
        } else {
            list.retain(|_, e| e.0 != item);
            list.insert(
                c["rank"].as_i64().unwrap(),
                (item, c["count"].as_i64().unwrap()),
            );
        }
    }
    let replayed: Vec<(i64, String, i64)> = list.into_iter().map(|(r, (i, n))| (r, i, n)).collect();
    assert_eq!(replayed, last);
}

/// Issue 36: a CSV whose header lacks a declared field sent every line to the dead letters
/// and the run exited 0. No row of such an input can parse: the run fails with the reason and
/// the key path, and the header line is in the dead letters.
#[test]
fn a_csv_header_without_a_declared_field_fails_the_run() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("in.csv"),
        "time,status\n804571201,200\n804571202,404\n",
    )
    .unwrap();
    let p = d.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "[source.rows]\ntype = \"file\"\npath = \"{0}/in.csv\"\n\
             format = {{ type = \"csv\", fields = [{{ name = \"ts\", type = \"timestamp_s\" }}, \
             {{ name = \"status\", type = \"uint\" }}] }}\n\
             [sink.out]\ntype = \"jsonl\"\ninput = \"rows\"\npath = \"{0}/out.jsonl\"\n\
             [sink.bad]\ntype = \"jsonl\"\ninput = \"rows.errors\"\npath = \"{0}/bad.jsonl\"\n",
            d.path().display()
        ),
    )
    .unwrap();
    let out = weir().arg("run").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("source.rows.format"), "{err}");
    assert!(err.contains("has no column \"ts\""), "{err}");
    let bad = std::fs::read_to_string(d.path().join("bad.jsonl")).unwrap_or_default();
    assert!(bad.contains("header has no column"), "{bad}");
}
