use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use proptest::prelude::*;

use crate::forest::{Combine, Grown};
use crate::iforest::IsolationParams;
use crate::metrics::{average_precision, roc_auc};
use crate::rf::ForestParams;
use crate::Rng;
use crate::*;

/// A random tree over `width` features, at most `depth` deep, thresholds from a few values so
/// that records hit them exactly.
fn tree(width: u32, depth: u32) -> impl Strategy<Value = Grown> {
    let leaf = (0.0f32..1.0).prop_map(Grown::Leaf);
    leaf.prop_recursive(depth, 256, 2, move |inner| {
        (0..width, -3i8..4, inner.clone(), inner).prop_map(|(feature, t, l, r)| Grown::Split {
            feature,
            threshold: f32::from(t) * 0.5,
            left: Box::new(l),
            right: Box::new(r),
        })
    })
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => (-4i8..5).prop_map(|v| f32::from(v) * 0.5),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => any::<f32>(),
    ]
}

proptest! {
    /// The flat, branch-free walk of many records at once scores what walking each tree's
    /// nodes one record at a time scores.
    #[test]
    fn flat_scoring_equals_the_tree_walk(
        trees in prop::collection::vec(tree(5, 12), 1..12),
        rows in prop::collection::vec(prop::collection::vec(value(), 5), 0..150),
        isolation in any::<bool>(),
    ) {
        let combine = if isolation { Combine::PathLength { c: 3.7 } } else { Combine::Mean };
        let forest = Forest::new(5, &trees, combine);
        let flat: Vec<f32> = rows.concat();
        let mut scores = vec![0.0; rows.len()];
        forest.score(&flat, &mut scores);
        for (row, got) in rows.iter().zip(&scores) {
            let mean = trees.iter().map(|t| t.walk(row)).sum::<f32>() / trees.len() as f32;
            let want = if isolation { (-mean / 3.7).exp2() } else { mean };
            prop_assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} != {want}");
            prop_assert_eq!(*got, forest.score_one(row));
        }
    }

    /// ROC-AUC is the share of (anomaly, normal) pairs ordered right, ties half.
    #[test]
    fn roc_auc_counts_ordered_pairs(cases in prop::collection::vec((0u8..6, any::<bool>()), 1..60)) {
        let scores: Vec<f32> = cases.iter().map(|c| f32::from(c.0)).collect();
        let labels: Vec<bool> = cases.iter().map(|c| c.1).collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, a) in cases.iter().enumerate().filter(|c| c.1 .1) {
            for b in cases.iter().filter(|c| !c.1) {
                pairs += 1.0;
                wins += if a.0 > b.0 { 1.0 } else if a.0 == b.0 { 0.5 } else { 0.0 };
            }
            let _ = i;
        }
        let got = roc_auc(&scores, &labels);
        if pairs == 0.0 {
            prop_assert!(got.is_nan());
        } else {
            prop_assert!((got - wins / pairs).abs() < 1e-12);
        }
    }

    /// Average precision: precision at each distinct threshold weighted by the recall it adds.
    #[test]
    fn average_precision_sums_precision_over_recall_steps(cases in prop::collection::vec((0u8..6, any::<bool>()), 1..60)) {
        let scores: Vec<f32> = cases.iter().map(|c| f32::from(c.0)).collect();
        let labels: Vec<bool> = cases.iter().map(|c| c.1).collect();
        let pos = labels.iter().filter(|l| **l).count() as f64;
        let mut want = 0.0;
        let mut last = 0.0;
        for t in (0u8..6).rev() {
            let flagged: Vec<_> = cases.iter().filter(|c| c.0 >= t).collect();
            if flagged.is_empty() { continue; }
            let tp = flagged.iter().filter(|c| c.1).count() as f64;
            let recall = tp / pos;
            want += (recall - last) * tp / flagged.len() as f64;
            last = recall;
        }
        let got = average_precision(&scores, &labels);
        if pos == 0.0 {
            prop_assert!(got.is_nan());
        } else {
            prop_assert!((got - want).abs() < 1e-12, "{got} != {want}");
        }
    }
}

/// Two clusters of ordinary records and a few records unlike them.
fn blobs(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::new(seed, 0);
    let mut m = Matrix::new(4);
    let mut odd = Vec::new();
    for i in 0..n {
        let anomaly = i % 50 == 0;
        let c = if i % 2 == 0 { 0.0 } else { 10.0 };
        let row: Vec<f32> = (0..4)
            .map(|f| {
                let noise = rng.unit() as f32;
                if anomaly && f == i % 4 {
                    c + 5.0 + noise * 3.0 // far from both clusters in one feature
                } else {
                    c + noise
                }
            })
            .collect();
        m.push(&row);
        odd.push(anomaly);
    }
    (m, odd)
}

