//! weir-runtime runs a pipeline: it wires sources, stages and sinks with bounded channels and
//! drives each on its own thread.
//!
//! ```text
//!  source node                     stage node                   sink node
//! ┌──────────────────────────┐    ┌──────────────────────┐    ┌─────────────┐
//! │ Source ─▶ lines ─▶ Parser│─▶──│ min watermark ─▶ Op  │─▶──│ Sink        │
//! │ watermarks, dead letters │ ▲  │ ticks, end, late     │    │ flush, end  │
//! └──────────────────────────┘ │  └──────────────────────┘    └─────────────┘
//!          bounded channels: back-pressure, never dropping
//! ```
//! Every consumer has one bounded channel shared by its inputs; messages carry the input's
//! index so the consumer can track each input's watermark (a stage's watermark is the minimum
//! over its live inputs) and end. A full channel blocks the sender: a slow sink slows its
//! sources, memory stays bounded. Stages are synchronous [`Operator`]s; this crate owns all
//! threads, timers and channels.

mod align;
mod chain;
pub mod checkpoint;
mod exchange;
mod node;
mod parse_pool;
pub mod union;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Sender};
use weir_core::metrics::NodeMetrics;
use weir_core::watermark::EventTimeConfig;
use weir_core::{
    Combiner, Error, Message, Operator, Parser, Partitioner, Port, Result, Sink, Source,
};

/// Messages a consumer channel holds before senders block.
pub const CHANNEL_CAPACITY: usize = 16;

/// How long a sink may hold written rows by default before it makes them visible.
pub const DEFAULT_FLUSH_INTERVAL: weir_core::config::Duration =
    weir_core::config::Duration::from_ms(1000);

/// Longest line a source node accepts by default; longer lines become dead letters.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

/// A source with its parser.
pub struct SourceSpec {
    /// Node name.
    pub name: String,
    /// Where bytes come from.
    pub source: Box<dyn Source>,
    /// How lines become rows.
    pub parser: Box<dyn Parser>,
    /// More instances of `parser`, each to parse chunks of lines on its own thread (see
    /// [`Parser::chunks_independent`]); empty: the source node parses with `parser`.
    pub parallel: Vec<Box<dyn Parser>>,
    /// Event time and watermarks, if the source has them.
    pub event_time: Option<EventTimeConfig>,
    /// Longest accepted line in bytes.
    pub max_line: usize,
    /// Lines per second at most (0: as fast as it comes), to replay a file at a given pace.
    pub rate: u64,
}

/// A processing stage.
pub struct StageSpec {
    /// Node name.
    pub name: String,
    /// The operator.
    pub op: Box<dyn Operator>,
    /// Inputs: producer node name and port.
    pub inputs: Vec<(String, Port)>,
    /// More instances of a keyed `op` (one with a [`Operator::partitioner`]), each on its own
    /// thread and fed the keys it owns through a hash exchange; empty: `op` alone.
    pub parallel: Vec<Box<dyn Operator>>,
    /// Copies of a stateless `op` ([`Operator::stateless`]), one per parser thread of the
    /// source it reads: when the stage reads only that source's main output, each parser
    /// thread applies its copy to the chunks it parsed and the stage has no thread of its own
    /// (see `chain`). Empty, or not of the source's parser count: the stage runs on its own.
    pub beside: Vec<Box<dyn Operator>>,
}

impl StageSpec {
    /// A stage of one instance.
    pub fn new(
        name: impl Into<String>,
        op: Box<dyn Operator>,
        inputs: Vec<(String, Port)>,
    ) -> Self {
        StageSpec {
            name: name.into(),
            op,
            inputs,
            parallel: Vec::new(),
            beside: Vec::new(),
        }
    }

    fn instances(&self) -> usize {
        1 + self.parallel.len()
    }
}

/// A sink.
pub struct SinkSpec {
    /// Node name.
    pub name: String,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// Inputs: producer node name and port.
    pub inputs: Vec<(String, Port)>,
    /// Longest time written rows wait before [`Sink::flush`], even under steady input (when
    /// the input goes quiet the sink flushes at once).
    pub flush_interval: std::time::Duration,
}

