//! The flat forest: every tree's nodes in one array, laid out breadth first so the top
//! levels of a tree share cache lines and the two children of a split sit side by side.
//!
//! A split sends a record to `next` when its feature is at most the threshold and to
//! `next + 1` when it is greater. A leaf points at itself with an infinite threshold, so
//! every record takes exactly `depth` steps through a tree: no branch to mispredict, and
//! several records can walk one tree at once (their steps are independent, which the CPU
//! overlaps). A NaN compares false and goes left, as it would at a leaf.

use serde::{Deserialize, Serialize};

use crate::MlError;

/// One node of a laid-out tree (12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct Node {
    /// Records with a feature value above this go to `next + 1`; `+inf` at a leaf.
    pub threshold: f32,
    /// The feature compared (0 at a leaf).
    pub feature: u32,
    /// The left child's index within the tree (the node's own index at a leaf).
    pub next: u32,
}

/// Where a tree's nodes are in [`Forest::nodes`], and how many steps a walk takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeRef {
    /// Index of the root in the node array.
    pub start: u32,
    /// Number of nodes.
    pub len: u32,
    /// The depth of the deepest leaf (the root alone: 0).
    pub depth: u32,
}

/// How the trees' leaf values make a score in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Combine {
    /// The mean of the leaf values (a random forest's probability of "anomalous").
    Mean,
    /// Isolation forest: leaves hold path lengths; the score is `2^(-mean / c)` where `c` is
    /// the average path length of an unsuccessful search in a tree of the sample size.
    PathLength {
        /// `c(sample size)`.
        c: f32,
    },
}

/// A tree as training grows it, before it is laid out; also the reference walk of the tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Grown {
    /// A leaf and its value.
    Leaf(f32),
    /// `x[feature] <= threshold` goes left.
    Split {
        /// The feature compared.
        feature: u32,
        /// The threshold.
        threshold: f32,
        /// Records at or below the threshold.
        left: Box<Grown>,
        /// Records above it.
        right: Box<Grown>,
    },
}

impl Grown {
    /// The leaf value for a record, by the plain recursive walk.
    pub fn walk(&self, row: &[f32]) -> f32 {
        match self {
            Grown::Leaf(v) => *v,
            Grown::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                if row[*feature as usize] > *threshold {
                    right.walk(row)
                } else {
                    left.walk(row)
                }
            }
        }
    }
}

/// Trees in one node array, and how their leaves combine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    width: u32,
    nodes: Vec<Node>,
    /// The leaf value of each node (0 at splits).
    values: Vec<f32>,
    trees: Vec<TreeRef>,
    combine: Combine,
}

/// Records that walk one tree together: each step of a walk waits for the load of its node
/// and then of the record's feature, so independent walks hide each other's waits. 16 scored
/// 1.25× as many records/s as 8 on the criterion bench, 32 half as many (their indices no
/// longer fit the registers); docs/PERFORMANCE.md, 2026-12-04.
const LANES: usize = 16;
/// Records scored per pass over the trees: a block's rows stay in L1 while every tree is
/// walked (64 rows of 40 features are 10 KiB).
const BLOCK: usize = 64;

impl Forest {
    /// Lays out `trees` over records of `width` features.
    ///
    /// # Panics
    /// If there are no trees or a split reads a feature at or beyond `width`.
    pub fn new(width: usize, trees: &[Grown], combine: Combine) -> Self {
        let mut f = Forest {
            width: width as u32,
            nodes: Vec::new(),
            values: Vec::new(),
            trees: Vec::with_capacity(trees.len()),
            combine,
        };
        for t in trees {
            f.push(t);
        }
        if let Err(e) = f.validate() {
            panic!("a forest built from grown trees is invalid: {e}");
        }
        f
    }

