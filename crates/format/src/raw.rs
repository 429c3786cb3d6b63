//! Keeps each record's original line beside its parsed fields (`raw_field = "line"` on a
//! source), so a raw archive can write the lines exactly as they arrived.
//!
//! The wrapper hands its parser one line at a time and adds the line to the raw column
//! whenever the parser produced a row for it, so it works with every format, keeps rows and
//! lines aligned whatever the parser skips (a CSV header, blank lines, dead letters), and
//! costs nothing when no one asks for the raw line.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use weir_core::deadletter::DeadLetters;
use weir_core::parse::for_each_line;
use weir_core::Parser;

/// A parser whose batches carry one more column: the line each row came from, as text.
pub struct WithRaw {
    inner: Box<dyn Parser>,
    schema: SchemaRef,
    raw: StringBuilder,
}

impl WithRaw {
    /// Wraps `inner`; the line goes to a last column named `field`.
    pub fn new(inner: Box<dyn Parser>, field: &str) -> Self {
        let mut fields: Vec<Field> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(field, DataType::Utf8, false));
        WithRaw {
            inner,
            schema: Arc::new(Schema::new(fields)),
            raw: StringBuilder::new(),
        }
    }
}

impl Parser for WithRaw {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        // Lines are handed over with their `\n` so the parser sees what it would have seen.
        let mut start = 0usize;
        for_each_line(chunk, first_line, |no, line| {
            let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i + 1);
            let before = self.inner.pending_rows();
            self.inner.parse_chunk(&chunk[start..end], no, dead);
            for _ in before..self.inner.pending_rows() {
                match std::str::from_utf8(line) {
                    Ok(s) => self.raw.append_value(s),
                    Err(_) => self.raw.append_value(String::from_utf8_lossy(line)),
                }
            }
            start = end;
        })
    }

    fn pending_rows(&self) -> usize {
        self.inner.pending_rows()
    }

    fn chunks_independent(&self) -> bool {
        self.inner.chunks_independent()
    }

    fn take_counts(&mut self) -> weir_core::parse::ParseCounts {
        self.inner.take_counts()
    }

    fn finish(&mut self) -> RecordBatch {
        let batch = self.inner.finish();
        let raw = self.raw.finish();
        debug_assert_eq!(raw.len(), batch.num_rows());
        let mut cols = batch.columns().to_vec();
        cols.push(Arc::new(raw));
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .expect("one raw line per row, after the parser's columns")
    }
}
