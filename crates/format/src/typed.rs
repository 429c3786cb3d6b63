//! Declared fields for self-describing formats (JSON lines, CSV): their types, and builders
//! that convert text or JSON values into typed columns.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::types::{
    ArrowPrimitiveType, Float64Type, Int64Type, TimestampMillisecondType, UInt64Type,
};
use arrow_array::{ArrayRef, PrimitiveArray};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use arrow_schema::{DataType, Field, TimeUnit};
use serde::Deserialize;
use weir_core::time::parse_rfc3339_ms;
use weir_core::Error;

/// The type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// UTF-8 text.
    String,
    /// Signed 64-bit integer.
    Int,
    /// Unsigned 64-bit integer.
    Uint,
    /// 64-bit float.
    Float,
    /// `true` / `false`.
    Bool,
    /// A point in time: an RFC 3339 string, or an integer of epoch milliseconds.
    Timestamp,
    /// A point in time given as integer (or fractional) epoch seconds, or an RFC 3339 string.
    TimestampS,
}

impl FieldType {
    /// The Arrow type of a column of this field type.
    pub fn data_type(self) -> DataType {
        match self {
            FieldType::String => DataType::Utf8,
            FieldType::Int => DataType::Int64,
            FieldType::Uint => DataType::UInt64,
            FieldType::Float => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
            FieldType::Timestamp | FieldType::TimestampS => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
            }
        }
    }
}

/// One declared field: `{ name = "target_ip", type = "string", required = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Column name (for JSON: the key in the object; for CSV: the header name).
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// A record without this field (or with null) is a dead letter instead of a row.
    #[serde(default)]
    pub required: bool,
}

impl FieldSpec {
    /// The Arrow field.
    pub fn arrow_field(&self) -> Field {
        Field::new(&self.name, self.ty.data_type(), !self.required)
    }
}

/// Checks names are present and distinct.
pub fn validate_fields(fields: &[FieldSpec], path: &str) -> Vec<Error> {
    let mut errors = Vec::new();
    if fields.is_empty() {
        errors.push(Error::config(path, "expected at least one field"));
    }
    for (i, f) in fields.iter().enumerate() {
        if f.name.is_empty() {
            errors.push(Error::config(
                format!("{path}[{i}].name"),
                "expected a non-empty name",
            ));
        }
        if fields[..i].iter().any(|g| g.name == f.name) {
            errors.push(Error::config(
                format!("{path}[{i}].name"),
                format!("field {:?} is declared twice", f.name),
            ));
        }
    }
    errors
}

/// A value converted for one field, held until the whole record has converted. Text is
/// borrowed from the line unless it had to be unescaped.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Missing or null.
    Null,
    /// Text.
    Str(Cow<'a, str>),
    /// Signed integer (also timestamps in ms).
    Int(i64),
    /// Unsigned integer.
    Uint(u64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl Value<'_> {
    /// The same value, owning its text.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Int(x) => Value::Int(x),
            Value::Uint(x) => Value::Uint(x),
            Value::Float(x) => Value::Float(x),
            Value::Bool(x) => Value::Bool(x),
        }
    }
}

pub(crate) fn seconds_to_ms(s: f64) -> Option<i64> {
    let ms = (s * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms as i64)
}