fn scores(forest: &Forest, m: &Matrix) -> Vec<f32> {
    let mut s = vec![0.0; m.rows()];
    forest.score(m.values(), &mut s);
    s
}

#[test]
fn isolation_forest_ranks_the_odd_records_first_and_is_deterministic() {
    let (m, odd) = blobs(5_000, 1);
    let p = |threads| IsolationParams {
        seed: 7,
        threads,
        ..IsolationParams::default()
    };
    let a = iforest::train(&m, &p(1), &|| {});
    let b = iforest::train(&m, &p(3), &|| {});
    assert_eq!(a, b, "same seed, any threads: the same forest");
    let c = iforest::train(&m, &IsolationParams { seed: 8, ..p(1) }, &|| {});
    assert_ne!(a, c, "another seed, another forest");
    let s = scores(&a, &m);
    let auc = roc_auc(&s, &odd);
    assert!(auc > 0.99, "ROC-AUC {auc}");
    assert!(s.iter().all(|s| (0.0..=1.0).contains(s)));
    assert_eq!(a.trees(), 100);
    assert!(a.depth() <= 8, "256 records per tree: depth at most 8");
}

#[test]
fn random_forest_on_synthetic_records_ranks_the_odd_records_first_and_is_deterministic() {
    // Records whose features are each ordinary but together unlike the data: feature 1
    // follows feature 0 in the ordinary records and not in the odd ones.
    let mut rng = Rng::new(3, 0);
    let mut m = Matrix::new(3);
    let mut odd = Vec::new();
    for i in 0..6_000 {
        let x = rng.unit() as f32 * 10.0;
        let anomaly = i % 60 == 0;
        let y = if anomaly {
            10.0 - x
        } else {
            x + rng.unit() as f32 * 0.5
        };
        m.push(&[x, y, rng.unit() as f32]);
        odd.push(anomaly);
    }
    let p = |threads| ForestParams {
        trees: 40,
        fraction: 0.5,
        seed: 5,
        threads,
        ..ForestParams::default()
    };
    let a = rf::train(&m, &p(1), &|| {});
    assert_eq!(a, rf::train(&m, &p(2), &|| {}));
    let s = scores(&a, &m);
    let auc = roc_auc(&s, &odd);
    assert!(auc > 0.9, "ROC-AUC {auc}");
    assert!(a.depth() <= 15);
    // An isolation forest looks at one feature at a time and misses most of these.
    let i = iforest::train(&m, &IsolationParams::default(), &|| {});
    let iauc = roc_auc(&scores(&i, &m), &odd);
    assert!(auc > iauc, "rf {auc} vs iforest {iauc}");
}

fn model(forest: Forest) -> Model {
    Model {
        kind: ModelKind::IsolationForest,
        features: (0..4)
            .map(|i| Feature {
                name: format!("f{i}"),
                encoding: Encoding::Numeric,
            })
            .collect(),
        forest,
        threshold: 0.6,
        threshold_from: "test".into(),
        training: Training {
            input: "blobs".into(),
            records: 5000,
            skipped: 0,
            seconds: 0.1,
            finished: 0,
            weir: "test".into(),
            params: vec![("trees".into(), "100".into())],
        },
        evaluation: None,
    }
}

