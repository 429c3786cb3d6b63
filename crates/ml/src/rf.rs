//! The unsupervised random forest of the reference job (Shi and Horvath's "random forest on
//! synthetic data"): the real records are one class, records made by drawing each feature
//! independently from its values in the data are the other, and a random forest learns to
//! tell them apart. A record the forest finds unlike the real ones (its features together are
//! as unusual as independent draws) scores high: the score is the forest's probability that
//! the record is synthetic.
//!
//! Trees split on histograms: each feature is cut into at most `bins` ranges at quantiles of
//! the data once, records become one byte per feature, and a node's best split of a feature
//! is one pass over its records plus one over the bins (LightGBM's and Spark's approach; the
//! reference's Spark job used 32 bins).

use crate::forest::{Combine, Forest, Grown};
use crate::iforest::partition;
use crate::rng::Rng;
use crate::train::{for_each_tree, Matrix};

/// Hyperparameters of the unsupervised random forest.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams {
    /// Number of trees (100).
    pub trees: usize,
    /// Depth at which a tree stops splitting (15).
    pub max_depth: usize,
    /// Value ranges per feature, at most 256 (64).
    pub bins: usize,
    /// Features tried at each split; default the square root of their number.
    pub max_features: Option<usize>,
    /// Share of the real records each tree draws (with replacement), as many synthetic ones
    /// beside them (0.1).
    pub fraction: f64,
    /// Smallest number of records a leaf may hold (5).
    pub min_leaf: usize,
    /// The seed.
    pub seed: u64,
    /// Threads that grow trees.
    pub threads: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            max_depth: 15,
            bins: 64,
            max_features: None,
            fraction: 0.1,
            min_leaf: 5,
            seed: 0,
            threads: 1,
        }
    }
}

/// Each feature's cut points: a value `x` falls in bin `count(edges < x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    edges: Vec<Vec<f32>>,
}

impl Bins {
    /// Cut points from (a sample of) the data: midpoints between neighbouring values where a
    /// feature has at most `bins` distinct values, else its quantiles.
    pub fn fit(data: &Matrix, bins: usize, rng: &mut Rng) -> Bins {
        let bins = bins.clamp(2, 256);
        let n = data.rows();
        let take = n.min(200_000);
        let rows: Vec<usize> = if take == n {
            (0..n).collect()
        } else {
            (0..take).map(|_| rng.below(n)).collect()
        };
        let edges = (0..data.width())
            .map(|f| {
                let mut v: Vec<f32> = rows
                    .iter()
                    .map(|&r| data.get(r, f))
                    .filter(|x| !x.is_nan())
                    .collect();
                v.sort_unstable_by(f32::total_cmp);
                let mut distinct = v.clone();
                distinct.dedup();
                if distinct.len() <= bins {
                    distinct
                        .windows(2)
                        .map(|w| w[0] + (w[1] - w[0]) / 2.0)
                        .collect()
                } else {
                    let mut e: Vec<f32> = (1..bins).map(|i| v[i * v.len() / bins]).collect();
                    e.dedup();
                    // The largest value as an edge would leave an empty last bin.
                    if e.last() == distinct.last() {
                        e.pop();
                    }
                    e
                }
            })
            .collect();
        Bins { edges }
    }

    /// The bin of `x` for feature `f`.
    pub fn bin(&self, f: usize, x: f32) -> u8 {
        self.edges[f].partition_point(|e| *e < x) as u8
    }

    /// The threshold of the split "bin ≤ b" of feature `f` (records with `x ≤` it go left).
    pub fn threshold(&self, f: usize, b: u8) -> f32 {
        self.edges[f][b as usize]
    }

    /// Number of bins of feature `f`.
    pub fn len(&self, f: usize) -> usize {
        self.edges[f].len() + 1
    }
}

