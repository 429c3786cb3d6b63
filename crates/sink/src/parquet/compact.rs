//! Compaction: merges a table's small files, partition by partition, without a concurrent
//! reader seeing a row twice or missing one.
//!
//! For each partition folder with two or more files, none written to within `min_age`:
//! the files are read and written as one file into a folder outside the table, which is then
//! swapped with the partition folder in one atomic `renameat2(RENAME_EXCHANGE)`. A reader lists
//! either the old files or the merged one, never both or neither, and a reader that listed the
//! old files reads them to the end: it holds a [`TableLock`] shared, and the swap waits for it.
//! A file a sink committed into the partition during the merge is moved into the new folder,
//! not lost.
//!
//! `min_age` (default one hour) keeps compaction away from partitions a running sink still
//! writes, and from files of epochs a restart could still cut (a merged file is named after
//! the newest epoch it holds).

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use weir_core::{Error, Result};

use super::{epoch_of, fsync_dir, io, pq};

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Partitions merged.
    pub partitions: usize,
    /// Files before and after, over the merged partitions.
    pub files_before: usize,
    /// Files after.
    pub files_after: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Partitions left alone because they were written to within `min_age`.
    pub too_recent: usize,
}

/// Swaps two directories atomically.
fn exchange(a: &Path, b: &Path) -> Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    // SAFETY: both paths are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            format!("swapping {} and {}", a.display(), b.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A lock on a table that orders readers and compaction's swaps: a query holds it shared from
/// listing the table's files to its last read, compaction holds it exclusively while it swaps
/// a partition. So a query sees the files it listed until it has read them, whatever
/// compaction does meanwhile, and compaction never waits for a query during its merge, only
/// for the instant of its swap. It is an advisory `flock` on the table directory itself (a
/// read-only open: querying needs no write permission), released when dropped.
pub struct TableLock(#[allow(dead_code)] File);

impl TableLock {
    /// Waits for and takes the shared lock.
    pub fn shared(table: &Path) -> Result<TableLock> {
        Self::take(table, libc::LOCK_SH)
    }

    /// Waits for and takes the exclusive lock.
    fn exclusive(table: &Path) -> Result<TableLock> {
        Self::take(table, libc::LOCK_EX)
    }

    fn take(table: &Path, how: libc::c_int) -> Result<TableLock> {
        use std::os::fd::AsRawFd;
        let dir = File::open(table).map_err(io(format!("opening {}", table.display())))?;
        loop {
            // SAFETY: `dir` is an open descriptor for the duration of the call.
            if unsafe { libc::flock(dir.as_raw_fd(), how) } == 0 {
                return Ok(TableLock(dir));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io(format!("locking {}", table.display()), e));
            }
        }
    }
}

/// Leaf folders of `table` holding Parquet files, with their files.
fn partitions(table: &Path) -> Result<Vec<(PathBuf, Vec<PathBuf>)>> {
    let mut out = Vec::new();
    let mut stack = vec![table.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut files = Vec::new();
        for e in fs::read_dir(&d).map_err(io(format!("listing {}", d.display())))? {
            let e = e.map_err(io(format!("listing {}", d.display())))?;
            let p = e.path();
            // The entry's own type: a symbolic link (weir never makes one) is neither walked
            // into nor merged, so compaction never moves files out of someone's folder.
            let ty = e
                .file_type()
                .map_err(io(format!("reading {}", p.display())))?;
            if ty.is_dir() {
                stack.push(p);
            } else if ty.is_file() && p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
        if !files.is_empty() {
            files.sort();
            out.push((d, files));
        }
    }
    out.sort();
    Ok(out)
}

/// Merges the small files of the table at `table` (see the module docs).
pub fn compact(table: &Path, min_age: Duration) -> Result<Compacted> {
    if !table.join(super::TABLE_META).is_file() {
        return Err(Error::config(
            "table",
            format!(
                "{} is not a weir table (no {})",
                table.display(),
                super::TABLE_META
            ),
        ));
    }
    let name = table
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let work = table.with_file_name(format!(".{name}.compact"));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid")))
        .build();
    let mut report = Compacted::default();
    let now = SystemTime::now();
    for (dir, files) in partitions(table)? {
        if files.len() < 2 {
            continue;
        }
        let newest = files
            .iter()
            .filter_map(|f| f.metadata().and_then(|m| m.modified()).ok())
            .max()
            .unwrap_or(now);
        if now.duration_since(newest).unwrap_or_default() < min_age {
            report.too_recent += 1;
            continue;
        }
        let rel = dir.strip_prefix(table).unwrap_or(Path::new(""));
        let fresh = work.join(rel);
        if fresh.exists() {
            fs::remove_dir_all(&fresh).map_err(io(format!("removing {}", fresh.display())))?;
        }
        fs::create_dir_all(&fresh).map_err(io(format!("creating {}", fresh.display())))?;
        let epoch = files
            .iter()
            .filter_map(|f| epoch_of(&f.file_name()?.to_string_lossy()))
            .max()
            .unwrap_or(0);
        let merged = fresh.join(format!(
            "part-{epoch:010}-c{}.parquet",
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        ));
        let mut writer: Option<ArrowWriter<File>> = None;
        let mut rows = 0u64;
        for f in &files {
            let file = File::open(f).map_err(io(format!("opening {}", f.display())))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(pq(format!("reading {}", f.display())))?;
            for b in reader {
                let b = b.map_err(|e| {
                    Error::io(format!("reading {}", f.display()), std::io::Error::other(e))
                })?;
                if writer.is_none() {
                    let out = File::create(&merged)
                        .map_err(io(format!("creating {}", merged.display())))?;
                    writer = Some(
                        ArrowWriter::try_new(out, b.schema(), Some(props.clone()))
                            .map_err(pq(format!("starting {}", merged.display())))?,
                    );
                }
                rows += b.num_rows() as u64;
                writer
                    .as_mut()
                    .expect("created above")
                    .write(&b)
                    .map_err(pq(format!("writing {}", merged.display())))?;
            }
        }
        if let Some(w) = writer {
            let f = w
                .into_inner()
                .map_err(pq(format!("finishing {}", merged.display())))?;
            f.sync_all()
                .map_err(io(format!("syncing {}", merged.display())))?;
        }
        fsync_dir(&fresh)?;
        let swap = TableLock::exclusive(table)?;
        exchange(&fresh, &dir)?;
        // `fresh` now holds the old files; anything there that was not merged arrived during
        // the merge: it moves into the table.
        for e in fs::read_dir(&fresh).map_err(io(format!("listing {}", fresh.display())))? {
            let p = e
                .map_err(io(format!("listing {}", fresh.display())))?
                .path();
            let merged_in = files.iter().any(|f| f.file_name() == p.file_name());
            if !merged_in {
                if let Some(n) = p.file_name() {
                    fs::rename(&p, dir.join(n)).map_err(io(format!("moving {}", p.display())))?;
                }
            }
        }
        fsync_dir(&dir)?;
        // Queries that listed the old files finished before the swap: nobody reads them now.
        drop(swap);
        fs::remove_dir_all(&fresh).map_err(io(format!("removing {}", fresh.display())))?;
        report.partitions += 1;
        report.files_before += files.len();
        report.files_after += 1;
        report.rows += rows;
    }
    if work.exists() {
        let _ = fs::remove_dir_all(&work);
    }
    Ok(report)
}
