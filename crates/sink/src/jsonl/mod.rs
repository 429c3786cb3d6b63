//! A JSON-lines file: one object per row.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use serde::Deserialize;
use weir_core::{Result, Sink};

use crate::outfile::OutFile;

/// `[sink.NAME] type = "jsonl"`: writes each row as a JSON object on its own line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Output file; created with its parent directories, replaced if it exists (with
    /// checkpoints, a resumed run continues it instead).
    pub path: PathBuf,
}

/// The JSON-lines file sink.
pub struct JsonlSink {
    out: OutFile,
    line: String,
}

impl JsonlSink {
    /// A sink for the file, created on the first row (or at the end, empty).
    pub fn create(cfg: &JsonlConfig) -> Result<Self> {
        Ok(JsonlSink {
            out: OutFile::new(cfg.path.clone()),
            line: String::new(),
        })
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.line.clear();
        crate::encode::json_lines(batch, 0..batch.num_rows(), &mut self.line);
        self.out.write(self.line.as_bytes())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }

    crate::outfile::delegate_checkpoints!(out);
}
