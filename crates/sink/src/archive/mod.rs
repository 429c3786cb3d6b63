//! A rolling archive of records: compressed JSON lines (or raw lines, or Parquet) in time
//! folders, the way Flume's HDFS sink and Flink's file sink keep a stream for later.
//!
//! ```text
//! archive/logs/
//!   dt=1995-07-01/hour=00/part-19950701T000000123Z-0000000003-000001.jsonl.gz             finished
//!   dt=1995-07-01/hour=01/part-19950701T000000123Z-0000000007-000001.jsonl.gz.inprogress  being written
//!   window_end=19950701T000500Z/part-…-000001.log.gz      (window = "5m": one folder per window)
//! ```
//! A file is written as a sequence of complete compressed members (gzip members or zstd
//! frames; every gzip and zstd reader reads such a file as one stream): one per 1 MiB of
//! input, compressed on a pool of worker threads (`compress.rs`) and appended in order, and
//! one for what is left every `flush_interval`, so readers of the `.inprogress` file see
//! records a few seconds old and never a cut member. A file is finished (the suffix dropped) when it reaches
//! `roll_size`, after `roll_interval`, when the watermark passes the end of its folder's hour
//! or window (no more on-time records can arrive there), and at the end of input.
//!
//! Exactly once with checkpoints: at each barrier the open files' members are finished and
//! fsynced and their lengths go into the checkpoint; files finished since the last commit are
//! renamed only when the checkpoint is durable. After a crash the open files are cut back to
//! their checkpointed lengths and written on, finished files of the checkpoint are renamed,
//! and every file of this archive created after the checkpoint is removed, so the finished
//! files hold every record once. File names carry the run (the start of the lineage of
//! checkpoints), the epoch the file was opened in and a sequence number; sorted by name they
//! are in the order their records arrived.
//!
//! A checkpointed run that starts without a checkpoint (the first one, or `--reset-state`)
//! replays its input from the beginning, so it removes the archive's part files first: only
//! those weir can prove it wrote. Every run records its id in the archive's `_weir_runs` file
//! (one per line, synced) before it creates a file, and a file is removed only when its whole
//! name is a part-file name (`part-<run>-<epoch>-<seq>.<ext>`, optionally `.inprogress`) of a
//! run listed there. A user's `part-2024-report.txt` beside them is never touched, nor are
//! the files of an archive written before the list existed.
//!
//! Without checkpoints files are finished as they roll. An archive accumulates: a run adds
//! files and never removes finished ones (a `.inprogress` file left by an interrupted run
//! without checkpoints is left in place, with a warning).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use serde::{Deserialize, Serialize};
use weir_core::config::{ByteSize, Duration};
use weir_core::time::{format_rfc3339_ms, now_ms, Millis};
use weir_core::{Error, Result, Sink};

use crate::parquet::{
    fsync_dir, partition_of, Granularity, ParquetConfig, ParquetSink, NULL_FOLDER,
};
use crate::{files_under, io, take_rows};

mod compress;
#[cfg(test)]
mod tests;

use compress::{Members, Pool};

/// How records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// One JSON object per record (default); files `*.jsonl.gz`.
    #[default]
    Jsonl,
    /// The text of one field per line, as is: the original log lines when the source keeps
    /// them (`raw_field = "line"`); files `*.log.gz`.
    Lines,
    /// Parquet files, a table `weir query` reads (the `parquet` sink, partitioned by
    /// `time_field`).
    Parquet,
}

/// Compression of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveCodec {
    /// gzip, read by every tool (default for JSON lines and lines).
    Gzip,
    /// zstd: faster and smaller (default for Parquet).
    Zstd,
    /// None.
    None,
}

const fn default_roll_size() -> ByteSize {
    ByteSize::from_bytes(128 << 20)
}

const fn default_roll_interval() -> Duration {
    Duration::from_ms(3_600_000)
}

const fn default_flush_interval() -> Duration {
    Duration::from_ms(5_000)
}

/// The field `format = "lines"` writes unless told otherwise.
pub const DEFAULT_LINE_FIELD: &str = "line";