    fn push(&mut self, tree: &Grown) {
        let start = self.nodes.len();
        let mut depth = 0;
        // Breadth first: a split's children are appended together when it is placed.
        let mut queue = std::collections::VecDeque::from([(tree, 0u32)]);
        self.nodes.push(Node {
            threshold: f32::INFINITY,
            feature: 0,
            next: 0,
        });
        self.values.push(0.0);
        let mut at = start;
        while let Some((g, d)) = queue.pop_front() {
            let own = (at - start) as u32;
            match g {
                Grown::Leaf(v) => {
                    self.nodes[at] = Node {
                        threshold: f32::INFINITY,
                        feature: 0,
                        next: own,
                    };
                    self.values[at] = *v;
                    depth = depth.max(d);
                }
                Grown::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    let next = (self.nodes.len() - start) as u32;
                    self.nodes[at] = Node {
                        threshold: *threshold,
                        feature: *feature,
                        next,
                    };
                    for _ in 0..2 {
                        self.nodes.push(Node {
                            threshold: f32::INFINITY,
                            feature: 0,
                            next: 0,
                        });
                        self.values.push(0.0);
                    }
                    queue.push_back((left, d + 1));
                    queue.push_back((right, d + 1));
                }
            }
            at += 1;
        }
        self.trees.push(TreeRef {
            start: start as u32,
            len: (self.nodes.len() - start) as u32,
            depth,
        });
    }

    /// Number of features a record must have.
    pub fn width(&self) -> usize {
        self.width as usize
    }

    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    /// Number of nodes in all trees.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The deepest tree's depth.
    pub fn depth(&self) -> usize {
        self.trees
            .iter()
            .map(|t| t.depth as usize)
            .max()
            .unwrap_or(0)
    }

    /// How leaf values combine.
    pub fn combine(&self) -> Combine {
        self.combine
    }

    /// Checks what the unchecked walk relies on: every index in range, leaves point at
    /// themselves with an infinite threshold, no walk longer than its tree's depth. A model
    /// file passes here before it scores anything.
    pub fn validate(&self) -> Result<(), MlError> {
        let bad = |why: String| Err(MlError::Corrupt(why));
        if self.nodes.len() != self.values.len() {
            return bad("node and value arrays differ in length".into());
        }
        if self.trees.is_empty() {
            return bad("the forest has no trees".into());
        }
        let mut end = 0u64;
        for (t, tree) in self.trees.iter().enumerate() {
            if u64::from(tree.start) != end || tree.len == 0 {
                return bad(format!("tree {t} is not where the previous one ended"));
            }
            end += u64::from(tree.len);
            if end > self.nodes.len() as u64 {
                return bad(format!("tree {t} runs past the node array"));
            }
            let nodes = &self.nodes[tree.start as usize..end as usize];
            // Depth of each node, from the breadth-first order: children come after parents.
            let mut depth = vec![u32::MAX; nodes.len()];
            depth[0] = 0;
            for (i, n) in nodes.iter().enumerate() {
                let d = depth[i];
                if d == u32::MAX {
                    return bad(format!("tree {t} node {i} is not reachable"));
                }
                if n.next as usize == i {
                    if n.threshold != f32::INFINITY {
                        return bad(format!("tree {t} leaf {i} has a finite threshold"));
                    }
                    if d > tree.depth {
                        return bad(format!("tree {t} is deeper than it says"));
                    }
                    continue;
                }
                if n.feature >= self.width {
                    return bad(format!("tree {t} node {i} reads feature {}", n.feature));
                }
                let c = n.next as usize;
                if c <= i || c + 1 >= nodes.len() {
                    return bad(format!("tree {t} node {i} points outside its tree"));
                }
                for child in [c, c + 1] {
                    if depth[child] != u32::MAX {
                        return bad(format!("tree {t} node {child} has two parents"));
                    }
                    depth[child] = d + 1;
                }
            }
        }
        if end != self.nodes.len() as u64 {
            return bad("nodes after the last tree".into());
        }
        Ok(())
    }

    /// Scores records laid out row after row (`rows.len()` a multiple of the width) into
    /// `out`, one score in [0, 1] per record.
    ///
    /// # Panics
    /// If `rows` does not hold `out.len()` records of [`Forest::width`] features.
    pub fn score(&self, rows: &[f32], out: &mut [f32]) {
        let w = self.width as usize;
        assert_eq!(
            rows.len(),
            out.len() * w,
            "rows of {w} features for each score"
        );
        // The rows after the last whole group of lanes, padded with zero rows to a group.
        let mut pad = Vec::new();
        for (block, scores) in rows.chunks(BLOCK * w).zip(out.chunks_mut(BLOCK)) {
            scores.fill(0.0);
            let whole = block.len() - block.len() % (LANES * w);
            let (block, rest) = block.split_at(whole);
            if !rest.is_empty() {
                pad.clear();
                pad.extend_from_slice(rest);
                pad.resize(LANES * w, 0.0);
            }
            for tree in &self.trees {
                let s = tree.start as usize;
                let e = s + tree.len as usize;
                let (nodes, values) = (&self.nodes[s..e], &self.values[s..e]);
                let mut acc = scores.chunks_mut(LANES);
                for (rows, acc) in block.chunks_exact(LANES * w).zip(&mut acc) {
                    let at = walk::<LANES>(nodes, tree.depth, rows, w);
                    for (a, i) in acc.iter_mut().zip(at) {
                        *a += values[i];
                    }
                }
                if let Some(acc) = acc.next() {
                    let at = walk::<LANES>(nodes, tree.depth, &pad, w);
                    for (a, i) in acc.iter_mut().zip(at) {
                        *a += values[i];
                    }
                }
            }
            let n = self.trees.len() as f32;
            for s in scores.iter_mut() {
                *s = match self.combine {
                    Combine::Mean => *s / n,
                    Combine::PathLength { c } => (-(*s / n) / c).exp2(),
                };
            }
        }
    }

    /// The score of one record by the plain walk of each tree's nodes, for tests and for
    /// checking the unchecked walk.
    pub fn score_one(&self, row: &[f32]) -> f32 {
        let mut sum = 0.0;
        for tree in &self.trees {
            let s = tree.start as usize;
            let mut i = 0usize;
            loop {
                let n = self.nodes[s + i];
                if n.next as usize == i {
                    break;
                }
                i = n.next as usize + usize::from(row[n.feature as usize] > n.threshold);
            }
            sum += self.values[s + i];
        }
        let n = self.trees.len() as f32;
        match self.combine {
            Combine::Mean => sum / n,
            Combine::PathLength { c } => (-(sum / n) / c).exp2(),
        }
    }
}

/// Walks `L` records (`rows`: `L` rows of `w` features) through one tree, `depth` steps each,
/// and returns the leaves' indices.
#[inline(always)]
fn walk<const L: usize>(nodes: &[Node], depth: u32, rows: &[f32], w: usize) -> [usize; L] {
    debug_assert_eq!(rows.len(), L * w);
    let mut at = [0usize; L];
    for _ in 0..depth {
        for (l, i) in at.iter_mut().enumerate() {
            // SAFETY: `Forest::validate` (run on every forest that was not built here, and
            // true by construction of `Forest::new`) guarantees that a split's `next + 1`
            // and a leaf's `next` are inside the tree and every feature is below the width,
            // and `score` hands `L` whole rows of `w` features.
            unsafe {
                let n = *nodes.get_unchecked(*i);
                let x = *rows.get_unchecked(l * w + n.feature as usize);
                *i = n.next as usize + usize::from(x > n.threshold);
            }
        }
    }
    at
}
