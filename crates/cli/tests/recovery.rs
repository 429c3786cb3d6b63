//! Exactly-once recovery: every golden case is run with checkpoints while being killed with
//! SIGKILL at random moments (seeded), restarted until its input is consumed, and its committed
//! output must equal the golden output of one uninterrupted run, byte for byte.
//!
//! The input is replayed at a fixed pace (`rate`, lines/s) so that a run lasts long enough to be
//! killed many times; checkpoints come every 25 ms.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root, without_wall_clock, Case};
use weir_testkit::Rng;

/// Kills per case, at least.
const KILLS: usize = 20;
/// Wall time an uninterrupted run of a case should take at the replay pace.
const RUN_SECS: f64 = 4.0;

fn lines_of(path: &Path) -> u64 {
    let mut bytes = Vec::new();
    let f = std::fs::File::open(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(f)
            .read_to_end(&mut bytes)
            .unwrap();
    } else {
        std::io::BufReader::new(f).read_to_end(&mut bytes).unwrap();
    }
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// What an ended run wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

struct Harness {
    case: Case,
    out: tempfile::TempDir,
    /// `--set` arguments of every run: the pace, and the example's own overrides.
    sets: Vec<String>,
    /// Output of one uninterrupted run, by sink (examples); golden cases have expected files.
    reference: Option<std::collections::BTreeMap<String, String>>,
    /// Rows of each Parquet table after one uninterrupted run (examples).
    tables: std::collections::BTreeMap<String, Vec<String>>,
    /// Content of each archive after one uninterrupted run (examples), by folder.
    archives: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl Harness {
    fn new(name: &str) -> Option<Harness> {
        let case = Case::new(name);
        let input = case.input()?;
        let rate = ((lines_of(&input) as f64 / RUN_SECS) as u64).max(100);
        let sets = case
            .sources()
            .iter()
            .map(|s| format!("source.{s}.rate={rate}"))
            .collect();
        Some(Harness {
            case,
            out: tempfile::tempdir().unwrap(),
            sets,
            reference: None,
            tables: Default::default(),
            archives: Default::default(),
        })
    }

    /// An example pipeline; its expected output comes from one uninterrupted run.
    fn example(file: &str, sets: &[&str]) -> Harness {
        let case = Case::at(file, &root().join("examples").join(file));
        let mut h = Harness {
            case,
            out: tempfile::tempdir().unwrap(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
            reference: None,
            tables: Default::default(),
            archives: Default::default(),
        };
        let reference = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(root())
            .arg("run")
            .arg(&h.case.pipeline)
            .arg("--quiet")
            .args(["--workers", "1"])
            .args(h.case.sink_args(reference.path()))
            .args(h.sets.iter().flat_map(|s| ["--set", s]))
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: reference run failed");
        let outputs = h
            .case
            .jsonl_sinks()
            .into_iter()
            .map(|s| {
                let text =
                    std::fs::read_to_string(reference.path().join(format!("{s}.jsonl"))).unwrap();
                assert!(!text.is_empty() || s == "malformed", "{file}: {s} is empty");
                (s, alerts_by_key(&without_wall_clock(&text)))
            })
            .collect();
        h.reference = Some(outputs);
        h.tables = h
            .case
            .parquet_sinks()
            .into_iter()
            .map(|s| {
                let rows = common::table_rows(&reference.path().join(&s));
                assert!(!rows.is_empty(), "{file}: table {s} is empty");
                (s, rows)
            })
            .collect();
        h.archives = h
            .case
            .archive_sinks()
            .into_iter()
            .map(|s| {
                let (content, unfinished) = common::archive_content(&reference.path().join(&s));
                assert!(!content.is_empty(), "{file}: archive {s} is empty");
                assert!(
                    unfinished.is_empty(),
                    "{file}: {unfinished:?} left unfinished"
                );
                (s, content)
            })
            .collect();
        h
    }

    fn state(&self) -> std::path::PathBuf {
        self.out.path().join("state")
    }

    fn start(&self, extra: &[&str]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.current_dir(root())
            .arg("run")
            .arg(&self.case.pipeline)
            .arg("--quiet")
            .args(self.case.sink_args(self.out.path()))
            .arg("--checkpoint-dir")
            .arg(self.state())
            .args(["--checkpoint-interval", "25ms"])
            .args(extra)
            .args(self.sets.iter().flat_map(|s| ["--set", s]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    /// Waits for a run to end by itself; fails on an error exit.
    fn finish(&self, mut child: Child, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let err = stderr_of(&mut child);
                assert!(status.success(), "{}: {what} failed: {err}", self.case.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not finish",
                self.case.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Where the newest checkpoint has the sources, summed (bytes of input consumed).
    fn checkpointed_offset(&self) -> u64 {
        let Ok(dir) = std::fs::read_dir(self.state()) else {
            return 0;
        };
        let newest = dir
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
            .max();
        let Some(newest) = newest else {
            return 0;
        };
        // Read while runs prune old epochs: an unreadable one counts as no progress.
        let Ok(bytes) = std::fs::read(newest.join("MANIFEST.json")) else {
            return 0;
        };
        let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        m["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["position"]["offset"].as_u64())
            .sum()
    }

    /// Waits until the newest checkpoint has consumed more than `past` bytes of input, so that
    /// a kill lands after progress however loaded the machine is (a fixed sleep did not: on a
    /// busy CI machine a debug build had not taken its first checkpoint yet). Fails if the run
    /// ends first or nothing is checkpointed within a minute.
    fn await_checkpoint_beyond(&self, child: &mut Child, past: u64, run: usize) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let err = stderr_of(child);
                panic!(
                    "{}: run {run} ended ({status}) before its kill: the input was consumed \
                     (slow the pace down) {err}",
                    self.case.name
                );
            }
            let now = self.checkpointed_offset();
            if now > past {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "{}: run {run} took no checkpoint beyond {past} in a minute",
                self.case.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs, killing each run with SIGKILL at a random moment after it has checkpointed some
    /// progress, `kills` times, then once to the end. Every kill lands on a running pipeline,
    /// at a different point of the input. The runs take turns at 2, 1 and 3 workers, so each
    /// resumes a checkpoint taken with another number of keyed-stage instances. Returns the
    /// number of runs.
    fn kill_and_restart(&self, seed: u64, kills: usize) -> usize {
        let workers = |run: usize| ["--workers", ["2", "1", "3"][run % 3]];
        let mut rng = Rng::new(seed);
        let mut past = self.checkpointed_offset();
        for k in 0..kills {
            let mut child = self.start(&workers(k));
            self.await_checkpoint_beyond(&mut child, past, k + 1);
            // Anywhere between two checkpoints, or a few later.
            std::thread::sleep(Duration::from_millis(rng.below(80)));
            if let Some(status) = child.try_wait().unwrap() {
                let err = stderr_of(&mut child);
                panic!(
                    "{}: run {} ended ({status}) before its kill: the input was consumed after \
                     {k} kills (slow the pace down) {err}",
                    self.case.name,
                    k + 1
                );
            }
            child.kill().unwrap();
            child.wait().unwrap();
            past = self.checkpointed_offset();
        }
        self.finish(self.start(&workers(kills)), "the last run");
        kills + 1
    }

    /// Starts a run and kills it once it has checkpointed some progress.
    fn kill_after_a_checkpoint(&self) {
        let mut child = self.start(&[]);
        self.await_checkpoint_beyond(&mut child, 0, 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn assert_output(&self, what: &str) {
        for s in self.case.jsonl_sinks() {
            let got = std::fs::read_to_string(self.out.path().join(format!("{s}.jsonl")))
                .unwrap_or_default();
            let got = alerts_by_key(&without_wall_clock(&got));
            match &self.reference {
                Some(r) => self.case.assert_same(&s, &got, &r[&s], what),
                None => self.case.assert_output(&s, &got, what),
            }
            let staging = self.out.path().join(format!(".{s}.jsonl.weir"));
            let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
            assert_eq!(
                left,
                0,
                "{}: staging files left in {}",
                self.case.name,
                staging.display()
            );
        }
        for (s, want) in &self.tables {
            let got = common::table_rows(&self.out.path().join(s));
            assert!(
                got == *want,
                "{}: table {s} ({what}) has {} rows, an uninterrupted run {}; first difference: {:?}",
                self.case.name,
                got.len(),
                want.len(),
                got.iter().zip(want).find(|(a, b)| a != b)
            );
            let staging = self.out.path().join(format!(".{s}.weir"));
            let left: Vec<_> = std::fs::read_dir(&staging)
                .map(|d| {
                    d.map(|e| e.unwrap().path())
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "{}: staged files left: {left:?}",
                self.case.name
            );
        }
        for (s, want) in &self.archives {
            let (got, unfinished) = common::archive_content(&self.out.path().join(s));
            assert!(
                unfinished.is_empty(),
                "{}: {unfinished:?} left unfinished ({what})",
                self.case.name
            );
            let differs: std::collections::BTreeSet<&String> = want
                .keys()
                .chain(got.keys())
                .filter(|f| got.get(*f) != want.get(*f))
                .collect();
            assert!(
                differs.is_empty(),
                "{}: archive {s} ({what}) differs from an uninterrupted run's in {differs:?}",
                self.case.name
            );
        }
    }
}

/// Alerts stably sorted by their key (the `alert_id` before its `@`): each key's alerts keep
/// their firing order, and alerts of different keys may interleave differently when the alert
/// stage runs as several instances. Other lines are left as they are.
fn alerts_by_key(text: &str) -> String {
    let key = |l: &str| {
        l.strip_prefix(r#"{"alert_id":""#)
            .and_then(|r| r.split('@').next())
            .map(str::to_string)
    };
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.iter().all(|l| key(l).is_some()) {
        lines.sort_by_key(|l| key(l));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn kill_case(name: &str, seed: u64) {
    let Some(h) = Harness::new(name) else {
        return;
    };
    kill(&h, seed);
}

fn kill(h: &Harness, seed: u64) {
    let runs = h.kill_and_restart(seed, KILLS);
    h.assert_output(&format!("{KILLS} kills with seed {seed}, {runs} runs"));
    // Running again after the end reads nothing and writes nothing.
    h.finish(h.start(&[]), "a run after the end");
    h.assert_output("a run after the end");
}

#[test]
fn kill_apache_logformat_hourly() {
    kill_case("apache-logformat-hourly", 10);
}

#[test]
fn kill_bundled_jul95_status() {
    kill_case("bundled-jul95-status", 9);
}

#[test]
fn kill_nasa_jul95_status() {
    kill_case("nasa-jul95-status", 1);
}

#[test]
fn kill_nasa_aug95_status() {
    kill_case("nasa-aug95-status", 2);
}

#[test]
fn kill_nasa_aug95_error_classes() {
    kill_case("nasa-aug95-error-classes", 3);
}

#[test]
fn kill_nasa_aug95_content_kinds() {
    kill_case("nasa-aug95-content-kinds", 11);
}

#[test]
fn kill_nasa_jul95_error_spikes() {
    kill_case("nasa-jul95-error-spikes", 4);
}

#[test]
fn kill_nasa_random_sliding() {
    kill_case("nasa-random-sliding", 5);
}

#[test]
fn kill_nasa_aug95_top_paths_by_class() {
    kill_case("nasa-aug95-top-paths-by-class", 12);
}

#[test]
fn kill_taobao_hot_items() {
    kill_case("taobao-hot-items", 13);
}

#[test]
fn kill_apache_combined_hourly() {
    kill_case("apache-combined-hourly", 6);
}

#[test]
fn kill_example_http_status() {
    // The bundled 10,000 lines at 2,500 lines/s; the console sink goes to /dev/null.
    kill(
        &Harness::example("http-status.toml", &["source.logs.rate=2500"]),
        7,
    );
}

#[test]
fn kill_example_ddos_alert() {
    // The generator resumes by regenerating its seeded lines up to the checkpoint.
    kill(
        &Harness::example(
            "ddos-alert.toml",
            &["source.events.count=240000", "source.events.rate=30000"],
        ),
        8,
    );
}

/// The http-status example with a PostgreSQL sink (upserts keyed by window and status) on the
/// server at 127.0.0.1:5432: after 20 kills the table holds exactly the rows of one
/// uninterrupted run.
#[test]
fn kill_example_http_status_into_postgres() {
    let url = "host=127.0.0.1 port=5432 user=postgres dbname=test";
    let pg = |sql: &str| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)
            .expect("PostgreSQL on 127.0.0.1:5432 (CI has it)");
        c.batch_execute(sql).unwrap();
        c
    };
    let table = "weir_kill_http_status";
    pg(&format!("DROP TABLE IF EXISTS {table}, {table}_reference"));
    let sink = |t: &str| {
        vec![
            "sink.pg.type=\"postgres\"".to_string(),
            "sink.pg.input=\"status_counts\"".to_string(),
            format!("sink.pg.url=\"{url}\""),
            format!("sink.pg.table=\"{t}\""),
            "sink.pg.key=[\"window_start\", \"status\"]".to_string(),
            "sink.pg.batch_rows=7".to_string(),
        ]
    };
    let mut sets = vec!["source.logs.rate=2500".to_string()];
    sets.extend(sink(&format!("{table}_reference")));
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let mut h = Harness::example("http-status.toml", &refs);
    h.sets.truncate(1);
    h.sets.extend(sink(table));
    kill(&h, 9);
    let rows: Vec<String> = pg("")
        .query(
            &format!(
                "SELECT (extract(epoch FROM window_start) * 1000)::bigint, \
                 (extract(epoch FROM window_end) * 1000)::bigint, status, count::bigint, bytes::bigint FROM {table}"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let (a, b, s, c, n): (i64, i64, i32, i64, Option<i64>) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let n = n.map(|n| n.to_string()).unwrap_or_default();
            format!("{a},{b},{s},{c},{n}")
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let want = &h.tables["warehouse"];
    assert_eq!(rows.len(), want.len(), "rows in PostgreSQL vs one run");
    assert_eq!(&rows, want);
}

/// Every golden case is also run by the kill harness.
#[test]
fn every_golden_case_is_killed() {
    let src = std::fs::read_to_string(root().join("crates/cli/tests/recovery.rs")).unwrap();
    for entry in std::fs::read_dir(root().join("tests/golden")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            let name = entry.file_name().into_string().unwrap();
            assert!(
                src.contains(&format!("kill_case(\"{name}\"")),
                "golden case {name} is not in the kill harness"
            );
        }
    }
}

/// Ctrl-C with checkpoints suspends: open windows are not flushed, the next run resumes them.
/// Ctrl-C with checkpoints leaves the archive's open files in progress for the next run, and
/// a finished file never changes again: readers may take a finished file as final.
#[test]
fn interrupt_keeps_archive_files_open_and_finished_files_final() {
    let h = Harness::example("http-status.toml", &["source.logs.rate=2500"]);
    let archive = h.out.path().join("raw");
    let finished = || -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![archive.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if !p.to_string_lossy().ends_with(".inprogress")
                    && !p.file_name().unwrap().to_string_lossy().starts_with('_')
                {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    };
    let mut child = h.start(&[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while finished().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(
            Instant::now() < deadline,
            "no archive file finished in a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    h.finish(child, "an interrupted run");
    let before = finished();
    let (_, open) = common::archive_content(&archive);
    assert!(
        !open.is_empty(),
        "the interrupted run left its open file in progress"
    );
    assert!(
        !before.is_empty(),
        "windows closed before the interrupt finished their files"
    );
    h.finish(h.start(&[]), "the last run");
    let after = finished();
    for (p, content) in &before {
        assert!(
            after.get(p) == Some(content),
            "{} changed after it was finished",
            p.display()
        );
    }
    h.assert_output("a Ctrl-C stop");
}

#[test]
fn interrupt_suspends_and_the_next_run_resumes() {
    let Some(h) = Harness::new("nasa-aug95-status") else {
        return;
    };
    for run in 1..=3 {
        let mut child = h.start(&[]);
        h.await_checkpoint_beyond(&mut child, h.checkpointed_offset(), run);
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        h.finish(child, "an interrupted run");
    }
    h.finish(h.start(&[]), "the last run");
    h.assert_output("three Ctrl-C stops");
}

/// The newest checkpoints damaged after a crash: weir warns, resumes from the newest intact
/// one, cuts the rows committed after it from the output and writes them again, so the output
/// is still exactly right.
#[test]
fn damaged_newest_checkpoints_fall_back_to_an_older_one() {
    let Some(h) = Harness::new("nasa-jul95-status") else {
        return;
    };
    let mut child = h.start(&["--checkpoint-retain", "20"]);
    let epochs = || -> Vec<std::path::PathBuf> {
        let mut all: Vec<_> = std::fs::read_dir(h.state())
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
            .collect();
        all.sort();
        all
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while epochs().len() < 14 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(Instant::now() < deadline, "no 14 checkpoints in a minute");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let epochs = epochs();
    assert!(epochs.len() >= 12, "want 12 checkpoints, have {epochs:?}");
    // The newest ten (250 ms of input, several windows) lose half of their stage state.
    for epoch in epochs.iter().rev().take(10) {
        let state = std::fs::read_dir(epoch)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("stage-"))
            .unwrap();
        let bytes = std::fs::read(&state).unwrap();
        std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    }
    let listed = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("checkpoints")
        .arg(h.state())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        listed.matches("DAMAGED: stage-counts.state has").count(),
        10,
        "{listed}"
    );
    assert!(
        listed.contains("running")
            && listed.contains("source logs: ")
            && listed.contains(" at byte "),
        "{listed}"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.current_dir(root())
        .env("WEIR_LOG", "info")
        .arg("run")
        .arg(&h.case.pipeline)
        .arg("--quiet")
        .args(h.case.sink_args(h.out.path()))
        .arg("--checkpoint-dir")
        .arg(h.state())
        .stdout(Stdio::null());
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("skipped a damaged checkpoint").count(),
        10,
        "{err}"
    );
    assert!(err.contains("bytes, the manifest says"), "{err}");
    assert!(
        err.contains("removing rows written after the checkpoint"),
        "the fallback had no rows to cut; the test proves nothing: {err}"
    );
    h.assert_output("resumed from the checkpoint before ten damaged ones");
}

/// A pipeline changed since its checkpoint is refused; --reset-state starts over.
#[test]
fn a_changed_pipeline_is_refused_until_reset() {
    let Some(h) = Harness::new("nasa-jul95-status") else {
        return;
    };
    h.kill_after_a_checkpoint();
    let out = h
        .start(&["--set", "stage.counts.window.size=\"10m\""])
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the pipeline changed since checkpoint epoch")
            && err.contains("stage counts changed")
            && err.contains("--reset-state"),
        "{err}"
    );
    h.finish(h.start(&["--reset-state"]), "a run with --reset-state");
    h.assert_output("after --reset-state");
}

/// Issue 10: --reset-state replays the input, and the raw archive kept the finished files of
/// the run before (every line twice). Now every output, archive included, holds one run.
#[test]
fn reset_state_writes_every_output_once() {
    let h = Harness::example("http-status.toml", &["source.logs.rate=5000"]);
    h.finish(h.start(&[]), "a complete checkpointed run");
    h.finish(h.start(&["--reset-state"]), "a run with --reset-state");
    h.assert_output("after a complete run and a run with --reset-state");
}

/// Issue 10: with every checkpoint damaged, weir warned and started over, replaying the input
/// into outputs that already held it (an archive then had 30,170 lines for 20,000). Now it
/// refuses, naming each damaged epoch, until --reset-state.
#[test]
fn all_checkpoints_damaged_refuses_until_reset() {
    let Some(h) = Harness::new("nasa-jul95-status") else {
        return;
    };
    h.kill_after_a_checkpoint();
    let mut damaged = 0;
    for epoch in std::fs::read_dir(h.state()).unwrap() {
        let epoch = epoch.unwrap().path();
        if epoch.to_string_lossy().ends_with(".tmp") {
            continue;
        }
        std::fs::remove_file(epoch.join("MANIFEST.json")).unwrap();
        damaged += 1;
    }
    assert!(
        damaged > 0,
        "the run took no checkpoint; the test proves nothing"
    );
    let out = h.start(&[]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("none of the {damaged} checkpoints"))
            && err.contains("--reset-state"),
        "{err}"
    );
    h.finish(h.start(&["--reset-state"]), "a run with --reset-state");
    h.assert_output("after all checkpoints were damaged and --reset-state");
}
