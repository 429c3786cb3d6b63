//! The checkpoint directory: one folder per completed epoch.
//!
//! ```text
//! state/
//!   epoch-0000000041/          complete: MANIFEST.json written last, then the folder renamed
//!     MANIFEST.json            epoch, time, per node: file, size, CRC-32, source position
//!     source-logs.state
//!     stage-counts.state
//!     sink-out.state
//!   epoch-0000000042.tmp/      being written (or left by a crash): ignored and removed
//! ```
//! Every file is written under its final folder's `.tmp` name and fsynced; the folder is
//! renamed into place and the parent fsynced, so an epoch folder without `.tmp` is complete.
//! A folder whose manifest is missing, unreadable, of another format, or whose files do not
//! match their sizes and checksums is skipped with a warning, falling back to the epoch before.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_core::{Error, Result, SourcePosition};

/// Version of the manifest and of the layout of a checkpoint folder.
pub const FORMAT: u32 = 1;

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.json";

const PREFIX: &str = "epoch-";
const TMP: &str = ".tmp";

/// What a checkpoint holds, written last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// Version of weir that wrote it.
    pub weir_version: String,
    /// The epoch.
    pub epoch: u64,
    /// Wall-clock time the checkpoint completed (ms since the Unix epoch).
    pub created_ms: i64,
    /// Every node had finished (the pipeline's input was consumed or it was stopped).
    pub finished: bool,
    /// One entry per node.
    pub nodes: Vec<NodeEntry>,
}

/// One node's state in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node name.
    pub name: String,
    /// `source`, `stage` or `sink`.
    pub kind: String,
    /// Digest of the node's configuration: a different one means the pipeline changed.
    pub fingerprint: String,
    /// State file in the epoch folder.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its CRC-32.
    pub crc32: u32,
    /// The node had finished when this state was taken.
    pub finished: bool,
    /// Instances of the node whose states the file holds (a keyed stage run with several).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub instances: u32,
    /// Where a source stood (sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<SourcePosition>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Manifest {
    /// Total bytes of the state files.
    pub fn bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.bytes).sum()
    }
}

/// A checkpoint read back and verified.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// State bytes by node name.
    pub states: BTreeMap<String, Vec<u8>>,
    /// Newer epochs that were skipped, and why.
    pub skipped: Vec<String>,
}

/// One epoch folder as listed by `weir checkpoints`.
#[derive(Debug)]
pub struct Listed {
    /// Epoch number from the folder name.
    pub epoch: u64,
    /// The folder.
    pub path: PathBuf,
    /// The verified manifest, or why the epoch is unusable.
    pub manifest: std::result::Result<Manifest, String>,
}

/// A checkpoint directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    retain: usize,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

/// A name safe as a file name, derived from a node name.
fn file_name(kind: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{kind}-{safe}.state")
}

