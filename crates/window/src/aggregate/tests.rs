//! Window semantics as tables with timelines, and property tests against a brute-force
//! oracle with random batch boundaries, bounded disorder and stragglers.

use std::collections::BTreeMap;

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use proptest::prelude::*;
use weir_core::message::Message;

use super::*;

/// Input rows: (event time ms, key, v).
type Row = (i64, &'static str, Option<i64>);

fn in_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
    ]))
}

fn batch(rows: &[(i64, String, Option<i64>)]) -> RecordBatch {
    let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut k = StringBuilder::new();
    let mut v = Int64Builder::new();
    let mut f = Float64Builder::new();
    for (t, key, val) in rows {
        ts.append_value(*t);
        k.append_value(key);
        v.append_option(*val);
        f.append_option(val.map(|x| x as f64 / 4.0));
    }
    RecordBatch::try_new(
        in_schema(),
        vec![
            Arc::new(ts.finish()),
            Arc::new(k.finish()),
            Arc::new(v.finish()),
            Arc::new(f.finish()),
        ],
    )
    .unwrap()
}

fn rows(r: &[Row]) -> RecordBatch {
    batch(
        &r.iter()
            .map(|(t, k, v)| (*t, k.to_string(), *v))
            .collect::<Vec<_>>(),
    )
}

fn config(window: WindowSpec, lateness: i64) -> AggregateConfig {
    let agg = |f: AggFn, field: Option<&str>, name: &str| AggSpec {
        func: f,
        field: field.map(Into::into),
        name: Some(name.into()),
    };
    AggregateConfig {
        time_field: Some("ts".into()),
        window,
        allowed_lateness: Duration::from_ms(lateness),
        group_by: vec!["k".into()],
        aggregates: vec![
            agg(AggFn::Count, None, "n"),
            agg(AggFn::Sum, Some("v"), "sum"),
            agg(AggFn::Min, Some("v"), "min"),
            agg(AggFn::Max, Some("v"), "max"),
            agg(AggFn::CountDistinct, Some("v"), "distinct"),
            agg(AggFn::Avg, Some("f"), "avg"),
        ],
    }
}

fn tumbling(size: i64) -> WindowSpec {
    WindowSpec::tumbling(size)
}

fn sliding(size: i64, slide: i64) -> WindowSpec {
    WindowSpec::sliding(size, slide)
}

/// One output row: (start, end, key, count, sum, min, max, distinct, avg*4 rounded).
type OutRow = (
    i64,
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
);

#[derive(Debug, Clone)]
enum Step {
    Data(Vec<(i64, String, Option<i64>)>),
    Wm(i64),
}

fn collect(out: &mut Emitter, rows: &mut Vec<OutRow>, late: &mut usize) {
    for (port, msg) in out.drain() {
        let Message::Data(b) = msg else { continue };
        if port == Port::Late {
            *late += b.num_rows();
            continue;
        }
        for r in 0..b.num_rows() {
            let s = |c: usize| Scalar::from_array(b.column(c).as_ref(), r);
            let int = |c: usize| match s(c) {
                Scalar::Int(v) | Scalar::Time(v) => Some(v),
                _ => None,
            };
            let avg = match s(8) {
                Scalar::Float(f) => Some((f * 4.0 * 1000.0).round() as i64),
                _ => None,
            };
            let Scalar::Str(k) = s(2) else { panic!("key") };
            rows.push((
                int(0).unwrap(),
                int(1).unwrap(),
                k,
                int(3).unwrap(),
                int(4),
                int(5),
                int(6),
                int(7).unwrap(),
                avg,
            ));
        }
    }
}

/// Runs steps through an operator; optionally snapshots and restores into a fresh operator
/// after step `restart_at`.
fn run(cfg: &AggregateConfig, steps: &[Step], restart_at: Option<usize>) -> (Vec<OutRow>, usize) {
    let mut op = Aggregate::new(cfg, in_schema(), "stage.t").unwrap();
    let mut out = Emitter::default();
    let (mut got, mut late) = (Vec::new(), 0);
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Data(r) => op.on_batch(&batch(r), &mut out).unwrap(),
            Step::Wm(w) => op.on_watermark(*w, &mut out).unwrap(),
        }
        collect(&mut out, &mut got, &mut late);
        if restart_at == Some(i) {
            let snap = op.snapshot().unwrap();
            op = Aggregate::new(cfg, in_schema(), "stage.t").unwrap();
            op.restore(&snap).unwrap();
        }
    }
    op.on_end(&mut out).unwrap();
    collect(&mut out, &mut got, &mut late);
    (got, late)
}

