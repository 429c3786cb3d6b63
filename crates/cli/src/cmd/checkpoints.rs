//! `weir checkpoints`: the checkpoints of a directory, newest first.

use std::io::Write;
use std::process::ExitCode;

use crate::progress;

pub(crate) fn list_checkpoints(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
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

/// `1234` ms as `1.2 s`, minutes and hours as `3m 05s`, `2h 07m`.
pub(crate) fn humantime_ms(ms: u64) -> String {
    match ms {
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        ms => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}
