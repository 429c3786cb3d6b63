//! The JSON-lines scanner against `serde_json::Value`, the oracle of its semantics: for any
//! line, the same lines become rows, with the same values, and the same become dead letters.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use proptest::prelude::*;
use weir_core::deadletter::DeadLetters;

use super::*;
use crate::typed::from_json;

/// Declared fields of the oracle tests: each type, a nested path, a flattened one.
const FIELDS: &[(&str, FieldType, bool)] = &[
    ("a", FieldType::Int, false),
    ("b", FieldType::String, false),
    ("geo.country", FieldType::String, false),
    ("x", FieldType::Float, false),
    ("t", FieldType::Timestamp, false),
    ("u", FieldType::Uint, false),
    ("ok", FieldType::Bool, false),
    ("s", FieldType::TimestampS, false),
    ("geo.deep.z", FieldType::Int, false),
    ("r", FieldType::String, true),
];

fn config() -> JsonConfig {
    JsonConfig {
        fields: FIELDS
            .iter()
            .map(|(name, ty, required)| FieldSpec {
                name: name.to_string(),
                ty: *ty,
                required: *required,
            })
            .collect(),
    }
}

/// What the oracle says a line gives: its values, or `None` for a dead letter.
fn oracle(line: &[u8]) -> Option<Vec<Value<'static>>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let obj = v.as_object()?;
    let mut out = Vec::new();
    for (name, ty, required) in FIELDS {
        let parts: Vec<&str> = name.split('.').collect();
        let nested = if parts.len() > 1 {
            let mut at = Some(obj);
            for p in &parts[..parts.len() - 1] {
                at = at.and_then(|o| o.get(*p)).and_then(|v| v.as_object());
            }
            at.and_then(|o| o.get(parts[parts.len() - 1]))
        } else {
            None
        };
        let j = nested
            .or_else(|| obj.get(*name))
            .unwrap_or(&serde_json::Value::Null);
        let v = from_json(*ty, j).ok()?.into_owned();
        if *required && v == Value::Null {
            return None;
        }
        out.push(v);
    }
    Some(out)
}

/// The parser's rows as values, and the dead lines' numbers.
fn parsed(input: &[u8]) -> (Vec<Vec<Value<'static>>>, Vec<u64>) {
    let mut p = JsonParser::new(&config(), None).unwrap();
    let mut dead = DeadLetters::new("t");
    p.parse_chunk(input, 1, &mut dead);
    let b = p.finish();
    let dead_lines = dead.take().map_or(Vec::new(), |d| {
        d.column(1).as_primitive::<UInt64Type>().values().to_vec()
    });
    (rows(&b), dead_lines)
}