/// Runs steps through `before` instances, each fed the rows of the keys it owns (by the
/// operator's own partitioner) and every watermark; after step `restart_at` every instance
/// snapshots and `after` fresh instances each restore the keys they own from all snapshots.
fn run_instances(
    cfg: &AggregateConfig,
    steps: &[Step],
    before: usize,
    restart_at: usize,
    after: usize,
) -> (Vec<OutRow>, usize) {
    let fresh = || Aggregate::new(cfg, in_schema(), "stage.t").unwrap();
    let mut ops: Vec<Aggregate> = (0..before).map(|_| fresh()).collect();
    let mut out = Emitter::default();
    let (mut got, mut late) = (Vec::new(), 0);
    for (i, step) in steps.iter().enumerate() {
        let n = ops.len();
        for (k, op) in ops.iter_mut().enumerate() {
            match step {
                Step::Data(r) => {
                    let b = batch(r);
                    let mut hashes = Vec::new();
                    op.partitioner().unwrap().hashes(&b, &mut hashes);
                    let own: Vec<u32> = (0..b.num_rows() as u32)
                        .filter(|&r| weir_core::keys::owner(hashes[r as usize], n) == k)
                        .collect();
                    let part =
                        arrow_select::take::take_record_batch(&b, &UInt32Array::from(own)).unwrap();
                    op.on_batch(&part, &mut out).unwrap();
                }
                Step::Wm(w) => op.on_watermark(*w, &mut out).unwrap(),
            }
            collect(&mut out, &mut got, &mut late);
        }
        if i == restart_at {
            let snaps: Vec<Vec<u8>> = ops.iter().map(|op| op.snapshot().unwrap()).collect();
            ops = (0..after)
                .map(|k| {
                    let mut op = fresh();
                    op.restore_keyed(&snaps, &|h| weir_core::keys::owner(h, after) == k)
                        .unwrap();
                    op
                })
                .collect();
        }
    }
    for op in &mut ops {
        op.on_end(&mut out).unwrap();
        collect(&mut out, &mut got, &mut late);
    }
    (got, late)
}

fn data(r: &[Row]) -> Step {
    Step::Data(r.iter().map(|(t, k, v)| (*t, k.to_string(), *v)).collect())
}

fn counts(rows: &[OutRow]) -> Vec<(i64, i64, &str, i64)> {
    rows.iter().map(|r| (r.0, r.1, r.2.as_str(), r.3)).collect()
}

#[test]
fn tumbling_window_boundaries() {
    // 0s        10s       20s
    // [─────────)[─────────)
    //  a   a     a            an event exactly at 10s belongs to the second window
    let steps = [data(&[
        (0, "a", Some(1)),
        (9_999, "a", Some(2)),
        (10_000, "a", Some(3)),
    ])];
    let (got, late) = run(&config(tumbling(10_000), 0), &steps, None);
    assert_eq!(
        counts(&got),
        vec![(0, 10_000, "a", 2), (10_000, 20_000, "a", 1)]
    );
    assert_eq!(got[0].4, Some(3));
    assert_eq!(late, 0);
}

#[test]
fn window_closes_only_when_watermark_reaches_its_end() {
    let cfg = config(tumbling(10_000), 0);
    let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
    let mut out = Emitter::default();
    op.on_batch(&rows(&[(1_000, "a", None)]), &mut out).unwrap();
    op.on_watermark(9_999, &mut out).unwrap();
    let (mut got, mut late) = (Vec::new(), 0);
    collect(&mut out, &mut got, &mut late);
    assert!(
        got.is_empty(),
        "window [0,10s) must stay open at watermark 9.999s"
    );
    op.on_watermark(10_000, &mut out).unwrap();
    collect(&mut out, &mut got, &mut late);
    assert_eq!(counts(&got), vec![(0, 10_000, "a", 1)]);
}

#[test]
fn restored_windows_fire_on_watermarks_alone() {
    // Key "a" is open in [0,10s) and sliding windows up to 30s when the snapshot is taken; after
    // the restore no record of "a" ever arrives, only watermarks: its windows still close, and
    // its state is released.
    for window in [tumbling(10_000), sliding(30_000, 10_000)] {
        let cfg = config(window, 0);
        let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
        let mut out = Emitter::default();
        op.on_batch(&rows(&[(1_000, "a", Some(5))]), &mut out)
            .unwrap();
        let snap = op.snapshot().unwrap();
        let mut again = Aggregate::new(&cfg, in_schema(), "s").unwrap();
        again.restore(&snap).unwrap();
        let (mut got, mut late) = (Vec::new(), 0);
        for wm in [5_000, 10_000, 20_000, 30_000, 40_000] {
            again.on_watermark(wm, &mut out).unwrap();
            collect(&mut out, &mut got, &mut late);
        }
        let want: Vec<_> = match window.kind {
            WindowKind::Tumbling => vec![(0, 10_000, "a", 1)],
            WindowKind::Sliding => vec![
                (-20_000, 10_000, "a", 1),
                (-10_000, 20_000, "a", 1),
                (0, 30_000, "a", 1),
            ],
        };
        assert_eq!(counts(&got), want);
        assert_eq!(again.state_keys(), 0, "state released");
    }
}

