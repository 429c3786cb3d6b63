use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;
use weir_core::config::{ByteSize, Duration};
use weir_core::Sink;
use weir_testkit::Rng;

use super::*;

const MIN: i64 = 60_000;
/// 1995-07-01T00:00:00Z.
const T0: i64 = 804_556_800_000;

fn cfg(dir: &Path) -> ArchiveConfig {
    ArchiveConfig {
        format: ArchiveFormat::Lines,
        ..ArchiveConfig::at(dir.join("archive"))
    }
}

/// Records `(time, line)`: the line is its own text.
fn batch(rows: &[(i64, String)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("line", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
        ],
    )
    .unwrap()
}

fn decode(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    let name = path.to_string_lossy();
    let mut out = String::new();
    if name.contains(".gz") {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .unwrap();
    } else if name.contains(".zst") {
        out = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
    } else {
        out = String::from_utf8(bytes).unwrap();
    }
    out
}

/// The archive's files, without its list of runs.
fn parts(root: &Path) -> Result<Vec<(String, String)>> {
    Ok(files_under(root)?
        .into_iter()
        .filter(|(folder, name)| !(folder.is_empty() && name == RUNS_FILE))
        .collect())
}

/// Finished files per folder, concatenated in name order; and the unfinished files.
fn read_archive(root: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut done: BTreeMap<String, String> = BTreeMap::new();
    let mut unfinished = Vec::new();
    for (folder, name) in files_under(root).unwrap() {
        if folder.is_empty() && name == RUNS_FILE {
            continue;
        }
        if name.ends_with(INPROGRESS) {
            unfinished.push(format!("{folder}/{name}"));
        } else {
            done.entry(folder.clone())
                .or_default()
                .push_str(&decode(&root.join(&folder).join(&name)));
        }
    }
    (done, unfinished)
}

/// What the archive must hold: every record once, per hour folder, in arrival order.
fn expected(records: &[(i64, String)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for (t, line) in records {
        let e = m.entry(partition_of(*t, Granularity::Hour)).or_default();
        e.push_str(line);
        e.push('\n');
    }
    m
}

fn records(times: &[i64]) -> Vec<(i64, String)> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, format!("record {i} at {}", format_rfc3339_ms(*t))))
        .collect()
}

#[test]
fn round_trip_into_hour_folders() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(&[
        T0,
        T0 + 5 * MIN,
        T0 + 61 * MIN,
        T0 + 2 * MIN,
        T0 + 130 * MIN,
    ]);
    let mut s = ArchiveSink::new(&cfg(dir.path()));
    s.write(&batch(&recs[..2])).unwrap();
    s.write(&batch(&recs[2..])).unwrap();
    s.finish().unwrap();
    let (done, unfinished) = read_archive(&dir.path().join("archive"));
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert_eq!(done, expected(&recs));
    assert_eq!(
        done.keys().collect::<Vec<_>>(),
        [
            "dt=1995-07-01/hour=00",
            "dt=1995-07-01/hour=01",
            "dt=1995-07-01/hour=02"
        ]
    );
}

/// A checkpointed run that starts without a checkpoint, writes `recs` and commits them.
fn checkpointed_run(c: &ArchiveConfig, recs: &[(i64, String)]) {
    let mut s = ArchiveSink::new(c);
    s.recover(None).unwrap();
    s.write(&batch(recs)).unwrap();
    s.on_watermark(i64::MAX).unwrap();
    s.pre_commit(1).unwrap();
    s.commit(1).unwrap();
    s.finish().unwrap();
}

/// Issue 10: `--reset-state` replays the input, and the archive kept the finished files of
/// the run before it, so every record was there twice. A checkpointed start without a
/// checkpoint removes the part files (only those) before it writes again.
#[test]
fn a_start_without_checkpoint_replaces_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let recs = records(&[T0, T0 + 5 * MIN, T0 + 61 * MIN, T0 + 130 * MIN]);
    let checkpointed_run = || checkpointed_run(&c, &recs);
    checkpointed_run();
    let mine = c.path.join("dt=1995-07-01/hour=00/notes.txt");
    fs::write(&mine, "the user's own file").unwrap();
    checkpointed_run();
    let (done, unfinished) = read_archive(&c.path);
    assert!(unfinished.is_empty(), "{unfinished:?}");
    let mut want = expected(&recs);
    want.get_mut("dt=1995-07-01/hour=00")
        .unwrap()
        .insert_str(0, "the user's own file");
    assert_eq!(done, want);
    assert!(mine.exists());
}

