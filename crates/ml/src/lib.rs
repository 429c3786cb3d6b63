//! weir-ml owns weir's anomaly models: an isolation forest and the reference job's
//! unsupervised random forest (real records against synthetic ones drawn from each feature's
//! values independently), both trained from a [`Matrix`] of records in seconds on every core,
//! and scored from one flat node array ([`Forest`]) at millions of records per second.
//! [`Featurizer`] turns Arrow record batches into those rows, [`Model`] is the versioned,
//! checksummed file `weir train` writes and the `anomaly` stage and `weir score` read, and
//! [`Evaluation`] measures a score against labels (ROC-AUC, PR-AUC, precision, recall).
//!
//! ```
//! use weir_ml::{iforest, Matrix};
//!
//! // 200 records near the origin and one far away.
//! let mut rows: Vec<f32> = (0..200).flat_map(|i| [(i % 10) as f32 * 0.1, (i / 10) as f32 * 0.1]).collect();
//! rows.extend([40.0, 40.0]);
//! let data = Matrix::from_rows(2, rows);
//! let forest = iforest::train(&data, &iforest::IsolationParams::default(), &|| {});
//! let mut scores = vec![0.0; data.rows()];
//! forest.score(data.values(), &mut scores);
//! assert!(scores[200] > 0.7 && scores[0] < 0.6);
//! ```
//!
//! Training is deterministic for a seed whatever the number of threads: tree `t` draws from
//! its own random stream of the seed.

pub mod features;
pub mod forest;
pub mod iforest;
pub mod metrics;
pub mod model;
pub mod rf;
mod rng;
mod train;

pub use features::{Encoding, Feature, Featurizer, Problem};
pub use forest::Forest;
pub use metrics::Evaluation;
pub use model::{Loaded, Model, ModelKind, Training};
pub use rng::Rng;
pub use train::Matrix;

/// Errors of models and their files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlError {
    /// A model's features do not fit the records (missing fields, wrong types).
    #[error("the model does not fit the records: {0}")]
    Mismatch(String),
    /// The file does not start as a model file does.
    #[error("not a weir model file")]
    NotAModel,
    /// A model file of a layout this build does not read.
    #[error("model file format {0}, this weir reads format {FORMAT}", FORMAT = model::FORMAT)]
    Format(u32),
    /// A model file that is damaged or inconsistent.
    #[error("damaged model file: {0}")]
    Corrupt(String),
    /// Reading or writing a file failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// An error about the file at this path.
    #[error("{0}: {1}")]
    In(String, #[source] Box<MlError>),
}

#[cfg(test)]
mod tests;
