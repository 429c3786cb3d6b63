//! The sink trait: where batches leave weir.

use arrow_array::RecordBatch;

use crate::time::Millis;
use crate::Result;

/// Writes batches somewhere. Sinks run on their own thread; a slow sink slows its inputs
/// through back-pressure, it never makes them drop data.
pub trait Sink: Send {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Event time has advanced to `wm`. Sinks that roll files by time use it.
    fn on_watermark(&mut self, _wm: Millis) -> Result<()> {
        Ok(())
    }

    /// Called about every 100 ms, busy or quiet, so a sink can act on the clock (roll a file
    /// by age, collect finished deliveries).
    fn tick(&mut self) -> Result<()> {
        Ok(())
    }

    /// Makes everything written so far durable or visible. Called when the input goes quiet
    /// for 100 ms, at least every `flush_interval` (1 s by default) while rows keep coming,
    /// and before the end.
    fn flush(&mut self) -> Result<()>;

    /// The input has ended: flush and close.
    fn finish(&mut self) -> Result<()> {
        self.flush()
    }

    /// The run stopped with checkpoints and a later run resumes from the last one, which
    /// holds this sink's state: leave what is open (a file being written) for that run. By
    /// default the same as [`Sink::finish`].
    fn suspend(&mut self) -> Result<()> {
        self.finish()
    }

    /// A line for the run summary when "N rows written" says too little (a webhook's
    /// delivered, retried and dead-lettered rows).
    fn summary(&self) -> Option<String> {
        None
    }

    /// Whether the sink's reader went away for good (standard output piped into `head`,
    /// closed): it takes no more rows. When every sink of a pipeline is closed, the run stops
    /// as on Ctrl-C instead of processing input nobody reads.
    fn closed(&self) -> bool {
        false
    }

    /// Whether this sink's output is exactly-once when the pipeline runs with checkpoints:
    /// output is staged per epoch and made visible only when the epoch's checkpoint is durable.
    /// Sinks that return `false` are at-least-once: after a crash they repeat what followed the
    /// last checkpoint, so their rows must carry a stable key consumers can deduplicate on.
    fn exactly_once(&self) -> bool {
        false
    }

    /// With checkpoints, called once before anything else. `state` is what
    /// [`Sink::pre_commit`] returned in the checkpoint being resumed from (`None` on a fresh
    /// start). The sink finishes that checkpoint's commit if the crash came before it, and
    /// discards whatever it staged or committed after it.
    fn recover(&mut self, _state: Option<&[u8]>) -> Result<()> {
        Ok(())
    }

    /// With checkpoints: every input has passed the barrier of `epoch`. Stage what was written
    /// since the previous barrier durably, under `epoch`, and return what [`Sink::recover`]
    /// needs to commit or discard it after a crash.
    fn pre_commit(&mut self, _epoch: u64) -> Result<Vec<u8>> {
        self.flush()?;
        Ok(Vec::new())
    }

    /// The checkpoint of `epoch` is durable: make everything staged under epochs up to and
    /// including it visible. Called in epoch order; must be idempotent.
    fn commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
}
