//! The model file: what a model reads (features and their encodings), the forest, the
//! threshold that flags a record, how and on what it was trained, and its quality when the
//! training data had labels.
//!
//! Layout: the magic `WEIRMODL`, the format version (u32, little-endian), the body's length
//! (u64), the body (postcard), and the body's XXH64 (u64). The model's *version*, which every
//! scored record carries, is the first 12 hex digits of the XXH64 of what decides its scores
//! (kind, features, trees, threshold), so training again with the same seed on the same
//! records gives the same version, and the training metadata (times) does not change it. A file
//! is written beside its destination and renamed over it, so a reader (a running `anomaly`
//! stage) sees the old model or the new one, never half of one.

use std::hash::Hasher;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::features::Feature;
use crate::forest::Forest;
use crate::metrics::Evaluation;
use crate::MlError;

const MAGIC: &[u8; 8] = b"WEIRMODL";
/// The version of the file layout this build writes and reads.
pub const FORMAT: u32 = 1;

/// The kinds of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Isolation forest.
    IsolationForest,
    /// Random forest trained to tell the records from synthetic ones.
    RandomForest,
}

impl ModelKind {
    /// The name on the command line and in output: `iforest`, `rf`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::IsolationForest => "iforest",
            ModelKind::RandomForest => "rf",
        }
    }
}

/// How a model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// What it read (paths as given).
    pub input: String,
    /// Records trained on.
    pub records: u64,
    /// Records left out because a feature was missing or not a number.
    pub skipped: u64,
    /// Wall-clock seconds of the training itself (reading not included).
    pub seconds: f64,
    /// When it finished, Unix seconds.
    pub finished: i64,
    /// The weir version that trained it.
    pub weir: String,
    /// The hyperparameters, as `name = value`.
    pub params: Vec<(String, String)>,
}

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Its kind.
    pub kind: ModelKind,
    /// The fields it reads, in input order.
    pub features: Vec<Feature>,
    /// The trees.
    pub forest: Forest,
    /// Records scoring at or above this are flagged.
    pub threshold: f32,
    /// How the threshold was chosen (`--threshold 0.6`, `contamination 0.01`).
    pub threshold_from: String,
    /// How it was trained.
    pub training: Training,
    /// Its quality on held-out labelled records, when there were labels.
    pub evaluation: Option<Evaluation>,
}

/// A model read from a file, with its version.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Its version ([`Model::version`]).
    pub version: String,
}

fn xxh64(bytes: &[u8]) -> u64 {
    let mut h = twox_hash::XxHash64::with_seed(0);
    h.write(bytes);
    h.finish()
}

impl Model {
    /// The version: what decides the scores, hashed.
    pub fn version(&self) -> String {
        let scoring =
            postcard::to_allocvec(&(self.kind, &self.features, &self.forest, self.threshold))
                .expect("a model serializes");
        format!("{:016x}", xxh64(&scoring))[..12].to_string()
    }
}

impl Model {
    /// The file's bytes and the model's version.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, String), MlError> {
        let body = postcard::to_allocvec(self).map_err(|e| MlError::Corrupt(e.to_string()))?;
        let sum = xxh64(&body);
        let mut out = Vec::with_capacity(body.len() + 28);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok((out, self.version()))
    }

    /// Writes the model to `path` atomically (a file beside it, synced, renamed over it) and
    /// returns its version.
    pub fn save(&self, path: &Path) -> Result<String, MlError> {
        let (bytes, v) = self.to_bytes()?;
        let io = |e| MlError::Io(path.display().to_string(), e);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir {
            std::fs::create_dir_all(d).map_err(io)?;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            name.as_deref().unwrap_or("model"),
            std::process::id()
        ));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })?;
        Ok(v)
    }

    /// Reads a model file's bytes; every structural promise the scorer relies on is checked.
    pub fn from_bytes(bytes: &[u8]) -> Result<Loaded, MlError> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(MlError::NotAModel);
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if format != FORMAT {
            return Err(MlError::Format(format));
        }
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let rest = &bytes[20..];
        if len.checked_add(8) != Some(rest.len() as u64) {
            return Err(MlError::Corrupt(format!(
                "the body should be {len} bytes and its checksum 8, the file has {} after its header",
                rest.len()
            )));
        }
        let (body, sum) = rest.split_at(len as usize);
        let sum = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
        if xxh64(body) != sum {
            return Err(MlError::Corrupt("the checksum does not match".into()));
        }
        let model: Model =
            postcard::from_bytes(body).map_err(|e| MlError::Corrupt(e.to_string()))?;
        model.forest.validate()?;
        let w = crate::features::width(&model.features);
        if w != model.forest.width() {
            return Err(MlError::Corrupt(format!(
                "the features make {w} inputs, the forest reads {}",
                model.forest.width()
            )));
        }
        Ok(Loaded {
            version: model.version(),
            model,
        })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Loaded, MlError> {
        let bytes = std::fs::read(path).map_err(|e| MlError::Io(path.display().to_string(), e))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            MlError::Io(..) => e,
            e => MlError::In(path.display().to_string(), Box::new(e)),
        })
    }
}