/// `[sink.NAME] type = "archive"`: rolling compressed files of the records, in time folders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// The archive directory, e.g. `"archive/logs"`.
    pub path: PathBuf,
    /// `"jsonl"` (default), `"lines"` or `"parquet"`.
    #[serde(default)]
    pub format: ArchiveFormat,
    /// The text field `format = "lines"` writes (default `"line"`, what a source's
    /// `raw_field = "line"` adds).
    #[serde(default)]
    pub line_field: Option<String>,
    /// `"gzip"` (default for jsonl and lines), `"zstd"` (default for parquet) or `"none"`.
    #[serde(default)]
    pub compression: Option<ArchiveCodec>,
    /// Compression level (gzip 0–9, default 6; zstd 1–22, default 3).
    #[serde(default)]
    pub level: Option<i32>,
    /// The timestamp field that places a record in a folder (default: the input's first
    /// timestamp field; with none, the time the record reached the sink).
    #[serde(default)]
    pub time_field: Option<String>,
    /// Folders: `"hour"` (`dt=YYYY-MM-DD/hour=HH/`, default), `"day"` or `"none"`.
    #[serde(default)]
    pub partition: Option<Granularity>,
    /// One folder per tumbling window of this size instead, named for the window's end
    /// (`window_end=19950701T000500Z/`): the reference job's raw lines of each window.
    #[serde(default)]
    pub window: Option<Duration>,
    /// A file is finished at about this compressed size (default `"128MiB"`).
    #[serde(default = "default_roll_size")]
    pub roll_size: ByteSize,
    /// A file is finished at this age at the latest (default `"1h"`).
    #[serde(default = "default_roll_interval")]
    pub roll_interval: Duration,
    /// Records reach the `.inprogress` file at least this often (default `"5s"`).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: Duration,
}

