//! Expression tests: results against hand-computed tables, type errors, SQL NULL logic, and a
//! property test against row-by-row evaluation.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Int64Array, RecordBatch};
use proptest::prelude::*;
use weir_testkit::from_pretty;

use super::*;

fn batch() -> RecordBatch {
    from_pretty(
        "
        status:u16 | bytes:u64 | type:str | ratio:f64 | ts:ts
        200        | 10        | DDOS     | 0.5       | 0
        503        | .         | SCAN     | 1.5       | 1000
        .          | 7         | DDOS     | 2.0       | 2000
        404        | 0         | x        | -1.0      | 3000
        ",
    )
}

fn eval(text: &str) -> ArrayRef {
    Expr::parse(text)
        .unwrap()
        .bind(&batch().schema())
        .unwrap()
        .eval(&batch())
        .unwrap()
}

fn bools(text: &str) -> Vec<Option<bool>> {
    eval(text).as_boolean().iter().collect()
}

#[test]
fn comparisons_and_sql_null_logic() {
    assert_eq!(
        bools("status >= 500"),
        [Some(false), Some(true), None, Some(false)]
    );
    assert_eq!(
        bools("type = 'DDOS'"),
        [Some(true), Some(false), Some(true), Some(false)]
    );
    // NULL AND false is false; NULL OR true is true.
    assert_eq!(
        bools("status >= 500 AND type = 'DDOS'"),
        [Some(false), Some(false), None, Some(false)]
    );
    assert_eq!(
        bools("status >= 500 OR type = 'DDOS'"),
        [Some(true), Some(true), Some(true), Some(false)]
    );
    assert_eq!(
        bools("status IS NULL"),
        [Some(false), Some(false), Some(true), Some(false)]
    );
    assert_eq!(
        bools("NOT (status IN (200, 404))"),
        [Some(false), Some(true), None, Some(false)]
    );
    assert_eq!(
        bools("status BETWEEN 400 AND 599"),
        [Some(false), Some(true), None, Some(true)]
    );
    assert_eq!(
        bools("ratio > 1"),
        [Some(false), Some(true), Some(true), Some(false)]
    );
    assert_eq!(
        bools("ts >= '1970-01-01T00:00:02Z'"),
        [Some(false), Some(false), Some(true), Some(true)]
    );
}

#[test]
fn arithmetic_coerces_to_64_bits() {
    let a = eval("status / 100");
    assert_eq!(a.data_type(), &DataType::Int64);
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [Some(2), Some(5), None, Some(4)]
    );
    let b = eval("bytes + status * 2");
    assert_eq!(
        b.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [Some(410), None, None, Some(808)]
    );
    let c = eval("ratio * 2 + 1");
    assert_eq!(
        c.as_primitive::<Float64Type>().values().to_vec(),
        [2.0, 4.0, 5.0, -1.0]
    );
    assert_eq!(eval("-ratio").as_primitive::<Float64Type>().value(0), -0.5);
}

