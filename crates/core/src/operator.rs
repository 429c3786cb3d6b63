//! The operator trait: one synchronous step of a pipeline. The runtime owns threads and
//! channels; an operator only turns inputs into outputs.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::message::{Message, Port};
use crate::time::Millis;
use crate::Result;

/// Collects what an operator produces during one call.
#[derive(Debug, Default)]
pub struct Emitter {
    /// Messages in the order they were emitted, with their port.
    pub out: Vec<(Port, Message)>,
    /// Windows closed during the call (windowed operators count them for progress reports).
    pub windows_closed: u64,
}

impl Emitter {
    /// Emits a batch on the main output (empty batches are skipped).
    pub fn data(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.out.push((Port::Main, Message::Data(batch)));
        }
    }

    /// Emits a batch on a side port (empty batches are skipped).
    pub fn side(&mut self, port: Port, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.out.push((port, Message::Data(batch)));
        }
    }

    /// Forwards a watermark on the main output.
    pub fn watermark(&mut self, wm: Millis) {
        self.out.push((Port::Main, Message::Watermark(wm)));
    }

    /// Takes everything emitted so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (Port, Message)> {
        self.out.drain(..)
    }
}

/// One processing step. Default methods pass watermarks through and keep no state.
pub trait Operator: Send {
    /// Schema of the main output.
    fn output_schema(&self) -> SchemaRef;

    /// Processes one batch of the input schema.
    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()>;

    /// The input watermark advanced to `wm` (the minimum over all inputs).
    fn on_watermark(&mut self, wm: Millis, out: &mut Emitter) -> Result<()> {
        out.watermark(wm);
        Ok(())
    }

    /// Called about every 100 ms of wall-clock time with the current time (processing-time
    /// operators use it to close windows).
    fn on_tick(&mut self, _now: Millis, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// All inputs ended: emit what is still held. The runtime sends `End` afterwards.
    fn on_end(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// Serialises the operator's state (versioned by the operator).
    fn snapshot(&self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Restores state written by [`Operator::snapshot`].
    fn restore(&mut self, _state: &[u8]) -> Result<()> {
        Ok(())
    }
}