/// Converts text (CSV cells) to a value of type `ty`. Empty text is null.
pub fn from_text(ty: FieldType, s: &str) -> Result<Value<'_>, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    let t = s.trim();
    let bad = |what: &str| format!("expected {what}, got {s:?}");
    Ok(match ty {
        FieldType::String => Value::Str(Cow::Borrowed(s)),
        FieldType::Int => Value::Int(parse_int(t).ok_or_else(|| bad("an integer"))?),
        FieldType::Uint => Value::Uint(parse_uint(t).ok_or_else(|| bad("a non-negative integer"))?),
        FieldType::Float => Value::Float(parse_f64(t).ok_or_else(|| bad("a number"))?),
        FieldType::Bool => match t {
            "true" | "TRUE" | "True" | "1" => Value::Bool(true),
            "false" | "FALSE" | "False" | "0" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        FieldType::Timestamp => match t.parse::<i64>() {
            Ok(ms) => Value::Int(ms),
            Err(_) => Value::Int(
                parse_rfc3339_ms(t).ok_or_else(|| bad("an RFC 3339 time or epoch milliseconds"))?,
            ),
        },
        FieldType::TimestampS => match t.parse::<f64>() {
            Ok(s) => Value::Int(seconds_to_ms(s).ok_or_else(|| bad("epoch seconds in range"))?),
            Err(_) => Value::Int(
                parse_rfc3339_ms(t).ok_or_else(|| bad("an RFC 3339 time or epoch seconds"))?,
            ),
        },
    })
}

/// Digits to u64, the common case of short plain digits without `str::parse`'s generality;
/// anything else (a sign, overflow) goes to `str::parse`, so the result is the same.
#[inline]
pub(crate) fn parse_uint(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if !b.is_empty() && b.len() <= 19 {
        let mut v = 0u64;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return t.parse().ok();
            }
            v = v * 10 + u64::from(d);
        }
        return Some(v);
    }
    t.parse().ok()
}

/// Text to f64, correctly rounded. A plain decimal of at most 15 digits (`0.00`, `12.5`,
/// most of what logs and sensors write) is its digits as an integer divided by a power of ten
/// (both exact in an f64, so the one division rounds correctly: Clinger's fast path);
/// anything else goes to `str::parse`.
#[inline]
pub(crate) fn parse_f64(t: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, d) = match t.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        d => (false, d),
    };
    if d.is_empty() || d.len() > 16 {
        return t.parse().ok();
    }
    let (mut m, mut frac, mut dot, mut digits) = (0u64, 0usize, false, 0);
    for &c in d {
        match c {
            b'0'..=b'9' if digits < 15 => {
                m = m * 10 + u64::from(c - b'0');
                frac += usize::from(dot);
                digits += 1;
            }
            b'.' if !dot => dot = true,
            _ => return t.parse().ok(),
        }
    }
    // A leading or trailing dot (`.5`, `5.`): as `str::parse` decides.
    if d[0] == b'.' || d[d.len() - 1] == b'.' {
        return t.parse().ok();
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// As [`parse_uint`], for i64.
#[inline]
pub(crate) fn parse_int(t: &str) -> Option<i64> {
    match t.as_bytes().first() {
        Some(b'0'..=b'9') if t.len() <= 18 => parse_uint(t).map(|v| v as i64),
        _ => t.parse().ok(),
    }
}

/// Converts a JSON value to a value of type `ty`. Numbers are not silently truncated:
/// `1.5` is not an integer.
pub fn from_json(ty: FieldType, v: &serde_json::Value) -> Result<Value<'_>, String> {
    use serde_json::Value as J;
    let kind = |v: &J| match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    };
    let bad = |what: &str| format!("expected {what}, got {}", kind(v));
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match (ty, v) {
        (FieldType::String, J::String(s)) => Value::Str(Cow::Borrowed(s)),
        (FieldType::String, J::Number(n)) => Value::Str(Cow::Owned(n.to_string())),
        (FieldType::String, J::Bool(b)) => {
            Value::Str(Cow::Borrowed(if *b { "true" } else { "false" }))
        }
        (FieldType::Int, J::Number(n)) => Value::Int(
            n.as_i64()
                .ok_or_else(|| format!("expected an integer in 64 bits, got {n}"))?,
        ),
        (FieldType::Uint, J::Number(n)) => Value::Uint(
            n.as_u64()
                .ok_or_else(|| format!("expected a non-negative integer in 64 bits, got {n}"))?,
        ),
        (FieldType::Float, J::Number(n)) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (FieldType::Bool, J::Bool(b)) => Value::Bool(*b),
        (FieldType::Timestamp, J::Number(n)) => Value::Int(
            n.as_i64()
                .ok_or_else(|| format!("expected epoch milliseconds as an integer, got {n}"))?,
        ),
        (FieldType::TimestampS, J::Number(n)) => Value::Int(
            n.as_f64()
                .and_then(seconds_to_ms)
                .ok_or_else(|| format!("expected epoch seconds in range, got {n}"))?,
        ),
        (FieldType::Timestamp | FieldType::TimestampS, J::String(s)) => Value::Int(
            parse_rfc3339_ms(s).ok_or_else(|| format!("expected an RFC 3339 time, got {s:?}"))?,
        ),
        (FieldType::String, _) => return Err(bad("a string")),
        (FieldType::Int | FieldType::Uint | FieldType::Float, _) => return Err(bad("a number")),
        (FieldType::Bool, _) => return Err(bad("a boolean")),
        (FieldType::Timestamp | FieldType::TimestampS, _) => {
            return Err(bad("an RFC 3339 time or an epoch number"))
        }
    })
}

