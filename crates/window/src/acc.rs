//! Accumulators: per-pane partial aggregates, and the running per-window aggregate built from
//! panes incrementally (add the entering pane, subtract the leaving one; min/max over a
//! two-stacks queue), so the cost of a window does not grow with size/slide.

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

/// What an aggregate computes (`fn = "count"` in a pipeline file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFn {
    /// Rows, or non-null values of `field` when one is given.
    Count,
    /// Sum of non-null values; null when there are none.
    Sum,
    /// Smallest non-null value.
    Min,
    /// Largest non-null value.
    Max,
    /// Mean of non-null values, as a float.
    Avg,
    /// Number of distinct non-null values.
    CountDistinct,
}

/// The numeric class of an aggregate's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    /// Integers (and timestamps), accumulated as i64 (sums as i128).
    Int,
    /// Unsigned integers: sums as i128, min and max as u64 (kept order-preserving in an i64,
    /// see [`flip`]); results are unsigned.
    UInt,
    /// Floats, accumulated as f64.
    Float,
}

/// One input value of an aggregate for one row.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Null or no field (`count()` counts it as a row).
    Null,
    /// Integer value.
    Int(i64),
    /// Unsigned integer value.
    UInt(u64),
    /// Float value.
    Float(f64),
    /// Encoded value for `count_distinct`.
    Bytes(&'a [u8]),
}

/// A pane's partial aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaneAcc {
    /// Count.
    Count(i64),
    /// Integer sum (wide: no sum of 64-bit values can overflow it) and number of values.
    SumI(i128, i64),
    /// Float sum and number of values.
    SumF(f64, i64),
    /// Integer min or max.
    ExtI(Option<i64>),
    /// Float min or max.
    ExtF(Option<f64>),
    /// Distinct encoded values.
    Distinct(HashSet<Box<[u8]>>),
}

impl PaneAcc {
    /// The empty accumulator of `f` over `kind`.
    pub fn new(f: AggFn, kind: NumKind) -> Self {
        match (f, kind) {
            (AggFn::Count, _) => PaneAcc::Count(0),
            (AggFn::Sum, NumKind::Int | NumKind::UInt) => PaneAcc::SumI(0, 0),
            (AggFn::Sum | AggFn::Avg, _) => PaneAcc::SumF(0.0, 0),
            (AggFn::Min | AggFn::Max, NumKind::Int | NumKind::UInt) => PaneAcc::ExtI(None),
            (AggFn::Min | AggFn::Max, NumKind::Float) => PaneAcc::ExtF(None),
            (AggFn::CountDistinct, _) => PaneAcc::Distinct(HashSet::new()),
        }
    }

    /// Adds one input. `count_all` counts nulls too (`count()` without a field).
    #[inline]
    pub fn update(&mut self, f: AggFn, v: Input<'_>, count_all: bool) {
        match (self, v) {
            (PaneAcc::Count(c), Input::Null) => *c += i64::from(count_all),
            (PaneAcc::Count(c), _) => *c += 1,
            (_, Input::Null) => {}
            (PaneAcc::SumI(s, n), Input::Int(x)) => {
                *s += i128::from(x);
                *n += 1;
            }
            (PaneAcc::SumI(s, n), Input::UInt(x)) => {
                *s += i128::from(x);
                *n += 1;
            }
            (PaneAcc::SumF(s, n), Input::UInt(x)) => {
                *s += x as f64;
                *n += 1;
            }
            (PaneAcc::ExtI(e), Input::UInt(x)) => *e = Some(ext(f, *e, flip(x))),
            (PaneAcc::SumF(s, n), Input::Float(x)) => {
                *s += x;
                *n += 1;
            }
            (PaneAcc::SumF(s, n), Input::Int(x)) => {
                *s += x as f64;
                *n += 1;
            }
            (PaneAcc::ExtI(e), Input::Int(x)) => *e = Some(ext(f, *e, x)),
            (PaneAcc::ExtF(e), Input::Float(x)) if !x.is_nan() => *e = Some(extf(f, *e, x)),
            (PaneAcc::Distinct(set), Input::Bytes(b)) if !set.contains(b) => {
                set.insert(b.into());
            }
            _ => {}
        }
    }
}

impl PaneAcc {
    /// Whether the partial aggregates of `f` over `kind` merge to exactly what one accumulator
    /// fed every row would hold, in any order: counts, integer sums and integer extremes (not
    /// float sums, whose rounding depends on the order, nor distinct sets, whose size is not
    /// bounded by the keys).
    pub fn mergeable(f: AggFn, kind: NumKind) -> bool {
        match f {
            AggFn::Count => true,
            AggFn::Sum | AggFn::Min | AggFn::Max => kind != NumKind::Float,
            AggFn::Avg | AggFn::CountDistinct => false,
        }
    }

