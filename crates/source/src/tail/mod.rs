//! A file followed like `tail -F`, without losing a line to rotation or truncation.
//!
//! - **Latency**: the file's directory is watched with inotify (the `notify` crate), so an
//!   appended line is read the moment it is written; `poll_interval` is only the fallback
//!   when watching is not possible (and a safety net).
//! - **Rotation** (the file renamed away, a new one created at the path): the old file is read
//!   to its end through the descriptor held open, then rotated files written since the last
//!   look (found in the directory by name prefix, identity and modification time: two
//!   rotations between two looks) are read, then the new file from its start. Every byte is
//!   read once however fast files rotate: each file left behind is remembered by identity,
//!   first bytes and how far it was read, so a rotated file seen again is read on from there
//!   (its writer may still append to it) or skipped, never read twice; and when the path has
//!   rotated again while the backlog was read, the directory is looked at again before the
//!   file now at the path is opened.
//! - **Restart** after a rotation while weir was stopped: the checkpoint's file is found in the
//!   directory by its identity (device, inode) and read from the checkpointed offset to its
//!   end before the current file.
//! - **Truncation** (`copytruncate`): noticed when the file is shorter than what was read, and
//!   also when it was truncated and refilled past the old offset before weir looked again
//!   (the last bytes read no longer match); reading restarts at 0 with a warning that says
//!   how much may have been missed.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::SystemTime;

use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::{Error, ReadOutcome, Result, Source, SourcePosition};

/// Where a followed file is first read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The whole file, then what is appended (default: nothing already there is lost).
    #[default]
    Beginning,
    /// Only what is appended after weir starts, like `tail -F -n0`.
    End,
}

const fn default_poll() -> Duration {
    Duration::from_ms(250)
}

/// `[source.NAME] type = "tail"`: follows a file forever, across rotation and truncation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// Path to follow. It may not exist yet; weir waits for it.
    pub path: PathBuf,
    /// `"beginning"` (default) or `"end"`.
    #[serde(default)]
    pub from: StartAt,
    /// How often to look for new data when the directory cannot be watched with inotify
    /// (default `"250ms"`); with inotify, lines are read as they are written.
    #[serde(default = "default_poll")]
    pub poll_interval: Duration,
}

/// Bytes before the read position kept to recognise the file later.
const MARK: usize = 64;

/// A file identity: (device, inode).
type FileId = (u64, u64);

/// A rotated file to read: the open file, its identity, its path and where to start.
struct Rotated {
    file: File,
    id: FileId,
    path: PathBuf,
    from: u64,
}

/// A file weir has stopped reading: how far it was read and its first bytes (an inode can be
/// reused by a new file once the old one is removed; the first bytes tell them apart).
struct Left {
    offset: u64,
    head: Vec<u8>,
}

/// The followed file.
pub struct TailSource {
    cfg: TailConfig,
    file: Option<File>,
    id: Option<FileId>,
    offset: u64,
    opened_once: bool,
    /// The file being read is a rotated one: at its end, go on with the backlog or the path.
    draining: bool,
    /// Rotated files to read to their end before the file at the path.
    backlog: VecDeque<Rotated>,
    /// Files left behind (rotated away), by identity: never read twice.
    left: HashMap<FileId, Left>,
    /// The last bytes read, ending at `offset`.
    mark: Vec<u8>,
    /// The last read ended at the end of the file.
    at_end: bool,
    /// The file's length at the last look.
    seen_len: u64,
    /// When the path was last seen to be the file being read.
    confirmed: SystemTime,
    /// Wakes the reader when the directory changes; `None`: polling only.
    wake: Option<(notify::RecommendedWatcher, Receiver<()>)>,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

impl TailSource {
    /// Starts following; the file is opened on the first read.
    pub fn new(cfg: &TailConfig) -> Self {
        TailSource {
            cfg: cfg.clone(),
            file: None,
            id: None,
            offset: 0,
            opened_once: false,
            draining: false,
            backlog: VecDeque::new(),
            left: HashMap::new(),
            mark: Vec::new(),
            at_end: false,
            seen_len: 0,
            confirmed: SystemTime::UNIX_EPOCH,
            wake: watch(&cfg.path),
        }
    }

    fn dir(&self) -> PathBuf {
        dir_of(&self.cfg.path)
    }

