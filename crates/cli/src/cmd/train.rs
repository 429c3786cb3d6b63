//! `weir train`: an anomaly model from records (an archive a pipeline wrote, or any JSON
//! lines, CSV or Parquet), and its quality when the records carry a label.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use indicatif::{ProgressBar, ProgressStyle};
use weir_ml::iforest::IsolationParams;
use weir_ml::rf::ForestParams;
use weir_ml::{Encoding, Evaluation, Feature, Featurizer, Matrix, Model, ModelKind, Training};

use super::dataset::{self, InputArgs, Records};
use crate::progress::thousands;

/// Which model `weir train` makes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub(crate) enum KindArg {
    /// Isolation forest: random splits isolate anomalies in few steps; fast, one feature at
    /// a time.
    Iforest,
    /// Random forest told to separate the records from synthetic ones (each feature drawn
    /// independently): finds unusual combinations of ordinary values.
    Rf,
}

/// How categorical fields become numbers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub(crate) enum EncodingArg {
    /// A 0/1 input per value.
    Onehot,
    /// One input: the value's rank by frequency.
    Ordinal,
}

/// Labels, for measuring a model's quality.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct LabelArgs {
    /// A column saying what each record is (never a feature): with it, the model's quality
    /// is measured (ROC-AUC, PR-AUC, precision and recall at the threshold).
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// The label value of ordinary records; every other value is an anomaly.
    #[arg(
        long,
        value_name = "VALUE",
        requires = "label",
        default_value = "normal"
    )]
    pub normal_value: String,
}

impl LabelArgs {
    /// Whether each record is labelled anomalous; an error when the column is missing.
    pub fn anomalous(&self, schema: &Schema, batches: &[RecordBatch]) -> Result<Option<Vec<bool>>> {
        let Some(label) = &self.label else {
            return Ok(None);
        };
        let col = schema
            .index_of(label)
            .with_context(|| format!("--label {label}: the records have no such column"))?;
        let mut out = Vec::new();
        for b in batches {
            let v = arrow_cast::cast(b.column(col), &DataType::Utf8)?;
            let v = v.as_string::<i32>();
            out.extend((0..v.len()).map(|i| v.is_null(i) || v.value(i) != self.normal_value));
        }
        Ok(Some(out))
    }
}

#[derive(clap::Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The model file to write (replaced atomically: a running `anomaly` stage picks it up).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// The kind of model.
    #[arg(long, value_enum, default_value_t = KindArg::Iforest)]
    model: KindArg,
    /// Numeric features, comma-separated (default: every numeric column but the label and
    /// --exclude).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    features: Vec<String>,
    /// Columns never used as features, e.g. ids a replay added: --exclude index,sequence_id.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    exclude: Vec<String>,
    /// Categorical features (text), comma-separated, encoded as --encoding says.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    categorical: Vec<String>,
    /// How categorical features become numbers.
    #[arg(long, value_enum, default_value_t = EncodingArg::Onehot)]
    encoding: EncodingArg,
    /// Values kept per categorical feature, the most frequent; the rest are "other".
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_categories: usize,
    #[command(flatten)]
    label: LabelArgs,
    /// With --label: records to measure on instead of holding out a share of the input.
    #[arg(long, value_name = "PATH", requires = "label")]
    test: Option<PathBuf>,
    /// With --label and no --test: the share of records held out for measuring.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    holdout: f64,
    /// Number of trees.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// iforest: records per tree.
    #[arg(long, default_value_t = 256, value_name = "N")]
    sample: usize,
    /// Largest tree depth (default: iforest log2(--sample), rf 15).
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
    /// rf: value ranges per feature (2 to 256).
    #[arg(long, default_value_t = 64, value_name = "N")]
    bins: usize,
    /// rf: features tried at each split (default: the square root of their number).
    #[arg(long, value_name = "N")]
    max_features: Option<usize>,
    /// rf: share of the records each tree draws, beside as many synthetic ones.
    #[arg(long, default_value_t = 0.1, value_name = "SHARE")]
    fraction: f64,
    /// rf: smallest number of records in a leaf.
    #[arg(long, default_value_t = 5, value_name = "N")]
    min_leaf: usize,
    /// Random seed: the same seed and input give the same model, whatever --threads.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads growing trees (default: the cores this process may use).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Records scoring at or above this are flagged (default: from --contamination).
    #[arg(long, value_name = "SCORE")]
    threshold: Option<f32>,
    /// Without --threshold: the share of training records expected to be anomalies; the
    /// threshold is the score that flags that share of them.
    #[arg(long, default_value_t = 0.01, value_name = "SHARE")]
    contamination: f64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn spinner(msg: &str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new_spinner().with_message(msg.to_string());
        b.enable_steady_tick(std::time::Duration::from_millis(100));
        b
    })
}

