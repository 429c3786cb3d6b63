use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use weir_core::{ReadOutcome, Source};

use crate::ingest::{split, Ack, BodyKind, HttpSource, HttpSourceConfig, Rejected};
use crate::{Server, ServerConfig};

fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8(data.to_vec())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn ndjson_bad_lines_are_named_by_index_line_and_reason() {
    let body = b"{\"a\":1}\n\n  {\"a\":2}  \r\n[1,2]\n{\"a\":\n{\"b\":\"x\"}";
    let s = split(BodyKind::Lines, body, &[]);
    assert_eq!(lines(&s.data), ["{\"a\":1}", "{\"a\":2}", "{\"b\":\"x\"}"]);
    assert_eq!(s.records, 3);
    assert_eq!(
        s.rejected,
        vec![
            Rejected {
                index: 2,
                line: 4,
                error: "expected a JSON object, got an array".into()
            },
            Rejected {
                index: 3,
                line: 5,
                error: "EOF while parsing a value at column 5".into()
            },
        ]
    );
    assert!(s.fatal.is_none());
}

#[test]
fn a_json_body_is_an_object_an_array_or_objects_in_a_row() {
    let pretty = b"{\n  \"a\": 1,\n  \"b\": \"x y\"\n}\n";
    let s = split(BodyKind::Json, pretty, &[]);
    assert_eq!(lines(&s.data), ["{   \"a\": 1,   \"b\": \"x y\" }"]);

    let array = b"[{\"a\":1},\n 7,\n {\"a\":2}]";
    let s = split(BodyKind::Json, array, &[]);
    assert_eq!(lines(&s.data), ["{\"a\":1}", "{\"a\":2}"]);
    assert_eq!(s.rejected.len(), 1);
    assert_eq!((s.rejected[0].index, s.rejected[0].line), (1, 2));
    assert_eq!(s.rejected[0].error, "expected a JSON object, got a number");

    let row = b"{\"a\":1} {\"a\":2}\n{\"a\":3}";
    assert_eq!(split(BodyKind::Json, row, &[]).records, 3);

    // A syntax error in a row of objects stops the cut: what came before is good.
    let broken = b"{\"a\":1}\n{\"a\" 2}\n{\"a\":3}";
    let s = split(BodyKind::Json, broken, &[]);
    assert_eq!(s.records, 1);
    assert_eq!((s.rejected[0].index, s.rejected[0].line), (1, 2));
    assert!(s.rejected[0]
        .error
        .contains("the rest of the body was not read"));

    // A broken array is one problem with the whole body.
    let s = split(BodyKind::Json, b"[{\"a\":1},\n{\"a\" 2}]", &[]);
    assert_eq!(s.records, 0);
    assert!(
        s.fatal.as_deref().unwrap().contains("line 2"),
        "{:?}",
        s.fatal
    );

    assert_eq!(split(BodyKind::Json, b"  \n ", &[]).records, 0);
}

#[test]
fn the_received_field_goes_first_into_every_record() {
    let s = split(
        BodyKind::Lines,
        b"{\"a\":1}\n{}\n",
        &[("at", "2026-12-03T00:00:00.000Z")],
    );
    assert_eq!(
        lines(&s.data),
        [
            "{\"at\":\"2026-12-03T00:00:00.000Z\",\"a\":1}",
            "{\"at\":\"2026-12-03T00:00:00.000Z\"}"
        ]
    );
}

#[test]
fn content_types_weir_takes() {
    assert_eq!(
        BodyKind::of("application/json; charset=utf-8"),
        Some(BodyKind::Json)
    );
    assert_eq!(BodyKind::of("Application/X-NDJSON"), Some(BodyKind::Lines));
    assert_eq!(BodyKind::of("text/plain"), None);
    assert_eq!(BodyKind::of("application/x-www-form-urlencoded"), None);
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let open = ServerConfig {
        listen: "0.0.0.0:7878".into(),
        ..ServerConfig::default()
    };
    let errs = open.validate("server");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].to_string().contains("server.listen"), "{}", errs[0]);
    let with = ServerConfig {
        token: Some("s3cret".into()),
        ..open
    };
    assert!(with.validate("server").is_empty());
    let bad = ServerConfig {
        listen: "localhost".into(),
        ..ServerConfig::default()
    };
    assert!(bad.validate("server")[0]
        .to_string()
        .contains("127.0.0.1:7878"));
}

/// A server on a free port with one http source named `events`.
fn serve(cfg: HttpSourceConfig, server: ServerConfig) -> (Arc<Server>, HttpSource) {
    let server = Server::start(&ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..server
    })
    .unwrap();
    let source = HttpSource::new(&cfg, &server).unwrap();
    (server, source)
}

fn config(toml_text: &str) -> HttpSourceConfig {
    let mut c: HttpSourceConfig = toml::from_str(toml_text).unwrap();
    c.name_endpoint("source.events");
    c
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Posts `body` and returns the status, the Retry-After header and the body.
fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Option<String>, String) {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.body_mut().read_to_string().unwrap();
    (resp.status().as_u16(), retry, text)
}

