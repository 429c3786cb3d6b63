//! The output file of the file sinks (JSON lines, CSV): written directly, or, when the pipeline
//! takes checkpoints, through staging files committed per epoch, so that the file holds every
//! row exactly once whenever weir is killed and restarted.
//!
//! ```text
//! out/counts.jsonl                 committed rows only: what readers see
//! out/.counts.jsonl.weir/pending   rows since the last barrier
//! out/.counts.jsonl.weir/epoch-42  rows of epoch 42, fsynced, waiting for its checkpoint
//! ```
//! At a barrier the pending file is fsynced and renamed to `epoch-N`; the sink's checkpoint
//! state records N, the file's length before it (`base`) and its size. When checkpoint N is
//! durable, `epoch-N` is appended to the output (which is first cut to `base`, so repeating a
//! commit is harmless), the output fsynced and `epoch-N` removed. On restart from checkpoint N:
//! if `epoch-N` is still there its commit is redone; otherwise the output is cut to
//! `base + size`, dropping rows of later epochs whose checkpoints never completed; every other
//! staging file is removed.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_core::{Error, Result};

use crate::io;

const STATE_VERSION: u32 = 1;

/// The [`weir_core::Sink`] methods of a sink whose output is an [`OutFile`] in field `$f`.
macro_rules! delegate_checkpoints {
    ($f:ident) => {
        fn finish(&mut self) -> weir_core::Result<()> {
            self.$f.finish()
        }

        fn exactly_once(&self) -> bool {
            true
        }

        fn recover(&mut self, state: Option<&[u8]>) -> weir_core::Result<()> {
            self.$f.recover(state)
        }

        fn pre_commit(&mut self, epoch: u64) -> weir_core::Result<Vec<u8>> {
            self.$f.pre_commit(epoch)
        }

        fn commit(&mut self, epoch: u64) -> weir_core::Result<()> {
            self.$f.commit(epoch)
        }
    };
}
pub(crate) use delegate_checkpoints;

/// What a file sink's checkpoint holds: the epoch staged at the barrier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Staged {
    epoch: u64,
    /// Length of the output before this epoch's rows.
    base: u64,
    /// Bytes of this epoch's rows.
    len: u64,
}

enum Mode {
    /// Nothing written yet and no checkpoints announced.
    Unopened,
    /// No checkpoints: straight to the output.
    Direct(BufWriter<File>),
    /// Checkpoints: through staging files.
    Staged(Box<Stager>),
}

struct Stager {
    dir: PathBuf,
    pending: Option<BufWriter<File>>,
    pending_len: u64,
    /// Length of the output once every staged epoch is committed.
    staged_end: u64,
    queue: VecDeque<Staged>,
}

/// One output file.
pub(crate) struct OutFile {
    path: PathBuf,
    mode: Mode,
    /// Bytes written through this sink, committed or not, plus what the file had at recovery.
    len: u64,
}

fn make_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(format!("creating directory {}", dir.display())))?;
    }
    Ok(())
}

