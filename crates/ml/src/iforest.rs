//! Isolation forest (Liu, Ting and Zhou, 2008): each tree isolates a small random sample by
//! random splits (a random feature, a threshold uniform between its smallest and largest
//! value in the node); an anomaly is isolated in few splits. A leaf holds its depth plus the
//! expected depth of the records it still holds, `c(n)`; the score is `2^(-mean / c(psi))`,
//! near 1 for anomalies and below 0.5 for ordinary records.

use crate::forest::{Combine, Forest, Grown};
use crate::rng::Rng;
use crate::train::{for_each_tree, Matrix};

/// Hyperparameters of an isolation forest.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationParams {
    /// Number of trees (100).
    pub trees: usize,
    /// Records drawn (without replacement) for each tree (256; all if the data has fewer).
    pub sample: usize,
    /// Depth at which a tree stops splitting; default `ceil(log2(sample))`, the depth of a
    /// balanced tree, past which only anomalies' paths would be told apart anyway.
    pub max_depth: Option<usize>,
    /// The seed: one seed, one forest, whatever the number of threads.
    pub seed: u64,
    /// Threads that grow trees.
    pub threads: usize,
}

impl Default for IsolationParams {
    fn default() -> Self {
        IsolationParams {
            trees: 100,
            sample: 256,
            max_depth: None,
            seed: 0,
            threads: 1,
        }
    }
}

/// Average path length of an unsuccessful search in a binary search tree of `n` records.
pub fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let m = (n - 1) as f64;
            2.0 * (m.ln() + 0.577_215_664_901_532_9) - 2.0 * m / n as f64
        }
    }
}

/// Trains an isolation forest on `data`; `progress` is called once per finished tree.
///
/// # Panics
/// If `data` has no rows.
pub fn train(data: &Matrix, p: &IsolationParams, progress: &(dyn Fn() + Sync)) -> Forest {
    assert!(data.rows() > 0, "an isolation forest needs records");
    let psi = p.sample.clamp(1, data.rows());
    let limit = p
        .max_depth
        .unwrap_or_else(|| (psi as f64).log2().ceil() as usize);
    let trees = for_each_tree(p.trees, p.threads, |t| {
        let mut rng = Rng::new(p.seed, t as u64);
        let mut rows = sample_without_replacement(&mut rng, data.rows(), psi);
        let tree = grow(data, &mut rows, 0, limit, &mut rng);
        progress();
        tree
    });
    Forest::new(
        data.width(),
        &trees,
        Combine::PathLength { c: c(psi) as f32 },
    )
}

/// `k` distinct indices below `n`, in the order drawn (Floyd's method would need a set; a
/// partial Fisher-Yates over a sparse map does the same in O(k)).
fn sample_without_replacement(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    if k >= n {
        return (0..n as u32).collect();
    }
    let mut moved = std::collections::HashMap::with_capacity(2 * k);
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + rng.below(n - i);
        let at_j = *moved.get(&j).unwrap_or(&j);
        let at_i = *moved.get(&i).unwrap_or(&i);
        moved.insert(j, at_i);
        out.push(at_j as u32);
    }
    out
}

fn grow(data: &Matrix, rows: &mut [u32], depth: usize, limit: usize, rng: &mut Rng) -> Grown {
    let leaf = |n: usize| Grown::Leaf((depth as f64 + c(n)) as f32);
    if depth >= limit || rows.len() <= 1 {
        return leaf(rows.len());
    }
    // A random feature that is not constant in this node; a node where all are is a leaf.
    let mut features: Vec<u32> = (0..data.width() as u32).collect();
    let mut left = features.len();
    while left > 0 {
        let pick = rng.below(left);
        let f = features[pick];
        features.swap(pick, left - 1);
        left -= 1;
        let (lo, hi) = rows
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
                let x = data.get(r as usize, f as usize);
                (lo.min(x), hi.max(x))
            });
        if lo >= hi {
            continue;
        }
        let mut t = (f64::from(lo) + rng.unit() * (f64::from(hi) - f64::from(lo))) as f32;
        if t >= hi {
            t = lo; // rounding reached the top: still a split, `lo` left and `hi` right
        }
        let cut = partition(rows, |r| data.get(r as usize, f as usize) <= t);
        let (l, r) = rows.split_at_mut(cut);
        return Grown::Split {
            feature: f,
            threshold: t,
            left: Box::new(grow(data, l, depth + 1, limit, rng)),
            right: Box::new(grow(data, r, depth + 1, limit, rng)),
        };
    }
    leaf(rows.len())
}

/// Moves the rows for which `left` holds to the front; returns how many there are.
pub(crate) fn partition(rows: &mut [u32], left: impl Fn(u32) -> bool) -> usize {
    let mut cut = 0;
    for i in 0..rows.len() {
        if left(rows[i]) {
            rows.swap(cut, i);
            cut += 1;
        }
    }
    cut
}
