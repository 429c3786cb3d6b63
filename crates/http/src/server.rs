//! `[server]`: where the web server listens, who may use it, and the routes it serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use weir_core::{Error, Result};

use crate::board::{Board, DashboardEntry};
use crate::dashboard;
use crate::ingest::Endpoint;

/// Where the server listens unless `[server] listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// `[server]`: the web server of a pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port (default `127.0.0.1:7878`; port 0 picks a free one). Any address but
    /// a loopback one needs `token` or `token_env`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A bearer token every request must carry (`Authorization: Bearer <token>`), except
    /// `/health`. An ingest endpoint with its own token takes that one instead.
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable that holds the token (keeps it out of the pipeline file).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Outputs the dashboard at `/` shows live: node names (`"top_cart"`), or tables with
    /// options (`{ output = "alerts", view = "feed", keep = 500 }`). Each is also served as
    /// JSON at `/api/outputs/<name>`.
    #[serde(default)]
    pub dashboard: Vec<DashboardEntry>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            token: None,
            token_env: None,
            dashboard: Vec::new(),
        }
    }
}

/// Reads a token given inline or through an environment variable; `path` is the config
/// table both keys are in.
pub(crate) fn resolve_token(
    token: &Option<String>,
    token_env: &Option<String>,
    path: &str,
) -> std::result::Result<Option<String>, Error> {
    match (token, token_env) {
        (Some(_), Some(_)) => Err(Error::config(
            format!("{path}.token_env"),
            "give token or token_env, not both",
        )),
        (Some(t), None) if t.is_empty() => {
            Err(Error::config(format!("{path}.token"), "must not be empty"))
        }
        (Some(t), None) => Ok(Some(t.clone())),
        (None, Some(var)) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Ok(Some(t)),
            _ => Err(Error::config(
                format!("{path}.token_env"),
                format!("the environment variable {var} is not set or empty"),
            )),
        },
        (None, None) => Ok(None),
    }
}

impl ServerConfig {
    /// Checks the config alone; `path` is `server`.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        let token = resolve_token(&self.token, &self.token_env, path)
            .map_err(|e| errs.push(e))
            .ok()
            .flatten();
        match self.listen.parse::<SocketAddr>() {
            Err(_) => errs.push(Error::config(
                format!("{path}.listen"),
                format!(
                    "expected an address and port like \"127.0.0.1:7878\", got {:?}",
                    self.listen
                ),
            )),
            Ok(a) if !a.ip().is_loopback() && token.is_none() && errs.is_empty() => {
                errs.push(Error::config(
                    format!("{path}.listen"),
                    format!(
                        "{a} is reachable from other machines: set token (or token_env) so \
                         that only clients that know it can read or send, or listen on \
                         127.0.0.1"
                    ),
                ))
            }
            Ok(_) => {}
        }
        errs
    }
}

