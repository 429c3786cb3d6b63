//! Field names that cross crate boundaries. Use these constants, never the literals.

/// Inclusive start of a window, a UTC timestamp in milliseconds.
pub const WINDOW_START: &str = "window_start";
/// Exclusive end of a window, a UTC timestamp in milliseconds.
pub const WINDOW_END: &str = "window_end";
/// Dead-letter field: the node that rejected the record.
pub const DL_NODE: &str = "node";
/// Dead-letter field: 1-based line number within the source, when there is one.
pub const DL_LINE: &str = "line";
/// Dead-letter field: why the record was rejected.
pub const DL_REASON: &str = "reason";
/// Dead-letter field: the raw record, lossily decoded as UTF-8 and cut at 4 KiB.
pub const DL_RAW: &str = "raw";
/// Field metadata key: the Utf8 column holds JSON text that JSON sinks embed as is (alert
/// contributors), rather than as a quoted string.
pub const META_JSON: &str = "weir.json";
