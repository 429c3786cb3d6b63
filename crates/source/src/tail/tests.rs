use std::io::Write;
use std::time::Duration as StdDuration;

use super::*;

fn cfg(path: PathBuf, from: StartAt) -> TailConfig {
    TailConfig {
        path,
        from,
        poll_interval: Duration::from_ms(5),
    }
}

fn read_some(src: &mut TailSource) -> Vec<u8> {
    let mut buf = Vec::new();
    while src.read(&mut buf, StdDuration::from_millis(30)).unwrap() == ReadOutcome::Data {}
    buf
}

fn append(path: &std::path::Path, data: &[u8]) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(data)
        .unwrap();
}

#[test]
fn follows_appends_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut src = TailSource::new(&cfg(path.clone(), StartAt::Beginning));
    assert_eq!(
        read_some(&mut src),
        b"",
        "waits for a file that does not exist yet"
    );
    append(&path, b"a\n");
    assert_eq!(read_some(&mut src), b"a\n");
    append(&path, b"b\n");
    assert_eq!(read_some(&mut src), b"b\n");
    // Rotation: the writer appends once more to the old file after the rename.
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&dir.path().join("access.log.1"), b"c\n");
    append(&path, b"d\n");
    assert_eq!(read_some(&mut src), b"c\nd\n");
    // Truncation (copytruncate).
    std::fs::write(&path, b"").unwrap();
    assert_eq!(read_some(&mut src), b"");
    append(&path, b"e\n");
    assert_eq!(read_some(&mut src), b"e\n");
    // Resume from a position in the same file.
    let pos = src.position();
    append(&path, b"f\n");
    let mut again = TailSource::new(&cfg(path.clone(), StartAt::Beginning));
    again.seek(&pos).unwrap();
    assert_eq!(read_some(&mut again), b"f\n");
}

#[test]
fn from_end_skips_existing_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    std::fs::write(&path, b"old\n").unwrap();
    let mut src = TailSource::new(&cfg(path.clone(), StartAt::End));
    assert_eq!(read_some(&mut src), b"");
    append(&path, b"new\n");
    assert_eq!(read_some(&mut src), b"new\n");
}
