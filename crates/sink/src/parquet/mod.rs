//! A Parquet table: a directory of typed, zstd-compressed Parquet files partitioned by time,
//! with the table's description beside them, readable by `weir query`, DuckDB, pyarrow or
//! Spark while weir writes.
//!
//! ```text
//! tables/status_counts/
//!   _weir_table.json                         name, columns and types, partitioning
//!   dt=2026-11-21/hour=14/part-0000000042-0001.parquet
//! tables/.status_counts.weir/                files being written or waiting for a commit
//! ```
//! Files are written in the staging folder and renamed into the table when complete, so a
//! reader never sees a partial file. With checkpoints a file belongs to an epoch (its number is
//! in the name) and is renamed into the table when that epoch's checkpoint is durable; on
//! restart from epoch N the files staged for N are committed if they were not, and staged or
//! committed files of later epochs are removed, so no row is lost or written twice. Without
//! checkpoints the table is replaced when the run starts and files are committed when they
//! reach `roll_size`, after `roll_interval`, and at the end.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use weir_core::config::{ByteSize, Duration};
use weir_core::{Error, Result, Sink};

use crate::io;

mod compact;

pub use compact::{compact, Compacted, TableLock};

/// The table description file in a table directory.
pub const TABLE_META: &str = "_weir_table.json";

/// How rows are spread over folders by time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// `dt=YYYY-MM-DD/hour=HH/` (default).
    #[default]
    Hour,
    /// `dt=YYYY-MM-DD/`.
    Day,
    /// One folder.
    None,
}

/// Compression of the Parquet pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// zstd level 3 (default).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// gzip (for readers without zstd).
    Gzip,
    /// Uncompressed.
    None,
}

const fn default_roll_size() -> ByteSize {
    ByteSize::from_bytes(128 << 20)
}

const fn default_roll_interval() -> Duration {
    Duration::from_ms(60_000)
}

/// `[sink.NAME] type = "parquet"`: a time-partitioned Parquet table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetConfig {
    /// The table directory, e.g. `"tables/status_counts"`; the table is named after its last
    /// component (`weir query "SELECT … FROM status_counts"`).
    pub path: PathBuf,
    /// The timestamp column that places rows in partitions (default: `window_start` if the
    /// input has it, else its first timestamp column; none: one folder).
    #[serde(default)]
    pub partition_field: Option<String>,
    /// `"hour"` (default), `"day"` or `"none"`.
    #[serde(default)]
    pub partition: Granularity,
    /// `"zstd"` (default), `"snappy"`, `"gzip"` or `"none"`.
    #[serde(default)]
    pub compression: Codec,
    /// zstd level, 1–22 (default 3).
    #[serde(default)]
    pub zstd_level: Option<i32>,
    /// A file is closed and committed at about this size (default `"128MiB"`).
    #[serde(default = "default_roll_size")]
    pub roll_size: ByteSize,
    /// Without checkpoints, files are committed at least this often (default `"1m"`); with
    /// checkpoints they are committed at every checkpoint.
    #[serde(default = "default_roll_interval")]
    pub roll_interval: Duration,
    /// Merge small files automatically: partitions whose files are all older than this are
    /// compacted in the background (as `weir compact` does), at most every 10 minutes.
    /// Default: off.
    #[serde(default)]
    pub compact_after: Option<Duration>,
}

impl ParquetConfig {
    /// The table at `path` with every other setting at its default (what a pipeline file with
    /// only `path` gives).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ParquetConfig {
            path: path.into(),
            partition_field: None,
            partition: Granularity::default(),
            compression: Codec::default(),
            zstd_level: None,
            roll_size: default_roll_size(),
            roll_interval: default_roll_interval(),
            compact_after: None,
        }
    }

    /// Checks `partition_field` against the input's schema.
    pub fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        let Some(f) = &self.partition_field else {
            return Vec::new();
        };
        let problem = match schema.column_with_name(f) {
            None => format!("the input has no column {f:?}"),
            Some((_, fld)) if !matches!(fld.data_type(), DataType::Timestamp(_, _)) => {
                format!("{f:?} is {}, not a timestamp", fld.data_type())
            }
            Some(_) => return Vec::new(),
        };
        vec![Error::config(format!("{path}.partition_field"), problem)]
    }
}

