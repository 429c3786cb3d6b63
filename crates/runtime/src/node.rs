//! The loops that drive one node each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, RecordBatch};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use weir_core::deadletter::DeadLetters;
use weir_core::metrics::NodeMetrics;
use weir_core::time::{now_ms, Millis, MAX_TIME, MIN_TIME};
use weir_core::watermark::WatermarkGen;
use weir_core::{Emitter, Error, Message, Port, ReadOutcome, Result};

use crate::{Output, SinkSpec, SourceSpec, StageSpec};

/// How often idle nodes wake up: watermark polling, processing-time ticks, sink flushes.
const TICK: Duration = Duration::from_millis(100);

fn send(outputs: &[Output], port: Port, msg: &Message) -> Result<()> {
    for o in outputs
        .iter()
        .filter(|o| o.port == port || matches!(msg, Message::End))
    {
        o.tx.send((o.input_idx, msg.clone()))
            .map_err(|_| Error::Stopped(o.to.clone()))?;
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
fn dispatch(outputs: &[Output], m: &NodeMetrics, port: Port, msg: Message) -> Result<()> {
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
    }
    if let Message::Watermark(w) = msg {
        m.watermark.store(w, Ordering::Relaxed);
    }
    send(outputs, port, &msg)
}

fn max_time(batch: &RecordBatch, col: usize) -> Option<Millis> {
    let a = batch
        .column(col)
        .as_primitive_opt::<TimestampMillisecondType>()?;
    if a.null_count() == 0 {
        a.values().iter().copied().max()
    } else {
        a.iter().flatten().max()
    }
}

/// A source node: reads bytes, frames them into lines, parses, and sends batches, dead
/// letters and watermarks.
struct SourceNode<'a> {
    spec: SourceSpec,
    outs: Vec<Output>,
    m: &'a NodeMetrics,
    time_col: Option<usize>,
    wm: Option<WatermarkGen>,
    dead: DeadLetters,
    /// Bytes read but not parsed yet: the partial last line.
    buf: Vec<u8>,
    /// Number of the next line.
    line_no: u64,
    /// Inside a line longer than `max_line`, dropping bytes up to its end.
    skipping: bool,
}

pub(crate) fn run_source(
    spec: SourceSpec,
    outs: Vec<Output>,
    m: &NodeMetrics,
    stop: &AtomicBool,
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
    let mut node = SourceNode {
        wm: spec.event_time.as_ref().map(WatermarkGen::new),
        dead: DeadLetters::new(&spec.name),
        spec,
        outs,
        m,
        time_col,
        buf: Vec::with_capacity(2 * READ_CHUNK),
        line_no: 1,
        skipping: false,
    };
    node.run(stop)
}

/// Bytes the source node keeps room for per read.
const READ_CHUNK: usize = 1 << 20;

