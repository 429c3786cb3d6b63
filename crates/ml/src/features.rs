//! Features: which fields of a record a model reads and how each becomes numbers, and the
//! featurizer that turns record batches into the rows a forest scores.
//!
//! A numeric feature is one column (integers, floats and booleans as they are; text is
//! parsed, and text that is not a number is a problem of that record). A categorical feature
//! is either one-hot (a 0/1 column per value seen in training) or ordinal (the value's rank
//! by frequency in training). A value training never saw is "other": all zeros one-hot, the
//! rank after the last ordinal.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use serde::{Deserialize, Serialize};

use crate::MlError;

/// How a field becomes numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Encoding {
    /// The value itself.
    Numeric,
    /// A 0/1 column per listed value.
    OneHot(Vec<String>),
    /// The position of the value in the list (the list's length for any other value).
    Ordinal(Vec<String>),
}

/// A field a model reads, and its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The field's name.
    pub name: String,
    /// How it becomes numbers.
    pub encoding: Encoding,
}

impl Feature {
    /// Number of model inputs it makes.
    pub fn width(&self) -> usize {
        match &self.encoding {
            Encoding::OneHot(v) => v.len(),
            Encoding::Numeric | Encoding::Ordinal(_) => 1,
        }
    }

    /// A one-line description: `src_bytes`, `service (one-hot, 66 values)`.
    pub fn describe(&self) -> String {
        match &self.encoding {
            Encoding::Numeric => self.name.clone(),
            Encoding::OneHot(v) => format!("{} (one-hot, {} values)", self.name, v.len()),
            Encoding::Ordinal(v) => format!("{} (ordinal, {} values)", self.name, v.len()),
        }
    }
}

/// Number of model inputs `features` make.
pub fn width(features: &[Feature]) -> usize {
    features.iter().map(Feature::width).sum()
}

/// The values of a categorical field by frequency, most frequent first (ties by value), at
/// most `max` of them: the rest will be "other".
pub fn categories<'a>(values: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut v: Vec<(&str, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .take(max)
        .map(|(s, _)| s.to_string())
        .collect()
}

/// A record a featurizer could not turn into numbers, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The record's row in its batch.
    pub row: usize,
    /// The field.
    pub field: String,
    /// What was wrong: `missing`, `not a number: "abc"`.
    pub reason: String,
}

/// Features bound to a schema.
#[derive(Debug, Clone)]
pub struct Featurizer {
    parts: Vec<Part>,
    width: usize,
}

#[derive(Debug, Clone)]
struct Part {
    column: usize,
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Number,
    Text,
    OneHot(HashMap<String, usize>, usize),
    Ordinal(HashMap<String, usize>, usize),
}

fn numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean | DataType::Null)
}

fn text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl Featurizer {
    /// Binds `features` to the fields of `schema`; every field that is missing or of a type
    /// the encoding cannot read is listed in the error.
    pub fn bind(features: &[Feature], schema: &Schema) -> Result<Self, MlError> {
        let mut parts = Vec::with_capacity(features.len());
        let mut wrong = Vec::new();
        for f in features {
            let Ok(column) = schema.index_of(&f.name) else {
                wrong.push(format!("`{}` is not a field of the records", f.name));
                continue;
            };
            let t = schema.field(column).data_type();
            let index = |v: &[String]| -> HashMap<String, usize> {
                v.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect()
            };
            let kind = match &f.encoding {
                Encoding::Numeric if numeric(t) => Kind::Number,
                Encoding::Numeric if text(t) => Kind::Text,
                Encoding::Numeric => {
                    wrong.push(format!(
                        "`{}` must be numeric, the records have {t}",
                        f.name
                    ));
                    continue;
                }
                Encoding::OneHot(_) | Encoding::Ordinal(_)
                    if t.is_nested() || matches!(t, DataType::Binary) =>
                {
                    wrong.push(format!(
                        "`{}` must be text or a number, the records have {t}",
                        f.name
                    ));
                    continue;
                }
                Encoding::OneHot(v) => Kind::OneHot(index(v), v.len()),
                Encoding::Ordinal(v) => Kind::Ordinal(index(v), v.len()),
            };
            parts.push(Part {
                column,
                name: f.name.clone(),
                kind,
            });
        }
        if !wrong.is_empty() {
            return Err(MlError::Mismatch(wrong.join("; ")));
        }
        Ok(Featurizer {
            parts,
            width: width(features),
        })
    }

    /// Number of model inputs per record.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Appends one row of [`Featurizer::width`] numbers per record of `batch` to `out` and
    /// returns the records that could not be read (their rows hold zeros), in row order.
    pub fn featurize(&self, batch: &RecordBatch, out: &mut Vec<f32>) -> Vec<Problem> {
        let n = batch.num_rows();
        let w = self.width;
        let base = out.len();
        out.resize(base + n * w, 0.0);
        let rows = &mut out[base..];
        let mut problems = Vec::new();
        let mut at = 0;
        for p in &self.parts {
            let col = batch.column(p.column);
            let mut problem = |row: usize, reason: String| {
                problems.push(Problem {
                    row,
                    field: p.name.clone(),
                    reason,
                })
            };
            match &p.kind {
                Kind::Number => {
                    let v = cast(col, &DataType::Float64);
                    let v = v.as_primitive::<Float64Type>();
                    for r in 0..n {
                        if v.is_null(r) {
                            problem(r, "missing".into());
                        } else if v.value(r).is_nan() {
                            problem(r, "not a number (NaN)".into());
                        } else {
                            rows[r * w + at] = v.value(r) as f32;
                        }
                    }
                }
                Kind::Text => {
                    let v = cast(col, &DataType::Utf8);
                    let v = v.as_string::<i32>();
                    for r in 0..n {
                        if v.is_null(r) {
                            problem(r, "missing".into());
                            continue;
                        }
                        match v.value(r).trim().parse::<f64>() {
                            Ok(x) if !x.is_nan() => rows[r * w + at] = x as f32,
                            _ => problem(r, format!("not a number: {:?}", v.value(r))),
                        }
                    }
                }
                Kind::OneHot(index, _) | Kind::Ordinal(index, _) => {
                    let v = cast(col, &DataType::Utf8);
                    let v = v.as_string::<i32>();
                    for r in 0..n {
                        if v.is_null(r) {
                            problem(r, "missing".into());
                            continue;
                        }
                        let i = index.get(v.value(r)).copied();
                        match (&p.kind, i) {
                            (Kind::OneHot(..), Some(i)) => rows[r * w + at + i] = 1.0,
                            (Kind::Ordinal(_, len), i) => {
                                rows[r * w + at] = i.unwrap_or(*len) as f32;
                            }
                            _ => {} // one-hot "other": all zeros
                        }
                    }
                }
            }
            at += match &p.kind {
                Kind::OneHot(_, len) => *len,
                _ => 1,
            };
        }
        problems.sort_by_key(|p| p.row);
        problems
    }
}

fn cast(col: &ArrayRef, to: &DataType) -> ArrayRef {
    if col.data_type() == to {
        return Arc::clone(col);
    }
    // Binding admitted only types Arrow casts to these (numbers and booleans to Float64,
    // anything flat to Utf8); a value that does not fit becomes null, a "missing" problem.
    arrow_cast::cast(col, to).unwrap_or_else(|_| arrow_array::new_null_array(to, col.len()))
}
