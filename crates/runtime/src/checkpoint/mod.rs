//! Checkpoints: aligned barriers, a coordinator that makes epochs durable, and sink commits.
//!
//! ```text
//!  coordinator ──request epoch N──▶ sources: note position, send Barrier(N) on every output
//!       ▲                           stages:  aligned on N ─▶ snapshot ─▶ forward Barrier(N)
//!       │ state of N, per node      sinks:   aligned on N ─▶ pre_commit (stage output under N)
//!       └──────────────────────────
//!  all states of N in ─▶ write epoch folder (fsync, manifest last, rename) ─▶ commit(N) to sinks
//! ```
//! One epoch is in flight at a time; the next is requested `interval` after the last one
//! completed. A node that has finished (its input ended, or the pipeline was stopped) reports
//! its final state once; every later epoch carries it, and when all nodes have finished one
//! last epoch holds the final states, so a restart after a complete run reads nothing twice.

pub mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use weir_core::time::now_ms;
use weir_core::{Error, Result, SourcePosition};

pub use store::{Loaded, Manifest, NodeEntry, Store};

/// How a pipeline checkpoints.
pub struct Checkpointing {
    /// Where epochs are written.
    pub store: Store,
    /// Time from one completed checkpoint to the next request.
    pub interval: Duration,
    /// A digest of each node's configuration, by node name.
    pub fingerprints: std::collections::BTreeMap<String, String>,
    /// The checkpoint to resume from, if any.
    pub restore: Option<Loaded>,
}

impl Checkpointing {
    /// Refuses to resume a checkpoint taken by a pipeline of another shape.
    pub fn check_compatible(&self) -> Result<()> {
        let Some(l) = &self.restore else {
            return Ok(());
        };
        let mut problems = Vec::new();
        for n in &l.manifest.nodes {
            match self.fingerprints.get(&n.name) {
                None => problems.push(format!("{} {} was removed", n.kind, n.name)),
                Some(f) if *f != n.fingerprint => {
                    problems.push(format!("{} {} changed", n.kind, n.name))
                }
                Some(_) => {}
            }
        }
        for name in self.fingerprints.keys() {
            if !l.manifest.nodes.iter().any(|n| &n.name == name) {
                problems.push(format!("{name} was added"));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::State(format!(
            "the pipeline changed since checkpoint epoch {} in {}: {}. Its state cannot be \
             resumed; run with --reset-state to discard it and start from the beginning",
            l.manifest.epoch,
            self.store.dir().display(),
            problems.join(", ")
        )))
    }
}

/// Live checkpoint figures, for the summary and metrics.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    /// Completed checkpoints in this run.
    pub completed: AtomicU64,
    /// Checkpoints that could not be written.
    pub failed: AtomicU64,
    /// Epoch of the newest completed checkpoint.
    pub last_epoch: AtomicU64,
    /// When it became durable, in milliseconds since 1970 (0: none yet).
    pub last_at_ms: AtomicU64,
    /// Its size in bytes (state files and manifest).
    pub last_bytes: AtomicU64,
    /// Time from its request to durable, in microseconds.
    pub last_us: AtomicU64,
    /// The largest checkpoint of the run, in bytes.
    pub max_bytes: AtomicU64,
    /// The slowest checkpoint of the run, in microseconds.
    pub max_us: AtomicU64,
    /// Time spent writing state files and the manifest, summed, in microseconds.
    pub write_us: AtomicU64,
    /// Epoch resumed from (0: none).
    pub restored_epoch: AtomicU64,
    /// Bytes of state read when resuming.
    pub restored_bytes: AtomicU64,
    /// Time to restore every node's state and seek every source, in microseconds.
    pub restore_us: AtomicU64,
}

/// What a node tells the coordinator.
pub(crate) enum Report {
    /// A node's state: for `epoch`, or its final one (`None`) when it finished.
    State {
        node: usize,
        epoch: Option<u64>,
        state: Vec<u8>,
        position: Option<SourcePosition>,
    },
    /// The node failed; no more checkpoints can complete.
    Failed,
}

