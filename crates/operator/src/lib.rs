//! weir-operator owns the per-record operators of a pipeline: [`filter`], [`enrich`],
//! [`dedup`], [`anomaly`], [`alert`] and [`condition`].
//!
//! Each operator is one synchronous [`weir_core::Operator`]; the runtime drives it and passes
//! watermarks through. Conditions are SQL expressions ([`weir_expr`]).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{RecordBatch, StringArray};
//! use weir_core::{Emitter, Operator};
//! use weir_operator::filter::{Filter, FilterConfig};
//!
//! let b = RecordBatch::try_from_iter([("type", Arc::new(StringArray::from(vec!["DDOS", "SCAN"])) as _)]).unwrap();
//! let mut f = Filter::new(&FilterConfig { condition: "type = 'DDOS'".into() }, b.schema(), "stage.f").unwrap();
//! let mut out = Emitter::default();
//! f.on_batch(&b, &mut out).unwrap();
//! assert_eq!(out.out.len(), 1);
//! ```

pub mod alert;
pub mod anomaly;
pub mod condition;
pub mod dedup;
pub mod enrich;
pub mod filter;
