//! `weir score`: a model's scores for the records of files, through the same featurizer and
//! forest as the `anomaly` stage, and the model's quality when the records carry a label.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow_array::{BooleanArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use weir_ml::{Evaluation, Featurizer, Model};

use super::dataset::{self, InputArgs};
use super::train::{evaluation_json, inputs, print_evaluation, LabelArgs};
use crate::progress::thousands;

#[derive(clap::Args)]
pub(crate) struct ScoreArgs {
    /// The model file `weir train` wrote.
    #[arg(long, short, value_name = "FILE")]
    model: PathBuf,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    label: LabelArgs,
    /// Records at or above this score are flagged (default: the model's own threshold).
    #[arg(long, value_name = "SCORE")]
    threshold: Option<f32>,
    /// Write every scored record, with `anomaly_score`, `anomaly` and `model_version`, as
    /// JSON lines to this file.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn score(a: ScoreArgs) -> Result<ExitCode> {
    let loaded = Model::load(&a.model)?;
    let model = &loaded.model;
    let started = Instant::now();
    let records = dataset::read(&a.input, &|_| {})?;
    let read_secs = started.elapsed().as_secs_f64();
    let featurizer = Featurizer::bind(&model.features, &records.schema)
        .with_context(|| format!("model {}", a.model.display()))?;
    let labels = a.label.anomalous(&records.schema, &records.batches)?;
    let threshold = a.threshold.unwrap_or(model.threshold);
    let input = inputs(&featurizer, &records.batches);
    let t0 = Instant::now();
    let mut scores = vec![0.0; input.matrix.rows()];
    model.forest.score(input.matrix.values(), &mut scores);
    let score_secs = t0.elapsed().as_secs_f64();
    let flagged = scores.iter().filter(|s| **s >= threshold).count();
    let evaluation = labels.map(|l| {
        let l: Vec<bool> = input.kept.iter().map(|&i| l[i]).collect();
        Evaluation::new(&scores, &l, threshold)
    });
    if let Some(path) = &a.out {
        write_scored(
            path,
            &records.batches,
            &input.kept,
            &scores,
            threshold,
            &loaded.version,
        )?;
    }
    let rate = scores.len() as f64 / score_secs.max(1e-9);
    if a.json {
        println!(
            "{{\"model\":{:?},\"version\":\"{}\",\"records\":{},\"scored\":{},\"skipped\":{},\"flagged\":{flagged},\"threshold\":{threshold},\"read_seconds\":{read_secs:.3},\"score_seconds\":{score_secs:.4},\"evaluation\":{}}}",
            a.model.display().to_string(),
            loaded.version,
            records.rows(),
            scores.len(),
            input.skipped,
            evaluation.as_ref().map_or("null".into(), evaluation_json)
        );
    } else {
        println!(
            "model {} ({}, version {}, {} trees)",
            a.model.display(),
            model.kind.name(),
            loaded.version,
            model.forest.trees()
        );
        println!(
            "scored {} records in {score_secs:.3} s ({} records/s), read in {read_secs:.1} s",
            thousands(scores.len() as u64),
            thousands(rate as u64)
        );
        if input.skipped > 0 {
            println!(
                "left out {} records a feature could not be read from:",
                thousands(input.skipped)
            );
            for (why, n) in &input.reasons {
                println!("  {why} ({})", thousands(*n));
            }
        }
        println!(
            "flagged {} ({:.2} %) at threshold {threshold:.4}",
            thousands(flagged as u64),
            100.0 * flagged as f64 / scores.len().max(1) as f64
        );
        if let Some(e) = &evaluation {
            print_evaluation("against --label", e);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The scored records as JSON lines, each with its score, flag and the model's version.
fn write_scored(
    path: &std::path::Path,
    batches: &[RecordBatch],
    kept: &[usize],
    scores: &[f32],
    threshold: f32,
    version: &str,
) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = arrow_json::LineDelimitedWriter::new(std::io::BufWriter::new(f));
    let mut next = kept.iter().zip(scores).peekable();
    let mut base = 0;
    for b in batches {
        let end = base + b.num_rows();
        let mut rows = Vec::new();
        let mut s = Vec::new();
        while let Some((&i, &score)) = next.next_if(|(i, _)| **i < end) {
            rows.push((i - base) as u32);
            s.push(score);
        }
        base = end;
        if rows.is_empty() {
            continue;
        }
        let picked =
            arrow_select::take::take_record_batch(b, &arrow_array::UInt32Array::from(rows))?;
        let n = picked.num_rows();
        let mut fields: Vec<Arc<Field>> = picked.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            "anomaly_score",
            DataType::Float32,
            false,
        )));
        fields.push(Arc::new(Field::new("anomaly", DataType::Boolean, false)));
        fields.push(Arc::new(Field::new("model_version", DataType::Utf8, false)));
        let mut cols = picked.columns().to_vec();
        cols.push(Arc::new(Float32Array::from(s.clone())));
        cols.push(Arc::new(BooleanArray::from(
            s.iter().map(|x| *x >= threshold).collect::<Vec<_>>(),
        )));
        cols.push(Arc::new(StringArray::from(vec![version; n])));
        w.write(&RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)?;
    }
    w.finish()?;
    w.into_inner().flush()?;
    Ok(())
}
