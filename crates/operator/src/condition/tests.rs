//! Hysteresis on window results, as a table.

use arrow_array::{Int64Array, TimestampMillisecondArray, UInt16Array};
use weir_core::Message;

use super::*;

/// Window results: (window end, status, count).
fn results(rows: &[(i64, u16, i64)]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "window_end",
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "status",
            Arc::new(UInt16Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "count",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as _,
        ),
    ])
    .unwrap()
}

fn fired(c: &mut Condition, rows: &[(i64, u16, i64)]) -> Vec<String> {
    let mut out = Emitter::default();
    c.on_batch(&results(rows), &mut out).unwrap();
    out.drain()
        .filter_map(|(_, m)| match m {
            Message::Data(b) => Some(
                (0..b.num_rows())
                    .map(|r| b.column(0).as_string::<i32>().value(r).to_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn fires_when_true_rearms_when_false_or_absent() {
    let cfg = ConditionConfig {
        when: "status >= 500 AND count > 100".into(),
        key: vec!["status".into()],
    };
    assert_eq!(cfg.required_fields(), ["count", "status", "window_end"]);
    let mut c = Condition::new(&cfg, results(&[]).schema(), "stage.c").unwrap();
    // window 1: 503 low; window 2: 503 high → fires; window 3: still high → silent.
    assert!(fired(&mut c, &[(1, 503, 5), (1, 200, 900)]).is_empty());
    assert_eq!(fired(&mut c, &[(2, 503, 150), (2, 200, 900)]), ["503@2"]);
    assert!(fired(&mut c, &[(3, 503, 120)]).is_empty());
    // window 4: low → re-arms; window 5: high → fires again.
    assert!(fired(&mut c, &[(4, 503, 50)]).is_empty());
    assert_eq!(fired(&mut c, &[(5, 503, 101)]), ["503@5"]);
    // window 6 without any 503 row re-arms it; window 7 fires. Both in one batch.
    assert_eq!(fired(&mut c, &[(7, 503, 500), (6, 200, 10)]), ["503@7"]);
    // A snapshot keeps the disarmed keys.
    let snap = c.snapshot().unwrap();
    let mut again = Condition::new(&cfg, results(&[]).schema(), "stage.c").unwrap();
    again.restore(&snap).unwrap();
    assert!(fired(&mut again, &[(8, 503, 999)]).is_empty());
}

#[test]
fn needs_window_results_and_a_condition() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::UInt16,
        false,
    )]));
    let cfg = ConditionConfig {
        when: "status + 1".into(),
        key: vec!["nope".into()],
    };
    let errs: Vec<String> = Condition::new(&cfg, schema, "stage.c")
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "stage.c.when: expected a condition, `status + 1` is a Int64",
            "stage.c.key[0]: no field \"nope\" in the input",
            "stage.c.input: a condition reads window results (with window_end); put an aggregate before it",
        ]
    );
}
