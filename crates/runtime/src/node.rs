//! The loops that drive one node each.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, RecordBatch};
use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};
use weir_core::deadletter::DeadLetters;
use weir_core::metrics::NodeMetrics;
use weir_core::time::{now_ms, Millis, MAX_TIME, MIN_TIME};
use weir_core::watermark::{WatermarkGen, WatermarkState};
use weir_core::{Emitter, Error, Message, Port, ReadOutcome, Result, SourcePosition};

use crate::align::{Aligner, Event};
use crate::chain::{Chain, Emitted};
use crate::checkpoint::{decode_instances, CheckpointStats, NodeCk};
use crate::exchange::Receiving;
use crate::parse_pool::{count_lines, ParsePool};
use crate::{Output, Receiver as Input, SinkSpec, SourceSpec};

/// A node's part in checkpointing.
pub(crate) struct NodeCkpt {
    pub ck: NodeCk,
    /// Its state in the checkpoint being resumed from, and the number of instances that
    /// wrote it (see `checkpoint::decode_instances`).
    pub restore: Option<(Vec<u8>, usize)>,
    /// The epoch resumed from (0: a fresh start).
    pub base_epoch: u64,
    pub stats: Arc<CheckpointStats>,
    /// Sources and sinks: epochs that became durable.
    pub commits: Option<Receiver<u64>>,
}

impl NodeCkpt {
    /// Runs `restore` and adds its time to the restore figures (nodes restore in parallel, so
    /// the slowest one is the pipeline's restore time).
    pub(crate) fn timed(&self, restore: impl FnOnce() -> Result<()>) -> Result<()> {
        let t = Instant::now();
        restore()?;
        let us = t.elapsed().as_micros() as u64;
        self.stats.restore_us.fetch_max(us, Ordering::Relaxed);
        Ok(())
    }
}

/// How often idle nodes wake up: watermark polling, processing-time ticks, sink flushes.
const TICK: Duration = Duration::from_millis(100);

/// The rows of one message already cut over the instances behind some outputs (see
/// `chain::cuts`): (output index, (instance, a message of its rows)), an instance possibly
/// more than once.
pub(crate) type Splits = Vec<(usize, Vec<(usize, Message)>)>;

pub(crate) fn send(outputs: &[Output], port: Port, msg: &Message) -> Result<()> {
    send_split(outputs, port, msg, Vec::new())
}

/// [`send`], taking the cut of the rows for the outputs in `pre` from it.
fn send_split(outputs: &[Output], port: Port, msg: &Message, mut pre: Splits) -> Result<()> {
    for (i, o) in outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.port == port || matches!(msg, Message::End | Message::Barrier(_)))
    {
        let stopped = |_| Error::Stopped(o.to.clone());
        match (msg, &o.route) {
            // Rows to the instance that owns their key; the rest to every instance.
            (Message::Data(b), Some(p)) => {
                let parts = match pre.iter().position(|(out, _)| *out == i) {
                    Some(at) => pre.swap_remove(at).1,
                    None => weir_core::operator::split(b, p.as_ref(), o.targets.len())?
                        .into_iter()
                        .map(|(k, part)| (k, Message::Data(part)))
                        .collect(),
                };
                for (k, part) in parts {
                    let (idx, tx) = &o.targets[k];
                    tx.send((*idx, part)).map_err(stopped)?;
                }
            }
            _ => {
                for (idx, tx) in &o.targets {
                    tx.send((*idx, msg.clone())).map_err(stopped)?;
                }
            }
        }
    }
    Ok(())
}

fn rows_of(msg: &Message) -> u64 {
    match msg {
        Message::Data(b) => b.num_rows() as u64,
        _ => 0,
    }
}

/// Sends what an operator or source emitted and counts it.
pub(crate) fn dispatch(
    outputs: &[Output],
    m: &NodeMetrics,
    port: Port,
    msg: Message,
) -> Result<()> {
    dispatch_split(outputs, m, port, msg, Vec::new())
}

