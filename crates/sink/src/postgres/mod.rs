//! PostgreSQL: window results upserted into a table keyed by window and group keys, for the BI
//! tools teams already run.
//!
//! Rows are buffered and written in one transaction per batch: `COPY` into a temporary table,
//! then `INSERT … SELECT … ON CONFLICT (key) DO UPDATE`, so a row written again (a retry, or a
//! replay after a crash) replaces itself instead of counting twice. With checkpoints every
//! barrier flushes, and the same transaction records the epoch in `weir_sink_epochs`, so the
//! table and its epoch always agree. The table is created if missing, with column types from
//! the input (timestamps as `timestamptz`, integers as `bigint`, …) and the key as its primary
//! key. A lost connection is retried with exponential backoff; rows stay buffered until a
//! transaction with them commits, so none is lost.

use std::fmt::Write as _;
use std::time::Duration as StdDuration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::{Error, Result, Sink};

const fn default_batch_rows() -> usize {
    10_000
}

const fn default_retries() -> u32 {
    8
}

/// `[sink.NAME] type = "postgres"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection, as a URL (`postgresql://user@127.0.0.1:5432/db`) or libpq key=value pairs.
    pub url: String,
    /// Table name (optionally `schema.table`); created if it does not exist.
    pub table: String,
    /// Columns that identify a row: the window and the group keys, e.g.
    /// `["window_start", "window_end", "status"]`. A row with the same key replaces the old.
    pub key: Vec<String>,
    /// Rows per transaction at most (default 10000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Attempts after a failed transaction, with exponential backoff from 200 ms (default 8).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Longest wait between attempts (default `"30s"`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Duration,
}

const fn default_max_backoff() -> Duration {
    Duration::from_ms(30_000)
}

impl PostgresConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors = Vec::new();
        if self.key.is_empty() {
            errors.push(Error::config(
                format!("{path}.key"),
                "needs the columns that identify a row, e.g. [\"window_start\", \"window_end\", \"status\"]",
            ));
        }
        let conninfo = !self.url.contains("://") && self.url.contains('=');
        if !(self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://")
            || conninfo)
        {
            errors.push(Error::config(
                format!("{path}.url"),
                format!(
                    "expected a PostgreSQL URL (postgresql://user@host:5432/db) or \
                     key=value settings (host=… user=… dbname=…), got {:?}",
                    weir_core::redact::url(&self.url)
                ),
            ));
        }
        if self.batch_rows == 0 {
            errors.push(Error::config(
                format!("{path}.batch_rows"),
                "must be at least 1",
            ));
        }
        errors
    }

    /// Checks the key columns and column types against the input's schema.
    pub fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        let mut errors = Vec::new();
        for k in &self.key {
            if schema.column_with_name(k).is_none() {
                errors.push(Error::config(
                    format!("{path}.key"),
                    format!("the input has no column {k:?}; it has {}", names(schema)),
                ));
            }
        }
        for f in schema.fields() {
            if let Err(e) = pg_type(f.data_type()) {
                errors.push(Error::config(format!("{path}.input"), e.to_string()));
            }
        }
        errors
    }
}

