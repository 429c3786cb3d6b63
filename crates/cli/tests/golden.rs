//! Golden end-to-end cases: `tests/golden/<case>/pipeline.toml` run by the real binary, each
//! jsonl sink compared byte for byte with `expected/<sink>.jsonl`.
//! `UPDATE_GOLDEN=1` rewrites the expectations.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn jsonl_sinks(pipeline: &Path) -> Vec<String> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(pipeline).unwrap()).unwrap();
    let sinks = doc
        .get("sink")
        .and_then(|s| s.as_table())
        .cloned()
        .unwrap_or_default();
    sinks
        .iter()
        .filter(|(_, v)| v.get("type").and_then(|t| t.as_str()) == Some("jsonl"))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Drops `"fired_at"` (the wall-clock time an alert left), the one field that differs between
/// runs.
fn without_wall_clock(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(r#","fired_at":""#) {
            Some(i) => {
                let rest = &l[i + 13..];
                let end = rest.find('"').map_or(rest.len(), |e| e + 1);
                format!("{}{}\n", &l[..i], &rest[end..])
            }
            None => format!("{l}\n"),
        })
        .collect()
}

fn run_case(case: &str) {
    let root = root();
    let dir = root.join("tests/golden").join(case);
    let pipeline = dir.join("pipeline.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let input = text
        .lines()
        .find_map(|l| l.strip_prefix("path = \"../shared/"))
        .map(|p| root.join("../shared").join(p.trim_end_matches('"')));
    if let Some(input) = input.filter(|p| !p.exists()) {
        eprintln!(
            "skipping golden case {case}: {} is not here (../shared/data is optional)",
            input.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sinks = jsonl_sinks(&pipeline);
    assert!(
        !sinks.is_empty(),
        "{case}: a golden case needs a jsonl sink"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.current_dir(&root)
        .arg("run")
        .arg(&pipeline)
        .arg("--quiet");
    for s in &sinks {
        cmd.arg("--set").arg(format!(
            "sink.{s}.path={}",
            tmp.path().join(format!("{s}.jsonl")).display()
        ));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{case}: weir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in &sinks {
        let got = without_wall_clock(
            &std::fs::read_to_string(tmp.path().join(format!("{s}.jsonl"))).unwrap(),
        );
        let expected_path = dir.join("expected").join(format!("{s}.jsonl"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} missing; run with UPDATE_GOLDEN=1",
                expected_path.display()
            )
        });
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(a, b)| a != b);
            panic!(
                "{case}/{s}: output differs from {} ({} lines vs {} expected; first difference at line {:?})\n got: {:?}\nwant: {:?}",
                expected_path.display(),
                got.lines().count(),
                want.lines().count(),
                first.map(|i| i + 1),
                first.and_then(|i| got.lines().nth(i)),
                first.and_then(|i| want.lines().nth(i)),
            );
        }
    }
}

#[test]
fn golden_nasa_jul95_status() {
    run_case("nasa-jul95-status");
}

#[test]
fn golden_nasa_aug95_status() {
    run_case("nasa-aug95-status");
}

#[test]
fn golden_nasa_aug95_error_classes() {
    run_case("nasa-aug95-error-classes");
}

#[test]
fn golden_nasa_jul95_error_spikes() {
    run_case("nasa-jul95-error-spikes");
}

#[test]
fn golden_nasa_random_sliding() {
    run_case("nasa-random-sliding");
}

#[test]
fn golden_apache_combined_hourly() {
    run_case("apache-combined-hourly");
}

/// Every folder under tests/golden has a test above.
#[test]
fn every_golden_case_is_run() {
    let src = std::fs::read_to_string(file!()).unwrap_or_else(|_| {
        std::fs::read_to_string(root().join("crates/cli/tests/golden.rs")).unwrap()
    });
    for entry in std::fs::read_dir(root().join("tests/golden")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            let name = entry.file_name().into_string().unwrap();
            assert!(
                src.contains(&format!("run_case(\"{name}\")")),
                "golden case {name} has no test"
            );
        }
    }
}
