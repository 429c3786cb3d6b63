//! JSON lines: one object per line, fields taken by a declared schema.
//!
//! Keys not declared are ignored (but the whole line must be valid JSON). A declared name
//! with dots reaches into nested objects: `geo.country` is `{"geo": {"country": "NL"}}`, or a
//! top-level key `"geo.country"` as flattened logs write it. A line that is not a JSON
//! object, or whose declared field has the wrong type (`"count": "ten"` for an `int`), is a
//! dead letter with the reason and the field's name. Blank lines are skipped and counted.
//!
//! Lines are read by a scanner of declared keys ([`scan`]) that builds nothing it does not
//! keep; its semantics are those of `serde_json::Value` (checked in the tests).

mod scan;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::parse::{for_each_line, ParseCounts};
use weir_core::time::parse_rfc3339_ms;
use weir_core::{Parser, Result};

use crate::typed::{
    parse_f64, parse_int, parse_uint, projection_mask, seconds_to_ms, ColumnBuilder, FieldSpec,
    FieldType, Put, RowWriter, Value,
};
use scan::{Keys, Kind, Slot};

/// Options of the JSON-lines parser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// The fields to read: `[{ name = "ts_ms", type = "timestamp" }, …]`; a name with dots
    /// (`geo.country`) reads a nested field.
    pub fields: Vec<FieldSpec>,
}

/// The JSON-lines parser.
pub struct JsonParser {
    writer: RowWriter,
    keys: Keys,
    nested: Vec<Slot>,
    dotted: Vec<Slot>,
    blank: u64,
}

impl JsonParser {
    /// A parser producing the fields in `projection` (all declared when `None`).
    pub fn new(cfg: &JsonConfig, projection: Option<&[String]>) -> Result<Self> {
        let keep = projection_mask(&cfg.fields, projection, "json")?;
        let keys = Keys::new(cfg.fields.iter().map(|f| f.name.as_str()));
        Ok(JsonParser {
            writer: RowWriter::new(cfg.fields.clone(), keep),
            nested: vec![Slot::MISSING; keys.fields()],
            dotted: vec![Slot::MISSING; keys.fields()],
            keys,
            blank: 0,
        })
    }
}

/// What a JSON value is, for messages.
fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Missing | Kind::Null => "null",
        Kind::True | Kind::False => "a boolean",
        Kind::Num => "a number",
        Kind::Str | Kind::StrEscaped => "a string",
        Kind::Array => "an array",
        Kind::Object => "an object",
    }
}

/// Powers of ten exact in a double.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A number's text as serde_json reads it, for what the fast paths do not cover.
#[cold]
fn number(text: &str) -> serde_json::Number {
    serde_json::from_str(text).expect("the scanner validated the number")
}

/// An integer written plainly (`0`, `-12`, at most 18 digits): its value is its text.
#[inline]
fn plain_int(t: &str) -> bool {
    let d = t.strip_prefix('-').unwrap_or(t).as_bytes();
    !d.is_empty()
        && d.len() <= 18
        && d.iter().all(u8::is_ascii_digit)
        && (d[0] != b'0' || d.len() == 1)
        && t != "-0"
}

/// Converts a declared field's slot to a value of type `ty`, as `from_json` converts a
/// `serde_json::Value`: numbers are not truncated (`1.5` is not an integer). [`put`] takes
/// the common cases before this.
fn convert<'a>(ty: FieldType, slot: Slot, line: &'a str) -> std::result::Result<Value<'a>, String> {
    let text = || slot.text(line);
    let string = || -> Cow<'a, str> {
        match slot.kind {
            Kind::StrEscaped => Cow::Owned(scan::unescape(text().as_bytes())),
            _ => Cow::Borrowed(text()),
        }
    };
    let bad = |what: &str| format!("expected {what}, got {}", kind_name(slot.kind));
    Ok(match (ty, slot.kind) {
        (_, Kind::Missing | Kind::Null) => Value::Null,
        (FieldType::String, Kind::Str | Kind::StrEscaped) => Value::Str(string()),
        (FieldType::String, Kind::Num) if plain_int(text()) => Value::Str(Cow::Borrowed(text())),
        (FieldType::String, Kind::Num) => Value::Str(Cow::Owned(number(text()).to_string())),
        (FieldType::String, Kind::True) => Value::Str(Cow::Borrowed("true")),
        (FieldType::String, Kind::False) => Value::Str(Cow::Borrowed("false")),
        (FieldType::Int | FieldType::Timestamp, Kind::Num) => {
            let t = text();
            // The scanner checked the grammar: digits alone are an integer as written.
            match slot.as_i64().or_else(|| parse_int(t).filter(|_| t != "-0")) {
                Some(v) => Value::Int(v),
                None => {
                    let n = number(t);
                    Value::Int(n.as_i64().ok_or_else(|| match ty {
                        FieldType::Int => format!("expected an integer in 64 bits, got {n}"),
                        _ => format!("expected epoch milliseconds as an integer, got {n}"),
                    })?)
                }
            }
        }
        (FieldType::Uint, Kind::Num) => {
            let t = text();
            match parse_uint(t) {
                Some(v) => Value::Uint(v),
                None => {
                    let n = number(t);
                    Value::Uint(n.as_u64().ok_or_else(|| {
                        format!("expected a non-negative integer in 64 bits, got {n}")
                    })?)
                }
            }
        }
        // Correctly rounded; serde_json (without float_roundtrip) may differ in the last bit.
        // (Exact short decimals took `put`'s fast path.)
        (FieldType::Float, Kind::Num) => Value::Float(parse_f64(text()).unwrap_or(f64::NAN)),
        (FieldType::Bool, Kind::True) => Value::Bool(true),
        (FieldType::Bool, Kind::False) => Value::Bool(false),
        (FieldType::TimestampS, Kind::Num) => {
            let t = text();
            Value::Int(
                parse_f64(t)
                    .and_then(seconds_to_ms)
                    .ok_or_else(|| format!("expected epoch seconds in range, got {}", number(t)))?,
            )
        }
        (FieldType::Timestamp | FieldType::TimestampS, Kind::Str | Kind::StrEscaped) => {
            let s = string();
            Value::Int(
                parse_rfc3339_ms(&s)
                    .ok_or_else(|| format!("expected an RFC 3339 time, got {s:?}"))?,
            )
        }
        (FieldType::String, _) => return Err(bad("a string")),
        (FieldType::Int | FieldType::Uint | FieldType::Float, _) => return Err(bad("a number")),
        (FieldType::Bool, _) => return Err(bad("a boolean")),
        (FieldType::Timestamp | FieldType::TimestampS, _) => {
            return Err(bad("an RFC 3339 time or an epoch number"))
        }
    })
}