/// [`dispatch`] of rows already cut for some outputs (see [`send_split`]).
pub(crate) fn dispatch_split(
    outputs: &[Output],
    m: &NodeMetrics,
    port: Port,
    msg: Message,
    pre: Splits,
) -> Result<()> {
    let n = rows_of(&msg);
    match port {
        Port::Main => {
            NodeMetrics::add(&m.records_out, n);
            if n > 0 {
                NodeMetrics::add(&m.emitted, 1);
            }
        }
        Port::Late => NodeMetrics::add(&m.late, n),
        Port::Errors => NodeMetrics::add(&m.malformed, n),
        Port::Alerts => NodeMetrics::add(&m.alerts, n),
        Port::Duplicates => NodeMetrics::add(&m.duplicates, n),
    }
    if let Message::Watermark(w) = msg {
        m.watermark.store(w, Ordering::Relaxed);
    }
    send_split(outputs, port, &msg, pre)
}

pub(crate) fn max_time(batch: &RecordBatch, col: usize) -> Option<Millis> {
    let a = batch
        .column(col)
        .as_primitive_opt::<TimestampMillisecondType>()?;
    if a.null_count() == 0 {
        a.values().iter().copied().max()
    } else {
        a.iter().flatten().max()
    }
}

/// Sends the rows of `batch` dated after `limit` to the dead letters, with the reason, and
/// returns the others (see `EventTimeConfig::max_future`). Called only for a batch whose
/// newest event time is after `limit`.
#[cold]
fn refuse_future(
    batch: RecordBatch,
    col: usize,
    limit: Millis,
    dead: &mut DeadLetters,
) -> Result<RecordBatch> {
    let Some(times) = batch
        .column(col)
        .as_primitive_opt::<TimestampMillisecondType>()
        .cloned()
    else {
        return Ok(batch);
    };
    let keep: arrow_array::BooleanArray = times
        .iter()
        .map(|t| Some(t.is_none_or(|t| t <= limit)))
        .collect();
    for (row, t) in times.iter().enumerate() {
        if let Some(t) = t.filter(|t| *t > limit) {
            let reason = format!(
                "event time {} is after {} (the newest event time or the clock, plus \
                 max_future); refused so that it does not make later records late",
                weir_core::time::format_rfc3339_ms(t),
                weir_core::time::format_rfc3339_ms(limit)
            );
            dead.push_row(&reason, &batch, row);
        }
    }
    Ok(arrow_select::filter::filter_record_batch(&batch, &keep)?)
}

/// What a source node keeps across a restart.
#[derive(Debug, Serialize, Deserialize)]
struct SourceState {
    /// Where the next unparsed line starts.
    position: SourcePosition,
    line_no: u64,
    skipping: bool,
    watermark: Option<WatermarkState>,
}

/// Version 2 added the splits of message sources to the position.
const SOURCE_STATE_VERSION: u32 = 2;

/// A source's state as weir wrote it before message sources (version 1).
#[derive(Deserialize)]
struct SourceStateV1 {
    position: (Option<String>, Option<(u64, u64)>, u64),
    line_no: u64,
    skipping: bool,
    watermark: Option<WatermarkState>,
}

fn decode_source_state(bytes: &[u8]) -> Result<SourceState> {
    weir_core::state::decode("source", SOURCE_STATE_VERSION, bytes).or_else(|e| {
        let Ok(v1) = weir_core::state::decode::<SourceStateV1>("source", 1, bytes) else {
            return Err(e);
        };
        let (path, file_id, offset) = v1.position;
        Ok(SourceState {
            position: SourcePosition {
                path,
                file_id,
                offset,
                splits: Vec::new(),
            },
            line_no: v1.line_no,
            skipping: v1.skipping,
            watermark: v1.watermark,
        })
    })
}

/// A source node: reads bytes, frames them into lines, parses, and sends batches, dead
/// letters, watermarks and checkpoint barriers.
struct SourceNode<'a> {
    spec: SourceSpec,
    outs: Vec<Output>,
    m: &'a NodeMetrics,
    time_col: Option<usize>,
    wm: Option<WatermarkGen>,
    dead: DeadLetters,
    /// Bytes read but not parsed yet: the partial last line (and, when rate-limited, complete
    /// lines not yet due).
    buf: Vec<u8>,
    /// Number of the next line.
    line_no: u64,
    /// Inside a line longer than `max_line`, dropping bytes up to its end.
    skipping: bool,
    ck: Option<NodeCkpt>,
    /// The newest epoch whose barrier this source sent.
    injected: u64,
    /// Rate limit: when it started and lines parsed since.
    rate_clock: (Instant, u64),
    /// Parser threads, when chunks are parsed in parallel.
    pool: Option<ParsePool>,
    /// Positions in checkpoints not known durable yet, by epoch, to commit to the source
    /// (acknowledge to its broker) once they are.
    uncommitted: std::collections::VecDeque<(u64, SourcePosition)>,
    /// A stateless stage that reads this source's main output, run here (see `chain`).
    chain: Option<Chain>,
    /// Once the pipeline stops: whether the source still hands out input it promised to
    /// deliver (see `Source::stopping`), read to its end before the node ends.
    draining: Option<bool>,
}

