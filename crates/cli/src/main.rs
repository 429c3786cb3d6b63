//! `weir`: the command line of the weir stream-analytics engine.
//!
//! config → validate → plan → build → run. Every subcommand's `--help` explains it.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cmd;
mod progress;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::checkpoints::list_checkpoints;
use cmd::gen::{generate, GenKind};
use cmd::run::{run, CheckpointArgs};
use cmd::tables::{compact, list_tables, query, OutFormat};

/// weir measures event streams as they pass: windows, counts, alerts, in one binary.
#[derive(Parser)]
#[command(name = "weir", version, about, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const LONG_ABOUT: &str = "\
weir measures event streams as they pass: it reads logs and events from files, followed files,
stdin, NATS JetStream streams and MQTT topics, parses them into typed records, places them in
event-time windows, raises threshold alerts the moment they are crossed, and writes results as
each window closes: to the terminal, files, Parquet tables (`weir query` reads them with SQL),
PostgreSQL, webhooks, NATS, MQTT, and rolling compressed archives of the raw stream.

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
        tables, PostgreSQL tables and archives then hold every row exactly once (stdout, \
        webhooks and MQTT are at-least-once; NATS rows carry ids the stream deduplicates on). \
        NATS and MQTT sources acknowledge messages only once a checkpoint holding them is \
        durable. Ctrl-C or SIGTERM then takes a \
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
        /// Threads that parse each source's lines, chunk by chunk, and instances of each keyed
        /// stage (an aggregate with `group_by`, an alert), each owning a share of the keys
        /// (default: the cores this process may use). Results do not depend on it: chunks are
        /// released in input order; an aggregate's rows of one window come ordered by window
        /// end, then key; each key's alerts come in firing order (alerts of different keys
        /// may interleave differently). A checkpoint taken with N workers resumes with any
        /// number. A CSV source with a header and a source paced by `rate` parse on one
        /// thread.
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
    /// Train an anomaly model (isolation forest or unsupervised random forest) from records.
    #[command(
        long_about = "Train an anomaly model from records: an archive a pipeline wrote, or \
        any JSON lines, CSV or Parquet files (plain, gzip or zstd).\n\n\
        Two kinds: `iforest`, an isolation forest (random splits isolate an anomaly in few \
        steps), and `rf`, the reference job's random forest trained to tell the records from \
        synthetic ones made by drawing each feature independently (it finds unusual \
        combinations of ordinary values). Neither needs labels; both assume anomalies are rare \
        in what they learn from. Features are every numeric column unless --features names \
        them; text columns join with --categorical. Training is deterministic for a --seed on \
        any number of --threads.\n\n\
        With --label, a share of the records (--holdout, or the --test file) is kept out of \
        training and the model is measured on it: ROC-AUC, PR-AUC, and precision and recall at \
        the threshold. The model file is written atomically, so an `anomaly` stage watching it \
        swaps to the new model between batches.\n\n\
        Examples:\n  \
        weir train -i archive/enriched/ --exclude index,sequence_id -o models/kdd.model\n  \
        weir train -i kddcup.data_10_percent.gz --names kddcup.names --where \"service = 'http' AND logged_in = 1\" \\\n      \
        --label label --normal-value normal. --model rf -o models/http.model"
    )]
    Train(Box<cmd::train::TrainArgs>),
    /// Score the records of files with a model; its quality when they carry a label.
    #[command(
        long_about = "Score the records of files with a model `weir train` wrote, through the \
        same featurizer and trees as the `anomaly` stage. Prints how many were flagged and, \
        with --label, the model's ROC-AUC, PR-AUC, precision and recall on them; --out writes \
        every record with its score.\n\n\
        Example:\n  \
        weir score -m models/http.model -i corrected.gz --names kddcup.names \\\n      \
        --where \"service = 'http' AND logged_in = 1\" --label label --normal-value normal."
    )]
    Score(Box<cmd::score::ScoreArgs>),
    /// Generate synthetic input (deterministic for a seed) to stdout, a file or an HTTP URL.
    Gen {
        #[command(subcommand)]
        kind: GenKind,
    },
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
        Command::Check { pipeline, sets } => cmd::check::check(&pipeline, &sets),
        Command::Train(args) => cmd::train::train(*args),
        Command::Score(args) => cmd::score::score(*args),
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
        Command::Gen {
            kind:
                GenKind::Clicks {
                    common,
                    products,
                    categories,
                    users,
                    start,
                },
        } => {
            let mut cfg = weir_source::gen::GenConfig::new(weir_source::gen::GenKind::Clicks);
            cfg.products = products;
            cfg.categories = categories;
            cfg.users = users;
            cfg.start = start;
            generate(cfg, common)
        }
        Command::Gen {
            kind:
                GenKind::Kdd {
                    common,
                    file,
                    names,
                    once,
                    start,
                },
        } => {
            let mut cfg = weir_source::gen::GenConfig::new(weir_source::gen::GenKind::Kdd);
            cfg.file = Some(file);
            cfg.names = names;
            cfg.once = once;
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
