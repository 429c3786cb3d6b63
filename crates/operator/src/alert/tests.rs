//! Alert semantics as tables, and a property test against a brute-force oracle.

use std::collections::HashMap as StdMap;

use arrow_array::builder::{StringBuilder, TimestampMillisecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use proptest::prelude::*;
use weir_core::Message;

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("target_ip", DataType::Utf8, false),
        Field::new("source_ip", DataType::Utf8, false),
    ]))
}

/// Rows: (event time ms, target, source).
fn batch(rows: &[(i64, &str, &str)]) -> RecordBatch {
    let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let (mut t, mut s) = (StringBuilder::new(), StringBuilder::new());
    for (time, target, source) in rows {
        ts.append_value(*time);
        t.append_value(target);
        s.append_value(source);
    }
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(ts.finish()),
            Arc::new(t.finish()),
            Arc::new(s.finish()),
        ],
    )
    .unwrap()
}

fn alert(n: u64, w: i64) -> Alert {
    let cfg = AlertConfig {
        time_field: "ts".into(),
        key: vec!["target_ip".into()],
        window: Duration::from_ms(w),
        threshold: n,
        fields: vec!["source_ip".into()],
        max_contributors: 100,
        allowed_lateness: Duration::from_ms(0),
    };
    Alert::new(&cfg, schema(), "stage.a").unwrap()
}

/// (key, trigger time, count, window end) of every alert emitted.
type Fire = (String, i64, i64, i64);

fn fires(out: &mut Emitter) -> (Vec<Fire>, Vec<String>, usize) {
    let (mut f, mut contributors, mut late) = (Vec::new(), Vec::new(), 0);
    for (port, msg) in out.drain() {
        let Message::Data(b) = msg else { continue };
        if port == Port::Late {
            late += b.num_rows();
            continue;
        }
        for r in 0..b.num_rows() {
            let ts = |name: &str| {
                b.column_by_name(name)
                    .unwrap()
                    .as_primitive::<TimestampMillisecondType>()
                    .value(r)
            };
            f.push((
                b.column_by_name("target_ip")
                    .unwrap()
                    .as_string::<i32>()
                    .value(r)
                    .to_string(),
                ts(TRIGGER_TIME),
                b.column_by_name(COUNT)
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .value(r),
                ts(WINDOW_END),
            ));
            contributors.push(
                b.column_by_name(CONTRIBUTORS)
                    .unwrap()
                    .as_string::<i32>()
                    .value(r)
                    .to_string(),
            );
        }
    }
    (f, contributors, late)
}

const MIN: i64 = 60_000;

