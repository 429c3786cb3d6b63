//! Against the NATS server with JetStream on 127.0.0.1:4222 (every machine of this project
//! runs one). Each test makes its own stream and deletes it after.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use weir_core::{ReadOutcome, Sink, Source};

use crate::sink::{NatsSink, NatsSinkConfig};
use crate::source::{NatsSource, NatsSourceConfig, Start};
use crate::DEFAULT_URL;
use weir_core::Framing;

/// A stream of this test's own, deleted when dropped.
struct TestStream(weir_testkit::nats::TestStream);

impl std::ops::Deref for TestStream {
    type Target = weir_testkit::nats::TestStream;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestStream {
    fn new(what: &str) -> TestStream {
        TestStream(weir_testkit::nats::TestStream::new(what))
    }

    fn source(&self, consumer: &str) -> NatsSourceConfig {
        NatsSourceConfig {
            url: DEFAULT_URL.into(),
            stream: self.name.clone(),
            subject: None,
            consumer: Some(consumer.into()),
            start: Start::All,
            framing: Framing::Message,
            batch: 7,
            ack_wait: weir_core::config::Duration::from_ms(60_000),
            subject_field: None,
            published_field: None,
            stop_when_caught_up: true,
        }
    }
}

fn rt() -> &'static tokio::runtime::Runtime {
    weir_core::io::runtime()
}

/// Reads until `n` lines arrived or the source ends; the lines.
fn read_lines(src: &mut NatsSource, n: usize) -> (Vec<String>, ReadOutcome) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = ReadOutcome::Idle;
    while buf.iter().filter(|b| **b == b'\n').count() < n && Instant::now() < deadline {
        last = src.read(&mut buf, Duration::from_millis(200)).unwrap();
        if last == ReadOutcome::Eof {
            break;
        }
    }
    let text = String::from_utf8(buf).unwrap();
    (text.lines().map(str::to_string).collect(), last)
}

fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{{\"n\":{i}}}")).collect()
}

#[test]
fn reads_in_order_frames_messages_and_ends_when_caught_up() {
    let s = TestStream::new("order");
    let mut payloads = numbered(0..50);
    payloads[3] = "{\n  \"n\": 3\n}".into(); // pretty-printed: still one record
    s.publish(payloads);
    let mut src = NatsSource::new(&s.source("reader"));
    let (lines, _) = read_lines(&mut src, 50);
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[3], "{   \"n\": 3 }");
    assert_eq!(lines[49], "{\"n\":49}");
    assert_eq!(src.position().splits[0].position, 50);
    let (more, end) = read_lines(&mut src, 1);
    assert!(more.is_empty());
    assert_eq!(end, ReadOutcome::Eof, "caught up: the input ends");
}

#[test]
fn the_subject_can_be_a_field_of_each_record() {
    let s = TestStream::new("subjectfield");
    s.publish(numbered(0..2));
    let mut cfg = s.source("subj");
    cfg.subject_field = Some("subject".into());
    let mut src = NatsSource::new(&cfg);
    let (lines, _) = read_lines(&mut src, 2);
    let want = [0, 1].map(|n| format!("{{\"subject\":\"{}\",\"n\":{n}}}", s.subject));
    assert_eq!(lines, want);

    // And the time the server stored it, as an event time for payloads without one.
    let before = std::time::SystemTime::now();
    s.publish(["{}".to_string()]);
    cfg.published_field = Some("published".into());
    cfg.consumer = Some("subj2".into());
    let mut src = NatsSource::new(&cfg);
    let (lines, _) = read_lines(&mut src, 3);
    let last: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    let at = last["published"].as_str().unwrap();
    let ms = weir_core::time::parse_rfc3339_ms(at).unwrap();
    let since = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((ms - since).abs() < 5_000, "{at}");
}

