//! A CSV file with a header line.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use serde::Deserialize;
use weir_core::{Result, Sink};

use crate::outfile::OutFile;

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
    out: OutFile,
    header: bool,
    text: String,
}

impl CsvSink {
    /// A sink for the file, created on the first row (or at the end, empty).
    pub fn create(cfg: &CsvConfig) -> Result<Self> {
        Ok(CsvSink {
            out: OutFile::new(cfg.path.clone()),
            header: cfg.header,
            text: String::new(),
        })
    }
}

impl Sink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.text.clear();
        // The header goes first in the file, also in a run resumed from a checkpoint.
        if self.header && self.out.len() == 0 {
            crate::encode::csv_header(batch, &mut self.text);
        }
        for row in 0..batch.num_rows() {
            crate::encode::csv_line(batch, row, &mut self.text);
        }
        self.out.write(self.text.as_bytes())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }

    crate::outfile::delegate_checkpoints!(out);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;

    use super::*;

    fn batch(v: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(v.to_vec())) as _)]).unwrap()
    }

    /// With checkpoints, a run resumed after a crash continues the file: the header stays the
    /// first line, once, and rows after the checkpoint are cut and written again.
    #[test]
    fn the_header_is_written_once_across_restarts() {
        let d = tempfile::tempdir().unwrap();
        let cfg = CsvConfig {
            path: d.path().join("out.csv"),
            header: true,
        };
        let mut s = CsvSink::create(&cfg).unwrap();
        s.recover(None).unwrap();
        s.write(&batch(&[1, 2])).unwrap();
        let st = s.pre_commit(1).unwrap();
        s.commit(1).unwrap();
        s.write(&batch(&[3])).unwrap();
        s.pre_commit(2).unwrap(); // staged, never committed: the crash comes first
        let mut again = CsvSink::create(&cfg).unwrap();
        again.recover(Some(&st)).unwrap();
        again.write(&batch(&[3])).unwrap();
        again.pre_commit(2).unwrap();
        again.commit(2).unwrap();
        again.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&cfg.path).unwrap(), "n\n1\n2\n3\n");
    }
}
