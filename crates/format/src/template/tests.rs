//! Template parser tests: compiling (presets, every problem named), a corpus of the line
//! shapes real Apache and nginx servers write, agreement with the CLF parser on real logs, and
//! a property test that time, status and bytes come back exactly whatever the request holds.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int16Type, TimestampMillisecondType, UInt16Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use proptest::prelude::*;
use weir_core::deadletter::DeadLetters;
use weir_core::Parser;

use super::*;

const NGINX_TIMED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;
const APACHE_D: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D"#;

fn parser(dialect: Dialect, fmt: &str) -> TemplateParser {
    let cfg = TemplateConfig {
        log_format: fmt.into(),
        malformed_status: Some(999),
    };
    TemplateParser::new(dialect, &cfg, None).unwrap()
}

fn run(p: &mut TemplateParser, input: &str) -> (RecordBatch, DeadLetters, ParseCounts) {
    let mut dead = DeadLetters::new("t");
    p.parse_chunk(input.as_bytes(), 1, &mut dead);
    (p.finish(), dead, p.take_counts())
}

fn text(b: &RecordBatch, col: &str, row: usize) -> Option<String> {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"));
    (!c.is_null(row)).then(|| c.as_string::<i32>().value(row).to_string())
}

fn status(b: &RecordBatch, row: usize) -> u16 {
    b.column_by_name("status")
        .unwrap()
        .as_primitive::<UInt16Type>()
        .value(row)
}

#[test]
fn columns_are_named_and_typed_after_the_directives() {
    let t = Template::compile(Dialect::Apache, APACHE_D).unwrap();
    let names: Vec<String> = t.columns().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "host",
            "ident",
            "user",
            "timestamp",
            "utc_offset",
            "request",
            "method",
            "path",
            "protocol",
            "status",
            "bytes",
            "referer",
            "user_agent",
            "time_us"
        ]
    );
    let t = Template::compile(Dialect::Nginx, NGINX_TIMED).unwrap();
    let cols = t.columns();
    let ty = |n: &str| cols.iter().find(|(c, _)| c == n).unwrap().1.clone();
    assert_eq!(ty("status"), DataType::UInt16);
    assert_eq!(ty("body_bytes_sent"), DataType::UInt64);
    assert_eq!(ty("request_time"), DataType::Float64);
    assert!(matches!(ty("time_local"), DataType::Timestamp(..)));
    assert_eq!(ty("http_user_agent"), DataType::Utf8);
}