#[test]
fn out_of_order_within_bound_is_counted_late_beyond_is_routed() {
    // events:   5s  3s | wm 10s closes [0,10) | 9s arrives: late | 12s
    let steps = [
        data(&[(5_000, "a", Some(1)), (3_000, "a", Some(1))]),
        Step::Wm(10_000),
        data(&[(9_000, "a", Some(1)), (12_000, "a", Some(1))]),
    ];
    let (got, late) = run(&config(tumbling(10_000), 0), &steps, None);
    assert_eq!(
        counts(&got),
        vec![(0, 10_000, "a", 2), (10_000, 20_000, "a", 1)]
    );
    assert_eq!(late, 1);
}

#[test]
fn allowed_lateness_keeps_the_window_open() {
    // watermark 12s − lateness 5s = 7s: [0,10) still open, the 9s straggler is counted.
    let steps = [
        data(&[(1_000, "a", Some(1))]),
        Step::Wm(12_000),
        data(&[(9_000, "a", Some(1))]),
        Step::Wm(15_000),
    ];
    let (got, late) = run(&config(tumbling(10_000), 5_000), &steps, None);
    assert_eq!(counts(&got), vec![(0, 10_000, "a", 2)]);
    assert_eq!(late, 0);
}

#[test]
fn empty_windows_are_not_emitted() {
    // [0,10) a   [10,20) -   [20,30) -   [30,40) b
    let steps = [data(&[(1, "a", None), (35_000, "b", None)])];
    let (got, _) = run(&config(tumbling(10_000), 0), &steps, None);
    assert_eq!(
        counts(&got),
        vec![(0, 10_000, "a", 1), (30_000, 40_000, "b", 1)]
    );
}

#[test]
fn end_of_input_flushes_open_windows() {
    let steps = [data(&[(1, "a", None)]), Step::Wm(5)];
    let (got, _) = run(&config(tumbling(10_000), 0), &steps, None);
    assert_eq!(counts(&got), vec![(0, 10_000, "a", 1)]);
}

#[test]
fn sliding_window_holds_each_event_size_over_slide_times() {
    // size 10s, slide 5s: an event at 7s is in [0,10) and [5,15)
    // -5s   0s    5s    10s   15s
    //       [───────────)
    //             [───────────)
    let steps = [data(&[(7_000, "a", Some(4)), (12_000, "a", Some(1))])];
    let (got, _) = run(&config(sliding(10_000, 5_000), 0), &steps, None);
    assert_eq!(
        counts(&got),
        vec![
            (0, 10_000, "a", 1),
            (5_000, 15_000, "a", 2),
            (10_000, 20_000, "a", 1)
        ]
    );
    assert_eq!(
        (got[1].5, got[1].6),
        (Some(1), Some(4)),
        "min and max over both panes"
    );
}

#[test]
fn state_is_released_when_windows_empty() {
    let cfg = config(sliding(10_000, 1_000), 0);
    let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
    let mut out = Emitter::default();
    op.on_batch(&rows(&[(1_000, "a", None), (2_000, "b", None)]), &mut out)
        .unwrap();
    op.on_watermark(5_000, &mut out).unwrap();
    assert_eq!(op.state_keys(), 2);
    op.on_watermark(13_000, &mut out).unwrap();
    assert_eq!(op.state_keys(), 0);
}

#[test]
fn processing_time_windows_close_on_ticks() {
    let mut cfg = config(tumbling(1_000), 0);
    cfg.time_field = None;
    let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
    let mut out = Emitter::default();
    op.on_tick(5_500, &mut out).unwrap();
    op.now = 5_500; // the wall clock of on_batch is later than this; pin it for the test
    op.add_rows(&rows(&[(0, "a", None)]), &mut out).unwrap();
    op.on_tick(6_000, &mut out).unwrap();
    let (mut got, mut late) = (Vec::new(), 0);
    collect(&mut out, &mut got, &mut late);
    assert_eq!(counts(&got), vec![(5_000, 6_000, "a", 1)]);
}

