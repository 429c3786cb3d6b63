//! A JSON-lines file: one object per row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use serde::Deserialize;
use weir_core::{Error, Result, Sink};

/// `[sink.NAME] type = "jsonl"`: writes each row as a JSON object on its own line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Output file; created with its parent directories, replaced if it exists.
    pub path: PathBuf,
}

/// The JSON-lines file sink.
pub struct JsonlSink {
    path: PathBuf,
    out: BufWriter<File>,
    line: String,
}

impl JsonlSink {
    /// Creates the file.
    pub fn create(cfg: &JsonlConfig) -> Result<Self> {
        Ok(JsonlSink {
            out: crate::create(&cfg.path)?,
            path: cfg.path.clone(),
            line: String::new(),
        })
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.line.clear();
        crate::encode::json_lines(batch, 0..batch.num_rows(), &mut self.line);
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.path.display()), e))
    }
}
