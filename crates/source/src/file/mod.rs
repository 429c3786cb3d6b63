//! A file read once from start to end; `.gz` files are decompressed on the fly.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use weir_core::{Error, ReadOutcome, Result, Source, SourcePosition};

/// `[source.NAME] type = "file"`: reads a file once, then ends the stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path of the file. A name ending in `.gz` is read as gzip.
    pub path: PathBuf,
}

/// A file being read.
pub struct FileSource {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    offset: u64,
    size: Option<u64>,
    id: Option<(u64, u64)>,
    gz: bool,
    /// Compressed bytes the decoder has taken from the file (gzip only).
    taken: Arc<AtomicU64>,
    /// The error that ended the input early.
    failure: Option<Error>,
}

/// Counts the bytes read through it, for error messages that name a place in the file.
struct Counting<R> {
    inner: R,
    taken: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl FileSource {
    /// Opens the file.
    pub fn open(cfg: &FileConfig) -> Result<Self> {
        let path = cfg.path.clone();
        let file =
            File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?;
        let gz = path.extension().is_some_and(|e| e == "gz");
        let taken = Arc::new(AtomicU64::new(0));
        let reader: Box<dyn Read + Send> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                Counting {
                    inner: file,
                    taken: taken.clone(),
                },
            )))
        } else {
            Box::new(file)
        };
        Ok(FileSource {
            path,
            reader,
            offset: 0,
            size: (!gz).then_some(meta.len()),
            id: crate::file_id(&meta),
            gz,
            taken,
            failure: None,
        })
    }
}

impl Source for FileSource {
    fn read(&mut self, buf: &mut Vec<u8>, _wait: std::time::Duration) -> Result<ReadOutcome> {
        if self.failure.is_some() {
            return Ok(ReadOutcome::Eof);
        }
        let n = match crate::read_chunk(&mut self.reader, buf) {
            Ok(n) => n,
            // Corrupt or truncated compressed data: what was decoded so far is processed and
            // flushed, then the run fails with this one error (see `Source::failure`).
            Err(e) if self.gz => {
                let near = self.taken.load(Ordering::Relaxed);
                self.failure = Some(Error::io(
                    format!(
                        "{} is not valid gzip from near compressed byte {near} (after {} \
                         decompressed bytes were read); the input ends there",
                        self.path.display(),
                        self.offset
                    ),
                    e,
                ));
                return Ok(ReadOutcome::Eof);
            }
            Err(e) => {
                return Err(Error::io(
                    format!("reading {} at byte {}", self.path.display(), self.offset),
                    e,
                ))
            }
        };
        self.offset += n as u64;
        Ok(if n == 0 {
            ReadOutcome::Eof
        } else {
            ReadOutcome::Data
        })
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            path: Some(self.path.display().to_string()),
            file_id: self.id,
            offset: self.offset,
            splits: Vec::new(),
        }
    }

    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        if pos.file_id.is_some() && pos.file_id != self.id {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "{} is not the file the checkpoint was taken from (its identity changed)",
                    self.path.display()
                ),
            ));
        }
        // Decompressed streams cannot seek: skip forward by reading (gzip) or seek (plain).
        let mut fresh = FileSource::open(&FileConfig {
            path: self.path.clone(),
        })?;
        let skipped = std::io::copy(
            &mut (&mut fresh.reader).take(pos.offset),
            &mut std::io::sink(),
        )
        .map_err(|e| {
            Error::io(
                format!("skipping to byte {} of {}", pos.offset, self.path.display()),
                e,
            )
        })?;
        fresh.offset = skipped;
        let _ = self.gz;
        *self = fresh;
        Ok(())
    }

    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn failure(&mut self) -> Option<Error> {
        self.failure.take()
    }
}

#[cfg(test)]
mod tests;
