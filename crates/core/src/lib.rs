//! weir-core owns the vocabulary every stage speaks: record batches (Apache Arrow
//! [`RecordBatch`](arrow_array::RecordBatch)), event time, the [`Message`]s that flow between
//! stages, the stage traits ([`Source`], [`Parser`], [`Operator`], [`Sink`]), metrics and errors.
//!
//! Sources feed bytes to parsers, parsers fill batches, operators turn batches and watermarks
//! into batches, sinks write them. The traits live here, not in the crates that implement them,
//! so that the runtime and every connector depend on this crate only and never on each other.
//!
//! ```
//! use weir_core::time::{format_rfc3339_ms, parse_duration_ms};
//! assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
//! assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00Z");
//! ```

pub mod config;
pub mod deadletter;
pub mod error;
pub mod fields;
pub mod io;
pub mod keys;
pub mod message;
pub mod metrics;
pub mod operator;
pub mod parse;
pub mod redact;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
pub mod value;
pub mod watermark;

pub use error::{Error, ErrorClass, Result};
pub use message::{Message, Partial, Port};
pub use operator::{Combiner, Emitter, Operator, Partitioner};
pub use parse::Parser;
pub use sink::Sink;
pub use source::{Framing, MessageEnds, ReadOutcome, Source, SourcePosition, SplitPosition};