#[test]
fn a_model_file_round_trips_and_damage_is_refused() {
    let (m, _) = blobs(2_000, 2);
    let mdl = model(iforest::train(&m, &IsolationParams::default(), &|| {}));
    let dir = tempfile_dir();
    let path = dir.join("kdd.model");
    let v = mdl.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.model, mdl);
    assert_eq!(back.version, v);
    assert_eq!(v.len(), 12);
    let bytes = std::fs::read(&path).unwrap();
    // Every byte of the body and checksum matters.
    for at in [20, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        let e = Model::from_bytes(&b).unwrap_err();
        assert!(matches!(e, MlError::Corrupt(_)), "byte {at}: {e}");
    }
    assert!(matches!(
        Model::from_bytes(b"not a model at all, no"),
        Err(MlError::NotAModel)
    ));
    let mut newer = bytes.clone();
    newer[8] = 9;
    assert_eq!(
        Model::from_bytes(&newer).unwrap_err().to_string(),
        "model file format 9, this weir reads format 1"
    );
    assert!(matches!(
        Model::from_bytes(&bytes[..bytes.len() - 3]),
        Err(MlError::Corrupt(_))
    ));
    let missing = Model::load(&dir.join("nope.model"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.model"), "{missing}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn validation_refuses_a_forest_whose_walk_would_leave_it() {
    let good = Forest::new(
        2,
        &[Grown::Split {
            feature: 1,
            threshold: 0.5,
            left: Box::new(Grown::Leaf(0.0)),
            right: Box::new(Grown::Leaf(1.0)),
        }],
        Combine::Mean,
    );
    good.validate().unwrap();
    // A model whose features make fewer inputs than the forest reads.
    let mut m = model(good);
    m.features.truncate(1);
    let (bytes, _) = m.to_bytes().unwrap();
    let e = Model::from_bytes(&bytes).unwrap_err().to_string();
    assert_eq!(
        e,
        "damaged model file: the features make 1 inputs, the forest reads 2"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "weir-ml-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_featurizer_encodes_and_names_every_problem() {
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "bytes",
            Arc::new(Int64Array::from(vec![Some(10), None, Some(30), Some(40)])),
        ),
        (
            "ratio",
            Arc::new(StringArray::from(vec!["0.5", "1", "abc", " 2 "])),
        ),
        (
            "proto",
            Arc::new(StringArray::from(vec![
                Some("tcp"),
                Some("udp"),
                Some("icmp"),
                None,
            ])),
        ),
        (
            "flag",
            Arc::new(StringArray::from(vec!["SF", "REJ", "S0", "SF"])),
        ),
        (
            "tcp",
            Arc::new(BooleanArray::from(vec![true, false, true, true])),
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![1.0, 2.0, f64::NAN, 4.0])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let feat = |name: &str, encoding| Feature {
        name: name.into(),
        encoding,
    };
    let features = vec![
        feat("bytes", Encoding::Numeric),
        feat("ratio", Encoding::Numeric),
        feat("proto", Encoding::OneHot(vec!["tcp".into(), "udp".into()])),
        feat("flag", Encoding::Ordinal(vec!["SF".into(), "REJ".into()])),
        feat("tcp", Encoding::Numeric),
    ];
    let f = Featurizer::bind(&features, &batch.schema()).unwrap();
    assert_eq!(f.width(), 6);
    let mut out = Vec::new();
    let problems = f.featurize(&batch, &mut out);
    assert_eq!(&out[..6], &[10.0, 0.5, 1.0, 0.0, 0.0, 1.0]);
    assert_eq!(
        &out[12..18],
        &[30.0, 0.0, 0.0, 0.0, 2.0, 1.0],
        "icmp: neither one-hot; S0: other"
    );
    assert_eq!(&out[18..24], &[40.0, 2.0, 0.0, 0.0, 0.0, 1.0]);
    let p: Vec<_> = problems
        .iter()
        .map(|p| (p.row, p.field.as_str(), p.reason.as_str()))
        .collect();
    assert_eq!(
        p,
        [
            (1, "bytes", "missing"),
            (2, "ratio", "not a number: \"abc\""),
            (3, "proto", "missing")
        ]
    );

    let nan = Featurizer::bind(&[feat("x", Encoding::Numeric)], &batch.schema()).unwrap();
    let problems = nan.featurize(&batch, &mut Vec::new());
    assert_eq!(problems[0].reason, "not a number (NaN)");

    let e = Featurizer::bind(
        &[
            feat("nope", Encoding::Numeric),
            feat("bytes", Encoding::Numeric),
            feat("tcp", Encoding::OneHot(vec![])),
        ],
        &batch.schema(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "the model does not fit the records: `nope` is not a field of the records"
    );
    // Text is parsed, so it binds; a word is a problem of its record.
    let text = Featurizer::bind(&[feat("flag", Encoding::Numeric)], &batch.schema()).unwrap();
    assert_eq!(
        text.featurize(&batch, &mut Vec::new())[0].reason,
        "not a number: \"SF\""
    );
}

#[test]
fn categories_are_ranked_by_frequency_and_capped() {
    let v = ["b", "a", "b", "c", "a", "b", "d"];
    assert_eq!(features::categories(v, 2), ["b", "a"]);
    assert_eq!(features::categories(v, 10), ["b", "a", "c", "d"]);
}
