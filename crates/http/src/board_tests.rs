//! The dashboard: what each view keeps, REST per output, the WebSocket's snapshot and
//! updates, `/metrics`, and tokens on the read side.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use weir_core::metrics::NodeMetrics;
use weir_core::Sink;

use crate::board::{Board, DashboardEntry, DashboardOutput, View, Watched};
use crate::{Server, ServerConfig};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A top_k stage's output: window bounds, rank, the key, the value.
fn top_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        Field::new("rank", DataType::Int64, true),
        Field::new("product_id", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
    ]))
}

/// An aggregate's output: window bounds, a numeric group key, two aggregates.
fn counts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        Field::new("status", DataType::Int64, true),
        Field::new("count", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, true),
    ]))
}

/// Rows of one window ending at `end` ms: (rank or status, key, count).
fn window(schema: &SchemaRef, end: i64, rows: &[(i64, &str, i64)]) -> RecordBatch {
    let n = rows.len();
    let t = |v: i64| {
        Arc::new(TimestampMillisecondArray::from(vec![v; n]).with_timezone("UTC")) as ArrayRef
    };
    let ints = |f: &dyn Fn(&(i64, &str, i64)) -> i64| {
        Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    let third: ArrayRef = if schema.field(3).data_type() == &DataType::Utf8 {
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ))
    } else {
        ints(&|r| r.2)
    };
    let cols = vec![
        t(end - 10_000),
        t(end),
        ints(&|r| r.0),
        third,
        ints(&|r| r.2),
    ];
    RecordBatch::try_new(schema.clone(), cols).unwrap()
}

fn entry(toml_text: &str) -> DashboardOutput {
    #[derive(serde::Deserialize)]
    struct W {
        d: DashboardEntry,
    }
    toml::from_str::<W>(toml_text).unwrap().d.output()
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn ends(rows: &Value) -> Vec<String> {
    let mut e: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["window_end"].as_str().unwrap().to_string())
        .collect();
    e.dedup();
    e
}