/// The features `weir train` uses: listed ones, or every numeric column.
fn choose_features(a: &TrainArgs, records: &Records) -> Result<Vec<Feature>> {
    let schema = &records.schema;
    let skip = |n: &str| a.exclude.iter().any(|e| e == n) || a.label.label.as_deref() == Some(n);
    let mut chosen: Vec<String> = if a.features.is_empty() {
        schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_numeric() || *f.data_type() == DataType::Boolean)
            .map(|f| f.name().clone())
            .filter(|n| !skip(n) && !a.categorical.contains(n))
            .collect()
    } else {
        a.features.clone()
    };
    if let Some(n) = chosen.iter().find(|n| skip(n)) {
        bail!("--features lists {n}, which is the label or excluded");
    }
    chosen.extend(a.categorical.iter().cloned());
    let mut features = Vec::new();
    for name in chosen {
        let col = schema.index_of(&name).with_context(|| {
            format!(
                "no column {name:?} in the records (they have: {})",
                names(schema)
            )
        })?;
        let encoding = if a.categorical.contains(&name) {
            let mut text = Vec::new();
            for b in &records.batches {
                let v = arrow_cast::cast(b.column(col), &DataType::Utf8)?;
                let v = v.as_string::<i32>();
                text.extend(
                    (0..v.len())
                        .filter(|i| v.is_valid(*i))
                        .map(|i| v.value(i).to_string()),
                );
            }
            let values =
                weir_ml::features::categories(text.iter().map(String::as_str), a.max_categories);
            match a.encoding {
                EncodingArg::Onehot => Encoding::OneHot(values),
                EncodingArg::Ordinal => Encoding::Ordinal(values),
            }
        } else {
            Encoding::Numeric
        };
        features.push(Feature { name, encoding });
    }
    if features.is_empty() {
        bail!("no numeric columns to train on (the records have: {}); name some with --features or --categorical", names(schema));
    }
    Ok(features)
}

fn names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} ({})", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records as model inputs; records a feature cannot be read from are left out and counted.
pub(crate) struct Inputs {
    pub matrix: Matrix,
    /// For each input row, its record's index among all records.
    pub kept: Vec<usize>,
    pub skipped: u64,
    /// The first few reasons, as `field: reason` with counts.
    pub reasons: Vec<(String, u64)>,
}

fn shorten(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
    }
    s
}

pub(crate) fn inputs(featurizer: &Featurizer, batches: &[RecordBatch]) -> Inputs {
    let w = featurizer.width();
    let mut matrix = Matrix::new(w);
    let mut kept = Vec::new();
    let mut skipped = 0;
    let mut reasons: Vec<(String, u64)> = Vec::new();
    let mut rows = Vec::new();
    let mut base = 0;
    for b in batches {
        rows.clear();
        let problems = featurizer.featurize(b, &mut rows);
        let mut bad = problems.iter().peekable();
        for r in 0..b.num_rows() {
            let mut first = true;
            let mut any = false;
            while let Some(p) = bad.next_if(|p| p.row == r) {
                any = true;
                if first {
                    let why = format!("{}: {}", p.field, p.reason);
                    let why = shorten(why, 60);
                    if let Some(i) = reasons.iter().position(|(w, _)| *w == why) {
                        reasons[i].1 += 1;
                    } else if reasons.len() < 5 {
                        reasons.push((why, 1));
                    }
                    first = false;
                }
            }
            if any {
                skipped += 1;
            } else {
                matrix.push(&rows[r * w..(r + 1) * w]);
                kept.push(base + r);
            }
        }
        base += b.num_rows();
    }
    Inputs {
        matrix,
        kept,
        skipped,
        reasons,
    }
}

