//! What a sink may touch on disk: only what weir created, never through a symbolic link.
//!
//! A sink's output path is checked before anything runs (`weir check` and `weir run` both
//! report it with the key path) and again when the sink first writes:
//!
//! - a JSON-lines or CSV file is weir's when its marker folder (`.NAME.weir/`, where the
//!   sink also stages rows under checkpoints) stands beside it; an existing non-empty file
//!   without one is refused rather than truncated;
//! - a Parquet table is weir's when it holds `_weir_table.json`; an existing folder with
//!   anything else in it is refused rather than emptied;
//! - a folder weir deletes from (staging folders, tables) must not be a symbolic link, and
//!   only weir's own files in it are removed ([`remove_own_files`]).

use std::fs;
use std::path::{Path, PathBuf};

use weir_core::{Error, Result};

use crate::io;

/// The kind of output at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// One file weir writes (JSON lines, CSV).
    File,
    /// A folder weir fills with files (a Parquet table, an archive).
    Folder,
}

/// The marker folder beside a file output `path`: `dir/.NAME.weir`.
pub(crate) fn marker_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.weir"))
}

/// Whether `path` is a device or a pipe (`/dev/null`, `/dev/stdout`): written to, never
/// truncated or owned, and open to any number of writers.
pub fn is_special(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Why weir must not write a file output at `path`, if it must not.
pub fn file_problem(path: &Path) -> Option<String> {
    let marker = marker_of(path);
    if let Some(p) = symlink_problem(&marker) {
        return Some(p);
    }
    if let Some(p) = link_problem(path) {
        return Some(p);
    }
    let meta = fs::metadata(path).ok()?;
    if meta.is_dir() {
        return Some(format!(
            "{} is a directory; expected a file path",
            path.display()
        ));
    }
    // A device or a pipe (`/dev/null`, `/dev/stdout`) is written to, never truncated.
    if meta.is_file() && meta.len() > 0 && !marker.is_dir() {
        return Some(format!(
            "{} exists and was not written by weir (no {} beside it); weir does not overwrite \
             it: move it away, or delete it if it may go",
            path.display(),
            marker.display()
        ));
    }
    None
}

/// Why weir must not write a table at `path`, if it must not.
pub fn table_problem(path: &Path, meta_file: &str) -> Option<String> {
    if let Some(p) = symlink_problem(path) {
        return Some(p);
    }
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(format!("{} exists and is not a directory", path.display()));
    }
    if path.join(meta_file).is_file() {
        return None;
    }
    let mut entries = fs::read_dir(path).ok()?;
    entries.next().map(|e| {
        let first = e.map(|e| e.file_name().to_string_lossy().into_owned());
        format!(
            "{} is a directory that is not a weir table (no {meta_file}; it holds {}); weir \
             does not write into it: choose an empty or new directory",
            path.display(),
            first.unwrap_or_else(|_| "files".into())
        )
    })
}

/// Refuses an output file or folder that is a symbolic link (weir never makes one): writing
/// through it would change whatever it points at. A device or a pipe named through a link
/// (`/dev/stdout`, whatever its standard output is) is written to as named.
pub fn link_problem(path: &Path) -> Option<String> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() || is_special(path) || path.starts_with("/dev") {
        return None;
    }
    let to = fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|_| "?".into());
    Some(format!(
        "{} is a symbolic link (to {to}); weir does not write through links it did not make: \
         remove the link, or name the file itself",
        path.display()
    ))
}

/// Opens a file weir writes without following a symbolic link put in its place (`O_NOFOLLOW`,
/// so a link made after the checks is refused too, with `ELOOP`). A device or a pipe
/// (`/dev/stdout`, itself a link) is opened as named.
pub(crate) fn open_nofollow(path: &Path, opts: &mut fs::OpenOptions) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if !is_special(path) && !path.starts_with("/dev") {
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            Error::config(
                "path",
                link_problem(path).unwrap_or_else(|| {
                    format!(
                        "{} is a symbolic link; weir does not write through it",
                        path.display()
                    )
                }),
            )
        } else {
            io(format!("opening {}", path.display()))(e)
        }
    })
}

/// Creates the folder `dir` inside an output folder `root` weir owns (a table's partition, an
/// archive's hour), refusing a symbolic link at `dir` or at any folder between it and `root`:
/// files weir writes there would land in someone else's folder.
pub(crate) fn create_dir_inside(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if let Some(p) = symlink_problem(&at) {
            return Err(Error::config("path", p));
        }
    }
    fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))
}

/// Refuses a folder weir would delete from when it is a symbolic link.
pub(crate) fn symlink_problem(dir: &Path) -> Option<String> {
    let meta = fs::symlink_metadata(dir).ok()?;
    meta.file_type().is_symlink().then(|| {
        format!(
            "{} is a symbolic link; weir deletes files in this folder and does not follow \
             links there: remove the link",
            dir.display()
        )
    })
}

