//! Against the RabbitMQ on 127.0.0.1:5672 (guest/guest). Each test declares queues (and an
//! exchange) of its own, with unique names, and deletes them at the end; outages go through
//! a loopback proxy the test cuts, never the machine's server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use weir_core::Sink;

use super::sink::{AmqpSink, AmqpSinkConfig};

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("weir-test-{what}-{}-{nanos:x}", std::process::id())
}

/// A channel of the test's own.
struct Broker {
    _conn: Connection,
    ch: Channel,
}

impl Broker {
    fn new() -> Broker {
        weir_core::io::runtime().block_on(async {
            let conn = Connection::connect(BROKER, ConnectionProperties::default())
                .await
                .expect("RabbitMQ on 127.0.0.1:5672 (guest/guest)");
            let ch = conn.create_channel().await.unwrap();
            Broker { _conn: conn, ch }
        })
    }

    fn queue(&self, name: &str) {
        weir_core::io::runtime().block_on(async {
            self.ch
                .queue_declare(
                    name.into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        });
    }

    /// Every message now in `queue`: (routing key, message id, delivery mode, body).
    fn drain(&self, queue: &str) -> Vec<(String, String, u8, String)> {
        use futures_util::StreamExt;
        weir_core::io::runtime().block_on(async {
            let mut consumer = self
                .ch
                .basic_consume(
                    queue.into(),
                    queue.into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            // Everything was confirmed before: a pause means the queue is empty.
            while let Ok(Some(d)) =
                tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
            {
                let d = d.unwrap();
                out.push((
                    d.routing_key.to_string(),
                    d.properties
                        .message_id()
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    d.properties.delivery_mode().unwrap_or(0),
                    String::from_utf8(d.data).unwrap(),
                ));
            }
            out
        })
    }

    fn delete(&self, queue: &str) {
        weir_core::io::runtime().block_on(async {
            let _ = self
                .ch
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await;
        });
    }
}

fn rows(from: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("ip", DataType::Utf8, true),
    ]));
    let ns: Vec<i64> = (from..from + n).collect();
    let ips: Vec<Option<String>> = ns
        .iter()
        .map(|i| (i % 5 != 4).then(|| format!("10.0.0.{}", i % 3)))
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ns)),
            Arc::new(StringArray::from(ips)),
        ],
    )
    .unwrap()
}

fn config(toml_text: &str) -> AmqpSinkConfig {
    let c: AmqpSinkConfig = toml::from_str(toml_text).unwrap();
    assert!(
        c.validate("sink.out").is_empty(),
        "{:?}",
        c.validate("sink.out")
    );
    c
}

/// The `n` of every JSON body.
fn numbers(msgs: &[(String, String, u8, String)]) -> Vec<i64> {
    msgs.iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.3).unwrap();
            v["n"].as_i64().unwrap()
        })
        .collect()
}

#[test]
fn rows_arrive_in_order_as_persistent_json_with_ids() {
    let broker = Broker::new();
    let q = unique("order");
    broker.queue(&q);
    let mut sink = AmqpSink::new(&config(&format!("routing_key = \"{q}\"")));
    for b in 0..5 {
        sink.write(&rows(b * 100, 100)).unwrap();
    }
    sink.flush().unwrap();
    let got = broker.drain(&q);
    broker.delete(&q);
    assert_eq!(numbers(&got), (0..500).collect::<Vec<_>>());
    assert!(got.iter().all(|m| m.2 == 2), "persistent");
    assert_eq!(got[1].3, r#"{"n":1,"ip":"10.0.0.1"}"#);
    assert_eq!(got[4].3, r#"{"n":4,"ip":null}"#);
    let ids: std::collections::HashSet<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), 500, "a message id per row");
    assert!(
        got[7].1.ends_with("-8"),
        "ids count rows from 1: {}",
        got[7].1
    );
}

