//! `weir`: the command line of the weir stream-analytics engine.
//!
//! config → validate → plan → build → run. Every subcommand's `--help` explains it.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod progress;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_pipeline::config;

/// weir measures event streams as they pass: windows, counts, alerts, in one binary.
#[derive(Parser)]
#[command(name = "weir", version, about, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const LONG_ABOUT: &str = "\
weir measures event streams as they pass: it reads logs and events from files, followed files
and stdin, parses them into typed records, places them in event-time windows, raises
threshold alerts the moment they are crossed, and writes results as each window closes: to
the terminal, files, Parquet tables (`weir query` reads them with SQL), PostgreSQL, webhooks,
and rolling compressed archives of the raw stream.

A pipeline is a TOML file of named sources, stages and sinks wired by name:

    weir run examples/http-status.toml
    weir run examples/http-status.toml --set source.logs.path=/var/log/nginx/access.log
    tail -F access.log | weir run examples/http-status-stdin.toml
    weir check examples/http-status.toml
    weir run examples/ddos-alert.toml              # 10 DDOS attempts at one IP within 5 min
    weir run examples/http-status.toml --checkpoint-dir state/   # survives kill -9: rerun resumes
    weir checkpoints state/

See README.md for a tour of the pipeline file.";

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline until its input ends (or Ctrl-C/SIGTERM, which flush open windows).
    #[command(long_about = "Run a pipeline until its input ends.\n\n\
        Results are written as each window closes. On a terminal, progress is shown on stderr \
        and a summary at the end: records read, parsed, malformed (with the first reasons), \
        late, windows emitted, throughput and wall time. Ctrl-C, SIGTERM (systemd, Docker, \
        Kubernetes, timeout) and SIGHUP end the input gracefully: open windows are flushed, \
        sinks finish and the summary is printed; a second signal exits at once.\n\n\
        With --checkpoint-dir the run takes checkpoints and resumes from the newest one: kill \
        it at any moment and run the same command again; JSON-lines and CSV files, Parquet \
        tables, PostgreSQL tables and archives then hold every row exactly once (stdout and \
        webhooks are at-least-once). Ctrl-C or SIGTERM then takes a \
        last checkpoint instead of flushing open windows.")]
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Override a value of the pipeline file, e.g. `--set source.logs.path=/var/log/x.log`
        /// or `--set 'stage.counts.window.size="1m"'`. May be repeated.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// No progress display and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Threads that parse each source's lines, chunk by chunk (default: the cores this
        /// process may use). Results do not depend on it: chunks are released in input order,
        /// so watermarks, windows, dead letters and checkpoints are those of one thread. A
        /// CSV source with a header and a source paced by `rate` parse on one thread.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,
        #[command(flatten)]
        checkpoint: CheckpointArgs,
    },
    /// List the checkpoints in a checkpoint directory: epochs, sizes, source positions, age.
    #[command(
        long_about = "List the checkpoints in a checkpoint directory, newest first: \
        epoch, when it was taken, its size, whether the pipeline had finished, and where each \
        source stood. Damaged checkpoints (missing manifest, truncated or corrupt state, \
        another format) are listed with the reason; `weir run` skips them and resumes from \
        the newest intact one."
    )]
    Checkpoints {
        /// The directory given to `weir run --checkpoint-dir`.
        dir: PathBuf,
    },
    /// Validate a pipeline file and print every problem with its key path.
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Run SQL over the result tables that `parquet` sinks write (Apache DataFusion).
    #[command(
        long_about = "Run SQL over the result tables that `parquet` sinks write.\n\n\
        Every directory under the tables directory (default `tables/`, or $WEIR_TABLES) that \
        holds a `_weir_table.json` is a table named after it, with its columns and types, plus \
        the partition columns `dt` ('YYYY-MM-DD') and `hour` ('HH'); filters on those read only \
        the folders they name. A file is in the table as soon as it is committed: no refresh \
        step. The SQL is DataFusion's (PostgreSQL-like: now(), INTERVAL '1 hour', date_trunc, \
        window functions, …); errors show the position.\n\n\
        Examples:\n  \
        weir query \"SELECT status, sum(count) AS n FROM status_counts WHERE status >= 500 GROUP BY status ORDER BY n DESC\"\n  \
        weir query --format csv \"SELECT * FROM status_counts WHERE window_end > now() - INTERVAL '1 hour'\""
    )]
    Query {
        /// One SQL statement.
        sql: String,
        /// Output: an aligned `table`, `csv` with a header, or `json` (one object per line).
        #[arg(long, short, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
        /// The tables directory.
        #[arg(
            long,
            value_name = "DIR",
            env = "WEIR_TABLES",
            default_value = "tables"
        )]
        tables: PathBuf,
    },
    /// Merge a table's small files, partition by partition, safely while it is queried.
    #[command(
        long_about = "Merge a table's small files, partition by partition.\n\n\
        Each partition folder with two or more files, none newer than --min-age, is rewritten as \
        one zstd Parquet file, and the folder is swapped for the new one atomically: a query \
        running at the same time sees either the old files or the merged one, never a row \
        twice or none (`weir query` plans again if a file it listed was merged away). Files a \
        running sink commits meanwhile are kept. --min-age keeps compaction off partitions a \
        sink still writes."
    )]
    Compact {
        /// The table's name (a directory under --tables).
        table: String,
        /// Only partitions whose newest file is at least this old.
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        min_age: weir_core::config::Duration,
        /// The tables directory.
        #[arg(
            long,
            value_name = "DIR",
            env = "WEIR_TABLES",
            default_value = "tables"
        )]
        tables: PathBuf,
    },
    /// List the result tables: columns, files, rows, time range.
    Tables {
        /// The tables directory.
        #[arg(
            long,
            value_name = "DIR",
            env = "WEIR_TABLES",
            default_value = "tables"
        )]
        tables: PathBuf,
    },
    /// Generate synthetic input (deterministic for a seed) to stdout, a file or an HTTP URL.
    Gen {
        #[command(subcommand)]
        kind: GenKind,
    },
}

