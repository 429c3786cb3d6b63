//! Standard input, e.g. `tail -F access.log | weir run pipeline.toml`.
//!
//! A thread blocks on stdin and hands chunks over a small bounded channel, so the source
//! node can wake up on a timer (to advance the idle watermark) while no input arrives.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};

use serde::Deserialize;
use weir_core::{Error, ReadOutcome, Result, Source, SourcePosition};

/// `[source.NAME] type = "stdin"`: reads standard input until it closes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {}

/// Reads from any blocking reader on a helper thread (stdin in production).
pub struct StdinSource {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    offset: u64,
    done: bool,
}

impl StdinSource {
    /// Reads standard input.
    pub fn new(_cfg: &StdinConfig) -> Self {
        Self::from_reader(std::io::stdin())
    }

    /// Reads `r` (tests use pipes).
    pub fn from_reader(mut r: impl Read + Send + 'static) -> Self {
        let (tx, rx) = sync_channel(4);
        std::thread::Builder::new()
            .name("weir-stdin".into())
            .spawn(move || loop {
                let mut buf = Vec::new();
                match crate::read_chunk(&mut r, &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            })
            .expect("spawning the stdin reader thread");
        StdinSource {
            rx,
            offset: 0,
            done: false,
        }
    }
}

impl Source for StdinSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: std::time::Duration) -> Result<ReadOutcome> {
        if self.done {
            return Ok(ReadOutcome::Eof);
        }
        match self.rx.recv_timeout(wait) {
            Ok(Ok(chunk)) => {
                self.offset += chunk.len() as u64;
                buf.extend_from_slice(&chunk);
                Ok(ReadOutcome::Data)
            }
            Ok(Err(e)) => Err(Error::io("reading standard input", e)),
            Err(RecvTimeoutError::Timeout) => Ok(ReadOutcome::Idle),
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                Ok(ReadOutcome::Eof)
            }
        }
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::at(self.offset)
    }

    /// Standard input cannot be rewound: a resumed run keeps the state of the checkpoint and
    /// reads what the new standard input brings. Lines the old run read after the checkpoint
    /// are not read again unless the sender repeats them (use a file or tail source for
    /// exactly-once input).
    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        if pos.offset > 0 {
            tracing::warn!(
                offset = pos.offset,
                "standard input cannot be rewound: resuming the state, reading the new input \
                 from its start"
            );
        }
        Ok(())
    }
}