const NDJSON: (&str, &str) = ("Content-Type", "application/x-ndjson");

/// Everything the source has now, as lines.
fn drain(src: &mut HttpSource) -> Vec<String> {
    let mut buf = Vec::new();
    while src.read(&mut buf, Duration::from_millis(50)).unwrap() == ReadOutcome::Data {}
    lines(&buf)
}

#[test]
fn posted_records_reach_the_source_and_bad_batches_do_not() {
    let (server, mut src) = serve(config(""), ServerConfig::default());
    let url = format!("{}/ingest/events", server.url());
    let (status, _, body) = post(&url, &[NDJSON], b"{\"a\":1}\n{\"a\":2}\n");
    assert_eq!((status, body.trim()), (200, "{\"accepted\":2}"));
    let (status, _, body) = post(
        &url,
        &[("Content-Type", "application/json")],
        b"[{\"a\":3}]",
    );
    assert_eq!((status, body.trim()), (200, "{\"accepted\":1}"));

    // One bad record refuses the batch, and says where.
    let (status, _, body) = post(&url, &[NDJSON], b"{\"a\":4}\n{\"a\":}\n");
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted"], 0);
    assert_eq!(v["rejected"][0]["line"], 2);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("record 1 (line 2): "));
    assert_eq!(drain(&mut src), ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);

    // Partial acceptance: the good ones go in, the answer lists the bad.
    let (status, _, body) = post(
        &format!("{url}?partial=true"),
        &[NDJSON],
        b"{\"a\":5}\nnope\n{\"a\":6}\n",
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected_count"], 1);
    assert_eq!(v["rejected"][0]["index"], 1);
    assert_eq!(drain(&mut src), ["{\"a\":5}", "{\"a\":6}"]);

    // Wrong content type, unknown endpoint, unknown page.
    let (status, _, body) = post(
        &url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"a=1",
    );
    assert_eq!(status, 415);
    assert!(body.contains("application/x-ndjson"), "{body}");
    let (status, _, body) = post(&format!("{}/ingest/nope", server.url()), &[NDJSON], b"{}");
    assert_eq!(status, 404);
    assert!(body.contains("/ingest/events"), "{body}");
    let mut get = agent().get(&url).call().unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert!(get.body_mut().read_to_string().unwrap().contains("POST"));
    let mut health = agent()
        .get(format!("{}/health", server.url()))
        .call()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.body_mut().read_to_string().unwrap().trim(),
        "{\"status\":\"ok\"}"
    );
    assert!(drain(&mut src).is_empty());
}

#[test]
fn tokens_are_checked_per_endpoint_or_server() {
    let (server, mut src) = serve(
        config(""),
        ServerConfig {
            token: Some("server-token".into()),
            ..ServerConfig::default()
        },
    );
    let url = format!("{}/ingest/events", server.url());
    let (status, _, body) = post(&url, &[NDJSON], b"{}");
    assert_eq!(status, 401);
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, _, _) = post(&url, &[NDJSON, ("Authorization", "Bearer wrong")], b"{}");
    assert_eq!(status, 401);
    let (status, _, _) = post(
        &url,
        &[NDJSON, ("Authorization", "bearer server-token")],
        b"{}",
    );
    assert_eq!(status, 200);
    // Unknown endpoints are not listed to strangers.
    let (status, _, body) = post(&format!("{}/ingest/x", server.url()), &[NDJSON], b"{}");
    assert_eq!(status, 401, "{body}");
    assert_eq!(drain(&mut src).len(), 1);
    drop(src);

    let (server, _src) = serve(config("token = \"own\""), ServerConfig::default());
    let url = format!("{}/ingest/events", server.url());
    assert_eq!(post(&url, &[NDJSON], b"{}").0, 401);
    assert_eq!(
        post(&url, &[NDJSON, ("Authorization", "Bearer own")], b"{}").0,
        200
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn bodies_are_bounded_before_and_after_gzip() {
    let (server, mut src) = serve(
        config("max_body = \"64KiB\"\nqueue = \"64KiB\""),
        ServerConfig::default(),
    );
    let url = format!("{}/ingest/events", server.url());
    let gz = ("Content-Encoding", "gzip");
    let (status, _, body) = post(&url, &[NDJSON, gz], &gzip(b"{\"a\":1}\n{\"a\":2}\n"));
    assert_eq!((status, body.trim()), (200, "{\"accepted\":2}"));

    // A body over the limit, and a small body that inflates over it (a gzip bomb).
    let big = vec![b' '; 70 << 10];
    let (status, _, body) = post(&url, &[NDJSON], &big);
    assert_eq!(status, 413, "{body}");
    let bomb = gzip(&vec![b' '; 32 << 20]);
    assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
    let (status, _, body) = post(&url, &[NDJSON, gz], &bomb);
    assert_eq!(status, 413);
    assert!(body.contains("decompresses"), "{body}");
    let (status, _, body) = post(&url, &[NDJSON, gz], b"not gzip at all");
    assert_eq!(status, 400);
    assert!(body.contains("gzip"), "{body}");
    let (status, _, _) = post(&url, &[NDJSON, ("Content-Encoding", "br")], b"{}");
    assert_eq!(status, 415);
    assert_eq!(drain(&mut src), ["{\"a\":1}", "{\"a\":2}"]);
}

#[test]
fn a_full_queue_and_the_rate_limit_answer_429_with_retry_after() {
    let (server, mut src) = serve(
        config("max_body = \"1KiB\"\nqueue = \"1KiB\""),
        ServerConfig::default(),
    );
    let url = format!("{}/ingest/events", server.url());
    let record = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(90));
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..30 {
        match post(&url, &[NDJSON], record.as_bytes()) {
            (200, _, _) => accepted += 1,
            other => {
                refused = Some(other);
                break;
            }
        }
    }
    let (status, retry, _) = refused.expect("the queue fills");
    assert_eq!((status, retry.as_deref()), (429, Some("1")));
    assert_eq!(accepted, 1024 / record.len());
    // Once the pipeline takes what waits, requests go in again; nothing accepted was lost.
    assert_eq!(drain(&mut src).len(), accepted);
    assert_eq!(post(&url, &[NDJSON], record.as_bytes()).0, 200);
    drop(src);

    // One record per second: the second request would need a second's refill to pass.
    let (server, _src) = serve(config("rate_limit = 1"), ServerConfig::default());
    let url = format!("{}/ingest/events", server.url());
    assert_eq!(post(&url, &[NDJSON], b"{}\n").0, 200);
    let (status, retry, body) = post(&url, &[NDJSON], b"{}\n");
    assert_eq!((status, retry.as_deref()), (429, Some("1")), "{body}");
    assert!(body.contains("rate_limit"), "{body}");
}