/// Trains the forest on `data` (the real records); `progress` is called once per finished tree.
///
/// # Panics
/// If `data` has no rows.
pub fn train(data: &Matrix, p: &ForestParams, progress: &(dyn Fn() + Sync)) -> Forest {
    assert!(data.rows() > 0, "a random forest needs records");
    let w = data.width();
    let bins = Bins::fit(data, p.bins, &mut Rng::new(p.seed, u64::MAX));
    let codes: Vec<u8> = (0..data.rows())
        .flat_map(|r| (0..w).map(move |f| (r, f)))
        .map(|(r, f)| bins.bin(f, data.get(r, f)))
        .collect();
    let per_tree = ((data.rows() as f64 * p.fraction).round() as usize).max(1);
    let max_features = p
        .max_features
        .unwrap_or_else(|| (w as f64).sqrt().round() as usize)
        .clamp(1, w);
    let trees = for_each_tree(p.trees, p.threads, |t| {
        let mut rng = Rng::new(p.seed, t as u64);
        // The tree's records: `per_tree` real rows, then as many synthetic ones.
        let mut local = Vec::with_capacity(2 * per_tree * w);
        for _ in 0..per_tree {
            let r = rng.below(data.rows());
            local.extend_from_slice(&codes[r * w..(r + 1) * w]);
        }
        for _ in 0..per_tree {
            for f in 0..w {
                local.push(codes[rng.below(data.rows()) * w + f]);
            }
        }
        let mut rows: Vec<u32> = (0..2 * per_tree as u32).collect();
        let grower = Grower {
            codes: &local,
            width: w,
            synthetic_from: per_tree as u32,
            bins: &bins,
            p,
            max_features,
        };
        let tree = grower.grow(&mut rows, 0, &mut rng, &mut Hist::new(w));
        progress();
        tree
    });
    Forest::new(w, &trees, Combine::Mean)
}

struct Grower<'a> {
    codes: &'a [u8],
    width: usize,
    /// Rows from here on are synthetic (the "anomalous" class).
    synthetic_from: u32,
    bins: &'a Bins,
    p: &'a ForestParams,
    max_features: usize,
}

/// Class counts per bin of one feature, reused across nodes.
struct Hist {
    counts: Vec<[u32; 2]>,
    features: Vec<usize>,
}

impl Hist {
    fn new(width: usize) -> Self {
        Hist {
            counts: vec![[0; 2]; 256],
            features: (0..width).collect(),
        }
    }
}

impl Grower<'_> {
    fn grow(&self, rows: &mut [u32], depth: usize, rng: &mut Rng, h: &mut Hist) -> Grown {
        let synthetic = rows.iter().filter(|&&r| r >= self.synthetic_from).count();
        let leaf = Grown::Leaf(synthetic as f32 / rows.len() as f32);
        if depth >= self.p.max_depth
            || rows.len() < 2 * self.p.min_leaf.max(1)
            || synthetic == 0
            || synthetic == rows.len()
        {
            return leaf;
        }
        let Some((f, b)) = self.best_split(rows, synthetic, rng, h) else {
            return leaf;
        };
        let w = self.width;
        let cut = partition(rows, |r| self.codes[r as usize * w + f] <= b);
        let (l, r) = rows.split_at_mut(cut);
        Grown::Split {
            feature: f as u32,
            threshold: self.bins.threshold(f, b),
            left: Box::new(self.grow(l, depth + 1, rng, h)),
            right: Box::new(self.grow(r, depth + 1, rng, h)),
        }
    }

    /// The split with the lowest weighted Gini impurity among `max_features` features that
    /// are not constant in the node (drawn at random, as many more as constant ones turn up).
    fn best_split(
        &self,
        rows: &[u32],
        synthetic: usize,
        rng: &mut Rng,
        h: &mut Hist,
    ) -> Option<(usize, u8)> {
        let n = rows.len() as f64;
        let total = [(rows.len() - synthetic) as f64, synthetic as f64];
        // Gini gain ∝ Σ over sides and classes of count² / side size; the parent's is the floor.
        let parent = (total[0] * total[0] + total[1] * total[1]) / n;
        let mut best: Option<(f64, usize, u8)> = None;
        let mut tried = 0;
        let mut left = h.features.len();
        let min_leaf = self.p.min_leaf.max(1) as f64;
        while left > 0 && tried < self.max_features {
            let pick = rng.below(left);
            let f = h.features[pick];
            h.features.swap(pick, left - 1);
            left -= 1;
            let nb = self.bins.len(f);
            let counts = &mut h.counts[..nb];
            counts.fill([0; 2]);
            for &r in rows {
                let b = self.codes[r as usize * self.width + f] as usize;
                counts[b][usize::from(r >= self.synthetic_from)] += 1;
            }
            if counts.iter().filter(|c| c[0] + c[1] > 0).count() < 2 {
                continue; // constant here: does not count as tried
            }
            tried += 1;
            let mut l = [0f64; 2];
            for (b, c) in counts[..nb - 1].iter().enumerate() {
                l[0] += f64::from(c[0]);
                l[1] += f64::from(c[1]);
                let nl = l[0] + l[1];
                let nr = n - nl;
                if nl < min_leaf || nr < min_leaf {
                    continue;
                }
                let r = [total[0] - l[0], total[1] - l[1]];
                let score = (l[0] * l[0] + l[1] * l[1]) / nl + (r[0] * r[0] + r[1] * r[1]) / nr;
                if score > parent + 1e-9 && best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, f, b as u8));
                }
            }
        }
        best.map(|(_, f, b)| (f, b))
    }
}