/// What `_weir_table.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMeta {
    /// Format of this file.
    pub format: u32,
    /// The table's name.
    pub name: String,
    /// Columns: name and Arrow type, in order.
    pub columns: Vec<(String, String)>,
    /// The partitioning column, if any.
    pub partition_field: Option<String>,
    /// Partition granularity.
    pub partition: Granularity,
}

/// One file being written.
struct OpenFile {
    writer: ArrowWriter<File>,
    /// Its staging name, without `.inprogress`.
    name: String,
    /// Partition folder relative to the table, e.g. `dt=2026-11-21/hour=14`.
    partition: String,
    opened: Instant,
}

/// A closed file waiting for its commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Staged {
    epoch: u64,
    partition: String,
    name: String,
}

/// Checkpoint state: the files staged and not yet committed at the barrier.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    epoch: u64,
    files: Vec<Staged>,
}

const STATE_VERSION: u32 = 1;

/// The Parquet table sink.
pub struct ParquetSink {
    cfg: ParquetConfig,
    table: PathBuf,
    staging: PathBuf,
    props: WriterProperties,
    schema: Option<SchemaRef>,
    time_col: Option<usize>,
    open: BTreeMap<String, OpenFile>,
    staged: Vec<Staged>,
    /// Epoch the files being written belong to (1 + the last barrier).
    epoch: u64,
    checkpointed: bool,
    /// Sequence number of the next file of this epoch.
    seq: u32,
    started: bool,
    /// The background compaction, and when the last one started.
    compaction: Option<std::thread::JoinHandle<Result<Compacted>>>,
    last_compaction: Option<Instant>,
    compact_every: std::time::Duration,
}

/// Least time between two automatic compactions.
const COMPACT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn pq(what: String) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
    move |e| Error::io(what, std::io::Error::other(e))
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

/// The folder of rows whose time is null.
pub(crate) const NULL_FOLDER: &str = "dt=__null__";

/// The partition folder of event time `ms`.
pub(crate) fn partition_of(ms: i64, g: Granularity) -> String {
    if g == Granularity::None {
        return String::new();
    }
    let t = weir_core::time::format_rfc3339_ms(ms);
    match g {
        Granularity::Hour => format!("dt={}/hour={}", &t[..10], &t[11..13]),
        _ => format!("dt={}", &t[..10]),
    }
}

/// The epoch in a file name `part-<epoch>-<seq>.parquet`.
fn epoch_of(name: &str) -> Option<u64> {
    name.strip_prefix("part-")?.split('-').next()?.parse().ok()
}

