//! `condition`: alerts on window results, with hysteresis: a key fires when its condition
//! becomes true, and re-arms only when it becomes false again.
//!
//! ```text
//! window      1     2     3     4     5     6
//! 5xx > 100   no    YES   yes   no    YES   (absent)   → alerts at 2 and 5, not at 3
//! ```
//! Input rows are window results (they have `window_end`); rows of one window arrive together,
//! as the `aggregate` stage emits them. A key absent from a window that produced rows counts
//! as false there (nothing happened), so it re-arms. The output is the input row that fired,
//! with an `alert_id` (key and window end) and `fired_at`.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMillisecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use weir_core::fields::WINDOW_END;
use weir_core::keys::Encode;
use weir_core::time::{now_ms, Millis};
use weir_core::value::{Col, Scalar};
use weir_core::{Emitter, Error, Operator, Result};
use weir_expr::{Bound, Expr};

use crate::alert::{ALERT_ID, FIRED_AT};

/// `[stage.NAME] type = "condition"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// The condition over a window result row: `status >= 500 AND count > 100`, or a ratio
    /// such as `errors * 1.0 / count > 0.05`.
    pub when: String,
    /// Fields that identify a key among the rows of a window (e.g. `["status"]`); none: the
    /// whole stream is one key.
    #[serde(default)]
    pub key: Vec<String>,
}

impl ConditionConfig {
    /// Input fields the stage reads.
    pub fn required_fields(&self) -> Vec<String> {
        let mut f = Expr::parse(&self.when)
            .map(|e| e.columns())
            .unwrap_or_default();
        f.extend(self.key.iter().cloned());
        f.push(WINDOW_END.to_string());
        f.sort();
        f.dedup();
        f
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        match Expr::parse(&self.when) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Error::config(format!("{path}.when"), e.to_string())],
        }
    }
}

const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Keys whose condition is true (disarmed), with the last window end they were seen in.
    disarmed: HashMap<Vec<u8>, Millis>,
}

/// The condition operator (see the module docs).
pub struct Condition {
    out_schema: SchemaRef,
    when: Bound,
    key_cols: Vec<usize>,
    end_col: usize,
    state: State,
    key_buf: Vec<u8>,
    dead: weir_core::deadletter::DeadLetters,
}

impl Condition {
    /// Binds the condition to the input schema; errors carry key paths below `path`.
    pub fn new(cfg: &ConditionConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let mut errors = Vec::new();
        let when = match Expr::parse(&cfg.when).and_then(|e| e.bind(&schema)) {
            Ok(b) if matches!(b.data_type(), DataType::Boolean) => Some(b),
            Ok(b) => {
                errors.push(Error::config(
                    format!("{path}.when"),
                    format!(
                        "expected a condition, `{}` is a {}",
                        cfg.when,
                        b.data_type()
                    ),
                ));
                None
            }
            Err(e) => {
                errors.push(Error::config(format!("{path}.when"), e.to_string()));
                None
            }
        };
        let mut key_cols = Vec::new();
        for (i, k) in cfg.key.iter().enumerate() {
            match schema.index_of(k) {
                Ok(c) => key_cols.push(c),
                Err(_) => errors.push(Error::config(
                    format!("{path}.key[{i}]"),
                    format!("no field {k:?} in the input"),
                )),
            }
        }
        let end_col = schema.index_of(WINDOW_END).ok().filter(|&c| {
            matches!(
                schema.field(c).data_type(),
                DataType::Timestamp(TimeUnit::Millisecond, _)
            )
        });
        if end_col.is_none() {
            errors.push(Error::config(
                format!("{path}.input"),
                "a condition reads window results (with window_end); put an aggregate before it",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let mut fields = vec![Field::new(ALERT_ID, DataType::Utf8, false)];
        fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
        fields.push(Field::new(FIRED_AT, ts, false));
        Ok(Condition {
            out_schema: Arc::new(Schema::new(fields)),
            when: when.expect("checked above"),
            key_cols,
            end_col: end_col.expect("checked above"),
            state: State::default(),
            key_buf: Vec::new(),
            dead: weir_core::deadletter::DeadLetters::of_stage(path),
        })
    }

    fn key(&mut self, keys: &[Col<'_>], row: usize) -> Vec<u8> {
        self.key_buf.clear();
        for k in keys {
            k.encode(row, &mut self.key_buf);
        }
        self.key_buf.clone()
    }
}

impl Operator for Condition {
    fn output_schema(&self) -> SchemaRef {
        self.out_schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let (mask, errors) = self
            .when
            .eval_mask_rows(batch)
            .map_err(|e| Error::Internal(format!("evaluating `{}`: {e}", self.when.text())))?;
        // A row whose condition cannot be computed neither fires nor re-arms its key.
        let mut unknown = vec![false; batch.num_rows()];
        for (row, why) in errors {
            self.dead.push_row(&why, batch, row);
            unknown[row] = true;
        }
        self.dead.emit(out);
        let ends = batch
            .column(self.end_col)
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        let key_arrays: Vec<ArrayRef> = self
            .key_cols
            .iter()
            .map(|&c| batch.column(c).clone())
            .collect();
        let keys: Vec<Col<'_>> = key_arrays
            .iter()
            .map(|a| Col::new(a).expect("supported types"))
            .collect();
        // Rows in window order; each window's absentees re-arm once the window is done.
        let mut order: Vec<usize> = (0..batch.num_rows()).collect();
        order.sort_by_key(|&r| ends.value(r));
        let mut fired = vec![false; batch.num_rows()];
        let mut i = 0;
        while i < order.len() {
            let end = ends.value(order[i]);
            while i < order.len() && ends.value(order[i]) == end {
                let row = order[i];
                let key = self.key(&keys, row);
                if unknown[row] {
                    // Neither true nor false.
                } else if mask.value(row) {
                    if self.state.disarmed.insert(key, end).is_none() {
                        fired[row] = true;
                    }
                } else {
                    self.state.disarmed.remove(&key);
                }
                i += 1;
            }
            self.state.disarmed.retain(|_, last| *last >= end);
        }
        if fired.iter().any(|f| *f) {
            let kept =
                arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(fired))?;
            let kept_keys: Vec<ArrayRef> = self
                .key_cols
                .iter()
                .map(|&c| kept.column(c).clone())
                .collect();
            let kept_ends = kept
                .column(self.end_col)
                .as_primitive::<TimestampMillisecondType>();
            let mut ids = StringBuilder::new();
            for r in 0..kept.num_rows() {
                let key: Vec<String> = kept_keys
                    .iter()
                    .map(|a| Scalar::from_array(a.as_ref(), r).to_text())
                    .collect();
                ids.append_value(format!("{}@{}", key.join("|"), kept_ends.value(r)));
            }
            let mut fired_at =
                TimestampMillisecondBuilder::with_capacity(kept.num_rows()).with_timezone("UTC");
            fired_at.append_value_n(now_ms(), kept.num_rows());
            let mut cols: Vec<ArrayRef> = vec![Arc::new(ids.finish())];
            cols.extend(kept.columns().iter().cloned());
            cols.push(Arc::new(fired_at.finish()));
            out.data(RecordBatch::try_new(self.out_schema.clone(), cols)?);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        weir_core::state::encode("condition", STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.state = weir_core::state::decode("condition", STATE_VERSION, bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
