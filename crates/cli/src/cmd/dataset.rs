//! Records from files for `weir train` and `weir score`: JSON lines, CSV and Parquet, plain,
//! gzip or zstd, one file or every file under a folder (an archive a pipeline wrote), read
//! into Arrow record batches with the column types inferred from the data.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};

/// How to read the input files.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct InputArgs {
    /// Files or folders of records (every file below a folder, in name order; `.inprogress`
    /// files an archive is still writing are left out). JSON lines (`.jsonl`, `.json`,
    /// `.ndjson`), CSV (`.csv`, anything else that is not Parquet) or Parquet (`.parquet`),
    /// each optionally `.gz` or `.zst`.
    #[arg(long, short, required = true, num_args = 1.., value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// Column names of CSV files without a header row: a file with one name per line in
    /// `kddcup.names`' layout (`duration: continuous.`; lines without a colon are skipped), or
    /// one comma-separated line. When the rows have one column more than names, the last one
    /// is called `label`, as the KDD Cup files have it.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Keep only the records for which this SQL condition holds, e.g.
    /// "service = 'http' AND logged_in = 1".
    #[arg(long = "where", value_name = "SQL")]
    pub filter: Option<String>,
}

/// Records read from the input.
pub(crate) struct Records {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub files: usize,
    /// Records before `--where`.
    pub read: u64,
}

impl Records {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Json,
    Csv,
    Parquet,
}

fn files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            if found.is_empty() {
                bail!("{} holds no files", p.display());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') || name.ends_with(".inprogress") {
            continue; // hidden, table metadata, files still being written
        }
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// The file's kind and compression from its name: `x.jsonl.gz` → JSON, gzip.
fn kind_of(p: &Path) -> (Kind, Option<&'static str>) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (base, codec) = if let Some(b) = name.strip_suffix(".gz") {
        (b.to_string(), Some("gz"))
    } else if let Some(b) = name.strip_suffix(".zst") {
        (b.to_string(), Some("zst"))
    } else {
        (name, None)
    };
    let kind = if base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".ndjson") {
        Kind::Json
    } else if base.ends_with(".parquet") {
        Kind::Parquet
    } else {
        Kind::Csv
    };
    (kind, codec)
}

fn open(p: &Path) -> Result<Box<dyn BufRead>> {
    let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let r: Box<dyn Read> = match kind_of(p).1 {
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
        Some(_) => Box::new(zstd::Decoder::new(f)?),
        None => Box::new(f),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, r)))
}

/// Column names from `--names`.
fn names(p: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let listed: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect();
    let names = if listed.is_empty() {
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        line.split(',').map(|n| n.trim().to_string()).collect()
    } else {
        listed
    };
    if names.is_empty() || names.iter().any(String::is_empty) {
        bail!(
            "{}: expected column names, one per line as `name: type.` or comma-separated",
            p.display()
        );
    }
    Ok(names)
}

const BATCH: usize = 8192;
/// Records the column types are inferred from.
const INFER: usize = 100_000;

/// Reads every input file.
pub(crate) fn read(args: &InputArgs, progress: &dyn Fn(u64)) -> Result<Records> {
    let files = files(&args.input)?;
    let kind = kind_of(&files[0]).0;
    if let Some(other) = files.iter().find(|f| kind_of(f).0 != kind) {
        bail!(
            "{} and {} are of different kinds ({kind:?}, {:?}); give one kind at a time",
            files[0].display(),
            other.display(),
            kind_of(other).0
        );
    }
    let names = args.names.as_deref().map(names).transpose()?;
    let mut batches = Vec::new();
    let mut schema: Option<SchemaRef> = None;
    let mut read = 0u64;
    for f in &files {
        let before = batches.len();
        match kind {
            Kind::Parquet => {
                let file = File::open(f).with_context(|| format!("opening {}", f.display()))?;
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .with_context(|| format!("reading {}", f.display()))?
                        .with_batch_size(BATCH)
                        .build()?;
                for b in reader {
                    batches.push(b.with_context(|| format!("reading {}", f.display()))?);
                }
            }
            Kind::Json => {
                let s = match &schema {
                    Some(s) => s.clone(),
                    None => {
                        let (s, _) = arrow_json::reader::infer_json_schema(open(f)?, Some(INFER))
                            .with_context(|| format!("reading {}", f.display()))?;
                        Arc::new(s)
                    }
                };
                let reader = arrow_json::ReaderBuilder::new(s.clone())
                    .with_batch_size(BATCH)
                    .build(open(f)?)?;
                for b in reader {
                    batches.push(b.with_context(|| format!("reading {}", f.display()))?);
                }
                schema.get_or_insert(s);
            }
            Kind::Csv => {
                let s = match &schema {
                    Some(s) => s.clone(),
                    None => csv_schema(f, names.as_deref())?,
                };
                let reader = arrow_csv::ReaderBuilder::new(s.clone())
                    .with_header(names.is_none())
                    .with_batch_size(BATCH)
                    .build(open(f)?)?;
                for b in reader {
                    batches.push(b.with_context(|| format!("reading {}", f.display()))?);
                }
                schema.get_or_insert(s);
            }
        }
        if let (Some(s), Some(b)) = (&schema, batches.get(before)) {
            if b.schema().fields() != s.fields() {
                bail!(
                    "{} has other columns than {}",
                    f.display(),
                    files[0].display()
                );
            }
        }
        if schema.is_none() {
            schema = batches.first().map(RecordBatch::schema);
        }
        read = batches.iter().map(|b| b.num_rows() as u64).sum();
        progress(read);
    }
    let schema = schema.context("the input holds no records")?;
    let batches = match &args.filter {
        None => batches,
        Some(sql) => {
            let cond = weir_expr::Expr::parse(sql)
                .and_then(|e| e.bind(&schema))
                .with_context(|| format!("--where {sql:?}"))?;
            batches
                .iter()
                .map(|b| {
                    let mask = cond
                        .eval_mask(b)
                        .with_context(|| format!("--where {sql:?}"))?;
                    Ok(arrow_select::filter::filter_record_batch(b, &mask)?)
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    Ok(Records {
        schema,
        batches,
        files: files.len(),
        read,
    })
}

/// A CSV file's columns: named by its header or by `--names`, typed from its first records.
fn csv_schema(f: &Path, names: Option<&[String]>) -> Result<SchemaRef> {
    let format = arrow_csv::reader::Format::default().with_header(names.is_none());
    let (inferred, _) = format
        .infer_schema(open(f)?, Some(INFER))
        .with_context(|| format!("reading {}", f.display()))?;
    let Some(names) = names else {
        return Ok(Arc::new(inferred));
    };
    let n = inferred.fields().len();
    let mut names = names.to_vec();
    if n == names.len() + 1 {
        names.push("label".into());
    }
    if n != names.len() {
        bail!(
            "{} has {n} columns, --names lists {} (one more is taken as `label`)",
            f.display(),
            names.len()
        );
    }
    Ok(Arc::new(Schema::new(
        inferred
            .fields()
            .iter()
            .zip(names)
            .map(|(fld, name)| Field::new(name, fld.data_type().clone(), true))
            .collect::<Vec<_>>(),
    )))
}
