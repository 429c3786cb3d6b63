//! Barrier alignment: a consumer with several inputs takes its snapshot for an epoch only when
//! every input has delivered that epoch's barrier, so the snapshot holds exactly the records
//! before the barrier on every input. An input that has passed the barrier is held back
//! (its messages are queued in memory, in order) until the others catch up.
//!
//! ```text
//!  input 0: d d B d d        input 0 blocked after B: its later `d d` wait in `held`
//!  input 1: d d d d B        when input 1's B arrives: Checkpoint(epoch), then the held
//!                            messages are processed before anything new
//! ```
//! An input that has ended counts as aligned. With one input, a barrier aligns at once.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use weir_core::{Error, Message, Result};

/// What a consumer does next.
#[derive(Debug)]
pub(crate) enum Event {
    /// A data, watermark or end message from input `.0` (never a barrier).
    Msg(usize, Message),
    /// Every live input has passed the barrier of this epoch: snapshot now, then forward it.
    Checkpoint(u64),
    /// Nothing arrived within the wait.
    Idle,
}

/// The receiving side of a consumer, with barrier alignment.
pub(crate) struct Aligner {
    rx: Receiver<(usize, Message)>,
    /// Messages to process before reading the channel again (released from `held`).
    pending: VecDeque<(usize, Message)>,
    /// Messages of blocked inputs, in arrival order.
    held: Vec<(usize, Message)>,
    blocked: Vec<bool>,
    ended: Vec<bool>,
    epoch: Option<u64>,
}

impl Aligner {
    pub(crate) fn new(rx: Receiver<(usize, Message)>, inputs: usize) -> Self {
        Aligner {
            rx,
            pending: VecDeque::new(),
            held: Vec::new(),
            blocked: vec![false; inputs],
            ended: vec![false; inputs],
            epoch: None,
        }
    }

    fn aligned(&self) -> bool {
        self.blocked.iter().zip(&self.ended).all(|(b, e)| *b || *e)
    }

    /// The next event, waiting at most `wait` for the channel.
    pub(crate) fn next(&mut self, wait: Duration) -> Result<Event> {
        loop {
            if let Some(epoch) = self.epoch.filter(|_| self.aligned()) {
                self.epoch = None;
                self.blocked.fill(false);
                let mut released: VecDeque<_> = self.held.drain(..).collect();
                released.append(&mut self.pending);
                self.pending = released;
                return Ok(Event::Checkpoint(epoch));
            }
            let (i, msg) = match self.pending.pop_front() {
                Some(m) => m,
                None => match self.rx.recv_timeout(wait) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => return Ok(Event::Idle),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(Error::Stopped("an input".into()))
                    }
                },
            };
            if self.blocked[i] {
                self.held.push((i, msg));
                continue;
            }
            match msg {
                Message::Barrier(epoch) => {
                    if let Some(open) = self.epoch.filter(|e| *e != epoch) {
                        return Err(Error::Internal(format!(
                            "barrier of epoch {epoch} arrived while aligning epoch {open}"
                        )));
                    }
                    self.epoch = Some(epoch);
                    self.blocked[i] = true;
                }
                Message::End => {
                    self.ended[i] = true;
                    return Ok(Event::Msg(i, Message::End));
                }
                m => return Ok(Event::Msg(i, m)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    fn wm(t: i64) -> Message {
        Message::Watermark(t)
    }

    /// Collects events as strings: "i:wN", "i:end", "ckN".
    fn drain(a: &mut Aligner) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match a.next(Duration::from_millis(1)).unwrap() {
                Event::Msg(i, Message::Watermark(t)) => out.push(format!("{i}:w{t}")),
                Event::Msg(i, Message::End) => out.push(format!("{i}:end")),
                Event::Msg(i, m) => out.push(format!("{i}:{m:?}")),
                Event::Checkpoint(e) => out.push(format!("ck{e}")),
                Event::Idle => return out,
            }
        }
    }

    #[test]
    fn holds_an_input_past_its_barrier_until_the_other_arrives() {
        let (tx, rx) = unbounded();
        let mut a = Aligner::new(rx, 2);
        for m in [
            (0, wm(1)),
            (0, Message::Barrier(7)),
            (0, wm(2)),
            (1, wm(10)),
            (0, wm(3)),
            (1, Message::Barrier(7)),
            (1, wm(11)),
        ] {
            tx.send(m).unwrap();
        }
        assert_eq!(
            drain(&mut a),
            ["0:w1", "1:w10", "ck7", "0:w2", "0:w3", "1:w11"]
        );
    }

    #[test]
    fn an_ended_input_counts_as_aligned_and_later_epochs_queue_behind() {
        let (tx, rx) = unbounded();
        let mut a = Aligner::new(rx, 2);
        for m in [
            (0, Message::Barrier(1)),
            (0, wm(5)),
            (0, Message::Barrier(2)),
            (0, wm(6)),
            (1, Message::End),
        ] {
            tx.send(m).unwrap();
        }
        assert_eq!(drain(&mut a), ["1:end", "ck1", "0:w5", "ck2", "0:w6"]);
    }

    #[test]
    fn one_input_aligns_at_once() {
        let (tx, rx) = unbounded();
        let mut a = Aligner::new(rx, 1);
        for m in [wm(1), Message::Barrier(3), wm(2), Message::End] {
            tx.send((0, m)).unwrap();
        }
        assert_eq!(drain(&mut a), ["0:w1", "ck3", "0:w2", "0:end"]);
    }
}