impl OutFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        OutFile {
            path,
            mode: Mode::Unopened,
            len: 0,
        }
    }

    /// Bytes in the output so far, counting staged ones (a CSV header goes first).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The staging folder, which also marks the output as weir's (see [`crate::owned`]).
    fn staging_dir(&self) -> PathBuf {
        crate::owned::marker_of(&self.path)
    }

    /// Refuses an output weir did not create; creates the marker folder that says it did
    /// (staging needs it in any case; a device or a pipe such as `/dev/null` gets none).
    fn claim(&self, staging: bool) -> Result<PathBuf> {
        if let Some(p) = crate::owned::file_problem(&self.path) {
            return Err(Error::config("path", p));
        }
        make_parent(&self.path)?;
        let dir = self.staging_dir();
        if staging || !crate::owned::is_special(&self.path) {
            fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        Ok(dir)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let Mode::Unopened = self.mode {
            self.claim(false)?;
            let f = crate::owned::open_nofollow(
                &self.path,
                OpenOptions::new().write(true).create(true).truncate(true),
            )?;
            self.mode = Mode::Direct(BufWriter::with_capacity(1 << 16, f));
        }
        let what = || format!("writing {}", self.path.display());
        match &mut self.mode {
            Mode::Direct(w) => w.write_all(bytes).map_err(io(what()))?,
            Mode::Staged(s) => {
                if s.pending.is_none() {
                    let p = s.dir.join("pending");
                    let f = File::create(&p).map_err(io(format!("creating {}", p.display())))?;
                    s.pending = Some(BufWriter::with_capacity(1 << 16, f));
                }
                let w = s.pending.as_mut().expect("opened above");
                w.write_all(bytes).map_err(io(what()))?;
                s.pending_len += bytes.len() as u64;
            }
            Mode::Unopened => unreachable!("opened above"),
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Makes written bytes visible (direct) or hands them to the OS (staged).
    pub(crate) fn flush(&mut self) -> Result<()> {
        let w = match &mut self.mode {
            Mode::Direct(w) => w,
            Mode::Staged(s) => match &mut s.pending {
                Some(w) => w,
                None => return Ok(()),
            },
            Mode::Unopened => return Ok(()),
        };
        w.flush()
            .map_err(io(format!("flushing {}", self.path.display())))
    }

    /// The input ended: the output exists even if no row was written.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Mode::Unopened = self.mode {
            self.write(b"")?;
        }
        self.flush()
    }

    /// Switches to staged writing and repairs the output after a crash (see the module docs).
    pub(crate) fn recover(&mut self, state: Option<&[u8]>) -> Result<()> {
        let dir = self.claim(true)?;
        let end = match state {
            None => 0,
            Some(bytes) => {
                let st: Staged = weir_core::state::decode("file sink", STATE_VERSION, bytes)?;
                let staged = dir.join(format!("epoch-{}", st.epoch));
                if staged.exists() {
                    append_at(&self.path, st.base, &staged)?;
                    fs::remove_file(&staged)
                        .map_err(io(format!("removing {}", staged.display())))?;
                }
                st.base + st.len
            }
        };
        let f = crate::owned::open_nofollow(
            &self.path,
            OpenOptions::new().write(true).create(true).truncate(false),
        )?;
        let have = f
            .metadata()
            .map_err(io(format!("reading metadata of {}", self.path.display())))?
            .len();
        if have < end {
            return Err(Error::State(format!(
                "{} has {have} bytes but its checkpoint committed {end}: was it changed or \
                 replaced? Run with --reset-state to write it again from the start",
                self.path.display()
            )));
        }
        if have > end {
            tracing::info!(path = %self.path.display(), kept = end, dropped = have - end, "removing rows written after the checkpoint");
        }
        f.set_len(end)
            .and_then(|_| f.sync_all())
            .map_err(io(format!("truncating {}", self.path.display())))?;
        crate::owned::remove_own_files(&dir, &|_| true)?;
        self.len = end;
        self.mode = Mode::Staged(Box::new(Stager {
            dir,
            pending: None,
            pending_len: 0,
            staged_end: end,
            queue: VecDeque::new(),
        }));
        Ok(())
    }

    /// Stages everything since the last barrier under `epoch`; returns the checkpoint state.
    pub(crate) fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>> {
        let Mode::Staged(s) = &mut self.mode else {
            return Err(Error::Internal(format!(
                "{}: pre_commit without recover",
                self.path.display()
            )));
        };
        let st = Staged {
            epoch,
            base: s.staged_end,
            len: s.pending_len,
        };
        if let Some(w) = s.pending.take() {
            let p = s.dir.join("pending");
            let f = w
                .into_inner()
                .map_err(|e| Error::io(format!("flushing {}", p.display()), e.into_error()))?;
            f.sync_all()
                .map_err(io(format!("syncing {}", p.display())))?;
            let to = s.dir.join(format!("epoch-{epoch}"));
            fs::rename(&p, &to).map_err(io(format!("renaming {}", p.display())))?;
            s.queue.push_back(st);
        }
        s.staged_end += s.pending_len;
        s.pending_len = 0;
        weir_core::state::encode("file sink", STATE_VERSION, &st)
    }

    /// Appends every staged epoch up to `epoch` to the output.
    pub(crate) fn commit(&mut self, epoch: u64) -> Result<()> {
        let Mode::Staged(s) = &mut self.mode else {
            return Ok(());
        };
        while s.queue.front().is_some_and(|st| st.epoch <= epoch) {
            let st = s.queue.pop_front().expect("checked");
            let staged = s.dir.join(format!("epoch-{}", st.epoch));
            append_at(&self.path, st.base, &staged)?;
            fs::remove_file(&staged).map_err(io(format!("removing {}", staged.display())))?;
        }
        Ok(())
    }
}