#[test]
fn config_errors_name_their_paths() {
    let mut cfg = config(sliding(1_000, 5_000), 0);
    cfg.group_by = vec!["nope".into()];
    cfg.aggregates.push(AggSpec {
        func: AggFn::Sum,
        field: Some("k".into()),
        name: None,
    });
    let errs = Aggregate::new(&cfg, in_schema(), "stage.t").err().unwrap();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.starts_with("stage.t.window.slide: slide 5s is longer than size 1s")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("stage.t.group_by[0]: no field \"nope\"")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("stage.t.aggregates[6].field: Sum needs a numeric")),
        "{text:?}"
    );
}

/// The brute-force oracle: replays the steps to decide which records are late (the pane of a
/// record closes at the first window end at or after the pane's end), then aggregates every
/// window over the accepted records from scratch.
fn oracle(cfg: &AggregateConfig, steps: &[Step]) -> (Vec<OutRow>, usize) {
    let (size, slide) = cfg.window.size_slide();
    let pane = gcd(size, slide);
    let close_end = |ts: i64| {
        let pane_end = (ts.div_euclid(pane) + 1) * pane;
        (pane_end + slide - 1).div_euclid(slide) * slide
    };
    let mut closed = i64::MIN;
    let mut accepted = Vec::new();
    let mut late = 0;
    for step in steps {
        match step {
            Step::Data(rows) => {
                for r in rows {
                    if close_end(r.0) <= closed {
                        late += 1;
                    } else {
                        accepted.push(r.clone());
                    }
                }
            }
            Step::Wm(w) => closed = closed.max(w - cfg.allowed_lateness.ms),
        }
    }
    let mut windows: BTreeMap<(i64, String), Vec<Option<i64>>> = BTreeMap::new();
    for (ts, k, v) in &accepted {
        // every window end e (a multiple of slide) with e - size <= ts < e
        let mut e = (ts.div_euclid(slide) + 1) * slide;
        while e - size <= *ts {
            windows.entry((e, k.clone())).or_default().push(*v);
            e += slide;
        }
    }
    let out = windows
        .into_iter()
        .map(|((e, k), vals)| {
            let vs: Vec<i64> = vals.iter().flatten().copied().collect();
            let distinct: std::collections::BTreeSet<i64> = vs.iter().copied().collect();
            let avg = (!vs.is_empty()).then(|| {
                let sum: f64 = vs.iter().map(|&x| x as f64 / 4.0).sum();
                (sum / vs.len() as f64 * 4.0 * 1000.0).round() as i64
            });
            let sum = (!vs.is_empty()).then(|| vs.iter().sum());
            (
                e - size,
                e,
                k,
                vals.len() as i64,
                sum,
                vs.iter().min().copied(),
                vs.iter().max().copied(),
                distinct.len() as i64,
                avg,
            )
        })
        .collect();
    (out, late)
}

fn sorted(mut v: Vec<OutRow>) -> Vec<OutRow> {
    v.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    v
}