impl Store {
    /// Opens (creating) a checkpoint directory keeping the newest `retain` epochs, and removes
    /// folders a crash left half-written.
    pub fn open(dir: impl Into<PathBuf>, retain: usize) -> Result<Store> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(format!(
            "creating checkpoint directory {}",
            dir.display()
        )))?;
        let store = Store {
            dir,
            retain: retain.max(1),
        };
        for (_, path, tmp) in store.folders()? {
            if tmp {
                tracing::info!(path = %path.display(), "removing a partial checkpoint");
                fs::remove_dir_all(&path).map_err(io(format!(
                    "removing partial checkpoint {}",
                    path.display()
                )))?;
            }
        }
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Epoch folders, oldest first: (epoch, path, is it a `.tmp` folder).
    fn folders(&self) -> Result<Vec<(u64, PathBuf, bool)>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(io(format!(
            "listing checkpoint directory {}",
            self.dir.display()
        )))?;
        for e in entries {
            let e = e.map_err(io(format!("listing {}", self.dir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let (num, tmp) = match rest.strip_suffix(TMP) {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let Ok(epoch) = num.parse::<u64>() {
                out.push((epoch, e.path(), tmp));
            }
        }
        out.sort();
        Ok(out)
    }

    fn folder(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{epoch:010}"))
    }

    /// Writes a complete checkpoint: `nodes` with their state bytes. Returns bytes written.
    pub fn write(
        &self,
        epoch: u64,
        finished: bool,
        nodes: Vec<(NodeEntry, &[u8])>,
        now_ms: i64,
    ) -> Result<u64> {
        let fin = self.folder(epoch);
        let tmp = PathBuf::from(format!("{}{TMP}", fin.display()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(format!("removing {}", tmp.display())))?;
        }
        fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        let mut entries = Vec::with_capacity(nodes.len());
        for (mut entry, bytes) in nodes {
            entry.file = file_name(&entry.kind, &entry.name);
            entry.bytes = bytes.len() as u64;
            entry.crc32 = crc32fast::hash(bytes);
            write_synced(&tmp.join(&entry.file), bytes)?;
            entries.push(entry);
        }
        let manifest = Manifest {
            format: FORMAT,
            weir_version: env!("CARGO_PKG_VERSION").to_string(),
            epoch,
            created_ms: now_ms,
            finished,
            nodes: entries,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::State(format!("encoding the manifest: {e}")))?;
        write_synced(&tmp.join(MANIFEST), &json)?;
        fsync_dir(&tmp)?;
        if fin.exists() {
            // Left by an earlier run that was reset or fell back past it: replace it.
            fs::remove_dir_all(&fin).map_err(io(format!("removing {}", fin.display())))?;
        }
        fs::rename(&tmp, &fin).map_err(io(format!("renaming {}", tmp.display())))?;
        fsync_dir(&self.dir)?;
        Ok(manifest.bytes() + json.len() as u64)
    }

    /// Removes all but the newest `retain` complete epochs.
    pub fn prune(&self) -> Result<()> {
        let done: Vec<_> = self.folders()?.into_iter().filter(|f| !f.2).collect();
        for (_, path, _) in done.iter().rev().skip(self.retain) {
            fs::remove_dir_all(path).map_err(io(format!("removing {}", path.display())))?;
        }
        Ok(())
    }

    /// Removes every epoch (`--reset-state`).
    pub fn reset(&self) -> Result<()> {
        for (_, path, _) in self.folders()? {
            fs::remove_dir_all(&path).map_err(io(format!("removing {}", path.display())))?;
        }
        Ok(())
    }

    /// Reads and verifies one epoch folder.
    fn load(path: &Path) -> std::result::Result<(Manifest, BTreeMap<String, Vec<u8>>), String> {
        let text = fs::read(path.join(MANIFEST)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "no manifest (the checkpoint is partial)".to_string(),
            _ => format!("reading its manifest: {e}"),
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| format!("unreadable manifest: {e}"))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "checkpoint format {} (this weir reads {FORMAT})",
                manifest.format
            ));
        }
        let mut states = BTreeMap::new();
        for n in &manifest.nodes {
            let bytes =
                fs::read(path.join(&n.file)).map_err(|e| format!("reading {}: {e}", n.file))?;
            if bytes.len() as u64 != n.bytes {
                return Err(format!(
                    "{} has {} bytes, the manifest says {}",
                    n.file,
                    bytes.len(),
                    n.bytes
                ));
            }
            if crc32fast::hash(&bytes) != n.crc32 {
                return Err(format!("{} fails its checksum", n.file));
            }
            states.insert(n.name.clone(), bytes);
        }
        Ok((manifest, states))
    }

    /// Every epoch folder, newest first, with its verified manifest or what is wrong with it.
    pub fn list(&self) -> Result<Vec<Listed>> {
        Ok(self
            .folders()?
            .into_iter()
            .rev()
            .map(|(epoch, path, tmp)| Listed {
                epoch,
                manifest: if tmp {
                    Err("being written, or left by a crash (no manifest yet)".into())
                } else {
                    Self::load(&path).map(|(m, _)| m)
                },
                path,
            })
            .collect())
    }

    /// The newest complete and intact checkpoint, skipping (with a warning) damaged ones.
    pub fn latest(&self) -> Result<Option<Loaded>> {
        let mut skipped = Vec::new();
        for (epoch, path, tmp) in self.folders()?.into_iter().rev() {
            if tmp {
                continue;
            }
            match Self::load(&path) {
                Ok((manifest, states)) => {
                    return Ok(Some(Loaded {
                        manifest,
                        states,
                        skipped,
                    }))
                }
                Err(why) => {
                    tracing::warn!(epoch, path = %path.display(), %why, "skipping a damaged checkpoint; falling back to the one before");
                    skipped.push(format!("epoch {epoch}: {why}"));
                }
            }
        }
        Ok(None)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(io(format!("creating {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            kind: "stage".into(),
            fingerprint: "f".into(),
            file: String::new(),
            bytes: 0,
            crc32: 0,
            finished: false,
            instances: 1,
            position: None,
        }
    }

    fn write(store: &Store, epoch: u64, payload: &[u8]) {
        store
            .write(epoch, false, vec![(entry("counts"), payload)], 0)
            .unwrap();
    }

    fn latest_epoch(store: &Store) -> Option<(u64, Vec<u8>, usize)> {
        store.latest().unwrap().map(|l| {
            (
                l.manifest.epoch,
                l.states["counts"].clone(),
                l.skipped.len(),
            )
        })
    }

    #[test]
    fn newest_intact_epoch_wins_and_old_ones_are_pruned() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path(), 2).unwrap();
        assert!(store.latest().unwrap().is_none());
        for e in 1..=4 {
            write(&store, e, &[e as u8; 10]);
            store.prune().unwrap();
        }
        assert_eq!(latest_epoch(&store), Some((4, vec![4; 10], 0)));
        let epochs: Vec<u64> = store.list().unwrap().iter().map(|l| l.epoch).collect();
        assert_eq!(epochs, [4, 3]);
    }

    #[test]
    fn truncated_state_file_falls_back_to_the_epoch_before() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path(), 3).unwrap();
        write(&store, 1, b"one");
        write(&store, 2, b"two-two");
        let f = store.folder(2).join("stage-counts.state");
        fs::write(&f, b"two").unwrap();
        assert_eq!(latest_epoch(&store), Some((1, b"one".to_vec(), 1)));
        let listed = store.list().unwrap();
        assert!(
            listed[0]
                .manifest
                .as_ref()
                .unwrap_err()
                .contains("has 3 bytes, the manifest says 7"),
            "{:?}",
            listed[0].manifest
        );
    }

    #[test]
    fn flipped_byte_missing_manifest_and_wrong_format_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path(), 5).unwrap();
        for e in 1..=4 {
            write(&store, e, b"state!");
        }
        // 4: a byte flipped; 3: manifest gone; 2: another format.
        fs::write(store.folder(4).join("stage-counts.state"), b"state?").unwrap();
        fs::remove_file(store.folder(3).join(MANIFEST)).unwrap();
        let m = store.folder(2).join(MANIFEST);
        let text = fs::read_to_string(&m).unwrap();
        fs::write(&m, text.replace("\"format\": 1", "\"format\": 99")).unwrap();
        let loaded = store.latest().unwrap().unwrap();
        assert_eq!(loaded.manifest.epoch, 1);
        assert_eq!(
            loaded.skipped,
            [
                "epoch 4: stage-counts.state fails its checksum",
                "epoch 3: no manifest (the checkpoint is partial)",
                "epoch 2: checkpoint format 99 (this weir reads 1)",
            ]
        );
    }

    #[test]
    fn partial_folders_are_removed_on_open_and_reset_clears_all() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path(), 5).unwrap();
        write(&store, 1, b"x");
        fs::create_dir(d.path().join("epoch-0000000002.tmp")).unwrap();
        let store = Store::open(d.path(), 5).unwrap();
        assert!(!d.path().join("epoch-0000000002.tmp").exists());
        assert_eq!(latest_epoch(&store).map(|l| l.0), Some(1));
        store.reset().unwrap();
        assert!(store.latest().unwrap().is_none());
    }
}
