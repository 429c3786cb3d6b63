use std::io::Write;

use super::*;

fn read_all(src: &mut FileSource) -> Vec<u8> {
    let mut buf = Vec::new();
    while src.read(&mut buf, std::time::Duration::ZERO).unwrap() == ReadOutcome::Data {}
    buf
}

#[test]
fn reads_plain_and_gzip_files_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.log");
    std::fs::write(&plain, b"one\ntwo\nthree\n").unwrap();
    let gz = dir.path().join("a.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(b"one\ntwo\nthree\n").unwrap();
    enc.finish().unwrap();
    for path in [plain, gz] {
        let mut src = FileSource::open(&FileConfig { path: path.clone() }).unwrap();
        assert_eq!(read_all(&mut src), b"one\ntwo\nthree\n");
        assert_eq!(src.position().offset, 14);
        let mut again = FileSource::open(&FileConfig { path }).unwrap();
        again
            .seek(&SourcePosition {
                offset: 4,
                ..src.position()
            })
            .unwrap();
        assert_eq!(read_all(&mut again), b"two\nthree\n");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = FileSource::open(&FileConfig {
        path: "/nonexistent/x.log".into(),
    })
    .err()
    .unwrap();
    assert!(
        err.to_string().starts_with("opening /nonexistent/x.log: "),
        "{err}"
    );
    assert_eq!(err.class(), weir_core::ErrorClass::External);
}
