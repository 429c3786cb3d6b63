use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Float64Array, Int64Array, StringArray};
use weir_core::Message;
use weir_ml::iforest::{self, IsolationParams};
use weir_ml::{Encoding, Feature, Matrix, ModelKind, Training};

use super::*;

/// A model over two features, trained on a 20 × 20 grid in [0, 1.9]² (seed picks the
/// forest), flagging above the midpoint of the scores of an inner point and a far one.
fn model(features: &[&str], seed: u64) -> Model {
    assert_eq!(features.len(), 2);
    let rows: Vec<f32> = (0..400)
        .flat_map(|i| [(i % 20) as f32 * 0.1, (i / 20) as f32 * 0.1])
        .collect();
    let forest = iforest::train(
        &Matrix::from_rows(2, rows),
        &IsolationParams {
            seed,
            ..IsolationParams::default()
        },
        &|| {},
    );
    Model {
        kind: ModelKind::IsolationForest,
        features: features
            .iter()
            .map(|n| Feature {
                name: n.to_string(),
                encoding: Encoding::Numeric,
            })
            .collect(),
        threshold: {
            let (inner, far) = (
                forest.score_one(&[0.9, 0.9]),
                forest.score_one(&[90.0, 80.0]),
            );
            assert!(far > inner + 0.05, "{inner} {far}");
            (inner + far) / 2.0
        },
        forest,
        threshold_from: "test".into(),
        training: Training {
            input: "grid".into(),
            records: 400,
            skipped: 0,
            seconds: 0.0,
            finished: 0,
            weir: "test".into(),
            params: Vec::new(),
        },
        evaluation: None,
    }
}

fn records() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        // Record 2 is far from everything trained on; record 3 lacks `x`.
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(0.9),
                Some(90.0),
                None,
                Some(1.0),
            ])) as _,
        ),
        (
            "y",
            Arc::new(StringArray::from(vec!["0.9", "80", "0.2", "zero"])) as _,
        ),
    ])
    .unwrap()
}

fn cfg(dir: &Path) -> AnomalyConfig {
    toml::from_str(&format!(
        "model = {:?}\nwatch = \"0s\"",
        dir.join("m.model").display().to_string()
    ))
    .unwrap()
}

fn run(
    op: &mut Anomaly,
    b: &RecordBatch,
) -> (Vec<RecordBatch>, Vec<RecordBatch>, Vec<RecordBatch>) {
    let mut out = Emitter::default();
    op.on_batch(b, &mut out).unwrap();
    let (mut main, mut alerts, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    for (port, m) in out.drain() {
        if let Message::Data(b) = m {
            match port {
                Port::Main => main.push(b),
                Port::Alerts => alerts.push(b),
                _ => dead.push(b),
            }
        }
    }
    (main, alerts, dead)
}

#[test]
fn every_record_is_scored_flagged_ones_are_alerts_and_unreadable_ones_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(&["x", "y"], 1);
    let version = m.save(&dir.path().join("m.model")).unwrap();
    let mut op = Anomaly::new(&cfg(dir.path()), records().schema(), "stage.scored").unwrap();
    let names: Vec<_> = op
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["id", "x", "y", "anomaly_score", "anomaly", "model_version"]
    );
    let (main, alerts, dead) = run(&mut op, &records());
    let main = &main[0];
    assert_eq!(
        main.column(0)
            .as_primitive::<arrow_array::types::Int64Type>()
            .values(),
        &[1, 2]
    );
    let scores = main.column(3).as_primitive::<Float32Type>().values();
    assert_eq!(
        scores[0],
        m.forest.score_one(&[0.9, 0.9]),
        "the model's own score"
    );
    assert_eq!(scores[1], m.forest.score_one(&[90.0, 80.0]));
    assert_eq!(
        main.column(4).as_boolean().iter().collect::<Vec<_>>(),
        [Some(false), Some(true)]
    );
    assert!(main
        .column(5)
        .as_string::<i32>()
        .iter()
        .all(|v| v == Some(version.as_str())));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].num_rows(), 1);
    assert_eq!(
        alerts[0]
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>()
            .value(0),
        2
    );
    let reasons = dead[0].column_by_name("reason").unwrap().as_string::<i32>();
    let reasons: Vec<_> = reasons.iter().flatten().collect();
    assert_eq!(
        reasons,
        ["feature x: missing", "feature y: not a number: \"zero\""]
    );
}

#[test]
fn a_new_model_is_used_from_the_next_batch_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.model");
    let v1 = model(&["x", "y"], 1).save(&path).unwrap();
    let mut c = cfg(dir.path());
    c.watch = Duration::from_ms(1);
    let mut op = Anomaly::new(&c, records().schema(), "stage.scored").unwrap();
    let version_of = |op: &mut Anomaly| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (main, _, _) = run(op, &records());
        let v: Vec<_> = main[0]
            .column(5)
            .as_string::<i32>()
            .iter()
            .flatten()
            .map(String::from)
            .collect();
        assert!(v.iter().all(|x| *x == v[0]), "one model per batch: {v:?}");
        v[0].clone()
    };
    assert_eq!(version_of(&mut op), v1);
    let v2 = model(&["x", "y"], 2).save(&path).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(version_of(&mut op), v2, "swapped between batches");
    // A model reading a field the records lack is refused; so is a damaged file.
    model(&["x", "z"], 3).save(&path).unwrap();
    assert_eq!(version_of(&mut op), v2);
    std::fs::write(&path, b"WEIRMODL garbage").unwrap();
    assert_eq!(version_of(&mut op), v2);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        version_of(&mut op),
        v2,
        "a removed file keeps the running model"
    );
    let v4 = model(&["y", "x"], 4).save(&path).unwrap();
    assert_eq!(
        version_of(&mut op),
        v4,
        "a good model after a bad one is taken"
    );
}

#[test]
fn a_model_that_does_not_fit_the_stream_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Anomaly::new(&cfg(dir.path()), records().schema(), "stage.scored")
        .err()
        .unwrap();
    assert!(
        e[0].to_string().starts_with("stage.scored.model: "),
        "{}",
        e[0]
    );
    assert!(
        e[0].to_string()
            .contains("m.model: train one first with `weir train"),
        "{}",
        e[0]
    );
    model(&["x", "nope"], 1)
        .save(&dir.path().join("m.model"))
        .unwrap();
    let e = Anomaly::new(&cfg(dir.path()), records().schema(), "stage.scored")
        .err()
        .unwrap();
    assert_eq!(
        e[0].to_string(),
        "stage.scored.model: the model does not fit the records: `nope` is not a field of the records"
    );
    let mut c = cfg(dir.path());
    c.threshold = Some(1.5);
    c.score_field = "x".into();
    model(&["x", "y"], 1)
        .save(&dir.path().join("m.model"))
        .unwrap();
    let e: Vec<String> = Anomaly::new(&c, records().schema(), "stage.scored")
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("threshold: expected a score in [0, 1], got 1.5"),
        "{e:?}"
    );
    assert!(e[1].contains("already has a field \"x\""), "{e:?}");
}