#[test]
fn lines_framing_splits_a_message_into_records() {
    let s = TestStream::new("lines");
    s.publish(["a\nb\n".to_string(), "c".to_string()]);
    let mut cfg = s.source("lines");
    cfg.framing = Framing::Lines;
    let mut src = NatsSource::new(&cfg);
    let (lines, _) = read_lines(&mut src, 3);
    assert_eq!(lines, ["a", "b", "c"]);
}

#[test]
fn acknowledges_only_what_is_committed_and_resumes_exactly_after_a_checkpoint() {
    let s = TestStream::new("resume");
    s.publish(numbered(0..100));
    let mut src = NatsSource::new(&s.source("resumer"));
    let (first, _) = read_lines(&mut src, 30);
    let checkpoint = src.position();
    let at = checkpoint.splits[0].position;
    assert!(at >= 30 && first.len() as u64 == at, "{at} {}", first.len());
    // Read on past the checkpoint, then "crash" before the next one: nothing acknowledged yet.
    let (_, _) = read_lines(&mut src, 20);
    assert_eq!(
        s.ack_floor("resumer"),
        0,
        "nothing acknowledged before a commit"
    );
    src.commit(&checkpoint).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.ack_floor("resumer") < at && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.ack_floor("resumer"),
        at,
        "the commit acknowledges up to the checkpoint"
    );
    drop(src);

    // A new run restores the checkpoint: it continues right after it, no gap, no repeat.
    let mut again = NatsSource::new(&s.source("resumer"));
    again.seek(&checkpoint).unwrap();
    let (rest, end) = read_lines(&mut again, 1000);
    assert_eq!(end, ReadOutcome::Eof);
    let all: Vec<String> = first.into_iter().chain(rest).collect();
    assert_eq!(all, numbered(0..100));
}

#[test]
fn a_fresh_run_goes_on_from_the_acknowledged_floor() {
    let s = TestStream::new("floor");
    s.publish(numbered(0..40));
    let mut src = NatsSource::new(&s.source("floor"));
    let (first, _) = read_lines(&mut src, 10);
    let pos = src.position();
    src.commit(&pos).unwrap();
    drop(src);
    // No checkpoint: the durable consumer remembers where weir got to.
    let mut again = NatsSource::new(&s.source("floor"));
    let (rest, _) = read_lines(&mut again, 1000);
    assert_eq!(first.len() + rest.len(), 40);
    assert_eq!(rest[0], format!("{{\"n\":{}}}", first.len()));
}

