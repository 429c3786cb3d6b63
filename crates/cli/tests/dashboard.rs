//! The dashboard in a real browser: `weir run` serves it while `weir gen clicks --to` feeds
//! the pipeline live, and headless Chromium (Debian's, driven by playwright-core from
//! tests/browser) checks that the top-K list fills and changes, the chart draws, and the
//! health table counts; the screenshot is kept as target/artifacts/dashboard.png.
//!
//! Needs /usr/bin/chromium (`apt-get install chromium`) and Node; the test installs
//! playwright-core with `npm ci` if tests/browser has no node_modules. Without Chromium it is
//! skipped with a message, except under CI=true, where it fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{root, Serving};

const PIPELINE: &str = r#"
[server]
listen = "127.0.0.1:0"
dashboard = ["top_cart", { output = "per_action", title = "Clicks per second by action" }]

[source.clicks]
type = "http"
format = { type = "json", fields = [
  { name = "timestamp", type = "timestamp", required = true },
  { name = "action", type = "string", required = true },
  { name = "product_id", type = "string" },
] }
event_time = { field = "timestamp", max_out_of_orderness = "500ms" }

[stage.carts]
type = "filter"
input = "clicks"
where = "action = 'add_to_cart' OR action = 'view'"

[stage.top_cart]
type = "top_k"
input = "carts"
time_field = "timestamp"
window = { type = "sliding", size = "5s", slide = "1s" }
key = ["product_id"]
k = 5

[stage.per_action]
type = "aggregate"
input = "clicks"
time_field = "timestamp"
window = { type = "tumbling", size = "1s" }
group_by = ["action"]
aggregates = [{ fn = "count" }]
"#;

/// Kills the child when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have_playwright(dir: &Path) -> bool {
    if dir.join("node_modules/playwright-core").is_dir() {
        return true;
    }
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status();
    matches!(npm, Ok(s) if s.success())
}

#[test]
fn the_dashboard_shows_top_k_changes_a_chart_and_health_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let browser_dir = root().join("tests/browser");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !Path::new(&chromium).exists() || !have_playwright(&browser_dir) {
        let why = format!(
            "no {chromium} or no playwright-core in {} (apt-get install chromium; npm ci there)",
            browser_dir.display()
        );
        assert!(!ci, "CI must run the browser test: {why}");
        eprintln!("SKIPPED the browser test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, PIPELINE).unwrap();
    let run = Serving::start(dir.path(), &file);
    let (url, first) = (run.url.clone(), run.first.clone());
    assert!(
        first.contains(&format!("dashboard of per_action, top_cart at {url}/")),
        "{first}"
    );
    // Live clicks: event time is the wall clock, 4,000 a second, until the test ends.
    let _gen = Killed(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args([
                "gen",
                "clicks",
                "-n",
                "0",
                "--rate",
                "4000",
                "--products",
                "40",
            ])
            .args(["--to", &format!("{url}/ingest/clicks")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let artifacts = root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let out = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(format!("{url}/"))
        .arg(&shot)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser check failed: {}\n{report}\n(screenshot: {})",
        String::from_utf8_lossy(&out.stderr),
        shot.display()
    );
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(report["painted"].as_u64().unwrap() >= 500, "{report}");
    // One line per action the generator writes.
    let legend = report["legend"].to_string();
    for action in ["view", "search", "add_to_cart"] {
        assert!(legend.contains(action), "{legend}");
    }
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // What the page showed is what REST and /metrics say.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = agent
        .get(&format!("{url}/api/outputs/top_cart"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let top: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ranks: Vec<i64> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_i64().unwrap())
        .collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5], "{body}");
    let metrics = agent
        .get(&format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let accepted: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("weir_ingest_records_accepted_total{endpoint=\"/ingest/clicks\"} ")
        })
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(accepted > 1000, "{metrics}");
    drop(run);
}
