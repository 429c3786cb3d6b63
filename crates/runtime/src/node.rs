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

struct LineState {
    buf: Vec<u8>,
    line_no: u64,
    skipping: bool,
}

pub(crate) fn run_source(
    mut s: SourceSpec,
    outs: Vec<Output>,
    m: &NodeMetrics,
    stop: &AtomicBool,
) -> Result<()> {
    let schema = s.parser.schema();
    let time_col = match &s.event_time {
        Some(et) => Some(schema.index_of(&et.field).map_err(|_| {
            Error::Schema(format!(
                "source {}: event_time.field {:?} is not a parsed field",
                s.name, et.field
            ))
        })?),
        None => None,
    };
    let mut wm = s.event_time.as_ref().map(WatermarkGen::new);
    let mut dead = DeadLetters::new(&s.name);
    let mut st = LineState {
        buf: Vec::with_capacity(2 * weir_source_chunk()),
        line_no: 1,
        skipping: false,
    };
    loop {
        let before = st.buf.len();
        let outcome = if stop.load(Ordering::Relaxed) {
            ReadOutcome::Eof
        } else {
            s.source.read(&mut st.buf, TICK)?
        };
        NodeMetrics::add(&m.bytes_in, (st.buf.len() - before) as u64);
        match outcome {
            ReadOutcome::Data => {
                if let Some(cut) = memchr::memrchr(b'\n', &st.buf) {
                    // Parse the complete lines; keep the partial last line for the next read.
                    let rest = st.buf[cut + 1..].to_vec();
                    st.buf.truncate(cut + 1);
                    let chunk = std::mem::replace(&mut st.buf, rest);
                    parse(
                        &mut s,
                        &mut st,
                        &chunk,
                        &mut dead,
                        time_col,
                        wm.as_mut(),
                        &outs,
                        m,
                    )?;
                    st.buf.reserve(weir_source_chunk());
                }
                if st.buf.len() > s.max_line {
                    let reason = format!(
                        "line longer than {} bytes; skipped to the next line",
                        s.max_line
                    );
                    if !st.skipping {
                        dead.push(Some(st.line_no), &reason, &st.buf);
                    }
                    st.buf.clear();
                    st.skipping = true;
                }
            }
            ReadOutcome::Eof => {
                if !st.buf.is_empty() {
                    let chunk = std::mem::take(&mut st.buf);
                    parse(
                        &mut s,
                        &mut st,
                        &chunk,
                        &mut dead,
                        time_col,
                        wm.as_mut(),
                        &outs,
                        m,
                    )?;
                }
                flush_dead(&mut dead, &outs, m)?;
                dispatch(&outs, m, Port::Main, Message::Watermark(MAX_TIME))?;
                send(&outs, Port::Main, &Message::End)?;
                return Ok(());
            }
            ReadOutcome::Idle => {}
        }
        flush_dead(&mut dead, &outs, m)?;
        if let Some(w) = wm.as_mut().and_then(|g| g.poll(now_ms())) {
            dispatch(&outs, m, Port::Main, Message::Watermark(w))?;
        }
    }
}

fn weir_source_chunk() -> usize {
    1 << 20
}

#[allow(clippy::too_many_arguments)]
fn parse(
    s: &mut SourceSpec,
    st: &mut LineState,
    mut chunk: &[u8],
    dead: &mut DeadLetters,
    time_col: Option<usize>,
    wm: Option<&mut WatermarkGen>,
    outs: &[Output],
    m: &NodeMetrics,
) -> Result<()> {
    if st.skipping {
        // The rest of an over-long line: drop up to and including its newline.
        match memchr::memchr(b'\n', chunk) {
            Some(p) => {
                chunk = &chunk[p + 1..];
                st.line_no += 1;
                st.skipping = false;
            }
            None => return Ok(()),
        }
    }
    let lines = s.parser.parse_chunk(chunk, st.line_no, dead);
    st.line_no += lines;
    NodeMetrics::add(&m.records_in, lines);
    let batch = s.parser.finish();
    if let (Some(c), Some(g)) = (time_col, wm) {
        g.observe(max_time(&batch, c), now_ms());
    }
    dispatch(outs, m, Port::Main, Message::Data(batch))
}

fn flush_dead(dead: &mut DeadLetters, outs: &[Output], m: &NodeMetrics) -> Result<()> {
    let Some(batch) = dead.take() else {
        return Ok(());
    };
    for r in dead.first_reasons() {
        if m.reasons().len() < weir_core::metrics::KEPT_REASONS && !m.reasons().contains(r) {
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