/// What a node needs to take part in checkpoints.
#[derive(Clone)]
pub(crate) struct NodeCk {
    pub node: usize,
    pub reports: Sender<Report>,
    /// The newest epoch requested (sources inject a barrier when it grows).
    pub requested: Arc<AtomicU64>,
}

impl NodeCk {
    pub(crate) fn report(
        &self,
        epoch: Option<u64>,
        state: Vec<u8>,
        position: Option<SourcePosition>,
    ) -> Result<()> {
        self.reports
            .send(Report::State {
                node: self.node,
                epoch,
                state,
                position,
            })
            .map_err(|_| Error::Stopped("the checkpoint coordinator".into()))
    }
}

/// Static facts about a node instance, for the manifest.
pub(crate) struct NodeMeta {
    pub name: String,
    pub kind: &'static str,
    pub fingerprint: String,
    /// Which instance of the node this is, of how many (the instances' slots are adjacent).
    pub instance: usize,
    pub instances: usize,
}

/// The states of a node's instances as one state file.
pub(crate) fn encode_instances(states: &[&[u8]]) -> Result<Vec<u8>> {
    weir_core::state::encode("instances", 1, &states)
}

/// The states of a node's instances from one state file written with `instances` of them.
pub(crate) fn decode_instances(bytes: &[u8], instances: usize) -> Result<Vec<Vec<u8>>> {
    if instances <= 1 {
        return Ok(vec![bytes.to_vec()]);
    }
    let states: Vec<Vec<u8>> = weir_core::state::decode("instances", 1, bytes)?;
    if states.len() != instances {
        return Err(Error::State(format!(
            "a state file holds {} instances, its manifest says {instances}",
            states.len()
        )));
    }
    Ok(states)
}

struct Snap {
    state: Vec<u8>,
    position: Option<SourcePosition>,
}

/// Writes epochs as the nodes report; tells sinks when an epoch is durable.
pub(crate) struct Coordinator {
    pub store: Store,
    pub interval: Duration,
    pub nodes: Vec<NodeMeta>,
    pub requested: Arc<AtomicU64>,
    pub reports: Receiver<Report>,
    pub commits: Vec<Sender<u64>>,
    pub stats: Arc<CheckpointStats>,
    pub stop: Arc<AtomicBool>,
    /// The first epoch of this run (one after the restored one).
    pub first_epoch: u64,
}

/// Consecutive failed checkpoints after which the pipeline stops.
const MAX_FAILURES: u64 = 5;

