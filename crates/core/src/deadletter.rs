//! Dead letters: records a node could not use, kept as data with the reason.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::fields::{DL_LINE, DL_NODE, DL_RAW, DL_REASON};

/// Longest raw record kept in a dead letter; the rest is cut (the reason says how long it was).
pub const MAX_RAW: usize = 4096;

/// Schema of the errors port of every node: `node, line, reason, raw`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(DL_NODE, DataType::Utf8, false),
        Field::new(DL_LINE, DataType::UInt64, true),
        Field::new(DL_REASON, DataType::Utf8, false),
        Field::new(DL_RAW, DataType::Utf8, false),
    ]))
}

/// Collects dead letters of one node until they are taken as a batch.
#[derive(Debug)]
pub struct DeadLetters {
    node: Arc<str>,
    nodes: StringBuilder,
    lines: UInt64Builder,
    reasons: StringBuilder,
    raw: StringBuilder,
    len: usize,
    total: u64,
    first: Vec<String>,
}

impl DeadLetters {
    /// An empty collector for the node named `node`.
    pub fn new(node: &str) -> Self {
        DeadLetters {
            node: node.into(),
            nodes: StringBuilder::new(),
            lines: UInt64Builder::new(),
            reasons: StringBuilder::new(),
            raw: StringBuilder::new(),
            len: 0,
            total: 0,
            first: Vec::new(),
        }
    }

    /// An empty collector for the stage at key path `path` (`stage.NAME`).
    pub fn of_stage(path: &str) -> Self {
        Self::new(path.strip_prefix("stage.").unwrap_or(path))
    }

    /// Records that the record at `line` (1-based, if known) was rejected for `reason`.
    pub fn push(&mut self, line: Option<u64>, reason: &str, raw: &[u8]) {
        let cut = &raw[..raw.len().min(MAX_RAW)];
        let text = String::from_utf8_lossy(cut);
        self.nodes.append_value(&*self.node);
        self.lines.append_option(line);
        self.reasons.append_value(reason);
        self.raw.append_value(text.as_ref());
        self.len += 1;
        self.total += 1;
        if self.first.len() < crate::metrics::KEPT_REASONS {
            let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
            self.first.push(format!("{at}{reason}"));
        }
    }

    /// Records that row `row` of `batch` was rejected for `reason`; the row, as a JSON object,
    /// is the raw text (an operator's record has no line).
    pub fn push_row(&mut self, reason: &str, batch: &arrow_array::RecordBatch, row: usize) {
        let mut text = String::from("{");
        for (i, f) in batch.schema().fields().iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            crate::value::write_json_str(f.name(), &mut text);
            text.push(':');
            match crate::value::Col::from_dyn(batch.column(i).as_ref()) {
                Some(c) => c.write_json(row, &mut text),
                None => text.push_str("null"),
            }
        }
        text.push('}');
        self.push(None, reason, text.as_bytes());
    }

    /// Sends the waiting dead letters on the errors port of `out`.
    pub fn emit(&mut self, out: &mut crate::Emitter) {
        if let Some(b) = self.take() {
            out.side(crate::Port::Errors, b);
        }
    }

    /// Dead letters collected since the last [`DeadLetters::take`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no dead letter is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Dead letters collected since this collector was made.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The first few reasons, with line numbers.
    pub fn first_reasons(&self) -> &[String] {
        &self.first
    }

    /// Takes the waiting dead letters as a batch, or `None` if there are none.
    pub fn take(&mut self) -> Option<RecordBatch> {
        if self.len == 0 {
            return None;
        }
        self.len = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.nodes.finish()),
            Arc::new(self.lines.finish()),
            Arc::new(self.reasons.finish()),
            Arc::new(self.raw.finish()),
        ];
        RecordBatch::try_new(schema(), cols).ok()
    }
}