/// How `weir query` prints rows.
#[derive(Clone, Copy, clap::ValueEnum)]
enum OutFormat {
    /// An aligned table.
    Table,
    /// CSV with a header line.
    Csv,
    /// JSON lines.
    Json,
}

/// Checkpoint options of `weir run`.
#[derive(clap::Args)]
struct CheckpointArgs {
    /// Take checkpoints in this directory and, if it holds one, resume from the newest intact
    /// checkpoint: sources continue at their saved positions, windows and alerts keep their
    /// state, and file sinks commit rows per checkpoint, so a run killed at any moment and
    /// restarted writes every row exactly once. Ctrl-C then stops without flushing open
    /// windows; they resume with the next run.
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints (file sinks make rows visible at each one).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        requires = "checkpoint_dir"
    )]
    checkpoint_interval: weir_core::config::Duration,
    /// Complete checkpoints kept (older ones are removed).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        requires = "checkpoint_dir"
    )]
    checkpoint_retain: usize,
    /// Discard the checkpoints in --checkpoint-dir and start from the beginning: output
    /// files, tables and archives are written again from the start (weir removes only what it
    /// wrote there). Needed after a change to the pipeline.
    #[arg(long, requires = "checkpoint_dir")]
    reset_state: bool,
}

#[derive(Subcommand)]
enum GenKind {
    /// Common Log Format lines like the NASA logs of 1995: ~20 events/s of event time, 5 %
    /// up to 30 s out of order, 0.5 % malformed.
    Clf {
        #[command(flatten)]
        common: GenCommon,
    },
    /// JSON security messages {timestamp, type, target_ip, source_ip}: background events of
    /// four types and DDOS bursts on a few attacked targets that change every few minutes.
    /// Event time starts at --start and advances 1/--rate s per message (1 ms at full speed).
    Ddos {
        #[command(flatten)]
        common: GenCommon,
        /// Number of target addresses.
        #[arg(long, default_value_t = 1000)]
        targets: usize,
        /// Share of messages that are DDOS attempts on attacked targets.
        #[arg(long, default_value_t = 0.01)]
        attack_share: f64,
        /// Event time of the first message (RFC 3339); default: now.
        #[arg(long)]
        start: Option<String>,
    },
}

