//! `anomaly`: scores every record with a model `weir train` wrote (weir-ml's forests), appends
//! the score, the flag and the model's version, and sends the flagged records to its
//! `NAME.alerts` output as well. A record a feature cannot be read from (missing, not a
//! number) goes to `NAME.errors` with the field's name.
//!
//! The model file is watched: when it changes (`weir train` replaces it atomically), the new
//! model is loaded and used from the next batch on, so every record is scored exactly once,
//! by one model, whose version it carries. A new file that is not a model, is damaged, or
//! reads fields the records do not have is refused with a warning naming the reason, and the
//! running model goes on.
//!
//! ```toml
//! [stage.scored]
//! type = "anomaly"
//! input = "enriched"
//! model = "models/kdd.model"
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arrow_array::{ArrayRef, BooleanArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Error, Operator, Port, Result};
use weir_ml::{Featurizer, Loaded, Model};

const fn default_watch() -> Duration {
    Duration::from_ms(1000)
}

fn default_score_field() -> String {
    "anomaly_score".into()
}

fn default_flag_field() -> String {
    "anomaly".into()
}

fn default_version_field() -> String {
    "model_version".into()
}

/// `[stage.NAME] type = "anomaly"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The model file (`weir train --out`). It must exist when the pipeline starts.
    pub model: PathBuf,
    /// Records scoring at or above this are flagged (default: the threshold stored with the
    /// model, which `weir train` chose from `--threshold` or `--contamination`).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// How often the model file is checked for a new model (default `"1s"`; `"0s"`: never).
    #[serde(default = "default_watch")]
    pub watch: Duration,
    /// The field the score in [0, 1] goes to (default `anomaly_score`).
    #[serde(default = "default_score_field")]
    pub score_field: String,
    /// The field the flag goes to (default `anomaly`).
    #[serde(default = "default_flag_field")]
    pub flag_field: String,
    /// The field the scoring model's version goes to (default `model_version`).
    #[serde(default = "default_version_field")]
    pub version_field: String,
}

impl AnomalyConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors = Vec::new();
        if let Some(t) = self.threshold {
            if !(0.0..=1.0).contains(&t) {
                errors.push(Error::config(
                    format!("{path}.threshold"),
                    format!("expected a score in [0, 1], got {t}"),
                ));
            }
        }
        if self.watch.ms < 0 {
            errors.push(Error::config(
                format!("{path}.watch"),
                "expected a duration like \"1s\"",
            ));
        }
        let names = [&self.score_field, &self.flag_field, &self.version_field];
        if names[0] == names[1] || names[0] == names[2] || names[1] == names[2] {
            errors.push(Error::config(
                path.to_string(),
                "score_field, flag_field and version_field must differ",
            ));
        }
        errors
    }

    /// Every field: a model swapped in later may read fields the first one did not, and
    /// the parser must not have left them out.
    pub fn required_fields(&self) -> Option<Vec<String>> {
        None
    }
}

/// What identifies a file's content on disk without reading it.
#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// A model ready for this stage's records.
struct Scoring {
    loaded: Loaded,
    featurizer: Featurizer,
    threshold: f32,
}

impl Scoring {
    fn new(
        loaded: Loaded,
        input: &Schema,
        threshold: Option<f32>,
    ) -> Result<Self, weir_ml::MlError> {
        let featurizer = Featurizer::bind(&loaded.model.features, input)?;
        Ok(Scoring {
            threshold: threshold.unwrap_or(loaded.model.threshold),
            loaded,
            featurizer,
        })
    }
}

/// The anomaly operator.
pub struct Anomaly {
    cfg: AnomalyConfig,
    input: SchemaRef,
    schema: SchemaRef,
    scoring: Scoring,
    /// The model file as it was when last read (or refused).
    seen: Option<Stamp>,
    next_check: Instant,
    rows: Vec<f32>,
    scores: Vec<f32>,
    dead: DeadLetters,
    swaps: u64,
}

