//! Message ids for sinks that publish to a broker (NATS, RabbitMQ): `<run>-<row number>`. The
//! run id and the row count go into checkpoints, so the rows a restarted run publishes again
//! get the ids they had, and a broker or consumer that deduplicates by id drops them.

use serde::{Deserialize, Serialize};
use weir_core::Result;

/// The ids of one sink's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageIds {
    /// Names this run (time and process id, in hex); kept across checkpoints.
    run: String,
    /// Rows numbered so far.
    rows: u64,
}

/// Version of the checkpointed state (the NATS sink's since its first release).
const STATE_VERSION: u32 = 1;

impl Default for MessageIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageIds {
    /// A new run: rows are numbered from 1.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        MessageIds {
            run: format!("{:x}{:x}", nanos, std::process::id()),
            rows: 0,
        }
    }

    /// Numbers the next row.
    pub fn number(&mut self) -> u64 {
        self.rows += 1;
        self.rows
    }

    /// The run id.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The id of row `n` of this run.
    pub fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.run)
    }

    /// Takes the run id and row count of the checkpoint being resumed (`state` from
    /// [`MessageIds::encode`]; `None`: a fresh start). `sink` names the sink kind in errors.
    pub fn recover(&mut self, sink: &str, state: Option<&[u8]>) -> Result<()> {
        if let Some(bytes) = state {
            *self = weir_core::state::decode(sink, STATE_VERSION, bytes)?;
        }
        Ok(())
    }

    /// The state for a checkpoint.
    pub fn encode(&self, sink: &str) -> Result<Vec<u8>> {
        weir_core::state::encode(sink, STATE_VERSION, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_numbers_on_from_its_checkpoint() {
        let mut a = MessageIds::new();
        assert_eq!((a.number(), a.number()), (1, 2));
        let state = a.encode("test sink").unwrap();
        a.number();
        let mut b = MessageIds::new();
        b.recover("test sink", Some(&state)).unwrap();
        assert_eq!(b.run(), a.run());
        assert_eq!(b.number(), 3);
        assert_eq!(b.id(3), format!("{}-3", a.run()));
        assert!(b.recover("test sink", Some(b"junk")).is_err());
    }
}