    /// Opens the file at the path; `false` when it does not exist (yet).
    fn open(&mut self) -> Result<bool> {
        let file = match File::open(&self.cfg.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("opening {}", self.cfg.path.display()), e)),
        };
        let meta = file.metadata().map_err(io_err(format!(
            "reading metadata of {}",
            self.cfg.path.display()
        )))?;
        self.id = crate::file_id(&meta);
        self.file = Some(file);
        self.draining = false;
        self.offset = 0;
        self.mark.clear();
        self.seen_len = meta.len();
        self.confirmed = SystemTime::now();
        if !self.opened_once && self.cfg.from == StartAt::End {
            self.seek_to(meta.len())?;
        }
        self.opened_once = true;
        if self.wake.is_none() {
            // The directory may exist only now.
            self.wake = watch(&self.cfg.path);
        }
        Ok(true)
    }

    fn seek_to(&mut self, offset: u64) -> Result<()> {
        if let Some(f) = &mut self.file {
            f.seek(SeekFrom::Start(offset))
                .map_err(io_err(format!("seeking in {}", self.cfg.path.display())))?;
            self.offset = offset;
            self.mark.clear();
            let from = offset.saturating_sub(MARK as u64);
            let mut mark = vec![0; (offset - from) as usize];
            if f.read_exact_at(&mut mark, from).is_ok() {
                self.mark = mark;
            }
        }
        Ok(())
    }

    /// Before reading on after the end: is the file still the one read so far? A file
    /// truncated and written again past the old offset has other bytes before it.
    fn verify(&mut self) -> Result<()> {
        let Some(f) = &self.file else {
            return Ok(());
        };
        let len = f
            .metadata()
            .map_err(io_err(format!(
                "reading metadata of {}",
                self.cfg.path.display()
            )))?
            .len();
        let shorter = len < self.offset;
        let rewritten = !shorter && !self.mark.is_empty() && {
            let mut now = vec![0; self.mark.len()];
            let at = self.offset - self.mark.len() as u64;
            f.read_exact_at(&mut now, at).is_err() || now != self.mark
        };
        if shorter || rewritten {
            let missed = self.seen_len.saturating_sub(self.offset);
            tracing::warn!(
                path = %self.cfg.path.display(),
                read_up_to = self.offset,
                now = len,
                may_have_missed_bytes = missed,
                "{}; reading it again from its start",
                if shorter {
                    "the file was truncated"
                } else {
                    "the file was truncated and written again past where weir had read"
                }
            );
            self.seek_to(0)?;
        }
        self.seen_len = len.max(self.offset);
        Ok(())
    }

    /// Remembers how far the file being read was read, before weir turns to another.
    fn leave(&mut self) {
        if let (Some(f), Some(id)) = (&self.file, self.id) {
            let mut head = vec![0; self.offset.min(MARK as u64) as usize];
            if f.read_exact_at(&mut head, 0).is_err() {
                head.clear();
            }
            self.left.insert(
                id,
                Left {
                    offset: self.offset,
                    head,
                },
            );
        }
    }

    /// At the end of the file being read: go on with the next rotated file, notice a rotation
    /// or a truncation. Returns whether there may be more to read now.
    fn next_file(&mut self) -> Result<bool> {
        if self.draining {
            self.leave();
            if let Some(r) = self.backlog.pop_front() {
                tracing::info!(file = %r.path.display(), from = r.from, "reading a rotated file to its end");
                self.file = Some(r.file);
                self.id = Some(r.id);
                self.seek_to(r.from)?;
                return Ok(true);
            }
            // The path may have rotated again while the backlog was read: what went away
            // meanwhile comes before the file now at the path.
            let at_path = std::fs::metadata(&self.cfg.path)
                .ok()
                .and_then(|m| crate::file_id(&m));
            self.backlog = rotated_since(
                &self.dir(),
                &self.cfg.path,
                self.confirmed,
                &[at_path],
                &mut self.left,
            );
            if !self.backlog.is_empty() {
                return self.next_file();
            }
            return self.open();
        }
        let meta = match std::fs::metadata(&self.cfg.path) {
            Ok(m) => m,
            Err(_) => return Ok(false), // renamed and not yet recreated: keep the old file
        };
        if crate::file_id(&meta) == self.id {
            self.confirmed = SystemTime::now();
            return Ok(false);
        }
        // Rotated: the held file has been read to its end. Files rotated since the last look
        // come first, oldest first, then the file now at the path.
        self.leave();
        let skip = [crate::file_id(&meta)];
        self.backlog = rotated_since(
            &self.dir(),
            &self.cfg.path,
            self.confirmed,
            &skip,
            &mut self.left,
        );
        tracing::info!(path = %self.cfg.path.display(), rotated_files_to_read = self.backlog.len(), "file rotated; reading the new file from its start");
        self.draining = true;
        // The held file was left where it ended; the backlog has it again if it grew since.
        self.file = None;
        self.id = None;
        self.next_file()
    }
}

/// Watches the directory of `path` for changes; `None` when inotify is not available.
fn watch(path: &Path) -> Option<(notify::RecommendedWatcher, Receiver<()>)> {
    use notify::Watcher;
    let dir = dir_of(path);
    let (tx, rx) = sync_channel(1);
    let mut w = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        // One pending wake-up is enough: the reader reads all there is.
        let _ = tx.try_send(());
    })
    .ok()?;
    w.watch(&dir, notify::RecursiveMode::NonRecursive).ok()?;
    Some((w, rx))
}