impl ParquetSink {
    /// A sink for the table at `cfg.path` (nothing is touched before the run starts).
    pub fn create(cfg: &ParquetConfig) -> Result<Self> {
        let name = cfg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::config("path", "a table path needs a last component"))?;
        let compression = match cfg.compression {
            Codec::Zstd => Compression::ZSTD(
                ZstdLevel::try_new(cfg.zstd_level.unwrap_or(3))
                    .map_err(|e| Error::config("zstd_level", e.to_string()))?,
            ),
            Codec::Snappy => Compression::SNAPPY,
            Codec::Gzip => Compression::GZIP(Default::default()),
            Codec::None => Compression::UNCOMPRESSED,
        };
        Ok(ParquetSink {
            staging: cfg.path.with_file_name(format!(".{name}.weir")),
            table: cfg.path.clone(),
            cfg: cfg.clone(),
            props: WriterProperties::builder()
                .set_compression(compression)
                .build(),
            schema: None,
            time_col: None,
            open: BTreeMap::new(),
            staged: Vec::new(),
            epoch: 0,
            checkpointed: false,
            seq: 0,
            started: false,
            compaction: None,
            last_compaction: None,
            compact_every: COMPACT_EVERY,
        })
    }

    /// Refuses a table path weir does not own (see [`crate::owned`]) and a staging folder
    /// that is a symbolic link.
    fn claim(&self) -> Result<()> {
        let problem = crate::owned::table_problem(&self.table, TABLE_META)
            .or_else(|| crate::owned::symlink_problem(&self.staging));
        match problem {
            Some(p) => Err(Error::config("path", p)),
            None => Ok(()),
        }
    }

    /// Without checkpoints: the run replaces the table.
    fn start_fresh(&mut self) -> Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        self.claim()?;
        // weir's own files only: a table folder may hold what a user put there.
        crate::owned::remove_own_files(&self.table, &|n| epoch_of(n).is_some())?;
        crate::owned::remove_own_files(&self.staging, &|_| true)?;
        fs::create_dir_all(&self.staging)
            .map_err(io(format!("creating {}", self.staging.display())))
    }

    fn bind(&mut self, schema: &SchemaRef) -> Result<()> {
        if self.schema.is_some() {
            return Ok(());
        }
        let field = match &self.cfg.partition_field {
            Some(f) => Some(f.clone()),
            None if self.cfg.partition == Granularity::None => None,
            None => schema
                .column_with_name("window_start")
                .or_else(|| {
                    schema
                        .fields()
                        .iter()
                        .enumerate()
                        .find(|(_, f)| matches!(f.data_type(), DataType::Timestamp(_, _)))
                        .map(|(i, f)| (i, f.as_ref()))
                })
                .map(|(_, f)| f.name().clone()),
        };
        self.time_col = match &field {
            Some(f) => {
                let (i, fld) = schema.column_with_name(f).ok_or_else(|| {
                    Error::config("partition_field", format!("the input has no column {f:?}"))
                })?;
                if !matches!(fld.data_type(), DataType::Timestamp(_, _)) {
                    return Err(Error::config(
                        "partition_field",
                        format!("{f:?} is {}, not a timestamp", fld.data_type()),
                    ));
                }
                Some(i)
            }
            None => None,
        };
        let name = self
            .table
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = TableMeta {
            format: 1,
            name,
            columns: schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
            partition_field: field,
            partition: if self.time_col.is_some() {
                self.cfg.partition
            } else {
                Granularity::None
            },
        };
        fs::create_dir_all(&self.table)
            .map_err(io(format!("creating {}", self.table.display())))?;
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::Internal(format!("encoding the table description: {e}")))?;
        let tmp = self.table.join(format!("{TABLE_META}.tmp"));
        fs::write(&tmp, json).map_err(io(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, self.table.join(TABLE_META))
            .map_err(io(format!("writing {}", self.table.display())))?;
        self.schema = Some(schema.clone());
        Ok(())
    }

    fn writer(&mut self, partition: &str) -> Result<&mut OpenFile> {
        if !self.open.contains_key(partition) {
            self.seq += 1;
            let name = format!("part-{:010}-{:04}.parquet", self.epoch, self.seq);
            let dir = self.staging.join(partition);
            crate::owned::create_dir_inside(&self.staging, &dir)?;
            let path = dir.join(format!("{name}.inprogress"));
            let f = File::create(&path).map_err(io(format!("creating {}", path.display())))?;
            let schema = self.schema.clone().expect("bound before writing");
            let writer = ArrowWriter::try_new(f, schema, Some(self.props.clone()))
                .map_err(pq(format!("starting {}", path.display())))?;
            self.open.insert(
                partition.to_string(),
                OpenFile {
                    writer,
                    name,
                    partition: partition.to_string(),
                    opened: Instant::now(),
                },
            );
        }
        Ok(self.open.get_mut(partition).expect("inserted above"))
    }

    /// Closes one file: complete Parquet footer, fsync, `.inprogress` dropped; staged.
    fn close(&mut self, partition: &str) -> Result<()> {
        let Some(f) = self.open.remove(partition) else {
            return Ok(());
        };
        let dir = self.staging.join(&f.partition);
        let path = dir.join(format!("{}.inprogress", f.name));
        let file = f
            .writer
            .into_inner()
            .map_err(pq(format!("finishing {}", path.display())))?;
        file.sync_all()
            .map_err(io(format!("syncing {}", path.display())))?;
        fs::rename(&path, dir.join(&f.name)).map_err(io(format!("renaming {}", path.display())))?;
        self.staged.push(Staged {
            epoch: self.epoch,
            partition: f.partition,
            name: f.name,
        });
        Ok(())
    }

    fn close_all(&mut self) -> Result<()> {
        let parts: Vec<String> = self.open.keys().cloned().collect();
        for p in parts {
            self.close(&p)?;
        }
        Ok(())
    }

    /// Starts a background compaction if one is due (see `compact_after`); reports the
    /// previous one when it has finished.
    fn maybe_compact(&mut self, wait: bool) -> Result<()> {
        if let Some(h) = self.compaction.take() {
            if wait || h.is_finished() {
                let r = h
                    .join()
                    .map_err(|_| Error::Internal("the compaction thread panicked".into()))??;
                if r.partitions > 0 {
                    tracing::info!(table = %self.table.display(), partitions = r.partitions, files_before = r.files_before, files_after = r.files_after, "compacted");
                }
            } else {
                self.compaction = Some(h);
                return Ok(());
            }
        }
        let Some(age) = self.cfg.compact_after else {
            return Ok(());
        };
        if wait
            || self
                .last_compaction
                .is_some_and(|t| t.elapsed() < self.compact_every)
        {
            return Ok(());
        }
        self.last_compaction = Some(Instant::now());
        let table = self.table.clone();
        self.compaction = Some(
            std::thread::Builder::new()
                .name("weir-compact".into())
                .spawn(move || compact(&table, age.to_std()))
                .map_err(|e| Error::io("starting the compaction thread", e))?,
        );
        Ok(())
    }

    /// Moves staged files into the table, in epoch order up to `epoch`.
    fn commit_upto(&mut self, epoch: u64) -> Result<()> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.staged)
            .into_iter()
            .partition(|s| s.epoch <= epoch);
        self.staged = later;
        let mut dirs = std::collections::BTreeSet::new();
        for s in now {
            self.publish(&s)?;
            dirs.insert(self.table.join(&s.partition));
        }
        let committed = !dirs.is_empty();
        for d in dirs {
            fsync_dir(&d)?;
        }
        if committed && self.table.join(TABLE_META).exists() {
            self.maybe_compact(false)?;
        }
        Ok(())
    }

    /// Renames one staged file into the table (a no-op if it is there already).
    fn publish(&self, s: &Staged) -> Result<()> {
        let from = self.staging.join(&s.partition).join(&s.name);
        let dir = self.table.join(&s.partition);
        let to = dir.join(&s.name);
        if !from.exists() && to.exists() {
            return Ok(());
        }
        // A partition folder replaced by a link would take the file into someone's folder.
        crate::owned::create_dir_inside(&self.table, &dir)?;
        fs::rename(&from, &to).map_err(io(format!("committing {}", from.display())))
    }

    fn roll_due(&self) -> Vec<String> {
        let size = self.cfg.roll_size.bytes as usize;
        let age = self.cfg.roll_interval.to_std();
        self.open
            .values()
            .filter(|f| {
                f.writer.in_progress_size() + f.writer.bytes_written() >= size
                    || (!self.checkpointed && f.opened.elapsed() >= age)
            })
            .map(|f| f.partition.clone())
            .collect()
    }

    fn roll(&mut self) -> Result<()> {
        let due = self.roll_due();
        if due.is_empty() {
            return Ok(());
        }
        for p in due {
            self.close(&p)?;
        }
        if !self.checkpointed {
            self.commit_upto(u64::MAX)?;
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.checkpointed {
            self.start_fresh()?;
        }
        self.bind(&batch.schema())?;
        let g = self.cfg.partition;
        let groups: Vec<(String, Option<Vec<u32>>)> = match self.time_col {
            None => vec![(String::new(), None)],
            Some(c) => {
                let times = batch
                    .column(c)
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(|| {
                        Error::Schema("the partition column is not in milliseconds".into())
                    })?;
                let mut by: BTreeMap<String, Vec<u32>> = BTreeMap::new();
                let (mut last_t, mut last_p) = (None, String::new());
                for (row, t) in times.iter().enumerate() {
                    // Null times go to a partition of their own.
                    let t = t.unwrap_or(i64::MIN);
                    if last_t != Some(t) {
                        last_p = if t == i64::MIN {
                            NULL_FOLDER.to_string()
                        } else {
                            partition_of(t, g)
                        };
                        last_t = Some(t);
                    }
                    by.entry(last_p.clone()).or_default().push(row as u32);
                }
                if by.len() == 1 {
                    vec![(by.into_keys().next().expect("one"), None)]
                } else {
                    by.into_iter().map(|(p, rows)| (p, Some(rows))).collect()
                }
            }
        };
        for (partition, rows) in groups {
            let part = match rows {
                None => batch.clone(),
                Some(rows) => crate::take_rows(batch, rows)?,
            };
            let table = self.table.display().to_string();
            let f = self.writer(&partition)?;
            f.writer
                .write(&part)
                .map_err(pq(format!("writing to table {table}")))?;
        }
        self.roll()
    }

    fn flush(&mut self) -> Result<()> {
        self.roll()
    }

    fn finish(&mut self) -> Result<()> {
        if !self.checkpointed {
            self.start_fresh()?;
        }
        self.close_all()?;
        self.commit_upto(u64::MAX)?;
        self.maybe_compact(true)?;
        if self.staging.exists() && crate::files_under(&self.staging)?.is_empty() {
            let _ = fs::remove_dir_all(&self.staging);
        }
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        true
    }

    fn recover(&mut self, state: Option<&[u8]>) -> Result<()> {
        self.checkpointed = true;
        self.started = true;
        self.claim()?;
        let st = match state {
            Some(b) => weir_core::state::decode::<State>("parquet sink", STATE_VERSION, b)?,
            None => State {
                epoch: 0,
                files: Vec::new(),
            },
        };
        for s in &st.files {
            self.publish(s)?;
        }
        // Anything else staged belongs to an epoch whose checkpoint never completed; files in
        // the table from epochs after the checkpoint (a fall-back to an older one) go too.
        for (part, name) in crate::files_under(&self.staging)? {
            let p = self.staging.join(&part).join(&name);
            fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
        }
        for (part, name) in crate::files_under(&self.table)? {
            if epoch_of(&name).is_some_and(|e| e > st.epoch || state.is_none()) {
                let p = self.table.join(&part).join(&name);
                tracing::info!(file = %p.display(), "removing a table file written after the checkpoint");
                fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
            }
        }
        self.epoch = st.epoch + 1;
        fs::create_dir_all(&self.staging)
            .map_err(io(format!("creating {}", self.staging.display())))
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>> {
        self.epoch = epoch;
        self.close_all()?;
        // Every file not yet committed. The runtime applies the previous epoch's commit before
        // this barrier, so these are this epoch's; listing all of them is the safe side.
        let files: Vec<Staged> = self.staged.clone();
        self.epoch = epoch + 1;
        self.seq = 0;
        weir_core::state::encode("parquet sink", STATE_VERSION, &State { epoch, files })
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        self.commit_upto(epoch)
    }
}

#[cfg(test)]
mod tests;
