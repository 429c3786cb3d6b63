//! Folding an aggregate's rows before the exchange (its [`Combiner`]).
//!
//! ```text
//!   parser thread k                                             aggregate instance i
//!  ┌───────────────────────────────────────────────┐           ┌──────────────────────────┐
//!  │ batch ─▶ per (pane, key): one accumulator ────┼─ folds ──▶│ merge into the open pane │
//!  │          rows without event time, rows whose  │  owned    │ (a fold of a pane that   │
//!  │          key or input failed ─ as they are ───┼─ by i ───▶│ closed: its rows, late)  │
//!  └───────────────────────────────────────────────┘           └──────────────────────────┘
//! ```
//! With several instances, all rows of a key go to one instance: a hot key (HTTP status 200 is
//! most of a web log) makes that instance the bottleneck while the parser threads wait. Each
//! parser thread therefore folds its batch into one accumulator per (pane, key) and sends an
//! instance only the folds of the keys it owns, thousands of rows becoming a few dozen.
//! Only aggregates whose partial results merge exactly in any order are folded (counts,
//! integer sums, integer minima and maxima: [`PaneAcc::mergeable`]), so the output is the
//! same, bit for bit. Whether a row is late is decided by the instance, per pane, as for a
//! row; a fold of a pane that has closed there is turned back into its rows, which go to the
//! late output. A batch whose rows hardly fold (nearly one key per row) is sent as it is, and
//! so are the next ones for a while: folding them would only add work.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use hashbrown::HashMap;
use weir_core::keys::{key_hash, owner, Encode};
use weir_core::message::Partial;
use weir_core::operator::split;
use weir_core::value::Col;
use weir_core::{Combiner, Message, Partitioner, Result};

use crate::acc::PaneAcc;
use crate::aggregate::{eval_inputs, update_accs, AggPlan, GroupKeys};

/// No fold: the row was sent as it is.
pub(crate) const UNFOLDED: u32 = u32::MAX;

/// After a batch that folded to more than half its rows, this many batches are sent unfolded.
const SKIP_AFTER_POOR_FOLD: u32 = 16;

/// One batch's folds for one instance.
pub(crate) struct Folded {
    /// The batch as the aggregate would have received it, shared by every instance's part,
    /// and for each of its rows the number of its fold ([`UNFOLDED`]: not folded): the rows of
    /// a fold whose pane closed are found here.
    pub batch: RecordBatch,
    pub fold_of_row: Arc<[u32]>,
    /// This instance's folds: their numbers in the batch, pane indexes, encoded keys (the key
    /// of fold `i` is `keys[ends[i - 1]..ends[i]]`) and accumulators (`n_aggs` per fold).
    pub ids: Vec<u32>,
    pub panes: Vec<i64>,
    pub keys: Vec<u8>,
    pub ends: Vec<usize>,
    pub accs: Vec<PaneAcc>,
}

impl Folded {
    /// The encoded key of fold `i`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.keys[start..self.ends[i]]
    }
}

/// The combiner of an aggregate in event time whose aggregates all merge exactly.
pub(crate) struct Fold {
    pub time_col: usize,
    /// The group keys, which also route the rows sent as they are.
    pub keys: GroupKeys,
    pub aggs: Vec<AggPlan>,
    pub pane: i64,
    /// Batches still to send unfolded after a poor fold (shared by the parser threads).
    pub skip: AtomicU32,
}

/// All folds of one batch, before they are shared out.
#[derive(Default)]
struct Folds {
    panes: Vec<i64>,
    keys: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    rows: Vec<u64>,
    accs: Vec<PaneAcc>,
}

impl Folds {
    /// The fold of pane `idx` and the key of `row`, `buf` being [`encode`]d for them; added
    /// if new.
    fn find(
        &mut self,
        index: &mut HashMap<Vec<u8>, u32>,
        buf: &[u8],
        idx: i64,
        aggs: &[AggPlan],
    ) -> u32 {
        if let Some(&f) = index.get(buf) {
            return f;
        }
        let f = self.panes.len() as u32;
        let key = &buf[8..];
        self.panes.push(idx);
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
        self.hashes.push(key_hash(key));
        self.rows.push(0);
        self.accs
            .extend(aggs.iter().map(|a| PaneAcc::new(a.func, a.kind)));
        index.insert(buf.to_vec(), f);
        f
    }
}