#[test]
fn views_follow_the_columns_and_options_are_checked() {
    assert_eq!(View::of(&top_schema()), View::Top);
    assert_eq!(View::of(&counts_schema()), View::Chart);
    let changes = Schema::new(
        top_schema()
            .fields()
            .iter()
            .cloned()
            .chain([Arc::new(Field::new("change", DataType::Utf8, false))])
            .collect::<Vec<_>>(),
    );
    assert_eq!(View::of(&changes), View::Feed);
    let plain = Schema::new(vec![Field::new("ip", DataType::Utf8, false)]);
    assert_eq!(View::of(&plain), View::Feed);

    let board = Arc::new(Board::default());
    let e = board
        .add(&entry(r#"d = { output = "ips", view = "chart" }"#), &plain)
        .err()
        .unwrap();
    assert!(e.to_string().contains("no window_end"), "{e}");
    let e = board
        .add(
            &entry(r#"d = { output = "c", y = "nope" }"#),
            &counts_schema(),
        )
        .err()
        .unwrap();
    assert!(e.to_string().contains("no column nope"), "{e}");
    board.add(&entry(r#"d = "c""#), &counts_schema()).unwrap();
    let e = board
        .add(&entry(r#"d = "c""#), &counts_schema())
        .err()
        .unwrap();
    assert!(e.to_string().contains("listed twice"), "{e}");
    // A chart's line per group key (the columns before `count`), `count` as its value.
    let list = parse(&board.list());
    assert_eq!(list["outputs"][0]["y"], "count");
    assert_eq!(list["outputs"][0]["series"], serde_json::json!(["status"]));
}

#[test]
fn a_top_list_keeps_two_windows_and_rest_answers_the_newest() {
    let board = Arc::new(Board::default());
    let schema = top_schema();
    let mut sink = board.add(&entry(r#"d = "top_cart""#), &schema).unwrap();
    sink.write(&window(&schema, 10_000, &[(1, "a", 5), (2, "b", 3)]))
        .unwrap();
    sink.write(&window(&schema, 20_000, &[(1, "b", 6), (2, "a", 5)]))
        .unwrap();
    sink.tick().unwrap();
    sink.write(&window(
        &schema,
        30_000,
        &[(1, "c", 9), (2, "b", 6), (3, "a", 1)],
    ))
    .unwrap();
    sink.flush().unwrap();

    let now = parse(&board.output("top_cart").unwrap());
    assert_eq!(now["view"], "top");
    assert_eq!(now["window_end_ms"], 30_000);
    let keys: Vec<&str> = now["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["c", "b", "a"]);
    assert_eq!(now["total"], 7);

    let snap = parse(&board.snapshot());
    assert_eq!(
        snap["seq"], 2,
        "two publishes: at the tick and at the flush"
    );
    assert_eq!(
        ends(&snap["outputs"][0]["rows"]),
        ["1970-01-01T00:00:20Z", "1970-01-01T00:00:30Z"]
    );
    assert!(board.output("nope").is_none());
}

#[test]
fn a_chart_keeps_its_last_windows_whatever_order_they_arrive_in_and_a_feed_its_last_rows() {
    let board = Arc::new(Board::default());
    let schema = counts_schema();
    let mut chart = board
        .add(&entry(r#"d = { output = "counts", keep = 3 }"#), &schema)
        .unwrap();
    // Two instances of a keyed stage close the same windows at different times.
    for end in [10, 30, 20, 40, 30] {
        chart
            .write(&window(
                &schema,
                end * 1000,
                &[(200, "", end), (404, "", 1)],
            ))
            .unwrap();
    }
    chart.flush().unwrap();
    let rows = parse(&board.output("counts").unwrap())["rows"].clone();
    let mut e = ends(&rows);
    e.sort();
    e.dedup();
    assert_eq!(
        e,
        [
            "1970-01-01T00:00:20Z",
            "1970-01-01T00:00:30Z",
            "1970-01-01T00:00:40Z"
        ]
    );
    assert_eq!(rows.as_array().unwrap().len(), 8);

    let plain: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let mut feed = board
        .add(&entry(r#"d = { output = "alerts", keep = 5 }"#), &plain)
        .unwrap();
    let batch = RecordBatch::try_new(
        plain.clone(),
        vec![Arc::new(Int64Array::from((0..12).collect::<Vec<i64>>())) as ArrayRef],
    )
    .unwrap();
    feed.write(&batch).unwrap();
    feed.flush().unwrap();
    let rows = parse(&board.output("alerts").unwrap())["rows"].clone();
    let n: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    assert_eq!(n, [7, 8, 9, 10, 11]);
}

fn start(token: Option<&str>) -> Arc<Server> {
    Server::start(&ServerConfig {
        listen: "127.0.0.1:0".into(),
        token: token.map(String::from),
        ..ServerConfig::default()
    })
    .unwrap()
}

fn get(url: &str, auth: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(t) = auth {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        resp.status().as_u16(),
        ct,
        resp.body_mut().read_to_string().unwrap(),
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message of `type` (others, such as health readings, are skipped).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} message within 10 s"))
            .expect("the socket stays open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            let v = parse(t.as_str());
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[test]
fn a_page_gets_a_snapshot_then_numbered_updates_and_an_end() {
    let server = start(None);
    let schema = top_schema();
    let mut sink = server
        .board()
        .add(
            &entry(r#"d = { output = "top_cart", title = "In carts" }"#),
            &schema,
        )
        .unwrap();
    sink.write(&window(&schema, 10_000, &[(1, "a", 5)]))
        .unwrap();
    sink.flush().unwrap();
    let url = format!("ws://{}/api/live", server.addr());
    let rt = weir_core::io::runtime();
    let mut ws = rt.block_on(async { tokio_tungstenite::connect_async(&url).await.unwrap().0 });
    let snap = rt.block_on(next_of(&mut ws, "snapshot"));
    assert_eq!(snap["seq"], 1);
    assert_eq!(snap["outputs"][0]["title"], "In carts");
    assert_eq!(snap["outputs"][0]["rows"][0]["product_id"], "a");
    assert_eq!(server.board().clients(), 1);

    sink.write(&window(&schema, 20_000, &[(1, "b", 7), (2, "a", 5)]))
        .unwrap();
    sink.tick().unwrap();
    let update = rt.block_on(next_of(&mut ws, "rows"));
    assert_eq!(update["seq"], 2);
    assert_eq!(update["output"], "top_cart");
    assert_eq!(update["rows"].as_array().unwrap().len(), 2);
    assert_eq!(update["rows"][0]["product_id"], "b");

    // The health reading arrives every second, with the watched nodes' rates.
    let m = Arc::new(NodeMetrics::new());
    server.board().watch(
        vec![Watched {
            name: "clicks".into(),
            kind: "source",
            metrics: m.clone(),
        }],
        None,
    );
    NodeMetrics::add(&m.records_in, 500);
    // A reading taken before the counters were watched may still be on its way: skip it.
    let h = loop {
        let h = rt.block_on(next_of(&mut ws, "health"));
        if h["health"]["nodes"][0]["records_in"] == 500 {
            break h;
        }
    };
    assert_eq!(h["health"]["nodes"][0]["name"], "clicks");
    assert_eq!(h["health"]["nodes"][0]["records_in"], 500);
    assert_eq!(h["health"]["clients"], 1);

    // REST sees the same.
    let (status, ct, body) = get(&format!("{}/api/outputs/top_cart", server.url()), None);
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert_eq!(parse(&body)["rows"][0]["product_id"], "b");
    let (status, _, body) = get(&format!("{}/api/outputs/nope", server.url()), None);
    assert_eq!(status, 404);
    assert!(body.contains("shown: top_cart"), "{body}");

    // The server stops with the pipeline: open pages are told, then closed.
    drop(server);
    let end = rt.block_on(next_of(&mut ws, "end"));
    assert_eq!(end["type"], "end");
    rt.block_on(async {
        let _ = ws.close(None).await;
    });
}

#[test]
fn metrics_are_prometheus_text_with_node_and_ingest_counters() {
    let server = start(None);
    let m = Arc::new(NodeMetrics::new());
    NodeMetrics::add(&m.records_in, 42);
    NodeMetrics::add(&m.malformed, 3);
    m.watermark.store(1_700_000_000_500, Ordering::Relaxed);
    server.board().watch(
        vec![Watched {
            name: "we\"ird".into(),
            kind: "stage",
            metrics: m,
        }],
        Some(Arc::new(|| crate::CheckpointFigures {
            completed: 4,
            failed: 0,
            last_epoch: 4,
            last_at_ms: 1_700_000_001_000,
        })),
    );
    let (status, ct, text) = get(&format!("{}/metrics", server.url()), None);
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(
        text.contains("weir_node_records_in_total{node=\"we\\\"ird\",kind=\"stage\"} 42\n"),
        "{text}"
    );
    assert!(text.contains("weir_node_malformed_total{node=\"we\\\"ird\",kind=\"stage\"} 3\n"));
    assert!(text.contains(
        "weir_node_watermark_seconds{node=\"we\\\"ird\",kind=\"stage\"} 1700000000.500\n"
    ));
    assert!(text.contains("weir_checkpoints_completed_total 4\n"));
    assert!(text.contains("weir_checkpoint_last_timestamp_seconds 1700000001.000\n"));
    // Every sample line belongs to the family its # TYPE line announced just before.
    let mut family = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            family = name.to_string();
        } else if !line.starts_with("# HELP ") {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(
                name == family || name.starts_with(&format!("{family}{{")),
                "{line}"
            );
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        }
    }
}

#[test]
fn a_token_guards_the_page_the_api_and_the_socket_but_not_assets_or_health() {
    let server = start(Some("s3cret/+"));
    let url = server.url();
    assert_eq!(get(&format!("{url}/"), None).0, 401);
    assert_eq!(get(&format!("{url}/?token=wrong"), None).0, 401);
    let (status, ct, page) = get(&format!("{url}/?token=s3cret%2F%2B"), None);
    assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("assets/dashboard.js"));
    assert_eq!(get(&format!("{url}/api/outputs"), None).0, 401);
    assert_eq!(get(&format!("{url}/api/outputs"), Some("s3cret/+")).0, 200);
    assert_eq!(get(&format!("{url}/metrics"), None).0, 401);
    assert_eq!(get(&format!("{url}/api/live"), None).0, 401);
    let (status, ct, lib) = get(&format!("{url}/assets/uPlot.iife.min.js"), None);
    assert_eq!(
        (status, ct.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(lib.len() > 40_000);
    let (status, _, licence) = get(&format!("{url}/assets/uPlot.LICENSE.txt"), None);
    assert_eq!(status, 200);
    assert!(licence.contains("Leon Sorokin"));
    assert_eq!(get(&format!("{url}/assets/nope.js"), None).0, 404);
    assert_eq!(get(&format!("{url}/health"), None).0, 200);

    let rt = weir_core::io::runtime();
    let refused = rt.block_on(tokio_tungstenite::connect_async(format!(
        "ws://{}/api/live",
        server.addr()
    )));
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a socket without the token is refused with 401, not {other:?}"),
    }
    let ws = format!("ws://{}/api/live?token=s3cret%2F%2B", server.addr());
    let mut ws = rt.block_on(async { tokio_tungstenite::connect_async(&ws).await.unwrap().0 });
    let snap = rt.block_on(next_of(&mut ws, "snapshot"));
    assert_eq!(snap["outputs"], serde_json::json!([]));
    rt.block_on(async {
        ws.send(tokio_tungstenite::tungstenite::Message::Close(None))
            .await
            .unwrap();
    });
}