    /// Adds `other`, the accumulator of `f` over other rows (only for [`PaneAcc::mergeable`]
    /// ones).
    #[inline]
    pub fn merge(&mut self, f: AggFn, other: &PaneAcc) {
        match (self, other) {
            (PaneAcc::Count(a), PaneAcc::Count(b)) => *a += b,
            (PaneAcc::SumI(s, n), PaneAcc::SumI(s2, n2)) => {
                *s += s2;
                *n += n2;
            }
            (PaneAcc::ExtI(e), PaneAcc::ExtI(Some(x))) => *e = Some(ext(f, *e, *x)),
            (PaneAcc::ExtI(_), PaneAcc::ExtI(None)) => {}
            (a, b) => unreachable!("merging {b:?} into {a:?}: not a mergeable pair"),
        }
    }
}

/// Maps a u64 onto an i64 of the same order (the top bit flipped), so unsigned minima and
/// maxima share the signed accumulators; [`unflip`] maps back.
#[inline]
pub fn flip(x: u64) -> i64 {
    (x ^ (1 << 63)) as i64
}

/// The inverse of [`flip`].
#[inline]
pub fn unflip(x: i64) -> u64 {
    (x as u64) ^ (1 << 63)
}

#[inline]
fn ext(f: AggFn, cur: Option<i64>, x: i64) -> i64 {
    match (cur, f) {
        (None, _) => x,
        (Some(c), AggFn::Min) => c.min(x),
        (Some(c), _) => c.max(x),
    }
}

#[inline]
fn extf(f: AggFn, cur: Option<f64>, x: f64) -> f64 {
    match (cur, f) {
        (None, _) => x,
        (Some(c), AggFn::Min) => c.min(x),
        (Some(c), _) => c.max(x),
    }
}

/// A FIFO queue that answers min or max of its contents in amortised O(1) per push and pop:
/// the classic two-stacks queue. Pushing happens at the back; popping at the front flips the
/// back stack into the front stack once, storing suffix extrema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoStacks<T> {
    front: Vec<(Option<T>, Option<T>)>,
    back: Vec<Option<T>>,
    back_agg: Option<T>,
    is_min: bool,
}

/// Values a [`TwoStacks`] can hold.
pub trait Extremum: Copy {
    /// The smaller (`is_min`) or larger of two values.
    fn pick(self, other: Self, is_min: bool) -> Self;
}

impl Extremum for i64 {
    fn pick(self, other: Self, is_min: bool) -> Self {
        if is_min {
            self.min(other)
        } else {
            self.max(other)
        }
    }
}

impl Extremum for f64 {
    fn pick(self, other: Self, is_min: bool) -> Self {
        if is_min {
            self.min(other)
        } else {
            self.max(other)
        }
    }
}

fn combine<T: Extremum>(a: Option<T>, b: Option<T>, is_min: bool) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.pick(y, is_min)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl<T: Extremum> TwoStacks<T> {
    /// An empty queue of minima (`is_min`) or maxima.
    pub fn new(is_min: bool) -> Self {
        TwoStacks {
            front: Vec::new(),
            back: Vec::new(),
            back_agg: None,
            is_min,
        }
    }

    /// Appends a pane's extremum (None for a pane without values).
    pub fn push(&mut self, v: Option<T>) {
        self.back.push(v);
        self.back_agg = combine(self.back_agg, v, self.is_min);
    }

    /// Removes the oldest pane's value.
    pub fn pop(&mut self) {
        if self.front.is_empty() {
            while let Some(v) = self.back.pop() {
                let below = self.front.last().and_then(|&(_, agg)| agg);
                self.front.push((v, combine(below, v, self.is_min)));
            }
            self.back_agg = None;
        }
        self.front.pop();
    }

    /// The extremum of all values in the queue.
    pub fn get(&self) -> Option<T> {
        combine(
            self.front.last().and_then(|&(_, a)| a),
            self.back_agg,
            self.is_min,
        )
    }
}

/// The aggregate of the panes currently in a key's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunAcc {
    /// Count (invertible).
    Count(i64),
    /// Integer sum and count (invertible; i128, so no sum of 64-bit values overflows it).
    SumI(i128, i64),
    /// Float sum and count (invertible; float rounding may differ from a fresh sum in the
    /// last bits).
    SumF(f64, i64),
    /// Integer min/max over the panes.
    ExtI(TwoStacks<i64>),
    /// Float min/max over the panes.
    ExtF(TwoStacks<f64>),
    /// Multiplicity of each distinct value over the panes.
    Distinct(HashMap<Vec<u8>, u32>),
}

impl RunAcc {
    /// The empty running aggregate matching a pane accumulator.
    pub fn new(f: AggFn, pane: &PaneAcc) -> Self {
        match pane {
            PaneAcc::Count(_) => RunAcc::Count(0),
            PaneAcc::SumI(..) => RunAcc::SumI(0, 0),
            PaneAcc::SumF(..) => RunAcc::SumF(0.0, 0),
            PaneAcc::ExtI(_) => RunAcc::ExtI(TwoStacks::new(f == AggFn::Min)),
            PaneAcc::ExtF(_) => RunAcc::ExtF(TwoStacks::new(f == AggFn::Min)),
            PaneAcc::Distinct(_) => RunAcc::Distinct(HashMap::new()),
        }
    }

