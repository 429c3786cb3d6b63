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

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_ord::ord::{make_comparator, DynComparator};
use arrow_schema::SortOptions;
use weir_core::time::{Millis, MAX_TIME, MIN_TIME};
use weir_core::{Error, Message, Result};

use crate::align::{Aligner, Event};

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

    /// Rows every instance has closed (all of them with `everything`), merged in order: one
    /// batch per watermark that closed rows, as one instance emits them.
    fn release(&mut self, everything: bool) -> Result<Vec<RecordBatch>> {
        let upto = if everything {
            MAX_TIME
        } else {
            self.wm.iter().copied().min().unwrap_or(MAX_TIME)
        };
        // Per watermark, one sorted run per instance: every instance saw the same watermarks,
        // and the rows an instance closed at one come after those it closed at an earlier one.
        let mut by_wm: std::collections::BTreeMap<Millis, Vec<Vec<RecordBatch>>> =
            Default::default();
        let members = self.closed.len();
        for (m, (closed, open)) in self.closed.iter_mut().zip(&mut self.open).enumerate() {
            while closed.front().is_some_and(|(w, _)| *w <= upto) {
                let (w, rows) = closed.pop_front().expect("checked");
                by_wm.entry(w).or_insert_with(|| vec![Vec::new(); members])[m].extend(rows);
            }
            if everything && !open.is_empty() {
                by_wm
                    .entry(MAX_TIME)
                    .or_insert_with(|| vec![Vec::new(); members])[m]
                    .append(open);
            }
        }
        let mut out = Vec::with_capacity(by_wm.len());
        for runs in by_wm.into_values() {
            let runs = runs
                .into_iter()
                .filter(|r| !r.is_empty())
                .map(|r| match r.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => arrow_select::concat::concat_batches(&r[0].schema(), &r),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.extend(merge(&runs, &self.spec.order)?);
        }
        Ok(out)
    }
}

