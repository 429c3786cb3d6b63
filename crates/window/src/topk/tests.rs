//! Top-K against a brute-force oracle: random streams with disorder, stragglers and ties,
//! random batch cuts and watermarks, per group or not, tumbling and sliding, snapshot and
//! restore at any step, and 1 to 3 instances rescaled at a restart.

use std::collections::BTreeMap;

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::UInt32Array;
use arrow_schema::TimeUnit;
use proptest::prelude::*;
use weir_core::message::{Message, Port};

use super::*;

/// An input record: (event time ms, group, item, v).
type In = (i64, String, String, Option<i64>);

/// An output row: (window start, window end, group, rank, item, value).
type Row = (i64, i64, Option<String>, i64, String, Option<i64>);

#[derive(Debug, Clone)]
enum Step {
    Data(Vec<In>),
    Wm(i64),
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("g", DataType::Utf8, true),
        Field::new("item", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]))
}

fn batch(rows: &[In]) -> RecordBatch {
    let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let (mut g, mut item, mut v) = (
        StringBuilder::new(),
        StringBuilder::new(),
        Int64Builder::new(),
    );
    for (t, gr, it, val) in rows {
        ts.append_value(*t);
        g.append_value(gr);
        item.append_value(it);
        v.append_option(*val);
    }
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(ts.finish()),
            Arc::new(g.finish()),
            Arc::new(item.finish()),
            Arc::new(v.finish()),
        ],
    )
    .unwrap()
}

fn config(window: WindowSpec, lateness: i64, grouped: bool, sum: bool, k: usize) -> TopKConfig {
    TopKConfig {
        time_field: Some("ts".into()),
        window,
        allowed_lateness: Duration::from_ms(lateness),
        key: vec!["item".into()],
        group_by: if grouped { vec!["g".into()] } else { vec![] },
        by: if sum {
            AggSpec {
                func: AggFn::Sum,
                field: Some("v".into()),
                name: Some("total".into()),
            }
        } else {
            count()
        },
        k,
        emit: Emit::All,
        approximate: None,
    }
}

fn collect(out: &mut Emitter, grouped: bool, rows: &mut Vec<Row>, late: &mut usize) {
    for (port, msg) in out.drain() {
        let Message::Data(b) = msg else { continue };
        if port == Port::Late {
            *late += b.num_rows();
            continue;
        }
        assert_eq!(port, Port::Main, "no dead letters expected");
        let s = |c: usize, r: usize| Scalar::from_array(b.column(c).as_ref(), r);
        let int = |c: usize, r: usize| match s(c, r) {
            Scalar::Int(v) | Scalar::Time(v) => Some(v),
            Scalar::Null => None,
            other => panic!("unexpected {other:?}"),
        };
        let text = |c: usize, r: usize| match s(c, r) {
            Scalar::Str(v) => v,
            other => panic!("unexpected {other:?}"),
        };
        let g = usize::from(grouped);
        for r in 0..b.num_rows() {
            rows.push((
                int(0, r).unwrap(),
                int(1, r).unwrap(),
                grouped.then(|| text(2, r)),
                int(2 + g, r).unwrap(),
                text(3 + g, r),
                int(4 + g, r),
            ));
        }
    }
}

/// The operator with a small ordered head (see [`ranking`]), 1 to 3 times K by K, so that
/// the streams' few keys make it cut and rebuild often.
fn top_k(cfg: &TopKConfig) -> TopK {
    let head = cfg.k * (1 + cfg.k % 3);
    TopK::new(cfg, schema(), "stage.top")
        .unwrap()
        .with_head(head)
}