#[test]
fn exactly_n_fires_once_n_minus_1_does_not() {
    let mut a = alert(3, 5 * MIN);
    let mut out = Emitter::default();
    a.on_batch(
        &batch(&[(0, "A", "s1"), (MIN, "A", "s2"), (0, "B", "x")]),
        &mut out,
    )
    .unwrap();
    assert!(
        fires(&mut out).0.is_empty(),
        "2 records of A, 1 of B: no alert"
    );
    a.on_batch(
        &batch(&[(2 * MIN, "A", "s3"), (3 * MIN, "A", "s4")]),
        &mut out,
    )
    .unwrap();
    let (f, contributors, _) = fires(&mut out);
    assert_eq!(
        f,
        vec![("A".into(), 2 * MIN, 3, 2 * MIN)],
        "fires on the 3rd record, once"
    );
    assert_eq!(
        contributors,
        [r#"[{"source_ip":"s1"},{"source_ip":"s2"},{"source_ip":"s3"}]"#]
    );
}

#[test]
fn a_record_exactly_at_the_window_edge_has_left() {
    // Window (t − 5m, t]: at t = 5m the record at 0 is out.
    let mut a = alert(2, 5 * MIN);
    let mut out = Emitter::default();
    a.on_batch(&batch(&[(0, "A", "s"), (5 * MIN, "A", "s")]), &mut out)
        .unwrap();
    assert!(fires(&mut out).0.is_empty());
    a.on_batch(&batch(&[(5 * MIN + 1, "A", "s")]), &mut out)
        .unwrap();
    assert_eq!(
        fires(&mut out).0,
        vec![("A".into(), 5 * MIN + 1, 2, 5 * MIN + 1)]
    );
}

#[test]
fn rearms_when_the_trigger_leaves_and_refires() {
    // N = 2, W = 5m. 0 1 | fire (trigger 1m) | 2 3 4: still disarmed | 6m: trigger (1m) left,
    // window (1m, 6m] holds 2,3,4,6 ≥ 2: fires again with trigger = 2nd oldest = 3m.
    let mut a = alert(2, 5 * MIN);
    let mut out = Emitter::default();
    let recs: Vec<(i64, &str, &str)> = [0, 1, 2, 3, 4, 6]
        .iter()
        .map(|m| (m * MIN, "A", "s"))
        .collect();
    a.on_batch(&batch(&recs), &mut out).unwrap();
    assert_eq!(
        fires(&mut out).0,
        vec![("A".into(), MIN, 2, MIN), ("A".into(), 3 * MIN, 4, 6 * MIN)]
    );
}

#[test]
fn late_records_go_to_the_late_port_and_state_is_released() {
    let mut a = alert(2, 5 * MIN);
    let mut out = Emitter::default();
    a.on_batch(&batch(&[(10 * MIN, "A", "s")]), &mut out)
        .unwrap();
    a.on_watermark(10 * MIN, &mut out).unwrap();
    a.on_batch(
        &batch(&[(10 * MIN + 1, "A", "s"), (9 * MIN, "A", "late")]),
        &mut out,
    )
    .unwrap();
    let (f, _, late) = fires(&mut out);
    assert_eq!((f.len(), late), (1, 1));
    assert_eq!(a.state_keys(), 1);
    a.on_watermark(16 * MIN, &mut out).unwrap();
    assert_eq!(
        a.state_keys(),
        0,
        "window empty and the trigger can no longer be in one"
    );
}

/// Brute force: every record kept, the window recomputed from scratch at each arrival.
fn oracle(steps: &[Step], n: usize, w: i64) -> (Vec<Fire>, usize) {
    struct K {
        recs: Vec<(i64, u64)>,
        armed: bool,
        trigger: i64,
    }
    let mut keys: StdMap<String, K> = StdMap::new();
    let (mut fired, mut late, mut close, mut seq) = (Vec::new(), 0, MIN_TIME, 0u64);
    for step in steps {
        match step {
            Step::Wm(x) => close = close.max(*x),
            Step::Data(rows) => {
                for (t, key) in rows {
                    if *t < close {
                        late += 1;
                        continue;
                    }
                    seq += 1;
                    let k = keys.entry(key.clone()).or_insert(K {
                        recs: vec![],
                        armed: true,
                        trigger: MIN_TIME,
                    });
                    k.recs.push((*t, seq));
                    let newest = k.recs.iter().map(|r| r.0).max().unwrap();
                    let mut window: Vec<(i64, u64)> = k
                        .recs
                        .iter()
                        .copied()
                        .filter(|r| r.0 > newest - w)
                        .collect();
                    window.sort();
                    if !k.armed && newest - w >= k.trigger {
                        k.armed = true;
                    }
                    if k.armed && window.len() >= n {
                        k.armed = false;
                        k.trigger = window[n - 1].0;
                        fired.push((key.clone(), k.trigger, window.len() as i64, newest));
                    }
                }
            }
        }
    }
    (fired, late)
}

#[derive(Debug, Clone)]
enum Step {
    Data(Vec<(i64, String)>),
    Wm(i64),
}

fn run(steps: &[Step], n: u64, w: i64, restart_at: Option<usize>) -> (Vec<Fire>, usize) {
    let mut a = alert(n, w);
    let (mut all, mut late) = (Vec::new(), 0);
    let mut out = Emitter::default();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Data(rows) => {
                let b: Vec<(i64, &str, &str)> =
                    rows.iter().map(|(t, k)| (*t, k.as_str(), "s")).collect();
                a.on_batch(&batch(&b), &mut out).unwrap();
            }
            Step::Wm(x) => a.on_watermark(*x, &mut out).unwrap(),
        }
        let (f, _, l) = fires(&mut out);
        all.extend(f);
        late += l;
        if restart_at == Some(i) {
            let snap = a.snapshot().unwrap();
            a = alert(n, w);
            a.restore(&snap).unwrap();
        }
    }
    (all, late)
}