impl SinkSpec {
    /// A sink reading `inputs`, flushing at least every [`DEFAULT_FLUSH_INTERVAL`].
    pub fn new(name: impl Into<String>, sink: Box<dyn Sink>, inputs: Vec<(String, Port)>) -> Self {
        SinkSpec {
            name: name.into(),
            sink,
            inputs,
            flush_interval: DEFAULT_FLUSH_INTERVAL.to_std(),
        }
    }
}

/// What kind of node a metrics entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A source.
    Source,
    /// A stage.
    Stage,
    /// A sink.
    Sink,
}

/// A node's public face while running: name, kind, counters, and total input size if known.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Kind.
    pub kind: NodeKind,
    /// Live counters.
    pub metrics: Arc<NodeMetrics>,
    /// Total bytes of a source, when known.
    pub size_hint: Option<u64>,
}

/// A pipeline ready to start.
#[derive(Default)]
pub struct Pipeline {
    /// Sources.
    pub sources: Vec<SourceSpec>,
    /// Stages.
    pub stages: Vec<StageSpec>,
    /// Sinks.
    pub sinks: Vec<SinkSpec>,
    /// Checkpoints, if the pipeline takes them.
    pub checkpoint: Option<checkpoint::Checkpointing>,
}

/// Where a producer (one instance of it) sends one of its ports.
#[derive(Clone)]
pub(crate) struct Output {
    port: Port,
    /// Every instance of the consumer: its channel, and the input index this producer
    /// instance has there.
    targets: Vec<(usize, Sender<(usize, Message)>)>,
    /// With several targets: which one gets each row (watermarks, barriers and ends go to
    /// all of them).
    route: Option<Arc<dyn Partitioner>>,
    /// With a route: the consumer's combiner, which parser threads use to fold its rows
    /// before they are sent (see `chain::cut`).
    fold: Option<Arc<dyn Combiner>>,
    to: String,
}

/// A consumer instance's receiving end: its channel, its number of inputs (one per producer
/// instance), and the inputs to merge in order.
struct Receiver {
    rx: crossbeam_channel::Receiver<(usize, Message)>,
    inputs: usize,
    merge: Vec<exchange::MergeGroup>,
}

/// A started pipeline.
pub struct Running {
    nodes: Vec<NodeInfo>,
    handles: Vec<(String, JoinHandle<Result<()>>)>,
    stop: Arc<AtomicBool>,
    checkpoints: Option<Arc<checkpoint::CheckpointStats>>,
}