/// Random streams: each event is at most `disorder` behind the running maximum, except
/// stragglers up to 3×`disorder`; watermarks (max − `bound`) at random batch boundaries.
fn stream() -> impl Strategy<Value = (Vec<Step>, i64, i64, i64, i64, usize)> {
    let window = prop_oneof![
        (1i64..6).prop_map(|k| (k * 1000, k * 1000)),
        (1i64..5, 1i64..7).prop_map(|(slide, mult)| (slide * 1000 * mult, slide * 1000)),
        (1i64..9, 1i64..9).prop_map(|(a, b)| (a.max(b) * 700, a.min(b) * 300)),
    ];
    (
        // Times in steps of 100 ms so events and watermarks often fall exactly on window edges.
        proptest::collection::vec(
            (
                0i64..20,
                0u8..4,
                proptest::option::of(-50i64..50),
                0u8..20,
                any::<bool>(),
            ),
            1..150,
        ),
        window,
        (0i64..30).prop_map(|b| b * 100),
        (0i64..20).prop_map(|l| l * 100),
        any::<usize>(),
    )
        .prop_map(|(events, (size, slide), bound, lateness, restart)| {
            let mut steps = Vec::new();
            let mut cur = Vec::new();
            let mut max_ts = 0i64;
            for (gap, key, v, jitter, cut) in events {
                max_ts += gap * 100;
                let behind = match jitter {
                    0 => bound * 3,
                    1..=10 => bound * i64::from(jitter) / 1000 * 100,
                    _ => 0,
                };
                cur.push((
                    max_ts - behind,
                    ["a", "b", "c", "d"][key as usize].to_string(),
                    v,
                ));
                if cut {
                    steps.push(Step::Data(std::mem::take(&mut cur)));
                    steps.push(Step::Wm(max_ts - bound));
                }
            }
            steps.push(Step::Data(cur));
            let n = steps.len();
            (steps, size, slide, bound, lateness, restart % n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Incremental tumbling/sliding aggregation equals recomputation from scratch, and routes
    /// exactly the records the oracle calls late.
    #[test]
    fn incremental_equals_brute_force((steps, size, slide, _bound, lateness, _r) in stream()) {
        let window = if size == slide { tumbling(size) } else { sliding(size, slide) };
        let cfg = config(window, lateness);
        let (got, late) = run(&cfg, &steps, None);
        let (want, want_late) = oracle(&cfg, &steps);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(sorted(got), want);
    }

    /// Snapshot and restore at any step give the output of an uninterrupted run.
    #[test]
    fn snapshot_restore_is_transparent((steps, size, slide, _bound, lateness, restart) in stream()) {
        let window = if size == slide { tumbling(size) } else { sliding(size, slide) };
        let cfg = config(window, lateness);
        prop_assert_eq!(run(&cfg, &steps, Some(restart)), run(&cfg, &steps, None));
    }

    /// Keyed instances give, together, the rows of one instance; their snapshots restored
    /// into another number of instances (each keeping the keys it owns now) change nothing.
    #[test]
    fn state_rescales_across_instance_counts(
        (steps, size, slide, _bound, lateness, restart) in stream(),
        before in 1usize..4,
        after in 1usize..4,
    ) {
        let window = if size == slide { tumbling(size) } else { sliding(size, slide) };
        let cfg = config(window, lateness);
        let (want, want_late) = run(&cfg, &steps, None);
        let (got, late) = run_instances(&cfg, &steps, before, restart, after);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(sorted(got), sorted(want));
    }
}

#[test]
fn group_keys_can_be_expressions() {
    let mut cfg = config(tumbling(10_000), 0);
    cfg.group_by = vec!["v % 2 AS parity".into(), "k".into()];
    cfg.aggregates = vec![AggSpec {
        func: AggFn::Count,
        field: None,
        name: None,
    }];
    assert_eq!(cfg.required_fields(), ["k", "ts", "v"]);
    let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
    let names: Vec<String> = op
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["window_start", "window_end", "parity", "k", "count"]
    );
    let mut out = Emitter::default();
    op.on_batch(
        &rows(&[
            (1, "a", Some(1)),
            (2, "a", Some(3)),
            (3, "a", Some(4)),
            (4, "b", None),
        ]),
        &mut out,
    )
    .unwrap();
    op.on_end(&mut out).unwrap();
    let Some((_, Message::Data(b))) = out.drain().next() else {
        panic!("a batch")
    };
    let col = |i: usize| {
        (0..b.num_rows())
            .map(|r| Scalar::from_array(b.column(i).as_ref(), r).to_text())
            .collect::<Vec<_>>()
    };
    // Sorted by key: NULL parity first.
    assert_eq!(col(2), ["", "0", "1"]);
    assert_eq!(col(3), ["b", "a", "a"]);
    assert_eq!(col(4), ["1", "1", "2"]);
}

#[test]
fn bad_key_expressions_are_config_errors() {
    let mut cfg = config(tumbling(10_000), 0);
    cfg.group_by = vec!["v +".into(), "k * 2".into()];
    let errs: Vec<String> = Aggregate::new(&cfg, in_schema(), "stage.t")
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errs[0].starts_with("stage.t.group_by[0]: in `v +`: sql parser error"),
        "{errs:?}"
    );
    assert_eq!(
        errs[1],
        "stage.t.group_by[1]: Cannot coerce arithmetic expression Utf8 * Int64 to valid types"
    );
}

#[test]
fn aggregate_inputs_can_be_expressions() {
    let mut cfg = config(tumbling(10_000), 0);
    let agg = |f: AggFn, field: &str, name: &str| AggSpec {
        func: f,
        field: Some(field.into()),
        name: Some(name.into()),
    };
    cfg.group_by = vec![];
    cfg.aggregates = vec![
        agg(AggFn::Sum, "v > 0", "positive"),
        agg(AggFn::Avg, "v > 0", "share"),
        agg(AggFn::Max, "v * 10", "max10"),
    ];
    assert_eq!(cfg.required_fields(), ["ts", "v"]);
    let mut op = Aggregate::new(&cfg, in_schema(), "s").unwrap();
    let mut out = Emitter::default();
    op.on_batch(
        &rows(&[
            (1, "a", Some(1)),
            (2, "a", Some(-3)),
            (3, "a", Some(4)),
            (4, "b", None),
        ]),
        &mut out,
    )
    .unwrap();
    op.on_end(&mut out).unwrap();
    let Some((_, Message::Data(b))) = out.drain().next() else {
        panic!("a batch")
    };
    let cell = |i: usize| Scalar::from_array(b.column(i).as_ref(), 0).to_text();
    assert_eq!(
        (cell(2), cell(3), cell(4)),
        ("2".into(), "0.6666666666666666".into(), "40".into())
    );
    cfg.aggregates = vec![AggSpec {
        func: AggFn::Sum,
        field: Some("v > 0".into()),
        name: None,
    }];
    let errs = Aggregate::new(&cfg, in_schema(), "stage.t").err().unwrap();
    assert_eq!(
        errs[0].to_string(),
        "stage.t.aggregates[0].as: name the result of `v > 0` with `as`"
    );
    // A decimal (here an explicit one) is refused with the cast that fixes it, not a panic.
    cfg.aggregates = vec![AggSpec {
        func: AggFn::Sum,
        field: Some("CAST(v AS DECIMAL(10, 2))".into()),
        name: Some("d".into()),
    }];
    let errs = Aggregate::new(&cfg, in_schema(), "stage.t").err().unwrap();
    assert_eq!(
        errs[0].to_string(),
        "stage.t.aggregates[0].field: \"CAST(v AS DECIMAL(10, 2))\" is Decimal128(10, 2): \
         CAST it to BIGINT or DOUBLE"
    );
}

/// Issue 10: `sum` over `int` wrapped (i64::MAX + i64::MAX gave -2), `uint` aggregates came out
/// signed (max of 2^64-1 gave -1), a CLF `bytes` of 2^64-1 plus 2 summed to 1, and a group key
/// that failed on one row (`v / (v - 5)`) ended the pipeline. Now sums that do not fit are
/// null with an error row, unsigned stays unsigned, and a failing row has a null key and an
/// error row.
#[test]
fn sums_are_exact_unsigned_stays_unsigned_and_failing_rows_are_errors() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    let b = weir_testkit::from_pretty(
        "
        ts:ts! | i:i64                | u:u64
        0      | 9223372036854775807  | 18446744073709551615
        1      | 9223372036854775807  | 2
        2      | 5                    | 1
        ",
    );
    let schema = b.schema();
    let agg = |f: AggFn, field: &str, name: &str| AggSpec {
        func: f,
        field: Some(field.into()),
        name: Some(name.into()),
    };
    let cfg = AggregateConfig {
        time_field: Some("ts".into()),
        window: tumbling(10_000),
        allowed_lateness: Duration::from_ms(0),
        group_by: vec!["i / (i - 5) AS g".into()],
        aggregates: vec![
            agg(AggFn::Sum, "i", "sum_i"),
            agg(AggFn::Sum, "u", "sum_u"),
            agg(AggFn::Max, "u", "max_u"),
            agg(AggFn::Min, "u", "min_u"),
        ],
    };
    let mut op = Aggregate::new(&cfg, schema, "stage.t").unwrap();
    let mut out = Emitter::default();
    op.on_batch(&b, &mut out).unwrap();
    op.on_end(&mut out).unwrap();
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for (port, msg) in out.drain() {
        if let Message::Data(b) = msg {
            match port {
                Port::Main => data.push(b),
                Port::Errors => errors.push(b),
                p => panic!("nothing goes to {p:?}"),
            }
        }
    }
    let reasons: Vec<String> = errors
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(
        reasons[0], "evaluating `i / (i - 5)`: Divide by zero error",
        "the row with i = 5"
    );
    assert!(
        reasons[1].starts_with("the sum 18446744073709551614 does not fit int64; sum_i is null"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("the sum 18446744073709551617 does not fit uint64; sum_u is null"),
        "{reasons:?}"
    );
    let out = arrow_select::concat::concat_batches(&data[0].schema(), &data).unwrap();
    assert_eq!(out.num_rows(), 2, "keys 1 (i = MAX twice) and null (i = 5)");
    let col = |name: &str| out.column(out.schema().index_of(name).unwrap()).clone();
    assert_eq!(col("sum_u").data_type(), &DataType::UInt64);
    assert_eq!(col("max_u").data_type(), &DataType::UInt64);
    // Rows in key order: the null key (i = 5) first, then g = 1.
    let sum_i: Vec<_> = col("sum_i").as_primitive::<Int64Type>().iter().collect();
    assert_eq!(sum_i, [Some(5), None]);
    let sum_u: Vec<_> = col("sum_u").as_primitive::<UInt64Type>().iter().collect();
    assert_eq!(sum_u, [Some(1), None], "2^64 - 1 + 2 does not fit");
    let max_u: Vec<_> = col("max_u").as_primitive::<UInt64Type>().iter().collect();
    assert_eq!(max_u, [Some(1), Some(u64::MAX)]);
    let min_u: Vec<_> = col("min_u").as_primitive::<UInt64Type>().iter().collect();
    assert_eq!(min_u, [Some(1), Some(2)]);
}

/// Issue 10: `window = { size = "99999999999d", slide = "1d" }` passed `weir check` and ran
/// out of memory at run time.
#[test]
fn windows_too_long_or_of_too_many_panes_are_refused_at_check() {
    let check = |window: WindowSpec| {
        let cfg = config(window, 0);
        cfg.validate("stage.w")
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    };
    let day = 86_400_000;
    let e = check(sliding(99_999_999_999 * day / 1000 * 1000, day));
    assert!(
        e.iter()
            .any(|e| e.starts_with("stage.w.window.size: ") && e.contains("longest window")),
        "{e:?}"
    );
    let e = check(sliding(3650 * day, 1_000));
    assert!(
        e.iter()
            .any(|e| e.starts_with("stage.w.window: ") && e.contains("panes")),
        "{e:?}"
    );
    assert!(
        check(sliding(day, 1_000)).is_empty(),
        "a day by the second is fine"
    );
}

/// A row's event time in [`batch_with_gaps`] that stands for none.
const NO_TIME: i64 = i64::MIN;

/// [`batch`], with a null event time where a row's time is [`NO_TIME`].
fn batch_with_gaps(rows: &[(i64, String, Option<i64>)]) -> RecordBatch {
    let b = batch(rows);
    let ts: arrow_array::TimestampMillisecondArray = rows
        .iter()
        .map(|(t, _, _)| (*t != NO_TIME).then_some(*t))
        .collect();
    let mut cols = b.columns().to_vec();
    cols[0] = Arc::new(ts.with_timezone("UTC"));
    RecordBatch::try_new(b.schema(), cols).unwrap()
}

/// Aggregates that fold (count, integer sum, min, max), grouped by the key `k`, by `k` and
/// `100 / v`, or by `100 / v` alone (one integer key, which the combiner folds without
/// encoding it). `100 / v` fails on v = 0 (a dead letter) and is null for null v.
fn foldable_config(window: WindowSpec, lateness: i64, keys: u8) -> AggregateConfig {
    let mut cfg = config(window, lateness);
    cfg.aggregates.truncate(4);
    cfg.aggregates.push(AggSpec {
        func: AggFn::Count,
        field: Some("v".into()),
        name: Some("values".into()),
    });
    match keys {
        0 => {}
        1 => cfg.group_by.push("100 / v AS q".into()),
        _ => cfg.group_by = vec!["100 / v AS q".into()],
    }
    cfg
}

/// What operators emitted, as text, sorted: window rows, late rows and dead letters.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    main: Vec<String>,
    late: Vec<String>,
    errors: Vec<String>,
}

