//! Expression tests: results against hand-computed tables, type errors, SQL NULL logic, and a
//! property test against row-by-row evaluation.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt16Array,
    UInt64Array,
};
use proptest::prelude::*;

use super::*;

fn batch() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "status",
            Arc::new(UInt16Array::from(vec![
                Some(200),
                Some(503),
                None,
                Some(404),
            ])) as ArrayRef,
        ),
        (
            "bytes",
            Arc::new(UInt64Array::from(vec![Some(10), None, Some(7), Some(0)])) as _,
        ),
        (
            "type",
            Arc::new(StringArray::from(vec!["DDOS", "SCAN", "DDOS", "x"])) as _,
        ),
        (
            "ratio",
            Arc::new(Float64Array::from(vec![0.5, 1.5, 2.0, -1.0])) as _,
        ),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from(vec![0, 1000, 2000, 3000]).with_timezone("UTC"),
            ) as _,
        ),
    ])
    .unwrap()
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
    assert_eq!(
        bind("stauts > 1").unwrap(),
        "no column \"stauts\"; the input has status, bytes, type, ratio, ts"
    );
    assert_eq!(bind("type > 1").unwrap(), "cannot compare Utf8 with Int64");
    assert_eq!(
        bind("type + 1").unwrap(),
        "cannot do arithmetic on Utf8 and Int64"
    );
    assert_eq!(
        bind("status AND true").unwrap(),
        "AND/OR needs booleans, got UInt16"
    );
    assert!(
        bind("status >")
            .unwrap()
            .starts_with("in `status >`: sql parser error"),
        "{:?}",
        bind("status >")
    );
    assert!(
        bind("status > 1 garbage")
            .unwrap()
            .contains("unexpected `garbage`"),
        "{:?}",
        bind("status > 1 garbage")
    );
    assert!(bind("upper(type) = 'X'")
        .unwrap()
        .starts_with("unsupported expression"));
    let e = Expr::parse("bytes / 0").unwrap().bind(&schema).unwrap();
    assert_eq!(
        e.eval(&batch()).unwrap_err().to_string(),
        "Divide by zero error"
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
