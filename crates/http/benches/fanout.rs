//! Dashboard fan-out: one output's updates (a top-5 list per window) pushed to N WebSocket
//! clients on loopback. Prints the time from publishing an update to its arrival at the first
//! and at the last client (p50, p99), updates/s back to back, and the CPU the process (server
//! and clients: they share the machine) spends per update and at the dashboard's real pace of
//! ten updates a second.
//!
//!   cargo bench -p weir-http --bench fanout               # 100 clients
//!   cargo bench -p weir-http --bench fanout -- 1000       # another number of clients

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures_util::StreamExt;
use weir_core::Sink;
use weir_http::{DashboardEntry, Server, ServerConfig};

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("rank", DataType::Int64, true),
        Field::new("product_id", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
    ]))
}

fn window(schema: &SchemaRef, end: i64) -> RecordBatch {
    let t = |v: i64| {
        Arc::new(TimestampMillisecondArray::from(vec![v; 5]).with_timezone("UTC")) as ArrayRef
    };
    RecordBatch::try_new(
        schema.clone(),
        vec![
            t(end - 600_000),
            t(end),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            Arc::new(StringArray::from(
                (0..5)
                    .map(|i| format!("p{}", (end / 1000 + i) % 97))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(vec![900, 800, 700, 600, 500])),
        ],
    )
    .unwrap()
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Per update number: how many clients have it, and when the first and the last got it.
type Receipts = std::collections::HashMap<u64, (usize, Instant, Instant)>;

#[allow(clippy::print_stdout)] // a bench command prints its figures
fn main() {
    let clients: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let server = Server::start(&ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })
    .unwrap();
    let schema = schema();
    let entry: DashboardEntry = DashboardEntry::Name("top_cart".into());
    let mut sink = server.board().add(&entry.output(), &schema).unwrap();
    let got: Arc<Mutex<Receipts>> = Default::default();
    let connected = Arc::new(AtomicU64::new(0));
    let url = format!("ws://{}/api/live", server.addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (g, c) = (got.clone(), connected.clone());
    std::thread::spawn(move || {
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                let g = g.clone();
                tasks.push(tokio::spawn(async move {
                    let (_, mut rx) = ws.split();
                    while let Some(Ok(m)) = rx.next().await {
                        let now = Instant::now();
                        let text = match m {
                            tokio_tungstenite::tungstenite::Message::Text(t) => t,
                            _ => continue,
                        };
                        // A page parses every update; so does this client.
                        let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                        if v["type"] == "rows" {
                            let seq = v["seq"].as_u64().unwrap();
                            let mut g = g.lock().unwrap();
                            let e = g.entry(seq).or_insert((0, now, now));
                            e.0 += 1;
                            e.2 = now;
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    });
    while connected.load(Ordering::SeqCst) < clients as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));

    let mut seq = 0u64;
    let mut end = 1_000_000i64;
    let mut publish = |sink: &mut weir_http::BoardSink| -> (f64, f64) {
        seq += 1;
        end += 1000;
        sink.write(&window(&schema, end)).unwrap();
        let t0 = Instant::now();
        sink.tick().unwrap();
        loop {
            if let Some(&(n, first, last)) = got.lock().unwrap().get(&seq) {
                if n == clients {
                    return (
                        first.duration_since(t0).as_secs_f64() * 1e3,
                        last.duration_since(t0).as_secs_f64() * 1e3,
                    );
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "update {seq} did not reach every client"
            );
            std::thread::yield_now();
        }
    };
    for _ in 0..50 {
        publish(&mut sink);
    }
    // Back to back.
    let n = 1000;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (f, l) = publish(&mut sink);
        firsts.push(f);
        lasts.push(l);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "fan-out to {clients} WebSocket clients, back to back: {:.0} updates/s ({:.0} messages/s); \
         to the first client p50 {:.2} ms p99 {:.2} ms; to the last p50 {:.2} ms p99 {:.2} ms; \
         CPU {:.2} ms per update (server and clients)",
        n as f64 / wall,
        n as f64 * clients as f64 / wall,
        pct(&mut firsts, 0.5),
        pct(&mut firsts, 0.99),
        pct(&mut lasts, 0.5),
        pct(&mut lasts, 0.99),
        cpu * 1e3 / n as f64
    );
    // At the dashboard's pace: ten updates a second (one output), for 5 s.
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut lasts = Vec::new();
    for i in 0..50 {
        lasts.push(publish(&mut sink).1);
        let next = t0 + Duration::from_millis(100 * (i + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "at 10 updates/s: CPU {:.1} % of one core (server and clients); to the last client p50 {:.2} ms p99 {:.2} ms",
        (cpu_seconds() - cpu0) / wall * 100.0,
        pct(&mut lasts, 0.5),
        pct(&mut lasts, 0.99),
    );
}