/// Cuts `path` to `base` bytes and appends `staged` to it, durably. Repeating it is harmless.
fn append_at(path: &Path, base: u64, staged: &Path) -> Result<()> {
    let mut out = crate::owned::open_nofollow(path, OpenOptions::new().write(true))?;
    let mut src = File::open(staged).map_err(io(format!("opening {}", staged.display())))?;
    out.set_len(base)
        .and_then(|_| out.seek(SeekFrom::Start(base)))
        .and_then(|_| std::io::copy(&mut src, &mut out))
        .and_then(|_| out.sync_all())
        .map_err(io(format!("committing to {}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn staged_rows_appear_only_when_their_epoch_commits() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/out.txt");
        let mut f = OutFile::new(path.clone());
        f.recover(None).unwrap();
        f.write(b"a\n").unwrap();
        let s1 = f.pre_commit(1).unwrap();
        f.write(b"b\n").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&path), "", "nothing committed yet");
        f.commit(1).unwrap();
        assert_eq!(read(&path), "a\n");
        let s2 = f.pre_commit(2).unwrap();
        let _s3 = f.pre_commit(3).unwrap(); // an empty epoch
        f.write(b"c\n").unwrap();
        f.pre_commit(4).unwrap();
        f.commit(2).unwrap();
        f.commit(2).unwrap();
        assert_eq!(read(&path), "a\nb\n", "commits are idempotent");
        assert_eq!(f.len(), 6);

        // Crash after epoch 4 was staged but only 2 committed; restart from checkpoint 2 or 1.
        let mut again = OutFile::new(path.clone());
        again.recover(Some(&s2)).unwrap();
        assert_eq!(read(&path), "a\nb\n");
        let mut older = OutFile::new(path.clone());
        older.recover(Some(&s1)).unwrap();
        assert_eq!(read(&path), "a\n", "rows after checkpoint 1 are dropped");
        assert_eq!(
            fs::read_dir(d.path().join("sub/.out.txt.weir"))
                .unwrap()
                .count(),
            0
        );
    }

    /// Issue 36: after a first run, the output was replaced by a symbolic link to a user's
    /// file, and the next run overwrote that file with its rows. A link at the output is
    /// refused, with or without checkpoints, and what it points at is left as it was; a link
    /// made after the checks is refused when the file is opened (`O_NOFOLLOW`).
    #[test]
    fn a_link_put_in_place_of_the_output_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out/counts.jsonl");
        let users = d.path().join("users.txt");
        fs::write(&users, "the user's own file\n").unwrap();
        let mut f = OutFile::new(path.clone());
        f.write(b"a\n").unwrap();
        f.finish().unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&users, &path).unwrap();

        let e = OutFile::new(path.clone()).write(b"b\n").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = OutFile::new(path.clone()).recover(None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = crate::owned::open_nofollow(&path, OpenOptions::new().write(true)).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(read(&users), "the user's own file\n");
        // A device named through a link is written to as named.
        let null = d.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        assert_eq!(crate::owned::link_problem(&null), None);
        assert_eq!(crate::owned::file_problem(&null), None);
        assert_eq!(crate::owned::link_problem(Path::new("/dev/stdout")), None);
    }

    #[test]
    fn a_commit_interrupted_by_a_crash_is_redone_on_recovery() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.txt");
        let mut f = OutFile::new(path.clone());
        f.recover(None).unwrap();
        f.write(b"one\n").unwrap();
        f.pre_commit(1).unwrap();
        f.commit(1).unwrap();
        f.write(b"two\n").unwrap();
        let s2 = f.pre_commit(2).unwrap();
        // The checkpoint of 2 is durable; the crash came halfway through its commit.
        fs::write(&path, "one\ntw").unwrap();
        let mut again = OutFile::new(path.clone());
        again.recover(Some(&s2)).unwrap();
        assert_eq!(read(&path), "one\ntwo\n");
        again.write(b"three\n").unwrap();
        again.pre_commit(3).unwrap();
        again.commit(3).unwrap();
        assert_eq!(read(&path), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_shortened_output_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.txt");
        let mut f = OutFile::new(path.clone());
        f.recover(None).unwrap();
        f.write(b"rows\n").unwrap();
        let s = f.pre_commit(1).unwrap();
        f.commit(1).unwrap();
        fs::write(&path, "").unwrap();
        let err = OutFile::new(path).recover(Some(&s)).unwrap_err();
        assert!(err
            .to_string()
            .contains("has 0 bytes but its checkpoint committed 5"));
    }

    #[test]
    fn without_checkpoints_the_file_is_replaced_and_written_directly() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.txt");
        let mut f = OutFile::new(path.clone());
        f.write(b"old\n").unwrap();
        f.flush().unwrap();
        drop(f);
        // weir's own file (its marker folder beside it) is replaced by the next run.
        let mut f = OutFile::new(path.clone());
        f.write(b"new\n").unwrap();
        f.flush().unwrap();
        assert_eq!(read(&path), "new\n");
    }

    /// Issue 10: a file weir did not write is never truncated.
    #[test]
    fn a_file_weir_did_not_write_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.txt");
        fs::write(&path, "theirs\n").unwrap();
        let mut f = OutFile::new(path.clone());
        let e = f.write(b"new\n").unwrap_err().to_string();
        assert!(e.contains("was not written by weir"), "{e}");
        assert!(f.recover(None).is_err());
        assert_eq!(read(&path), "theirs\n");
    }
}