/// Runs the steps through one operator, optionally snapshotting after step `restart_at` and
/// going on with a fresh operator restored from it.
fn run(cfg: &TopKConfig, steps: &[Step], restart_at: Option<usize>) -> (Vec<Row>, usize) {
    let grouped = !cfg.group_by.is_empty();
    let fresh = || top_k(cfg);
    let mut op = fresh();
    let mut out = Emitter::default();
    let (mut got, mut late) = (Vec::new(), 0);
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Data(r) => op.on_batch(&batch(r), &mut out).unwrap(),
            Step::Wm(w) => op.on_watermark(*w, &mut out).unwrap(),
        }
        collect(&mut out, grouped, &mut got, &mut late);
        if restart_at == Some(i) {
            let snap = op.snapshot().unwrap();
            op = fresh();
            op.restore(&snap).unwrap();
        }
    }
    op.on_end(&mut out).unwrap();
    collect(&mut out, grouped, &mut got, &mut late);
    (got, late)
}

/// Runs the steps through `before` instances fed by the operator's partitioner; after step
/// `restart_at`, `after` fresh instances restore the groups they own from all snapshots.
fn run_instances(
    cfg: &TopKConfig,
    steps: &[Step],
    before: usize,
    restart_at: usize,
    after: usize,
) -> (Vec<Row>, usize) {
    let (mut got, mut late) = (Vec::new(), 0);
    feed_instances(cfg, steps, (before, restart_at, after), |out| {
        collect(out, true, &mut got, &mut late)
    });
    (got, late)
}

/// Feeds the steps to `before` instances, each the rows its partitioner gives it and every
/// watermark; after step `restart_at`, `after` fresh instances restore the groups they own
/// from all snapshots. `take` gets the output after every call.
fn feed_instances(
    cfg: &TopKConfig,
    steps: &[Step],
    (before, restart_at, after): (usize, usize, usize),
    mut take: impl FnMut(&mut Emitter),
) {
    let fresh = || top_k(cfg);
    let mut ops: Vec<TopK> = (0..before).map(|_| fresh()).collect();
    let mut out = Emitter::default();
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
            take(&mut out);
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
        take(&mut out);
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The brute-force oracle: decides lateness by replaying the watermarks (a record is late
/// when the first window end at or after its pane's end has been passed), then for every
/// window holding a record counts or sums every item from scratch, sorts all of them and
/// keeps the first K per group.
fn oracle(cfg: &TopKConfig, steps: &[Step]) -> (Vec<Row>, usize) {
    let (size, slide) = cfg.window.size_slide();
    let pane = gcd(size, slide);
    let close_end = |ts: i64| {
        let pane_end = (ts.div_euclid(pane) + 1) * pane;
        (pane_end + slide - 1).div_euclid(slide) * slide
    };
    let grouped = !cfg.group_by.is_empty();
    let sum = cfg.by.func == AggFn::Sum;
    let (mut closed, mut late, mut accepted) = (i64::MIN, 0, Vec::new());
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
    // (window end, group) → item → values
    type Windows = BTreeMap<(i64, Option<String>), BTreeMap<String, Vec<Option<i64>>>>;
    let mut windows: Windows = BTreeMap::new();
    for (ts, g, item, v) in &accepted {
        let mut e = (ts.div_euclid(slide) + 1) * slide;
        while e - size <= *ts {
            windows
                .entry((e, grouped.then(|| g.clone())))
                .or_default()
                .entry(item.clone())
                .or_default()
                .push(*v);
            e += slide;
        }
    }
    let mut out = Vec::new();
    for ((e, g), items) in windows {
        let mut ranked: Vec<(Option<i64>, String)> = items
            .into_iter()
            .map(|(item, vals)| {
                let value = if sum {
                    let vs: Vec<i64> = vals.iter().flatten().copied().collect();
                    (!vs.is_empty()).then(|| vs.iter().sum())
                } else {
                    Some(vals.len() as i64)
                };
                (value, item)
            })
            .collect();
        // Highest value first, nulls last; ties by item ascending.
        ranked.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => y.cmp(&x).then(a.1.cmp(&b.1)),
            (None, None) => a.1.cmp(&b.1),
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
        });
        for (rank, (value, item)) in ranked.into_iter().take(cfg.k).enumerate() {
            out.push((e - size, e, g.clone(), rank as i64 + 1, item, value));
        }
    }
    (out, late)
}

