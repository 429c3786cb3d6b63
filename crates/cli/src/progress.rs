//! Progress on a terminal while a pipeline runs, and the summary when it ends.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_core::metrics::NodeMetrics;
use weir_runtime::{NodeInfo, NodeKind};

/// A progress bar (known input size) or spinner on stderr, when stderr is a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    nodes: Vec<NodeInfo>,
}

fn sum(nodes: &[NodeInfo], kind: NodeKind, f: impl Fn(&NodeMetrics) -> u64) -> u64 {
    nodes
        .iter()
        .filter(|n| n.kind == kind)
        .map(|n| f(&n.metrics))
        .sum()
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Progress {
    /// A display for these nodes (nothing is drawn unless stderr is a terminal).
    pub fn new(nodes: &[NodeInfo]) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let total: Option<u64> = nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Source)
                .map(|n| n.size_hint)
                .sum();
            let bar = match total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
                    )
                    .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                        .expect("valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar
        });
        Progress {
            bar,
            nodes: nodes.to_vec(),
        }
    }

    /// Redraws with current counters.
    pub fn tick(&mut self, elapsed: Duration) {
        let Some(bar) = &self.bar else { return };
        let n = &self.nodes;
        let lines = sum(n, NodeKind::Source, |m| get(&m.records_in));
        let bytes = sum(n, NodeKind::Source, |m| get(&m.bytes_in));
        let secs = elapsed.as_secs_f64().max(1e-3);
        bar.set_position(bytes);
        bar.set_message(format!(
            "{} lines · {} lines/s · {:.1} MiB/s · {} malformed · {} late · {} windows",
            thousands(lines),
            thousands((lines as f64 / secs) as u64),
            mib(bytes) / secs,
            thousands(sum(n, NodeKind::Source, |m| get(&m.malformed))),
            thousands(sum(n, NodeKind::Stage, |m| get(&m.late))),
            thousands(sum(n, NodeKind::Stage, |m| get(&m.windows))),
        ));
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The end-of-run summary.
pub fn summary(nodes: &[NodeInfo], wall: Duration) -> String {
    let secs = wall.as_secs_f64().max(1e-6);
    let mut out = format!("weir: finished in {secs:.2} s\n");
    for n in nodes {
        let m = &n.metrics;
        match n.kind {
            NodeKind::Source => {
                let (lines, bytes) = (get(&m.records_in), get(&m.bytes_in));
                out.push_str(&format!(
                    "  source {}: {} lines read ({:.1} MiB), {} rows parsed, {} malformed; {} lines/s, {:.1} MiB/s\n",
                    n.name,
                    thousands(lines),
                    mib(bytes),
                    thousands(get(&m.records_out)),
                    thousands(get(&m.malformed)),
                    thousands((lines as f64 / secs) as u64),
                    mib(bytes) / secs,
                ));
                // Every line read is a row, a dead letter or blank; odd rows are rows.
                let (odd, blank) = (get(&m.odd), get(&m.blank));
                if odd > 0 {
                    out.push_str(&format!(
                        "    {} {} kept with a request that is not `METHOD PATH PROTOCOL` \
                         (method/path/protocol split best-effort)\n",
                        thousands(odd),
                        if odd == 1 { "row" } else { "rows" }
                    ));
                }
                if blank > 0 {
                    out.push_str(&format!(
                        "    {} blank {} skipped\n",
                        thousands(blank),
                        if blank == 1 { "line" } else { "lines" }
                    ));
                }
                for r in m.reasons() {
                    out.push_str(&format!("    malformed: {r}\n"));
                }
            }
            NodeKind::Stage => {
                out.push_str(&format!(
                    "  stage {}: {} rows in, {} late, {} rows out",
                    n.name,
                    thousands(get(&m.records_in)),
                    thousands(get(&m.late)),
                    thousands(get(&m.records_out)),
                ));
                if get(&m.alerts) > 0 {
                    out.push_str(&format!(
                        ", {} flagged (to {}.alerts)",
                        thousands(get(&m.alerts)),
                        n.name
                    ));
                }
                if get(&m.duplicates) > 0 {
                    out.push_str(&format!(
                        ", {} duplicates (to {}.duplicates)",
                        thousands(get(&m.duplicates)),
                        n.name
                    ));
                }
                // Rows whose expression failed (and sums too large for their type).
                if get(&m.malformed) > 0 {
                    out.push_str(&format!(
                        ", {} errors (to {}.errors)",
                        thousands(get(&m.malformed)),
                        n.name
                    ));
                }
                match get(&m.windows) {
                    0 => out.push('\n'),
                    w => out.push_str(&format!("; {} windows closed\n", thousands(w))),
                }
            }
            NodeKind::Sink => out.push_str(&format!(
                "  sink {}: {}\n",
                n.name,
                m.detail()
                    .unwrap_or_else(|| format!("{} rows written", thousands(get(&m.records_out))))
            )),
        }
    }
    out
}

/// Byte counts as `812 B`, `3.4 KiB`, `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", mib(n)),
    }
}

/// The checkpoint lines of the summary.
pub fn checkpoint_summary(s: &weir_runtime::checkpoint::CheckpointStats, dir: &str) -> String {
    let mut out = String::new();
    let restored = get(&s.restored_epoch);
    if restored > 0 {
        out.push_str(&format!(
            "  resumed from checkpoint epoch {restored}: {} of state restored in {:.1} ms\n",
            bytes(get(&s.restored_bytes)),
            get(&s.restore_us) as f64 / 1000.0
        ));
    }
    let done = get(&s.completed);
    out.push_str(&format!(
        "  checkpoints in {dir}: {done} taken{}",
        match get(&s.failed) {
            0 => String::new(),
            f => format!(", {f} FAILED"),
        }
    ));
    if done > 0 {
        out.push_str(&format!(
            "; last epoch {} ({}, {:.1} ms from barrier to durable); largest {}, slowest {:.1} ms",
            get(&s.last_epoch),
            bytes(get(&s.last_bytes)),
            get(&s.last_us) as f64 / 1000.0,
            bytes(get(&s.max_bytes)),
            get(&s.max_us) as f64 / 1000.0,
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(1234567), "1,234,567");
        assert_eq!(super::thousands(100), "100");
    }
}
