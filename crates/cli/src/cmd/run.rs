//! `weir run`: plan, start, show progress, stop on a signal, print the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use weir_pipeline::config;

use super::check::{plan, report};
use super::checkpoints::humantime_ms;
use crate::progress;

/// Checkpoint options of `weir run`.
#[derive(clap::Args)]
pub(crate) struct CheckpointArgs {
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

pub(crate) fn run(
    pipeline: &std::path::Path,
    sets: &[String],
    quiet: bool,
    workers: usize,
    ck: &CheckpointArgs,
) -> anyhow::Result<ExitCode> {
    let mut plan = match plan(pipeline, sets) {
        Ok(p) => p,
        Err(errors) => return Ok(report(&errors, pipeline)),
    };
    let checkpointing = checkpointing(ck, &plan, quiet)?;
    let suspends = checkpointing.is_some();
    // Results printed to the terminal and a progress bar on it would garble each other.
    let results_on_terminal = plan.writes_stdout() && std::io::stdout().is_terminal();
    let show_progress = !quiet && !results_on_terminal;
    let started = std::time::Instant::now();
    let server = plan.serve()?;
    let mut pipeline_ = plan.build(workers)?;
    if let Some(server) = &server {
        // Printed even with --quiet: it is where clients connect.
        let paths = server.ingest_paths();
        let ingest = match paths.is_empty() {
            true => String::new(),
            false => format!(
                " (POST events to {})",
                paths
                    .iter()
                    .map(|p| format!("{}{p}", server.url()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let shown = server.board().outputs();
        let dashboard = match shown.is_empty() {
            true => String::new(),
            false => format!("; dashboard of {} at {}/", shown.join(", "), server.url()),
        };
        eprintln!("weir: serving at {}{ingest}{dashboard}", server.url());
    }
    pipeline_.checkpoint = checkpointing;
    let running = pipeline_.start()?;
    if let Some(server) = &server {
        watch(server, &running);
    }
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

/// Shows the running pipeline's counters on the dashboard and at `/metrics`.
fn watch(server: &weir_http::Server, running: &weir_runtime::Running) {
    use weir_runtime::NodeKind;
    let nodes = running
        .nodes()
        .iter()
        .map(|n| weir_http::Watched {
            name: n.name.clone(),
            kind: match n.kind {
                NodeKind::Source => "source",
                NodeKind::Stage => "stage",
                NodeKind::Sink => "sink",
            },
            metrics: n.metrics.clone(),
        })
        .collect();
    let probe = running.checkpoints().map(|s| {
        Arc::new(move || {
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            weir_http::CheckpointFigures {
                completed: get(&s.completed),
                failed: get(&s.failed),
                last_epoch: get(&s.last_epoch),
                last_at_ms: get(&s.last_at_ms),
            }
        }) as weir_http::board::CheckpointProbe
    });
    server.board().watch(nodes, probe);
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