fn sorted(mut v: Vec<Row>) -> Vec<Row> {
    v.sort_by(|a, b| (a.1, &a.2, a.3).cmp(&(b.1, &b.2, b.3)));
    v
}

/// Random streams with few items (so ties are common), bounded disorder, stragglers, and
/// watermarks at random batch cuts.
fn stream() -> impl Strategy<Value = (Vec<Step>, WindowSpec, i64, usize)> {
    let window = prop_oneof![
        (1i64..6).prop_map(|k| WindowSpec::tumbling(k * 1000)),
        (1i64..5, 1i64..7)
            .prop_map(|(slide, mult)| WindowSpec::sliding(slide * 1000 * mult, slide * 1000)),
        (1i64..9, 1i64..9).prop_map(|(a, b)| WindowSpec::sliding(a.max(b) * 700, a.min(b) * 300)),
    ];
    (
        proptest::collection::vec(
            (
                0i64..20,
                0u8..2,
                0u8..6,
                proptest::option::of(-5i64..20),
                0u8..20,
                any::<bool>(),
            ),
            1..200,
        ),
        window,
        (0i64..30).prop_map(|b| b * 100),
        (0i64..20).prop_map(|l| l * 100),
        any::<usize>(),
    )
        .prop_map(|(events, window, bound, lateness, restart)| {
            let (mut steps, mut cur, mut max_ts) = (Vec::new(), Vec::new(), 0i64);
            for (gap, g, item, v, jitter, cut) in events {
                max_ts += gap * 100;
                let behind = match jitter {
                    0 => bound * 3,
                    1..=10 => bound * i64::from(jitter) / 1000 * 100,
                    _ => 0,
                };
                cur.push((
                    max_ts - behind,
                    ["x", "y"][g as usize].to_string(),
                    ["a", "b", "c", "d", "e", "f"][item as usize].to_string(),
                    v,
                ));
                if cut {
                    steps.push(Step::Data(std::mem::take(&mut cur)));
                    steps.push(Step::Wm(max_ts - bound));
                }
            }
            steps.push(Step::Data(cur));
            let n = steps.len();
            (steps, window, lateness, restart % n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The incremental ranking equals ranking every window from scratch, with the same late
    /// records; a snapshot and restore at any step changes nothing.
    #[test]
    fn top_k_equals_brute_force(
        (steps, window, lateness, restart) in stream(),
        grouped in any::<bool>(),
        sum in any::<bool>(),
        k in 1usize..5,
    ) {
        let cfg = config(window, lateness, grouped, sum, k);
        let (got, late) = run(&cfg, &steps, None);
        let (want, want_late) = oracle(&cfg, &steps);
        prop_assert_eq!(late, want_late);
        // One instance emits rows already in window-end, group, rank order.
        prop_assert_eq!(&got, &sorted(got.clone()));
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(run(&cfg, &steps, Some(restart)), (got, late));
    }

    /// Per group, instances owning a share of the groups give together one instance's rows;
    /// snapshots restored into another number of instances change nothing.
    #[test]
    fn groups_spread_over_instances_and_rescale(
        (steps, window, lateness, restart) in stream(),
        sum in any::<bool>(),
        k in 1usize..4,
        before in 1usize..4,
        after in 1usize..4,
    ) {
        let cfg = config(window, lateness, true, sum, k);
        let (want, want_late) = run(&cfg, &steps, None);
        let (got, late) = run_instances(&cfg, &steps, before, restart, after);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(sorted(got), want);
    }
}

#[test]
fn ties_rank_by_key_and_ranks_have_no_gaps() {
    let cfg = config(WindowSpec::tumbling(1000), 0, false, false, 3);
    let rows = |r: &[(i64, &str)]| {
        Step::Data(
            r.iter()
                .map(|(t, i)| (*t, "x".to_string(), i.to_string(), Some(1)))
                .collect(),
        )
    };
    let steps = [
        rows(&[(0, "c"), (1, "b"), (2, "a"), (3, "d"), (4, "d")]),
        Step::Wm(1000),
    ];
    let (got, _) = run(&cfg, &steps, None);
    let ranked: Vec<(i64, &str, Option<i64>)> =
        got.iter().map(|r| (r.3, r.4.as_str(), r.5)).collect();
    assert_eq!(
        ranked,
        [(1, "d", Some(2)), (2, "a", Some(1)), (3, "b", Some(1))]
    );
}

#[test]
fn a_sliding_window_emits_at_every_slide_and_keys_leave() {
    // 3 s windows every 1 s: "a" twice at t=0, "b" once at t=1.5 s.
    let cfg = config(WindowSpec::sliding(3000, 1000), 0, false, false, 2);
    let steps = [
        Step::Data(vec![
            (0, "x".into(), "a".into(), None),
            (100, "x".into(), "a".into(), None),
            (1500, "x".into(), "b".into(), None),
        ]),
        Step::Wm(10_000),
    ];
    let (got, _) = run(&cfg, &steps, None);
    let ends: Vec<(i64, i64, &str, Option<i64>)> =
        got.iter().map(|r| (r.1, r.3, r.4.as_str(), r.5)).collect();
    assert_eq!(
        ends,
        [
            (1000, 1, "a", Some(2)),
            (2000, 1, "a", Some(2)),
            (2000, 2, "b", Some(1)),
            (3000, 1, "a", Some(2)),
            (3000, 2, "b", Some(1)),
            (4000, 1, "b", Some(1)),
        ]
    );
}

#[test]
fn config_errors_name_the_top_k_keys() {
    let mut cfg = config(WindowSpec::tumbling(1000), 0, true, true, 0);
    cfg.key = vec!["nope".into(), "item AS rank".into()];
    cfg.by.field = Some("missing".into());
    let errs: Vec<String> = match TopK::new(&cfg, schema(), "stage.top") {
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
        Ok(_) => panic!("a bad config was accepted"),
    };
    for want in [
        "stage.top.key[0]: ",
        "stage.top.key[1]: \"rank\" is a column of the top-K's own",
        "stage.top.by.field: ",
        "stage.top.k: expected 1 to 100000, got 0",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "no error starting {want:?} in {errs:#?}"
        );
    }
    assert!(errs
        .iter()
        .all(|e| !e.contains("aggregates") && !e.contains("group_by[1]")));

    // Approximate: counts only, and at least K counters.
    cfg = config(WindowSpec::tumbling(1000), 0, false, true, 5);
    cfg.approximate = Some(Approximate { counters: 4 });
    let errs: Vec<String> = match TopK::new(&cfg, schema(), "stage.top") {
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
        Ok(_) => panic!("a bad config was accepted"),
    };
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("stage.top.approximate: an approximate top-K ranks by count"));
    assert!(errs[1].starts_with("stage.top.approximate.counters: expected 5 (k) to"));
}

/// A counting top-K keeping `counters` keys per pane and group.
fn approximate(
    window: WindowSpec,
    lateness: i64,
    grouped: bool,
    k: usize,
    counters: usize,
) -> TopKConfig {
    let mut cfg = config(window, lateness, grouped, false, k);
    cfg.approximate = Some(Approximate { counters });
    cfg
}

/// Checks an approximate top-K's rows against every key's true count per window and group:
/// the same windows; ranks 1..=min(K, keys) ordered by count, then key; every count within
/// N / counters of the truth (N: the window's records in the group); no key left out with a
/// true count more than 2N / counters above a listed key's.
fn check_bounds(
    got: &[Row],
    truth: &[Row],
    k: usize,
    counters: usize,
) -> Result<(), TestCaseError> {
    type Window = (i64, Option<String>);
    let mut counts: BTreeMap<Window, BTreeMap<String, i64>> = BTreeMap::new();
    for (_, end, g, _, item, value) in truth {
        let n = value.expect("a count");
        counts
            .entry((*end, g.clone()))
            .or_default()
            .insert(item.clone(), n);
    }
    let mut listed: BTreeMap<Window, Vec<&Row>> = BTreeMap::new();
    for row in got {
        listed.entry((row.1, row.2.clone())).or_default().push(row);
    }
    prop_assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        counts.keys().collect::<Vec<_>>()
    );
    let m = counters as i64;
    for (w, rows) in &listed {
        let all = &counts[w];
        let n: i64 = all.values().sum();
        prop_assert_eq!(rows.len(), k.min(all.len()));
        for (i, (_, _, _, rank, item, value)) in rows.iter().copied().enumerate() {
            prop_assert_eq!(*rank, i as i64 + 1);
            let est = value.expect("a count");
            let t = all.get(item).copied().unwrap_or(0);
            prop_assert!(
                (est - t).abs() * m <= n,
                "{w:?} {item}: {est} for {t} of {n}"
            );
            if i > 0 {
                let (before, before_item) = (rows[i - 1].5.expect("a count"), &rows[i - 1].4);
                prop_assert!(before > est || (before == est && before_item < item));
            }
        }
        for (item, t) in all {
            if rows.iter().any(|r| &r.4 == item) {
                continue;
            }
            for r in rows {
                let ty = all.get(&r.4).copied().unwrap_or(0);
                prop_assert!(
                    t * m <= ty * m + 2 * n,
                    "{w:?}: {item} ({t}) left out for {}",
                    r.4
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Space-Saving panes: counts within the documented bound of the brute-force truth, the
    /// same late records, exactly the exact top-K when the counters hold every key, and a
    /// snapshot and restore at any step changes nothing.
    #[test]
    fn approximate_counts_stay_within_the_bound(
        (steps, window, lateness, restart) in stream(),
        grouped in any::<bool>(),
        k in 1usize..4,
        extra in 0usize..5,
    ) {
        let counters = k + extra;
        let cfg = approximate(window, lateness, grouped, k, counters);
        let (got, late) = run(&cfg, &steps, None);
        let mut every = config(window, lateness, grouped, false, 1_000);
        let (truth, want_late) = oracle(&every, &steps);
        prop_assert_eq!(late, want_late);
        check_bounds(&got, &truth, k, counters)?;
        // The streams have 6 items: with 6 counters no pane leaves one out.
        if counters >= 6 {
            every.k = k;
            prop_assert_eq!(&got, &oracle(&every, &steps).0);
        }
        prop_assert_eq!(run(&cfg, &steps, Some(restart)), (got, late));
    }

    /// Approximate per group: instances owning a share of the groups give together one
    /// instance's rows, rescaled at a restart or not.
    #[test]
    fn approximate_groups_spread_over_instances_and_rescale(
        (steps, window, lateness, restart) in stream(),
        k in 1usize..4,
        extra in 0usize..3,
        before in 1usize..4,
        after in 1usize..4,
    ) {
        let cfg = approximate(window, lateness, true, k, k + extra);
        let (want, want_late) = run(&cfg, &steps, None);
        let (got, late) = run_instances(&cfg, &steps, before, restart, after);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(sorted(got), want);
    }
}

/// A change row: (window end, group, rank, item, value, change, previous rank).
type Change = (
    i64,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    String,
    Option<i64>,
);

/// Runs the steps through one operator emitting changes (restarting after `restart_at`).
fn run_changes(cfg: &TopKConfig, steps: &[Step], restart_at: Option<usize>) -> Vec<Change> {
    let mut cfg = cfg.clone();
    cfg.emit = Emit::Changes;
    let grouped = !cfg.group_by.is_empty();
    let fresh = || top_k(&cfg);
    let mut op = fresh();
    let mut out = Emitter::default();
    let mut got = Vec::new();
    let take = |out: &mut Emitter, got: &mut Vec<Change>| {
        for (port, msg) in out.drain() {
            let Message::Data(b) = msg else { continue };
            if port != Port::Main {
                continue;
            }
            let s = |c: usize, r: usize| Scalar::from_array(b.column(c).as_ref(), r);
            let int = |c: usize, r: usize| match s(c, r) {
                Scalar::Int(v) | Scalar::Time(v) => Some(v),
                _ => None,
            };
            let text = |c: usize, r: usize| match s(c, r) {
                Scalar::Str(v) => v,
                other => panic!("unexpected {other:?}"),
            };
            let g = usize::from(grouped);
            for r in 0..b.num_rows() {
                got.push((
                    int(1, r).unwrap(),
                    grouped.then(|| text(2, r)),
                    int(2 + g, r),
                    text(3 + g, r),
                    int(4 + g, r),
                    text(5 + g, r),
                    int(6 + g, r),
                ));
            }
        }
    };
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Data(r) => op.on_batch(&batch(r), &mut out).unwrap(),
            Step::Wm(w) => op.on_watermark(*w, &mut out).unwrap(),
        }
        take(&mut out, &mut got);
        if restart_at == Some(i) {
            let snap = op.snapshot().unwrap();
            op = fresh();
            op.restore(&snap).unwrap();
        }
    }
    op.on_end(&mut out).unwrap();
    take(&mut out, &mut got);
    got
}

/// Replays change rows onto the lists they started from: at every window end either mode
/// emitted, each group's list must be the one emitted in full.
fn check_changes_replay(all: &[Row], changes: &[Change]) -> Result<(), TestCaseError> {
    type Lists = BTreeMap<Option<String>, BTreeMap<i64, (String, Option<i64>)>>;
    let mut ends: Vec<i64> = all
        .iter()
        .map(|r| r.1)
        .chain(changes.iter().map(|c| c.0))
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let mut lists: Lists = BTreeMap::new();
    let mut at = 0;
    for end in ends {
        // The window's changes: those that left first, then the new ranks in order.
        let mut placed: Lists = BTreeMap::new();
        while at < changes.len() && changes[at].0 == end {
            let (_, g, rank, item, value, change, prev) = changes[at].clone();
            let list = lists.entry(g.clone()).or_default();
            match change.as_str() {
                "left" => {
                    prop_assert_eq!(rank, None);
                    let p = prev.expect("a key that left had a rank");
                    prop_assert_eq!(
                        list.get(&p).map(|e| &e.0),
                        Some(&item),
                        "left from its rank"
                    );
                }
                "entered" => prop_assert_eq!(prev, None),
                "up" => prop_assert!(prev.unwrap() > rank.unwrap()),
                "down" => prop_assert!(prev.unwrap() < rank.unwrap()),
                "updated" => prop_assert_eq!(prev, rank),
                other => prop_assert!(false, "unknown change {}", other),
            }
            if let Some(r) = rank {
                placed.entry(g).or_default().insert(r, (item, value));
            }
            at += 1;
        }
        prop_assert!(
            at == changes.len() || changes[at].0 > end,
            "change rows in end order"
        );
        // Unchanged keys keep their rank and value; the rest are placed or gone.
        let mut next: Lists = BTreeMap::new();
        let groups: std::collections::BTreeSet<Option<String>> =
            lists.keys().chain(placed.keys()).cloned().collect();
        let want_groups: Lists =
            all.iter()
                .filter(|r| r.1 == end)
                .fold(BTreeMap::new(), |mut m, r| {
                    m.entry(r.2.clone())
                        .or_default()
                        .insert(r.3, (r.4.clone(), r.5));
                    m
                });
        for g in groups {
            let new_list = want_groups.get(&g).cloned().unwrap_or_default();
            let old = lists.get(&g).cloned().unwrap_or_default();
            let got_placed = placed.get(&g).cloned().unwrap_or_default();
            let mut rebuilt = BTreeMap::new();
            for (r, e) in &new_list {
                match got_placed.get(r) {
                    Some(p) => rebuilt.insert(*r, p.clone()),
                    // Not reported: the same key at the same rank with the same value.
                    None => {
                        prop_assert_eq!(old.get(r), Some(e), "an unreported change at {}", end);
                        rebuilt.insert(*r, e.clone())
                    }
                };
            }
            prop_assert_eq!(
                got_placed.len()
                    + new_list
                        .keys()
                        .filter(|r| !got_placed.contains_key(r))
                        .count(),
                new_list.len(),
                "a change row outside the list at {}",
                end
            );
            prop_assert_eq!(&rebuilt, &new_list, "at {}", end);
            if !new_list.is_empty() {
                next.insert(g, new_list);
            }
        }
        lists = next;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The change rows, applied in order to the lists last emitted, give every window's top K
    /// as emitted in full; a snapshot and restore at any step changes nothing.
    #[test]
    fn changes_replay_to_the_full_lists(
        (steps, window, lateness, restart) in stream(),
        grouped in any::<bool>(),
        sum in any::<bool>(),
        k in 1usize..4,
    ) {
        let cfg = config(window, lateness, grouped, sum, k);
        let (all, _) = run(&cfg, &steps, None);
        let changes = run_changes(&cfg, &steps, None);
        check_changes_replay(&all, &changes)?;
        prop_assert_eq!(run_changes(&cfg, &steps, Some(restart)), changes);
    }
}

#[test]
fn changes_name_what_entered_moved_and_left() {
    // Tumbling 1 s: window 1 ranks a(2) b(1); window 2 ranks b(3) c(1), a left.
    let mut cfg = config(WindowSpec::tumbling(1000), 0, false, false, 2);
    cfg.emit = Emit::Changes;
    let rec = |t: i64, i: &str| (t, "x".to_string(), i.to_string(), None);
    let steps = [
        Step::Data(vec![rec(0, "a"), rec(1, "a"), rec(2, "b")]),
        Step::Wm(1000),
        Step::Data(vec![
            rec(1000, "b"),
            rec(1001, "b"),
            rec(1002, "b"),
            rec(1003, "c"),
        ]),
        Step::Wm(2000),
    ];
    // (end, rank, item, value, change, previous rank)
    type Seen = (i64, Option<i64>, String, Option<i64>, String, Option<i64>);
    let got: Vec<Seen> = run_changes(&cfg, &steps, None)
        .into_iter()
        .map(|c| (c.0, c.2, c.3, c.4, c.5, c.6))
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            (1000, Some(1), s("a"), Some(2), s("entered"), None),
            (1000, Some(2), s("b"), Some(1), s("entered"), None),
            (2000, None, s("a"), None, s("left"), Some(1)),
            (2000, Some(1), s("b"), Some(3), s("up"), Some(2)),
            (2000, Some(2), s("c"), Some(1), s("entered"), None),
            // The input ended: the window after the last closed without them.
            (3000, None, s("b"), None, s("left"), Some(1)),
            (3000, None, s("c"), None, s("left"), Some(2)),
        ]
    );
}

/// Every main-output row as text, sorted, from `run_instances`' set-up.
fn raw_instances(
    cfg: &TopKConfig,
    steps: &[Step],
    before: usize,
    restart_at: usize,
    after: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    feed_instances(cfg, steps, (before, restart_at, after), |out| {
        for (port, msg) in out.drain() {
            let Message::Data(b) = msg else { continue };
            if port == Port::Main {
                for r in 0..b.num_rows() {
                    let cells: Vec<Scalar> = (0..b.num_columns())
                        .map(|c| Scalar::from_array(b.column(c).as_ref(), r))
                        .collect();
                    got.push(format!("{cells:?}"));
                }
            }
        }
    });
    got.sort();
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Changes per group from instances rescaled at a restart are one instance's changes.
    #[test]
    fn changes_spread_over_instances_and_rescale(
        (steps, window, lateness, restart) in stream(),
        k in 1usize..4,
        before in 1usize..4,
        after in 1usize..4,
    ) {
        let mut cfg = config(window, lateness, true, false, k);
        cfg.emit = Emit::Changes;
        let one = raw_instances(&cfg, &steps, 1, usize::MAX, 1);
        prop_assert!(one.iter().any(|r| r.contains("entered")));
        prop_assert_eq!(raw_instances(&cfg, &steps, before, restart, after), one);
    }
}
