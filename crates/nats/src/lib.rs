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

/// Where a NATS server listens unless the config says otherwise.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