#[test]
fn the_routing_key_template_routes_by_field() {
    let broker = Broker::new();
    let x = unique("x");
    let (q_all, q_one) = (unique("all"), unique("one"));
    weir_core::io::runtime().block_on(async {
        broker
            .ch
            .exchange_declare(
                x.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    });
    for (q, pattern) in [(&q_all, "alerts.#"), (&q_one, "alerts.10.0.0.1")] {
        broker.queue(q);
        weir_core::io::runtime().block_on(async {
            broker
                .ch
                .queue_bind(
                    q.as_str().into(),
                    x.as_str().into(),
                    pattern.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        });
    }
    let cfg = config(&format!(
        "exchange = \"{x}\"\nrouting_key = \"alerts.{{ip}}\"\npersistent = false"
    ));
    let schema = rows(0, 1).schema();
    assert!(cfg.check_schema("sink.out", &schema).is_empty());
    let mut sink = AmqpSink::new(&cfg);
    sink.write(&rows(0, 10)).unwrap();
    sink.flush().unwrap();
    let all = broker.drain(&q_all);
    let one = broker.drain(&q_one);
    broker.delete(&q_all);
    broker.delete(&q_one);
    weir_core::io::runtime().block_on(async {
        let _ = broker
            .ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    });
    assert_eq!(all.len(), 10);
    assert_eq!(all[4].0, "alerts.", "a null is empty");
    assert!(all.iter().all(|m| m.2 == 1), "not persistent");
    assert_eq!(numbers(&one), [1, 7]);
}

#[test]
fn configs_are_checked_with_their_key_paths() {
    let bad = AmqpSinkConfig {
        url: "http://x".into(),
        ..config("routing_key = \"{a}.{{b}}\"")
    };
    let errs = bad.validate("sink.out");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].to_string().contains("sink.out.url"), "{}", errs[0]);
    for key in ["{", "a}", "{}", ""] {
        let c = AmqpSinkConfig {
            routing_key: key.into(),
            ..config("routing_key = \"q\"")
        };
        let errs = c.validate("sink.out");
        assert_eq!(errs.len(), 1, "{key:?}");
        assert!(errs[0].to_string().contains("routing_key"), "{}", errs[0]);
    }
    let c = config("routing_key = \"alerts.{target}\"");
    let errs = c.check_schema("sink.out", &rows(0, 1).schema());
    assert!(
        errs[0].to_string().contains("no field \"target\""),
        "{}",
        errs[0]
    );
}

#[test]
fn through_an_outage_nothing_is_lost_and_repeats_are_only_the_unconfirmed() {
    let broker = Broker::new();
    let q = unique("outage");
    broker.queue(&q);
    let proxy = weir_testkit::TcpProxy::start("127.0.0.1:5672");
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let mut sink = AmqpSink::new(&config(&format!(
        "url = \"{url}\"\nrouting_key = \"{q}\"\nbuffer = 100"
    )));
    sink.write(&rows(0, 1000)).unwrap();
    sink.flush().unwrap();
    // Cut while rows flow; the buffer fills and the writer waits until the broker is back.
    let writer = std::thread::spawn(move || {
        for b in 1..10 {
            sink.write(&rows(b * 1000, 1000)).unwrap();
        }
        sink.flush().unwrap();
        sink
    });
    std::thread::sleep(Duration::from_millis(20));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!writer.is_finished(), "rows waited for the broker");
    proxy.restore();
    let started = Instant::now();
    // A hang here is a failure with a message, not a CI run that never ends.
    while !writer.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the rows did not all go out within 60 s of the broker's return"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sink = writer.join().unwrap();
    let got = broker.drain(&q);
    broker.delete(&q);
    let mut ns = numbers(&got);
    let repeats = ns.len() - 10_000;
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns, (0..10_000).collect::<Vec<_>>(), "every row arrived");
    let summary = sink.summary().unwrap_or_default();
    let republished: usize = summary
        .split(';')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        repeats <= republished,
        "{repeats} repeats but {republished} published again: {summary}"
    );
}

#[test]
fn a_missing_exchange_fails_the_flush_with_the_reason() {
    let mut sink = AmqpSink::new(&config(&format!(
        "exchange = \"{}\"\nrouting_key = \"x\"",
        unique("missing")
    )));
    sink.write(&rows(0, 3)).unwrap();
    let err = sink.flush().unwrap_err().to_string();
    assert!(err.contains("NOT_FOUND"), "{err}");
}