impl ArchiveConfig {
    /// The archive at `path` with every other setting at its default (what a pipeline file
    /// with only `path` gives).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ArchiveConfig {
            path: path.into(),
            format: ArchiveFormat::default(),
            line_field: None,
            compression: None,
            level: None,
            time_field: None,
            partition: None,
            window: None,
            roll_size: default_roll_size(),
            roll_interval: default_roll_interval(),
            flush_interval: default_flush_interval(),
        }
    }

    fn line_field(&self) -> &str {
        self.line_field.as_deref().unwrap_or(DEFAULT_LINE_FIELD)
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors = Vec::new();
        let mut bad =
            |key: &str, msg: String| errors.push(Error::config(format!("{path}.{key}"), msg));
        if self.window.is_some() && self.partition.is_some() {
            bad(
                "window",
                "set either partition (hour, day, none) or window (a folder per window), not both"
                    .into(),
            );
        }
        if let Some(w) = self.window {
            if w.ms <= 0 {
                bad("window", format!("expected a positive duration, got {w}"));
            }
            if self.format == ArchiveFormat::Parquet {
                bad(
                    "window",
                    "folders per window are for the jsonl and lines formats; a Parquet archive \
                     is partitioned by hour or day"
                        .into(),
                );
            }
        }
        if self.line_field.is_some() && self.format != ArchiveFormat::Lines {
            bad("line_field", "only used with format = \"lines\"".into());
        }
        let codec = self.codec();
        let range = match codec {
            ArchiveCodec::Gzip => 0..=9,
            ArchiveCodec::Zstd => 1..=22,
            ArchiveCodec::None => 0..=0,
        };
        if let Some(l) = self.level {
            if codec == ArchiveCodec::None || !range.contains(&l) {
                bad(
                    "level",
                    format!("{codec:?} takes a level in {range:?}, got {l}").to_lowercase(),
                );
            }
        }
        if self.format == ArchiveFormat::Parquet
            && codec == ArchiveCodec::Gzip
            && self.level.is_some()
        {
            bad("level", "Parquet pages use the default gzip level".into());
        }
        if self.roll_size.bytes == 0 {
            bad(
                "roll_size",
                "expected a size above zero, like \"128MiB\"".into(),
            );
        }
        if self.flush_interval.ms <= 0 || self.roll_interval.ms <= 0 {
            bad(
                "flush_interval",
                "flush_interval and roll_interval must be positive durations".into(),
            );
        }
        errors
    }

    /// Checks the fields the archive reads against its input's schema.
    pub fn check_schema(&self, path: &str, schema: &Schema) -> Vec<Error> {
        let mut errors = Vec::new();
        if self.format == ArchiveFormat::Lines {
            let f = self.line_field();
            let problem = match schema.column_with_name(f) {
                None => Some(format!(
                    "the input has no text field {f:?} to write as lines; a source keeps its \
                     lines with raw_field = {f:?}"
                )),
                Some((_, fld)) if fld.data_type() != &DataType::Utf8 => {
                    Some(format!("{f:?} is {}, not text", fld.data_type()))
                }
                Some(_) => None,
            };
            let key = if self.line_field.is_some() {
                "line_field"
            } else {
                "format"
            };
            errors.extend(problem.map(|p| Error::config(format!("{path}.{key}"), p)));
        }
        if let Some(f) = &self.time_field {
            let problem = match schema.column_with_name(f) {
                None => Some(format!("the input has no field {f:?}")),
                Some((_, fld)) if !matches!(fld.data_type(), DataType::Timestamp(_, _)) => {
                    Some(format!("{f:?} is {}, not a timestamp", fld.data_type()))
                }
                Some(_) => None,
            };
            errors.extend(problem.map(|p| Error::config(format!("{path}.time_field"), p)));
        }
        errors
    }

    /// Input fields the archive writes (`None`: all): `format = "lines"` needs only its line
    /// and the time that places it.
    pub fn required_fields(&self) -> Option<Vec<String>> {
        (self.format == ArchiveFormat::Lines).then(|| {
            let mut f = vec![self.line_field().to_string()];
            f.extend(self.time_field.clone());
            f
        })
    }

    fn codec(&self) -> ArchiveCodec {
        self.compression.unwrap_or(match self.format {
            ArchiveFormat::Parquet => ArchiveCodec::Zstd,
            _ => ArchiveCodec::Gzip,
        })
    }

    fn layout(&self) -> Layout {
        match (self.window, self.partition.unwrap_or_default()) {
            (Some(w), _) => Layout::Window(w.ms),
            (None, Granularity::Hour) => Layout::Hour,
            (None, Granularity::Day) => Layout::Day,
            (None, Granularity::None) => Layout::None,
        }
    }

    fn extension(&self) -> String {
        let base = match self.format {
            ArchiveFormat::Lines => "log",
            _ => "jsonl",
        };
        match self.codec() {
            ArchiveCodec::Gzip => format!("{base}.gz"),
            ArchiveCodec::Zstd => format!("{base}.zst"),
            ArchiveCodec::None => base.to_string(),
        }
    }
}

/// Creates the archive sink for `cfg` (a [`ParquetSink`] for `format = "parquet"`).
pub fn create(cfg: &ArchiveConfig) -> Result<Box<dyn Sink>> {
    if cfg.format == ArchiveFormat::Parquet {
        let pq = ParquetConfig {
            partition_field: cfg.time_field.clone(),
            partition: cfg.partition.unwrap_or_default(),
            compression: match cfg.codec() {
                ArchiveCodec::Gzip => crate::parquet::Codec::Gzip,
                ArchiveCodec::Zstd => crate::parquet::Codec::Zstd,
                ArchiveCodec::None => crate::parquet::Codec::None,
            },
            zstd_level: cfg.level,
            roll_size: cfg.roll_size,
            roll_interval: cfg.roll_interval,
            ..ParquetConfig::at(&cfg.path)
        };
        return Ok(Box::new(ParquetSink::create(&pq)?));
    }
    Ok(Box::new(ArchiveSink::new(cfg)))
}

/// Folders by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Hour,
    Day,
    None,
    /// Tumbling windows of this many milliseconds.
    Window(i64),
}

/// Rows of a batch in one folder: its span's start and end, and the rows (`None`: all).
type Span = (Millis, Millis, Option<Vec<u32>>);

/// Records with no time go to a folder of their own.
const NULL_TIME: Millis = i64::MIN;