pub(crate) fn train(a: TrainArgs) -> Result<ExitCode> {
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if !(0.0..1.0).contains(&a.contamination) {
        bail!("--contamination must be in [0, 1), got {}", a.contamination);
    }
    if !(0.0 < a.fraction && a.fraction <= 1.0) {
        bail!("--fraction must be in (0, 1], got {}", a.fraction);
    }
    if a.trees == 0 {
        bail!("--trees must be at least 1");
    }
    let started = Instant::now();
    let bar = spinner("reading");
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.set_message(format!("reading: {} records", thousands(n)));
        }
    };
    let records = dataset::read(&a.input, &tick)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let read_secs = started.elapsed().as_secs_f64();
    if records.rows() == 0 {
        bail!(
            "no records to train on ({} read, none left after --where)",
            records.read
        );
    }
    let features = choose_features(&a, &records)?;
    let featurizer = Featurizer::bind(&features, &records.schema)?;
    let labels = a.label.anomalous(&records.schema, &records.batches)?;
    let all = inputs(&featurizer, &records.batches);
    if all.matrix.rows() == 0 {
        bail!("every record lacks a feature: {:?}", all.reasons);
    }

    // With labels: train on a share and measure on the rest (or on --test).
    let (train_rows, test) = match (&labels, &a.test) {
        (None, _) => (all.matrix.clone(), None),
        (Some(_), Some(path)) => {
            let args = InputArgs {
                input: vec![path.clone()],
                ..a.input.clone()
            };
            let t = dataset::read(&args, &|_| {})?;
            let tl = a
                .label
                .anomalous(&t.schema, &t.batches)?
                .expect("label given");
            let f = Featurizer::bind(&features, &t.schema)
                .with_context(|| format!("--test {}", path.display()))?;
            let ti = inputs(&f, &t.batches);
            let l: Vec<bool> = ti.kept.iter().map(|&i| tl[i]).collect();
            (all.matrix.clone(), Some((ti.matrix, l)))
        }
        (Some(l), None) => {
            if !(0.0 < a.holdout && a.holdout < 1.0) {
                bail!("--holdout must be in (0, 1), got {}", a.holdout);
            }
            let mut rng = weir_ml::Rng::new(a.seed, u64::MAX - 1);
            let (mut tr, mut te) = (Vec::new(), Vec::new());
            for i in 0..all.matrix.rows() {
                if rng.unit() < a.holdout {
                    te.push(i)
                } else {
                    tr.push(i)
                }
            }
            let tl: Vec<bool> = te.iter().map(|&i| l[all.kept[i]]).collect();
            (all.matrix.select(&tr), Some((all.matrix.select(&te), tl)))
        }
    };
    if train_rows.rows() == 0 {
        bail!(
            "no records left to train on after holding out {}",
            a.holdout
        );
    }

    let bar = std::io::stderr().is_terminal().then(|| {
        ProgressBar::new(a.trees as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} training {pos}/{len} trees [{elapsed_precise}] {wide_bar}",
            )
            .expect("valid template"),
        )
    });
    let progress = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    let t0 = Instant::now();
    let (kind, forest, params) = match a.model {
        KindArg::Iforest => {
            let p = IsolationParams {
                trees: a.trees,
                sample: a.sample,
                max_depth: a.depth,
                seed: a.seed,
                threads,
            };
            let f = weir_ml::iforest::train(&train_rows, &p, &progress);
            let params = vec![
                ("trees", p.trees.to_string()),
                ("sample", p.sample.min(train_rows.rows()).to_string()),
                ("max_depth", f.depth().to_string()),
                ("seed", p.seed.to_string()),
            ];
            (ModelKind::IsolationForest, f, params)
        }
        KindArg::Rf => {
            let p = ForestParams {
                trees: a.trees,
                max_depth: a.depth.unwrap_or(15),
                bins: a.bins,
                max_features: a.max_features,
                fraction: a.fraction,
                min_leaf: a.min_leaf,
                seed: a.seed,
                threads,
            };
            let f = weir_ml::rf::train(&train_rows, &p, &progress);
            let params = vec![
                ("trees", p.trees.to_string()),
                ("max_depth", p.max_depth.to_string()),
                ("bins", p.bins.to_string()),
                (
                    "max_features",
                    p.max_features.map_or("sqrt".into(), |m| m.to_string()),
                ),
                ("fraction", p.fraction.to_string()),
                ("min_leaf", p.min_leaf.to_string()),
                ("seed", p.seed.to_string()),
            ];
            (ModelKind::RandomForest, f, params)
        }
    };
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }

    let mut train_scores = vec![0.0; train_rows.rows()];
    forest.score(train_rows.values(), &mut train_scores);
    let (threshold, threshold_from) = match a.threshold {
        Some(t) => (t, format!("--threshold {t}")),
        None => {
            let mut s = train_scores.clone();
            s.sort_by(f32::total_cmp);
            let at = ((1.0 - a.contamination) * s.len() as f64).floor() as usize;
            let t = s[at.min(s.len() - 1)];
            (
                t,
                format!(
                    "contamination {}: flags that share of the training records",
                    a.contamination
                ),
            )
        }
    };
    let evaluation = test.map(|(m, l)| {
        let mut s = vec![0.0; m.rows()];
        forest.score(m.values(), &mut s);
        Evaluation::new(&s, &l, threshold)
    });
    let finished = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let model = Model {
        kind,
        features,
        forest,
        threshold,
        threshold_from,
        training: Training {
            input: a
                .input
                .input
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            records: train_rows.rows() as u64,
            skipped: all.skipped,
            seconds,
            finished,
            weir: env!("CARGO_PKG_VERSION").into(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
        evaluation,
    };
    let version = model
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let size = std::fs::metadata(&a.out).map_or(0, |m| m.len());
    if a.json {
        println!(
            "{}",
            summary_json(&model, &version, &a.out, read_secs, &all)
        );
    } else {
        print_summary(
            &model, &version, &a.out, size, read_secs, &records, &all, threads,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn evaluation_json(e: &Evaluation) -> String {
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.6}")
        } else {
            "null".into()
        }
    };
    format!(
        "{{\"records\":{},\"anomalies\":{},\"roc_auc\":{},\"pr_auc\":{},\"threshold\":{},\"precision\":{},\"recall\":{}}}",
        e.records, e.anomalies, num(e.roc_auc), num(e.pr_auc), e.threshold, num(e.precision), num(e.recall)
    )
}

fn summary_json(
    m: &Model,
    version: &str,
    out: &std::path::Path,
    read_secs: f64,
    all: &Inputs,
) -> String {
    format!(
        "{{\"model\":{:?},\"kind\":\"{}\",\"version\":\"{version}\",\"records\":{},\"skipped\":{},\"features\":{},\"inputs\":{},\"trees\":{},\"nodes\":{},\"read_seconds\":{read_secs:.3},\"train_seconds\":{:.3},\"threshold\":{},\"evaluation\":{}}}",
        out.display().to_string(),
        m.kind.name(),
        m.training.records,
        all.skipped,
        m.features.len(),
        m.forest.width(),
        m.forest.trees(),
        m.forest.nodes(),
        m.training.seconds,
        m.threshold,
        m.evaluation.as_ref().map_or("null".into(), evaluation_json),
    )
}

pub(crate) fn print_evaluation(what: &str, e: &Evaluation) {
    println!(
        "{what}: {} records, {} anomalies ({:.1} %)",
        thousands(e.records),
        thousands(e.anomalies),
        100.0 * e.anomalies as f64 / e.records.max(1) as f64
    );
    println!(
        "  ROC-AUC {:.4}   PR-AUC {:.4}   (chance: 0.5 and {:.4})",
        e.roc_auc,
        e.pr_auc,
        e.anomalies as f64 / e.records.max(1) as f64
    );
    println!(
        "  at threshold {:.4}: precision {:.4}, recall {:.4}",
        e.threshold, e.precision, e.recall
    );
}

#[allow(clippy::too_many_arguments)]
fn print_summary(
    m: &Model,
    version: &str,
    out: &std::path::Path,
    size: u64,
    read_secs: f64,
    records: &Records,
    all: &Inputs,
    threads: usize,
) {
    println!(
        "read {} records from {} file{} in {read_secs:.1} s{}",
        thousands(records.read),
        records.files,
        if records.files == 1 { "" } else { "s" },
        if records.read as usize != records.rows() {
            format!(", {} kept by --where", thousands(records.rows() as u64))
        } else {
            String::new()
        }
    );
    if all.skipped > 0 {
        println!(
            "left out {} records a feature could not be read from:",
            thousands(all.skipped)
        );
        for (why, n) in &all.reasons {
            println!("  {why} ({})", thousands(*n));
        }
    }
    let names: Vec<String> = m.features.iter().map(|f| f.describe()).collect();
    println!(
        "features ({}, {} inputs): {}",
        m.features.len(),
        m.forest.width(),
        names.join(", ")
    );
    println!(
        "trained {} on {} records in {:.2} s on {threads} thread{}: {} trees, {} nodes, depth ≤ {}",
        m.kind.name(),
        thousands(m.training.records),
        m.training.seconds,
        if threads == 1 { "" } else { "s" },
        m.forest.trees(),
        thousands(m.forest.nodes() as u64),
        m.forest.depth()
    );
    println!("threshold {:.4} ({})", m.threshold, m.threshold_from);
    if let Some(e) = &m.evaluation {
        print_evaluation("measured on held-out records", e);
    }
    println!(
        "wrote {} (version {version}, {} KiB)",
        out.display(),
        size.div_ceil(1024)
    );
}