/// Issue 36: an archive pointed at a folder that holds a user's `part-*` files deleted them at
/// its first checkpointed start. Only part files of runs the archive lists as its own go: a
/// user's files stay whatever their names, and so do files of an archive from before the list.
#[test]
fn a_fresh_start_removes_only_what_weir_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let hour0 = c.path.join("dt=1995-07-01/hour=00");
    fs::create_dir_all(&hour0).unwrap();
    let users = [
        c.path.join("part-2024-report.txt"),
        c.path.join("part-0001.log.gz"),
        hour0.join("part-19950701T000000123Z-0000000001-000001.log.gz"),
        hour0.join("part-19950701T000000123Z-0000000001-000001.log.gz.bak"),
    ];
    for u in &users {
        fs::write(u, "the user's own file").unwrap();
    }
    let recs = records(&[T0, T0 + 5 * MIN, T0 + 61 * MIN]);
    let checkpointed_run = || checkpointed_run(&c, &recs);
    checkpointed_run();
    checkpointed_run();
    for u in &users {
        assert_eq!(
            fs::read_to_string(u).unwrap(),
            "the user's own file",
            "{u:?}"
        );
    }
    let runs = fs::read_to_string(c.path.join(RUNS_FILE)).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
    // Each record once: the first run's parts went, the users' files did not.
    let ours: Vec<_> = parts(&c.path)
        .unwrap()
        .into_iter()
        .filter(|(_, n)| runs.lines().any(|r| n.contains(r)))
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(ours
        .iter()
        .all(|(_, n)| n.contains(runs.lines().last().unwrap())));

    // An archive without the list (written before it existed) keeps all its files.
    fs::remove_file(c.path.join(RUNS_FILE)).unwrap();
    checkpointed_run();
    assert_eq!(parts(&c.path).unwrap().len(), users.len() + 4);
}

#[test]
fn part_names_are_matched_whole() {
    let runs: std::collections::HashSet<String> =
        ["19950701T000000123Z".to_string()].into_iter().collect();
    let own = |n: &str| is_own_part(n, &runs);
    assert!(own("part-19950701T000000123Z-0000000003-000001.jsonl.gz"));
    assert!(own(
        "part-19950701T000000123Z-0000000003-000001.log.zst.inprogress"
    ));
    assert!(own("part-19950701T000000123Z-0000000003-000001.log"));
    assert!(
        !own("part-19950701T000000124Z-0000000003-000001.jsonl.gz"),
        "another run"
    );
    assert!(!own(
        "part-19950701T000000123Z-0000000003-000001.jsonl.gz.bak"
    ));
    assert!(!own("part-19950701T000000123Z-3-1.jsonl.gz"));
    assert!(!own("part-19950701T000000123Z-0000000003-000001"));
    assert!(!own("part-2024-report.txt"));
    assert!(!own("xpart-19950701T000000123Z-0000000003-000001.jsonl.gz"));
    assert!(is_run_id(&run_id()));
    assert!(!is_run_id("19950701T000000123"));
}

#[test]
fn jsonl_zstd_and_window_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.format = ArchiveFormat::Jsonl;
    c.compression = Some(ArchiveCodec::Zstd);
    c.window = Some(Duration::from_ms(5 * MIN));
    let recs = records(&[T0 + 1000, T0 + 5 * MIN, T0 + 9 * MIN + 59_999]);
    let mut s = ArchiveSink::new(&c);
    s.write(&batch(&recs)).unwrap();
    s.finish().unwrap();
    let (done, _) = read_archive(&dir.path().join("archive"));
    let folders: Vec<&String> = done.keys().collect();
    assert_eq!(
        folders,
        ["window_end=19950701T000500Z", "window_end=19950701T001000Z"]
    );
    let first = &done["window_end=19950701T000500Z"];
    assert_eq!(
        first,
        "{\"timestamp\":\"1995-07-01T00:00:01Z\",\"line\":\"record 0 at 1995-07-01T00:00:01Z\"}\n"
    );
    assert_eq!(done["window_end=19950701T001000Z"].lines().count(), 2);
    let names = parts(&dir.path().join("archive")).unwrap();
    assert!(
        names.iter().all(|(_, n)| n.ends_with(".jsonl.zst")),
        "{names:?}"
    );
}

#[test]
fn compact_time_names() {
    assert_eq!(compact_time(T0 + 5 * MIN), "19950701T000500Z");
    assert_eq!(compact_time(T0 + 1500), "19950701T000001500Z");
}