impl Layout {
    /// Start and end of the folder holding time `t`.
    fn span(self, t: Millis) -> (Millis, Millis) {
        let unit = match self {
            _ if t == NULL_TIME => return (NULL_TIME, Millis::MAX),
            Layout::None => return (Millis::MIN + 1, Millis::MAX),
            Layout::Hour => 3_600_000,
            Layout::Day => 86_400_000,
            Layout::Window(w) => w,
        };
        let start = t.div_euclid(unit) * unit;
        (start, start.saturating_add(unit))
    }

    /// The folder of the span starting at `start`, relative to the archive.
    fn folder(self, start: Millis, end: Millis) -> String {
        match self {
            _ if start == NULL_TIME => NULL_FOLDER.to_string(),
            Layout::None => String::new(),
            Layout::Hour => partition_of(start, Granularity::Hour),
            Layout::Day => partition_of(start, Granularity::Day),
            Layout::Window(_) => format!("window_end={}", compact_time(end)),
        }
    }
}

/// `19950701T000500Z` (ISO 8601 basic format: no `:` in folder names), with milliseconds
/// only when there are some.
fn compact_time(ms: Millis) -> String {
    let t = format_rfc3339_ms(ms);
    let (secs, frac) = t.trim_end_matches('Z').split_at(19);
    let mut s: String = secs.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let frac = frac.trim_start_matches('.');
    if !frac.trim_matches('0').is_empty() {
        s.push_str(frac);
    }
    s.push('Z');
    s
}

/// A file as the checkpoint knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileRef {
    /// Folder relative to the archive.
    folder: String,
    /// Finished name; while open the file carries [`INPROGRESS`] after it.
    name: String,
    /// Bytes of complete members.
    len: u64,
    /// End of the folder's span (event time): the file is finished when the watermark passes.
    end: Millis,
    /// When it was opened (wall clock), for `roll_interval`.
    opened_ms: Millis,
}

/// A file finished in `epoch`, renamed when that epoch's checkpoint is durable.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Closed {
    epoch: u64,
    file: FileRef,
}

/// Checkpoint state.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    run: String,
    epoch: u64,
    open: Vec<FileRef>,
    closed: Vec<Closed>,
}

const STATE_VERSION: u32 = 1;

/// The suffix of a file being written.
pub const INPROGRESS: &str = ".inprogress";

/// A file being written.
struct OpenFile {
    meta: FileRef,
    file: File,
    members: Members,
}

/// The JSON-lines and lines archive sink (see the module docs).
pub struct ArchiveSink {
    cfg: ArchiveConfig,
    layout: Layout,
    codec: ArchiveCodec,
    ext: String,
    /// Run id in file names; set when the run starts.
    run: Option<String>,
    /// Column placing records in folders: `None` before the first batch, `Some(None)` for
    /// the arrival time.
    time_col: Option<Option<usize>>,
    /// Column written by `format = "lines"`.
    line_col: Option<usize>,
    /// Open files by the start of their folder's span.
    open: BTreeMap<Millis, OpenFile>,
    /// Finished files waiting for a commit.
    closed: Vec<Closed>,
    epoch: u64,
    seq: u32,
    checkpointed: bool,
    last_flush: Instant,
    watermark: Millis,
    text: String,
    /// Compression workers, started with the first file.
    pool: Option<Pool>,
}

/// The epoch in `part-<run>-<epoch>-<seq>.<ext>`, for files of `run`.
fn epoch_of<'a>(name: &'a str, run: &str) -> Option<u64> {
    let rest: &'a str = name
        .strip_prefix("part-")?
        .strip_prefix(run)?
        .strip_prefix('-')?;
    rest.split('-').next()?.parse().ok()
}

impl ArchiveSink {
    /// A sink for the archive at `cfg.path` (nothing is touched before the run starts).
    pub fn new(cfg: &ArchiveConfig) -> Self {
        ArchiveSink {
            layout: cfg.layout(),
            codec: cfg.codec(),
            ext: cfg.extension(),
            cfg: cfg.clone(),
            run: None,
            time_col: None,
            line_col: None,
            open: BTreeMap::new(),
            closed: Vec::new(),
            epoch: 0,
            seq: 0,
            checkpointed: false,
            last_flush: Instant::now(),
            watermark: Millis::MIN,
            text: String::new(),
            pool: None,
        }
    }

