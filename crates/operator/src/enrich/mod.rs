//! `enrich`: adds or replaces fields computed by SQL expressions, in the order written; each
//! expression reads the input fields and the fields defined before it. A field named like an
//! input field replaces it where it stands (its type may change); a new one goes at the end.
//! A record whose field cannot be computed (an overflow, a division by zero, a value that
//! does not fit a cast) goes to `NAME.errors` with the field's name and the reason, and the
//! rest of the batch goes on.
//!
//! ```toml
//! [stage.enriched]
//! type = "enrich"
//! input = "connections"
//! fields = { total_bytes = "src_bytes + dst_bytes", is_tcp = "protocol_type = 'tcp'" }
//! ```

use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use weir_core::deadletter::DeadLetters;
use weir_core::{Emitter, Error, Operator, Result};
use weir_expr::{Bound, Expr};

/// `[stage.NAME] type = "enrich"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// The fields to compute, in order, as `name = "SQL expression"`:
    /// `{ total_bytes = "src_bytes + dst_bytes", is_tcp = "protocol_type = 'tcp'" }`.
    #[serde(deserialize_with = "in_order")]
    pub fields: Vec<(String, String)>,
}

/// A TOML table as (key, value) pairs in the order written (the loader keeps it).
fn in_order<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of field = \"SQL expression\"")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut m: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = m.next_entry()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs)
}

impl EnrichConfig {
    /// Checks that there are fields and that each expression parses.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        if self.fields.is_empty() {
            return vec![Error::config(
                format!("{path}.fields"),
                "expected at least one field = \"SQL expression\"",
            )];
        }
        self.fields
            .iter()
            .filter_map(|(name, text)| {
                Expr::parse(text)
                    .err()
                    .map(|e| Error::config(format!("{path}.fields.{name}"), e.to_string()))
            })
            .collect()
    }

    /// Input fields the expressions read (not those the stage defines before reading them).
    pub fn required_fields(&self) -> Vec<String> {
        let mut read = Vec::new();
        for (i, (_, text)) in self.fields.iter().enumerate() {
            let earlier = |c: &String| self.fields[..i].iter().any(|(n, _)| n == c);
            if let Ok(e) = Expr::parse(text) {
                read.extend(e.columns().into_iter().filter(|c| !earlier(c)));
            }
        }
        read.sort();
        read.dedup();
        read
    }
}

struct Step {
    name: String,
    expr: Bound,
    /// The schema the expression reads (input plus the fields before it).
    reads: SchemaRef,
    /// Where the result goes: an input field's index, or a new one at the end.
    at: Option<usize>,
}

/// The enrich operator.
pub struct Enrich {
    steps: Vec<Step>,
    schema: SchemaRef,
    dead: DeadLetters,
}

impl Enrich {
    /// Binds every expression in order; errors carry `path.fields.<name>`.
    pub fn new(cfg: &EnrichConfig, input: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let mut errors = Vec::new();
        let mut steps = Vec::new();
        let mut schema = input;
        for (name, text) in &cfg.fields {
            let at = format!("{path}.fields.{name}");
            let bound = match Expr::parse(text).and_then(|e| e.bind(&schema)) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(Error::config(at, e.to_string()));
                    continue;
                }
            };
            let field = Arc::new(Field::new(name, bound.data_type().clone(), true));
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            let index = schema.index_of(name).ok();
            match index {
                Some(i) => fields[i] = field,
                None => fields.push(field),
            }
            let next = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
            steps.push(Step {
                name: name.clone(),
                expr: bound,
                reads: schema,
                at: index,
            });
            schema = next;
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Enrich {
            steps,
            schema,
            dead: DeadLetters::of_stage(path),
        })
    }
}

impl Operator for Enrich {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let rows = batch.num_rows();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut failed: Vec<Option<String>> = Vec::new();
        for s in &self.steps {
            let now = RecordBatch::try_new_with_options(
                s.reads.clone(),
                columns.clone(),
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
            )?;
            let (value, errors) = s
                .expr
                .eval_rows(&now)
                .map_err(|e| Error::Internal(format!("evaluating `{}`: {e}", s.expr.text())))?;
            for (row, why) in errors {
                failed.resize(rows, None);
                failed[row].get_or_insert_with(|| format!("{}: {why}", s.name));
            }
            match s.at {
                Some(i) => columns[i] = value,
                None => columns.push(value),
            }
        }
        let enriched = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        if failed.is_empty() {
            out.data(enriched);
            return Ok(());
        }
        for (row, why) in failed.iter().enumerate() {
            if let Some(why) = why {
                self.dead.push_row(why, batch, row);
            }
        }
        let keep: BooleanArray = failed.iter().map(|f| Some(f.is_none())).collect();
        out.data(arrow_select::filter::filter_record_batch(&enriched, &keep)?);
        self.dead.emit(out);
        Ok(())
    }

    fn stateless(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