/// Runs steps through `before` instances, each fed the rows of the keys it owns (by the
/// operator's own partitioner) and every watermark; after step `restart_at` every instance
/// snapshots and `after` fresh instances each restore the keys they own from all snapshots.
fn run_instances(
    steps: &[Step],
    n: u64,
    w: i64,
    (before, restart_at, after): (usize, usize, usize),
) -> (Vec<Fire>, usize) {
    let mut ops: Vec<Alert> = (0..before).map(|_| alert(n, w)).collect();
    let (mut all, mut late) = (Vec::new(), 0);
    let mut out = Emitter::default();
    for (i, step) in steps.iter().enumerate() {
        let count = ops.len();
        for (k, a) in ops.iter_mut().enumerate() {
            match step {
                Step::Data(rows) => {
                    let b: Vec<(i64, &str, &str)> =
                        rows.iter().map(|(t, k)| (*t, k.as_str(), "s")).collect();
                    let b = batch(&b);
                    let mut hashes = Vec::new();
                    a.partitioner().unwrap().hashes(&b, &mut hashes);
                    let own: Vec<u32> = (0..b.num_rows() as u32)
                        .filter(|&r| weir_core::keys::owner(hashes[r as usize], count) == k)
                        .collect();
                    let idx = arrow_array::UInt32Array::from(own);
                    a.on_batch(
                        &arrow_select::take::take_record_batch(&b, &idx).unwrap(),
                        &mut out,
                    )
                    .unwrap();
                }
                Step::Wm(x) => a.on_watermark(*x, &mut out).unwrap(),
            }
            let (f, _, l) = fires(&mut out);
            all.extend(f);
            late += l;
        }
        if i == restart_at {
            let snaps: Vec<Vec<u8>> = ops.iter().map(|a| a.snapshot().unwrap()).collect();
            ops = (0..after)
                .map(|k| {
                    let mut a = alert(n, w);
                    a.restore_keyed(&snaps, &|h| weir_core::keys::owner(h, after) == k)
                        .unwrap();
                    a
                })
                .collect();
        }
    }
    (all, late)
}

/// Fires stably sorted by key: each key's in firing order.
fn by_key((mut fires, late): (Vec<Fire>, usize)) -> (Vec<Fire>, usize) {
    fires.sort_by(|a, b| a.0.cmp(&b.0));
    (fires, late)
}

fn stream() -> impl Strategy<Value = (Vec<Step>, u64, i64, usize)> {
    (
        // (gap, key, disorder, cut): times on a 100 ms grid so equal times and edges occur.
        proptest::collection::vec((0i64..15, 0u8..3, 0i64..40, any::<bool>()), 1..200),
        prop_oneof![Just(1u64), 1u64..6, Just(12u64)],
        (1i64..40).prop_map(|x| x * 100),
        0i64..3_000,
        any::<usize>(),
    )
        .prop_map(|(events, n, w, bound, restart)| {
            let (mut steps, mut cur, mut clock) = (Vec::new(), Vec::new(), 0i64);
            for (gap, key, back, cut) in events {
                clock += gap * 100;
                cur.push((
                    clock - back * 100,
                    ["A", "B", "C"][key as usize].to_string(),
                ));
                if cut {
                    steps.push(Step::Data(std::mem::take(&mut cur)));
                    steps.push(Step::Wm(clock - bound));
                }
            }
            steps.push(Step::Data(cur));
            let len = steps.len();
            (steps, n, w, restart % len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Bursts, equal timestamps, disorder and stragglers: the same alerts as the oracle.
    #[test]
    fn alerts_equal_the_oracle((steps, n, w, _r) in stream()) {
        prop_assert_eq!(run(&steps, n, w, None), oracle(&steps, n as usize, w));
    }

    /// Snapshot and restore at any step change nothing.
    #[test]
    fn snapshot_restore_is_transparent((steps, n, w, r) in stream()) {
        prop_assert_eq!(run(&steps, n, w, Some(r)), run(&steps, n, w, None));
    }

    /// Keyed instances fire, key by key, the alerts of one instance; their snapshots restored
    /// into another number of instances (each keeping the keys it owns now) change nothing.
    #[test]
    fn state_rescales_across_instance_counts(
        (steps, n, w, r) in stream(),
        before in 1usize..4,
        after in 1usize..4,
    ) {
        prop_assert_eq!(
            by_key(run_instances(&steps, n, w, (before, r, after))),
            by_key(run(&steps, n, w, None))
        );
    }
}
