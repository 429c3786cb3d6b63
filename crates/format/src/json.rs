//! JSON lines: one object per line, fields taken by a declared schema.
//!
//! Keys not declared are ignored. A line that is not a JSON object, or whose declared field
//! has the wrong type (`"count": "ten"` for an `int`), is a dead letter with the reason. Blank
//! lines are skipped without counting, as JSON-lines readers commonly do.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
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
}

impl JsonParser {
    /// A parser producing the fields in `projection` (all declared when `None`).
    pub fn new(cfg: &JsonConfig, projection: Option<&[String]>) -> Result<Self> {
        let keep = projection_mask(&cfg.fields, projection, "json")?;
        Ok(JsonParser {
            writer: RowWriter::new(cfg.fields.clone(), keep),
        })
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
            let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(line)
            {
                Ok(o) => o,
                Err(e) => {
                    dead.push(Some(no), &format!("not a JSON object: {e}"), line);
                    return;
                }
            };
            let res = self.writer.write(|_, spec| match obj.get(&spec.name) {
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
