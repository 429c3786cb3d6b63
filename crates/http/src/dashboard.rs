//! The dashboard's routes: the page and its assets (embedded in the binary), live updates
//! over WebSocket, REST per output, the pipeline's health, and `/metrics` for Prometheus.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use weir_core::metrics::NodeMetrics;

use crate::board::Board;
use crate::server::{check_token, error, Shared};

/// Files of the page, by the name they are served under (`/assets/<name>`).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard.css"),
    ),
    // uPlot 1.6.32 (MIT, © Leon Sorokin), unmodified from the npm package's dist/.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_str!("../assets/vendor/uplot/LICENSE"),
    ),
];

const PAGE: &str = include_str!("../assets/index.html");

/// `?token=` on a GET (decoded by axum's query extractor).
#[derive(serde::Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// Checks the token of a GET: the header, or `?token=` (a browser cannot set a header on a
/// page load or a WebSocket; the page passes the token it was opened with on).
pub(crate) fn check_get(shared: &Shared, headers: &HeaderMap, q: &TokenQuery) -> Option<Response> {
    let token = shared.token.as_deref()?;
    match &q.token {
        Some(g) if crate::server::same_token(g.as_bytes(), token.as_bytes()) => None,
        _ => check_token(headers, Some(token)),
    }
}

fn text(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
        .into_response()
}

pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    text("text/html; charset=utf-8", PAGE)
}

/// Assets carry nothing secret (the page's own code and uPlot): no token needed.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, ..)| *n == name) {
        Some((_, ct, body)) => text(ct, *body),
        None => error(StatusCode::NOT_FOUND, format!("no asset named {name:?}")),
    }
}

fn json_text(body: String) -> Response {
    text("application/json", body)
}

pub(crate) async fn outputs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    json_text(shared.board.list())
}