/// Converts a slot as [`convert`] does and appends it to `col`: the common cases (an exact
/// number for a number field, a string without escapes for a text field) go straight into
/// the column, the others through [`convert`].
#[inline]
fn put(
    ty: FieldType,
    slot: &Slot,
    line: &str,
    col: Option<&mut ColumnBuilder>,
) -> std::result::Result<Put, String> {
    match (ty, slot.kind, col) {
        (_, Kind::Missing | Kind::Null, _) => return Ok(Put::Null),
        // `frac` is 0 only for an exact number without fraction digits.
        (FieldType::Uint, Kind::Num, col) if slot.frac == 0 && !slot.neg => {
            if let Some(ColumnBuilder::Uint(b)) = col {
                b.append_value(slot.digits);
            }
        }
        (FieldType::Int, Kind::Num, col) if slot.as_i64().is_some() => {
            if let (Some(ColumnBuilder::Int(b)), Some(v)) = (col, slot.as_i64()) {
                b.append_value(v);
            }
        }
        // Both exact in a double, so the quotient is correctly rounded (Clinger); `frac` is
        // above 22 for an inexact number.
        (FieldType::Float, Kind::Num, col) if slot.frac <= 22 && slot.digits < 1 << 53 => {
            if let Some(ColumnBuilder::Float(b)) = col {
                let x = slot.digits as f64 / POW10[usize::from(slot.frac)];
                b.append_value(if slot.neg { -x } else { x });
            }
        }
        (FieldType::String, Kind::Str, col) => {
            if let Some(ColumnBuilder::Str(b)) = col {
                b.append_value(slot.text(line));
            }
        }
        (ty, _, col) => {
            let v = convert(ty, *slot, line)?;
            if let Some(col) = col {
                col.append(v);
            }
        }
    }
    Ok(Put::Done)
}

impl Parser for JsonParser {
    fn schema(&self) -> SchemaRef {
        self.writer.schema()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        let mut blank = 0;
        let n = for_each_line(chunk, first_line, |no, line| {
            // An object starts with `{`: only a line that does not needs the whole look.
            if line.first() != Some(&b'{') && line.iter().all(u8::is_ascii_whitespace) {
                blank += 1;
                return;
            }
            let text = match scan::scan(line, &self.keys, &mut self.nested, &mut self.dotted) {
                Ok(text) => text,
                Err(e) => {
                    dead.push(Some(no), &format!("not a JSON object: {e}"), line);
                    return;
                }
            };
            let (nested, dotted) = (&self.nested, &self.dotted);
            let res = self.writer.write_into(|i, spec, col| {
                // The nested value wins over a flattened `a.b` key.
                let slot = match nested[i].kind {
                    Kind::Missing => &dotted[i],
                    _ => &nested[i],
                };
                put(spec.ty, slot, text, col)
            });
            if let Err(reason) = res {
                dead.push(Some(no), &reason, line);
            }
        });
        self.blank += blank;
        n
    }

    fn pending_rows(&self) -> usize {
        self.writer.rows()
    }

    fn finish(&mut self) -> RecordBatch {
        self.writer.finish()
    }

    fn chunks_independent(&self) -> bool {
        true
    }

    fn take_counts(&mut self) -> ParseCounts {
        ParseCounts {
            blank: std::mem::take(&mut self.blank),
            ..ParseCounts::default()
        }
    }
}