/// What [`RowWriter::write_into`]'s converter did with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The value converted (and was appended if the field is kept).
    Done,
    /// The field is missing or null; nothing was appended.
    Null,
}

/// A column of fixed-width values being built: a plain vector and a validity bitmap.
/// Arrow's `PrimitiveBuilder` does the same, but its append was not inlined into the parsers'
/// loops and cost a call per value.
#[derive(Debug)]
pub struct Prim<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    /// Validity, from the first null on (until then every value is valid).
    nulls: Option<BooleanBufferBuilder>,
}

impl<T: ArrowPrimitiveType> Prim<T> {
    fn new() -> Self {
        Prim {
            values: Vec::with_capacity(1024),
            nulls: None,
        }
    }

    /// Appends a value.
    #[inline(always)]
    pub fn append_value(&mut self, v: T::Native) {
        self.values.push(v);
        if let Some(n) = &mut self.nulls {
            n.append(true);
        }
    }

    #[inline]
    fn append_null(&mut self) {
        let n = self.nulls.get_or_insert_with(|| {
            let mut n = BooleanBufferBuilder::new(self.values.capacity());
            n.append_n(self.values.len(), true);
            n
        });
        n.append(false);
        self.values.push(T::Native::default());
    }

    fn finish(&mut self) -> PrimitiveArray<T> {
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(1024));
        let nulls = self.nulls.take().map(|mut n| NullBuffer::new(n.finish()));
        PrimitiveArray::new(values.into(), nulls)
    }
}

/// A column builder for a declared field.
#[derive(Debug)]
pub enum ColumnBuilder {
    /// Text.
    Str(StringBuilder),
    /// Signed integers.
    Int(Prim<Int64Type>),
    /// Unsigned integers.
    Uint(Prim<UInt64Type>),
    /// Floats.
    Float(Prim<Float64Type>),
    /// Booleans.
    Bool(BooleanBuilder),
    /// Timestamps in ms, UTC.
    Time(Prim<TimestampMillisecondType>),
}

impl ColumnBuilder {
    /// An empty builder for `ty`.
    pub fn new(ty: FieldType) -> Self {
        match ty {
            FieldType::String => ColumnBuilder::Str(StringBuilder::new()),
            FieldType::Int => ColumnBuilder::Int(Prim::new()),
            FieldType::Uint => ColumnBuilder::Uint(Prim::new()),
            FieldType::Float => ColumnBuilder::Float(Prim::new()),
            FieldType::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            FieldType::Timestamp | FieldType::TimestampS => ColumnBuilder::Time(Prim::new()),
        }
    }