pub(crate) async fn output(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    match shared.board.output(&name) {
        Some(body) => json_text(body),
        None => {
            let names = shared.board.outputs();
            error(
                StatusCode::NOT_FOUND,
                format!(
                    "no output {name:?} on the dashboard; shown: {} (list them in [server] \
                     dashboard)",
                    if names.is_empty() {
                        "(none)".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        }
    }
}

pub(crate) async fn pipeline(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    json_text(shared.board.health())
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: the pipeline's counters in Prometheus's text format (version 0.0.4).
pub(crate) async fn metrics(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    text(
        "text/plain; version=0.0.4; charset=utf-8",
        prometheus(&shared),
    )
}

fn prometheus(shared: &Shared) -> String {
    let board = &shared.board;
    let watch = board.watched();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            match labels.is_empty() {
                true => {
                    let _ = writeln!(out, "{name} {v}");
                }
                false => {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
    };
    family(
        "weir_uptime_seconds",
        "gauge",
        "Seconds since the web server started.",
        vec![(String::new(), format!("{:.3}", board.uptime()))],
    );
    let node =
        |n: &crate::board::Watched| format!("node=\"{}\",kind=\"{}\"", label(&n.name), n.kind);
    type Counter = fn(&NodeMetrics) -> u64;
    let counters: [(&str, &str, Counter); 9] = [
        (
            "weir_node_records_in_total",
            "Records that entered the node (sources: lines or messages read).",
            |m| NodeMetrics::get(&m.records_in),
        ),
        (
            "weir_node_records_out_total",
            "Records the node emitted on its main output (sinks: rows written).",
            |m| NodeMetrics::get(&m.records_out),
        ),
        ("weir_node_bytes_in_total", "Bytes a source read.", |m| {
            NodeMetrics::get(&m.bytes_in)
        }),
        (
            "weir_node_malformed_total",
            "Records that could not be parsed or used (sent to dead letters).",
            |m| NodeMetrics::get(&m.malformed),
        ),
        (
            "weir_node_alerts_total",
            "Records a stage flagged (sent to its alerts output).",
            |m| NodeMetrics::get(&m.alerts),
        ),
        (
            "weir_node_duplicates_total",
            "Records a stage recognised as copies of records it passed (dedup).",
            |m| NodeMetrics::get(&m.duplicates),
        ),
        (
            "weir_node_late_total",
            "Records that arrived after their window closed.",
            |m| NodeMetrics::get(&m.late),
        ),
        ("weir_node_windows_total", "Windows a stage closed.", |m| {
            NodeMetrics::get(&m.windows)
        }),
        ("weir_node_batches_total", "Batches a node emitted.", |m| {
            NodeMetrics::get(&m.emitted)
        }),
    ];
    for (name, help, get) in counters {
        family(
            name,
            "counter",
            help,
            watch
                .nodes
                .iter()
                .map(|n| (node(n), get(&n.metrics).to_string()))
                .collect(),
        );
    }
    family(
        "weir_node_watermark_seconds",
        "gauge",
        "The node's event-time watermark (absent before the first).",
        watch
            .nodes
            .iter()
            .filter_map(|n| {
                let wm = n.metrics.watermark.load(Ordering::Relaxed);
                (wm != i64::MIN && wm != i64::MAX)
                    .then(|| (node(n), format!("{:.3}", wm as f64 / 1000.0)))
            })
            .collect(),
    );
    if let Some(c) = watch.checkpoints.as_ref().map(|c| c()) {
        let one = |v: String| vec![(String::new(), v)];
        family(
            "weir_checkpoints_completed_total",
            "counter",
            "Checkpoints completed in this run.",
            one(c.completed.to_string()),
        );
        family(
            "weir_checkpoints_failed_total",
            "counter",
            "Checkpoints that could not be written.",
            one(c.failed.to_string()),
        );
        family(
            "weir_checkpoint_last_epoch",
            "gauge",
            "Epoch of the newest completed checkpoint.",
            one(c.last_epoch.to_string()),
        );
        if c.last_at_ms > 0 {
            family(
                "weir_checkpoint_last_timestamp_seconds",
                "gauge",
                "When the newest checkpoint became durable (Unix time).",
                one(format!("{:.3}", c.last_at_ms as f64 / 1000.0)),
            );
        }
    }
    let endpoints: Vec<(String, crate::ingest::EndpointFigures)> = shared
        .ingest
        .lock()
        .expect("ingest map lock")
        .iter()
        .map(|(k, e)| (format!("endpoint=\"/ingest/{}\"", label(k)), e.figures()))
        .collect();
    if !endpoints.is_empty() {
        type Fig = fn(&crate::ingest::EndpointFigures) -> u64;
        let figs: [(&str, &str, &str, Fig); 5] = [
            (
                "weir_ingest_requests_total",
                "counter",
                "POST requests received.",
                |f| f.requests,
            ),
            (
                "weir_ingest_records_accepted_total",
                "counter",
                "Records accepted into the pipeline.",
                |f| f.accepted,
            ),
            (
                "weir_ingest_records_rejected_total",
                "counter",
                "Records refused with 400 (or listed as rejected with partial acceptance).",
                |f| f.rejected,
            ),
            (
                "weir_ingest_throttled_total",
                "counter",
                "Requests answered 429 (queue full or rate limit).",
                |f| f.refused,
            ),
            (
                "weir_ingest_queued_bytes",
                "gauge",
                "Bytes accepted and not yet read by the pipeline.",
                |f| f.queued_bytes,
            ),
        ];
        for (name, kind, help, get) in figs {
            family(
                name,
                kind,
                help,
                endpoints
                    .iter()
                    .map(|(l, f)| (l.clone(), get(f).to_string()))
                    .collect(),
            );
        }
    }
    family(
        "weir_dashboard_clients",
        "gauge",
        "Dashboard pages connected over WebSocket.",
        vec![(String::new(), board.clients().to_string())],
    );
    out
}

/// `GET /api/live`: a WebSocket that sends a snapshot, then every update.
pub(crate) async fn live(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The token first: a caller without one learns nothing, not even how to upgrade.
    if let Some(denied) = check_get(&shared, &headers, &q) {
        return denied;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let board = shared.board.clone();
    let closing = shared.closing.subscribe();
    ws.on_upgrade(move |socket| follow(board, socket, closing))
}

/// Sends a page its snapshot and then every update; a page that falls more than the
/// channel's capacity behind starts over from a new snapshot.
async fn follow(
    board: Arc<Board>,
    mut socket: WebSocket,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    board.connected(1);
    let mut rx = board.subscribe();
    let mut snapshot = board.snapshot();
    'outer: loop {
        if socket.send(Message::Text(snapshot.into())).await.is_err() {
            break;
        }
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Ok(update) => {
                        if socket.send(Message::Text(update)).await.is_err() {
                            break 'outer;
                        }
                    }
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => break 'outer,
                },
                m = socket.recv() => match m {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break 'outer,
                    Some(Ok(_)) => {}
                },
                _ = closing.changed() => {
                    let _ = socket
                        .send(Message::Text(r#"{"type":"end"}"#.into()))
                        .await;
                    let _ = socket.send(Message::Close(None)).await;
                    break 'outer;
                }
            }
        }
        rx = rx.resubscribe();
        snapshot = board.snapshot();
    }
    board.connected(-1);
}