impl SourceNode<'_> {
    fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        loop {
            let before = self.buf.len();
            let outcome = if stop.load(Ordering::Relaxed) {
                ReadOutcome::Eof
            } else {
                self.spec.source.read(&mut self.buf, TICK)?
            };
            NodeMetrics::add(&self.m.bytes_in, (self.buf.len() - before) as u64);
            match outcome {
                ReadOutcome::Data => self.complete_lines()?,
                ReadOutcome::Eof => {
                    // The last line may lack its newline.
                    let buf = std::mem::take(&mut self.buf);
                    if !buf.is_empty() {
                        self.parse(&buf)?;
                    }
                    self.flush_dead()?;
                    dispatch(&self.outs, self.m, Port::Main, Message::Watermark(MAX_TIME))?;
                    return send(&self.outs, Port::Main, &Message::End);
                }
                ReadOutcome::Idle => {}
            }
            self.flush_dead()?;
            if let Some(w) = self.wm.as_mut().and_then(|g| g.poll(now_ms())) {
                dispatch(&self.outs, self.m, Port::Main, Message::Watermark(w))?;
            }
        }
    }

    /// Parses the complete lines in the buffer and keeps the partial last one.
    fn complete_lines(&mut self) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        if let Some(cut) = memchr::memrchr(b'\n', &buf) {
            self.parse(&buf[..=cut])?;
            buf.drain(..=cut);
        }
        if buf.len() > self.spec.max_line {
            if !self.skipping {
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

    fn parse(&mut self, mut chunk: &[u8]) -> Result<()> {
        if self.skipping {
            // The rest of an over-long line: drop up to and including its newline.
            let Some(p) = memchr::memchr(b'\n', chunk) else {
                return Ok(());
            };
            chunk = &chunk[p + 1..];
            self.line_no += 1;
            self.skipping = false;
        }
        let lines = self
            .spec
            .parser
            .parse_chunk(chunk, self.line_no, &mut self.dead);
        self.line_no += lines;
        NodeMetrics::add(&self.m.records_in, lines);
        let batch = self.spec.parser.finish();
        if let (Some(c), Some(g)) = (self.time_col, self.wm.as_mut()) {
            g.observe(max_time(&batch, c), now_ms());
        }
        dispatch(&self.outs, self.m, Port::Main, Message::Data(batch))
    }

    fn flush_dead(&mut self) -> Result<()> {
        let Some(batch) = self.dead.take() else {
            return Ok(());
        };
        let kept = self.m.reasons();
        for r in self.dead.first_reasons() {
            if !kept.contains(r) {
                self.m.note_reason(|| r.clone());
            }
        }
        dispatch(&self.outs, self.m, Port::Errors, Message::Data(batch))
    }
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

pub(crate) fn run_stage(
    mut s: StageSpec,
    rx: Receiver<(usize, Message)>,
    outs: Vec<Output>,
    m: &NodeMetrics,
) -> Result<()> {
    let mut inputs = Inputs::new(s.inputs.len());
    let mut em = Emitter::default();
    let mut last_tick = Instant::now();
    let flush = |em: &mut Emitter| -> Result<()> {
        NodeMetrics::add(&m.windows, std::mem::take(&mut em.windows_closed));
        for (port, msg) in em.drain() {
            dispatch(&outs, m, port, msg)?;
        }
        Ok(())
    };
    loop {
        match rx.recv_timeout(TICK) {
            Ok((_, Message::Data(b))) => {
                NodeMetrics::add(&m.records_in, b.num_rows() as u64);
                s.op.on_batch(&b, &mut em)?;
            }
            Ok((i, Message::Watermark(w))) => {
                if let Some(w) = inputs.watermark(i, w) {
                    s.op.on_watermark(w, &mut em)?;
                }
            }
            Ok((_, Message::Barrier(_))) => {}
            Ok((i, Message::End)) => {
                if let Some(w) = inputs.end(i) {
                    s.op.on_watermark(w, &mut em)?;
                }
                if inputs.all_ended() {
                    s.op.on_end(&mut em)?;
                    flush(&mut em)?;
                    send(&outs, Port::Main, &Message::End)?;
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(Error::Stopped("an input".into())),
        }
        if last_tick.elapsed() >= TICK {
            s.op.on_tick(now_ms(), &mut em)?;
            last_tick = Instant::now();
        }
        flush(&mut em)?;
    }
}

pub(crate) fn run_sink(
    mut s: SinkSpec,
    rx: Receiver<(usize, Message)>,
    m: &NodeMetrics,
) -> Result<()> {
    let mut inputs = Inputs::new(s.inputs.len());
    let mut dirty = false;
    loop {
        match rx.recv_timeout(TICK) {
            Ok((_, Message::Data(b))) => {
                NodeMetrics::add(&m.records_in, b.num_rows() as u64);
                s.sink.write(&b)?;
                NodeMetrics::add(&m.records_out, b.num_rows() as u64);
                NodeMetrics::add(&m.emitted, 1);
                dirty = true;
            }
            Ok((i, Message::Watermark(w))) => {
                if let Some(w) = inputs.watermark(i, w) {
                    m.watermark.store(w, Ordering::Relaxed);
                    s.sink.on_watermark(w)?;
                }
            }
            Ok((_, Message::Barrier(_))) => {}
            Ok((i, Message::End)) => {
                inputs.end(i);
                if inputs.all_ended() {
                    s.sink.finish()?;
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    s.sink.flush()?;
                    dirty = false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Err(Error::Stopped("an input".into())),
        }
    }
}