pub(crate) fn run_source(
    mut spec: SourceSpec,
    outs: Vec<Output>,
    m: &NodeMetrics,
    stop: &AtomicBool,
    ck: Option<NodeCkpt>,
    chain: Option<(Chain, Vec<Box<dyn weir_core::Operator>>)>,
) -> Result<()> {
    let time_col = match &spec.event_time {
        Some(et) => Some(spec.parser.schema().index_of(&et.field).map_err(|_| {
            Error::Schema(format!(
                "source {}: event_time.field {:?} is not a parsed field",
                spec.name, et.field
            ))
        })?),
        None => None,
    };
    // A paced source releases a few lines at a time: nothing for parallel parsers to share.
    let parallel = std::mem::take(&mut spec.parallel);
    let (chain, beside) = match chain {
        Some((c, beside)) => (Some(c), beside),
        None => (None, Vec::new()),
    };
    let pool = if parallel.is_empty() || spec.rate > 0 {
        None
    } else {
        let routes = chain.as_ref().map(|c| c.routes()).unwrap_or_default();
        Some(ParsePool::start(
            &spec.name,
            parallel,
            time_col,
            crate::chain::routes(&outs),
            beside,
            routes,
        )?)
    };
    let mut node = SourceNode {
        pool,
        wm: spec.event_time.as_ref().map(WatermarkGen::new),
        dead: DeadLetters::new(&spec.name),
        spec,
        outs,
        m,
        time_col,
        buf: Vec::with_capacity(2 * READ_CHUNK),
        line_no: 1,
        skipping: false,
        injected: ck.as_ref().map_or(0, |c| c.base_epoch),
        ck,
        rate_clock: (Instant::now(), 0),
        uncommitted: Default::default(),
        chain,
        draining: None,
    };
    node.restore()?;
    node.run(stop)
}

/// Bytes the source node keeps room for per read.
const READ_CHUNK: usize = 1 << 20;