/// Options every generator takes.
#[derive(clap::Args)]
struct GenCommon {
    /// Number of lines; 0 = never stop.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    count: u64,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Lines per second of wall-clock time (token bucket); 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Output file (default: stdout).
    #[arg(long, short, conflicts_with = "http")]
    out: Option<PathBuf>,
    /// POST the lines to this URL instead, as newline-delimited JSON/text bodies of up to
    /// 8192 lines (for HTTP ingest endpoints).
    #[arg(long, value_name = "URL")]
    http: Option<String>,
}

/// Where generated lines go.
enum GenOut {
    Writer(Box<dyn Write>),
    Http(ureq::Agent, String),
}

impl GenOut {
    fn send(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        match self {
            GenOut::Writer(w) => Ok(w.write_all(chunk)?),
            GenOut::Http(agent, url) => {
                let resp = agent
                    .post(url.as_str())
                    .header("Content-Type", "application/x-ndjson")
                    .send(chunk)
                    .with_context(|| format!("POST to {url}"))?;
                anyhow::ensure!(
                    resp.status().is_success(),
                    "POST to {url}: HTTP {}",
                    resp.status()
                );
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let GenOut::Writer(w) = self {
            w.flush()?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person: a log file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            pipeline,
            sets,
            quiet,
            workers,
            checkpoint,
        } => {
            let workers = workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                usize::from,
            );
            run(&pipeline, &sets, quiet, workers, &checkpoint)
        }
        Command::Checkpoints { dir } => list_checkpoints(&dir),
        Command::Query {
            sql,
            format,
            tables,
        } => query(&sql, format, &tables),
        Command::Tables { tables } => list_tables(&tables),
        Command::Compact {
            table,
            min_age,
            tables,
        } => compact(&tables, &table, min_age),
        Command::Check { pipeline, sets } => check(&pipeline, &sets),
        Command::Gen {
            kind: GenKind::Clf { common },
        } => generate(
            weir_source::gen::GenConfig::new(weir_source::gen::GenKind::Clf),
            common,
        ),
        Command::Gen {
            kind:
                GenKind::Ddos {
                    common,
                    targets,
                    attack_share,
                    start,
                },
        } => {
            let mut cfg = weir_source::gen::GenConfig::new(weir_source::gen::GenKind::Ddos);
            cfg.targets = targets;
            cfg.attack_share = attack_share;
            cfg.start = start;
            generate(cfg, common)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("weir: error: {}", error_text(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once: a cause whose text its parent already contains
/// (`opening x: No such file` over `No such file`) adds nothing and is left out.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

/// Prints config errors, one per line, and returns the exit code for them.
fn report(errors: &[weir_core::Error], pipeline: &std::path::Path) -> ExitCode {
    eprintln!(
        "weir: {} has {} problem{}:",
        pipeline.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!("  {e}");
    }
    ExitCode::from(2)
}

fn plan(
    pipeline: &std::path::Path,
    sets: &[String],
) -> Result<config::Plan, Vec<weir_core::Error>> {
    let file = config::load(pipeline, sets)?;
    let plan = config::Plan::new(file)?;
    let pre = plan.preflight();
    if pre.is_empty() {
        Ok(plan)
    } else {
        Err(pre)
    }
}

fn check(pipeline: &std::path::Path, sets: &[String]) -> anyhow::Result<ExitCode> {
    match plan(pipeline, sets) {
        Ok(p) => {
            let mut names: Vec<_> = p.schemas.iter().collect();
            names.sort_by_key(|(n, _)| n.as_str());
            println!("{}: ok", pipeline.display());
            for (name, schema) in names {
                let fields: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect();
                println!("  {name}: {}", fields.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report(&errors, pipeline)),
    }
}

/// Opens the checkpoint directory and finds the checkpoint to resume from.
fn checkpointing(
    args: &CheckpointArgs,
    plan: &config::Plan,
    quiet: bool,
) -> anyhow::Result<Option<weir_runtime::checkpoint::Checkpointing>> {
    use weir_runtime::checkpoint::{Checkpointing, Store};
    let Some(dir) = &args.checkpoint_dir else {
        return Ok(None);
    };
    anyhow::ensure!(
        args.checkpoint_interval.ms > 0,
        "--checkpoint-interval must be more than 0"
    );
    let store = Store::open(dir, args.checkpoint_retain)?;
    if args.reset_state {
        store.reset()?;
        eprintln!(
            "weir: --reset-state: removed the checkpoints in {}",
            dir.display()
        );
    }
    let restore = store.latest()?;
    if let Some(l) = &restore {
        for s in &l.skipped {
            eprintln!("weir: warning: skipped a damaged checkpoint: {s}");
        }
        if !quiet {
            let age = (weir_core::time::now_ms() - l.manifest.created_ms).max(0) as u64;
            eprintln!(
                "weir: resuming from checkpoint epoch {} in {} (taken {} ago)",
                l.manifest.epoch,
                dir.display(),
                humantime_ms(age)
            );
        }
    } else {
        let damaged: Vec<String> = store
            .list()?
            .into_iter()
            // A `.tmp` folder is a checkpoint a crash interrupted: nothing was committed for
            // it, so it does not make a fresh start unsafe.
            .filter(|l| l.path.extension().is_none_or(|x| x != "tmp"))
            .filter_map(|l| {
                l.manifest
                    .err()
                    .map(|why| format!("epoch {}: {why}", l.epoch))
            })
            .collect();
        // Starting over would replay the input into outputs that already hold what the lost
        // checkpoints covered: archives and tables would hold those rows twice.
        anyhow::ensure!(
            damaged.is_empty(),
            "none of the {} checkpoints in {} is usable ({}); starting over would write again \
             what the outputs already hold. Run again with --reset-state to discard the \
             checkpoints and start from the beginning",
            damaged.len(),
            dir.display(),
            damaged.join("; ")
        );
    }
    Ok(Some(Checkpointing {
        store,
        interval: args.checkpoint_interval.to_std(),
        fingerprints: plan.fingerprints.clone(),
        restore,
    }))
}

/// `1234` ms as `1.2 s`, minutes and hours as `3m 05s`, `2h 07m`.
fn humantime_ms(ms: u64) -> String {
    match ms {
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        ms => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn compact(
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

fn query(sql: &str, format: OutFormat, root: &std::path::Path) -> anyhow::Result<ExitCode> {
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

fn list_tables(root: &std::path::Path) -> anyhow::Result<ExitCode> {
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

fn list_checkpoints(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let store = weir_runtime::checkpoint::Store::open(dir, usize::MAX)?;
    let list = store.list()?;
    // Written with `?`, so that `weir checkpoints DIR | head` ends quietly.
    let mut o = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(o, "{}: no checkpoints", dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        o,
        "{}: {} checkpoint{}, newest first",
        dir.display(),
        list.len(),
        if list.len() == 1 { "" } else { "s" }
    )?;
    let now = weir_core::time::now_ms();
    for l in &list {
        match &l.manifest {
            Ok(m) => {
                writeln!(
                    o,
                    "  epoch {:>6}  {}  {:>9} ago  {:>9}  {}",
                    m.epoch,
                    weir_core::time::format_rfc3339_ms(m.created_ms),
                    humantime_ms((now - m.created_ms).max(0) as u64),
                    progress::bytes(m.bytes()),
                    if m.finished { "finished" } else { "running" },
                )?;
                for n in &m.nodes {
                    let pos = match &n.position {
                        Some(p) => format!(
                            " at byte {}{}",
                            progress::thousands(p.offset),
                            p.path
                                .as_deref()
                                .map(|p| format!(" of {p}"))
                                .unwrap_or_default()
                        ),
                        None => String::new(),
                    };
                    writeln!(
                        o,
                        "      {} {}: {}{}{}",
                        n.kind,
                        n.name,
                        progress::bytes(n.bytes),
                        pos,
                        if n.finished { " (finished)" } else { "" }
                    )?;
                }
            }
            Err(why) => writeln!(o, "  epoch {:>6}  DAMAGED: {why}", l.epoch)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(
    pipeline: &std::path::Path,
    sets: &[String],
    quiet: bool,
    workers: usize,
    ck: &CheckpointArgs,
) -> anyhow::Result<ExitCode> {
    let plan = match plan(pipeline, sets) {
        Ok(p) => p,
        Err(errors) => return Ok(report(&errors, pipeline)),
    };
    let checkpointing = checkpointing(ck, &plan, quiet)?;
    let suspends = checkpointing.is_some();
    // Results printed to the terminal and a progress bar on it would garble each other.
    let results_on_terminal = plan.writes_stdout() && std::io::stdout().is_terminal();
    let show_progress = !quiet && !results_on_terminal;
    let started = std::time::Instant::now();
    let mut pipeline_ = plan.build(workers)?;
    pipeline_.checkpoint = checkpointing;
    let running = pipeline_.start()?;
    let stop = running.stop_flag();
    let presses = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(130);
        }
        // Ctrl-C (SIGINT), SIGTERM and SIGHUP all land here: the same graceful stop.
        if suspends {
            eprintln!(
                "\nweir: stopping: taking a final checkpoint; open windows resume with the next \
                 run (a second Ctrl-C or SIGTERM exits at once; the last checkpoint still holds)"
            );
        } else {
            eprintln!(
                "\nweir: stopping: flushing open windows and delivering what is queued (a \
                 second Ctrl-C or SIGTERM exits at once)"
            );
        }
        stop.store(true, Ordering::SeqCst);
    })
    .context("installing the Ctrl-C/SIGTERM handler")?;
    let mut display = show_progress.then(|| progress::Progress::new(running.nodes()));
    while !running.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(d) = &mut display {
            d.tick(started.elapsed());
        }
    }
    if let Some(d) = display.take() {
        d.finish();
    }
    let ck_stats = running.checkpoints();
    // A run that failed after its input ended early (a corrupt file) flushed what it read:
    // its summary says how far it got, so the counters are kept whatever join says.
    let nodes = running.nodes().to_vec();
    let joined = running.join();
    if !quiet {
        eprint!("{}", progress::summary(&nodes, started.elapsed()));
        if let (Some(s), Some(dir)) = (ck_stats, &ck.checkpoint_dir) {
            eprint!(
                "{}",
                progress::checkpoint_summary(&s, &dir.display().to_string())
            );
        }
    }
    joined.map_err(|f| anyhow::anyhow!(f))?;
    Ok(ExitCode::SUCCESS)
}

fn generate(mut cfg: weir_source::gen::GenConfig, common: GenCommon) -> anyhow::Result<ExitCode> {
    use weir_core::{ReadOutcome, Source};
    cfg.count = common.count;
    cfg.rate = common.rate;
    cfg.seed = common.seed;
    let mut src = weir_source::gen::GenSource::new(&cfg)?;
    let mut w = match (&common.out, &common.http) {
        (_, Some(url)) => GenOut::Http(ureq::Agent::new_with_defaults(), url.clone()),
        (Some(p), None) => GenOut::Writer(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        (None, None) => GenOut::Writer(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        ))),
    };
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        buf.clear();
        match src.read(&mut buf, std::time::Duration::from_millis(100))? {
            ReadOutcome::Eof => break,
            ReadOutcome::Idle => w.flush()?,
            ReadOutcome::Data => {
                w.send(&buf)?;
                if cfg.rate > 0 {
                    w.flush()?;
                }
            }
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
