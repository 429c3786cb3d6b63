//! weir-window owns event time inside operators: window assignment, lateness, keyed
//! aggregation over tumbling and sliding windows ([`Aggregate`]) and the top K keys of an
//! aggregate per window ([`TopK`], built on the aggregate's panes).
//!
//! It is fed batches and watermarks by the runtime and feeds one batch per closed window:
//! `window_start, window_end, <group keys>, <aggregates>`, rows sorted by key.
//!
//! ```text
//! event time  ──────────────────────────────────────────────────────────────▶
//! panes       |p0 |p1 |p2 |p3 |p4 |p5 |        pane = gcd(size, slide)
//! window A    [───────────────)                size = 4 panes, slide = 2 panes
//! window B            [───────────────)
//! ```
//! A record updates exactly one pane of its key. When the watermark passes a window end, the
//! panes before it close: a tumbling window is its pane; a sliding window adds the panes that
//! entered and subtracts the ones that left (min/max over a two-stacks queue), so the cost per
//! record and per window does not grow with size/slide.
//!
//! Lateness: a record is late when the window end at which its pane closes has already been
//! passed by `watermark − allowed_lateness`. It then goes to the late port, counted, and never
//! appears in some of its windows but not others.
//!
//! With several instances, an aggregate in event time whose aggregates are counts, integer
//! sums, minima or maxima has its rows folded before the exchange, on the parser threads: one
//! partial result per pane and key instead of the rows (see `fold`), with the same output.

pub mod acc;
pub mod aggregate;
mod fold;
pub mod topk;

pub use acc::AggFn;
pub use aggregate::{AggSpec, Aggregate, AggregateConfig, WindowKind, WindowSpec};
pub use topk::{TopK, TopKConfig};