    /// Appends a converted value (it must be of this builder's type, as `from_*` make it).
    pub fn append(&mut self, v: Value<'_>) {
        match (self, v) {
            (ColumnBuilder::Str(b), Value::Str(s)) => b.append_value(s),
            (ColumnBuilder::Int(b), Value::Int(x)) => b.append_value(x),
            (ColumnBuilder::Uint(b), Value::Uint(x)) => b.append_value(x),
            (ColumnBuilder::Float(b), Value::Float(x)) => b.append_value(x),
            (ColumnBuilder::Bool(b), Value::Bool(x)) => b.append_value(x),
            (ColumnBuilder::Time(b), Value::Int(x)) => b.append_value(x),
            (b, _) => b.append_null(),
        }
    }

    /// Appends a null.
    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Str(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Uint(b) => b.append_null(),
            ColumnBuilder::Float(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
        }
    }

    /// Takes the column built so far.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Uint(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish().with_timezone("UTC")),
        }
    }
}

/// Which declared fields to materialise: all are still converted and checked, so a record
/// with a bad value in an unused field is still a dead letter.
pub fn projection_mask(
    fields: &[FieldSpec],
    projection: Option<&[String]>,
    format: &str,
) -> weir_core::Result<Vec<bool>> {
    if let Some(p) = projection {
        for name in p {
            if !fields.iter().any(|f| &f.name == name) {
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                return Err(Error::Schema(format!(
                    "{format} declares no field {name:?}; declared: {}",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(fields
        .iter()
        .map(|f| projection.is_none_or(|p| p.contains(&f.name)))
        .collect())
}

/// Converted values of one record, appended to the kept columns only when all converted.
#[derive(Debug)]
pub struct RowWriter {
    specs: Vec<FieldSpec>,
    keep: Vec<bool>,
    builders: Vec<ColumnBuilder>,
    schema: arrow_schema::SchemaRef,
    /// Rows written since the last finish, refused ones included.
    written: usize,
    /// Rows refused since the last finish.
    refused: usize,
    /// One bit per written row: kept, or refused (its values are dropped at finish).
    kept: arrow_buffer::BooleanBufferBuilder,
}

impl RowWriter {
    /// A writer for `specs`, materialising the fields where `keep` is true.
    pub fn new(specs: Vec<FieldSpec>, keep: Vec<bool>) -> Self {
        let fields: Vec<Field> = specs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| f.arrow_field())
            .collect();
        let builders = specs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| ColumnBuilder::new(f.ty))
            .collect();
        RowWriter {
            specs,
            keep,
            builders,
            schema: Arc::new(arrow_schema::Schema::new(fields)),
            written: 0,
            refused: 0,
            kept: arrow_buffer::BooleanBufferBuilder::new(1024),
        }
    }

    /// The declared fields.
    pub fn specs(&self) -> &[FieldSpec] {
        &self.specs
    }

    /// Schema of the kept fields.
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        self.schema.clone()
    }

    /// Rows written since the last finish (refused ones not counted).
    pub fn rows(&self) -> usize {
        self.written - self.refused
    }

    /// Converts the values of one record, `get(i, spec)` giving field `i`'s value. Returns
    /// the reason when a value does not convert or a required field is missing; then nothing
    /// is appended.
    #[inline]
    pub fn write<'a, F>(&mut self, mut get: F) -> Result<(), String>
    where
        F: FnMut(usize, &FieldSpec) -> Result<Value<'a>, String>,
    {
        self.write_into(|i, spec, col| match get(i, spec)? {
            Value::Null => Ok(Put::Null),
            v => {
                if let Some(col) = col {
                    col.append(v);
                }
                Ok(Put::Done)
            }
        })
    }

    /// Like [`write`](Self::write), for formats that append a field's value straight into its
    /// column: `put(i, spec, column)` converts field `i`, appends it to `column` when the field
    /// is kept (`Some`), and says whether it was there; on `Null` or an error it appends
    /// nothing. No value is held between converting and appending.
    #[inline]
    pub fn write_into<F>(&mut self, mut put: F) -> Result<(), String>
    where
        F: FnMut(usize, &FieldSpec, Option<&mut ColumnBuilder>) -> Result<Put, String>,
    {
        // Values go straight into the builders; a record that fails part way is completed
        // with nulls and marked refused, and its row is dropped at finish. Refusals are rare,
        // so this is cheaper than holding every record's values until it has converted.
        let mut b = 0;
        let mut res = Ok(());
        for (i, spec) in self.specs.iter().enumerate() {
            let keep = self.keep[i];
            let col = if keep {
                Some(&mut self.builders[b])
            } else {
                None
            };
            match put(i, spec, col) {
                Ok(Put::Done) => {}
                Ok(Put::Null) if spec.required => {
                    res = Err(format!(
                        "field {:?} is required but missing or null",
                        spec.name
                    ));
                    break;
                }
                Ok(Put::Null) => {
                    if keep {
                        self.builders[b].append_null();
                    }
                }
                Err(e) => {
                    res = Err(format!("field {:?}: {e}", spec.name));
                    break;
                }
            }
            b += usize::from(keep);
        }
        if res.is_err() {
            for builder in &mut self.builders[b..] {
                builder.append_null();
            }
            self.refused += 1;
        }
        self.kept.append(res.is_ok());
        self.written += 1;
        res
    }

    /// Takes the rows as a batch.
    pub fn finish(&mut self) -> arrow_array::RecordBatch {
        let rows = std::mem::take(&mut self.written);
        let refused = std::mem::take(&mut self.refused);
        let kept = self.kept.finish();
        let mut cols: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        if refused > 0 {
            // Refused rows hold nulls even in required columns: drop them before the schema
            // is checked.
            let mask = arrow_array::BooleanArray::from(kept);
            let filter = arrow_select::filter::FilterBuilder::new(&mask)
                .optimize()
                .build();
            cols = cols
                .iter()
                .map(|c| filter.filter(c).expect("the mask has one bit per row"))
                .collect();
        }
        arrow_array::RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows - refused)),
        )
        .expect("builders follow the declared schema")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A column starts without a validity bitmap and gets one at its first null; the values
    /// before it stay valid, and the next batch starts clean.
    #[test]
    fn columns_keep_validity_across_the_first_null_and_batches() {
        use arrow_array::cast::AsArray;
        use arrow_array::Array;
        let mut c = ColumnBuilder::new(FieldType::Uint);
        for i in 0..3000u64 {
            match i {
                2000 | 2999 => c.append(Value::Null),
                _ => c.append(Value::Uint(i)),
            }
        }
        let a = c.finish();
        let a = a.as_primitive::<UInt64Type>();
        assert_eq!((a.len(), a.null_count()), (3000, 2));
        assert_eq!(
            (a.value(1999), a.is_valid(1999), a.is_null(2000)),
            (1999, true, true)
        );
        assert_eq!((a.value(2001), a.is_null(2999)), (2001, true));
        c.append(Value::Uint(7));
        let b = c.finish();
        assert_eq!((b.len(), b.null_count()), (1, 0));
        let mut t = ColumnBuilder::new(FieldType::Timestamp);
        t.append(Value::Int(5));
        assert_eq!(t.finish().data_type(), &FieldType::Timestamp.data_type());
    }

    proptest! {
        /// The fast paths give what `str::parse` gives, bit for bit.
        #[test]
        fn number_fast_paths_match_str_parse(t in "-?[0-9]{0,17}(\\.[0-9]{0,17})?|[-+0-9.eE]{1,8}") {
            prop_assert_eq!(super::parse_f64(&t).map(f64::to_bits), t.parse::<f64>().ok().map(f64::to_bits));
            prop_assert_eq!(super::parse_uint(&t), t.parse::<u64>().ok());
            prop_assert_eq!(super::parse_int(&t), t.parse::<i64>().ok());
        }
    }
}
