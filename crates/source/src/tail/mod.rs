//! A file followed like `tail -F`: new lines are read as they are appended; when the file is
//! renamed away (log rotation) the old file is read to its end and the new file at the path is
//! read from its start; when the file is truncated (`copytruncate`) reading restarts at 0.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::{Error, ReadOutcome, Result, Source, SourcePosition};

/// Where a followed file is first read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The whole file, then what is appended (default: nothing already there is lost).
    #[default]
    Beginning,
    /// Only what is appended after weir starts, like `tail -F -n0`.
    End,
}

const fn default_poll() -> Duration {
    Duration::from_ms(250)
}

/// `[source.NAME] type = "tail"`: follows a file forever, across rotation and truncation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// Path to follow. It may not exist yet; weir waits for it.
    pub path: PathBuf,
    /// `"beginning"` (default) or `"end"`.
    #[serde(default)]
    pub from: StartAt,
    /// How often to look for new data at the end of the file (default `"250ms"`).
    #[serde(default = "default_poll")]
    pub poll_interval: Duration,
}

/// The followed file.
pub struct TailSource {
    cfg: TailConfig,
    file: Option<File>,
    id: Option<(u64, u64)>,
    offset: u64,
    opened_once: bool,
}

impl TailSource {
    /// Starts following; the file is opened on the first read.
    pub fn new(cfg: &TailConfig) -> Self {
        TailSource {
            cfg: cfg.clone(),
            file: None,
            id: None,
            offset: 0,
            opened_once: false,
        }
    }

    fn open(&mut self) -> Result<bool> {
        let file = match File::open(&self.cfg.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("opening {}", self.cfg.path.display()), e)),
        };
        let meta = file.metadata().map_err(|e| {
            Error::io(
                format!("reading metadata of {}", self.cfg.path.display()),
                e,
            )
        })?;
        self.id = crate::file_id(&meta);
        self.offset = 0;
        self.file = Some(file);
        if !self.opened_once && self.cfg.from == StartAt::End {
            self.seek_to(meta.len())?;
        }
        self.opened_once = true;
        Ok(true)
    }

    fn seek_to(&mut self, offset: u64) -> Result<()> {
        if let Some(f) = &mut self.file {
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(format!("seeking in {}", self.cfg.path.display()), e))?;
            self.offset = offset;
        }
        Ok(())
    }

    /// At the end of the current file: has it been rotated away or truncated?
    fn check_path(&mut self) -> Result<bool> {
        let meta = match std::fs::metadata(&self.cfg.path) {
            Ok(m) => m,
            Err(_) => return Ok(false), // renamed and not yet recreated: keep the old file
        };
        if crate::file_id(&meta) != self.id {
            tracing::info!(path = %self.cfg.path.display(), "file rotated; reading the new file from its start");
            return self.open();
        }
        if meta.len() < self.offset {
            tracing::warn!(path = %self.cfg.path.display(), old = self.offset, new = meta.len(), "file truncated; reading from its start");
            self.seek_to(0)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Source for TailSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: std::time::Duration) -> Result<ReadOutcome> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.file.is_none() && !self.open()? {
                // Not there yet.
            } else if let Some(f) = &mut self.file {
                let n = crate::read_chunk(f, buf)
                    .map_err(|e| Error::io(format!("reading {}", self.cfg.path.display()), e))?;
                if n > 0 {
                    self.offset += n as u64;
                    return Ok(ReadOutcome::Data);
                }
                if self.check_path()? {
                    continue;
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(ReadOutcome::Idle);
            }
            std::thread::sleep(self.cfg.poll_interval.to_std().min(deadline - now));
        }
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            path: Some(self.cfg.path.display().to_string()),
            file_id: self.id,
            offset: self.offset,
        }
    }

    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        if !self.open()? {
            return Ok(());
        }
        if pos.file_id.is_none() || pos.file_id == self.id {
            self.seek_to(pos.offset)
        } else {
            tracing::warn!(path = %self.cfg.path.display(), "the file was rotated since the checkpoint; reading the new file from its start");
            self.seek_to(0)
        }
    }
}

#[cfg(test)]
mod tests;
