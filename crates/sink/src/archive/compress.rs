//! Members compressed on worker threads, appended in order.
//!
//! gzip at level 6 compresses about 100 MiB/s on one core: on the sink's own thread it would
//! hold a pipeline that parses ten times faster. Input is cut into chunks of [`CHUNK`] bytes;
//! each chunk becomes one complete member (gzip member, zstd frame), compressed by a pool of
//! workers, and the members are appended to the file in input order. Concatenated members are
//! one valid gzip or zstd stream for every reader, and a member is appended whole, so a reader
//! of the file being written never meets a cut one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use weir_core::{Error, Result};

use super::ArchiveCodec;

/// Input bytes per member.
pub(crate) const CHUNK: usize = 1 << 20;

/// One member's bytes, or why compressing it failed.
type Done = Receiver<std::io::Result<Vec<u8>>>;

struct Job {
    raw: Vec<u8>,
    done: Sender<std::io::Result<Vec<u8>>>,
}

/// Compresses one member.
pub(crate) fn compress(
    codec: ArchiveCodec,
    level: Option<i32>,
    raw: &[u8],
) -> std::io::Result<Vec<u8>> {
    match codec {
        ArchiveCodec::Gzip => {
            let level = flate2::Compression::new(level.unwrap_or(6) as u32);
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 4), level);
            e.write_all(raw)?;
            e.finish()
        }
        ArchiveCodec::Zstd => zstd::bulk::compress(raw, level.unwrap_or(3)),
        ArchiveCodec::None => Ok(raw.to_vec()),
    }
}

/// The workers of one sink.
pub(crate) struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Members one file may have in flight before its writer waits (bounds memory).
    pub(crate) max_inflight: usize,
}

impl Pool {
    /// One worker per core (at most 8).
    pub(crate) fn new(codec: ArchiveCodec, level: Option<i32>) -> Result<Pool> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let (tx, rx) = unbounded::<Job>();
        let threads = (0..n)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("weir-archive-{i}"))
                    .spawn(move || {
                        for job in rx {
                            // The writer may be gone (an error elsewhere): nothing to tell.
                            let _ = job.done.send(compress(codec, level, &job.raw));
                        }
                    })
                    .map_err(|e| Error::io("starting a compression thread", e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Pool {
            jobs: Some(tx),
            threads,
            max_inflight: 2 * n,
        })
    }

    fn submit(&self, raw: Vec<u8>) -> Done {
        let (done, rx) = bounded(1);
        let jobs = self.jobs.as_ref().expect("the pool is open until dropped");
        if let Err(e) = jobs.send(Job { raw, done }) {
            // Workers only stop when the pool is dropped; answer for them.
            let _ =
                e.0.done
                    .send(Err(std::io::Error::other("compression workers stopped")));
        }
        rx
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The compressed stream of one file: input not yet in a member, and members in flight.
#[derive(Default)]
pub(crate) struct Members {
    raw: Vec<u8>,
    inflight: VecDeque<Done>,
}

impl Members {
    /// Adds input; full chunks go to the pool, and members already done reach the file.
    /// Returns the bytes appended to `file`.
    pub(crate) fn write(
        &mut self,
        pool: &Pool,
        file: &mut File,
        name: &str,
        bytes: &[u8],
    ) -> Result<u64> {
        self.raw.extend_from_slice(bytes);
        if self.raw.len() < CHUNK {
            return Ok(0);
        }
        let raw = std::mem::take(&mut self.raw);
        self.inflight.push_back(pool.submit(raw));
        let mut written = 0;
        while let Some(front) = self.inflight.front() {
            let ready = !front.is_empty() || self.inflight.len() > pool.max_inflight;
            if !ready {
                break;
            }
            written += self.append_front(file, name)?;
        }
        Ok(written)
    }

    /// Ends the current member and waits until every member is in the file. Returns the
    /// bytes appended.
    pub(crate) fn flush(&mut self, pool: &Pool, file: &mut File, name: &str) -> Result<u64> {
        if !self.raw.is_empty() {
            let raw = std::mem::take(&mut self.raw);
            self.inflight.push_back(pool.submit(raw));
        }
        let mut written = 0;
        while !self.inflight.is_empty() {
            written += self.append_front(file, name)?;
        }
        Ok(written)
    }

    /// Input bytes not yet in the file (buffered or being compressed), for rolling by size.
    pub(crate) fn pending(&self) -> u64 {
        (self.raw.len() + self.inflight.len() * CHUNK) as u64
    }

    /// Whether everything written is in the file.
    pub(crate) fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.inflight.is_empty()
    }

    fn append_front(&mut self, file: &mut File, name: &str) -> Result<u64> {
        let rx = self.inflight.pop_front().expect("checked by the caller");
        let bytes = rx
            .recv()
            .map_err(|_| Error::Internal("a compression worker vanished".into()))?
            .map_err(|e| Error::io(format!("compressing for {name}"), e))?;
        file.write_all(&bytes)
            .map_err(|e| Error::io(format!("writing {name}"), e))?;
        Ok(bytes.len() as u64)
    }
}
