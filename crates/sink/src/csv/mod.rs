//! A CSV file with a header line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use serde::Deserialize;
use weir_core::{Error, Result, Sink};

const fn default_true() -> bool {
    true
}

/// `[sink.NAME] type = "csv"`: writes rows as CSV (RFC 4180 quoting).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// Output file; created with its parent directories, replaced if it exists.
    pub path: PathBuf,
    /// Write a header line first (default true).
    #[serde(default = "default_true")]
    pub header: bool,
}

/// The CSV file sink.
pub struct CsvSink {
    path: PathBuf,
    out: BufWriter<File>,
    header_pending: bool,
    text: String,
}

impl CsvSink {
    /// Creates the file.
    pub fn create(cfg: &CsvConfig) -> Result<Self> {
        Ok(CsvSink {
            out: crate::create(&cfg.path)?,
            path: cfg.path.clone(),
            header_pending: cfg.header,
            text: String::new(),
        })
    }
}

impl Sink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.text.clear();
        if std::mem::take(&mut self.header_pending) {
            crate::encode::csv_header(batch, &mut self.text);
        }
        for row in 0..batch.num_rows() {
            crate::encode::csv_line(batch, row, &mut self.text);
        }
        self.out
            .write_all(self.text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.path.display()), e))
    }
}