#[test]
fn errors_say_what_is_wrong() {
    let schema = batch().schema();
    let bind = |t: &str| {
        Expr::parse(t)
            .and_then(|e| e.bind(&schema))
            .err()
            .map(|e| e.to_string())
    };
    let starts = |t: &str, want: &str| {
        let got = bind(t);
        assert!(
            got.as_deref().is_some_and(|g| g.starts_with(want)),
            "{t}: {got:?}"
        );
    };
    assert_eq!(
        bind("stauts > 1").unwrap(),
        "no column \"stauts\"; the input has status, bytes, type, ratio, ts"
    );
    assert_eq!(
        bind("upper(stauts) = 'X'").unwrap(),
        "no column \"stauts\"; the input has status, bytes, type, ratio, ts"
    );
    starts(
        "type + 1",
        "Cannot coerce arithmetic expression Utf8 + Int64",
    );
    starts("status AND true", "Cannot infer common argument type");
    starts("status >", "in `status >`: sql parser error");
    assert!(
        bind("status > 1 garbage")
            .unwrap()
            .contains("unexpected `garbage`"),
        "{:?}",
        bind("status > 1 garbage")
    );
    starts(
        "uper(type) = 'X'",
        "Invalid function 'uper'.\nDid you mean 'upper'?",
    );
    starts("count(status) > 1", "Invalid function 'count'");
    starts(
        "ts > 'yesterday'",
        "Parser error: Error parsing timestamp from 'yesterday'",
    );
    // Issue 10: `weir check` passed a literal `/ 0`, which then failed at run time.
    for t in ["bytes / 0", "ratio % 0.0", "bytes / (2 - 2)"] {
        assert_eq!(
            bind(t).unwrap(),
            "division by zero (the divisor is the literal 0)",
            "{t}"
        );
    }
    let e = Expr::parse("bytes / (status - status)")
        .unwrap()
        .bind(&schema)
        .unwrap();
    assert_eq!(
        e.eval(&batch()).unwrap_err().to_string(),
        "Divide by zero error"
    );
    // A condition that is not boolean is refused when used as a mask.
    let e = Expr::parse("status + 1").unwrap().bind(&schema).unwrap();
    assert_eq!(
        e.eval_mask(&batch()).unwrap_err().to_string(),
        "`status + 1` is not a condition"
    );
}

/// Issue 12: the first things a user types, refused by the hand-written evaluator, are
/// DataFusion's function library now.
#[test]
fn the_function_library_answers() {
    // 804_571_201_000 ms is 1995-07-01T04:00:01Z.
    let b = from_pretty(
        "
        path:str              | method:str | status:u16 | bytes:u64 | ts:ts
        /images/ksclogo.gif   | GET        | 200        | 10        | 804571201000
        /shuttle/countdown/   | get        | 503        | .         | 804574800000
        .                     | POST       | .          | 7         | 804578399999
        /IMAGES/x.GIF         | Head       | 404        | .         | 0
        ",
    );
    let eval = |t: &str| {
        let e = Expr::parse(t).unwrap().bind(&b.schema()).unwrap();
        e.eval(&b).unwrap()
    };
    let bools = |t: &str| eval(t).as_boolean().iter().collect::<Vec<_>>();
    let strings = |t: &str| {
        let a = eval(t);
        let a = arrow_cast::cast(&a, &DataType::Utf8).unwrap();
        a.as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect::<Vec<_>>()
    };
    let ints = |t: &str| {
        let a = arrow_cast::cast(&eval(t), &DataType::Int64).unwrap();
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>()
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        bools("path LIKE '/images/%'"),
        [Some(true), Some(false), None, Some(false)]
    );
    assert_eq!(
        bools("path ILIKE '/images/%'"),
        [Some(true), Some(false), None, Some(true)]
    );
    assert_eq!(
        bools("lower(method) = 'get'"),
        [Some(true), Some(true), Some(false), Some(false)]
    );
    assert_eq!(
        bools("regexp_like(path, 'gif$', 'i')"),
        [Some(true), Some(false), None, Some(true)]
    );
    assert_eq!(
        ints("CASE WHEN status >= 500 THEN 1 ELSE 0 END"),
        [Some(0), Some(1), Some(0), Some(0)]
    );
    // Integral, not DataFusion's Decimal128(20, 0) for a UInt64 beside an Int64.
    assert_eq!(eval("coalesce(bytes, 0)").data_type(), &DataType::Int64);
    assert_eq!(
        eval("CASE WHEN status > 300 THEN bytes ELSE -1 END").data_type(),
        &DataType::Int64
    );
    assert_eq!(
        ints("coalesce(bytes, 0)"),
        [Some(10), Some(0), Some(7), Some(0)]
    );
    assert_eq!(
        ints("nullif(status, 404)"),
        [Some(200), Some(503), None, None]
    );
    assert_eq!(
        strings("substr(path, 1, 7)"),
        [s("/images"), s("/shuttl"), None, s("/IMAGES")]
    );
    assert_eq!(
        strings("split_part(path, '/', 2)"),
        [s("images"), s("shuttle"), None, s("IMAGES")]
    );
    assert_eq!(
        ints("extract(hour FROM ts)"),
        [Some(4), Some(5), Some(5), Some(0)]
    );
    assert_eq!(
        ints("CAST(date_trunc('hour', ts) AS BIGINT) / 1000"),
        [
            Some(804_571_200),
            Some(804_574_800),
            Some(804_574_800),
            Some(0)
        ]
    );
    // `Status` is not `status`: column names are case-sensitive; function names are not.
    assert!(Expr::parse("Status > 1")
        .unwrap()
        .bind(&b.schema())
        .is_err());
    assert_eq!(
        bools("LOWER(method) = 'get'"),
        bools("lower(method) = 'get'")
    );
}