impl Pipeline {
    /// Starts every node on its own thread.
    ///
    /// Fails if an input names a node that does not exist (the config layer checks this
    /// first, with paths).
    pub fn start(self) -> Result<Running> {
        if let Some(c) = &self.checkpoint {
            c.check_compatible()?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let known: std::collections::HashSet<&String> = self
            .sources
            .iter()
            .map(|s| &s.name)
            .chain(self.stages.iter().map(|s| &s.name))
            .collect();
        if let Some(missing) = self
            .stages
            .iter()
            .flat_map(|s| &s.inputs)
            .chain(self.sinks.iter().flat_map(|s| &s.inputs))
            .map(|(from, _)| from)
            .find(|from| !known.contains(from))
        {
            return Err(Error::Internal(format!(
                "an input names {missing:?}, which is not a source or stage"
            )));
        }
        // Instances, partitioner and output order of every stage (sources and sinks: one).
        let instances: std::collections::HashMap<&str, usize> = self
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.instances()))
            .collect();
        let of = |name: &str| instances.get(name).copied().unwrap_or(1);
        let orders: std::collections::HashMap<&str, Vec<usize>> = self
            .stages
            .iter()
            .filter(|s| s.instances() > 1)
            .filter_map(|s| Some((s.name.as_str(), s.op.output_order()?)))
            .collect();
        // A stateless stage reading only a source that parses on several threads runs inside
        // that source's node (one such stage per source): it gets no channel of its own.
        // Stage name → source name.
        let mut chained: std::collections::HashMap<String, String> = Default::default();
        for s in &self.stages {
            let [(from, Port::Main)] = s.inputs.as_slice() else {
                continue;
            };
            let fits = self.sources.iter().any(|src| {
                &src.name == from
                    && src.rate == 0
                    && !src.parallel.is_empty()
                    && src.parallel.len() == s.beside.len()
            });
            let taken = chained.values().any(|src| src == from);
            if fits && !taken && s.instances() == 1 && s.op.stateless() {
                chained.insert(s.name.clone(), from.clone());
            }
        }
        let is_chained = |name: &str| chained.contains_key(name);
        let mut outputs: std::collections::HashMap<(String, usize), Vec<Output>> =
            Default::default();
        let mut receivers = Vec::new();
        let consumers = self
            .stages
            .iter()
            .filter(|s| !is_chained(&s.name))
            .map(|s| {
                let route = (s.instances() > 1).then(|| s.op.partitioner()).flatten();
                let fold = route.as_ref().and_then(|_| s.op.combiner());
                (&s.name, &s.inputs, s.instances(), route, fold)
            })
            .chain(
                self.sinks
                    .iter()
                    .map(|s| (&s.name, &s.inputs, 1, None, None)),
            );
        for (name, inputs, n, route, fold) in consumers {
            if n > 1 && route.is_none() {
                return Err(Error::Internal(format!(
                    "stage {name} has {n} instances but no partitioner"
                )));
            }
            let chans: Vec<_> = (0..n).map(|_| bounded(CHANNEL_CAPACITY)).collect();
            // One input index per producer instance, in the order of `inputs`.
            let mut first = 0;
            let mut merge = Vec::new();
            for (from, port) in inputs {
                let members = of(from);
                for k in 0..members {
                    outputs.entry((from.clone(), k)).or_default().push(Output {
                        port: *port,
                        targets: chans
                            .iter()
                            .map(|(tx, _)| (first + k, tx.clone()))
                            .collect(),
                        route: route.clone(),
                        fold: fold.clone(),
                        to: name.clone(),
                    });
                }
                if let Some(order) = orders.get(from.as_str()).filter(|_| *port == Port::Main) {
                    merge.push(exchange::MergeGroup {
                        first,
                        members,
                        order: order.clone(),
                    });
                }
                first += members;
            }
            receivers.push(
                chans
                    .into_iter()
                    .map(|(_, rx)| Receiver {
                        rx,
                        inputs: first,
                        merge: merge.clone(),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let mut receivers = receivers.into_iter();
        let mut nodes = Vec::new();
        let mut handles = Vec::new();
        let mut ck = self
            .checkpoint
            .map(|c| Checkpoints::new(c, &self.sources, &self.stages, &self.sinks, &stop));
        let mut spawn = |name: String,
                         f: Box<dyn FnOnce() -> Result<()> + Send>,
                         failed: Option<Sender<checkpoint::Report>>|
         -> Result<()> {
            let run = move || {
                // A panic is this node's failure like any error: the checkpoint coordinator
                // hears of it at once, and the run ends with the panic's message.
                let res =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "no message".into());
                        Err(Error::Internal(format!("panicked: {msg}")))
                    });
                if let (Err(_), Some(tx)) = (&res, failed) {
                    let _ = tx.send(checkpoint::Report::Failed);
                }
                res
            };
            let h = std::thread::Builder::new()
                .name(format!("weir-{name}"))
                .spawn(run)
                .map_err(|e| Error::io(format!("starting a thread for {name}"), e))?;
            handles.push((name, h));
            Ok(())
        };
        // Sources and sinks hear when an epoch is durable: sinks commit what they staged,
        // sources acknowledge to their broker.
        let mut node_ck = |name: &str, instance: usize, commits: bool| {
            ck.as_mut().map(|c| c.node(name, instance, commits))
        };
        let failed = |c: &Option<node::NodeCkpt>| c.as_ref().map(|c| c.ck.reports.clone());
        let stage_metrics: Vec<Arc<NodeMetrics>> = self
            .stages
            .iter()
            .map(|_| Arc::new(NodeMetrics::new()))
            .collect();
        let stage_order: Vec<String> = self.stages.iter().map(|s| s.name.clone()).collect();
        let (mut fused, mut stages) = (Vec::new(), Vec::new());
        for (s, m) in self.stages.into_iter().zip(&stage_metrics) {
            if is_chained(&s.name) {
                fused.push((s, m.clone()));
            } else {
                stages.push((s, m.clone()));
            }
        }
        let mut chains: std::collections::HashMap<String, _> = Default::default();
        for (s, m) in fused {
            let source = chained[&s.name].clone();
            let outs = outputs.remove(&(s.name.clone(), 0)).unwrap_or_default();
            let c = node_ck(&s.name, 0, false);
            let chain = chain::Chain::new(s.name, s.op, outs, m, c);
            chains.insert(source, (chain, s.beside));
        }
        for s in self.sources {
            let m = Arc::new(NodeMetrics::new());
            nodes.push(NodeInfo {
                name: s.name.clone(),
                kind: NodeKind::Source,
                metrics: m.clone(),
                size_hint: s.source.size_hint(),
            });
            let outs = outputs.remove(&(s.name.clone(), 0)).unwrap_or_default();
            let stop = stop.clone();
            let c = node_ck(&s.name, 0, true);
            let f = failed(&c);
            let chain = chains.remove(&s.name);
            spawn(
                s.name.clone(),
                Box::new(move || node::run_source(s, outs, &m, &stop, c, chain)),
                f,
            )?;
        }
        for (name, m) in stage_order.iter().zip(&stage_metrics) {
            nodes.push(NodeInfo {
                name: name.clone(),
                kind: NodeKind::Stage,
                metrics: m.clone(),
                size_hint: None,
            });
        }
        for (s, m) in stages {
            let rxs = receivers.next().expect("receivers for every stage");
            let n = s.instances();
            let ops = std::iter::once(s.op).chain(s.parallel);
            for (k, (op, rx)) in ops.zip(rxs).enumerate() {
                let outs = outputs.remove(&(s.name.clone(), k)).unwrap_or_default();
                let stop = stop.clone();
                let c = node_ck(&s.name, k, false);
                let f = failed(&c);
                let m = m.clone();
                let instance = node::Instance {
                    name: s.name.clone(),
                    index: k,
                    of: n,
                };
                let thread = if n > 1 {
                    format!("{}/{k}", s.name)
                } else {
                    s.name.clone()
                };
                spawn(
                    thread,
                    Box::new(move || node::run_stage(instance, op, rx, outs, &m, &stop, c)),
                    f,
                )?;
            }
        }
        let open_sinks = Arc::new(std::sync::atomic::AtomicUsize::new(self.sinks.len()));
        for s in self.sinks {
            let m = Arc::new(NodeMetrics::new());
            nodes.push(NodeInfo {
                name: s.name.clone(),
                kind: NodeKind::Sink,
                metrics: m.clone(),
                size_hint: None,
            });
            let rx = receivers
                .next()
                .and_then(|r| r.into_iter().next())
                .expect("one receiver per sink");
            let stop = stop.clone();
            let c = node_ck(&s.name, 0, true);
            let f = failed(&c);
            let open = open_sinks.clone();
            spawn(
                s.name.clone(),
                Box::new(move || node::run_sink(s, rx, &m, &stop, c, &open)),
                f,
            )?;
        }
        let stats = ck.as_ref().map(|c| c.stats.clone());
        if let Some(c) = ck {
            let coordinator = c.into_coordinator();
            spawn(
                "checkpoints".into(),
                Box::new(move || coordinator.run()),
                None,
            )?;
        }
        Ok(Running {
            nodes,
            handles,
            stop,
            checkpoints: stats,
        })
    }
}

