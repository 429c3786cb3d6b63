//! weir against the peers' reference oracle (`../shared/peers/ref_oracle.py`, the W1
//! status-count contract that Spark, Flink and Bytewax all match) on input from the peers'
//! own generator, malformed lines and 30 s disorder included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn peers() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers");
    p.join("ref_oracle.py").exists().then_some(p)
}

fn python(args: &[&str], dir: &Path, stdout: Option<&Path>) {
    let mut cmd = Command::new("python3");
    cmd.args(args).current_dir(dir);
    if let Some(out) = stdout {
        cmd.stdout(std::fs::File::create(out).unwrap());
    }
    let st = cmd.status().expect("python3 runs");
    assert!(st.success(), "python3 {args:?} failed");
}

fn iso_to_ms(s: &str) -> i64 {
    // "1995-07-01T04:05:00Z"
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let days = {
        let (y, m, d) = (n(0..4), n(5..7), n(8..10));
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    };
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000
}

#[test]
fn w1_status_counts_equal_the_reference_oracle() {
    let Some(peers) = peers() else {
        eprintln!("skipping: ../shared/peers not found");
        return;
    };
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipping: python3 not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("clf.log");
    let oracle = tmp.path().join("ref.csv");
    python(&["gen_clf.py", "200000", "7"], &peers, Some(&input));
    python(
        &[
            "ref_oracle.py",
            "w1",
            input.to_str().unwrap(),
            oracle.to_str().unwrap(),
        ],
        &peers,
        None,
    );

    let pipeline = tmp.path().join("w1.toml");
    let out = tmp.path().join("weir.jsonl");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[source.logs]
type = "file"
path = "{}"
format = {{ type = "clf", malformed_status = 999 }}
event_time = {{ field = "timestamp", max_out_of_orderness = "60s" }}

[stage.w1]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = {{ type = "tumbling", size = "5m" }}
group_by = ["status"]
aggregates = [{{ fn = "count" }}]

[sink.out]
type = "jsonl"
input = "w1"
path = "{}"
"#,
            input.display(),
            out.display()
        ),
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--quiet"])
        .arg(&pipeline)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let mut want = BTreeMap::new();
    for line in std::fs::read_to_string(&oracle).unwrap().lines().skip(1) {
        let f: Vec<i64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        want.insert((f[0], f[1]), f[2]);
    }
    let mut got = BTreeMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let end = iso_to_ms(v["window_end"].as_str().unwrap());
        got.insert(
            (end, v["status"].as_i64().unwrap()),
            v["count"].as_i64().unwrap(),
        );
    }
    assert!(want.len() > 200, "the oracle produced {} rows", want.len());
    assert!(
        want.keys().any(|k| k.1 == 999),
        "the input has malformed lines"
    );
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        diff.is_empty(),
        "weir differs from the oracle, e.g. {diff:?} (weir: {:?})",
        diff.iter().map(|(k, _)| got.get(k)).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), want.len());
}