impl Seen {
    fn take(&mut self, out: &mut Emitter) {
        for (port, msg) in out.drain() {
            let Message::Data(b) = msg else { continue };
            let to = match port {
                Port::Main => &mut self.main,
                Port::Late => &mut self.late,
                Port::Errors => &mut self.errors,
                p => panic!("an aggregate has no {p:?} output"),
            };
            for r in 0..b.num_rows() {
                let row: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| Scalar::from_array(c.as_ref(), r).to_text())
                    .collect();
                to.push(row.join("|"));
            }
        }
    }

    fn sorted(mut self) -> Self {
        self.main.sort();
        self.late.sort();
        self.errors.sort();
        self
    }
}

/// One instance fed every row.
fn run_unfolded(cfg: &AggregateConfig, steps: &[Step]) -> Seen {
    let mut op = Aggregate::new(cfg, in_schema(), "stage.t").unwrap();
    let (mut out, mut seen) = (Emitter::default(), Seen::default());
    for step in steps {
        match step {
            Step::Data(r) => op.on_batch(&batch_with_gaps(r), &mut out).unwrap(),
            Step::Wm(w) => op.on_watermark(*w, &mut out).unwrap(),
        }
        seen.take(&mut out);
    }
    op.on_end(&mut out).unwrap();
    seen.take(&mut out);
    seen.sorted()
}

