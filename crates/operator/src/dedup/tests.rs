use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;
use weir_core::Message;

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("uuid", DataType::Utf8, true),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// Rows of (id, key, time); a key or time of `None` is null.
fn batch(rows: &[(i64, Option<String>, Option<i64>)]) -> RecordBatch {
    let ids = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let keys = StringArray::from(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>());
    let times = TimestampMillisecondArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .with_timezone("UTC");
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(ids) as ArrayRef, Arc::new(keys), Arc::new(times)],
    )
    .unwrap()
}

fn dedup(within: i64, lateness: i64, max_keys: usize) -> Dedup {
    let cfg: DedupConfig = toml::from_str(&format!(
        "key = [\"uuid\"]\ntime_field = \"t\"\nwithin = \"{within}ms\"\nallowed_lateness = \"{lateness}ms\"\nmax_keys = {max_keys}"
    ))
    .unwrap();
    Dedup::new(&cfg, schema(), "stage.unique").unwrap()
}

/// The ids that left on each port: (passed, copies, late, errors with their reasons).
#[derive(Debug, Clone, Default, PartialEq)]
struct Out {
    passed: Vec<i64>,
    copies: Vec<i64>,
    late: Vec<i64>,
    errors: Vec<String>,
}

impl Out {
    fn take(&mut self, e: &mut Emitter) {
        for (port, m) in e.drain() {
            let Message::Data(b) = m else { continue };
            if port == Port::Errors {
                let reasons = b.column_by_name("reason").unwrap().as_string::<i32>();
                self.errors
                    .extend(reasons.iter().flatten().map(String::from));
                continue;
            }
            let ids = b
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied();
            match port {
                Port::Main => self.passed.extend(ids),
                Port::Duplicates => self.copies.extend(ids),
                Port::Late => self.late.extend(ids),
                p => panic!("unexpected port {p:?}"),
            }
        }
    }

    fn sorted(mut self) -> Self {
        self.passed.sort();
        self.copies.sort();
        self.late.sort();
        self
    }
}

fn feed(d: &mut Dedup, rows: &[(i64, Option<String>, Option<i64>)], out: &mut Out) {
    let mut e = Emitter::default();
    d.on_batch(&batch(rows), &mut e).unwrap();
    out.take(&mut e);
}

fn watermark(d: &mut Dedup, wm: Millis, out: &mut Out) {
    let mut e = Emitter::default();
    d.on_watermark(wm, &mut e).unwrap();
    out.take(&mut e);
}

fn rec(id: i64, key: &str, t: i64) -> (i64, Option<String>, Option<i64>) {
    (id, Some(key.into()), Some(t))
}

const MIN: i64 = 60_000;

#[test]
fn the_first_record_passes_and_copies_within_the_horizon_do_not() {
    // The module docs' picture: within 10 min, records of A at 0, 4, 12 and 16 minutes.
    let mut d = dedup(10 * MIN, 0, 100);
    let mut out = Out::default();
    feed(
        &mut d,
        &[rec(1, "A", 0), rec(2, "A", 4 * MIN), rec(3, "B", 4 * MIN)],
        &mut out,
    );
    feed(
        &mut d,
        &[
            rec(4, "A", 12 * MIN),
            rec(5, "A", 16 * MIN),
            rec(6, "A", 10 * MIN),
        ],
        &mut out,
    );
    assert_eq!(out.passed, [1, 3, 4]);
    // 4 is within 10 min of 0, 16 of 12, 10 of 0 (and of 12).
    assert_eq!(out.copies, [2, 5, 6]);
    // Exactly `within` apart is a copy; one millisecond more is not.
    feed(
        &mut d,
        &[rec(7, "B", 14 * MIN), rec(8, "B", 14 * MIN + 1)],
        &mut out,
    );
    assert_eq!(out.copies, [2, 5, 6, 7]);
    assert_eq!(out.passed, [1, 3, 4, 8]);
}