#[test]
fn inprogress_file_is_readable_between_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.flush_interval = Duration::from_ms(1);
    let recs = records(&[T0, T0 + 1, T0 + 2]);
    let mut s = ArchiveSink::new(&c);
    s.write(&batch(&recs[..1])).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    s.write(&batch(&recs[1..])).unwrap();
    let files = parts(&dir.path().join("archive")).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].1.ends_with(".log.gz.inprogress"), "{files:?}");
    // Complete members only: the whole file decodes, with every record written so far.
    let text = decode(
        &dir.path()
            .join("archive")
            .join(&files[0].0)
            .join(&files[0].1),
    );
    assert_eq!(text.lines().count(), 3);
    s.finish().unwrap();
    let (done, unfinished) = read_archive(&dir.path().join("archive"));
    assert!(unfinished.is_empty());
    assert_eq!(done, expected(&recs));
}

#[test]
fn rolls_by_size_and_on_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.compression = Some(ArchiveCodec::None);
    c.roll_size = ByteSize::from_bytes(100);
    let recs = records(&(0..20).map(|i| T0 + i * 1000).collect::<Vec<_>>());
    let mut s = ArchiveSink::new(&c);
    for r in recs.chunks(2) {
        s.write(&batch(r)).unwrap();
    }
    let finished = |d: &Path| {
        parts(&d.join("archive"))
            .unwrap()
            .iter()
            .filter(|(_, n)| !n.ends_with(INPROGRESS))
            .count()
    };
    assert!(finished(dir.path()) >= 5, "100-byte files roll often");
    // The watermark passing the hour's end finishes its last file without waiting.
    let more = records(&[T0 + 59 * MIN, T0 + 70 * MIN]);
    s.write(&batch(&more)).unwrap();
    assert_eq!(s.open.len(), 2);
    s.on_watermark(T0 + 60 * MIN).unwrap();
    assert_eq!(s.open.len(), 1, "only the next hour's file stays open");
    s.finish().unwrap();
    let (done, _) = read_archive(&dir.path().join("archive"));
    let mut hour0 = expected(&recs)["dt=1995-07-01/hour=00"].clone();
    hour0.push_str(&more[0].1);
    hour0.push('\n');
    assert_eq!(done["dt=1995-07-01/hour=00"], hour0);
    assert_eq!(done["dt=1995-07-01/hour=01"].lines().count(), 1);
}

#[test]
fn a_new_run_without_checkpoints_adds_files() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(&[T0, T0 + 1]);
    for r in &recs {
        let mut s = ArchiveSink::new(&cfg(dir.path()));
        s.write(&batch(std::slice::from_ref(r))).unwrap();
        s.finish().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let (done, _) = read_archive(&dir.path().join("archive"));
    assert_eq!(done, expected(&recs));
}

#[test]
fn lines_need_a_text_field() {
    let c = cfg(Path::new("/nonexistent"));
    let schema = Schema::new(vec![Field::new("status", DataType::UInt16, false)]);
    let errs = c.check_schema("sink.raw", &schema);
    assert_eq!(errs.len(), 1);
    let msg = errs[0].to_string();
    assert!(
        msg.contains("sink.raw.format") && msg.ends_with("raw_field = \"line\""),
        "{msg}"
    );
    let mut bad = cfg(Path::new("/x"));
    bad.partition = Some(Granularity::Day);
    bad.window = Some(Duration::from_ms(MIN));
    bad.level = Some(12);
    let errs: Vec<String> = bad
        .validate("sink.a")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("sink.a.window"), "{errs:?}");
    assert!(
        errs[1].contains("sink.a.level") && errs[1].contains("0..=9"),
        "{errs:?}"
    );
}