impl SourceNode<'_> {
    fn restore(&mut self) -> Result<()> {
        if let Some(c) = self.chain.as_mut() {
            c.restore()?;
        }
        let Some(ck) = &self.ck else {
            return Ok(());
        };
        let Some((bytes, _)) = &ck.restore else {
            return Ok(());
        };
        let st = decode_source_state(bytes)?;
        ck.timed(|| self.spec.source.seek(&st.position))?;
        self.line_no = st.line_no;
        self.skipping = st.skipping;
        if let (Some(g), Some(w)) = (self.wm.as_mut(), &st.watermark) {
            g.restore(w, now_ms());
        }
        tracing::info!(source = %self.spec.name, offset = st.position.offset, line = st.line_no, "resuming");
        Ok(())
    }

    /// The source's state now; the position is that of the first unparsed line.
    fn state(&self) -> Result<(Vec<u8>, SourcePosition)> {
        let position = self.spec.source.position_before(self.buf.len() as u64);
        let st = SourceState {
            position: position.clone(),
            line_no: self.line_no,
            skipping: self.skipping,
            watermark: self.wm.as_ref().map(WatermarkGen::state),
        };
        Ok((
            weir_core::state::encode("source", SOURCE_STATE_VERSION, &st)?,
            position,
        ))
    }

    /// Sends a barrier if the coordinator asked for a new epoch.
    fn barrier(&mut self) -> Result<()> {
        let Some(ck) = &self.ck else {
            return Ok(());
        };
        let epoch = ck.ck.requested.load(Ordering::SeqCst);
        if epoch <= self.injected {
            return Ok(());
        }
        // The checkpoint's position is that of the first unparsed line: every chunk handed to
        // a parser is released first.
        self.release(true)?;
        self.flush_dead()?;
        let (state, position) = self.state()?;
        self.ck
            .as_ref()
            .expect("checked")
            .ck
            .report(Some(epoch), state, Some(position.clone()))?;
        send(&self.outs, Port::Main, &Message::Barrier(epoch))?;
        if let Some(c) = self.chain.as_mut() {
            c.barrier(epoch)?;
        }
        self.injected = epoch;
        self.uncommitted.push_back((epoch, position));
        Ok(())
    }

    /// Commits to the source the newest position whose checkpoint is durable. With `wait`
    /// (after the final state was reported), waits until the checkpoint holding it is durable
    /// or the coordinator has finished without it.
    fn commit_durable(&mut self, wait: bool) -> Result<()> {
        let Some(commits) = self.ck.as_ref().and_then(|c| c.commits.as_ref()) else {
            return Ok(());
        };
        let mut durable = None;
        loop {
            let next = if wait && !self.uncommitted.is_empty() {
                commits.recv().ok()
            } else {
                commits.try_recv().ok()
            };
            let Some(epoch) = next else { break };
            let mut newest = None;
            while self.uncommitted.front().is_some_and(|(e, _)| *e <= epoch) {
                newest = self.uncommitted.pop_front().map(|(_, p)| p);
            }
            durable = newest.or(durable);
        }
        match durable {
            Some(pos) => self.spec.source.commit(&pos),
            None => Ok(()),
        }
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        loop {
            self.barrier()?;
            let stopped = stop.load(Ordering::Relaxed);
            if stopped && self.draining.is_none() {
                self.draining = Some(self.spec.source.stopping());
            }
            if self.spec.rate > 0 && !stopped && memchr::memchr(b'\n', &self.buf).is_some() {
                // Rate-limited with complete lines waiting: release the ones that are due.
                self.complete_lines()?;
                self.after_step()?;
                continue;
            }
            let before = self.buf.len();
            // With chunks at the parsers, a source that has nothing new must not block for a
            // tick before they are released: it only polls, and on Idle they are waited for.
            let busy = self.pool.as_ref().is_some_and(|p| p.in_flight() > 0);
            let outcome = if stopped && self.draining != Some(true) {
                ReadOutcome::Eof
            } else {
                let wait = if busy { Duration::ZERO } else { TICK };
                self.spec.source.read(&mut self.buf, wait)?
            };
            NodeMetrics::add(&self.m.bytes_in, (self.buf.len() - before) as u64);
            match outcome {
                ReadOutcome::Data => {
                    self.complete_lines()?;
                    if self.ck.is_none() {
                        // Without checkpoints what was parsed is in the pipeline's hands.
                        let pos = self.spec.source.position_before(self.buf.len() as u64);
                        self.spec.source.commit(&pos)?;
                    }
                }
                ReadOutcome::Eof => {
                    self.end(stopped)?;
                    return match self.spec.source.failure() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
                ReadOutcome::Idle if busy => self.release(true)?,
                ReadOutcome::Idle => {}
            }
            self.after_step()?;
        }
    }

    fn after_step(&mut self) -> Result<()> {
        self.release(false)?;
        self.flush_dead()?;
        self.commit_durable(false)?;
        self.poll_watermark()
    }

    /// Sends the watermark if it advanced.
    fn poll_watermark(&mut self) -> Result<()> {
        match self.wm.as_mut().and_then(|g| g.poll(now_ms())) {
            Some(w) => self.watermark(w),
            None => Ok(()),
        }
    }

    /// Sends the watermark `w` on the main output, and through the chained stage.
    fn watermark(&mut self, w: Millis) -> Result<()> {
        dispatch(&self.outs, self.m, Port::Main, Message::Watermark(w))?;
        match self.chain.as_mut() {
            Some(c) => c.watermark(w),
            None => Ok(()),
        }
    }

    /// The input ended, or the pipeline is stopping. Stopped with checkpoints, the source
    /// suspends: unparsed bytes stay unread (the restart reads them) and event time does not
    /// jump to the end, so open windows stay open in the final checkpoint.
    fn end(&mut self, stopped: bool) -> Result<()> {
        let suspend = stopped && self.ck.is_some();
        if !suspend {
            // The last line may lack its newline.
            let buf = std::mem::take(&mut self.buf);
            if !buf.is_empty() {
                self.take_lines(&buf)?;
            }
        }
        self.release(true)?;
        self.flush_dead()?;
        if !suspend {
            self.watermark(MAX_TIME)?;
        }
        if let Some(ck) = &self.ck {
            let (state, position) = self.state()?;
            ck.ck.report(None, state, Some(position.clone()))?;
            // Every epoch after the last barrier holds this final state.
            self.uncommitted.push_back((self.injected + 1, position));
        }
        send(&self.outs, Port::Main, &Message::End)?;
        if let Some(c) = self.chain.as_mut() {
            c.end(suspend)?;
        }
        self.commit_durable(true)
    }

    /// How many lines the rate limit lets through now (unlimited: `None`).
    fn due(&mut self) -> Option<u64> {
        if self.spec.rate == 0 {
            return None;
        }
        let (since, done) = self.rate_clock;
        let allowed = (since.elapsed().as_secs_f64() * self.spec.rate as f64) as u64;
        let due = allowed
            .saturating_sub(done)
            .min(self.spec.rate.div_ceil(20).max(1));
        if due == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(due)
    }

    /// Parses the complete lines in the buffer (those due, when rate-limited) and keeps the
    /// rest.
    fn complete_lines(&mut self) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let cut = match self.due() {
            None => memchr::memrchr(b'\n', &buf),
            Some(0) => None,
            Some(n) => {
                let mut it = memchr::memchr_iter(b'\n', &buf);
                let nth = it.nth(n as usize - 1);
                nth.or_else(|| memchr::memrchr(b'\n', &buf))
            }
        };
        match cut {
            // Parser threads take the buffer itself, a read's worth of whole lines (the
            // partial line after them moves to a spare buffer): the bytes are not copied.
            Some(cut) if self.pool.is_some() && !self.skipping && cut >= READ_CHUNK / 4 => {
                let pool = self.pool.as_mut().expect("checked");
                let mut rest = pool.spare(buf.len() - cut - 1 + READ_CHUNK);
                rest.extend_from_slice(&buf[cut + 1..]);
                buf.truncate(cut + 1);
                self.hand_over(buf)?;
                buf = rest;
            }
            Some(cut) => {
                let before = self.line_no;
                self.take_lines(&buf[..=cut])?;
                self.rate_clock.1 += self.line_no - before;
                buf.drain(..=cut);
            }
            None => {}
        }
        let partial_only = memchr::memchr(b'\n', &buf).is_none();
        if partial_only && buf.len() > self.spec.max_line {
            if !self.skipping {
                // Its dead letter follows those of the chunks before it, as without threads.
                self.release(true)?;
                let reason = format!(
                    "line longer than {} bytes; skipped to the next line",
                    self.spec.max_line
                );
                self.dead.push(Some(self.line_no), &reason, &buf);
            }
            buf.clear();
            self.skipping = true;
        }
        buf.reserve(READ_CHUNK);
        self.buf = buf;
        Ok(())
    }
    /// Parses the whole lines of `chunk` here, or hands them to a parser thread.
    fn take_lines(&mut self, mut chunk: &[u8]) -> Result<()> {
        if self.skipping {
            // The rest of an over-long line: drop up to and including its newline.
            let Some(p) = memchr::memchr(b'\n', chunk) else {
                return Ok(());
            };
            chunk = &chunk[p + 1..];
            self.line_no += 1;
            self.skipping = false;
        }
        if self.pool.is_none() {
            let lines = self
                .spec
                .parser
                .parse_chunk(chunk, self.line_no, &mut self.dead);
            self.line_no += lines;
            if let Some(why) = self.spec.parser.fatal() {
                // The line that shows why goes out first (the errors output keeps it).
                self.flush_dead()?;
                return Err(Error::config(
                    format!("source.{}.format", self.spec.name),
                    why,
                ));
            }
            let counts = self.spec.parser.take_counts();
            let batch = self.spec.parser.finish();
            return self.deliver(lines, counts, batch, None, Splits::new(), None);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        let mut bytes = self.pool.as_mut().expect("checked").spare(chunk.len());
        bytes.extend_from_slice(chunk);
        self.hand_over(bytes)
    }

    /// Gives whole lines to a parser thread, once one has room.
    fn hand_over(&mut self, bytes: Vec<u8>) -> Result<()> {
        while !self.pool.as_ref().expect("parser threads").has_room() {
            self.release_one(true)?;
        }
        let lines = count_lines(&bytes);
        let pool = self.pool.as_mut().expect("parser threads");
        pool.submit(bytes, self.line_no)?;
        self.line_no += lines;
        Ok(())
    }

    /// Releases the parsed chunks that are next in input order: all of them, waiting for the
    /// parsers, when `wait`; otherwise those ready now.
    fn release(&mut self, wait: bool) -> Result<()> {
        while self.release_one(wait)? {}
        Ok(())
    }

    fn release_one(&mut self, wait: bool) -> Result<bool> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(false);
        };
        let Some(p) = pool.next(wait)? else {
            return Ok(false);
        };
        let mut dead = p.dead;
        // A chunk's own dead letters come before those of the rows it dates too far ahead, as
        // when the source node parses.
        send_dead(&self.outs, self.m, &mut dead)?;
        self.deliver(
            p.lines,
            p.counts,
            p.batch,
            Some(p.newest),
            p.cuts,
            p.chained,
        )?;
        self.flush_dead()?;
        // A watermark after each chunk, as when the source node parses: released several at a
        // time, the chunks would otherwise share one, and a record far out of order in a later
        // one would not be late where one thread finds it late.
        self.poll_watermark()?;
        self.pool.as_mut().expect("checked").recycle(p.bytes);
        Ok(true)
    }

    /// Counts a parsed chunk, moves event time, and sends its rows. A parser thread gives the
    /// batch's newest event time, its rows cut for the keyed stages that read the source, and
    /// what its copy of the chained stage emitted.
    fn deliver(
        &mut self,
        lines: u64,
        counts: weir_core::parse::ParseCounts,
        mut batch: RecordBatch,
        newest: Option<Option<Millis>>,
        mut cuts: Splits,
        mut chained: Option<Emitted>,
    ) -> Result<()> {
        NodeMetrics::add(&self.m.records_in, lines);
        NodeMetrics::add(&self.m.blank, counts.blank);
        NodeMetrics::add(&self.m.odd, counts.odd);
        if let (Some(c), Some(g)) = (self.time_col, self.wm.as_mut()) {
            let now = now_ms();
            let mut newest = newest.unwrap_or_else(|| max_time(&batch, c));
            if let Some(limit) = g
                .future_limit(now)
                .filter(|l| newest.is_some_and(|t| t > *l))
            {
                batch = refuse_future(batch, c, limit, &mut self.dead)?;
                newest = max_time(&batch, c);
                // The parser thread cut, and its copy of the chained stage saw, the refused
                // rows too.
                cuts.clear();
                chained = None;
            }
            g.observe(newest, now);
        }
        if let Some(c) = self.chain.as_mut() {
            c.data(&batch, chained)?;
        }
        dispatch_split(&self.outs, self.m, Port::Main, Message::Data(batch), cuts)
    }

    fn flush_dead(&mut self) -> Result<()> {
        send_dead(&self.outs, self.m, &mut self.dead)
    }
}

