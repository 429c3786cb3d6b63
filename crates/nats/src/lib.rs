//! weir-nats: NATS JetStream connectors.
//!
//! - [`source::NatsSource`] reads a stream through a durable pull consumer, in stream order,
//!   and acknowledges only what a durable checkpoint holds, so a run killed at any moment
//!   resumes with nothing lost and nothing read twice.
//! - [`sink::NatsSink`] publishes each row as a JSON object to a subject, through JetStream
//!   (waiting for the stream's acknowledgements, with a message id per row that the stream
//!   deduplicates on) or as plain NATS messages.
//!
//! Both run their connection on the process's one async runtime ([`weir_core::io`]); the
//! pipeline thread waits on it only as long as it would wait anyway. A server that is down at
//! the start or goes away mid-run is retried with exponential backoff (100 ms doubling to
//! 30 s), with a warning per attempt; nothing is dropped meanwhile.

pub mod sink;
pub mod source;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

/// Where a NATS server listens unless the config says otherwise.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// Exponential backoff between attempts to reach a server: 100 ms doubling to 30 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
    next: Instant,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> Self {
        Backoff {
            failures: 0,
            next: Instant::now(),
        }
    }

    /// The wait after the failures so far.
    pub(crate) fn delay(&self) -> Duration {
        Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX)
    }

    pub(crate) fn failed(&mut self) {
        self.next = Instant::now() + self.delay();
        self.failures += 1;
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
        self.next = Instant::now();
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    pub(crate) fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }
}
