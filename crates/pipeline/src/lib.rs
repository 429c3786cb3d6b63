//! The pipeline file of `weir run` and `weir check`: [`config`] parses, checks, plans and
//! builds it; [`registry`] names the connectors and stages it can hold.

pub mod config;
pub mod registry;