/// Sends the waiting dead letters of `dead` on the errors port and keeps their first reasons.
fn send_dead(outs: &[Output], m: &NodeMetrics, dead: &mut DeadLetters) -> Result<()> {
    let Some(batch) = dead.take() else {
        return Ok(());
    };
    let kept = m.reasons();
    for r in dead.first_reasons() {
        if !kept.contains(r) {
            m.note_reason(|| r.clone());
        }
    }
    dispatch(outs, m, Port::Errors, Message::Data(batch))
}

/// Per-input progress of a consumer: each input's watermark and whether it ended.
struct Inputs {
    wm: Vec<Millis>,
    ended: Vec<bool>,
    current: Millis,
}

impl Inputs {
    fn new(n: usize) -> Self {
        Inputs {
            wm: vec![MIN_TIME; n],
            ended: vec![false; n],
            current: MIN_TIME,
        }
    }

    /// Updates input `i`'s watermark; returns the combined one if it advanced.
    fn watermark(&mut self, i: usize, w: Millis) -> Option<Millis> {
        self.wm[i] = self.wm[i].max(w);
        self.advance()
    }

    fn end(&mut self, i: usize) -> Option<Millis> {
        self.ended[i] = true;
        self.advance()
    }

    fn all_ended(&self) -> bool {
        self.ended.iter().all(|e| *e)
    }

