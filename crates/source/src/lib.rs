//! weir-source owns where bytes come from: a file read once ([`file`], plain or `.gz`), a file
//! followed like `tail -F` ([`tail`]), standard input ([`stdin`]) and deterministic
//! generators ([`gen`]).
//!
//! Every source implements [`weir_core::Source`]: it hands out raw bytes and a position to
//! resume from. The runtime's source node frames the bytes into lines and feeds a parser, so a
//! source never parses. Each source has a config struct (user documentation in its doc
//! comments) separate from the runtime struct it builds.
//!
//! ```no_run
//! use weir_core::{ReadOutcome, Source};
//! use weir_source::file::{FileConfig, FileSource};
//!
//! let mut src = FileSource::open(&FileConfig { path: "access.log".into() }).unwrap();
//! let mut buf = Vec::new();
//! while src.read(&mut buf, std::time::Duration::from_millis(100)).unwrap() != ReadOutcome::Eof {}
//! ```

pub mod file;
pub mod gen;
pub mod stdin;
pub mod tail;

/// Bytes a source hands out per read, at most: large enough to amortise system calls, small
/// enough to keep latency and memory low.
pub const READ_CHUNK: usize = 1 << 20;

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Reads up to [`READ_CHUNK`] bytes from `r`, appending to `buf`; returns the count.
fn read_chunk(r: &mut impl std::io::Read, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let res = loop {
        match r.read(&mut buf[start..]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    let n = *res.as_ref().unwrap_or(&0);
    buf.truncate(start + n);
    res
}