/// What every route shares: the token, the ingest endpoints by name, the dashboard.
pub(crate) struct Shared {
    pub(crate) token: Option<String>,
    pub(crate) ingest: Mutex<BTreeMap<String, Arc<Endpoint>>>,
    pub(crate) board: Arc<Board>,
    /// Set when the server stops: open WebSockets are told and closed.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

/// The running web server. It stops when the last handle is dropped (with the pipeline that
/// started it); requests in flight are answered first.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Binds the address and starts serving on the process's async runtime.
    pub fn start(cfg: &ServerConfig) -> Result<Arc<Server>> {
        if let Some(e) = cfg.validate("server").into_iter().next() {
            return Err(e);
        }
        let token = resolve_token(&cfg.token, &cfg.token_env, "server")?;
        let addr: SocketAddr = cfg.listen.parse().expect("validated above");
        let rt = weir_core::io::runtime();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (another program, perhaps another weir, listens there; set [server] \
                     listen to another port)"
                } else {
                    ""
                };
                Error::Service(format!("cannot listen on {addr}: {e}{hint}"))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("listening on {addr}"), e))?;
        let shared = Arc::new(Shared {
            token,
            ingest: Mutex::new(BTreeMap::new()),
            board: Arc::new(Board::default()),
            closing: tokio::sync::watch::channel(false).0,
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/ingest/{name}", post(ingest).fallback(post_only))
            .route("/", get(dashboard::page))
            .route("/assets/{name}", get(dashboard::asset))
            .route("/api/outputs", get(dashboard::outputs))
            .route("/api/outputs/{name}", get(dashboard::output))
            .route("/api/pipeline", get(dashboard::pipeline))
            .route("/api/live", get(dashboard::live))
            .route("/metrics", get(dashboard::metrics))
            .fallback(not_found)
            .with_state(shared.clone());
        // The health panel's rates: one reading a second while the server runs.
        let board = Arc::downgrade(&shared.board);
        rt.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match board.upgrade() {
                    Some(b) => b.sample(),
                    None => break,
                }
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(%addr, error = %e, "the web server failed");
            }
        });
        tracing::info!(%addr, "web server listening");
        Ok(Arc::new(Server {
            addr,
            shared,
            shutdown: Some(tx),
        }))
    }

    /// The address it listens on (with the port chosen when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Paths of the ingest endpoints, as `/ingest/<name>`.
    pub fn ingest_paths(&self) -> Vec<String> {
        let map = self.shared.ingest.lock().expect("ingest map lock");
        map.keys().map(|k| format!("/ingest/{k}")).collect()
    }

    /// The dashboard: add outputs to it, and the pipeline's counters.
    pub fn board(&self) -> &Arc<Board> {
        &self.shared.board
    }

    pub(crate) fn add_ingest(&self, name: &str, endpoint: Arc<Endpoint>) -> Result<()> {
        let mut map = self.shared.ingest.lock().expect("ingest map lock");
        if map.contains_key(name) {
            return Err(Error::Internal(format!(
                "two http sources serve /ingest/{name}"
            )));
        }
        map.insert(name.to_string(), endpoint);
        Ok(())
    }

    pub(crate) fn remove_ingest(&self, name: &str) {
        self.shared
            .ingest
            .lock()
            .expect("ingest map lock")
            .remove(name);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // WebSockets outlive graceful shutdown (they are upgraded connections): end them.
        let _ = self.shared.closing.send(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A JSON error body with a status.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    json(status, &body)
}

/// A JSON body with a status.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string() + "\n",
    )
        .into_response()
}

/// Compares in time independent of where the two differ.
pub(crate) fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `None` if the request may go on; else the 401 to send.
pub(crate) fn check_token(headers: &HeaderMap, token: Option<&str>) -> Option<Response> {
    let token = token?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
        });
    let why = match given {
        Some(g) if same_token(g.as_bytes(), token.as_bytes()) => return None,
        Some(_) => "the bearer token is wrong",
        None => "this endpoint needs a token: send Authorization: Bearer <token>",
    };
    let mut r = error(StatusCode::UNAUTHORIZED, why);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"weir\""),
    );
    Some(r)
}

async fn health() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

async fn not_found(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_token(&headers, shared.token.as_deref()) {
        return denied;
    }
    error(
        StatusCode::NOT_FOUND,
        "no such page; weir serves the dashboard at /, GET /api/outputs, \
         /api/outputs/<name>, /api/pipeline, /api/live (WebSocket), /metrics, /health and \
         POST /ingest/<source>",
    )
}

async fn post_only() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "send events with POST (a JSON object, a JSON array or NDJSON)",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let endpoint = shared
        .ingest
        .lock()
        .expect("ingest map lock")
        .get(&name)
        .cloned();
    let Some(endpoint) = endpoint else {
        if let Some(denied) = check_token(req.headers(), shared.token.as_deref()) {
            return denied;
        }
        let names: Vec<String> = shared
            .ingest
            .lock()
            .expect("ingest map lock")
            .keys()
            .cloned()
            .collect();
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no http source named {name:?}; this pipeline ingests at: {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names
                        .iter()
                        .map(|n| format!("/ingest/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
    };
    let token = endpoint.token().or(shared.token.as_deref());
    if let Some(denied) = check_token(req.headers(), token) {
        return denied;
    }
    endpoint.handle(query.as_deref(), req).await
}
