//! weir-http: the web server a pipeline runs when it has `[server]` or an `http` source.
//!
//! - [`Server`]: one axum server on the process's async runtime ([`weir_core::io`]), bound to
//!   `127.0.0.1:7878` unless `[server] listen` says otherwise (anything but a loopback
//!   address needs a token). `GET /health` answers `{"status":"ok"}`.
//! - [`ingest`]: `POST /ingest/<source>` — what web clients post events to: a JSON object, a
//!   JSON array or NDJSON, optionally gzip, checked record by record, queued up to a bound
//!   and refused with 429 beyond it.
//! - [`board`]: the dashboard at `/` — outputs listed in `[server] dashboard` drawn live
//!   (top-K lists with rank changes, charts of windowed counts, feeds of alerts) and the
//!   pipeline's health, over a WebSocket (`/api/live`) that sends a snapshot and then
//!   updates; `/api/outputs/<name>` as JSON; `/metrics` in Prometheus's text format.

pub mod board;
mod dashboard;
pub mod ingest;
mod server;

pub use board::{BoardSink, CheckpointFigures, DashboardEntry, DashboardOutput, View, Watched};
pub use server::{Server, ServerConfig, DEFAULT_LISTEN};

#[cfg(test)]
mod board_tests;
#[cfg(test)]
mod tests;