#[test]
fn state_is_forgotten_behind_the_watermark_and_older_records_are_late() {
    let mut d = dedup(10 * MIN, MIN, 100);
    let mut out = Out::default();
    feed(
        &mut d,
        &[rec(1, "A", 0), rec(2, "B", 5 * MIN), rec(3, "C", 20 * MIN)],
        &mut out,
    );
    assert_eq!(d.remembered(), 3);
    // close = 12 min − 1 min lateness = 11 min: A (0 + 10 < 11) is out of every future
    // record's reach, B (5 + 10 ≥ 11) is not.
    watermark(&mut d, 12 * MIN, &mut out);
    assert_eq!(d.remembered(), 2);
    feed(
        &mut d,
        &[
            rec(4, "A", 10 * MIN),
            rec(5, "A", 11 * MIN),
            rec(6, "B", 11 * MIN),
        ],
        &mut out,
    );
    assert_eq!(out.late, [4], "before close: cannot be checked");
    assert_eq!(
        out.passed,
        [1, 2, 3, 5],
        "A at 11 is more than 10 min after A at 0"
    );
    assert_eq!(out.copies, [6]);
    watermark(&mut d, 60 * MIN, &mut out);
    assert_eq!(d.remembered(), 0, "nothing left within reach");
}

#[test]
fn records_without_a_key_or_a_time_are_dead_letters() {
    let mut d = dedup(MIN, 0, 100);
    let mut out = Out::default();
    feed(
        &mut d,
        &[
            (1, None, Some(0)),
            (2, Some("A".into()), None),
            rec(3, "A", 0),
        ],
        &mut out,
    );
    assert_eq!(out.passed, [3]);
    assert_eq!(
        out.errors,
        [
            "key uuid: missing",
            "no event time: cannot tell copies apart"
        ]
    );
}

#[test]
fn a_full_state_forgets_its_oldest_records_first() {
    let mut d = dedup(10 * MIN, 0, 3);
    let mut out = Out::default();
    feed(
        &mut d,
        &[
            rec(1, "A", 0),
            rec(2, "B", 1),
            rec(3, "C", 2),
            rec(4, "D", 3),
        ],
        &mut out,
    );
    assert_eq!((d.remembered(), d.evicted()), (3, 1));
    // A was forgotten early, so its copy passes; B's copy is still caught.
    feed(&mut d, &[rec(5, "A", 4), rec(6, "C", 5)], &mut out);
    assert_eq!(out.passed, [1, 2, 3, 4, 5]);
    assert_eq!(out.copies, [6]);
    assert_eq!(d.remembered(), 3);
}

#[test]
fn the_config_names_its_mistakes() {
    let cfg: DedupConfig =
        toml::from_str("key = []\ntime_field = \"id\"\nwithin = \"1m\"\nmax_keys = 0").unwrap();
    let e: Vec<String> = Dedup::new(&cfg, schema(), "stage.u")
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("stage.u.key: expected the fields"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("stage.u.max_keys: expected at least 1"),
        "{e:?}"
    );
    assert!(
        e[2].contains("stage.u.time_field: field \"id\" is Int64, expected a timestamp"),
        "{e:?}"
    );
}

/// One step of a random stream.
#[derive(Debug, Clone)]
enum Step {
    /// Records (key, time) in one batch.
    Batch(Vec<(u8, i64)>),
    Watermark(i64),
}

/// What every record should do, by brute force: a record at or after close is a copy if a
/// record of its key within `within` of it passed before; nothing is ever forgotten.
fn oracle(steps: &[Step], within: i64, lateness: i64) -> Out {
    let mut out = Out::default();
    let mut passed: Vec<(u8, i64)> = Vec::new();
    let mut close = MIN_TIME;
    let mut id = 0;
    for s in steps {
        match s {
            Step::Watermark(w) => close = close.max(w - lateness),
            Step::Batch(rows) => {
                for &(k, t) in rows {
                    id += 1;
                    if t < close {
                        out.late.push(id);
                    } else if passed
                        .iter()
                        .any(|&(pk, pt)| pk == k && (t - pt).abs() <= within)
                    {
                        out.copies.push(id);
                    } else {
                        passed.push((k, t));
                        out.passed.push(id);
                    }
                }
            }
        }
    }
    out.sorted()
}

