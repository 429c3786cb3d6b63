//! weir-amqp: `[sink.NAME] type = "rabbitmq"` publishes each row as a JSON message to a
//! RabbitMQ exchange (AMQP 0-9-1, lapin).
//!
//! Every message is persistent (delivery mode 2) unless `persistent = false`, and the channel
//! is in publisher-confirm mode: a flush, and so a checkpoint, completes only once the broker
//! has confirmed every row published before it. Rows wait in a buffer of `buffer` rows for
//! the connection; while RabbitMQ is unreachable the buffer fills, and then the sink's input
//! waits (back-pressure): no row is dropped. The connection is retried with backoff (100 ms
//! doubling to 30 s), with a warning every 5 s while rows wait.
//!
//! Delivery is at-least-once: rows published but not yet confirmed when a connection breaks
//! are published again on the next one (the broker may have routed them already), and after
//! a crash the rows that followed the last checkpoint are published again. Every message
//! carries a `message_id` (`<run>-<row number>`) so a consumer can drop the repeats.

mod sink;

pub use sink::{AmqpSink, AmqpSinkConfig};

#[cfg(test)]
mod tests;
