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
pub mod msgid;
mod outfile;
pub mod owned;
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

/// Maps an I/O error to weir's, saying what was being done.
fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Regular files under `dir`, recursively, as (folder relative to `dir`, name), sorted; none
/// when `dir` does not exist. Fails when `dir` is a symbolic link (callers delete from it).
fn files_under(dir: &Path) -> Result<Vec<(String, String)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            // The entry's own type: a symbolic link is neither walked into nor listed, so
            // nothing behind one is ever removed.
            let ty = e.file_type()?;
            if ty.is_dir() {
                walk(root, &e.path(), out)?;
            } else if ty.is_file() {
                let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
                out.push((
                    rel.to_string_lossy().into_owned(),
                    e.file_name().to_string_lossy().into_owned(),
                ));
            }
        }
        Ok(())
    }
    if let Some(p) = owned::symlink_problem(dir) {
        return Err(Error::config("path", p));
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out).map_err(io(format!("listing {}", dir.display())))?;
    }
    out.sort();
    Ok(out)
}

/// The rows `rows` of `batch`, in that order (a batch split by partition or folder).
fn take_rows(batch: &arrow_array::RecordBatch, rows: Vec<u32>) -> Result<arrow_array::RecordBatch> {
    let idx = arrow_array::UInt32Array::from(rows);
    let cols = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &idx, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(|cols| arrow_array::RecordBatch::try_new(batch.schema(), cols))
        .map_err(|e| Error::Internal(format!("splitting a batch by partition: {e}")))?;
    Ok(cols)
}