    /// Adds a pane entering the window (panes enter in time order).
    pub fn add(&mut self, p: &PaneAcc) {
        match (self, p) {
            (RunAcc::Count(c), PaneAcc::Count(x)) => *c += x,
            (RunAcc::SumI(s, n), PaneAcc::SumI(x, m)) => {
                *s += x;
                *n += m;
            }
            (RunAcc::SumF(s, n), PaneAcc::SumF(x, m)) => {
                *s += x;
                *n += m;
            }
            (RunAcc::ExtI(q), PaneAcc::ExtI(x)) => q.push(*x),
            (RunAcc::ExtF(q), PaneAcc::ExtF(x)) => q.push(*x),
            (RunAcc::Distinct(m), PaneAcc::Distinct(set)) => {
                for v in set {
                    *m.entry_ref(v.as_ref()).or_insert(0) += 1;
                }
            }
            _ => unreachable!("running and pane accumulators are built from the same spec"),
        }
    }

    /// Removes the oldest pane, leaving the window.
    pub fn sub(&mut self, p: &PaneAcc) {
        match (self, p) {
            (RunAcc::Count(c), PaneAcc::Count(x)) => *c -= x,
            (RunAcc::SumI(s, n), PaneAcc::SumI(x, m)) => {
                *s -= x;
                *n -= m;
            }
            (RunAcc::SumF(s, n), PaneAcc::SumF(x, m)) => {
                *s -= x;
                *n -= m;
                if *n == 0 {
                    // Forget accumulated rounding error once the window holds no values.
                    *s = 0.0;
                }
            }
            (RunAcc::ExtI(q), PaneAcc::ExtI(_)) => q.pop(),
            (RunAcc::ExtF(q), PaneAcc::ExtF(_)) => q.pop(),
            (RunAcc::Distinct(m), PaneAcc::Distinct(set)) => {
                for v in set {
                    if let Some(c) = m.get_mut(v.as_ref()) {
                        *c -= 1;
                        if *c == 0 {
                            m.remove(v.as_ref());
                        }
                    }
                }
            }
            _ => unreachable!("running and pane accumulators are built from the same spec"),
        }
    }
}

/// The final value of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Out {
    /// Null (no values).
    Null,
    /// Integer (for an unsigned min or max, [`flip`]ped).
    Int(i64),
    /// An integer sum, which may not fit the output type.
    Sum(i128),
    /// Float.
    Float(f64),
}

/// The result of `f` from a pane accumulator (tumbling windows emit panes directly).
pub fn pane_result(f: AggFn, p: &PaneAcc) -> Out {
    match p {
        PaneAcc::Count(c) => Out::Int(*c),
        PaneAcc::SumI(s, n) => nz(*n, Out::Sum(*s)),
        PaneAcc::SumF(s, n) if f == AggFn::Avg => nz(*n, Out::Float(s / *n as f64)),
        PaneAcc::SumF(s, n) => nz(*n, Out::Float(*s)),
        PaneAcc::ExtI(e) => e.map_or(Out::Null, Out::Int),
        PaneAcc::ExtF(e) => e.map_or(Out::Null, Out::Float),
        PaneAcc::Distinct(s) => Out::Int(s.len() as i64),
    }
}

/// The result of `f` from a running window aggregate.
pub fn run_result(f: AggFn, r: &RunAcc) -> Out {
    match r {
        RunAcc::Count(c) => Out::Int(*c),
        RunAcc::SumI(s, n) => nz(*n, Out::Sum(*s)),
        RunAcc::SumF(s, n) if f == AggFn::Avg => nz(*n, Out::Float(s / *n as f64)),
        RunAcc::SumF(s, n) => nz(*n, Out::Float(*s)),
        RunAcc::ExtI(q) => q.get().map_or(Out::Null, Out::Int),
        RunAcc::ExtF(q) => q.get().map_or(Out::Null, Out::Float),
        RunAcc::Distinct(m) => Out::Int(m.len() as i64),
    }
}

fn nz(n: i64, v: Out) -> Out {
    if n == 0 {
        Out::Null
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The two-stacks queue answers like a recomputation over a plain queue.
        #[test]
        fn two_stacks_matches_naive(ops in proptest::collection::vec(
            prop_oneof![(-100i64..100).prop_map(Some), Just(None)], 1..200), pops in proptest::collection::vec(any::<bool>(), 200)) {
            let mut q = TwoStacks::new(true);
            let mut naive: std::collections::VecDeque<Option<i64>> = Default::default();
            for (v, pop) in ops.iter().zip(&pops) {
                q.push(*v);
                naive.push_back(*v);
                if *pop {
                    q.pop();
                    naive.pop_front();
                }
                prop_assert_eq!(q.get(), naive.iter().flatten().min().copied());
            }
        }
    }
}