    fn advance(&mut self) -> Option<Millis> {
        // Ended inputs no longer hold event time back; with none left it is complete.
        let min = self
            .wm
            .iter()
            .zip(&self.ended)
            .filter(|(_, e)| !**e)
            .map(|(w, _)| *w)
            .min()
            .unwrap_or(MAX_TIME);
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }
}

/// Which instance of a stage a thread runs.
pub(crate) struct Instance {
    pub name: String,
    pub index: usize,
    pub of: usize,
}

pub(crate) fn run_stage(
    me: Instance,
    mut op: Box<dyn weir_core::Operator>,
    rx: Input,
    outs: Vec<Output>,
    m: &NodeMetrics,
    stop: &AtomicBool,
    ck: Option<NodeCkpt>,
) -> Result<()> {
    if let Some(c) = &ck {
        if let Some((bytes, wrote)) = &c.restore {
            c.timed(|| {
                if *wrote == 1 && me.of == 1 {
                    return op.restore(bytes);
                }
                // Instances then and now differ: each keeps the keys it owns now.
                let states = decode_instances(bytes, *wrote)?;
                op.restore_keyed(&states, &|h| weir_core::keys::owner(h, me.of) == me.index)
                    .map_err(|e| Error::State(format!("stage {}: {e}", me.name)))
            })?;
        }
    }
    let mut inputs = Inputs::new(rx.inputs);
    let mut al = Receiving::new(Aligner::new(rx.rx, rx.inputs), rx.merge);
    let mut em = Emitter::default();
    let mut last_tick = Instant::now();
    // The watermark last handed to the operator, for counting windows once across instances.
    let mut passed = None;
    let flush = |em: &mut Emitter, passed: Option<i64>| -> Result<()> {
        m.windows_closed(me.index, me.of, &em.windows_closed, passed);
        em.windows_closed.clear();
        for (port, msg) in em.drain() {
            dispatch(&outs, m, port, msg)?;
        }
        Ok(())
    };
    // Stopped with checkpoints: the stage suspends (no end-of-input flush); its state, open
    // windows included, goes into the final checkpoint.
    let suspending = || ck.is_some() && stop.load(Ordering::SeqCst);
    loop {
        match al.next(TICK)? {
            Event::Msg(_, Message::Data(b)) => {
                NodeMetrics::add(&m.records_in, b.num_rows() as u64);
                op.on_batch(&b, &mut em)?;
            }
            Event::Msg(_, Message::Partial(p)) => {
                NodeMetrics::add(&m.records_in, p.records);
                op.on_partial(&p, &mut em)?;
            }
            Event::Msg(i, Message::Watermark(w)) => {
                if let Some(w) = inputs.watermark(i, w) {
                    op.on_watermark(w, &mut em)?;
                    passed = Some(w);
                }
            }
            Event::Msg(i, Message::End) => {
                let suspend = suspending();
                if let Some(w) = inputs.end(i).filter(|_| !suspend) {
                    op.on_watermark(w, &mut em)?;
                }
                if inputs.all_ended() {
                    if !suspend {
                        op.on_end(&mut em)?;
                    }
                    flush(&mut em, passed.take())?;
                    if let Some(c) = &ck {
                        c.ck.report(None, op.snapshot()?, None)?;
                    }
                    send(&outs, Port::Main, &Message::End)?;
                    return Ok(());
                }
            }
            Event::Msg(_, Message::Barrier(_)) => unreachable!("the aligner consumes barriers"),
            Event::Checkpoint(epoch) => {
                flush(&mut em, passed.take())?;
                if let Some(c) = &ck {
                    c.ck.report(Some(epoch), op.snapshot()?, None)?;
                }
                send(&outs, Port::Main, &Message::Barrier(epoch))?;
            }
            Event::Idle => {}
        }
        if last_tick.elapsed() >= TICK {
            op.on_tick(now_ms(), &mut em)?;
            last_tick = Instant::now();
        }
        flush(&mut em, passed.take())?;
    }
}

