//! weir-query answers SQL over weir's result tables with Apache DataFusion.
//!
//! A table is a directory that a `parquet` sink writes (`crates/sink/src/parquet`): Parquet
//! files under `dt=YYYY-MM-DD/hour=HH/` folders and a `_weir_table.json` describing it. Every
//! such directory under the tables root is registered under its name, with `dt` and `hour` as
//! partition columns, so
//!
//! ```sql
//! SELECT status, sum(count) AS n FROM status_counts WHERE status >= 500 GROUP BY status
//! SELECT * FROM status_counts WHERE dt = '1995-07-01' AND hour >= '12'   -- reads 12 folders
//! ```
//! need no set-up and see every file committed so far (a file appears in the table only once it
//! is complete, so a query never reads a partial file). Filters on `dt`/`hour` skip folders;
//! filters on other columns skip row groups by their Parquet statistics.
//!
//! This crate uses DataFusion's own Arrow (a different major version than the engine's); only
//! files and text cross between them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use weir_sink::parquet::{Granularity, TableMeta, TABLE_META};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is wrong, with DataFusion's words (and the position when it gives one).
    #[error("{0}")]
    Sql(String),
    /// A table or the tables root cannot be read.
    #[error("{0}")]
    Tables(String),
    /// The statement would change something; `weir query` only reads.
    #[error("{0}")]
    ReadOnly(String),
}

type Result<T> = std::result::Result<T, QueryError>;

/// A table found under the tables root.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its name (the directory's).
    pub name: String,
    /// The directory.
    pub path: PathBuf,
    /// Its description.
    pub meta: TableMeta,
    /// Committed Parquet files and their total size.
    pub files: usize,
    /// Total bytes of those files.
    pub bytes: u64,
}

