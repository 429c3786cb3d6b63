//! The Parquet tables weir writes, read by real clients: DuckDB and pyarrow (from PyPI; CI
//! installs them) must see the same rows and sums as `weir query`, with typed columns.

mod common;

use std::process::Command;

use common::root;

fn weir(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weir {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Rows, sums and partitions of status_counts, as `weir query` sees them.
fn totals(dir: &std::path::Path) -> serde_json::Value {
    let out = weir(
        &[
            "query",
            "--format",
            "json",
            "SELECT count(*) AS rows, sum(count) AS sum_count, sum(bytes) AS sum_bytes, \
             count(DISTINCT dt) AS dts FROM status_counts",
        ],
        dir,
    );
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn duckdb_and_pyarrow_read_what_weir_query_reads() {
    let have = Command::new("python3")
        .args(["-c", "import duckdb, pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install duckdb and pyarrow (pip) for this test"
        );
        eprintln!(
            "skipping: python3 with duckdb and pyarrow is not here (pip install duckdb pyarrow)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = root().join("examples/http-status.toml");
    let tables = tmp.path().join("tables");
    weir(
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--quiet",
            "--set",
            &format!(
                "source.logs.path={}",
                root()
                    .join("examples/data/nasa_jul95_first10000.log.gz")
                    .display()
            ),
            "--set",
            "sink.warehouse.roll_size=\"200B\"",
        ],
        tmp.path(),
    );
    let ours = totals(tmp.path());
    assert_eq!(
        ours["sum_count"], 10_000,
        "every line of the sample counted once"
    );
    let out = Command::new("python3")
        .arg(root().join("tests/interop/parquet_readers.py"))
        .arg(tables.join("status_counts"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for reader in ["duckdb", "pyarrow"] {
        let r = &theirs[reader];
        for k in ["rows", "sum_count", "sum_bytes"] {
            assert_eq!(r[k], ours[k], "{reader} {k}: {theirs}");
        }
        assert_eq!(
            r["dt"],
            serde_json::json!(["1995-07-01"]),
            "{reader}: {theirs}"
        );
    }
    assert!(
        theirs["duckdb"]["window_start"]
            .as_str()
            .unwrap()
            .starts_with("TIMESTAMP"),
        "{theirs}"
    );
    assert_eq!(theirs["pyarrow"]["window_start"], "timestamp[ms, tz=UTC]");
    let listed = weir(&["tables"], tmp.path());
    assert!(
        listed.contains("status_counts") && listed.contains(&format!("{} rows", ours["rows"])),
        "{listed}"
    );

    // Compaction merges the small files (4 KiB rolls) without changing a row.
    let files = |t: &str| {
        t.split(" rows in ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap()
    };
    let before = files(&listed);
    let said = weir(&["compact", "status_counts", "--min-age", "0s"], tmp.path());
    assert!(said.contains("partitions merged"), "{said}");
    let after = files(&weir(&["tables"], tmp.path()));
    assert!(
        after < before,
        "{before} files before, {after} after: {said}"
    );
    let again = totals(tmp.path());
    assert_eq!(again, ours, "the same rows after compaction");
}