/// Runs the stream on `before` instances, restarts from their snapshots after step
/// `restart_at` on `after` instances, and collects every instance's output.
fn run(
    steps: &[Step],
    within: i64,
    lateness: i64,
    restart_at: usize,
    before: usize,
    after: usize,
) -> Out {
    let make = || dedup(within, lateness, usize::MAX);
    let mut ops: Vec<Dedup> = (0..before).map(|_| make()).collect();
    let mut out = Out::default();
    let mut id = 0;
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Watermark(w) => {
                for d in &mut ops {
                    watermark(d, *w, &mut out);
                }
            }
            Step::Batch(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|&(k, t)| {
                        id += 1;
                        rec(id, &format!("key-{k}"), t)
                    })
                    .collect();
                let b = batch(&rows);
                let p = ops[0].partitioner().unwrap();
                for (k, part) in weir_core::operator::split(&b, p.as_ref(), ops.len()).unwrap() {
                    let mut e = Emitter::default();
                    ops[k].on_batch(&part, &mut e).unwrap();
                    out.take(&mut e);
                }
            }
        }
        if i == restart_at {
            let snaps: Vec<Vec<u8>> = ops.iter().map(|d| d.snapshot().unwrap()).collect();
            ops = (0..after)
                .map(|k| {
                    let mut d = make();
                    if after == 1 && before == 1 {
                        d.restore(&snaps[0]).unwrap();
                    } else {
                        d.restore_keyed(&snaps, &|h| weir_core::keys::owner(h, after) == k)
                            .unwrap();
                    }
                    d
                })
                .collect();
        }
    }
    out.sorted()
}

fn stream() -> impl Strategy<Value = (Vec<Step>, i64, i64, usize)> {
    (
        proptest::collection::vec(
            prop_oneof![
                // Mostly a few keys, so copies are common; sometimes up to 64, so the table
                // of keys grows (from room for 3) and is found in while it moves.
                4 => proptest::collection::vec((prop_oneof![3 => 0u8..6, 1 => 0u8..64], 0i64..60), 0..12).prop_map(Step::Batch),
                1 => (0i64..70).prop_map(Step::Watermark),
            ],
            1..40,
        ),
        0i64..15,
        0i64..5,
        0usize..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn dedup_equals_the_oracle_across_restarts_and_instance_counts(
        (steps, within, lateness, restart_at) in stream(),
        before in 1usize..3,
        after in 1usize..3,
    ) {
        let want = oracle(&steps, within, lateness);
        prop_assert_eq!(run(&steps, within, lateness, usize::MAX, 1, 1), want.clone());
        prop_assert_eq!(run(&steps, within, lateness, restart_at, before, after), want);
    }

    /// What is remembered is only what a future record can still be a copy of.
    #[test]
    fn state_holds_only_records_within_reach((steps, within, lateness, _r) in stream()) {
        let mut d = dedup(within, lateness, usize::MAX);
        let mut out = Out::default();
        let mut id = 0;
        for s in &steps {
            match s {
                Step::Watermark(w) => watermark(&mut d, *w, &mut out),
                Step::Batch(rows) => {
                    let rows: Vec<_> = rows.iter().map(|&(k, t)| { id += 1; rec(id, &format!("{k}"), t) }).collect();
                    feed(&mut d, &rows, &mut out);
                }
            }
            let close = d.state.close;
            prop_assert!(d.state.order.iter().all(|&Reverse((t, _))| t + within >= close));
            let times: usize = d.state.keys.iter().map(|e| e.times.len()).sum();
            prop_assert_eq!(times, d.remembered());
        }
        let ids: BTreeSet<i64> = out.passed.iter().chain(&out.copies).chain(&out.late).copied().collect();
        prop_assert_eq!(ids.len() as i64, id, "every record leaves once");
    }
}

#[test]
fn a_remembered_key_costs_its_bytes_and_48_more() {
    // The per-key memory the max_keys default is documented with depends on these sizes.
    assert_eq!(std::mem::size_of::<keys::Entry>(), 48);
    assert_eq!(std::mem::size_of::<Reverse<(Millis, u64)>>(), 16);
}

#[test]
fn the_table_hash_is_seeded_for_each_instance() {
    // Keys come from the stream: with a hash anyone can compute, a writer could send keys
    // that all land in one place of the table.
    let (a, b) = (State::new(), State::new());
    let keys: Vec<[u8; 8]> = (0u64..8).map(u64::to_le_bytes).collect();
    assert!(keys.iter().any(|k| a.hash(k) != b.hash(k)));
    assert!(keys.iter().all(|k| a.hash(k) != key_hash(k)));
}
