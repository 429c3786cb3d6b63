//! Per-node counters, shared between a node's thread and whoever reports progress.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::time::Millis;

/// How many reasons of dropped records each node keeps for the run summary.
pub const KEPT_REASONS: usize = 5;

/// Counters of one node. All fields only grow, except `watermark`.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Bytes read (sources).
    pub bytes_in: AtomicU64,
    /// Records that entered the node (for sources: lines or messages read).
    pub records_in: AtomicU64,
    /// Records that left on the main output.
    pub records_out: AtomicU64,
    /// Records that could not be parsed or used (sent to the errors port).
    pub malformed: AtomicU64,
    /// Records that arrived after their window closed (sent to the late port).
    pub late: AtomicU64,
    /// Records a stage flagged (sent to the alerts port).
    pub alerts: AtomicU64,
    /// Records a stage recognised as copies (sent to the duplicates port).
    pub duplicates: AtomicU64,
    /// Blank lines a source's parser skipped.
    pub blank: AtomicU64,
    /// Rows a source's parser kept although a part could not be split as the format says
    /// (see `ParseCounts::odd`).
    pub odd: AtomicU64,
    /// Batches emitted on the main output.
    pub emitted: AtomicU64,
    /// Windows closed (windowed stages).
    pub windows: AtomicU64,
    /// Last watermark seen, `i64::MIN` before the first.
    pub watermark: AtomicI64,
    /// The first few reasons for malformed or dropped records.
    pub first_reasons: Mutex<Vec<String>>,
    /// A sink's own account of what it did, for the summary (see `Sink::summary`).
    pub detail: Mutex<Option<String>>,
    /// The window ends a stage's instances closed, for counting each window once.
    closed: Mutex<ClosedWindows>,
}

/// Window ends closed by the instances of one keyed stage. Each instance closes the same
/// window (end) for its own keys; `windows` counts an end once. An instance closes ends in
/// increasing order and never one at or below the watermark it has passed, so ends at or
/// below every instance's watermark are forgotten: the set holds only the ends between the
/// slowest and the fastest instance.
#[derive(Debug, Default)]
struct ClosedWindows {
    ends: BTreeSet<Millis>,
    /// The last watermark each instance passed to its operator.
    passed: Vec<Millis>,
}

impl NodeMetrics {
    /// New zeroed counters.
    pub fn new() -> Self {
        NodeMetrics {
            watermark: AtomicI64::new(i64::MIN),
            ..Default::default()
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Remembers `reason` if fewer than [`KEPT_REASONS`] are kept.
    pub fn note_reason(&self, reason: impl FnOnce() -> String) {
        let mut r = self.first_reasons.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() < KEPT_REASONS {
            r.push(reason());
        }
    }

    /// Counts the windows (by end) that instance `index` of `of` closed; `passed` is the
    /// watermark the instance has handed its operator, if it has had one since the last call.
    pub fn windows_closed(&self, index: usize, of: usize, ends: &[Millis], passed: Option<Millis>) {
        if of <= 1 {
            Self::add(&self.windows, ends.len() as u64);
            return;
        }
        if ends.is_empty() && passed.is_none() {
            return;
        }
        let mut c = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if c.passed.len() != of {
            c.passed = vec![Millis::MIN; of];
        }
        let new = ends.iter().filter(|&&e| c.ends.insert(e)).count();
        Self::add(&self.windows, new as u64);
        if let Some(w) = passed {
            c.passed[index] = c.passed[index].max(w);
            let floor = c.passed.iter().copied().min().unwrap_or(Millis::MIN);
            let keep = c.ends.split_off(&floor.saturating_add(1));
            c.ends = keep;
        }
    }

    /// Sets the node's own account of what it did.
    pub fn set_detail(&self, detail: Option<String>) {
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail;
    }

    /// The node's own account of what it did, if it gave one.
    pub fn detail(&self) -> Option<String> {
        self.detail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The kept reasons.
    pub fn reasons(&self) -> Vec<String> {
        self.first_reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