/// The tables under `root`, by name.
pub fn find_tables(root: &Path) -> Result<Vec<Table>> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        QueryError::Tables(format!(
            "cannot read the tables directory {}: {e} (a `parquet` sink creates tables there; \
             use --tables DIR for another place)",
            root.display()
        ))
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let meta_path = path.join(TABLE_META);
        if !meta_path.is_file() {
            continue;
        }
        let meta: TableMeta = std::fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                QueryError::Tables(format!(
                    "{} is not a table description",
                    meta_path.display()
                ))
            })?;
        let (files, bytes) = parquet_files(&path)
            .iter()
            .fold((0, 0), |(n, b), (_, len)| (n + 1, b + len));
        out.push(Table {
            name: e.file_name().to_string_lossy().into_owned(),
            path,
            meta,
            files,
            bytes,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Parquet files under `dir`, recursively, with their sizes.
pub fn parquet_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push((p, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Columns of the result.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

/// A query session over every table under a root.
pub struct Session {
    ctx: SessionContext,
    rt: tokio::runtime::Runtime,
    tables: Vec<Table>,
}

fn partition_cols(g: Granularity) -> Vec<(String, DataType)> {
    match g {
        Granularity::Hour => vec![
            ("dt".into(), DataType::Utf8),
            ("hour".into(), DataType::Utf8),
        ],
        Granularity::Day => vec![("dt".into(), DataType::Utf8)],
        Granularity::None => vec![],
    }
}

/// The file schema from the table description (so an empty table can be queried), when every
/// type in it parses.
fn file_schema(meta: &TableMeta) -> Option<Schema> {
    let fields = meta
        .columns
        .iter()
        .map(|(name, ty)| Some(Field::new(name, ty.parse::<DataType>().ok()?, true)))
        .collect::<Option<Vec<_>>>()?;
    Some(Schema::new(fields))
}

impl Session {
    /// Registers every table under `root`.
    pub fn open(root: &Path) -> Result<Session> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| QueryError::Tables(format!("starting the query runtime: {e}")))?;
        let (ctx, tables) = Self::register(&rt, root)?;
        Ok(Session { ctx, rt, tables })
    }

    /// A context with every table under `root`. DataFusion's cache of file listings is off:
    /// every query lists the table as it is then, so it sees the files committed since the
    /// session opened and none that compaction merged away.
    fn register(rt: &tokio::runtime::Runtime, root: &Path) -> Result<(SessionContext, Vec<Table>)> {
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()
            .map_err(|e| QueryError::Tables(format!("starting the query engine: {e}")))?;
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new().with_information_schema(true),
            runtime,
        );
        let tables = find_tables(root)?;
        for t in &tables {
            let schema = file_schema(&t.meta);
            let mut opts = ParquetReadOptions::default()
                .file_extension(".parquet")
                .table_partition_cols(partition_cols(t.meta.partition));
            if let Some(s) = &schema {
                opts = opts.schema(s);
            }
            let path = format!("{}/", t.path.display());
            rt.block_on(ctx.register_parquet(t.name.as_str(), &path, opts))
                .map_err(|e| QueryError::Tables(format!("table {}: {e}", t.name)))?;
        }
        Ok((ctx, tables))
    }

    /// The tables registered.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// Runs one SQL statement and returns its rows (with the result's schema, so that an
    /// empty result still has its header).
    ///
    /// Every table is locked shared from planning (which lists its files) to the last read,
    /// so `weir compact` cannot swap a partition's files away under the query: it waits the
    /// moment of its swap until the query is done.
    pub fn query(&self, sql: &str) -> Result<Rows> {
        let _locks = self
            .tables
            .iter()
            .map(|t| {
                weir_sink::parquet::TableLock::shared(&t.path)
                    .map_err(|e| QueryError::Tables(format!("table {}: {e}", t.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        let ctx = self.ctx.clone();
        self.rt
            .block_on(async {
                let df = ctx.sql_with_options(sql, read_only()).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                Ok::<_, datafusion::error::DataFusionError>(Rows {
                    schema,
                    batches: df.collect().await?,
                })
            })
            .map_err(|e| {
                let mut msg = e.to_string();
                if let Some(what) = refused(&msg) {
                    return QueryError::ReadOnly(format!(
                        "weir query is read-only: {what} is refused; it runs SELECT, WITH, \
                         EXPLAIN, SHOW and DESCRIBE (tables change only through the sinks that \
                         write them, so every row stays exactly-once)"
                    ));
                }
                if msg.contains("not found") && msg.contains("table") {
                    let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
                    msg.push_str(&format!(
                        "; tables here: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
                QueryError::Sql(with_caret(sql, &msg))
            })
    }
}

/// What `weir query` may run: queries only. DDL (`CREATE EXTERNAL TABLE`, `CREATE VIEW`,
/// `DROP`), DML (`INSERT`, `COPY … TO`, which writes any file the user can write) and
/// statements (`SET`, transactions) are refused wherever they occur in the plan, `EXPLAIN
/// ANALYZE INSERT` included.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The kind of statement DataFusion refused under [`read_only`], from its message.
fn refused(msg: &str) -> Option<String> {
    [
        "DDL not supported: ",
        "DML not supported: ",
        "Statement not supported: ",
    ]
    .iter()
    .find_map(|p| {
        let rest = &msg[msg.find(p)? + p.len()..];
        let what = rest.lines().next().unwrap_or(rest).trim();
        Some(format!("{} ({what})", p.split(' ').next().unwrap_or("")))
    })
}

/// Appends the statement with a caret under the position DataFusion names ("Line: 1, Column:
/// 15"), or under its end when the statement ended too early.
fn with_caret(sql: &str, msg: &str) -> String {
    let pos = (|| {
        let rest = &msg[msg.find("Line: ")? + 6..];
        let line: usize = rest[..rest.find(',')?].trim().parse().ok()?;
        let rest = &rest[rest.find("Column: ")? + 8..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let col: usize = rest[..end].parse().ok()?;
        Some((line, col))
    })();
    // "found: EOF" has no position: it is the end of the statement.
    let end = || {
        let last = sql.trim_end().lines().count().max(1);
        let col = sql
            .trim_end()
            .lines()
            .last()
            .map_or(0, |l| l.chars().count())
            + 1;
        (last, col)
    };
    let pos = pos.or_else(|| msg.contains("found: EOF").then(end));
    match pos {
        Some((line, col)) if line >= 1 && col >= 1 => {
            let text = sql.lines().nth(line - 1).unwrap_or("");
            format!("{msg}\n  {text}\n  {}^", " ".repeat(col - 1))
        }
        _ => msg.to_string(),
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table with borders.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Renders rows in `format`.
pub fn render(rows: &Rows, format: Format) -> Result<Vec<u8>> {
    use datafusion::arrow::{csv, json, util::pretty};
    let err = |e: datafusion::arrow::error::ArrowError| QueryError::Sql(e.to_string());
    let mut out = Vec::new();
    let batches = &rows.batches;
    match format {
        Format::Table => {
            let text = pretty::pretty_format_batches_with_schema(rows.schema.clone(), batches)
                .map_err(err)?;
            out.extend_from_slice(text.to_string().as_bytes());
            out.push(b'\n');
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(rows.schema.clone()))
                    .map_err(err)?;
            }
            for b in batches {
                w.write(b).map_err(err)?;
            }
        }
        Format::Json => {
            let mut w = json::LineDelimitedWriter::new(&mut out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs).map_err(err)?;
            w.finish().map_err(err)?;
        }
    }
    Ok(out)
}

/// Rows, first and last time of a table (by its partition field), for `weir tables`.
pub fn table_stats(s: &Session, t: &Table) -> Result<(u64, Option<String>, Option<String>)> {
    let range = match &t.meta.partition_field {
        Some(f) => format!(", CAST(min(\"{f}\") AS VARCHAR), CAST(max(\"{f}\") AS VARCHAR)"),
        None => ", NULL, NULL".into(),
    };
    let rows = s.query(&format!("SELECT count(*){range} FROM \"{}\"", t.name))?;
    let Some(b) = rows.batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok((0, None, None));
    };
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let rows = b.column(0).as_primitive::<Int64Type>().value(0) as u64;
    let text = |i: usize| {
        let c = b.column(i);
        if c.is_null(0) {
            return None;
        }
        c.as_string_opt::<i32>()
            .map(|a| a.value(0).to_string())
            .or_else(|| c.as_string_view_opt().map(|a| a.value(0).to_string()))
    };
    Ok((rows, text(1), text(2)))
}

#[cfg(test)]
mod tests;