impl Coordinator {
    pub(crate) fn run(self) -> Result<()> {
        let n = self.nodes.len();
        let mut next_epoch = self.first_epoch;
        let mut inflight: Option<(u64, Instant, Vec<Option<Snap>>)> = None;
        let mut finished: Vec<Option<Snap>> = (0..n).map(|_| None).collect();
        // Nodes whose final state is not in a completed epoch yet.
        let mut unsaved = vec![false; n];
        let mut failures = 0u64;
        let mut next_at = Instant::now() + self.interval;
        loop {
            let all_finished = finished.iter().all(Option::is_some);
            if inflight.is_none() && !all_finished && Instant::now() >= next_at {
                self.requested.store(next_epoch, Ordering::SeqCst);
                inflight = Some((next_epoch, Instant::now(), (0..n).map(|_| None).collect()));
                next_epoch += 1;
            }
            if inflight.is_none() && all_finished && (failures == 0 || Instant::now() >= next_at) {
                if !unsaved.contains(&true) {
                    return Ok(());
                }
                // Everything finished after the last epoch: one more holds the final states.
                inflight = Some((next_epoch, Instant::now(), (0..n).map(|_| None).collect()));
                next_epoch += 1;
            }
            let wait = next_at
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            let wait = if inflight.is_some() {
                Duration::from_millis(100)
            } else {
                wait
            };
            let complete = |slots: &[Option<Snap>], finished: &[Option<Snap>]| {
                (0..n).all(|i| slots[i].is_some() || finished[i].is_some())
            };
            let ready = matches!(&inflight, Some((_, _, slots)) if complete(slots, &finished));
            let received = if ready {
                Err(RecvTimeoutError::Timeout)
            } else {
                self.reports.recv_timeout(wait)
            };
            match received {
                Ok(Report::State {
                    node,
                    epoch,
                    state,
                    position,
                }) => {
                    let snap = Snap { state, position };
                    match (epoch, &mut inflight) {
                        (None, _) => {
                            finished[node] = Some(snap);
                            unsaved[node] = true;
                        }
                        (Some(e), Some((cur, _, slots))) if e == *cur => slots[node] = Some(snap),
                        (Some(e), _) => {
                            return Err(Error::Internal(format!(
                                "node {} reported epoch {e}, which is not in flight",
                                self.nodes[node].name
                            )))
                        }
                    }
                }
                Ok(Report::Failed) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let Some((epoch, started, slots)) = &inflight else {
                continue;
            };
            if !complete(slots, &finished) {
                continue;
            }
            let (epoch, started) = (*epoch, *started);
            let mut used_final = vec![false; n];
            let snaps: Vec<&Snap> = (0..n)
                .map(|i| {
                    slots[i].as_ref().unwrap_or_else(|| {
                        used_final[i] = true;
                        finished[i].as_ref().expect("checked above")
                    })
                })
                .collect();
            // One entry per node; the instances of a parallel stage share one state file.
            let (mut heads, mut states) = (Vec::new(), Vec::new());
            for (i, meta) in self.nodes.iter().enumerate() {
                if meta.instance > 0 {
                    continue;
                }
                let all = i..i + meta.instances;
                let state = if meta.instances == 1 {
                    std::borrow::Cow::Borrowed(snaps[i].state.as_slice())
                } else {
                    let parts: Vec<&[u8]> = snaps[all.clone()]
                        .iter()
                        .map(|s| s.state.as_slice())
                        .collect();
                    std::borrow::Cow::Owned(encode_instances(&parts)?)
                };
                let entry = NodeEntry {
                    name: meta.name.clone(),
                    kind: meta.kind.to_string(),
                    fingerprint: meta.fingerprint.clone(),
                    file: String::new(),
                    bytes: 0,
                    crc32: 0,
                    finished: used_final[all].iter().all(|f| *f),
                    instances: meta.instances as u32,
                    position: snaps[i].position.clone(),
                };
                heads.push(entry);
                states.push(state);
            }
            let entries: Vec<(NodeEntry, &[u8])> = heads
                .into_iter()
                .zip(states.iter().map(|s| s.as_ref()))
                .collect();
            let all_final = used_final.iter().all(|f| *f);
            let write_started = Instant::now();
            match self.store.write(epoch, all_final, entries, now_ms()) {
                Ok(bytes) => {
                    failures = 0;
                    let took = started.elapsed().as_micros() as u64;
                    let s = &self.stats;
                    s.completed.fetch_add(1, Ordering::Relaxed);
                    s.last_epoch.store(epoch, Ordering::Relaxed);
                    s.last_at_ms
                        .store(weir_core::time::now_ms().max(0) as u64, Ordering::Relaxed);
                    s.last_bytes.store(bytes, Ordering::Relaxed);
                    s.last_us.store(took, Ordering::Relaxed);
                    s.max_us.fetch_max(took, Ordering::Relaxed);
                    s.max_bytes.fetch_max(bytes, Ordering::Relaxed);
                    s.write_us.fetch_add(
                        write_started.elapsed().as_micros() as u64,
                        Ordering::Relaxed,
                    );
                    for (u, used) in unsaved.iter_mut().zip(&used_final) {
                        if *used {
                            *u = false;
                        }
                    }
                    for c in &self.commits {
                        // A sink that already finished its last commit has hung up.
                        let _ = c.send(epoch);
                    }
                    if let Err(e) = self.store.prune() {
                        tracing::warn!(error = %e, "could not remove old checkpoints");
                    }
                }
                Err(e) => {
                    failures += 1;
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(epoch, error = %e, "checkpoint failed; output stays staged until one succeeds");
                    if failures >= MAX_FAILURES {
                        self.stop.store(true, Ordering::SeqCst);
                        return Err(Error::State(format!(
                            "{failures} checkpoints in a row failed, the last with: {e}"
                        )));
                    }
                }
            }
            inflight = None;
            next_at = Instant::now() + self.interval;
        }
    }
}
