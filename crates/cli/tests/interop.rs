//! The Parquet tables and archives weir writes, read by real clients: DuckDB and pyarrow (from
//! PyPI; CI installs them) must see the same rows and sums as `weir query`, with typed
//! columns; DuckDB and Python's gzip must read every record of a gzip archive of many members.

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

/// Whether python3 with duckdb and pyarrow is here (CI must have them).
fn have_readers() -> bool {
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
    }
    have
}

#[test]
fn duckdb_and_gzip_read_every_record_of_an_archive() {
    if !have_readers() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sample = root().join("examples/data/nasa_jul95_first10000.log.gz");
    let pipeline = root().join("tests/interop/archive.toml");
    weir(
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--quiet",
            "--set",
            &format!("source.logs.path={}", sample.display()),
        ],
        tmp.path(),
    );
    let out = Command::new("python3")
        .arg(root().join("tests/interop/archive_readers.py"))
        .arg(tmp.path().join("archive/records"))
        .arg(tmp.path().join("archive/raw"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The sample's 10 000 lines and their byte total.
    for reader in ["gzip", "duckdb"] {
        assert_eq!(seen[reader]["rows"], 10_000, "{reader}: {seen}");
        assert_eq!(seen[reader]["lines"], 10_000, "{reader}: {seen}");
        assert_eq!(
            seen[reader]["sum_bytes"], seen["gzip"]["sum_bytes"],
            "{seen}"
        );
    }
    assert_eq!(seen["duckdb"]["hours"], 4, "{seen}");
    assert!(
        seen["most_members"].as_u64().unwrap() > 3,
        "the test needs files of many members: {seen}"
    );
    let mut raw = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&sample).unwrap()),
        &mut raw,
    )
    .unwrap();
    let (archived, unfinished) = common::archive_content(&tmp.path().join("archive/raw"));
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert_eq!(
        archived.values().map(String::as_str).collect::<String>(),
        raw,
        "the raw archive, window by window, is the input line for line"
    );
}

#[test]
fn duckdb_and_pyarrow_read_what_weir_query_reads() {
    if !have_readers() {
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
            // Paced: at most 1,000 lines a step, each step a watermark, so each hour's
            // windows reach the table in several batches, hence several files to compact.
            // Unpaced, the whole sample could be one chunk and one batch per hour (the
            // compaction below then found nothing to merge in about one run of four).
            "--set",
            "source.logs.rate=20000",
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