/// Drives the sink as the runtime does, with crashes: records in batches, watermarks,
/// barriers (pre_commit, then commit, sometimes lost to a crash), and restarts from the
/// newest checkpoint or, as after a damaged one, the one before.
fn simulate(recs: &[(i64, String)], seed: u64, c: &ArchiveConfig) {
    let mut rng = Rng::new(seed);
    let root = c.path.clone();
    // (epoch, records consumed, state)
    let mut checkpoints: Vec<(u64, usize, Vec<u8>)> = Vec::new();
    let mut s = ArchiveSink::new(c);
    s.recover(None).unwrap();
    let (mut pos, mut epoch, mut crashes) = (0usize, 0u64, 0);
    while pos < recs.len() {
        match rng.below(10) {
            0..=4 => {
                let n = (1 + rng.below(8) as usize).min(recs.len() - pos);
                s.write(&batch(&recs[pos..pos + n])).unwrap();
                pos += n;
            }
            5 => {
                let seen = recs[..pos].iter().map(|r| r.0).max().unwrap_or(T0);
                s.on_watermark(seen - 20 * MIN).unwrap();
            }
            6 | 7 => {
                epoch += 1;
                let st = s.pre_commit(epoch).unwrap();
                checkpoints.push((epoch, pos, st));
                if rng.below(3) > 0 {
                    s.commit(epoch).unwrap();
                }
            }
            _ if crashes < 6 => {
                crashes += 1;
                drop(s);
                // A fall-back past a damaged newest checkpoint, now and then.
                if checkpoints.len() > 1 && rng.below(3) == 0 {
                    checkpoints.pop();
                }
                s = ArchiveSink::new(c);
                match checkpoints.last() {
                    Some((e, p, st)) => {
                        s.recover(Some(st)).unwrap();
                        (epoch, pos) = (*e, *p);
                    }
                    None => {
                        s.recover(None).unwrap();
                        (epoch, pos) = (0, 0);
                    }
                }
            }
            _ => {}
        }
    }
    s.on_watermark(i64::MAX).unwrap();
    epoch += 1;
    s.pre_commit(epoch).unwrap();
    s.commit(epoch).unwrap();
    s.finish().unwrap();
    let (done, unfinished) = read_archive(&root);
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert_eq!(done, expected(recs), "seed {seed}");
}

/// Gzip members in `bytes`.
fn members(bytes: &[u8]) -> usize {
    let (mut rest, mut n) = (bytes, 0);
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        rest = d.into_inner();
        n += 1;
    }
    n
}

/// Records of about 2 KiB, so a few thousand fill several compression chunks.
fn long_records(n: i64) -> Vec<(i64, String)> {
    records(&(0..n).map(|i| T0 + i * 100).collect::<Vec<_>>())
        .into_iter()
        .map(|(t, l)| (t, format!("{l} {}", "x".repeat(2000 + (t % 7) as usize))))
        .collect()
}

#[test]
fn big_input_is_compressed_in_parallel_members_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let recs = long_records(4000);
    let mut s = ArchiveSink::new(&c);
    for b in recs.chunks(100) {
        s.write(&batch(b)).unwrap();
    }
    s.finish().unwrap();
    let (done, unfinished) = read_archive(&c.path);
    assert!(unfinished.is_empty());
    assert_eq!(done, expected(&recs));
    let (folder, name) = &parts(&c.path).unwrap()[0];
    let n = members(&fs::read(c.path.join(folder).join(name)).unwrap());
    assert!(n >= 7, "8 MiB of input in 1 MiB chunks: {n} members");
}

#[test]
fn crash_and_restart_with_members_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    simulate(&long_records(3000), 11, &c);
}

#[test]
fn crash_and_restart_keeps_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.flush_interval = Duration::from_ms(0);
    let times: Vec<i64> = (0..400).map(|i| T0 + i * 45_000).collect();
    simulate(&records(&times), 7, &c);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The oracle: after any crashes and fall-backs, the finished files of each folder,
    /// read in name order, hold that folder's records once each, in arrival order.
    #[test]
    fn exactly_once_against_the_input(
        steps in proptest::collection::vec(0i64..(15 * MIN), 1..150),
        jitter in proptest::collection::vec(-(10 * MIN)..(10 * MIN), 150),
        seed in any::<u64>(),
        small_files in any::<bool>(),
        codec in 0..3u8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.flush_interval = Duration::from_ms(0);
        c.compression = Some([ArchiveCodec::Gzip, ArchiveCodec::Zstd, ArchiveCodec::None][codec as usize]);
        if small_files {
            c.roll_size = ByteSize::from_bytes(200);
        }
        let mut t = T0;
        let times: Vec<i64> = steps
            .iter()
            .zip(&jitter)
            .map(|(s, j)| {
                t += s;
                t + j
            })
            .collect();
        simulate(&records(&times), seed, &c);
    }
}

#[test]
fn parquet_archives_are_tables_partitioned_by_the_time_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.format = ArchiveFormat::Parquet;
    c.time_field = Some("timestamp".into());
    assert!(c.validate("sink.a").is_empty());
    let recs = records(&[T0, T0 + 61 * MIN]);
    let mut s = create(&c).unwrap();
    s.write(&batch(&recs)).unwrap();
    s.finish().unwrap();
    let files: Vec<String> = files_under(&c.path)
        .unwrap()
        .into_iter()
        .map(|(f, n)| format!("{f}/{n}"))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(files[0], "/_weir_table.json");
    assert!(files[1].starts_with("dt=1995-07-01/hour=00/part-") && files[1].ends_with(".parquet"));
    assert!(
        files[2].starts_with("dt=1995-07-01/hour=01/part-"),
        "{files:?}"
    );
}