#[test]
fn ack_checkpoint_answers_once_the_batch_is_committed() {
    let mut cfg = config("");
    cfg.ack = Ack::Checkpoint;
    let (server, mut src) = serve(cfg, ServerConfig::default());
    let url = format!("{}/ingest/events", server.url());
    let client = std::thread::spawn(move || post(&url, &[NDJSON], b"{\"a\":1}\n"));
    let mut buf = Vec::new();
    while src.read(&mut buf, Duration::from_millis(50)).unwrap() != ReadOutcome::Data {}
    std::thread::sleep(Duration::from_millis(200));
    assert!(!client.is_finished(), "answered before the checkpoint");
    // A checkpoint taken before the batch does not answer it.
    src.commit(&src.position_before(buf.len() as u64)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!client.is_finished(), "answered by an earlier checkpoint");
    src.commit(&src.position()).unwrap();
    assert_eq!(client.join().unwrap().0, 200);

    // A run that stops first tells the waiting client to send again.
    let url = format!("{}/ingest/events", server.url());
    let client = std::thread::spawn(move || post(&url, &[NDJSON], b"{\"a\":2}\n"));
    while src.read(&mut buf, Duration::from_millis(50)).unwrap() != ReadOutcome::Data {}
    drop(src);
    let (status, _, body) = client.join().unwrap();
    assert_eq!(status, 503, "{body}");
}

#[test]
fn the_source_ends_when_idle_and_refuses_what_comes_after() {
    let (server, mut src) = serve(
        config("stop_when_idle = \"200ms\""),
        ServerConfig::default(),
    );
    let url = format!("{}/ingest/events", server.url());
    assert_eq!(post(&url, &[NDJSON], b"{}\n").0, 200);
    let mut buf = Vec::new();
    let mut outcomes = Vec::new();
    loop {
        let o = src.read(&mut buf, Duration::from_millis(50)).unwrap();
        outcomes.push(o);
        if o == ReadOutcome::Eof {
            break;
        }
    }
    assert_eq!(outcomes[0], ReadOutcome::Data);
    assert_eq!(post(&url, &[NDJSON], b"{}\n").0, 503);
}

#[test]
fn a_stopping_source_refuses_new_requests_and_hands_out_what_it_accepted() {
    let (server, mut src) = serve(config(""), ServerConfig::default());
    let url = format!("{}/ingest/events", server.url());
    for i in 0..3 {
        let body = format!("{{\"n\":{i}}}\n");
        assert_eq!(post(&url, &[NDJSON], body.as_bytes()).0, 200);
    }
    assert!(
        src.stopping(),
        "accepted records are the pipeline's to deliver"
    );
    let (status, _, body) = post(&url, &[NDJSON], b"{\"n\":3}\n");
    assert_eq!(status, 503, "{body}");
    let mut buf = Vec::new();
    let mut outcomes = Vec::new();
    loop {
        let o = src.read(&mut buf, Duration::from_secs(5)).unwrap();
        outcomes.push(o);
        if o == ReadOutcome::Eof {
            break;
        }
    }
    assert_eq!(lines(&buf), ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
    // Nothing waits for a request that cannot come: the end follows the last batch at once.
    assert_eq!(outcomes.last(), Some(&ReadOutcome::Eof));
    assert!(outcomes.len() <= 4, "{outcomes:?}");
}
