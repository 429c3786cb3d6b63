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

    /// Makes everything written so far durable or visible (called when input goes idle and
    /// before the end).
    fn flush(&mut self) -> Result<()>;

    /// The input has ended: flush and close.
    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}