#[test]
fn presets_are_the_servers_stock_formats() {
    for (d, name) in [
        (Dialect::Apache, "common"),
        (Dialect::Apache, "combined"),
        (Dialect::Apache, "vhost_combined"),
        (Dialect::Apache, "referer"),
        (Dialect::Apache, "agent"),
        (Dialect::Nginx, "combined"),
        (Dialect::Nginx, "main"),
    ] {
        Template::compile(d, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let t = Template::compile(Dialect::Apache, "vhost_combined").unwrap();
    assert_eq!(t.columns()[0].0, "vhost");
}

#[test]
fn every_problem_of_a_format_string_is_named() {
    let cases = [
        (Dialect::Apache, "combine", "is neither a format string"),
        (Dialect::Apache, "%h %Z", "%Z is not a directive weir knows"),
        (
            Dialect::Apache,
            "%h %{%d/%b}t",
            "custom time formats are not supported",
        ),
        (
            Dialect::Apache,
            "%h%l",
            "host and ident have nothing between them",
        ),
        (Dialect::Apache, "%b %B", "the field bytes appears twice"),
        (
            Dialect::Apache,
            "%400,501{User-agent}i",
            "conditional directives",
        ),
        (Dialect::Apache, "%h %i", "%i needs a name"),
        (Dialect::Nginx, "${remote_addr", "has no closing brace"),
        (Dialect::Nginx, "$ x", "without a variable name"),
    ];
    for (d, fmt, want) in cases {
        let err = Template::compile(d, fmt).unwrap_err();
        assert!(err.contains(want), "{fmt}: {err}");
    }
}

/// The line shapes of the issue, each named, with what the row must hold.
#[test]
fn real_world_line_shapes() {
    let mut p = parser(Dialect::Apache, APACHE_D);
    let lines = [
        // 0: a plain combined line with %D
        r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08" 1520"#,
        // 1: IPv6 host, `-` bytes, timeout `"-" 408`
        r#"2001:db8::1 - - [10/Oct/2000:13:55:37 -0700] "-" 408 - "-" "-" 20001234"#,
        // 2: a TLS handshake on a plain-HTTP port: junk in the request, status 400
        "10.0.0.2 - - [10/Oct/2000:13:55:38 -0700] \"\\x16\\x03\\x01\\x02\" 400 226 \"-\" \"-\" 12",
        // 3: escaped quotes in the request and the agent (Apache writes \")
        r#"10.0.0.3 - - [10/Oct/2000:13:55:39 -0700] "GET /q?x=\"y\" HTTP/1.1" 200 5 "-" "a \"b\" c" 7"#,
        // 4: spaces in the path, HTTP/0.9
        r#"10.0.0.4 - - [10/Oct/2000:13:55:40 -0700] "GET /a b" 404 0 "-" "-" 3"#,
        // 5: cut inside the user agent (the log was truncated)
        r#"10.0.0.5 - - [10/Oct/2000:13:55:41 -0700] "GET / HTTP/1.1" 200 9 "-" "Mozilla/5.0 (Win"#,
        // 6: no status where it must be: malformed, 999
        r#"10.0.0.6 - - [10/Oct/2000:13:55:42 -0700] "GET / HTTP/1.1" OK 9 "-" "-" 1"#,
    ];
    let (b, dead, counts) = run(&mut p, &(lines.join("\r\n") + "\r\n"));
    assert_eq!(b.num_rows(), 7);
    assert_eq!(dead.total(), 1, "{:?}", dead.first_reasons());
    assert!(dead.first_reasons()[0].contains("status is not a 3-digit status"));
    assert_eq!(
        (0..7).map(|r| status(&b, r)).collect::<Vec<_>>(),
        [200, 408, 400, 200, 404, 200, 999]
    );
    assert_eq!(counts.odd, 4, "rows 1, 2, 4 (request) and 5 (cut short)");
    assert_eq!(text(&b, "host", 1).as_deref(), Some("2001:db8::1"));
    let bytes = b
        .column_by_name("bytes")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert!(bytes.is_null(1));
    assert_eq!(bytes.value(0), 2326);
    let us = b
        .column_by_name("time_us")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert_eq!(us.value(0), 1520);
    assert!(us.is_null(5), "the cut line has no %D");
    assert_eq!(text(&b, "request", 1).as_deref(), Some("-"));
    assert_eq!(text(&b, "method", 1), None);
    assert_eq!(text(&b, "path", 3).as_deref(), Some(r#"/q?x=\"y\""#));
    assert_eq!(text(&b, "user_agent", 3).as_deref(), Some(r#"a \"b\" c"#));
    assert_eq!(text(&b, "path", 4).as_deref(), Some("/a b"));
    assert_eq!(text(&b, "protocol", 4), None);
    assert_eq!(
        text(&b, "user_agent", 5).as_deref(),
        Some("Mozilla/5.0 (Win")
    );
    assert_eq!(text(&b, "user", 0).as_deref(), Some("frank"));
    assert_eq!(text(&b, "referer", 1), None, "`-` is null");
    let ts = b
        .column_by_name("timestamp")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(0), 971_211_336_000);
    assert_eq!(ts.value(6), 971_211_342_000, "the 999 row keeps its time");
    let off = b
        .column_by_name("utc_offset")
        .unwrap()
        .as_primitive::<Int16Type>();
    assert_eq!(off.value(0), -420);
}

#[test]
fn nginx_with_upstream_fields_and_iso_time() {
    let fmt = r#"$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent $request_time "$upstream_response_time" $upstream_addr $host"#;
    let mut p = parser(Dialect::Nginx, fmt);
    let input = "\
192.0.2.1 [2024-02-03T10:00:00+01:00] \"GET /api HTTP/2.0\" 502 157 0.503 \"0.250, 0.251 : 0.002\" 10.1.1.1:80, 10.1.1.2:80 example.org
192.0.2.2 [2024-02-03T10:00:01+01:00] \"GET /static HTTP/2.0\" 200 0 0.000 \"-\" - example.org
192.0.2.3 [2024-02-03T10:00:02+01:00] \"GET /x HTTP/2.0\" 200 0 0.000 \"0.1 : 0.2\" 10.1.1.3:80 : 10.1.1.4:80 example.org
";
    let (b, dead, _) = run(&mut p, input);
    assert_eq!(dead.total(), 0, "{:?}", dead.first_reasons());
    assert_eq!(status(&b, 0), 502);
    let up = b
        .column_by_name("upstream_response_time")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert!((up.value(0) - 0.503).abs() < 1e-9, "{}", up.value(0));
    assert!(up.is_null(1));
    assert_eq!(
        text(&b, "upstream_addr", 0).as_deref(),
        Some("10.1.1.1:80, 10.1.1.2:80")
    );
    assert_eq!(text(&b, "upstream_addr", 1), None);
    assert_eq!(
        text(&b, "upstream_addr", 2).as_deref(),
        Some("10.1.1.3:80 : 10.1.1.4:80")
    );
    assert_eq!(text(&b, "host", 2).as_deref(), Some("example.org"));
    let ts = b
        .column_by_name("time_iso8601")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(0), 1_706_950_800_000);
    let off = b
        .column_by_name("utc_offset")
        .unwrap()
        .as_primitive::<Int16Type>();
    assert_eq!(off.value(0), 60);
}

#[test]
fn projection_and_bad_names() {
    let cfg = TemplateConfig {
        log_format: "combined".into(),
        malformed_status: None,
    };
    let proj = vec!["timestamp".to_string(), "status".to_string()];
    let mut p = TemplateParser::new(Dialect::Apache, &cfg, Some(&proj)).unwrap();
    let (b, _, _) = run(
        &mut p,
        r#"h - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "-""#,
    );
    assert_eq!(b.num_columns(), 2);
    assert_eq!(status(&b, 0), 200);
    let err = TemplateParser::new(Dialect::Apache, &cfg, Some(&["nope".into()])).err();
    assert!(err.unwrap().to_string().contains("no field \"nope\""));
}

/// `combined` read as a template gives what the CLF parser gives, row for row, on the
/// apache_logs sample (10,000 real lines) and the NASA logs as `common`.
#[test]
fn presets_agree_with_the_clf_parser_on_real_logs() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
    for (file, preset) in [
        ("apache-combined/apache_logs", "combined"),
        ("nasa-http/NASA_access_log_Aug95.first20000.log", "common"),
    ] {
        let path = format!("{data}/{file}");
        let Ok(input) = std::fs::read(&path) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{path} is not here; CI must have ../shared"
            );
            eprintln!("skipping: {path} not found (../shared is optional outside CI)");
            continue;
        };
        let clf_cfg = crate::clf::ClfConfig {
            malformed_status: Some(999),
        };
        let mut clf = crate::clf::ClfParser::new(&clf_cfg, None).unwrap();
        let mut dead_clf = DeadLetters::new("c");
        clf.parse_chunk(&input, 1, &mut dead_clf);
        let want = clf.finish();
        let mut tpl = parser(Dialect::Apache, preset);
        let mut dead_tpl = DeadLetters::new("t");
        tpl.parse_chunk(&input, 1, &mut dead_tpl);
        let got = tpl.finish();
        assert_eq!(got.num_rows(), want.num_rows(), "{file}");
        assert_eq!(dead_tpl.total(), dead_clf.total(), "{file}");
        assert_eq!(tpl.take_counts().odd, clf.take_counts().odd, "{file}");
        for name in [
            "host",
            "timestamp",
            "status",
            "bytes",
            "method",
            "path",
            "request",
        ] {
            assert_eq!(
                got.column_by_name(name).unwrap().as_ref(),
                want.column_by_name(name).unwrap().as_ref(),
                "{file}: column {name}"
            );
        }
    }
}

proptest! {
    /// Whatever the request holds (no unescaped quote, no newline), time, status and bytes
    /// are recovered exactly, and the request is kept as sent.
    #[test]
    fn time_status_bytes_survive_any_request(
        req in proptest::collection::vec(prop_oneof![
            20 => any::<u8>().prop_filter("no quote or newline", |b| !matches!(b, b'"' | b'\n' | b'\\')),
            1 => Just(b'\\').prop_map(|_| 0u8),
        ], 0..60)
            .prop_map(|v| v.into_iter().flat_map(|b| if b == 0 { vec![b'\\', b'"'] } else { vec![b] }).collect::<Vec<u8>>()),
        status in 100u16..1000,
        bytes in proptest::option::of(0u64..u64::MAX),
        sec in 0u32..60,
        nginx in any::<bool>(),
    ) {
        let b = bytes.map_or("-".to_string(), |b| b.to_string());
        let mut line = format!("h - - [01/Feb/2024:13:14:{sec:02} +0000] \"").into_bytes();
        line.extend_from_slice(&req);
        line.extend_from_slice(format!("\" {status} {b} \"-\" \"ua\"").as_bytes());
        let (d, fmt) = if nginx { (Dialect::Nginx, "combined") } else { (Dialect::Apache, "combined") };
        let mut p = parser(d, fmt);
        let mut dead = DeadLetters::new("t");
        p.parse_chunk(&line, 1, &mut dead);
        let batch = p.finish();
        prop_assert_eq!(dead.total(), 0, "{:?}", dead.first_reasons());
        prop_assert_eq!(status_of(&batch), status);
        let bytes_col = if nginx { "body_bytes_sent" } else { "bytes" };
        let bc = batch.column_by_name(bytes_col).unwrap().as_primitive::<UInt64Type>();
        prop_assert_eq!((!bc.is_null(0)).then(|| bc.value(0)), bytes);
        let time_col = if nginx { "time_local" } else { "timestamp" };
        let ts = batch.column_by_name(time_col).unwrap().as_primitive::<TimestampMillisecondType>();
        let want = (weir_core::time::days_from_civil(2024, 2, 1) * 86_400 + 13 * 3600 + 14 * 60 + i64::from(sec)) * 1000;
        prop_assert_eq!(ts.value(0), want);
        prop_assert_eq!(text(&batch, "request", 0), Some(String::from_utf8_lossy(&req).into_owned()));
    }
}

fn status_of(b: &RecordBatch) -> u16 {
    status(b, 0)
}

#[test]
fn clf_shaped_templates_are_recognised() {
    let layout = |d, f| Template::compile(d, f).unwrap().clf_layout().is_some();
    assert!(layout(Dialect::Apache, "common"));
    assert!(layout(Dialect::Apache, "combined"));
    assert!(layout(Dialect::Apache, r#"%a %l %u %t "%r" %>s %b"#));
    assert!(!layout(Dialect::Apache, APACHE_D));
    assert!(!layout(Dialect::Apache, "vhost_combined"));
    assert!(!layout(Dialect::Apache, r#"%h %l %u %t "%r" %>s %B"#));
    assert!(!layout(Dialect::Nginx, "combined"));
}

/// A line built from pieces that real and broken CLF lines are made of: the fields, and
/// around them the bytes that end fields or make them odd (quotes, escapes, spaces, dashes).
fn clf_ish_line() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"h.example.com"[..]),
        Just(&b"-"[..]),
        Just(&b" "[..]),
        Just(&b"  "[..]),
        Just(&b"\""[..]),
        Just(&b"\\\""[..]),
        Just(&b"\\"[..]),
        Just(&b"[01/Jul/1995:00:00:01 -0400]"[..]),
        Just(&b"[01/Jul/1995:00:00:0x -0400]"[..]),
        Just(&b"GET /a HTTP/1.0"[..]),
        Just(&b"GET /a b HTTP/1.0"[..]),
        Just(&b"\x16\x03\x01"[..]),
        Just(&b"200"[..]),
        Just(&b"2000"[..]),
        Just(&b"1234"[..]),
        Just(&b"18446744073709551616"[..]),
        Just(&b"Mozilla/5.0 (X11)"[..]),
        Just(&b"\xff"[..]),
        Just(&b" \""[..]),
        Just(&b"\" \""[..]),
    ];
    let pieces = |n| proptest::collection::vec(piece.clone(), 0..n).prop_map(|v| v.concat());
    // Referer and agent, the agent closed, cut short or followed by more text.
    let combined = (
        pieces(3),
        pieces(3),
        prop_oneof![Just(&b"\""[..]), Just(&b""[..]), Just(&b"\" 5"[..])],
    )
        .prop_map(|(re, ua, end)| [&b" \""[..], &re, b"\" \"", &ua, end].concat());
    let tail = prop_oneof![Just(Vec::new()), combined, pieces(8),];
    (
        prop_oneof![Just(&b"h"[..]), Just(&b"-"[..]), Just(&b""[..])],
        proptest::collection::vec(piece.clone(), 0..5),
        prop_oneof![Just(&b"200"[..]), Just(&b"404"[..]), Just(&b"20"[..])],
        prop_oneof![
            Just(&b"123"[..]),
            Just(&b"-"[..]),
            Just(&b"x"[..]),
            Just(&b""[..])
        ],
        tail,
        any::<bool>(),
    )
        .prop_map(|(host, req, status, bytes, tail, framed)| {
            let mut l = Vec::new();
            if framed {
                l.extend_from_slice(host);
                l.extend_from_slice(b" - - [01/Jul/1995:00:00:01 -0400] \"");
                l.extend_from_slice(&req.concat());
                l.extend_from_slice(b"\" ");
                l.extend_from_slice(status);
                l.push(b' ');
                l.extend_from_slice(bytes);
            } else {
                l.extend_from_slice(&req.concat());
            }
            l.extend_from_slice(&tail);
            l
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    /// The oracle of the CLF-shaped fast path: on any line, the parser (fast path, falling
    /// back to the general reader) gives what the general reader alone gives.
    #[test]
    fn clf_fast_path_equals_the_general_reader(line in clf_ish_line(), combined in any::<bool>()) {
        let mut p = parser(Dialect::Apache, if combined { "combined" } else { "common" });
        prop_assert!(p.clf.is_some());
        let fast = p.read(&line).map(|odd| (odd, p.got.clone()));
        let mut got = vec![Got::Null; p.got.len()];
        let general = read_line(&p.template, &line, &mut TsCache::default(), &mut got)
            .map(|odd| (odd, got))
            .map_err(str::to_owned);
        prop_assert_eq!(fast, general, "{:?}", String::from_utf8_lossy(&line));
    }
}
