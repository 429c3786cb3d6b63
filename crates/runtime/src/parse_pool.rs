//! Parsing one source's chunks on several threads, delivered in input order.
//!
//! ```text
//!                      ┌─ parser 1 ─┐
//!  source ── chunk k ──┼─ parser 2 ─┼── (k, batch, dead letters) ──▶ reorder ──▶ source node
//!  (read, frame)       └─ parser N ─┘                                 (k, k+1, …)
//! ```
//! The source node reads and frames lines as before, numbers each chunk of complete lines and
//! hands it to whichever parser is free; the results come back in any order and are released in
//! chunk order. Everything that depends on order (watermarks, `max_future`, dead-letter order,
//! checkpoint positions) stays on the source node, so N parsers produce exactly the batches one
//! would. Only parsers whose chunks are independent ([`Parser::chunks_independent`]) are run
//! this way. A parser thread also finds its batch's newest event time, and runs its copy of a
//! stateless stage chained to the source and cuts that stage's rows for the keyed stage after
//! it (see `chain`), so the source node only passes them on.

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use weir_core::deadletter::DeadLetters;
use weir_core::parse::ParseCounts;
use weir_core::time::Millis;
use weir_core::{Error, Operator, Parser, Port, Result};

use crate::chain::{apply, cuts, Emitted, Route};
use crate::node::{max_time, Splits};

/// A chunk to parse.
struct Job {
    seq: u64,
    first_line: u64,
    bytes: Vec<u8>,
}

/// A parsed chunk.
pub(crate) struct Parsed {
    seq: u64,
    /// Lines the parser consumed.
    pub lines: u64,
    pub batch: RecordBatch,
    pub dead: DeadLetters,
    pub counts: ParseCounts,
    /// The chunk's buffer, for [`ParsePool::recycle`].
    pub bytes: Vec<u8>,
    /// The newest event time in `batch`, when the source has event time.
    pub newest: Option<Millis>,
    /// `batch` cut (and folded) for the keyed stages that read the source.
    pub cuts: Splits,
    /// What the thread's copy of a chained stage emitted for `batch` (see `chain`).
    pub chained: Option<Emitted>,
}

/// Parser threads and the chunks in flight.
pub(crate) struct ParsePool {
    jobs: Option<Sender<Job>>,
    results: Receiver<Parsed>,
    threads: Vec<JoinHandle<()>>,
    /// Number of the next chunk submitted, and of the next one to release.
    next_seq: u64,
    next_out: u64,
    /// Parsed chunks that arrived before an earlier one.
    early: BTreeMap<u64, Parsed>,
    /// Buffers of parsed chunks, for the next ones.
    free: Vec<Vec<u8>>,
    /// Chunks in flight at most: two per parser keeps every parser busy while the source
    /// frames the next chunk; the memory held is that many chunks.
    cap: u64,
}

