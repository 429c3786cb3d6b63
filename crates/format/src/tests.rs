//! JSON-lines and CSV parsers: typed rows, and malformed-input corpora with named reasons.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::RecordBatch;
use weir_core::deadletter::DeadLetters;

use crate::{build_parser, FormatConfig};

fn parse(cfg: &str, input: &str) -> (RecordBatch, Vec<String>) {
    let cfg: FormatConfig = serde_json::from_str(cfg).unwrap();
    assert!(cfg.validate("f").is_empty());
    let mut p = build_parser(&cfg, None).unwrap();
    let mut dead = DeadLetters::new("t");
    p.parse_chunk(input.as_bytes(), 1, &mut dead);
    let reasons = match dead.take() {
        Some(b) => {
            let lines = b.column(1).as_primitive::<arrow_array::types::UInt64Type>();
            let r = b.column(2).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| format!("{}: {}", lines.value(i), r.value(i)))
                .collect()
        }
        None => Vec::new(),
    };
    (p.finish(), reasons)
}

const DDOS: &str = r#"{"type":"json","fields":[
    {"name":"ts_ms","type":"timestamp","required":true},
    {"name":"type","type":"string"},
    {"name":"target_ip","type":"string"},
    {"name":"n","type":"int"}]}"#;

#[test]
fn json_lines_typed_rows() {
    let input = r#"{"ts_ms":804571201000,"type":"DDOS","target_ip":"10.0.0.1","n":3,"extra":[1]}
{"ts_ms":"1995-07-01T04:00:02Z","type":"SCAN","target_ip":null}

{"ts_ms":804571203000,"type":"DDOS","target_ip":"10.0.0.2","n":null}
"#;
    let (b, dead) = parse(DDOS, input);
    assert_eq!(dead, Vec::<String>::new());
    assert_eq!(b.num_rows(), 3, "the blank line is skipped (and counted)");
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(
        ts.values().to_vec(),
        vec![804_571_201_000, 804_571_202_000, 804_571_203_000]
    );
    assert!(b.column(2).is_null(1));
    assert_eq!(b.column(3).as_primitive::<Int64Type>().value(0), 3);
}

#[test]
fn json_malformed_corpus() {
    let cases = [
        (
            "not json",
            "ts_ms=1",
            "not a JSON object: expected a JSON object at column 1",
        ),
        (
            "an array",
            "[1,2]",
            "not a JSON object: expected a JSON object at column 1",
        ),
        (
            "truncated",
            r#"{"ts_ms":1"#,
            "not a JSON object: expected `,` or `}` after a value at column 11",
        ),
        (
            "wrong type",
            r#"{"ts_ms":1,"n":"ten"}"#,
            "field \"n\": expected a number, got a string",
        ),
        (
            "fraction for int",
            r#"{"ts_ms":1,"n":1.5}"#,
            "field \"n\": expected an integer in 64 bits, got 1.5",
        ),
        (
            "missing required",
            r#"{"n":1}"#,
            "field \"ts_ms\" is required but missing or null",
        ),
        (
            "bad time",
            r#"{"ts_ms":"yesterday"}"#,
            "field \"ts_ms\": expected an RFC 3339 time, got \"yesterday\"",
        ),
        ("invalid utf-8", "{\"ts_ms\":1,\"type\":\"\u{fffd}\"}", ""),
    ];
    for (name, line, reason) in cases {
        let (b, dead) = parse(DDOS, line);
        if reason.is_empty() {
            assert_eq!((b.num_rows(), dead.len()), (1, 0), "{name}");
        } else {
            assert_eq!(b.num_rows(), 0, "{name}");
            assert_eq!(dead, vec![format!("1: {reason}")], "{name}");
        }
    }
    // Raw invalid UTF-8 bytes are a dead letter, never a panic.
    let cfg: FormatConfig = serde_json::from_str(DDOS).unwrap();
    let mut p = build_parser(&cfg, None).unwrap();
    let mut dead = DeadLetters::new("t");
    p.parse_chunk(b"{\"ts_ms\":1,\"type\":\"\xff\xfe\"}\n", 1, &mut dead);
    assert_eq!((p.finish().num_rows(), dead.total()), (0, 1));
}

const CSV: &str = r#"{"type":"csv","fields":[
    {"name":"ts","type":"timestamp_s"},
    {"name":"status","type":"uint"},
    {"name":"path","type":"string"}]}"#;