pub(crate) fn run_sink(
    mut s: SinkSpec,
    rx: Input,
    m: &NodeMetrics,
    stop: &AtomicBool,
    ck: Option<NodeCkpt>,
    open_sinks: &AtomicUsize,
) -> Result<()> {
    let mut closed = false;
    // The sink's reader left (EPIPE): it keeps draining its input so nothing upstream blocks,
    // and the last sink to close stops the run.
    let note_closed = |sink: &dyn weir_core::Sink, closed: &mut bool| {
        if !*closed && sink.closed() {
            *closed = true;
            tracing::info!("a sink's reader went away; it takes no more rows");
            if open_sinks.fetch_sub(1, Ordering::SeqCst) == 1 {
                stop.store(true, Ordering::SeqCst);
            }
        }
    };
    if let Some(c) = &ck {
        c.timed(|| {
            s.sink
                .recover(c.restore.as_ref().map(|(b, _)| b.as_slice()))
        })?;
    }
    let mut inputs = Inputs::new(rx.inputs);
    let mut al = Receiving::new(Aligner::new(rx.rx, rx.inputs), rx.merge);
    // When the oldest row not yet flushed was written: under steady input the aligner never
    // goes idle, so the sink flushes on this clock too.
    let mut dirty: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let mut last_barrier = ck.as_ref().map_or(0, |c| c.base_epoch);
    loop {
        if let Some(commits) = ck.as_ref().and_then(|c| c.commits.as_ref()) {
            while let Ok(epoch) = commits.try_recv() {
                s.sink.commit(epoch)?;
            }
        }
        match al.next(TICK)? {
            Event::Msg(_, Message::Data(b)) => {
                NodeMetrics::add(&m.records_in, b.num_rows() as u64);
                s.sink.write(&b)?;
                note_closed(s.sink.as_ref(), &mut closed);
                if !closed {
                    NodeMetrics::add(&m.records_out, b.num_rows() as u64);
                    NodeMetrics::add(&m.emitted, 1);
                }
                dirty.get_or_insert_with(Instant::now);
            }
            Event::Msg(i, Message::Watermark(w)) => {
                if let Some(w) = inputs.watermark(i, w) {
                    m.watermark.store(w, Ordering::Relaxed);
                    s.sink.on_watermark(w)?;
                }
            }
            Event::Msg(i, Message::End) => {
                inputs.end(i);
                if inputs.all_ended() {
                    // Stopped with checkpoints: the next run goes on from the last one.
                    let suspend = ck.is_some() && stop.load(Ordering::SeqCst);
                    return finish_sink(s, ck, last_barrier + 1, suspend, m);
                }
            }
            Event::Msg(_, Message::Partial(_)) => {
                return Err(Error::Internal("a sink got folded records".into()))
            }
            Event::Msg(_, Message::Barrier(_)) => unreachable!("the aligner consumes barriers"),
            Event::Checkpoint(epoch) => {
                if let Some(c) = &ck {
                    // The previous epoch's commit was sent before this epoch was requested, so
                    // it is queued by now: apply it first, so a sink's checkpoint never depends
                    // on an earlier epoch that is still uncommitted.
                    if let Some(commits) = &c.commits {
                        while let Ok(epoch) = commits.try_recv() {
                            s.sink.commit(epoch)?;
                        }
                    }
                    c.ck.report(Some(epoch), s.sink.pre_commit(epoch)?, None)?;
                }
                last_barrier = epoch;
                dirty = None;
            }
            Event::Idle => {
                if dirty.take().is_some() {
                    s.sink.flush()?;
                    note_closed(s.sink.as_ref(), &mut closed);
                }
                s.sink.tick()?;
                last_tick = Instant::now();
            }
        }
        if dirty.is_some_and(|t| t.elapsed() >= s.flush_interval) {
            s.sink.flush()?;
            note_closed(s.sink.as_ref(), &mut closed);
            dirty = None;
        }
        if last_tick.elapsed() >= TICK {
            s.sink.tick()?;
            last_tick = Instant::now();
        }
    }
}

/// All inputs ended. With checkpoints, what is left is staged under `label` (one past the last
/// barrier: no epoch up to the last barrier can hold this final state) and committed once an
/// epoch at or past it is durable.
fn finish_sink(
    mut s: SinkSpec,
    ck: Option<NodeCkpt>,
    label: u64,
    suspend: bool,
    m: &NodeMetrics,
) -> Result<()> {
    let res = finish_sink_inner(&mut s, ck, label, suspend);
    m.set_detail(s.sink.summary());
    res
}

fn finish_sink_inner(
    s: &mut SinkSpec,
    ck: Option<NodeCkpt>,
    label: u64,
    suspend: bool,
) -> Result<()> {
    let Some(c) = ck else {
        return s.sink.finish();
    };
    c.ck.report(None, s.sink.pre_commit(label)?, None)?;
    let commits = c.commits.as_ref().expect("sinks get commits");
    loop {
        let epoch = commits
            .recv()
            .map_err(|_| Error::Stopped("the checkpoint coordinator".into()))?;
        s.sink.commit(epoch)?;
        if epoch >= label {
            return if suspend {
                s.sink.suspend()
            } else {
                s.sink.finish()
            };
        }
    }
}