    fn root(&self) -> &Path {
        &self.cfg.path
    }

    fn path_of(&self, f: &FileRef, inprogress: bool) -> PathBuf {
        let p = self.root().join(&f.folder).join(&f.name);
        if inprogress {
            let mut s = p.into_os_string();
            s.push(INPROGRESS);
            PathBuf::from(s)
        } else {
            p
        }
    }

    /// Without checkpoints: a new run adds to the archive.
    fn start(&mut self) -> Result<()> {
        if self.run.is_some() {
            return Ok(());
        }
        fs::create_dir_all(self.root())
            .map_err(io(format!("creating {}", self.root().display())))?;
        let runs = own_runs(self.root())?;
        for (folder, name) in files_under(self.root())? {
            if name.ends_with(INPROGRESS) && is_own_part(&name, &runs) {
                tracing::warn!(file = %self.root().join(&folder).join(&name).display(),
                    "left by an interrupted run without checkpoints: its records were visible but the file was never finished; left in place");
            }
        }
        self.run = Some(claim_run(self.root())?);
        Ok(())
    }

    fn bind(&mut self, schema: &Schema) -> Result<()> {
        if self.time_col.is_some() {
            return Ok(());
        }
        let time = match &self.cfg.time_field {
            Some(f) => {
                let (i, fld) = schema.column_with_name(f).ok_or_else(|| {
                    Error::config("time_field", format!("the input has no field {f:?}"))
                })?;
                if !matches!(fld.data_type(), DataType::Timestamp(_, _)) {
                    return Err(Error::config(
                        "time_field",
                        format!("{f:?} is {}, not a timestamp", fld.data_type()),
                    ));
                }
                Some(i)
            }
            None => schema
                .fields()
                .iter()
                .position(|f| matches!(f.data_type(), DataType::Timestamp(_, _))),
        };
        if self.cfg.format == ArchiveFormat::Lines {
            let errs = self.cfg.check_schema("", schema);
            if let Some(e) = errs.into_iter().next() {
                return Err(e);
            }
            self.line_col = schema
                .column_with_name(self.cfg.line_field())
                .map(|(i, _)| i);
        }
        self.time_col = Some(time);
        Ok(())
    }

    /// The file for the span starting at `start`, opened if needed.
    fn file(&mut self, start: Millis, end: Millis) -> Result<&mut OpenFile> {
        if !self.open.contains_key(&start) {
            self.seq += 1;
            let meta = FileRef {
                folder: self.layout.folder(start, end),
                name: format!(
                    "part-{}-{:010}-{:06}.{}",
                    self.run.as_deref().unwrap_or_default(),
                    self.epoch,
                    self.seq,
                    self.ext
                ),
                len: 0,
                end,
                opened_ms: now_ms(),
            };
            let dir = self.root().join(&meta.folder);
            crate::owned::create_dir_inside(self.root(), &dir)?;
            let path = self.path_of(&meta, true);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(io(format!("creating {}", path.display())))?;
            self.open.insert(
                start,
                OpenFile {
                    meta,
                    file,
                    members: Members::default(),
                },
            );
        }
        Ok(self.open.get_mut(&start).expect("inserted above"))
    }