fn rows(b: &RecordBatch) -> Vec<Vec<Value<'static>>> {
    (0..b.num_rows())
        .map(|r| {
            FIELDS
                .iter()
                .enumerate()
                .map(|(c, (_, ty, _))| {
                    let col = b.column(c);
                    if col.is_null(r) {
                        return Value::Null;
                    }
                    match ty {
                        FieldType::Int => Value::Int(col.as_primitive::<Int64Type>().value(r)),
                        FieldType::Uint => Value::Uint(col.as_primitive::<UInt64Type>().value(r)),
                        FieldType::Float => {
                            Value::Float(col.as_primitive::<Float64Type>().value(r))
                        }
                        FieldType::Bool => Value::Bool(col.as_boolean().value(r)),
                        FieldType::String => {
                            Value::Str(col.as_string::<i32>().value(r).to_string().into())
                        }
                        FieldType::Timestamp | FieldType::TimestampS => {
                            Value::Int(col.as_primitive::<TimestampMillisecondType>().value(r))
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// Same values, floats to the bit (the oracle's serde_json has `float_roundtrip`, so both
/// round correctly).
fn same(a: &[Value<'_>], b: &[Value<'_>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            _ => x == y,
        })
}

fn check(lines: &[Vec<u8>]) -> std::result::Result<(), TestCaseError> {
    let mut input = Vec::new();
    for l in lines {
        input.extend_from_slice(l);
        input.push(b'\n');
    }
    let (got, dead) = parsed(&input);
    let mut got = got.into_iter();
    for (i, l) in lines.iter().enumerate() {
        let no = i as u64 + 1;
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = String::from_utf8_lossy(l);
        match oracle(l) {
            Some(want) => {
                prop_assert!(!dead.contains(&no), "line {} is dead: {}", no, line);
                let row = got.next().unwrap();
                prop_assert!(
                    same(&row, &want),
                    "{}\n got {:?}\nwant {:?}",
                    line,
                    row,
                    want
                );
            }
            None => prop_assert!(dead.contains(&no), "line {} is a row: {}", no, line),
        }
    }
    prop_assert!(got.next().is_none());
    Ok(())
}

/// JSON-ish text: mostly valid values of every kind the scanner handles, with the edge cases
/// (escapes, surrogates, huge and odd numbers, deep nesting) and some breakage.
fn value(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        prop_oneof![
            Just("0"),
            Just("-0"),
            Just("12"),
            Just("-7"),
            Just("1.5"),
            Just("1e3"),
            Just("1E-2"),
            Just("18446744073709551615"),
            Just("18446744073709551616"),
            Just("-9223372036854775808"),
            Just("-9223372036854775809"),
            Just("123456789012345678901234567890"),
            Just("1e400"),
            Just("-1e400"),
            Just("1e-400"),
            Just("01"),
            Just("1."),
            Just(".5"),
            Just("-"),
            Just("2e"),
            Just("1700000000000"),
            Just("1700000000.5"),
            Just("0.00"),
            Just("+1"),
            Just("NaN"),
        ]
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        // Decimals as producers write them (`-12.50`), up to and past 19 digits: the
        // scanner reads those of at most 19 digits exactly as it goes.
        (
            any::<bool>(),
            0u64..10_000_000,
            prop::collection::vec(0u8..10, 1..24)
        )
            .prop_map(|(neg, i, f)| {
                let f: String = f.iter().map(|d| char::from(b'0' + d)).collect();
                format!("{}{i}.{f}", if neg { "-" } else { "" })
            }),
        string(),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        4 => leaf,
        1 => prop::collection::vec(value(depth - 1), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
        1 => object(depth - 1),
    ]
    .boxed()
}

fn string() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![
            8 => "[a-zA-Z0-9 .:/-]".prop_map(|s: String| s),
            1 => Just("\\\"".to_string()),
            1 => Just("\\\\".to_string()),
            1 => Just("\\n".to_string()),
            1 => Just("\\u00e9".to_string()),
            1 => Just("\\ud83d\\ude00".to_string()),
            1 => Just("\\ud83d".to_string()),
            1 => Just("\\ude00".to_string()),
            1 => Just("\\x".to_string()),
            1 => Just("é".to_string()),
            1 => Just("\t".to_string()),
            1 => Just("2026-11-22T00:00:01.5Z".to_string()),
        ],
        0..6,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()))
    .boxed()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a"),
        Just("b"),
        Just("geo"),
        Just("country"),
        Just("geo.country"),
        Just("x"),
        Just("t"),
        Just("u"),
        Just("ok"),
        Just("s"),
        Just("deep"),
        Just("z"),
        Just("r"),
        Just("geo.deep.z"),
        Just("other"),
        Just("\\u0061"),
        Just("g\\u0065o"),
    ]
    .prop_map(|k| format!("\"{k}\""))
}

/// What stands between a key and its value, and after a value: mostly compact, as producers
/// write, sometimes spaced (the scanner's fast paths assume compact).
fn colon() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(":"), 2 => Just(": "), 1 => Just(" :"), 1 => Just(" :\t ")]
}

fn comma() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(","), 2 => Just(", "), 1 => Just(" ,"), 1 => Just("\t,")]
}

/// `"k":v` pairs joined as an object's members.
fn members(kv: Vec<(String, &'static str, String, &'static str)>) -> String {
    kv.into_iter()
        .enumerate()
        .map(|(i, (k, colon, v, comma))| {
            format!("{}{k}{colon}{v}", if i == 0 { "" } else { comma })
        })
        .collect()
}

fn object(depth: u32) -> BoxedStrategy<String> {
    prop::collection::vec((key(), colon(), value(depth), comma()), 0..7)
        .prop_map(|kv| format!("{{{}}}", members(kv)))
        .boxed()
}

/// An object with the required field first, so its typed fields become a row (or a dead
/// letter for a wrong type) rather than a dead letter for a missing `r`.
fn row_object() -> BoxedStrategy<String> {
    prop::collection::vec((key(), colon(), value(1), comma()), 0..7)
        .prop_map(|kv| {
            let rest = members(kv);
            format!(
                r#"{{"r":"x"{}{rest}}}"#,
                if rest.is_empty() { "" } else { "," }
            )
        })
        .boxed()
}

