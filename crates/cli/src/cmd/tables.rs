//! `weir query`, `weir tables`, `weir compact`: the Parquet tables that sinks write.

use std::io::Write;
use std::process::ExitCode;

use crate::progress;

/// How `weir query` prints rows.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum OutFormat {
    /// An aligned table.
    Table,
    /// CSV with a header line.
    Csv,
    /// JSON lines.
    Json,
}

pub(crate) fn compact(
    root: &std::path::Path,
    table: &str,
    min_age: weir_core::config::Duration,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let r = weir_sink::parquet::compact(&root.join(table), min_age.to_std())?;
    println!(
        "{table}: {} partitions merged, {} files into {}, {} rows rewritten in {:.2} s{}",
        r.partitions,
        r.files_before,
        r.files_after,
        progress::thousands(r.rows),
        started.elapsed().as_secs_f64(),
        match r.too_recent {
            0 => String::new(),
            n => format!("; {n} partitions written to within {min_age} left alone"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn query(
    sql: &str,
    format: OutFormat,
    root: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let session = weir_query::Session::open(root)?;
    let rows = match session.query(sql) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("weir: query failed: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let format = match format {
        OutFormat::Table => weir_query::Format::Table,
        OutFormat::Csv => weir_query::Format::Csv,
        OutFormat::Json => weir_query::Format::Json,
    };
    let mut o = std::io::stdout().lock();
    o.write_all(&weir_query::render(&rows, format)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list_tables(root: &std::path::Path) -> anyhow::Result<ExitCode> {
    let session = weir_query::Session::open(root)?;
    let mut o = std::io::stdout().lock();
    if session.tables().is_empty() {
        writeln!(
            o,
            "{}: no tables (a `parquet` sink creates them)",
            root.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for t in session.tables() {
        let (rows, first, last) = weir_query::table_stats(&session, t)?;
        writeln!(
            o,
            "{}  ({}): {} rows in {} files, {}; partitioned by {}",
            t.name,
            t.path.display(),
            progress::thousands(rows),
            t.files,
            progress::bytes(t.bytes),
            match (&t.meta.partition_field, t.meta.partition) {
                (Some(f), g) if g != weir_sink::parquet::Granularity::None =>
                    format!("{g:?} of {f}").to_lowercase(),
                _ => "nothing".into(),
            }
        )?;
        if let (Some(a), Some(b)) = (first, last) {
            writeln!(o, "  time range: {a} .. {b}")?;
        }
        let cols: Vec<String> = t
            .meta
            .columns
            .iter()
            .map(|(n, ty)| format!("{n}: {ty}"))
            .collect();
        writeln!(o, "  columns: {}", cols.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}