/// Writes pane `idx` and the key of `row` in `keys` into `buf`: what [`Folds::find`] looks up.
#[inline]
fn encode(buf: &mut Vec<u8>, idx: i64, keys: &[Col<'_>], row: usize) {
    buf.clear();
    buf.extend_from_slice(&idx.to_be_bytes());
    for k in keys {
        k.encode(row, buf);
    }
}

impl Fold {
    /// Rows `rows` of `batch`, as they are, for the instances that own their keys.
    fn unfolded(
        &self,
        batch: &RecordBatch,
        rows: Option<Vec<u32>>,
        instances: usize,
        out: &mut Vec<(usize, Message)>,
    ) -> Result<()> {
        let part;
        let batch = match rows {
            None => batch,
            Some(r) if r.is_empty() => return Ok(()),
            Some(r) => {
                part = arrow_select::take::take_record_batch(batch, &UInt32Array::from(r))?;
                &part
            }
        };
        for (k, b) in split(batch, &self.keys as &dyn Partitioner, instances)? {
            out.push((k, Message::Data(b)));
        }
        Ok(())
    }
}

impl Combiner for Fold {
    fn combine(&self, batch: &RecordBatch, instances: usize) -> Result<Vec<(usize, Message)>> {
        let mut out = Vec::new();
        let skipping = self
            .skip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1))
            .is_ok();
        if skipping {
            self.unfolded(batch, None, instances, &mut out)?;
            return Ok(out);
        }
        let n = batch.num_rows();
        // Rows whose key or input cannot be computed go as they are: the instance reports them.
        let mut unfolded_rows: Vec<u32> = Vec::new();
        let mut failed = vec![false; n];
        let (key_arrays, val_arrays) =
            eval_inputs(&self.keys.0, &self.aggs, batch, |row, _| failed[row] = true)?;
        let keys: Vec<Col<'_>> = key_arrays
            .iter()
            .map(|a| Col::new(a).expect("key types are checked at build"))
            .collect();
        let vals: Vec<Option<Col<'_>>> = val_arrays
            .iter()
            .map(|a| a.as_ref().map(|a| Col::new(a).expect("checked at build")))
            .collect();
        let times = Col::new(batch.column(self.time_col)).expect("checked at build");
        let n_aggs = self.aggs.len();
        let mut folds = Folds::default();
        let mut fold_of_row = vec![UNFOLDED; n];
        // (pane index, encoded key) → fold number.
        let mut index: HashMap<Vec<u8>, u32> = HashMap::new();
        let (mut buf, mut last) = (Vec::new(), Vec::new());
        let mut last_fold = UNFOLDED;
        let mut val_buf = Vec::new();
        let mut span = (0i64, 0i64, 0i64);
        let int_key = match keys.as_slice() {
            [k] if !matches!(k, Col::Str(_) | Col::F32(_) | Col::F64(_)) => Some(k),
            _ => None,
        };
        let mut recent = [(0i64, None, UNFOLDED); 64];
        for row in 0..n {
            let Some(ts) = times.int(row).filter(|_| !failed[row]) else {
                unfolded_rows.push(row as u32);
                continue;
            };
            let idx = if ts >= span.0 && ts < span.1 {
                span.2
            } else {
                let idx = ts.div_euclid(self.pane);
                let lo = idx.saturating_mul(self.pane);
                let hi = idx.saturating_add(1).saturating_mul(self.pane);
                span = (lo, hi, idx);
                idx
            };
            let fold = match int_key {
                // One integer key (an HTTP status): (pane, value) → fold, without encoding.
                Some(k) => {
                    let v = k.int(row);
                    const K: u64 = 0x9E37_79B9_7F4A_7C15;
                    let h = ((idx as u64).wrapping_mul(K) ^ v.map_or(1 << 63, |v| v as u64))
                        .wrapping_mul(K);
                    let slot = (h >> 58) as usize;
                    match recent[slot] {
                        (i, w, f) if f != UNFOLDED && i == idx && w == v => f,
                        _ => {
                            encode(&mut buf, idx, &keys, row);
                            let f = folds.find(&mut index, &buf, idx, &self.aggs);
                            recent[slot] = (idx, v, f);
                            f
                        }
                    }
                }
                None => {
                    // Runs of one key are common: the previous row's fold first.
                    encode(&mut buf, idx, &keys, row);
                    if last_fold == UNFOLDED || buf != last {
                        last_fold = folds.find(&mut index, &buf, idx, &self.aggs);
                        std::mem::swap(&mut buf, &mut last);
                    }
                    last_fold
                }
            };
            fold_of_row[row] = fold;
            let f = fold as usize;
            folds.rows[f] += 1;
            update_accs(
                &mut folds.accs[f * n_aggs..(f + 1) * n_aggs],
                &self.aggs,
                &vals,
                row,
                &mut val_buf,
            );
        }
        let folded_rows = n - unfolded_rows.len();
        if folds.panes.len() * 2 > folded_rows {
            self.skip.store(SKIP_AFTER_POOR_FOLD, Ordering::Relaxed);
        }
        // Share the folds out by the owner of their key.
        let fold_of_row: Arc<[u32]> = fold_of_row.into();
        let mut parts: Vec<Option<(Folded, u64)>> = (0..instances).map(|_| None).collect();
        let mut start = 0;
        for (f, &end) in folds.ends.iter().enumerate() {
            let k = owner(folds.hashes[f], instances);
            let (p, records) = parts[k].get_or_insert_with(|| {
                (
                    Folded {
                        batch: batch.clone(),
                        fold_of_row: fold_of_row.clone(),
                        ids: Vec::new(),
                        panes: Vec::new(),
                        keys: Vec::new(),
                        ends: Vec::new(),
                        accs: Vec::new(),
                    },
                    0,
                )
            });
            p.ids.push(f as u32);
            p.panes.push(folds.panes[f]);
            p.keys.extend_from_slice(&folds.keys[start..end]);
            p.ends.push(p.keys.len());
            p.accs
                .extend_from_slice(&folds.accs[f * n_aggs..(f + 1) * n_aggs]);
            *records += folds.rows[f];
            start = end;
        }
        for (k, part) in parts.into_iter().enumerate() {
            if let Some((p, records)) = part {
                let part = Partial {
                    part: Arc::new(p),
                    records,
                };
                out.push((k, Message::Partial(part)));
            }
        }
        self.unfolded(batch, Some(unfolded_rows), instances, &mut out)?;
        Ok(out)
    }
}
