//! weir-sink owns where results leave weir: standard output ([`stdout`]: an aligned table on
//! a terminal, JSON lines when piped), JSON-lines files ([`jsonl`]), CSV files ([`csv`]),
//! Parquet tables ([`parquet`]), PostgreSQL tables ([`postgres`]), webhooks ([`webhook`]) and
//! rolling compressed archives ([`archive`]).
//!
//! Every sink implements [`weir_core::Sink`] and runs on its own thread. Rows are rendered by
//! the shared encoders in [`encode`], so a value prints the same in every sink: timestamps as
//! RFC 3339 UTC, nulls as JSON `null` or an empty CSV cell.
//!
//! ```
//! use weir_sink::encode::json_line;
//! use arrow_array::{RecordBatch, Int64Array};
//! use std::sync::Arc;
//! let b = RecordBatch::try_from_iter([("count", Arc::new(Int64Array::from(vec![3])) as _)]).unwrap();
//! let mut s = String::new();
//! json_line(&b, 0, &mut s);
//! assert_eq!(s, "{\"count\":3}\n");
//! ```

pub mod archive;
pub mod csv;
pub mod encode;
pub mod jsonl;
mod outfile;
pub mod parquet;
pub mod postgres;
pub mod stdout;
pub mod webhook;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use weir_core::{Error, Result};

/// Opens `path` for appending (creating it and missing parent directories).
fn append(path: &Path) -> Result<BufWriter<File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating directory {}", dir.display()), e))?;
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}