/// A line: an object, sometimes with whitespace, broken by a cut or a stray byte.
fn line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![object(3), row_object()],
        0..10u8,
        any::<prop::sample::Index>(),
        any::<u8>(),
    )
        .prop_map(|(obj, how, at, byte)| {
            let mut b = obj.into_bytes();
            let at = at.index(b.len() + 1);
            match how {
                0 => b.truncate(at),
                1 => b.insert(at, byte),
                2 => b.insert(at.min(b.len()), b' '),
                3 => b.extend_from_slice(b" \t"),
                4 => b.splice(0..0, *b"[").for_each(drop),
                _ => {}
            }
            b.retain(|&c| c != b'\n');
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn scanner_agrees_with_serde_json_value(lines in prop::collection::vec(line(), 1..8)) {
        check(&lines)?;
    }
}

/// Named cases at the edges of the semantics.
#[test]
fn edge_cases_agree_with_serde_json_value() {
    let deep = |n: usize| format!(r#"{{"r":"x","o":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
    let cases: Vec<String> = vec![
        r#"{"r":"x","geo":{"country":"NL"}}"#.into(),
        r#"{"r":"x","geo.country":"BE"}"#.into(),
        r#"{"r":"x","geo.country":"BE","geo":{"country":"NL"}}"#.into(),
        r#"{"r":"x","geo":{"country":"NL"},"geo":{"city":"A"}}"#.into(),
        r#"{"r":"x","geo":{"country":"NL"},"geo":5,"geo.country":"BE"}"#.into(),
        r#"{"r":"x","geo":{"deep":{"z":3}}}"#.into(),
        r#"{"r":"x","a":1,"a":2}"#.into(),
        r#"{"r":"x","a":-0}"#.into(),
        r#"{"r":"x","b":-0}"#.into(),
        r#"{"r":"x","b":1e3}"#.into(),
        r#"{"r":"x","b":123456789012345678901234567890}"#.into(),
        r#"{"r":"x","u":-1}"#.into(),
        r#"{"r":"x","u":18446744073709551615}"#.into(),
        r#"{"r":"x","a":9223372036854775807}"#.into(),
        r#"{"r":"x","a":9223372036854775808}"#.into(),
        r#"{"r":"x","t":1.5}"#.into(),
        r#"{"r":"x","x":-12.50}"#.into(),
        r#"{"r":"x","x":-0.0}"#.into(),
        r#"{"r":"x","x":0.1}"#.into(),
        r#"{"r":"x","x":9007199254740993.5}"#.into(),
        r#"{"r":"x","x":1.2345678901234567890123}"#.into(),
        r#"{"r":"x","x":-9007199254740993}"#.into(),
        r#"{"r":"x","u":12.0}"#.into(),
        r#"{"r":"x","a":-12}"#.into(),
        r#"{"r":"x","s":1700000000.25}"#.into(),
        r#"{"r":"x","other":1e400}"#.into(),
        r#"{"r":"x","b":"\ud83d\ude00 caf\u00e9 \"q\""}"#.into(),
        r#"{"r":"x","other":"\ud83d"}"#.into(),
        r#"{"r":"\u0078"}"#.into(),
        r#"{"\u0072":"x"}"#.into(),
        r#"{"r":null}"#.into(),
        r#"{}"#.into(),
        r#" {"r":"x"} "#.into(),
        r#"{"r":"x"} x"#.into(),
        r#"{"r":"x",}"#.into(),
        deep(125),
        deep(126),
        deep(127),
    ];
    let lines: Vec<Vec<u8>> = cases.into_iter().map(String::into_bytes).collect();
    check(&lines).unwrap();
    // Raw invalid UTF-8 is a dead letter, as serde_json refuses it.
    check(&[
        b"{\"r\":\"\xff\"}".to_vec(),
        b"{\"other\":\"\xe9\"}".to_vec(),
    ])
    .unwrap();
}

#[test]
fn blank_lines_are_counted() {
    let mut p = JsonParser::new(&config(), None).unwrap();
    let mut dead = DeadLetters::new("t");
    let n = p.parse_chunk(b"{\"r\":\"x\"}\n\n  \r\n{\"r\":\"y\"}\n", 1, &mut dead);
    assert_eq!((n, p.finish().num_rows(), dead.total()), (4, 2, 0));
    assert_eq!(p.take_counts().blank, 2);
    assert_eq!(p.take_counts().blank, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// A float field's decimal is the double nearest to it, as Rust's own parser rounds,
    /// whether the scanner read its digits exactly (at most 19) or not.
    #[test]
    fn decimals_are_correctly_rounded(
        neg in any::<bool>(),
        int in prop_oneof![0u64..10, 0u64..u64::MAX],
        frac in prop::collection::vec(0u8..10, 0..24),
    ) {
        let frac: String = frac.iter().map(|d| char::from(b'0' + d)).collect();
        let num = format!(
            "{}{int}{}{frac}",
            if neg { "-" } else { "" },
            if frac.is_empty() { "" } else { "." }
        );
        let (rows, dead) = parsed(format!(r#"{{"r":"x","x":{num}}}"#).as_bytes());
        prop_assert!(dead.is_empty());
        let want: f64 = num.parse().unwrap();
        match rows[0][3] {
            Value::Float(got) => prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", num),
            ref v => prop_assert!(false, "{:?}", v),
        }
    }
}