/// The rows of `runs` (each sorted by `order`, nulls first) as one batch sorted by `order`:
/// a k-way merge (the runs are one per instance, so k is small), rows of equal order taken
/// from the lower run first.
fn merge(runs: &[RecordBatch], order: &[usize]) -> Result<Option<RecordBatch>> {
    let runs: Vec<&RecordBatch> = runs.iter().filter(|r| r.num_rows() > 0).collect();
    match runs.as_slice() {
        [] => return Ok(None),
        [one] => return Ok(Some((*one).clone())),
        _ => {}
    }
    let opts = SortOptions {
        descending: false,
        nulls_first: true,
    };
    // cmp[i][j]: the comparators of run i's rows against run j's, one per order column.
    let k = runs.len();
    let mut cmp: Vec<Vec<Vec<DynComparator>>> = Vec::with_capacity(k);
    for a in &runs {
        let mut row = Vec::with_capacity(k);
        for b in &runs {
            let cols = order
                .iter()
                .map(|&c| make_comparator(a.column(c).as_ref(), b.column(c).as_ref(), opts))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            row.push(cols);
        }
        cmp.push(row);
    }
    let less = |i: usize, ri: usize, j: usize, rj: usize| {
        for c in &cmp[i][j] {
            match c(ri, rj) {
                Ordering::Less => return true,
                Ordering::Greater => return false,
                Ordering::Equal => {}
            }
        }
        false
    };
    let total: usize = runs.iter().map(|r| r.num_rows()).sum();
    let mut at = vec![0usize; k];
    let mut idx = Vec::with_capacity(total);
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for r in 0..k {
            if at[r] == runs[r].num_rows() {
                continue;
            }
            best = match best {
                Some(b) if !less(r, at[r], b, at[b]) => Some(b),
                _ => Some(r),
            };
        }
        let b = best.expect("rows remain");
        idx.push((b, at[b]));
        at[b] += 1;
    }
    Ok(Some(arrow_select::interleave::interleave_record_batch(
        &runs, &idx,
    )?))
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
                        Message::Partial(_) => {
                            return Err(Error::Internal(
                                "an ordered operator's instance sent folded records".into(),
                            ))
                        }
                        Message::Watermark(w) => (w, Message::Watermark(w)),
                        Message::End => (MAX_TIME, Message::End),
                        Message::Barrier(_) => unreachable!("the aligner consumes barriers"),
                    };
                    grp.close(m, w);
                    for b in grp.release(false)? {
                        self.ready
                            .push_back(Event::Msg(grp.spec.first, Message::Data(b)));
                    }
                    self.ready.push_back(Event::Msg(i, passed));
                }
                Event::Checkpoint(epoch) => {
                    for grp in &mut self.groups {
                        for b in grp.release(true)? {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use crossbeam_channel::unbounded;
    use proptest::prelude::*;
    use weir_testkit::Rng;

    use super::*;

    /// A row of an ordered operator's output: (window end, key, value); `None` is a null key.
    type Row = (i64, Option<i64>, i64);

    /// What the consumer's channel gets, per input in order.
    type Queues = Vec<Vec<(usize, Message)>>;

    fn batch(rows: &[Row]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("end", DataType::Int64, false),
            Field::new("key", DataType::Int64, true),
            Field::new("value", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn rows_of(b: &RecordBatch) -> Vec<Row> {
        let c = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (e, k, v) = (c(0), c(1), c(2));
        (0..b.num_rows())
            .map(|i| (e.value(i), k.is_valid(i).then(|| k.value(i)), v.value(i)))
            .collect()
    }

    /// A keyed operator's instances, each getting the same watermarks and barriers (one
    /// producer broadcasting them) and emitting the rows of the windows a watermark closes:
    /// per step, each instance's rows (its own keys, sorted by end then key), cut into random
    /// batches, then the step's watermark and perhaps a barrier. An unordered input (0) sends
    /// its own data alongside. The channel gets every instance's messages in a random
    /// interleaving, so barriers and watermarks arrive in any order across instances.
    fn scenario(instances: usize, keys: &[Vec<u8>], seed: u64) -> (Queues, Vec<Row>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut queues: Queues = vec![Vec::new(); instances + 1];
        let mut expected = Vec::new();
        // Rows expected before each barrier's checkpoint.
        let mut before_barrier = Vec::new();
        let mut epoch = 0;
        let mut value = 0;
        for (step, step_keys) in keys.iter().enumerate() {
            let w = step as i64 * 10 + 9;
            let mut rows: Vec<Row> = step_keys
                .iter()
                .map(|&k| {
                    value += 1;
                    // Skewed: most rows have key 0; key 255 stands for a null key.
                    let key = match k {
                        0..=127 => Some(0),
                        255 => None,
                        k => Some(i64::from(k % 16)),
                    };
                    (step as i64 * 10 + rng.below(10) as i64, key, value)
                })
                .collect();
            // One row per window and key, as an aggregate emits.
            rows.sort();
            rows.dedup_by_key(|r| (r.0, r.1));
            expected.extend(rows.iter().copied());
            for (m, q) in queues.iter_mut().enumerate().skip(1) {
                let own: Vec<Row> = rows
                    .iter()
                    .filter(|r| r.1.map_or(0, |k| k as usize % instances) == m - 1)
                    .copied()
                    .collect();
                let mut at = 0;
                while at < own.len() {
                    let n = 1 + rng.below(own.len() as u64) as usize;
                    let end = (at + n).min(own.len());
                    q.push((m, Message::Data(batch(&own[at..end]))));
                    at = end;
                }
            }
            queues[0].push((0, Message::Data(batch(&[(-1, None, -1)]))));
            let barrier = rng.below(2) == 0;
            if barrier {
                epoch += 1;
                before_barrier.push(expected.len());
            }
            for (m, q) in queues.iter_mut().enumerate() {
                q.push((m, Message::Watermark(w)));
                if barrier {
                    q.push((m, Message::Barrier(epoch)));
                }
            }
        }
        for (m, q) in queues.iter_mut().enumerate() {
            q.push((m, Message::End));
        }
        (queues, expected, before_barrier)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The merge passes on exactly the rows of one instance doing all the work, in its
        /// order; every row before a watermark that all instances passed comes before that
        /// watermark, and every row before a barrier comes before the checkpoint.
        #[test]
        fn merged_instances_equal_one(
            instances in 1usize..5,
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..8),
            seed in any::<u64>(),
        ) {
            let (mut queues, expected, before_barrier) = scenario(instances, &keys, seed);
            let (tx, rx) = unbounded();
            let mut rng = Rng::new(seed.rotate_left(17));
            for q in &mut queues {
                q.reverse();
            }
            while queues.iter().any(|q| !q.is_empty()) {
                let live: Vec<usize> = (0..queues.len()).filter(|&q| !queues[q].is_empty()).collect();
                let q = live[rng.below(live.len() as u64) as usize];
                tx.send(queues[q].pop().unwrap()).unwrap();
            }
            let group = MergeGroup { first: 1, members: instances, order: vec![0, 1] };
            let mut r = Receiving::new(Aligner::new(rx, instances + 1), vec![group]);
            let mut got: Vec<Row> = Vec::new();
            let mut unordered = 0;
            let mut wms = vec![MIN_TIME; instances];
            let mut checkpoints = 0;
            loop {
                match r.next(Duration::from_millis(1)).unwrap() {
                    Event::Msg(0, Message::Data(b)) => unordered += b.num_rows(),
                    Event::Msg(i, Message::Data(b)) => {
                        prop_assert_eq!(i, 1, "merged rows come as the first instance's");
                        got.extend(rows_of(&b));
                    }
                    Event::Msg(0, _) => {}
                    Event::Msg(i, m) => {
                        wms[i - 1] = match m {
                            Message::Watermark(w) => w,
                            _ => MAX_TIME,
                        };
                        let upto = *wms.iter().min().unwrap();
                        let due = expected.iter().filter(|r| r.0 <= upto).count();
                        prop_assert!(got.len() >= due, "{} rows out at watermark {upto}, {due} due", got.len());
                    }
                    Event::Checkpoint(e) => {
                        checkpoints += 1;
                        prop_assert!(got.len() >= before_barrier[e as usize - 1], "checkpoint {e}");
                    }
                    Event::Idle => break,
                }
            }
            prop_assert_eq!(checkpoints, before_barrier.len());
            prop_assert_eq!(unordered, keys.len());
            prop_assert_eq!(got, expected);
        }
    }
}
