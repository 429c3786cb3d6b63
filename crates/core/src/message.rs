//! What flows between stages: data, watermarks, checkpoint barriers and the end of a stream.

use std::any::Any;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::time::Millis;

/// One item on a channel between two stages. Watermarks and barriers travel in-band with the
/// data, so a stage sees them in order with the records before and after them.
#[derive(Debug, Clone)]
pub enum Message {
    /// A batch of records with the sender's output schema.
    Data(RecordBatch),
    /// No record with an event time at or below this will follow (except late ones).
    Watermark(Millis),
    /// Records of a keyed operator already folded by its [`crate::operator::Combiner`] on the
    /// producer's side of the exchange, for one instance.
    Partial(Partial),
    /// Checkpoint barrier of an epoch: the state before it belongs to that epoch.
    Barrier(u64),
    /// The sender has finished; nothing follows.
    End,
}

/// Records folded for one instance of a keyed operator (see [`crate::operator::Combiner`]):
/// opaque to the runtime, read only by the operator whose combiner made them.
#[derive(Clone)]
pub struct Partial {
    /// What the combiner made; the operator downcasts it.
    pub part: Arc<dyn Any + Send + Sync>,
    /// The number of records folded into it (for the consumer's record count).
    pub records: u64,
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partial({} records)", self.records)
    }
}

/// An output port of a node. Every node has a main output; side outputs carry what the node
/// could not use, so that nothing is dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// The node's results.
    Main,
    /// Records that arrived after their windows closed (`NODE.late` in a pipeline file).
    Late,
    /// Records that could not be parsed or used, with a reason (`NODE.errors`).
    Errors,
    /// Records a stage flagged (an `anomaly` stage's, `NODE.alerts`), as on its main output.
    Alerts,
    /// Records a `dedup` stage recognised as copies of records it passed (`NODE.duplicates`).
    Duplicates,
}

impl Port {
    /// The suffix that names this port in a pipeline file (`logs.errors`), empty for Main.
    pub const fn suffix(self) -> &'static str {
        match self {
            Port::Main => "",
            Port::Late => "late",
            Port::Errors => "errors",
            Port::Alerts => "alerts",
            Port::Duplicates => "duplicates",
        }
    }

    /// The port named by a suffix.
    pub fn from_suffix(s: &str) -> Option<Port> {
        match s {
            "" => Some(Port::Main),
            "late" => Some(Port::Late),
            "errors" => Some(Port::Errors),
            "alerts" => Some(Port::Alerts),
            "duplicates" => Some(Port::Duplicates),
            _ => None,
        }
    }
}
