use std::sync::Arc;

use arrow_array::{Int64Array, TimestampMillisecondArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

const H: i64 = 3_600_000;

fn batch(rows: &[(i64, i64)]) -> RecordBatch {
    let ts = TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .with_timezone("UTC");
    let n = Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
    RecordBatch::try_from_iter([
        ("window_start", Arc::new(ts) as _),
        ("count", Arc::new(n) as _),
    ])
    .unwrap()
}

fn cfg(dir: &Path) -> ParquetConfig {
    ParquetConfig::at(dir.join("tables/counts"))
}

/// Every (partition, file) of the table and all rows, sorted, read back with the parquet crate.
fn read(table: &Path) -> (Vec<String>, Vec<(i64, i64)>) {
    let mut files = Vec::new();
    let mut rows = Vec::new();
    for (part, name) in crate::files_under(table).unwrap() {
        if name == TABLE_META {
            continue;
        }
        files.push(format!("{part}/{name}"));
        let f = File::open(table.join(&part).join(&name)).unwrap();
        for b in ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
            let n = b.column(1).as_primitive::<arrow_array::types::Int64Type>();
            for i in 0..b.num_rows() {
                rows.push((ts.value(i), n.value(i)));
            }
        }
    }
    files.sort();
    rows.sort();
    (files, rows)
}

#[test]
fn rows_land_typed_in_hour_partitions_and_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut s = ParquetSink::create(&c).unwrap();
    s.write(&batch(&[(0, 1), (H - 1, 2), (H, 3)])).unwrap();
    s.write(&batch(&[(25 * H, 4)])).unwrap();
    assert!(
        read(&c.path).0.is_empty(),
        "nothing visible before a commit"
    );
    s.finish().unwrap();
    let (files, rows) = read(&c.path);
    assert_eq!(
        files,
        [
            "dt=1970-01-01/hour=00/part-0000000000-0001.parquet",
            "dt=1970-01-01/hour=01/part-0000000000-0002.parquet",
            "dt=1970-01-02/hour=01/part-0000000000-0003.parquet",
        ]
    );
    assert_eq!(rows, [(0, 1), (H - 1, 2), (H, 3), (25 * H, 4)]);
    let meta: TableMeta =
        serde_json::from_slice(&fs::read(c.path.join(TABLE_META)).unwrap()).unwrap();
    assert_eq!(meta.name, "counts");
    assert_eq!(meta.partition_field.as_deref(), Some("window_start"));
    assert_eq!(meta.columns[1], ("count".to_string(), "Int64".to_string()));
    // The file is typed: the timestamp column is a timestamp, not a string.
    let f = File::open(c.path.join(&files[0])).unwrap();
    let schema = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .schema()
        .clone();
    assert!(matches!(
        schema.field(0).data_type(),
        DataType::Timestamp(_, _)
    ));
    assert!(
        !c.path.with_file_name(".counts.weir").exists(),
        "staging removed"
    );

    // A new run without checkpoints replaces the table.
    let mut again = ParquetSink::create(&c).unwrap();
    again.write(&batch(&[(0, 9)])).unwrap();
    again.finish().unwrap();
    assert_eq!(read(&c.path).1, [(0, 9)]);
}

#[test]
fn with_checkpoints_files_appear_at_commit_and_recovery_cuts_later_epochs() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut s = ParquetSink::create(&c).unwrap();
    s.recover(None).unwrap();
    s.write(&batch(&[(0, 1)])).unwrap();
    let s1 = s.pre_commit(1).unwrap();
    s.write(&batch(&[(H, 2)])).unwrap();
    assert!(read(&c.path).1.is_empty());
    s.commit(1).unwrap();
    assert_eq!(read(&c.path).1, [(0, 1)]);
    let s2 = s.pre_commit(2).unwrap();
    s.write(&batch(&[(2 * H, 3)])).unwrap();
    s.pre_commit(3).unwrap();
    s.commit(3).unwrap();
    assert_eq!(read(&c.path).1, [(0, 1), (H, 2), (2 * H, 3)]);

    // Crash; the checkpoint of 3 turned out damaged and recovery falls back to 2: the file of
    // epoch 3 goes, the rows of 3 will be written again by the replay.
    let mut r = ParquetSink::create(&c).unwrap();
    r.recover(Some(&s2)).unwrap();
    assert_eq!(read(&c.path).1, [(0, 1), (H, 2)]);
    // Or to 1, with epoch 2's file still staged (the crash came before its commit).
    let mut s = ParquetSink::create(&c).unwrap();
    s.recover(Some(&s1)).unwrap();
    s.write(&batch(&[(H, 2)])).unwrap();
    let s2 = s.pre_commit(2).unwrap();
    let mut r = ParquetSink::create(&c).unwrap();
    r.recover(Some(&s2)).unwrap();
    assert_eq!(
        read(&c.path).1,
        [(0, 1), (H, 2)],
        "staged epoch 2 committed on recovery"
    );
    r.recover(Some(&s2)).unwrap();
    assert_eq!(read(&c.path).1, [(0, 1), (H, 2)], "recovery is idempotent");
}

#[test]
fn a_partition_field_that_is_not_a_timestamp_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.partition_field = Some("count".into());
    let mut s = ParquetSink::create(&c).unwrap();
    let err = s.write(&batch(&[(0, 1)])).unwrap_err().to_string();
    assert!(err.contains("\"count\" is Int64, not a timestamp"), "{err}");
}

#[test]
fn compact_after_merges_old_partitions_in_the_background() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.roll_size = ByteSize::from_bytes(1); // a file per write
    c.compact_after = Some(Duration::from_ms(0));
    let mut s = ParquetSink::create(&c).unwrap();
    s.compact_every = std::time::Duration::ZERO;
    for i in 0..12 {
        s.write(&batch(&[(i % 2 * H, i)])).unwrap();
        // Let a running compaction finish so the next commit starts another.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    s.finish().unwrap();
    let (files, rows) = read(&c.path);
    let mut want: Vec<(i64, i64)> = (0..12).map(|i| (i % 2 * H, i)).collect();
    want.sort();
    assert_eq!(rows, want, "every row once");
    assert!(files.len() < 12, "small files merged: {files:?}");
}

/// Issue 36: a partition folder replaced by a symbolic link to a user's folder got the next
/// run's files written into it. weir never makes a link, so it never writes through one: the
/// run fails with the link named and the user's folder is left as it was.
#[test]
fn a_partition_folder_replaced_by_a_link_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut s = ParquetSink::create(&c).unwrap();
    s.write(&batch(&[(0, 1)])).unwrap();
    s.finish().unwrap();
    let users = d.path().join("users");
    fs::create_dir(&users).unwrap();
    fs::write(users.join("notes.txt"), "mine").unwrap();
    let part = c.path.join("dt=1970-01-01/hour=00");
    fs::remove_dir_all(&part).unwrap();
    std::os::unix::fs::symlink(&users, &part).unwrap();

    for checkpointed in [false, true] {
        let mut s = ParquetSink::create(&c).unwrap();
        if checkpointed {
            s.recover(None).unwrap();
        }
        s.write(&batch(&[(0, 2)])).unwrap();
        let e = if checkpointed {
            s.pre_commit(1).and_then(|_| s.commit(1)).unwrap_err()
        } else {
            s.finish().unwrap_err()
        };
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let mut names: Vec<_> = fs::read_dir(&users)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["notes.txt"], "checkpointed: {checkpointed}");
    }
    // Compaction does not walk into it either.
    assert!(fs::symlink_metadata(&part)
        .unwrap()
        .file_type()
        .is_symlink());
}