/// `n` instances fed what the combiner made of each batch; also the number of folded parts
/// and of records in them.
fn run_folded(cfg: &AggregateConfig, steps: &[Step], n: usize) -> (Seen, usize, u64) {
    let mut ops: Vec<Aggregate> = (0..n)
        .map(|_| Aggregate::new(cfg, in_schema(), "stage.t").unwrap())
        .collect();
    let fold = ops[0].combiner().expect("these aggregates fold");
    let (mut out, mut seen) = (Emitter::default(), Seen::default());
    let (mut parts, mut records) = (0, 0);
    for step in steps {
        match step {
            Step::Data(r) => {
                let b = batch_with_gaps(r);
                let mut rows = 0;
                for (k, msg) in fold.combine(&b, n).unwrap() {
                    match msg {
                        Message::Data(b) => {
                            rows += b.num_rows() as u64;
                            ops[k].on_batch(&b, &mut out).unwrap()
                        }
                        Message::Partial(p) => {
                            parts += 1;
                            records += p.records;
                            rows += p.records;
                            ops[k].on_partial(&p, &mut out).unwrap()
                        }
                        m => panic!("the combiner sent {m:?}"),
                    }
                    seen.take(&mut out);
                }
                assert_eq!(rows, b.num_rows() as u64, "every row is sent once");
            }
            Step::Wm(w) => {
                for op in &mut ops {
                    op.on_watermark(*w, &mut out).unwrap();
                    seen.take(&mut out);
                }
            }
        }
    }
    for op in &mut ops {
        op.on_end(&mut out).unwrap();
        seen.take(&mut out);
    }
    (seen.sorted(), parts, records)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Rows folded before the exchange give what the rows themselves give: the same windows,
    /// late rows and dead letters, with one instance or several, rows without event time and
    /// rows whose key fails included, keys of strings and of one integer.
    #[test]
    fn folded_rows_equal_the_rows_themselves(
        (steps, size, slide, _bound, lateness, _r) in stream(),
        instances in 1usize..4,
        no_time_every in 0usize..12,
        keys in 0u8..3,
    ) {
        let mut steps = steps;
        let mut i = 0;
        for step in &mut steps {
            if let Step::Data(rows) = step {
                for r in rows {
                    i += 1;
                    if no_time_every > 0 && i % no_time_every == 0 {
                        r.0 = NO_TIME;
                    }
                }
            }
        }
        let window = if size == slide { tumbling(size) } else { sliding(size, slide) };
        let cfg = foldable_config(window, lateness, keys);
        let (got, _, _) = run_folded(&cfg, &steps, instances);
        prop_assert_eq!(got, run_unfolded(&cfg, &steps));
    }
}