/// Checkpoint wiring while a pipeline starts: one report channel, per-sink commit channels.
struct Checkpoints {
    cfg: checkpoint::Checkpointing,
    metas: Vec<checkpoint::NodeMeta>,
    reports: (
        Sender<checkpoint::Report>,
        crossbeam_channel::Receiver<checkpoint::Report>,
    ),
    commits: Vec<Sender<u64>>,
    requested: Arc<AtomicU64>,
    stats: Arc<checkpoint::CheckpointStats>,
    stop: Arc<AtomicBool>,
    base_epoch: u64,
}

impl Checkpoints {
    fn new(
        cfg: checkpoint::Checkpointing,
        sources: &[SourceSpec],
        stages: &[StageSpec],
        sinks: &[SinkSpec],
        stop: &Arc<AtomicBool>,
    ) -> Self {
        let names = sources
            .iter()
            .map(|s| (&s.name, "source", 1))
            .chain(stages.iter().map(|s| (&s.name, "stage", s.instances())))
            .chain(sinks.iter().map(|s| (&s.name, "sink", 1)));
        // One slot per instance: a stage of several instances has one state from each.
        let metas = names
            .flat_map(|(name, kind, n)| (0..n).map(move |instance| (name, kind, instance, n)))
            .map(|(name, kind, instance, instances)| checkpoint::NodeMeta {
                name: name.clone(),
                kind,
                fingerprint: cfg.fingerprints.get(name).cloned().unwrap_or_default(),
                instance,
                instances,
            })
            .collect();
        let stats = Arc::new(checkpoint::CheckpointStats::default());
        let base_epoch = cfg.restore.as_ref().map_or(0, |l| l.manifest.epoch);
        if let Some(l) = &cfg.restore {
            stats.restored_epoch.store(base_epoch, Ordering::Relaxed);
            let bytes = l.states.values().map(|s| s.len() as u64).sum();
            stats.restored_bytes.store(bytes, Ordering::Relaxed);
        }
        Checkpoints {
            cfg,
            metas,
            reports: unbounded(),
            commits: Vec::new(),
            requested: Arc::new(AtomicU64::new(base_epoch)),
            stats,
            stop: stop.clone(),
            base_epoch,
        }
    }