impl ParsePool {
    /// Starts one thread per parser for the source `name`. Each thread also finds the newest
    /// event time of its batches (in column `time_col`), cuts them for the source's routes
    /// `own`, and applies its copy of a chained stage's operator, if `chained` has one per
    /// parser, cutting its rows for `routes`.
    pub fn start(
        name: &str,
        parsers: Vec<Box<dyn Parser>>,
        time_col: Option<usize>,
        own: Vec<Route>,
        chained: Vec<Box<dyn Operator>>,
        routes: Vec<Route>,
    ) -> Result<Self> {
        let cap = 2 * parsers.len() as u64;
        let (jobs_tx, jobs_rx) = bounded::<Job>(cap as usize);
        let (results_tx, results_rx) = unbounded::<Parsed>();
        let mut threads = Vec::new();
        let mut ops: Vec<Option<Box<dyn Operator>>> = if chained.len() == parsers.len() {
            chained.into_iter().map(Some).collect()
        } else {
            std::iter::repeat_with(|| None)
                .take(parsers.len())
                .collect()
        };
        for (i, mut parser) in parsers.into_iter().enumerate() {
            let mut op = ops[i].take();
            let (own, routes) = (own.clone(), routes.clone());
            let (jobs, results) = (jobs_rx.clone(), results_tx.clone());
            let node = name.to_string();
            let h = std::thread::Builder::new()
                // Linux keeps 15 bytes of a thread's name: the number goes first.
                .name(format!("weir-p{i}-{name}"))
                .spawn(move || {
                    for job in jobs {
                        let mut dead = DeadLetters::new(&node);
                        let lines = parser.parse_chunk(&job.bytes, job.first_line, &mut dead);
                        let counts = parser.take_counts();
                        let batch = parser.finish();
                        let parsed = Parsed {
                            seq: job.seq,
                            lines,
                            counts,
                            newest: time_col.and_then(|c| max_time(&batch, c)),
                            // Parsers fill the main output only.
                            cuts: cuts(&batch, Port::Main, &own).unwrap_or_default(),
                            chained: op.as_deref_mut().and_then(|op| apply(op, &batch, &routes)),
                            batch,
                            dead,
                            bytes: job.bytes,
                        };
                        if results.send(parsed).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::io(format!("starting a parser thread for {name}"), e))?;
            threads.push(h);
        }
        Ok(ParsePool {
            jobs: Some(jobs_tx),
            results: results_rx,
            threads,
            next_seq: 0,
            next_out: 0,
            early: BTreeMap::new(),
            free: Vec::new(),
            cap,
        })
    }

    /// Chunks submitted and not yet released.
    pub fn in_flight(&self) -> u64 {
        self.next_seq - self.next_out
    }

    /// Whether another chunk may be submitted without waiting.
    pub fn has_room(&self) -> bool {
        self.in_flight() < self.cap
    }

    /// Hands `bytes`, whole lines whose first is `first_line`, to a parser without copying
    /// them. Call only with room.
    pub fn submit(&mut self, bytes: Vec<u8>, first_line: u64) -> Result<()> {
        debug_assert!(self.has_room());
        let job = Job {
            seq: self.next_seq,
            first_line,
            bytes,
        };
        self.jobs
            .as_ref()
            .expect("open until dropped")
            .send(job)
            .map_err(|_| lost())?;
        self.next_seq += 1;
        Ok(())
    }

    /// An empty buffer with room for `capacity` bytes: one a parser is done with, if any.
    pub fn spare(&mut self, capacity: usize) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        b.clear();
        b.reserve(capacity);
        b
    }

    /// The next chunk in input order: waits for it when `wait`, else returns it only if it
    /// is parsed already. `None` when nothing is in flight (or, without `wait`, not ready).
    pub fn next(&mut self, wait: bool) -> Result<Option<Parsed>> {
        loop {
            if let Some(p) = self.early.remove(&self.next_out) {
                self.next_out += 1;
                return Ok(Some(p));
            }
            if self.in_flight() == 0 {
                return Ok(None);
            }
            let got = if wait {
                self.results.recv().map_err(|_| lost())?
            } else {
                match self.results.try_recv() {
                    Ok(p) => p,
                    Err(crossbeam_channel::TryRecvError::Empty) => return Ok(None),
                    Err(_) => return Err(lost()),
                }
            };
            self.early.insert(got.seq, got);
        }
    }

    /// Takes back a released chunk's buffer.
    pub fn recycle(&mut self, bytes: Vec<u8>) {
        if self.free.len() < self.cap as usize {
            self.free.push(bytes);
        }
    }
}

fn lost() -> Error {
    Error::Internal("a parser thread stopped (it panicked); see the message above".into())
}

impl Drop for ParsePool {
    fn drop(&mut self) {
        // Closing the job channel ends the threads once they finish their chunk.
        self.jobs = None;
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// Lines in `chunk` as [`weir_core::parse::for_each_line`] counts them: one per `\n`, and a
/// last line without one.
pub(crate) fn count_lines(chunk: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', chunk).count() as u64;
    newlines + u64::from(chunk.last().is_some_and(|b| *b != b'\n'))
}
