//! Against the Mosquitto broker on 127.0.0.1:1883 (every machine of this project runs one).
//! Each test uses topics and client ids of its own and discards its sessions after.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use weir_core::{Framing, ReadOutcome, Sink, Source};

use crate::sink::{MqttSink, MqttSinkConfig};
use crate::source::{MqttSource, MqttSourceConfig};

/// Topic and client ids of one test; its broker sessions are discarded when dropped.
struct Names {
    topic: String,
    clients: Vec<String>,
}

impl Names {
    fn new(what: &str) -> Names {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Names {
            topic: format!("weirtest/{}/{n}/{what}", std::process::id()),
            clients: Vec::new(),
        }
    }

    fn client(&mut self, role: &str) -> String {
        let id = format!(
            "weirtest-{}-{role}-{}",
            std::process::id(),
            self.topic.len()
        );
        self.clients.push(id.clone());
        id
    }

    fn source(&mut self, role: &str) -> MqttSourceConfig {
        MqttSourceConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            topics: vec![format!("{}/#", self.topic)],
            qos: 1,
            client_id: Some(self.client(role)),
            clean_session: false,
            username: None,
            password: None,
            framing: Framing::Message,
            topic_field: None,
            stop_when_idle: None,
        }
    }

    fn sink(&mut self) -> MqttSinkConfig {
        MqttSinkConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            topic: format!("{}/rows", self.topic),
            qos: 1,
            retain: false,
            client_id: Some(self.client("sink")),
            username: None,
            password: None,
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        // A clean session with the same id discards what the broker kept for it.
        for id in &self.clients {
            let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", 1883);
            opts.set_clean_session(true);
            let rt = weir_core::io::runtime();
            let _in = rt.enter();
            let (client, mut events) = rumqttc::AsyncClient::new(opts, 8);
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), events.poll()).await;
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
            });
        }
    }
}

fn batch(ns: std::ops::Range<i64>) -> arrow_array::RecordBatch {
    let col = arrow_array::Int64Array::from_iter_values(ns);
    arrow_array::RecordBatch::try_from_iter([("n", std::sync::Arc::new(col) as _)]).unwrap()
}

/// Reads until `n` lines arrived (or 20 s passed), committing what was read after each read
/// when `commit`.
fn read_lines(src: &mut MqttSource, n: usize, commit: bool) -> Vec<String> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while buf.iter().filter(|b| **b == b'\n').count() < n && Instant::now() < deadline {
        src.read(&mut buf, Duration::from_millis(100)).unwrap();
        if commit {
            let pos = src.position();
            src.commit(&pos).unwrap();
        }
    }
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Subscribes: the first reads connect the source and make its session.
fn subscribe(src: &mut MqttSource) {
    let mut buf = Vec::new();
    for _ in 0..5 {
        src.read(&mut buf, Duration::from_millis(100)).unwrap();
    }
    assert!(buf.is_empty());
}

fn numbered(r: std::ops::Range<i64>) -> Vec<String> {
    r.map(|n| format!("{{\"n\":{n}}}")).collect()
}

#[test]
fn rows_published_by_the_sink_arrive_in_order_at_the_source() {
    let mut names = Names::new("roundtrip");
    let mut src = MqttSource::new(&names.source("src"));
    subscribe(&mut src);
    let mut sink = MqttSink::new(&names.sink());
    sink.write(&batch(0..300)).unwrap();
    sink.flush().unwrap();
    let lines = read_lines(&mut src, 300, true);
    assert_eq!(lines, numbered(0..300));
}

#[test]
fn the_topic_can_be_a_field_of_each_record() {
    let mut names = Names::new("topicfield");
    let mut cfg = names.source("src");
    cfg.topic_field = Some("topic".into());
    let mut src = MqttSource::new(&cfg);
    subscribe(&mut src);
    let mut sink = MqttSink::new(&names.sink());
    sink.write(&batch(0..2)).unwrap();
    sink.flush().unwrap();
    let lines = read_lines(&mut src, 2, true);
    let topic = format!("{}/rows", names.topic);
    assert_eq!(
        lines,
        [0, 1].map(|n| format!("{{\"topic\":\"{topic}\",\"n\":{n}}}"))
    );
}