#[test]
fn dotted_names_are_columns() {
    let b = from_pretty("user.id:i64\n1\n7");
    let e = Expr::parse("user.id > 5").unwrap();
    assert_eq!(e.columns(), ["user.id"]);
    let m = e.bind(&b.schema()).unwrap().eval_mask(&b).unwrap();
    assert_eq!(m.iter().collect::<Vec<_>>(), [Some(false), Some(true)]);
}

/// Issue 10: one row whose expression fails (`bytes / (status - 304)` on NASA's log) ended
/// the pipeline. Now that row's value is null and the row is reported with the reason; the
/// others are computed.
#[test]
fn a_failing_row_is_null_and_reported_alone() {
    let b = from_pretty(
        "
        status:u16! | bytes:u64
        200         | 10
        304         | 5
        404         | .
        304         | 1
        ",
    );
    let e = Expr::parse("bytes / (status - 304)")
        .unwrap()
        .bind(&b.schema())
        .unwrap();
    let (a, errors) = e.eval_rows(&b).unwrap();
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [Some(0), None, None, None]
    );
    assert_eq!(
        errors,
        [
            (
                1,
                "evaluating `bytes / (status - 304)`: Divide by zero error".to_string()
            ),
            (
                3,
                "evaluating `bytes / (status - 304)`: Divide by zero error".to_string()
            ),
        ]
    );
    let (mask, errors) = Expr::parse("bytes / (status - 304) >= 0")
        .unwrap()
        .bind(&b.schema())
        .unwrap()
        .eval_mask_rows(&b)
        .unwrap();
    assert_eq!(
        mask.iter().collect::<Vec<_>>(),
        [Some(true), Some(false), Some(false), Some(false)]
    );
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]);
}

