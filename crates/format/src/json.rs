//! JSON lines: one object per line, fields taken by a declared schema.
//!
//! Keys not declared are ignored. A line that is not a JSON object, or whose declared field
//! has the wrong type (`"count": "ten"` for an `int`), is a dead letter with the reason. Blank
//! lines are skipped without counting, as JSON-lines readers commonly do.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::parse::for_each_line;
use weir_core::{Parser, Result};

use crate::typed::{from_json, projection_mask, FieldSpec, RowWriter, Value};

/// Options of the JSON-lines parser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// The fields to read: `[{ name = "ts_ms", type = "timestamp" }, …]`.
    pub fields: Vec<FieldSpec>,
}

/// The JSON-lines parser.
pub struct JsonParser {
    writer: RowWriter,
    names: Vec<String>,
    values: Vec<Option<serde_json::Value>>,
}

impl JsonParser {
    /// A parser producing the fields in `projection` (all declared when `None`).
    pub fn new(cfg: &JsonConfig, projection: Option<&[String]>) -> Result<Self> {
        let keep = projection_mask(&cfg.fields, projection, "json")?;
        Ok(JsonParser {
            writer: RowWriter::new(cfg.fields.clone(), keep),
            names: cfg.fields.iter().map(|f| f.name.clone()).collect(),
            values: vec![None; cfg.fields.len()],
        })
    }
}

/// An object key, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one JSON object, keeping only the declared fields (the rest is skipped without
/// being built), into `values` by declaration index.
struct Line<'a> {
    names: &'a [String],
    values: &'a mut [Option<serde_json::Value>],
}

impl<'de> DeserializeSeed<'de> for Line<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Line<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            match self.names.iter().position(|n| *n == key) {
                Some(i) => self.values[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl Parser for JsonParser {
    fn schema(&self) -> SchemaRef {
        self.writer.schema()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        for_each_line(chunk, first_line, |no, line| {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            self.values.iter_mut().for_each(|v| *v = None);
            let mut de = serde_json::Deserializer::from_slice(line);
            let parsed = Line {
                names: &self.names,
                values: &mut self.values,
            }
            .deserialize(&mut de)
            .and_then(|()| de.end());
            if let Err(e) = parsed {
                dead.push(Some(no), &format!("not a JSON object: {e}"), line);
                return;
            }
            let values = &self.values;
            let res = self.writer.write(|i, spec| match &values[i] {
                None => Ok(Value::Null),
                Some(v) => from_json(spec.ty, v),
            });
            if let Err(reason) = res {
                dead.push(Some(no), &reason, line);
            }
        })
    }

    fn pending_rows(&self) -> usize {
        self.writer.rows()
    }

    fn finish(&mut self) -> RecordBatch {
        self.writer.finish()
    }
}
