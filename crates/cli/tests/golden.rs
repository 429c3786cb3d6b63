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

/// The approximate top-K on the same real clicks (flat: the most viewed item of an hour has
/// a few of up to ~49,000 views, so Space-Saving evicts nearly every key): in every window,
/// against every item's true count (the exact top-K with K above the item count), each count
/// is within N / counters and no item left out has a true count more than 2N / counters
/// above a listed one's; the same windows, ranks 1..=3.
#[test]
fn approximate_hot_items_stay_within_the_bound_on_real_clicks() {
    let c = Case::new("taobao-hot-items");
    if c.input().is_none() {
        return;
    }
    type Windows = std::collections::BTreeMap<String, Vec<(i64, i64, i64)>>;
    let run = |extra: &[&str]| -> Windows {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(root())
            .arg("run")
            .arg(&c.pipeline)
            .arg("--quiet")
            .args(c.sink_args(tmp.path()))
            .args(extra.iter().flat_map(|e| ["--set", e]))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut windows = Windows::new();
        for line in std::fs::read_to_string(tmp.path().join("out.jsonl"))
            .unwrap()
            .lines()
        {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let int = |k: &str| r[k].as_i64().unwrap();
            windows
                .entry(r["window_end"].as_str().unwrap().to_string())
                .or_default()
                .push((int("rank"), int("item_id"), int("count")));
        }
        windows
    };
    let truth = run(&["stage.hot_items.k=100000"]);
    let counters = 100i64;
    let got = run(&["stage.hot_items.approximate={ counters = 100 }"]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        truth.keys().collect::<Vec<_>>()
    );
    let mut evicted = 0;
    for (w, rows) in &got {
        let all: std::collections::HashMap<i64, i64> =
            truth[w].iter().map(|&(_, item, n)| (item, n)).collect();
        let n: i64 = all.values().sum();
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            (1..=3.min(all.len() as i64)).collect::<Vec<_>>(),
            "{w}"
        );
        for &(_, item, est) in rows {
            let t = all.get(&item).copied().unwrap_or(0);
            assert!(
                (est - t).abs() * counters <= n,
                "{w}: item {item} counted {est}, truly {t}, of {n} views"
            );
            evicted += usize::from(est != t);
        }
        for (item, t) in &all {
            if rows.iter().any(|r| r.1 == *item) {
                continue;
            }
            for &(_, listed, _) in rows {
                let tl = all.get(&listed).copied().unwrap_or(0);
                assert!(
                    t * counters <= tl * counters + 2 * n,
                    "{w}: item {item} ({t} views) left out for {listed} ({tl})"
                );
            }
        }
    }
    // The data makes Space-Saving work: most counts are not exact.
    assert!(evicted > 50, "only {evicted} approximate counts differ");
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
