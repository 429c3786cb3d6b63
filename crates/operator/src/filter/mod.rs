//! `filter`: keeps the records for which a SQL condition is true (NULL counts as false). A
//! record whose condition cannot be computed (a division by zero, an overflow) is not kept:
//! it goes to `NAME.errors` with the reason, and the pipeline goes on.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Error, Operator, Result};
use weir_expr::{Bound, Expr};

/// `[stage.NAME] type = "filter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The condition, a SQL expression over the input fields: `type = 'DDOS'`,
    /// `status >= 500 AND path <> '/health'`.
    #[serde(rename = "where")]
    pub condition: String,
}

impl FilterConfig {
    /// Input fields the condition reads.
    pub fn required_fields(&self) -> Vec<String> {
        Expr::parse(&self.condition)
            .map(|e| e.columns())
            .unwrap_or_default()
    }
}

/// The filter operator.
pub struct Filter {
    schema: SchemaRef,
    condition: Bound,
    dead: DeadLetters,
}

impl Filter {
    /// Binds the condition to the input schema; errors carry the key path `path.where`.
    pub fn new(cfg: &FilterConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let at = format!("{path}.where");
        let bound = Expr::parse(&cfg.condition)
            .and_then(|e| e.bind(&schema))
            .map_err(|e| vec![Error::config(&at, e.to_string())])?;
        if !matches!(
            bound.data_type(),
            arrow_schema::DataType::Boolean | arrow_schema::DataType::Null
        ) {
            return Err(vec![Error::config(
                at,
                format!(
                    "expected a condition, `{}` is a {}",
                    cfg.condition,
                    bound.data_type()
                ),
            )]);
        }
        Ok(Filter {
            schema,
            condition: bound,
            dead: DeadLetters::of_stage(path),
        })
    }
}

impl Operator for Filter {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let (mask, errors) = self
            .condition
            .eval_mask_rows(batch)
            .map_err(|e| Error::Internal(format!("evaluating `{}`: {e}", self.condition.text())))?;
        for (row, why) in errors {
            self.dead.push_row(&why, batch, row);
        }
        let kept = arrow_select::filter::filter_record_batch(batch, &mask)?;
        out.data(kept);
        self.dead.emit(out);
        Ok(())
    }

    fn stateless(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use weir_core::Message;

    use super::*;

    #[test]
    fn keeps_matching_rows_and_passes_watermarks() {
        let b = RecordBatch::try_from_iter([
            (
                "type",
                Arc::new(StringArray::from(vec![
                    Some("DDOS"),
                    None,
                    Some("DDOS"),
                    Some("SCAN"),
                ])) as _,
            ),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as _),
        ])
        .unwrap();
        let cfg = FilterConfig {
            condition: "type = 'DDOS' AND n > 1".into(),
        };
        assert_eq!(cfg.required_fields(), ["n", "type"]);
        let mut f = Filter::new(&cfg, b.schema(), "stage.f").unwrap();
        let mut out = Emitter::default();
        f.on_batch(&b, &mut out).unwrap();
        f.on_watermark(5, &mut out).unwrap();
        let msgs: Vec<_> = out.drain().collect();
        let Message::Data(kept) = &msgs[0].1 else {
            panic!("data first")
        };
        assert_eq!(kept.num_rows(), 1);
        assert!(matches!(msgs[1].1, Message::Watermark(5)));
    }

    #[test]
    fn a_non_condition_is_a_config_error() {
        let b =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        let err = Filter::new(
            &FilterConfig {
                condition: "n + 1".into(),
            },
            b.schema(),
            "stage.f",
        )
        .err()
        .unwrap();
        assert_eq!(
            err[0].to_string(),
            "stage.f.where: expected a condition, `n + 1` is a Int64"
        );
    }
}