    fn node(&mut self, name: &str, instance: usize, commits: bool) -> node::NodeCkpt {
        let index = self
            .metas
            .iter()
            .position(|m| m.name == name && m.instance == instance)
            .expect("every node instance has a meta");
        let commits = commits.then(|| {
            let (tx, rx) = unbounded();
            self.commits.push(tx);
            rx
        });
        node::NodeCkpt {
            ck: checkpoint::NodeCk {
                node: index,
                reports: self.reports.0.clone(),
                requested: self.requested.clone(),
            },
            // Every instance of a keyed stage reads all the instances' states and keeps its keys;
            // a node of one instance takes its state.
            restore: self.cfg.restore.as_mut().and_then(|l| {
                let wrote = l.manifest.nodes.iter().find(|n| n.name == name)?.instances;
                let state = match self.metas[index].instances {
                    1 => l.states.remove(name)?,
                    _ => l.states.get(name)?.clone(),
                };
                Some((state, wrote as usize))
            }),
            base_epoch: self.base_epoch,
            stats: self.stats.clone(),
            commits,
        }
    }

    fn into_coordinator(self) -> checkpoint::Coordinator {
        checkpoint::Coordinator {
            store: self.cfg.store,
            interval: self.cfg.interval,
            nodes: self.metas,
            requested: self.requested,
            reports: self.reports.1,
            commits: self.commits,
            stats: self.stats,
            stop: self.stop,
            first_epoch: self.base_epoch + 1,
        }
    }
}

impl Running {
    /// The nodes and their live counters.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// A flag that, once set, makes every source end its input gracefully: open windows are
    /// flushed and sinks finish, as at the end of a file.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Checkpoint figures, when the pipeline takes checkpoints.
    pub fn checkpoints(&self) -> Option<Arc<checkpoint::CheckpointStats>> {
        self.checkpoints.clone()
    }

    /// Whether every node has finished.
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(|(_, h)| h.is_finished())
    }

    /// Waits for every node. Returns the first real failure; nodes that only stopped because
    /// another failed are not reported over it.
    pub fn join(self) -> std::result::Result<Vec<NodeInfo>, NodeFailure> {
        let mut first: Option<NodeFailure> = None;
        for (node, h) in self.handles {
            let res = h
                .join()
                .unwrap_or_else(|_| Err(Error::Internal(format!("node {node} panicked"))));
            if let Err(error) = res {
                self.stop.store(true, Ordering::Relaxed);
                let replace = match &first {
                    None => true,
                    Some(f) => {
                        matches!(f.error, Error::Stopped(_)) && !matches!(error, Error::Stopped(_))
                    }
                };
                if replace {
                    first = Some(NodeFailure { node, error });
                }
            }
        }
        match first {
            Some(f) => Err(f),
            None => Ok(self.nodes),
        }
    }
}

/// A node that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{node}: {error}")]
pub struct NodeFailure {
    /// The node's name.
    pub node: String,
    /// Its error.
    #[source]
    pub error: Error,
}

#[cfg(test)]
mod tests;
