//! Webhook delivery against a real HTTP server on loopback that fails on purpose.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use arrow_array::StringArray;

use super::*;

/// Requests received: (headers, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Reads one HTTP request: its header lines and its body.
fn read_request(conn: &std::net::TcpStream) -> (String, String) {
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
    (headers, String::from_utf8(body).unwrap())
}

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
            let (headers, body) = read_request(&conn);
            log.lock().unwrap().push((headers, body));
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
        concurrency: 4,
        queue: 100,
    }
}

fn alerts() -> RecordBatch {
    weir_testkit::from_pretty(
        "
        alert_id:str | target_ip:str
        10.0.0.1@5   | 10.0.0.1
        10.0.0.2@9   | 10.0.0.2
        ",
    )
}

#[test]
fn retries_until_the_server_accepts() {
    let (url, seen) = server(vec![503, 500, 200]);
    let mut poster = Poster::new(&cfg(&url, 5, None));
    assert_eq!(poster.deliver(r#"{"a":1}"#, "k1"), Delivery::Delivered(3));
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
    assert_eq!(
        sink.counts(),
        Counts {
            delivered: 0,
            retried: 0,
            dead_lettered: 2
        }
    );
    assert_eq!(seen.lock().unwrap().len(), 6, "1 + 2 retries per row");
    let text = std::fs::read_to_string(dead).unwrap();
    // Deliveries run concurrently: the dead letters come in the order the rows failed.
    let first = text.lines().find(|l| l.contains("10.0.0.1@5")).unwrap();
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
    let mut c = cfg(&url, 5, None);
    c.concurrency = 1; // the server answers by arrival: 400 to the first row
    let mut sink = WebhookSink::new(&c).unwrap();
    sink.write(&alerts()).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        sink.counts(),
        Counts {
            delivered: 1,
            retried: 0,
            dead_lettered: 1
        }
    );
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
    let mut poster = Poster::new(&cfg(&format!("http://127.0.0.1:{port}/x"), 1, None));
    match poster.deliver("{}", "k") {
        Delivery::Failed(reason) => assert!(reason.contains("(after 2 attempts)"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Issue 10: deliveries were one at a time (2 rows/s at 500 ms latency) and stalled the
/// pipeline. Now they overlap up to `concurrency`, and `finish` waits for every row.
#[test]
fn slow_receivers_get_concurrent_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (now, max, bodies) = (
        Arc::new(Mutex::new(0usize)),
        Arc::new(Mutex::new(0usize)),
        Arc::new(Mutex::new(Vec::new())),
    );
    {
        let (now, max, bodies) = (now.clone(), max.clone(), bodies.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let (now, max, bodies) = (now.clone(), max.clone(), bodies.clone());
                std::thread::spawn(move || {
                    let (_, body) = read_request(&conn);
                    {
                        let mut n = now.lock().unwrap();
                        *n += 1;
                        let mut m = max.lock().unwrap();
                        *m = (*m).max(*n);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    *now.lock().unwrap() -= 1;
                    bodies.lock().unwrap().push(body);
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                });
            }
        });
    }
    let mut c = cfg(&url, 0, None);
    c.concurrency = 8;
    c.queue = 4; // smaller than the rows: writes wait for room, and none is lost
    let mut sink = WebhookSink::new(&c).unwrap();
    let ids: Vec<String> = (0..24).map(|i| format!("a{i}")).collect();
    let batch =
        RecordBatch::try_from_iter([("alert_id", Arc::new(StringArray::from(ids.clone())) as _)])
            .unwrap();
    sink.write(&batch).unwrap();
    sink.finish().unwrap();
    assert_eq!(sink.counts().delivered, 24);
    assert!(*max.lock().unwrap() > 1, "requests never overlapped");
    let mut got = bodies.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = ids
        .iter()
        .map(|i| format!(r#"{{"alert_id":"{i}"}}"#))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        sink.summary().unwrap(),
        "24 rows delivered (0 after retries), 0 dead-lettered"
    );
}

/// Issue 10: a webhook URL's `user:password@` and `?token=` appeared in every warning and in
/// the dead-letter file (Slack and Teams webhook URLs are themselves the secret).
#[test]
fn secrets_of_the_url_stay_out_of_dead_letters() {
    let (url, _seen) = server(vec![503]);
    let secret_url = url.replace("http://", "http://alice:hunter2@") + "?token=s3cr3tT0ken";
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("failed.jsonl");
    let mut sink = WebhookSink::new(&cfg(&secret_url, 0, Some(dead.clone()))).unwrap();
    sink.write(&alerts()).unwrap();
    sink.finish().unwrap();
    let text = std::fs::read_to_string(dead).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    for secret in ["hunter2", "alice", "s3cr3tT0ken", "/hook"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(
        text.contains("HTTP 503 from http://***@127.0.0.1:"),
        "{text}"
    );
}