#[test]
fn refuses_a_consumer_weir_did_not_create_and_a_missing_stream() {
    let s = TestStream::new("foreign");
    rt().block_on(async {
        let stream = s.js.get_stream(&s.name).await.unwrap();
        stream
            .create_consumer(pull::Config {
                durable_name: Some("theirs".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let mut src = NatsSource::new(&s.source("theirs"));
    let err = src
        .read(&mut Vec::new(), Duration::from_millis(100))
        .unwrap_err();
    assert!(err.to_string().contains("weir did not create it"), "{err}");
    // The foreign consumer is still there.
    assert_eq!(s.ack_floor("theirs"), 0);

    let mut cfg = s.source("x");
    cfg.stream = format!("{}_MISSING", s.name);
    let err = NatsSource::new(&cfg)
        .read(&mut Vec::new(), Duration::from_millis(100))
        .unwrap_err();
    assert!(
        err.to_string().contains("the stream does not exist"),
        "{err}"
    );
}

#[test]
fn a_server_that_is_down_is_retried_not_fatal() {
    let s = TestStream::new("down");
    let mut cfg = s.source("down");
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.url = format!("nats://127.0.0.1:{port}");
    let mut src = NatsSource::new(&cfg);
    for _ in 0..3 {
        let got = src
            .read(&mut Vec::new(), Duration::from_millis(50))
            .unwrap();
        assert_eq!(got, ReadOutcome::Idle);
    }
}

fn batch(ns: std::ops::Range<i64>) -> arrow_array::RecordBatch {
    let col = arrow_array::Int64Array::from_iter_values(ns);
    arrow_array::RecordBatch::try_from_iter([("n", std::sync::Arc::new(col) as _)]).unwrap()
}

#[test]
fn the_sink_publishes_rows_and_a_replay_after_a_restore_is_deduplicated() {
    let s = TestStream::new("sink");
    let cfg = NatsSinkConfig {
        url: DEFAULT_URL.into(),
        subject: s.subject.clone(),
        jetstream: true,
    };
    let mut sink = NatsSink::new(&cfg);
    sink.recover(None).unwrap();
    sink.write(&batch(0..5)).unwrap();
    let state = sink.pre_commit(1).unwrap();
    sink.write(&batch(5..10)).unwrap();
    sink.flush().unwrap();
    drop(sink); // a crash after rows 5..10 were published, before the next checkpoint

    let mut resumed = NatsSink::new(&cfg);
    resumed.recover(Some(&state)).unwrap();
    resumed.write(&batch(5..12)).unwrap();
    resumed.finish().unwrap();
    assert!(
        resumed.summary().unwrap().starts_with("5 rows"),
        "{:?}",
        resumed.summary()
    );
    let want: Vec<String> = (0..12).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(s.contents(), want);
}

#[test]
fn the_sink_refuses_a_subject_no_stream_captures() {
    let cfg = NatsSinkConfig {
        url: DEFAULT_URL.into(),
        subject: format!("weirtest.nobody.{}", std::process::id()),
        jetstream: true,
    };
    let mut sink = NatsSink::new(&cfg);
    sink.write(&batch(0..1)).unwrap();
    let err = sink.flush().unwrap_err();
    assert!(
        err.to_string().contains("no JetStream stream captures"),
        "{err}"
    );
}

#[test]
fn a_position_before_unused_bytes_names_the_last_message_wholly_used() {
    let s = TestStream::new("before");
    s.publish(numbered(0..10));
    let mut src = NatsSource::new(&s.source("before"));
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while buf.iter().filter(|b| **b == b'\n').count() < 10 && Instant::now() < deadline {
        src.read(&mut buf, Duration::from_millis(200)).unwrap();
    }
    let len = |r: std::ops::Range<u32>| numbered(r).iter().map(|l| l.len() as u64 + 1).sum();
    let at = |unread: u64| src.position_before(unread).splits[0].position;
    assert_eq!(at(0), 10);
    assert_eq!(at(len(7..10)), 7, "three whole messages unused");
    assert_eq!(at(len(7..10) + 2), 6, "and part of a fourth");
    assert_eq!(at(len(0..10)), 0, "nothing used");
    // The node hands back the last three unused: the position before them stays right.
    let keep = len(7..10) as usize;
    let mut rest = buf.split_off(buf.len() - keep);
    src.read(&mut rest, Duration::from_millis(50)).unwrap();
    assert_eq!(src.position_before(rest.len() as u64).splits[0].position, 7);
}

#[test]
fn through_an_outage_mid_stream_nothing_is_lost_or_read_twice() {
    let s = TestStream::new("outage");
    s.publish(numbered(0..300));
    let proxy = weir_testkit::TcpProxy::start("127.0.0.1:4222");
    let mut cfg = s.source("outage");
    cfg.url = format!("nats://{}", proxy.addr());
    cfg.stop_when_caught_up = false;
    let mut src = NatsSource::new(&cfg);
    let (mut got, _) = read_lines(&mut src, 100);
    assert!(got.len() >= 100);
    proxy.cut();
    // Down: reads come back empty, with warnings, not errors; publishing goes on meanwhile.
    let mut buf = Vec::new();
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(800) {
        src.read(&mut buf, Duration::from_millis(100)).unwrap();
    }
    s.publish(numbered(300..400));
    proxy.restore();
    let text = String::from_utf8(buf).unwrap();
    got.extend(text.lines().map(str::to_string));
    let need = 400 - got.len();
    let (rest, _) = read_lines(&mut src, need);
    got.extend(rest);
    assert_eq!(got, numbered(0..400), "in order, none lost, none twice");
}