    /// Ends the member of one open file and appends every member to it.
    fn flush_file(f: &mut OpenFile, pool: &Pool) -> Result<()> {
        if f.members.is_empty() {
            return Ok(());
        }
        f.meta.len += f.members.flush(pool, &mut f.file, &f.meta.name)?;
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        if let Some(pool) = &self.pool {
            for f in self.open.values_mut() {
                Self::flush_file(f, pool)?;
            }
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Finishes the open file of span `start`: last member, fsync; renamed now without
    /// checkpoints, at the commit with them.
    fn close(&mut self, start: Millis) -> Result<()> {
        let Some(mut f) = self.open.remove(&start) else {
            return Ok(());
        };
        if let Some(pool) = &self.pool {
            Self::flush_file(&mut f, pool)?;
        }
        f.file
            .sync_all()
            .map_err(io(format!("syncing {}", f.meta.name)))?;
        let closed = Closed {
            epoch: self.epoch,
            file: f.meta,
        };
        if self.checkpointed {
            self.closed.push(closed);
            Ok(())
        } else {
            self.publish(&closed.file)
        }
    }

    /// Drops the `.inprogress` suffix of a finished file (a no-op when done already).
    fn publish(&self, f: &FileRef) -> Result<()> {
        let from = self.path_of(f, true);
        let to = self.path_of(f, false);
        if !from.exists() && to.exists() {
            return Ok(());
        }
        fs::rename(&from, &to).map_err(io(format!("finishing {}", from.display())))?;
        fsync_dir(&self.root().join(&f.folder))
    }

    /// Files due to be finished: by size, age, or the end of their span having passed
    /// (watermark, or the clock when records are placed by arrival time).
    fn roll(&mut self) -> Result<()> {
        let by_clock = matches!(self.time_col, Some(None));
        let now = now_ms();
        let horizon = if by_clock { now } else { self.watermark };
        let size = self.cfg.roll_size.bytes;
        let age = self.cfg.roll_interval.ms;
        let due: Vec<Millis> = self
            .open
            .iter()
            .filter(|(_, f)| {
                f.meta.len + f.members.pending() >= size
                    || now - f.meta.opened_ms >= age
                    || f.meta.end <= horizon
            })
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            self.close(s)?;
        }
        Ok(())
    }

    fn tick_clock(&mut self) -> Result<()> {
        if self.last_flush.elapsed() >= self.cfg.flush_interval.to_std() {
            self.flush_all()?;
        }
        self.roll()
    }

    /// Rows of `batch` by the start of their folder's span.
    fn spans(&self, batch: &RecordBatch) -> Result<Vec<Span>> {
        let times: Vec<Millis> = match self.time_col.flatten() {
            None => vec![now_ms(); 1],
            Some(c) => {
                let a = batch
                    .column(c)
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(|| Error::Schema("the time field is not in milliseconds".into()))?;
                a.iter().map(|t| t.unwrap_or(NULL_TIME)).collect()
            }
        };
        let spans: Vec<(Millis, Millis)> = times.iter().map(|&t| self.layout.span(t)).collect();
        if spans.iter().all(|s| *s == spans[0]) {
            return Ok(vec![(spans[0].0, spans[0].1, None)]);
        }
        let mut by: BTreeMap<Millis, (Millis, Vec<u32>)> = BTreeMap::new();
        for (row, (s, e)) in spans.into_iter().enumerate() {
            by.entry(s).or_insert((e, Vec::new())).1.push(row as u32);
        }
        Ok(by
            .into_iter()
            .map(|(s, (e, rows))| (s, e, Some(rows)))
            .collect())
    }

    fn encode(&mut self, batch: &RecordBatch) {
        self.text.clear();
        match self.line_col {
            Some(c) => {
                let a = batch.column(c).as_string::<i32>();
                for i in 0..a.len() {
                    if a.is_valid(i) {
                        self.text.push_str(a.value(i));
                    }
                    self.text.push('\n');
                }
            }
            None => crate::encode::json_lines(batch, 0..batch.num_rows(), &mut self.text),
        }
    }
}

/// The file in an archive's folder that lists the runs which wrote it, one id per line.
pub const RUNS_FILE: &str = "_weir_runs";

/// The runs listed in the archive at `root` (none when it has no list).
fn own_runs(root: &Path) -> Result<std::collections::HashSet<String>> {
    let path = root.join(RUNS_FILE);
    if let Some(p) = crate::owned::symlink_problem(&path) {
        return Err(Error::config("path", p));
    }
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| is_run_id(l))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// A new run id, listed in the archive at `root` (and synced) before the run writes a file.
fn claim_run(root: &Path) -> Result<String> {
    let listed = own_runs(root)?;
    let mut run = run_id();
    // Ids are start times in milliseconds: two runs within one must not share file names.
    while listed.contains(&run) {
        std::thread::sleep(std::time::Duration::from_millis(1));
        run = run_id();
    }
    list_run(root, &run)?;
    Ok(run)
}

/// Adds `run` to the archive's list of its runs, synced.
fn list_run(root: &Path, run: &str) -> Result<()> {
    use std::io::Write;
    let path = root.join(RUNS_FILE);
    if let Some(p) = crate::owned::symlink_problem(&path) {
        return Err(Error::config("path", p));
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    f.write_all(format!("{run}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(io(format!("writing {}", path.display())))?;
    fsync_dir(root)
}

/// `20261122T061500123Z`: what [`run_id`] makes.
fn is_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b[8] == b'T'
        && b[18] == b'Z'
        && b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit)
}

/// Whether `name` is a part file (`part-<run>-<epoch:10>-<seq:6>.<ext>`, maybe
/// `.inprogress`) of one of `runs`: the whole name, not a prefix.
fn is_own_part(name: &str, runs: &std::collections::HashSet<String>) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = name.strip_prefix("part-") else {
        return false;
    };
    let mut it = rest.splitn(3, '-');
    let (Some(run), Some(epoch), Some(tail)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    let tail = tail.strip_suffix(INPROGRESS).unwrap_or(tail);
    let Some((seq, ext)) = tail.split_once('.') else {
        return false;
    };
    runs.contains(run)
        && digits(epoch, 10)
        && digits(seq, 6)
        && matches!(
            ext,
            "jsonl" | "jsonl.gz" | "jsonl.zst" | "log" | "log.gz" | "log.zst"
        )
}

/// A run id: the start time, `20261122T061500123Z`.
fn run_id() -> String {
    let t = format_rfc3339_ms(now_ms());
    let mut s: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    s.push('Z');
    s
}

/// Cuts `path` to `len` bytes and syncs it.
fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))?;
    let have = f
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    if have < len {
        return Err(Error::io(
            format!("recovering {}", path.display()),
            std::io::Error::other(format!(
                "the file has {have} bytes but the checkpoint wrote {len}: it was changed \
                 outside weir"
            )),
        ));
    }
    f.set_len(len)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("truncating {}", path.display())))
}