/// Why a transaction failed.
#[derive(Debug)]
enum Fail {
    Pg(postgres::Error),
    Io(std::io::Error),
    /// The table's columns differ from the input's.
    Schema(String),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // "db error" alone says nothing: the server's message, code and detail do.
            Fail::Pg(e) => match e.as_db_error() {
                Some(db) => {
                    write!(
                        f,
                        "{} {}: {}",
                        db.severity(),
                        db.code().code(),
                        db.message()
                    )?;
                    if let Some(d) = db.detail() {
                        write!(f, " ({d})")?;
                    }
                    Ok(())
                }
                None => {
                    write!(f, "{e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            Fail::Io(e) => write!(f, "{e}"),
            Fail::Schema(m) => f.write_str(m),
        }
    }
}

/// The PostgreSQL sink.
pub struct PostgresSink {
    cfg: PostgresConfig,
    client: Option<postgres::Client>,
    schema: Option<SchemaRef>,
    /// Rows not committed yet, as COPY text lines.
    buf: String,
    rows: usize,
    created: bool,
    /// The epoch to record with the next transaction (checkpoints).
    epoch: Option<u64>,
    sink_name: String,
}

/// `"name"` quoted as an SQL identifier (`schema.table` keeps its dot).
fn ident(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

fn names(schema: &arrow_schema::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn pg_type(t: &DataType) -> Result<&'static str> {
    Ok(match t {
        DataType::Timestamp(_, _) => "timestamptz",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 => "bigint",
        DataType::UInt64 => "numeric(20)",
        DataType::Float32 | DataType::Float64 => "double precision",
        DataType::Boolean => "boolean",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        other => {
            return Err(Error::Schema(format!(
                "the postgres sink cannot store a column of type {other}"
            )))
        }
    })
}

/// Fails when the existing table's columns are not the input's, naming the difference (COPY
/// would only say "extra data after last expected column").
fn same_columns(
    client: &mut postgres::Client,
    table: &str,
    schema: &SchemaRef,
) -> std::result::Result<(), Fail> {
    let (ns, name) = match table.rsplit_once('.') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, table),
    };
    let rows = client.query(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = $1 AND ($2::text IS NULL OR table_schema = $2) \
           AND ($2::text IS NOT NULL OR table_schema = current_schema()) \
         ORDER BY ordinal_position",
        &[&name, &ns],
    )?;
    let have: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let want: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if have == want {
        return Ok(());
    }
    let missing: Vec<&str> = want
        .iter()
        .filter(|c| !have.contains(c))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = have
        .iter()
        .filter(|c| !want.contains(c))
        .map(String::as_str)
        .collect();
    let mut why = format!(
        "PostgreSQL table {table} has columns ({}) but the input has ({})",
        have.join(", "),
        want.join(", ")
    );
    if !missing.is_empty() {
        why.push_str(&format!("; the table lacks {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        why.push_str(&format!("; the input lacks {}", extra.join(", ")));
    }
    if missing.is_empty() && extra.is_empty() {
        why.push_str("; the same columns in another order");
    }
    why.push_str(": write to a new table, or alter or drop this one");
    Err(Fail::Schema(why))
}

/// Appends `s` escaped for COPY's text format.
fn copy_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

impl PostgresSink {
    /// A sink for `cfg`; connects on the first write. Its epochs are recorded under the table's
    /// name.
    pub fn new(cfg: &PostgresConfig) -> Self {
        PostgresSink {
            cfg: cfg.clone(),
            client: None,
            schema: None,
            buf: String::new(),
            rows: 0,
            created: false,
            epoch: None,
            sink_name: cfg.table.clone(),
        }
    }

    fn connect(&mut self) -> std::result::Result<&mut postgres::Client, postgres::Error> {
        if self.client.is_none() {
            self.client = Some(postgres::Client::connect(&self.cfg.url, postgres::NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn create_sql(&self, schema: &SchemaRef) -> Result<String> {
        let mut cols = Vec::new();
        for f in schema.fields() {
            cols.push(format!("{} {}", ident(f.name()), pg_type(f.data_type())?));
        }
        for k in &self.cfg.key {
            if schema.column_with_name(k).is_none() {
                return Err(Error::config(
                    "key",
                    format!("the input has no column {k:?}; it has {}", names(schema)),
                ));
            }
        }
        let key: Vec<String> = self.cfg.key.iter().map(|k| ident(k)).collect();
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}));\
             CREATE TABLE IF NOT EXISTS weir_sink_epochs (sink text PRIMARY KEY, epoch bigint NOT NULL, \
             updated timestamptz NOT NULL DEFAULT now())",
            ident(&self.cfg.table),
            cols.join(", "),
            key.join(", ")
        ))
    }

    /// The upsert from the staging table.
    fn upsert_sql(&self, schema: &SchemaRef) -> String {
        let cols: Vec<String> = schema.fields().iter().map(|f| ident(f.name())).collect();
        let key: Vec<String> = self.cfg.key.iter().map(|k| ident(k)).collect();
        let set: Vec<String> = schema
            .fields()
            .iter()
            .filter(|f| !self.cfg.key.contains(f.name()))
            .map(|f| format!("{0} = EXCLUDED.{0}", ident(f.name())))
            .collect();
        let action = if set.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", set.join(", "))
        };
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM weir_staging ON CONFLICT ({}) {action}",
            ident(&self.cfg.table),
            key.join(", "),
            cols = cols.join(", ")
        )
    }

    /// One attempt: the buffered rows (and the epoch) in one transaction.
    fn try_commit(&mut self) -> std::result::Result<(), Fail> {
        let schema = self.schema.clone().expect("rows imply a schema");
        let create = (!self.created)
            .then(|| self.create_sql(&schema))
            .transpose()
            .unwrap_or_default();
        let upsert = self.upsert_sql(&schema);
        let table = ident(&self.cfg.table);
        let (buf, epoch, name, table_name) = (
            std::mem::take(&mut self.buf),
            self.epoch,
            self.sink_name.clone(),
            self.cfg.table.clone(),
        );
        let res = (|| -> std::result::Result<(), Fail> {
            let client = self.connect()?;
            if let Some(sql) = &create {
                client.batch_execute(sql)?;
                same_columns(client, &table_name, &schema)?;
            }
            let mut tx = client.transaction()?;
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS weir_staging (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ))?;
            {
                use std::io::Write;
                let mut w = tx.copy_in("COPY weir_staging FROM STDIN")?;
                w.write_all(buf.as_bytes()).map_err(Fail::Io)?;
                w.finish()?;
            }
            tx.execute(upsert.as_str(), &[])?;
            if let Some(e) = epoch {
                tx.execute(
                    "INSERT INTO weir_sink_epochs (sink, epoch) VALUES ($1, $2) \
                     ON CONFLICT (sink) DO UPDATE SET epoch = EXCLUDED.epoch, updated = now()",
                    &[&name, &(e as i64)],
                )?;
            }
            Ok(tx.commit()?)
        })();
        match res {
            Ok(()) => {
                self.created = true;
                Ok(())
            }
            Err(e) => {
                self.buf = buf;
                Err(e)
            }
        }
    }

    /// Commits the buffered rows, retrying with backoff; rows stay buffered until then.
    fn commit_buffered(&mut self) -> Result<()> {
        if self.rows == 0 && self.epoch.is_none() {
            return Ok(());
        }
        if self.schema.is_none() {
            return Ok(());
        }
        let mut wait = 200u64;
        let mut attempt = 0;
        loop {
            match self.try_commit() {
                Ok(()) => {
                    self.rows = 0;
                    return Ok(());
                }
                Err(Fail::Schema(m)) => return Err(Error::Schema(m)),
                Err(e) => {
                    let permanent = matches!(&e, Fail::Pg(p) if p.as_db_error().is_some_and(|d| {
                        // Syntax, type and permission errors do not heal by retrying.
                        let class = &d.code().code()[..2];
                        matches!(class, "42" | "22" | "23" | "28")
                    }));
                    attempt += 1;
                    if permanent || attempt > self.cfg.retries {
                        return Err(Error::io(
                            format!(
                                "writing {} rows to PostgreSQL table {} (attempt {attempt})",
                                self.rows, self.cfg.table
                            ),
                            match e {
                                Fail::Io(io) => io,
                                other => std::io::Error::other(other.to_string()),
                            },
                        ));
                    }
                    tracing::warn!(table = %self.cfg.table, error = %e, attempt, "postgres: retrying");
                    self.client = None;
                    std::thread::sleep(StdDuration::from_millis(wait));
                    wait = (wait * 2).min(self.cfg.max_backoff.ms as u64);
                }
            }
        }
    }

    fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::*;
        use arrow_array::Array;
        let cols = batch.columns();
        for row in 0..batch.num_rows() {
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    self.buf.push('\t');
                }
                if c.is_null(row) {
                    self.buf.push_str("\\N");
                    continue;
                }
                let b = &mut self.buf;
                match c.data_type() {
                    DataType::Timestamp(_, _) => {
                        let ms = c
                            .as_primitive_opt::<TimestampMillisecondType>()
                            .ok_or_else(|| Error::Schema("timestamps must be in ms".into()))?
                            .value(row);
                        weir_core::time::write_rfc3339_ms(ms, b);
                        Ok(())
                    }
                    DataType::Int8 => write!(b, "{}", c.as_primitive::<Int8Type>().value(row)),
                    DataType::Int16 => write!(b, "{}", c.as_primitive::<Int16Type>().value(row)),
                    DataType::Int32 => write!(b, "{}", c.as_primitive::<Int32Type>().value(row)),
                    DataType::Int64 => write!(b, "{}", c.as_primitive::<Int64Type>().value(row)),
                    DataType::UInt8 => write!(b, "{}", c.as_primitive::<UInt8Type>().value(row)),
                    DataType::UInt16 => write!(b, "{}", c.as_primitive::<UInt16Type>().value(row)),
                    DataType::UInt32 => write!(b, "{}", c.as_primitive::<UInt32Type>().value(row)),
                    DataType::UInt64 => write!(b, "{}", c.as_primitive::<UInt64Type>().value(row)),
                    DataType::Float32 => {
                        write!(b, "{}", c.as_primitive::<Float32Type>().value(row))
                    }
                    DataType::Float64 => {
                        write!(b, "{}", c.as_primitive::<Float64Type>().value(row))
                    }
                    DataType::Boolean => write!(b, "{}", c.as_boolean().value(row)),
                    DataType::Utf8 => {
                        copy_escape(c.as_string::<i32>().value(row), b);
                        Ok(())
                    }
                    DataType::LargeUtf8 => {
                        copy_escape(c.as_string::<i64>().value(row), b);
                        Ok(())
                    }
                    DataType::Utf8View => {
                        copy_escape(c.as_string_view().value(row), b);
                        Ok(())
                    }
                    other => {
                        return Err(Error::Schema(format!(
                            "the postgres sink cannot store a column of type {other}"
                        )))
                    }
                }
                .expect("writing to a String");
            }
            self.buf.push('\n');
            self.rows += 1;
        }
        Ok(())
    }
}

impl Sink for PostgresSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.schema.is_none() {
            // Type errors surface before anything is sent.
            for f in batch.schema().fields() {
                pg_type(f.data_type())?;
            }
            self.create_sql(&batch.schema())?;
            self.schema = Some(batch.schema());
        }
        self.append(batch)?;
        if self.rows >= self.cfg.batch_rows {
            self.commit_buffered()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.commit_buffered()
    }

    fn exactly_once(&self) -> bool {
        true
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>> {
        // Rows are committed at the barrier together with its epoch. A replay after a crash
        // upserts the same rows again: the table ends as after one run.
        self.epoch = Some(epoch);
        self.commit_buffered()?;
        self.epoch = None;
        Ok(epoch.to_le_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests;