#[test]
fn csv_by_header_name_with_quoting() {
    let input = "path,status,ignored,ts\n\"/a,b\",200,x,804571201\n\"/say \"\"hi\"\"\",404,,1995-07-01T04:00:02Z\n";
    let (b, dead) = parse(CSV, input);
    assert_eq!(dead, Vec::<String>::new());
    assert_eq!(b.num_rows(), 2);
    assert_eq!(b.column(2).as_string::<i32>().value(0), "/a,b");
    assert_eq!(b.column(2).as_string::<i32>().value(1), "/say \"hi\"");
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.values().to_vec(), vec![804_571_201_000, 804_571_202_000]);
}

#[test]
fn csv_malformed_corpus() {
    let input = "ts,status,path\n\
                 804571201,200\n\
                 804571201,abc,/x\n\
                 804571201,200,\"/open\n\
                 804571201,-1,/neg\n\
                 804571201,200,/ok\n";
    let (b, dead) = parse(CSV, input);
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        dead,
        vec![
            "2: expected 3 columns, got 2",
            "3: field \"status\": expected a non-negative integer, got \"abc\"",
            "4: unterminated quoted value (a value cannot span lines)",
            "5: field \"status\": expected a non-negative integer, got \"-1\"",
        ]
    );
    let (_, dead) = parse(CSV, "time,status\n1,2\n");
    assert_eq!(
        dead,
        vec![
            "1: header has no column \"ts\" (declared in fields)",
            "2: the header on line 1 has no column \"ts\""
        ]
    );
    // Issue 36: no later line can parse, so the runtime stops the run with this.
    let cfg: FormatConfig = serde_json::from_str(CSV).unwrap();
    let mut p = build_parser(&cfg, None).unwrap();
    assert_eq!(p.fatal(), None, "nothing read yet");
    p.parse_chunk(b"time,status\n", 1, &mut DeadLetters::new("t"));
    let why = p
        .fatal()
        .expect("a header without a declared column is fatal");
    assert!(why.contains("has no column \"ts\""), "{why}");
    let mut good = build_parser(&cfg, None).unwrap();
    good.parse_chunk(b"ts,status,path\nx,1,/\n", 1, &mut DeadLetters::new("t"));
    assert_eq!(good.fatal(), None, "a bad row is not fatal");
}

#[test]
fn csv_without_header_is_positional() {
    let cfg = r#"{"type":"csv","header":false,"delimiter":";","fields":[{"name":"a","type":"int"},{"name":"b","type":"float"}]}"#;
    let (b, dead) = parse(cfg, "1;2.5\n-3;\n");
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(b.num_rows(), 2);
    assert!(b.column(1).is_null(1), "an empty cell is null");
}

#[test]
fn raw_lines_stay_aligned_with_rows() {
    let mut clf_input = b"h - - [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 1\r\n\
not a log line\n\
h - - [01/Jul/1995:00:00:02 -0400] \"GET /\" 2O0 1\n"
        .to_vec();
    clf_input.extend_from_slice(b"\xff - - [01/Jul/1995:00:00:03 -0400] \"GET / HTTP/1.0\" 200 1");
    // (format, input, (lines, dead letters), the raw line of each row)
    type Case<'a> = (&'a str, Vec<u8>, (u64, u64), Vec<&'a str>);
    let cases: [Case; 2] = [
        // CLF: the malformed line with a timestamp is a 999 row and keeps its line; the one
        // without is a dead letter only; `\r\n` and bad UTF-8 are handled as the parser does.
        (
            r#"{"type":"clf","malformed_status":999}"#,
            clf_input,
            (4, 2),
            vec![
                "h - - [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 1",
                "h - - [01/Jul/1995:00:00:02 -0400] \"GET /\" 2O0 1",
                "\u{fffd} - - [01/Jul/1995:00:00:03 -0400] \"GET / HTTP/1.0\" 200 1",
            ],
        ),
        // CSV: the header and a blank line make no rows; a bad record is a dead letter.
        (
            CSV,
            b"ts,status,path\n804571201,200,/a\n\n804571202,abc,/b\n804571203,404,/c\n".to_vec(),
            (5, 1),
            vec!["804571201,200,/a", "804571203,404,/c"],
        ),
    ];
    for (cfg, input, (lines, dead_letters), want) in cases {
        let cfg: FormatConfig = serde_json::from_str(cfg).unwrap();
        let mut p = crate::build_source_parser(&cfg, Some("line"), None).unwrap();
        let mut dead = DeadLetters::new("t");
        assert_eq!(p.parse_chunk(&input, 1, &mut dead), lines);
        assert_eq!(dead.total(), dead_letters);
        let b = p.finish();
        assert_eq!(b.schema().field(b.num_columns() - 1).name(), "line");
        let raw = b.column(b.num_columns() - 1).as_string::<i32>();
        let got: Vec<&str> = raw.iter().map(Option::unwrap).collect();
        assert_eq!(got, want);
    }
}
