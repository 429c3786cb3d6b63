//! Webhook delivery against a real HTTP server on loopback that fails on purpose.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use arrow_array::StringArray;

use super::*;

/// Requests received: (headers, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Answers each request with the next status of `statuses` (the last one repeats) and keeps
/// what it received.
fn server(statuses: Vec<u16>) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { break };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                headers.push_str(&line);
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            log.lock()
                .unwrap()
                .push((headers, String::from_utf8(body).unwrap()));
            let status = *statuses.get(i).or(statuses.last()).unwrap();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

fn cfg(url: &str, retries: u32, dead: Option<PathBuf>) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        headers: [("X-Weir-Token".to_string(), "s3cret".to_string())].into(),
        timeout: Duration::from_ms(2_000),
        retries,
        backoff: Duration::from_ms(10),
        max_backoff: Duration::from_ms(50),
        dead_letter: dead,
    }
}

fn alerts() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "alert_id",
            Arc::new(StringArray::from(vec!["10.0.0.1@5", "10.0.0.2@9"])) as _,
        ),
        (
            "target_ip",
            Arc::new(StringArray::from(vec!["10.0.0.1", "10.0.0.2"])) as _,
        ),
    ])
    .unwrap()
}

#[test]
fn retries_until_the_server_accepts() {
    let (url, seen) = server(vec![503, 500, 200]);
    let mut sink = WebhookSink::new(&cfg(&url, 5, None)).unwrap();
    assert_eq!(sink.deliver(r#"{"a":1}"#, "k1"), Delivery::Delivered(3));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let headers = seen[2].0.to_ascii_lowercase();
    assert!(headers.contains("x-weir-token: s3cret"), "{headers}");
    assert!(headers.contains("idempotency-key: k1"), "{headers}");
    assert_eq!(seen[2].1, r#"{"a":1}"#);
}

#[test]
fn rows_that_cannot_be_delivered_go_to_the_dead_letter_file() {
    let (url, seen) = server(vec![503]);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("failed.jsonl");
    let mut sink = WebhookSink::new(&cfg(&url, 2, Some(dead.clone()))).unwrap();
    sink.write(&alerts()).unwrap();
    sink.finish().unwrap();
    assert_eq!(sink.counts(), (0, 2));
    assert_eq!(seen.lock().unwrap().len(), 6, "1 + 2 retries per row");
    let text = std::fs::read_to_string(dead).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"error":"HTTP 503 from http://127.0.0.1:"#),
        "{first}"
    );
    assert!(
        first.ends_with(
            r#"(after 3 attempts)","row":{"alert_id":"10.0.0.1@5","target_ip":"10.0.0.1"}}"#
        ),
        "{first}"
    );
}

#[test]
fn client_errors_are_not_retried_and_bodies_are_the_rows() {
    let (url, seen) = server(vec![400, 200]);
    let mut sink = WebhookSink::new(&cfg(&url, 5, None)).unwrap();
    sink.write(&alerts()).unwrap();
    assert_eq!(sink.counts(), (1, 1));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].1,
        r#"{"alert_id":"10.0.0.2@9","target_ip":"10.0.0.2"}"#
    );
}

#[test]
fn an_unreachable_server_is_retried_then_given_up() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again
    let mut sink = WebhookSink::new(&cfg(&format!("http://127.0.0.1:{port}/x"), 1, None)).unwrap();
    match sink.deliver("{}", "k") {
        Delivery::Failed(reason) => assert!(reason.contains("(after 2 attempts)"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