/// Issue 10: `int` arithmetic wrapped (i64::MAX + i64::MAX gave -2) and a `uint` of 2^63 or
/// more was null in a filter, so `u > 0` and `u < 0` were both false.
#[test]
fn integers_are_checked_and_unsigned_stays_unsigned() {
    let b = from_pretty(
        "
        i:i64!              | u:u64!
        9223372036854775807 | 18446744073709551615
        1                   | 9223372036854775808
        -5                  | 3
        ",
    );
    let rows = |t: &str| {
        Expr::parse(t)
            .unwrap()
            .bind(&b.schema())
            .unwrap()
            .eval_rows(&b)
            .unwrap()
    };
    let (a, errors) = rows("i + i");
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [None, Some(2), Some(-10)]
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1.contains("Overflow"), "{errors:?}");
    let (a, errors) = rows("u + u");
    assert_eq!(a.data_type(), &DataType::UInt64);
    assert_eq!(
        a.as_primitive::<arrow_array::types::UInt64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [None, None, Some(6)]
    );
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1]);
    for (cond, want) in [
        ("u > 0", [true, true, true]),
        ("u < 0", [false, false, false]),
        ("u > i", [true, true, true]),
        ("u = 18446744073709551615", [true, false, false]),
        ("u >= 9223372036854775808", [true, true, false]),
    ] {
        let (a, errors) = rows(cond);
        assert!(errors.is_empty(), "{cond}: {errors:?}");
        assert_eq!(
            a.as_boolean().iter().collect::<Vec<_>>(),
            want.map(Some),
            "{cond}"
        );
    }
    // Signed arithmetic with an unsigned value that does not fit: an error row, not a null
    // (and not a decimal: integer arithmetic stays integral).
    let (a, errors) = rows("u - 1");
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [None, None, Some(2)]
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    // Negating an unsigned column is refused before any data arrives (DataFusion's rule);
    // `-CAST(u AS BIGINT)` says what is meant.
    let neg = Expr::parse("-u").unwrap().bind(&b.schema()).unwrap_err();
    assert!(
        neg.to_string().contains("only supports signed numeric"),
        "{neg}"
    );
    let (a, errors) = rows("-CAST(u AS BIGINT)");
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [None, None, Some(-3)]
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    let (a, errors) = rows("i * 2");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [None, Some(2), Some(-10)]
    );
}

#[test]
fn masks_treat_null_as_false_and_columns_are_listed() {
    let e = Expr::parse("status >= 500 OR bytes > 5").unwrap();
    assert_eq!(e.columns(), ["bytes", "status"]);
    let m = e
        .bind(&batch().schema())
        .unwrap()
        .eval_mask(&batch())
        .unwrap();
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        [Some(true), Some(true), Some(true), Some(false)]
    );
    assert_eq!(m.null_count(), 0);
    assert_eq!(Expr::parse(" status ").unwrap().as_column(), Some("status"));
    let (e, alias) = Expr::parse_aliased("status / 100 AS class").unwrap();
    assert_eq!(
        (e.text(), alias.as_deref()),
        ("status / 100", Some("class"))
    );
    assert_eq!(Expr::parse_aliased("status").unwrap().1, None);
}

proptest! {
    /// Vectorised evaluation equals evaluating each row by hand, nulls included.
    #[test]
    fn vectorised_equals_row_by_row(
        a in proptest::collection::vec(proptest::option::of(-1000i64..1000), 1..50),
        k in -1000i64..1000, m in 1i64..50,
    ) {
        let b = RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(a.clone())) as ArrayRef)]).unwrap();
        let text = format!("a % {m} * 3 - {k} > a OR a IS NULL AND {k} > 0");
        let got: Vec<Option<bool>> = Expr::parse(&text).unwrap().bind(&b.schema()).unwrap().eval(&b).unwrap().as_boolean().iter().collect();
        let want: Vec<Option<bool>> = a.iter().map(|v| match v {
            Some(x) => Some(x % m * 3 - k > *x),
            None => if k > 0 { Some(true) } else { None },
        }).collect();
        prop_assert_eq!(got, want);
    }
}

/// `now()` is the time a batch is evaluated, not the time the pipeline was planned (DataFusion
/// folds it into the query's start, and its unfolded form refused to run).
#[test]
fn now_reads_the_clock_at_every_batch() {
    let b = batch();
    let e = Expr::parse("now() - INTERVAL '1 hour' > ts AND current_date() > DATE '2026-01-01'")
        .unwrap()
        .bind(&b.schema())
        .unwrap();
    assert_eq!(
        e.eval_mask(&b).unwrap().iter().collect::<Vec<_>>(),
        [Some(true); 4]
    );
    let e = Expr::parse("CAST(now() AS BIGINT)")
        .unwrap()
        .bind(&b.schema())
        .unwrap();
    let at = |e: &Bound| e.eval(&b).unwrap().as_primitive::<Int64Type>().value(0);
    let first = at(&e);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(at(&e) - first >= 20_000_000, "now() did not move");
}
