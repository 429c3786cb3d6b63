//! How good an anomaly score is against labels: ROC-AUC and PR-AUC (average precision, as
//! scikit-learn computes it) over every threshold, precision and recall at one.

use serde::{Deserialize, Serialize};

/// A model's quality on labelled records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Records scored.
    pub records: u64,
    /// Of which labelled anomalous.
    pub anomalies: u64,
    /// Area under the ROC curve (0.5: no better than chance).
    pub roc_auc: f64,
    /// Average precision (the share of anomalies: no better than chance).
    pub pr_auc: f64,
    /// The threshold the next two are measured at.
    pub threshold: f32,
    /// Of the records flagged at the threshold, the share that are anomalies.
    pub precision: f64,
    /// Of the anomalies, the share flagged at the threshold.
    pub recall: f64,
}

impl Evaluation {
    /// Measures `scores` against `anomalous` (true: the record is an anomaly).
    ///
    /// # Panics
    /// If the two differ in length.
    pub fn new(scores: &[f32], anomalous: &[bool], threshold: f32) -> Self {
        assert_eq!(scores.len(), anomalous.len());
        let pos = anomalous.iter().filter(|a| **a).count();
        let flagged: Vec<bool> = scores.iter().map(|s| *s >= threshold).collect();
        let tp = flagged
            .iter()
            .zip(anomalous)
            .filter(|(f, a)| **f && **a)
            .count();
        let fl = flagged.iter().filter(|f| **f).count();
        Evaluation {
            records: scores.len() as u64,
            anomalies: pos as u64,
            roc_auc: roc_auc(scores, anomalous),
            pr_auc: average_precision(scores, anomalous),
            threshold,
            precision: ratio(tp, fl),
            recall: ratio(tp, pos),
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Indices by score, highest first (NaN last).
fn by_score(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        y.partial_cmp(&x)
            .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
    });
    order
}

/// Area under the ROC curve: the probability that a random anomaly scores above a random
/// normal record, ties counting half (the Mann-Whitney statistic). NaN without both classes.
pub fn roc_auc(scores: &[f32], anomalous: &[bool]) -> f64 {
    let order = by_score(scores);
    let pos = anomalous.iter().filter(|a| **a).count() as f64;
    let neg = anomalous.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // For each group of equal scores: its anomalies beat every normal record below the group
    // and tie with the group's own.
    let (mut wins, mut neg_above) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut p, mut n) = (0.0, 0.0);
        while j < order.len() && same(scores[order[j]], scores[order[i]]) {
            if anomalous[order[j]] {
                p += 1.0;
            } else {
                n += 1.0;
            }
            j += 1;
        }
        wins += p * (neg - neg_above - n) + 0.5 * p * n;
        neg_above += n;
        i = j;
    }
    wins / (pos * neg)
}

fn same(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Average precision: Σ (recall_k − recall_{k−1}) · precision_k over the distinct scores from
/// the highest down (scikit-learn's `average_precision_score`). NaN without anomalies.
pub fn average_precision(scores: &[f32], anomalous: &[bool]) -> f64 {
    let order = by_score(scores);
    let pos = anomalous.iter().filter(|a| **a).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && same(scores[order[j]], scores[order[i]]) {
            tp += f64::from(u8::from(anomalous[order[j]]));
            seen += 1.0;
            j += 1;
        }
        let recall = tp / pos;
        ap += (recall - last_recall) * (tp / seen);
        last_recall = recall;
        i = j;
    }
    ap
}
