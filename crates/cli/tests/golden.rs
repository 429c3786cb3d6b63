//! Golden end-to-end cases: `tests/golden/<case>/pipeline.toml` run by the real binary, each
//! jsonl sink compared byte for byte with `expected/<sink>.jsonl`.
//! `UPDATE_GOLDEN=1` rewrites the expectations.

mod common;

use std::process::Command;

use common::{root, without_wall_clock, Case};

fn run_case(case: &str) {
    let c = Case::new(case);
    if c.input().is_none() {
        return;
    }
    let sinks = c.jsonl_sinks();
    assert!(
        !sinks.is_empty(),
        "{case}: a golden case needs a jsonl sink"
    );
    // One parser thread, and more than the chunks of a small input: the same output.
    for workers in ["1", "3"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(root())
            .arg("run")
            .arg(&c.pipeline)
            .arg("--quiet")
            .args(["--workers", workers])
            .args(c.sink_args(tmp.path()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{case}: weir --workers {workers} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for s in &sinks {
            let got = without_wall_clock(
                &std::fs::read_to_string(tmp.path().join(format!("{s}.jsonl"))).unwrap(),
            );
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                let p = c.expected_path(s);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, &got).unwrap();
                continue;
            }
            c.assert_output(
                s,
                &got,
                &format!("one uninterrupted run, --workers {workers}"),
            );
        }
    }
}

#[test]
fn golden_apache_logformat_hourly() {
    run_case("apache-logformat-hourly");
}

#[test]
fn golden_bundled_jul95_status() {
    run_case("bundled-jul95-status");
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

/// SQL functions (upper, LIKE, regexp_like, CASE, coalesce) in a filter, a key and a field;
/// `oracle.py` beside the case computes the same rows in plain Python.
#[test]
fn golden_nasa_aug95_content_kinds() {
    run_case("nasa-aug95-content-kinds");
}

/// A top-K per group (status class) over a sliding window, ranked by a sum of a computed
/// value, with ties; `oracle.py` beside the case ranks every window from scratch.
#[test]
fn golden_nasa_aug95_top_paths_by_class() {
    run_case("nasa-aug95-top-paths-by-class");
}

/// The cases with an `oracle.py` beside them: the plain-Python recomputation over the raw
/// input equals the expectation, so an expectation rewritten with `UPDATE_GOLDEN=1` is
/// checked by something other than weir.
#[test]
fn golden_expectations_equal_their_oracles() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have python3");
        eprintln!("skipping: python3 not installed");
        return;
    }
    let (mut checked, mut skipped) = (0, 0);
    for entry in std::fs::read_dir(root().join("tests/golden")).unwrap() {
        let dir = entry.unwrap().path();
        let oracle = dir.join("oracle.py");
        if !oracle.exists() {
            continue;
        }
        let c = Case::new(dir.file_name().unwrap().to_str().unwrap());
        let Some(input) = c.input() else {
            skipped += 1;
            continue;
        };
        // `oracle.py INPUT SINK` prints the rows of that sink.
        for sink in c.jsonl_sinks() {
            let out = Command::new("python3")
                .arg(&oracle)
                .arg(&input)
                .arg(&sink)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                oracle.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let want = std::fs::read_to_string(c.expected_path(&sink)).unwrap();
            assert!(
                String::from_utf8_lossy(&out.stdout) == want,
                "{}: the oracle's rows differ from expected/{sink}.jsonl",
                c.name
            );
            checked += 1;
        }
    }
    assert!(
        checked + skipped >= 4,
        "only {checked} oracle outputs checked"
    );
}

/// Real clickstream (Taobao): hot items per sliding hour, and per behaviour the categories
/// with the most distinct users per half hour; `oracle.py` recomputes both.
#[test]
fn golden_taobao_hot_items() {
    run_case("taobao-hot-items");
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