#[test]
fn what_was_not_acknowledged_comes_again_after_a_crash_and_nothing_is_lost() {
    let mut names = Names::new("crash");
    let cfg = names.source("src");
    let mut src = MqttSource::new(&cfg);
    subscribe(&mut src);
    let mut sink = MqttSink::new(&names.sink());
    sink.write(&batch(0..100)).unwrap();
    sink.flush().unwrap();
    // Read some, acknowledge only the first 10 (a checkpoint covering them), then "crash".
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while buf.iter().filter(|b| **b == b'\n').count() < 15 && Instant::now() < deadline {
        src.read(&mut buf, Duration::from_millis(100)).unwrap();
    }
    let read: Vec<String> = String::from_utf8(buf.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(read.len() >= 15, "{}", read.len());
    let first_ten: usize = read[..10].iter().map(|l| l.len() + 1).sum();
    let checkpoint = src.position_before((buf.len() - first_ten) as u64);
    assert_eq!(checkpoint.splits[0].position, 10);
    src.commit(&checkpoint).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(src);
    // More rows while the source is away: the broker keeps them for its session.
    sink.write(&batch(100..150)).unwrap();
    sink.flush().unwrap();

    let mut again = MqttSource::new(&cfg);
    again.seek(&checkpoint).unwrap();
    let rest = read_lines(&mut again, 140, true);
    let mut all: Vec<String> = read[..10].to_vec();
    all.extend(rest);
    let mut sorted = all.clone();
    sorted.sort_by_key(|l| l[5..l.len() - 1].parse::<i64>().unwrap());
    sorted.dedup();
    assert_eq!(sorted, numbered(0..150), "every row, none lost");
    assert_eq!(
        all.len(),
        150,
        "acknowledged rows do not come again: {all:?}"
    );
}

#[test]
fn an_idle_source_can_end_and_a_broker_that_is_down_is_not_fatal() {
    let mut names = Names::new("idle");
    let mut cfg = names.source("src");
    cfg.stop_when_idle = Some(weir_core::config::Duration::from_ms(300));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.port = port; // nothing listens there
    let mut src = MqttSource::new(&cfg);
    let mut buf = Vec::new();
    let started = Instant::now();
    let end = loop {
        match src.read(&mut buf, Duration::from_millis(50)).unwrap() {
            ReadOutcome::Eof => break started.elapsed(),
            _ => assert!(started.elapsed() < Duration::from_secs(5)),
        }
    };
    assert!(end >= Duration::from_millis(300), "{end:?}");
}

#[test]
fn topic_filters_and_options_are_checked() {
    let mut names = Names::new("check");
    let mut cfg = names.source("src");
    cfg.topics = vec!["a/#/b".into(), "a+/b".into(), "ok/+/x/#".into()];
    cfg.qos = 2;
    let errs: Vec<String> = cfg
        .validate("source.s")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("source.s.topics[0]: "), "{errs:?}");
    assert!(errs[1].contains("`+` must be a whole level"), "{errs:?}");
    assert!(errs[2].starts_with("source.s.qos"), "{errs:?}");
    let mut sink = names.sink();
    sink.topic = "alerts/#".into();
    assert_eq!(sink.validate("sink.s").len(), 1);
}

#[test]
fn through_a_broker_outage_mid_stream_nothing_is_lost() {
    let mut names = Names::new("outage");
    let proxy = weir_testkit::TcpProxy::start("127.0.0.1:1883");
    let mut cfg = names.source("src");
    cfg.port = proxy.addr().port();
    let mut src = MqttSource::new(&cfg);
    subscribe(&mut src);
    let mut sink = MqttSink::new(&names.sink());
    sink.write(&batch(0..200)).unwrap();
    sink.flush().unwrap();
    let mut got = read_lines(&mut src, 50, true);
    proxy.cut();
    let mut buf = Vec::new();
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(800) {
        src.read(&mut buf, Duration::from_millis(100)).unwrap();
    }
    sink.write(&batch(200..300)).unwrap();
    sink.flush().unwrap();
    proxy.restore();
    got.extend(String::from_utf8(buf).unwrap().lines().map(str::to_string));
    let deadline = Instant::now() + Duration::from_secs(30);
    let distinct = |got: &[String]| got.iter().collect::<std::collections::BTreeSet<_>>().len();
    while distinct(&got) < 300 && Instant::now() < deadline {
        got.extend(read_lines(&mut src, 1, true));
    }
    let mut sorted = got.clone();
    sorted.sort_by_key(|l| l[5..l.len() - 1].parse::<i64>().unwrap());
    sorted.dedup();
    assert_eq!(sorted, numbered(0..300), "every row after the outage");
}