impl Anomaly {
    /// Loads the model and binds its features to the input; errors carry `path.model`.
    pub fn new(cfg: &AnomalyConfig, input: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let mut errors = cfg.validate(path);
        let at = format!("{path}.model");
        let seen = stamp(&cfg.model);
        let scoring = Model::load(&cfg.model)
            .and_then(|l| Scoring::new(l, &input, cfg.threshold))
            .map_err(|e| match e {
                weir_ml::MlError::Io(_, io) if io.kind() == std::io::ErrorKind::NotFound => {
                    Error::config(
                        &at,
                        format!(
                            "no model at {}: train one first with `weir train --input RECORDS -o {}` (see `weir train --help`)",
                            cfg.model.display(),
                            cfg.model.display()
                        ),
                    )
                }
                e => Error::config(&at, e.to_string()),
            });
        for name in [&cfg.score_field, &cfg.flag_field, &cfg.version_field] {
            if input.index_of(name).is_ok() {
                errors.push(Error::config(
                    path.to_string(),
                    format!("the input already has a field {name:?}; name the stage's fields otherwise (score_field, flag_field, version_field)"),
                ));
            }
        }
        let scoring = match scoring {
            Ok(s) if errors.is_empty() => s,
            Ok(_) => return Err(errors),
            Err(e) => {
                errors.push(e);
                return Err(errors);
            }
        };
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            &cfg.score_field,
            DataType::Float32,
            false,
        )));
        fields.push(Arc::new(Field::new(
            &cfg.flag_field,
            DataType::Boolean,
            false,
        )));
        fields.push(Arc::new(Field::new(
            &cfg.version_field,
            DataType::Utf8,
            false,
        )));
        Ok(Anomaly {
            cfg: cfg.clone(),
            schema: Arc::new(Schema::new_with_metadata(fields, input.metadata().clone())),
            input,
            scoring,
            seen,
            next_check: Instant::now() + cfg.watch.to_std(),
            rows: Vec::new(),
            scores: Vec::new(),
            dead: DeadLetters::of_stage(path),
            swaps: 0,
        })
    }

    /// The version of the model scoring now.
    pub fn version(&self) -> &str {
        &self.scoring.loaded.version
    }

    /// Loads the model file again if it changed since it was last read.
    fn check_model(&mut self) {
        if self.cfg.watch.ms == 0 || Instant::now() < self.next_check {
            return;
        }
        self.next_check = Instant::now() + self.cfg.watch.to_std();
        let now = stamp(&self.cfg.model);
        if now.is_none() || now == self.seen {
            return; // gone (being replaced, or removed: keep scoring) or unchanged
        }
        self.seen = now;
        let path = self.cfg.model.display();
        match Model::load(&self.cfg.model)
            .and_then(|l| Scoring::new(l, &self.input, self.cfg.threshold))
        {
            Ok(s) if s.loaded.version == self.scoring.loaded.version => {}
            Ok(s) => {
                tracing::info!(model = %path, from = %self.scoring.loaded.version, to = %s.loaded.version, "anomaly model swapped");
                self.scoring = s;
                self.swaps += 1;
            }
            Err(error) => {
                tracing::warn!(model = %path, %error, running = %self.scoring.loaded.version, "new anomaly model refused; the running one goes on");
            }
        }
    }
}

impl Operator for Anomaly {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn extra_ports(&self) -> Vec<(Port, SchemaRef)> {
        vec![(Port::Alerts, self.schema.clone())]
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        self.check_model();
        let s = &self.scoring;
        let n = batch.num_rows();
        self.rows.clear();
        let problems = s.featurizer.featurize(batch, &mut self.rows);
        self.scores.clear();
        self.scores.resize(n, 0.0);
        s.loaded.model.forest.score(&self.rows, &mut self.scores);
        let mut keep = vec![true; n];
        for p in &problems {
            if std::mem::replace(&mut keep[p.row], false) {
                let why = format!("feature {}: {}", p.field, p.reason);
                self.dead.push_row(&why, batch, p.row);
            }
        }
        let flags: Vec<bool> = self.scores.iter().map(|x| *x >= s.threshold).collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(Float32Array::from(self.scores.clone())));
        columns.push(Arc::new(BooleanArray::from(flags.clone())));
        columns.push(Arc::new(StringArray::from(vec![
            s.loaded.version.as_str();
            n
        ])));
        let all = RecordBatch::try_new(self.schema.clone(), columns)?;
        let alerts: Vec<bool> = flags.iter().zip(&keep).map(|(f, k)| *f && *k).collect();
        if alerts.iter().any(|a| *a) {
            let flagged = BooleanArray::from(alerts);
            out.side(
                Port::Alerts,
                arrow_select::filter::filter_record_batch(&all, &flagged)?,
            );
        }
        let scored = if problems.is_empty() {
            all
        } else {
            arrow_select::filter::filter_record_batch(&all, &BooleanArray::from(keep))?
        };
        out.data(scored);
        self.dead.emit(out);
        Ok(())
    }

    fn on_tick(&mut self, _now: weir_core::time::Millis, _out: &mut Emitter) -> Result<()> {
        self.check_model();
        Ok(())
    }

    /// Not stateless, though it keeps no state: copies beside parallel parsers would each
    /// swap models at their own moment and interleave versions in the output. One instance
    /// swaps at one point of the stream.
    fn stateless(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
