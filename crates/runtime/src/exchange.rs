//! The hash exchange in front of a keyed stage that runs as several instances, and the merge
//! behind it.
//!
//! ```text
//!                 split by key hash           instances            merge by watermark
//!  producer ──▶ ┌─────────────────┐ ──▶ count/0 ──┐            ┌─────────────────────┐
//!               │ owner(hash, n)  │ ──▶ count/1 ──┼──────────▶ │ rows up to min(wm), │ ──▶ sink
//!               └─────────────────┘   (watermarks, barriers,   │ sorted by the op's  │
//!                                      ends: to every one)     │ output order        │
//!                                                              └─────────────────────┘
//! ```
//! Data goes to the instance that owns each row's key ([`weir_core::keys::owner`]); watermarks,
//! barriers and ends go to every instance, which aligns them over all of its inputs as any
//! consumer does. A consumer of the instances' main output sees one input per instance. If the
//! operator states an output order ([`Operator::output_order`]), the consumer holds each
//! instance's rows until every instance has passed the same watermark, then passes them on
//! sorted in that order: exactly the rows, and the order, of one instance doing all the work.
//! At a checkpoint every instance has passed the same barrier, so what is held is released
//! before the consumer's snapshot and nothing is held across a checkpoint.
//!
//! [`Operator::output_order`]: weir_core::Operator::output_order

use std::collections::VecDeque;
use std::time::Duration;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_ord::sort::{lexsort_to_indices, SortColumn};
use arrow_schema::SortOptions;
use weir_core::keys::owner;
use weir_core::time::{Millis, MAX_TIME, MIN_TIME};
use weir_core::{Error, Message, Partitioner, Result};

use crate::align::{Aligner, Event};

/// Splits `batch` over `n` instances by the key hash of each row: (instance, its rows), rows
/// in their order. A batch whose rows all belong to one instance is passed on whole.
pub(crate) fn split(
    batch: &RecordBatch,
    p: &dyn Partitioner,
    n: usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let mut hashes = Vec::with_capacity(batch.num_rows());
    p.hashes(batch, &mut hashes);
    if hashes.len() != batch.num_rows() {
        return Err(Error::Internal(format!(
            "a partitioner gave {} hashes for {} rows",
            hashes.len(),
            batch.num_rows()
        )));
    }
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, h) in hashes.iter().enumerate() {
        rows[owner(*h, n)].push(i as u32);
    }
    if let Some(k) = rows.iter().position(|r| r.len() == batch.num_rows()) {
        return Ok(vec![(k, batch.clone())]);
    }
    rows.into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(k, r)| {
            let part = arrow_select::take::take_record_batch(batch, &UInt32Array::from(r))?;
            Ok((k, part))
        })
        .collect()
}

/// The inputs of a consumer that are the instances of one ordered operator.
#[derive(Debug, Clone)]
pub(crate) struct MergeGroup {
    /// Input index of the first instance; the others follow.
    pub first: usize,
    /// Number of instances.
    pub members: usize,
    /// Columns the rows are sorted by (see `Operator::output_order`).
    pub order: Vec<usize>,
}

struct Group {
    spec: MergeGroup,
    /// Per instance: rows since its last watermark.
    open: Vec<Vec<RecordBatch>>,
    /// Per instance: rows up to a watermark, with that watermark, not yet passed on.
    closed: Vec<VecDeque<(Millis, Vec<RecordBatch>)>>,
    /// Per instance: its watermark (`MAX_TIME` once ended).
    wm: Vec<Millis>,
}

impl Group {
    fn member(&self, input: usize) -> Option<usize> {
        (input >= self.spec.first && input < self.spec.first + self.spec.members)
            .then(|| input - self.spec.first)
    }

    /// Closes instance `m`'s open rows at watermark `w`.
    fn close(&mut self, m: usize, w: Millis) {
        self.wm[m] = self.wm[m].max(w);
        let rows = std::mem::take(&mut self.open[m]);
        if !rows.is_empty() {
            self.closed[m].push_back((w, rows));
        }
    }

    /// Rows every instance has closed (all of them with `everything`), merged in order.
    fn release(&mut self, everything: bool) -> Result<Option<RecordBatch>> {
        let upto = if everything {
            MAX_TIME
        } else {
            self.wm.iter().copied().min().unwrap_or(MAX_TIME)
        };
        let mut batches = Vec::new();
        for closed in &mut self.closed {
            while closed.front().is_some_and(|(w, _)| *w <= upto) {
                batches.extend(closed.pop_front().expect("checked").1);
            }
        }
        if everything {
            for open in &mut self.open {
                batches.append(open);
            }
        }
        merge(&batches, &self.spec.order)
    }
}

/// The rows of `batches` (each sorted by `order`) as one batch sorted by `order`.
fn merge(batches: &[RecordBatch], order: &[usize]) -> Result<Option<RecordBatch>> {
    match batches {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => {
            let all = arrow_select::concat::concat_batches(&batches[0].schema(), batches)?;
            let columns: Vec<SortColumn> = order
                .iter()
                .map(|&c| SortColumn {
                    values: all.column(c).clone(),
                    // Nulls first, as encoded keys sort.
                    options: Some(SortOptions {
                        descending: false,
                        nulls_first: true,
                    }),
                })
                .collect();
            let idx = lexsort_to_indices(&columns, None)?;
            Ok(Some(arrow_select::take::take_record_batch(&all, &idx)?))
        }
    }
}

/// A consumer's receiving side: barrier alignment, then the merge of ordered instances.
pub(crate) struct Receiving {
    al: Aligner,
    groups: Vec<Group>,
    ready: VecDeque<Event>,
}

impl Receiving {
    pub(crate) fn new(al: Aligner, groups: Vec<MergeGroup>) -> Self {
        let groups = groups
            .into_iter()
            .map(|spec| Group {
                open: vec![Vec::new(); spec.members],
                closed: vec![VecDeque::new(); spec.members],
                wm: vec![MIN_TIME; spec.members],
                spec,
            })
            .collect();
        Receiving {
            al,
            groups,
            ready: VecDeque::new(),
        }
    }

    /// The next event, waiting at most `wait` for input.
    pub(crate) fn next(&mut self, wait: Duration) -> Result<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Ok(e);
            }
            match self.al.next(wait)? {
                Event::Msg(i, msg) => {
                    let Some((g, m)) = self
                        .groups
                        .iter()
                        .enumerate()
                        .find_map(|(g, grp)| Some((g, grp.member(i)?)))
                    else {
                        return Ok(Event::Msg(i, msg));
                    };
                    let grp = &mut self.groups[g];
                    let (w, passed) = match msg {
                        Message::Data(b) => {
                            grp.open[m].push(b);
                            continue;
                        }
                        Message::Watermark(w) => (w, Message::Watermark(w)),
                        Message::End => (MAX_TIME, Message::End),
                        Message::Barrier(_) => unreachable!("the aligner consumes barriers"),
                    };
                    grp.close(m, w);
                    if let Some(b) = grp.release(false)? {
                        self.ready
                            .push_back(Event::Msg(grp.spec.first, Message::Data(b)));
                    }
                    self.ready.push_back(Event::Msg(i, passed));
                }
                Event::Checkpoint(epoch) => {
                    for grp in &mut self.groups {
                        if let Some(b) = grp.release(true)? {
                            self.ready
                                .push_back(Event::Msg(grp.spec.first, Message::Data(b)));
                        }
                    }
                    self.ready.push_back(Event::Checkpoint(epoch));
                }
                Event::Idle => return Ok(Event::Idle),
            }
        }
    }
}