/// The folder `path` is in (`.` for a bare name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Uncompressed files next to `path` named like its rotations (`access.log.1`,
/// `access.log-20261201`) written to since `since`, except the identities in `skip`, oldest
/// first, opened, each to be read from where weir left it (`left`) or from its start. A file
/// left and not grown since is not listed; `left` forgets files no longer there under such a
/// name.
fn rotated_since(
    dir: &Path,
    path: &Path,
    since: SystemTime,
    skip: &[Option<FileId>],
    left: &mut HashMap<FileId, Left>,
) -> VecDeque<Rotated> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return VecDeque::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return VecDeque::new();
    };
    let mut found: Vec<(SystemTime, Rotated)> = Vec::new();
    let mut present = std::collections::HashSet::new();
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let rotation = n.len() > name.len()
            && n.starts_with(&name)
            && matches!(n.as_bytes()[name.len()], b'.' | b'-' | b'_');
        let compressed = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".z"]
            .iter()
            .any(|x| n.ends_with(x));
        if !rotation || compressed {
            continue;
        }
        // Only files named like rotations are looked at (a log folder holds many others).
        let Ok(meta) = e.metadata() else { continue };
        let id = (meta.dev(), meta.ino());
        present.insert(id);
        if !meta.is_file() || skip.contains(&Some(id)) {
            continue;
        }
        let Ok(mtime) = meta.modified() else { continue };
        // A second of slack for coarse file-system clocks.
        if mtime + std::time::Duration::from_secs(1) < since {
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        let from = match left.get(&id) {
            Some(l) => {
                let mut head = vec![0; l.head.len()];
                let same = f.read_exact_at(&mut head, 0).is_ok() && head == l.head;
                match (same, meta.len() > l.offset) {
                    (true, true) => l.offset,  // its writer went on after the rename
                    (true, false) => continue, // read to its end already
                    (false, _) => 0,           // a new file in a reused inode
                }
            }
            None => 0,
        };
        found.push((
            mtime,
            Rotated {
                file: f,
                id,
                path: e.path(),
                from,
            },
        ));
    }
    left.retain(|id, _| present.contains(id));
    found.sort_by_key(|f| f.0);
    found.into_iter().map(|(_, r)| r).collect()
}

/// The file in `dir` with identity `id`, if one is there.
fn find_by_id(dir: &Path, id: FileId) -> Option<(File, PathBuf)> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_file() && (meta.dev(), meta.ino()) == id {
            return File::open(e.path()).ok().map(|f| (f, e.path()));
        }
    }
    None
}

impl Source for TailSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: std::time::Duration) -> Result<ReadOutcome> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.file.is_none() && !self.open()? {
                // Not there yet.
            } else if self.file.is_some() {
                if self.at_end && !self.draining {
                    self.verify()?;
                }
                let f = self.file.as_mut().expect("checked");
                let n = crate::read_chunk(f, buf)
                    .map_err(io_err(format!("reading {}", self.cfg.path.display())))?;
                if n > 0 {
                    self.offset += n as u64;
                    self.at_end = false;
                    let keep = n.min(MARK);
                    if keep == MARK {
                        self.mark.clear();
                    } else {
                        let drop = (self.mark.len() + keep).saturating_sub(MARK);
                        self.mark.drain(..drop);
                    }
                    self.mark.extend_from_slice(&buf[buf.len() - keep..]);
                    return Ok(ReadOutcome::Data);
                }
                self.at_end = true;
                if self.next_file()? {
                    self.at_end = false;
                    continue;
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(ReadOutcome::Idle);
            }
            let nap = self.cfg.poll_interval.to_std().min(deadline - now);
            match &self.wake {
                Some((_, rx)) => {
                    let _ = rx.recv_timeout(nap);
                }
                None => std::thread::sleep(nap),
            }
        }
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            path: Some(self.cfg.path.display().to_string()),
            file_id: self.id,
            offset: self.offset,
            splits: Vec::new(),
        }
    }

    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        if !self.open()? {
            return Ok(());
        }
        if pos.file_id.is_none() || pos.file_id == self.id {
            return self.seek_to(pos.offset);
        }
        // Rotated while weir was stopped: finish the checkpoint's file first.
        match pos
            .file_id
            .and_then(|id| find_by_id(&self.dir(), id).map(|f| (id, f)))
        {
            Some((id, (f, path))) => {
                tracing::info!(file = %path.display(), offset = pos.offset, "the file was rotated since the checkpoint; reading the rotated file to its end first");
                let current_id = self.id;
                self.file = Some(f);
                self.id = Some(id);
                self.seek_to(pos.offset)?;
                // Then whatever else was rotated since, then the file at the path.
                let skip = [Some(id), current_id];
                let since = f_mtime(&path).unwrap_or(SystemTime::UNIX_EPOCH);
                self.backlog =
                    rotated_since(&self.dir(), &self.cfg.path, since, &skip, &mut self.left);
                self.draining = true;
                Ok(())
            }
            None => {
                tracing::warn!(path = %self.cfg.path.display(), offset = pos.offset, "the file of the checkpoint is gone (rotated and removed while weir was stopped); what it held after the checkpointed offset is lost; reading the file now at the path from its start");
                self.seek_to(0)
            }
        }
    }
}

fn f_mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

#[cfg(test)]
mod tests;
