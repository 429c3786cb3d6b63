//! A stateless stage run inside the node of the source it reads, beside its parser threads.
//!
//! ```text
//!                      ┌─ parser 1 ─▶ filter copy 1 ─┐
//!  source ── chunk k ──┤                             ├─▶ reorder ─▶ source node ─▶ stage's
//!                      └─ parser 2 ─▶ filter copy 2 ─┘  (k, k+1, …)  (watermarks,    consumers
//!                                                                     barriers, end)
//! ```
//! A stage whose operator is [`Operator::stateless`] (a filter) and whose only input is a
//! source's main output, when that source parses on several threads, needs no thread of its
//! own: each parser thread applies its copy of the operator to the batch it parsed, and the
//! source node, releasing chunks in input order, sends what the copy emitted to the stage's
//! consumers under the stage's name and counters. Watermarks, barriers and the end go through
//! the source node's copy, in order, exactly as the stage's own thread would have seen them.
//! A chunk whose rows the source node must change first (rows refused by `max_future`, which
//! depends on the records before it) is run through the node's copy instead, so the output is
//! the same as with a thread per stage.
//!
//! [`Operator::stateless`]: weir_core::Operator::stateless

use std::sync::Arc;

use arrow_array::RecordBatch;
use weir_core::metrics::NodeMetrics;
use weir_core::operator::split;
use weir_core::time::{Millis, MIN_TIME};
use weir_core::{Combiner, Emitter, Error, Message, Operator, Partitioner, Port, Result};

use crate::node::{dispatch, dispatch_split, send, NodeCkpt, Splits};
use crate::Output;

/// What a parser thread's copy of the operator emitted for one parsed batch, each batch of
/// rows already cut over the instances of the keyed stages it goes to.
pub(crate) type Emitted = Vec<(Port, Message, Splits)>;

/// An output of a source or chained stage that leads to the instances of a keyed stage: the
/// parser threads cut the rows for it (and fold them, if the keyed stage has a combiner), so
/// the source node only passes them on.
#[derive(Clone)]
pub(crate) struct Route {
    /// Index among the node's outputs.
    output: usize,
    port: Port,
    by: Arc<dyn Partitioner>,
    fold: Option<Arc<dyn Combiner>>,
    instances: usize,
}

/// The routes among `outs`.
pub(crate) fn routes(outs: &[Output]) -> Vec<Route> {
    outs.iter()
        .enumerate()
        .filter_map(|(output, o)| {
            Some(Route {
                output,
                port: o.port,
                by: o.route.clone()?,
                fold: o.fold.clone(),
                instances: o.targets.len(),
            })
        })
        .collect()
}

/// What to send each instance behind `r` for `batch`: its rows, folded by the keyed stage's
/// combiner when it has one. `None` if that failed (the source node then cuts the rows).
fn cut(batch: &RecordBatch, r: &Route) -> Option<Vec<(usize, Message)>> {
    match &r.fold {
        Some(f) => f.combine(batch, r.instances).ok(),
        None => Some(
            split(batch, r.by.as_ref(), r.instances)
                .ok()?
                .into_iter()
                .map(|(k, b)| (k, Message::Data(b)))
                .collect(),
        ),
    }
}

/// Cuts `batch`, sent on `port`, for the routes of that port (see [`cut`]).
pub(crate) fn cuts(batch: &RecordBatch, port: Port, routes: &[Route]) -> Option<Splits> {
    routes
        .iter()
        .filter(|r| r.port == port)
        .map(|r| Some((r.output, cut(batch, r)?)))
        .collect()
}

/// Runs `op` on `batch` as a parser thread does and cuts the rows for `routes`: what it
/// emitted, or `None` if it failed (the source node's copy then runs it again and reports the
/// error).
pub(crate) fn apply(
    op: &mut dyn Operator,
    batch: &RecordBatch,
    routes: &[Route],
) -> Option<Emitted> {
    let mut em = Emitter::default();
    op.on_batch(batch, &mut em).ok()?;
    em.out
        .into_iter()
        .map(|(port, msg)| {
            let cuts = match &msg {
                Message::Data(b) => cuts(b, port, routes)?,
                _ => Splits::new(),
            };
            Some((port, msg, cuts))
        })
        .collect()
}

/// The stage, as the source node drives it.
pub(crate) struct Chain {
    pub name: String,
    pub op: Box<dyn Operator>,
    pub outs: Vec<Output>,
    pub m: Arc<NodeMetrics>,
    pub ck: Option<NodeCkpt>,
    em: Emitter,
    /// The watermark last passed to the operator.
    passed: Millis,
}

impl Chain {
    pub(crate) fn new(
        name: String,
        op: Box<dyn Operator>,
        outs: Vec<Output>,
        m: Arc<NodeMetrics>,
        ck: Option<NodeCkpt>,
    ) -> Self {
        Chain {
            name,
            op,
            outs,
            m,
            ck,
            em: Emitter::default(),
            passed: MIN_TIME,
        }
    }

    /// The outputs whose rows the parser threads cut for a keyed stage's instances.
    pub(crate) fn routes(&self) -> Vec<Route> {
        routes(&self.outs)
    }

    /// Restores the operator from the checkpoint being resumed from, as a stage of one
    /// instance does.
    pub(crate) fn restore(&mut self) -> Result<()> {
        let Some(c) = &self.ck else { return Ok(()) };
        let Some((bytes, wrote)) = &c.restore else {
            return Ok(());
        };
        if *wrote != 1 {
            return Err(Error::State(format!(
                "stage {}: its checkpoint was written by {wrote} instances, and it runs as one",
                self.name
            )));
        }
        let op = &mut self.op;
        c.timed(|| op.restore(bytes))
    }

    /// Rows the source sent on its main output, and what a parser thread's copy made of them
    /// (`None`: the node's copy runs now).
    pub(crate) fn data(&mut self, batch: &RecordBatch, pre: Option<Emitted>) -> Result<()> {
        NodeMetrics::add(&self.m.records_in, batch.num_rows() as u64);
        match pre {
            Some(msgs) => {
                for (port, msg, cuts) in msgs {
                    dispatch_split(&self.outs, &self.m, port, msg, cuts)?;
                }
                Ok(())
            }
            None => {
                self.op.on_batch(batch, &mut self.em)?;
                self.flush()
            }
        }
    }

    /// The source's watermark advanced to `w`.
    pub(crate) fn watermark(&mut self, w: Millis) -> Result<()> {
        if w > self.passed {
            self.passed = w;
            self.op.on_watermark(w, &mut self.em)?;
        }
        self.flush()
    }

    /// The source passed the barrier of `epoch`: the stage reports its state and passes it on.
    pub(crate) fn barrier(&mut self, epoch: u64) -> Result<()> {
        self.flush()?;
        if let Some(c) = &self.ck {
            c.ck.report(Some(epoch), self.op.snapshot()?, None)?;
        }
        send(&self.outs, Port::Main, &Message::Barrier(epoch))
    }

    /// The source ended (`suspend`: stopped with checkpoints, so nothing is flushed).
    pub(crate) fn end(&mut self, suspend: bool) -> Result<()> {
        if !suspend {
            self.op.on_end(&mut self.em)?;
        }
        self.flush()?;
        if let Some(c) = &self.ck {
            c.ck.report(None, self.op.snapshot()?, None)?;
        }
        send(&self.outs, Port::Main, &Message::End)
    }

    fn flush(&mut self) -> Result<()> {
        self.em.windows_closed.clear();
        for (port, msg) in self.em.drain() {
            dispatch(&self.outs, &self.m, port, msg)?;
        }
        Ok(())
    }
}