/// Why nothing can be created at `path`: its nearest existing ancestor is not a directory or
/// is read-only.
pub fn unwritable(path: &Path) -> Option<String> {
    let abs = std::path::absolute(path).ok()?;
    let mut at = abs.parent();
    while let Some(dir) = at {
        if let Ok(meta) = fs::metadata(dir) {
            if !meta.is_dir() {
                return Some(format!(
                    "cannot create {}: {} is not a directory",
                    path.display(),
                    dir.display()
                ));
            }
            return can_write(dir).err().map(|e| {
                format!(
                    "cannot create {}: {} is not writable ({e})",
                    path.display(),
                    dir.display()
                )
            });
        }
        at = dir.parent();
    }
    None
}

/// Whether this process may create files in `dir` (asks the kernel: root, ACLs and read-only
/// mounts included).
fn can_write(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The same path for comparisons: absolute, with `.` and `..` resolved and symbolic links of
/// the existing part followed.
pub fn normalize(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // `..` resolved by name first (a name of the missing part cannot be a link anyway).
    let mut lexical = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            c => lexical.push(c),
        }
    }
    let abs = lexical;
    // Canonicalise the longest existing prefix, then append the rest.
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(c) = fs::canonicalize(at) {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return abs,
        }
    }
}

/// Removes the regular files under `dir` for which `own` holds (given the name), never
/// following symbolic links, then the folders that this left empty. `dir` itself stays.
pub(crate) fn remove_own_files(dir: &Path, own: &dyn Fn(&str) -> bool) -> Result<()> {
    if let Some(p) = symlink_problem(dir) {
        return Err(Error::config("path", p));
    }
    fn walk(dir: &Path, own: &dyn Fn(&str) -> bool) -> Result<bool> {
        let mut empty = true;
        for e in fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
            let e = e.map_err(io(format!("listing {}", dir.display())))?;
            let ty = e
                .file_type()
                .map_err(io(format!("reading {}", e.path().display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            if ty.is_dir() {
                if walk(&p, own)? {
                    fs::remove_dir(&p).map_err(io(format!("removing {}", p.display())))?;
                } else {
                    empty = false;
                }
            } else if ty.is_file() && own(&name) {
                fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }
    if dir.exists() {
        walk(dir, own)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_file_is_refused_and_an_own_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out.jsonl");
        assert_eq!(file_problem(&out), None);
        fs::write(&out, "").unwrap();
        assert_eq!(
            file_problem(&out),
            None,
            "an empty file holds nothing to lose"
        );
        fs::write(&out, "theirs\n").unwrap();
        assert!(file_problem(&out)
            .unwrap()
            .contains("was not written by weir"));
        fs::create_dir(marker_of(&out)).unwrap();
        assert_eq!(file_problem(&out), None);
        assert!(file_problem(d.path()).unwrap().contains("is a directory"));
    }

    #[test]
    fn a_table_path_must_be_new_empty_or_a_table() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        assert_eq!(table_problem(&t, "_meta"), None);
        fs::create_dir(&t).unwrap();
        assert_eq!(table_problem(&t, "_meta"), None);
        fs::write(t.join("important.txt"), "x").unwrap();
        let p = table_problem(&t, "_meta").unwrap();
        assert!(
            p.contains("not a weir table") && p.contains("important.txt"),
            "{p}"
        );
        fs::write(t.join("_meta"), "{}").unwrap();
        assert_eq!(table_problem(&t, "_meta"), None);
    }

    #[test]
    fn removing_own_files_keeps_the_rest_and_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("part-1.parquet"), "x").unwrap();
        let t = d.path().join("t");
        fs::create_dir_all(t.join("dt=1/hour=2")).unwrap();
        fs::write(t.join("dt=1/hour=2/part-1.parquet"), "x").unwrap();
        fs::create_dir_all(t.join("dt=2")).unwrap();
        fs::write(t.join("dt=2/notes.txt"), "keep").unwrap();
        std::os::unix::fs::symlink(&victim, t.join("link")).unwrap();
        let own = |n: &str| n.starts_with("part-");
        remove_own_files(&t, &own).unwrap();
        assert!(!t.join("dt=1").exists(), "emptied folders go");
        assert!(t.join("dt=2/notes.txt").exists());
        assert!(
            victim.join("part-1.parquet").exists(),
            "a link is not followed"
        );
        let link = d.path().join("staging");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(remove_own_files(&link, &own).is_err());
        assert!(victim.join("part-1.parquet").exists());
    }

    #[test]
    fn unwritable_paths_are_named() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("file");
        fs::write(&f, "x").unwrap();
        assert!(unwritable(&f.join("out.jsonl"))
            .unwrap()
            .contains("is not a directory"));
        assert_eq!(unwritable(&d.path().join("new/dir/out.jsonl")), None);
        assert_eq!(
            normalize(&d.path().join("a/../b/./c")),
            fs::canonicalize(d.path()).unwrap().join("b/c")
        );
    }
}