/// The rows of a hot key reach its instance as one fold per pane; a fold whose pane closed
/// at the instance comes back as its rows, on the late output, and the aggregates that do not
/// merge exactly in any order (float sums, averages, distinct counts) are not folded.
#[test]
fn hot_keys_fold_and_late_folds_come_back_as_rows() {
    let cfg = foldable_config(tumbling(1000), 0, 0);
    let hot: Vec<Row> = (0..1000).map(|i| (i % 2000, "a", Some(1))).collect();
    let steps = vec![data(&hot), Step::Wm(1000), data(&hot)];
    let (got, parts, records) = run_folded(&cfg, &steps, 2);
    // One fold of 1000 rows, then one for [0, 1000) which closed: its rows are late.
    assert_eq!((parts, records), (2, 2000));
    assert_eq!(got.late.len(), 1000);
    assert_eq!(got, run_unfolded(&cfg, &steps));
    assert_eq!(
        got.main,
        ["1970-01-01T00:00:00Z|1970-01-01T00:00:01Z|a|1000|1000|1|1|1000"]
    );

    // Nearly one key per row: not worth folding; the next batches go as they are too.
    let keys = ["a", "b", "c", "d"];
    let spread: Vec<Row> = (0..40)
        .map(|i| (i * 1000, keys[i as usize % 4], Some(1)))
        .collect();
    let (got, parts, _) = run_folded(&cfg, &[data(&spread), data(&hot)], 1);
    assert_eq!(parts, 1, "the hot batch after a poor fold is not folded");
    assert_eq!(got, run_unfolded(&cfg, &[data(&spread), data(&hot)]));

    for (f, field) in [
        (AggFn::Sum, "f"),
        (AggFn::Avg, "v"),
        (AggFn::CountDistinct, "v"),
    ] {
        let mut cfg = foldable_config(tumbling(1000), 0, 0);
        cfg.aggregates.push(AggSpec {
            func: f,
            field: Some(field.into()),
            name: Some("x".into()),
        });
        let op = Aggregate::new(&cfg, in_schema(), "stage.t").unwrap();
        assert!(op.combiner().is_none(), "{f:?} of {field} folds");
    }
}