impl Sink for ArchiveSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.start()?;
        self.bind(&batch.schema())?;
        for (start, end, rows) in self.spans(batch)? {
            match rows {
                None => self.encode(batch),
                Some(rows) => self.encode(&take_rows(batch, rows)?),
            }
            if self.pool.is_none() {
                self.pool = Some(Pool::new(self.codec, self.cfg.level)?);
            }
            self.file(start, end)?;
            let (f, pool) = (
                self.open.get_mut(&start).expect("opened above"),
                self.pool.as_ref().expect("started above"),
            );
            f.meta.len += f
                .members
                .write(pool, &mut f.file, &f.meta.name, self.text.as_bytes())?;
        }
        self.tick_clock()
    }

    fn on_watermark(&mut self, wm: Millis) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        if wm == weir_core::time::MAX_TIME {
            // The input has ended: finish every file now, so with checkpoints the last one
            // commits them and a finished file is never reopened by a run after the end.
            let starts: Vec<Millis> = self.open.keys().copied().collect();
            for s in starts {
                self.close(s)?;
            }
        }
        self.roll()
    }

    fn tick(&mut self) -> Result<()> {
        self.tick_clock()
    }

    fn flush(&mut self) -> Result<()> {
        self.tick_clock()
    }

    fn finish(&mut self) -> Result<()> {
        self.start()?;
        let starts: Vec<Millis> = self.open.keys().copied().collect();
        for s in starts {
            self.close(s)?;
        }
        for c in std::mem::take(&mut self.closed) {
            self.publish(&c.file)?;
        }
        Ok(())
    }

    fn suspend(&mut self) -> Result<()> {
        // The checkpoint holds the open files at their synced lengths: the next run goes on
        // writing them. Finishing them now would show readers a finished file that grows.
        self.open.clear();
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        true
    }

    fn recover(&mut self, state: Option<&[u8]>) -> Result<()> {
        self.checkpointed = true;
        let root = self.root().to_path_buf();
        fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        let Some(bytes) = state else {
            // A fresh start (the first checkpointed run, or --reset-state) replays the input
            // from its beginning: every record already archived would be there twice, so the
            // archive starts over, as a table does. Only part files of runs this archive
            // lists as its own go; anything else stays, whatever its name.
            let runs = own_runs(&root)?;
            let (mut removed, mut kept) = (0usize, 0usize);
            for (folder, name) in files_under(&root)? {
                if is_own_part(&name, &runs) {
                    let p = root.join(&folder).join(&name);
                    fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
                    removed += 1;
                } else if folder.is_empty() && name == RUNS_FILE {
                    continue;
                } else {
                    kept += 1;
                }
            }
            if removed > 0 {
                tracing::info!(archive = %root.display(), files = removed,
                    "starting over without a checkpoint: removed the archive's part files, which the replayed input writes again");
            }
            if kept > 0 {
                tracing::info!(archive = %root.display(), files = kept,
                    "files weir did not write (or wrote before it listed its runs) are left in place");
            }
            self.run = Some(claim_run(&root)?);
            self.epoch = 1;
            return Ok(());
        };
        let st: State = weir_core::state::decode("archive sink", STATE_VERSION, bytes)?;
        // The checkpoint proves the run is weir's (an archive begun before runs were listed).
        if !own_runs(&root)?.contains(&st.run) {
            list_run(&root, &st.run)?;
        }
        for c in &st.closed {
            let p = self.path_of(&c.file, true);
            if p.exists() {
                truncate(&p, c.file.len)?;
            }
            self.publish(&c.file)?;
        }
        let mut kept = std::collections::HashSet::new();
        for meta in &st.open {
            let (inprog, done) = (self.path_of(meta, true), self.path_of(meta, false));
            if !inprog.exists() && done.exists() {
                // Finished after the checkpoint, which a fall-back to this one undoes.
                fs::rename(&done, &inprog).map_err(io(format!("reopening {}", done.display())))?;
            }
            if !inprog.exists() {
                tracing::warn!(file = %inprog.display(), "an archive file of the checkpoint is missing (removed outside weir?); its records are lost, the archive goes on");
                continue;
            }
            truncate(&inprog, meta.len)?;
            let file = OpenOptions::new()
                .append(true)
                .open(&inprog)
                .map_err(io(format!("opening {}", inprog.display())))?;
            kept.insert((meta.folder.clone(), format!("{}{INPROGRESS}", meta.name)));
            let start = if meta.folder == NULL_FOLDER {
                NULL_TIME
            } else {
                self.layout.span(meta.end - 1).0
            };
            self.open.insert(
                start,
                OpenFile {
                    meta: meta.clone(),
                    file,
                    members: Members::default(),
                },
            );
        }
        // Every other file this run created after the checkpoint goes.
        for (folder, name) in files_under(&root)? {
            let Some(epoch) = epoch_of(&name, &st.run) else {
                continue;
            };
            let unfinished = name.ends_with(INPROGRESS);
            if (unfinished || epoch > st.epoch) && !kept.contains(&(folder.clone(), name.clone())) {
                let p = root.join(&folder).join(&name);
                tracing::info!(file = %p.display(), "removing an archive file written after the checkpoint");
                fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
            }
        }
        self.closed = Vec::new();
        self.run = Some(st.run);
        self.epoch = st.epoch + 1;
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>> {
        self.epoch = epoch;
        self.flush_all()?;
        for f in self.open.values() {
            f.file
                .sync_data()
                .map_err(io(format!("syncing {}", f.meta.name)))?;
        }
        let st = State {
            run: self.run.clone().unwrap_or_default(),
            epoch,
            open: self.open.values().map(|f| f.meta.clone()).collect(),
            closed: self.closed.clone(),
        };
        self.epoch = epoch + 1;
        self.seq = 0;
        weir_core::state::encode("archive sink", STATE_VERSION, &st)
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        let (now, later): (Vec<Closed>, Vec<Closed>) = std::mem::take(&mut self.closed)
            .into_iter()
            .partition(|c| c.epoch <= epoch);
        self.closed = later;
        for c in now {
            self.publish(&c.file)?;
        }
        Ok(())
    }
}
