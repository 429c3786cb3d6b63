//! The operator trait: one synchronous step of a pipeline. The runtime owns threads and
//! channels; an operator only turns inputs into outputs.

use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;

use crate::message::{Message, Partial, Port};
use crate::time::Millis;
use crate::Result;

/// Collects what an operator produces during one call.
#[derive(Debug, Default)]
pub struct Emitter {
    /// Messages in the order they were emitted, with their port.
    pub out: Vec<(Port, Message)>,
    /// The end of each window closed during the call (windowed operators report them for
    /// progress reports; the instances of a keyed stage close the same window each).
    pub windows_closed: Vec<Millis>,
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

/// Spreads the records of a keyed operator over its instances: the hash of each row's key
/// ([`crate::keys::key_hash`] of the operator's own key encoding), so the instance that owns a
/// key (see [`crate::keys::owner`]) sees all of its records. It runs on the producer's thread.
pub trait Partitioner: Send + Sync {
    /// Appends the key hash of every row of `batch` to `out`. A row whose key cannot be
    /// computed may get any hash: the instance that receives it reports it.
    fn hashes(&self, batch: &RecordBatch, out: &mut Vec<u64>);
}

/// The partitioner of an operator keyed by plain input columns.
#[derive(Debug, Clone)]
pub struct ColumnKeys(pub Vec<usize>);

impl Partitioner for ColumnKeys {
    fn hashes(&self, batch: &RecordBatch, out: &mut Vec<u64>) {
        let cols: Option<Vec<crate::value::Col<'_>>> = self
            .0
            .iter()
            .map(|&c| crate::value::Col::new(batch.column(c)))
            .collect();
        match cols {
            Some(cols) => crate::keys::hash_rows(&cols, batch.num_rows(), out),
            // A column type keys do not support: the operator refused it when built.
            None => out.extend(std::iter::repeat_n(0, batch.num_rows())),
        }
    }
}

/// Splits `batch` over `n` instances by the key hash of each row ([`crate::keys::owner`]):
/// (instance, its rows), rows in their order. A batch whose rows all belong to one instance is
/// passed on whole.
pub fn split(
    batch: &RecordBatch,
    p: &dyn Partitioner,
    n: usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let mut hashes = Vec::with_capacity(batch.num_rows());
    p.hashes(batch, &mut hashes);
    if hashes.len() != batch.num_rows() {
        return Err(crate::Error::Internal(format!(
            "a partitioner gave {} hashes for {} rows",
            hashes.len(),
            batch.num_rows()
        )));
    }
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, h) in hashes.iter().enumerate() {
        rows[crate::keys::owner(*h, n)].push(i as u32);
    }
    if let Some(k) = rows.iter().position(|r| r.len() == batch.num_rows()) {
        return Ok(vec![(k, batch.clone())]);
    }
    rows.into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(k, r)| {
            let part = arrow_select::take::take_record_batch(batch, &UInt32Array::from(r))?;
            Ok((k, part))
        })
        .collect()
}

/// Folds the records of a keyed operator on the producer's side of the exchange, before they
/// are sent to the operator's instances (what MapReduce calls a combiner and Flink local
/// aggregation): a parser thread turns the thousands of rows of one hot key into one partial
/// result, so the instance that owns the key is not the pipeline's bottleneck. It runs on the
/// producer's threads, concurrently, so it only reads `&self`.
pub trait Combiner: Send + Sync {
    /// The messages that bring `batch`'s rows to `instances` instances, each with the
    /// instance it goes to: [`Message::Partial`]s, which the operator merges with
    /// [`Operator::on_partial`], and [`Message::Data`] for rows it left as they are. Every row
    /// reaches the instance that owns its key, and the operator's output (late rows and dead
    /// letters included) is what the rows themselves would have given.
    fn combine(&self, batch: &RecordBatch, instances: usize) -> Result<Vec<(usize, Message)>>;
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

    /// The ports beyond main, late and errors that the operator sends records to, with the
    /// schema of their records (`NODE.alerts`, `NODE.duplicates` are wired only then).
    fn extra_ports(&self) -> Vec<(Port, SchemaRef)> {
        Vec::new()
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

    /// Whether the operator keeps no state and each output depends only on the batch it came
    /// from (a filter). The runtime may then run copies of it beside a source's parser
    /// threads, each applying it to the chunks its thread parsed, instead of a thread of its
    /// own. Watermarks, barriers and the end still reach one copy, in order.
    fn stateless(&self) -> bool {
        false
    }

    /// A keyed operator can run as several instances, each fed the records of the keys it
    /// owns through this partitioner. `None` (the default): one instance sees every record.
    fn partitioner(&self) -> Option<Arc<dyn Partitioner>> {
        None
    }

    /// Folds records before the exchange when the operator runs as several instances (see
    /// [`Combiner`]). `None` (the default): records are sent as they are.
    fn combiner(&self) -> Option<Arc<dyn Combiner>> {
        None
    }

    /// Merges records its [`Operator::combiner`] folded.
    fn on_partial(&mut self, _part: &Partial, _out: &mut Emitter) -> Result<()> {
        Err(crate::Error::Internal(
            "this operator has no combiner and cannot take folded records".into(),
        ))
    }

    /// Columns of the main output by which the rows emitted up to a watermark are sorted (one
    /// instance emits them in this order). With several instances the runtime merges their
    /// rows in this order, so the output equals one instance's. `None`: rows of several
    /// instances arrive as they are produced (each key's rows keep their order).
    fn output_order(&self) -> Option<Vec<usize>> {
        None
    }

    /// Restores one instance of a keyed operator from the snapshots of every instance of an
    /// earlier run, however many there were, keeping the keys whose hash `owns` accepts.
    fn restore_keyed(&mut self, _states: &[Vec<u8>], _owns: &dyn Fn(u64) -> bool) -> Result<()> {
        Err(crate::Error::Internal(
            "this operator runs as one instance and cannot be restored from several".into(),
        ))
    }
}
