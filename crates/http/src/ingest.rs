//! `[source.NAME] type = "http"`: events that web clients `POST /ingest/NAME`.
//!
//! A request body is a JSON object, a JSON array of objects, or NDJSON (one object per line),
//! optionally gzip-compressed (`Content-Encoding: gzip`). Each record is checked for JSON
//! syntax and for being an object before anything is accepted; a bad one makes the answer a
//! 400 that says which record, on which line, and why, and nothing of the batch goes in. With
//! partial acceptance (`partial = true`, or `?partial=true` on a request) the good records of
//! the batch go in and the answer (200) lists the rejected ones. Field types are checked
//! later, by the source's format: a record whose `status` is not a number becomes a dead
//! letter with the reason, like a bad line of a file.
//!
//! Accepted records wait in a queue bounded in bytes (`queue`, 64 MiB by default) for the
//! pipeline to take them. When the pipeline is slower than its clients the queue fills and
//! requests are refused with 429 and `Retry-After` rather than buffered without bound; a
//! per-source `rate_limit` (records per second) refuses the same way. A 2xx answer means
//! the records are in the pipeline's queue; with `ack = "checkpoint"` the answer waits until
//! a checkpoint holding them is durable (without checkpoints: until the source node has taken
//! them), so a client that saw 2xx never has to send again. A run that stops first answers
//! 503 to the clients still waiting: their records may or may not have been processed, and
//! a checkpointed run that restarts has not kept them, so they send again.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use weir_core::config::ByteSize;
use weir_core::{Error, MessageEnds, ReadOutcome, Result, Source, SourcePosition};

use crate::server::{error, json, resolve_token, Server};

/// Bytes handed out per read at most (whole batches; one batch may be larger).
const READ_CHUNK: usize = 1 << 20;

/// Rejected records listed in an answer at most; the count says how many there were.
const LIST_REJECTED: usize = 100;

/// When a 2xx answer is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ack {
    /// Once the records are in the pipeline's queue.
    #[default]
    Accepted,
    /// Once a checkpoint holding them is durable (without checkpoints: once the source node
    /// took them).
    Checkpoint,
}

/// `[source.NAME] type = "http"`: records posted to `/ingest/NAME` on the pipeline's server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// The endpoint's name in `/ingest/<endpoint>` (default: the source's name).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A bearer token clients must send to this endpoint (instead of `[server] token`).
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding that token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Largest request body, after gzip decompression too (default 16 MiB); larger: 413.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// Bytes of accepted records that may wait for the pipeline (default 64 MiB); beyond it
    /// requests get 429 with `Retry-After`. At least `max_body`.
    #[serde(default = "default_queue")]
    pub queue: ByteSize,
    /// Records per second this endpoint accepts, over all clients (token bucket with a burst
    /// of one second); beyond it 429 with `Retry-After`. Default 0: no limit.
    #[serde(default)]
    pub rate_limit: u64,
    /// Accept the good records of a batch that has bad ones, and list the bad ones in the
    /// answer (default false: a batch with a bad record is refused whole, so a client can fix
    /// and resend it without duplicates). A request may ask with `?partial=true`.
    #[serde(default)]
    pub partial: bool,
    /// When a 2xx answer is sent: `"accepted"` (default: once queued) or `"checkpoint"`
    /// (once durable).
    #[serde(default)]
    pub ack: Ack,
    /// Put the time weir received each request into its records under this name (an RFC 3339
    /// string with milliseconds; declare it as a timestamp): an event time for clients that
    /// send none.
    #[serde(default)]
    pub received_field: Option<String>,
    /// End the input after this long without a request (replays, tests); default never.
    #[serde(default)]
    pub stop_when_idle: Option<weir_core::config::Duration>,
    /// The source's name, filled in from its key path.
    #[serde(skip)]
    pub name: String,
}

fn default_max_body() -> ByteSize {
    ByteSize::from_bytes(16 << 20)
}

fn default_queue() -> ByteSize {
    ByteSize::from_bytes(64 << 20)
}

impl HttpSourceConfig {
    /// Takes the source's name from its key path (`source.clicks` → `clicks`).
    pub fn name_endpoint(&mut self, key_path: &str) {
        self.name = key_path.rsplit('.').next().unwrap_or(key_path).to_string();
    }

    /// The name in `/ingest/<name>`.
    pub fn endpoint_name(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(&self.name)
    }

    /// The fields this source adds to each record, with their config keys.
    pub fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        self.received_field
            .iter()
            .map(|f| ("received_field", f.as_str()))
            .collect()
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        if let Err(e) = resolve_token(&self.token, &self.token_env, path) {
            errs.push(e);
        }
        if let Some(e) = &self.endpoint {
            let ok = !e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                errs.push(Error::config(
                    format!("{path}.endpoint"),
                    format!("{e:?}: use letters, digits, '-', '_' and '.' only"),
                ));
            }
        }
        if self.max_body.bytes == 0 {
            errs.push(Error::config(format!("{path}.max_body"), "must be above 0"));
        }
        if self.queue < self.max_body {
            errs.push(Error::config(
                format!("{path}.queue"),
                format!(
                    "must be at least max_body ({} bytes), or a largest request could never \
                     be accepted",
                    self.max_body.bytes
                ),
            ));
        }
        errs
    }
}

/// A request's records, as lines for the source, and what was wrong with the others.
#[derive(Debug, Default)]
pub struct Split {
    /// The accepted records, one per line.
    pub data: Vec<u8>,
    /// How many records `data` holds.
    pub records: u64,
    /// The refused ones.
    pub rejected: Vec<Rejected>,
    /// A problem with the body as a whole (not one record's): nothing can be accepted.
    pub fatal: Option<String>,
}

/// A record refused, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the batch, from 0 (counting the good records too).
    pub index: u64,
    /// The line of the body it starts on, from 1.
    pub line: u64,
    /// Why.
    pub error: String,
}

/// What the body holds, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`: an object, an array of objects, or objects one after another.
    Json,
    /// `application/x-ndjson` and its aliases: one object per line.
    Lines,
}

impl BodyKind {
    /// The kind for a `Content-Type` value; `None` for one weir does not take.
    pub fn of(content_type: &str) -> Option<BodyKind> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" => Some(BodyKind::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/json-seq" => Some(BodyKind::Lines),
            _ => None,
        }
    }
}

/// serde_json's message without its " at line L column C" (the caller says where).
fn what(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The JSON type of a value that starts with byte `b`, for "expected an object, got …".
fn kind_name(b: u8) -> &'static str {
    match b {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

/// Appends one record (valid JSON, an object) as one line, with `fields` put first.
fn push_record(rec: &[u8], fields: &[(&str, &str)], out: &mut Split) {
    let start = out.data.len();
    if fields.is_empty() {
        out.data.extend_from_slice(rec);
    } else {
        weir_core::source::with_json_fields(rec, fields, &mut out.data);
    }
    // Line breaks can only be whitespace between tokens in valid JSON (never inside a
    // string), so a pretty-printed object becomes one line.
    for b in &mut out.data[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.data.push(b'\n');
    out.records += 1;
}

/// 1-based line of byte offset `at` in `body`.
fn line_at(body: &[u8], at: usize) -> u64 {
    1 + memchr_count(&body[..at.min(body.len())])
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Checks and splits a request body into records. `fields` go first into every record.
pub fn split(kind: BodyKind, body: &[u8], fields: &[(&str, &str)]) -> Split {
    let mut out = Split {
        data: Vec::with_capacity(body.len() + body.len() / 8),
        ..Split::default()
    };
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return out;
    };
    match kind {
        BodyKind::Lines => split_lines(body, fields, &mut out),
        BodyKind::Json if body[first] == b'[' => {
            match serde_json::from_slice::<Vec<&RawValue>>(&body[first..]) {
                Err(e) => {
                    out.fatal = Some(format!(
                        "the body is not a JSON array: {} at line {} column {}",
                        what(&e),
                        e.line() as u64 + line_at(body, first) - 1,
                        e.column()
                    ));
                }
                Ok(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let text = item.get().as_bytes();
                        if text[0] == b'{' {
                            push_record(text, fields, &mut out);
                        } else {
                            let at = text.as_ptr() as usize - body.as_ptr() as usize;
                            out.rejected.push(Rejected {
                                index: i as u64,
                                line: line_at(body, at),
                                error: format!(
                                    "expected a JSON object, got {}",
                                    kind_name(text[0])
                                ),
                            });
                        }
                    }
                }
            }
        }
        BodyKind::Json => {
            // Objects one after another (one, or NDJSON sent as application/json).
            let mut values = serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>();
            let mut index = 0u64;
            loop {
                let at = values.byte_offset();
                match values.next() {
                    None => break,
                    Some(Ok(v)) => {
                        let text = v.get().as_bytes();
                        if text[0] == b'{' {
                            push_record(text, fields, &mut out);
                        } else {
                            let start = text.as_ptr() as usize - body.as_ptr() as usize;
                            out.rejected.push(Rejected {
                                index,
                                line: line_at(body, start),
                                error: format!(
                                    "expected a JSON object, got {}",
                                    kind_name(text[0])
                                ),
                            });
                        }
                    }
                    Some(Err(e)) => {
                        // The rest cannot be cut into records: it is refused with this one.
                        let skip = body[at..]
                            .iter()
                            .position(|b| !b.is_ascii_whitespace())
                            .unwrap_or(0);
                        out.rejected.push(Rejected {
                            index,
                            line: line_at(body, at + skip),
                            error: format!(
                                "{} at line {} column {}; the rest of the body was not read \
                                 (send one object per line as application/x-ndjson to have \
                                 only the bad lines refused)",
                                what(&e),
                                e.line(),
                                e.column()
                            ),
                        });
                        break;
                    }
                }
                index += 1;
            }
        }
    }
    out
}

fn split_lines(body: &[u8], fields: &[(&str, &str)], out: &mut Split) {
    let mut index = 0u64;
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let start = line.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            continue;
        };
        let line = &line[start..];
        let end = line
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |e| e + 1);
        let rec = &line[..end];
        let problem = if rec[0] != b'{' {
            Some(format!("expected a JSON object, got {}", kind_name(rec[0])))
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(rec)
                .err()
                .map(|e| format!("{} at column {}", what(&e), e.column() + start))
        };
        match problem {
            None => push_record(rec, fields, out),
            Some(error) => out.rejected.push(Rejected {
                index,
                line: n as u64 + 1,
                error,
            }),
        }
        index += 1;
    }
}

/// Accepted records waiting for the source node.
struct Batch {
    id: u64,
    data: Vec<u8>,
    /// Answers the request once the batch is durable (`ack = "checkpoint"`).
    ack: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A token bucket in records.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes `n` tokens, or says how long until there are enough. A batch larger than the
    /// burst goes in when the bucket is full, leaving it in debt.
    fn take(&mut self, n: u64) -> std::result::Result<(), Duration> {
        let now = Instant::now();
        let burst = self.rate;
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(burst);
        self.at = now;
        let need = (n as f64).min(burst);
        if self.tokens >= need {
            self.tokens -= n as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((need - self.tokens) / self.rate))
        }
    }
}

struct Queue {
    batches: VecDeque<Batch>,
    bytes: usize,
    next_id: u64,
    /// The source is gone: nothing is accepted.
    closed: bool,
    bucket: Option<Bucket>,
    /// Last time a request was accepted, for `stop_when_idle`.
    last: Instant,
}

/// Counters of one endpoint.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
}

/// One `/ingest/<name>` endpoint: the request side of an [`HttpSource`].
pub struct Endpoint {
    cfg: HttpSourceConfig,
    token: Option<String>,
    queue: Mutex<Queue>,
    ready: Condvar,
    counts: Counts,
}

/// Lowest `Retry-After` (seconds) for a full queue: the pipeline needs a moment to drain.
const RETRY_FULL: u64 = 1;

fn retry_after(status: StatusCode, secs: u64, message: String) -> Response {
    let mut r = error(status, message);
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.max(1).to_string()).expect("digits"),
    );
    r
}

/// An endpoint's counters for `/metrics`.
pub(crate) struct EndpointFigures {
    pub requests: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub refused: u64,
    pub queued_bytes: u64,
}

impl Endpoint {
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub(crate) fn figures(&self) -> EndpointFigures {
        let c = &self.counts;
        EndpointFigures {
            requests: c.requests.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            queued_bytes: self.queue.lock().map(|q| q.bytes as u64).unwrap_or(0),
        }
    }

    fn partial(&self, query: Option<&str>) -> bool {
        let asked = query.and_then(|q| {
            q.split('&').find_map(|kv| match kv.split_once('=') {
                Some(("partial", v)) => Some(v == "true" || v == "1"),
                None if kv == "partial" => Some(true),
                _ => None,
            })
        });
        asked.unwrap_or(self.cfg.partial)
    }

    /// Reads the body up to `max_body`, decompressed if it says gzip.
    async fn body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> std::result::Result<Vec<u8>, Response> {
        let max = self.cfg.max_body.bytes as usize;
        let too_big = || {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than this endpoint's max_body ({max} bytes); send smaller batches"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_big());
        }
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        let gzip = match encoding.as_deref() {
            None | Some("identity") | Some("") => false,
            Some("gzip") | Some("x-gzip") => true,
            Some(other) => {
                return Err(error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Content-Encoding {other:?} is not supported; send gzip or none"),
                ))
            }
        };
        let raw = match axum::body::to_bytes(body, max).await {
            Ok(b) => b,
            Err(e) => {
                let limit = std::error::Error::source(&e)
                    .is_some_and(|s| s.to_string().contains("length limit"));
                return Err(if limit || e.to_string().contains("length limit") {
                    too_big()
                } else {
                    error(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
                });
            }
        };
        if !gzip {
            return Ok(raw.to_vec());
        }
        let mut out = Vec::with_capacity((raw.len() * 4).min(max));
        let read = flate2::read::MultiGzDecoder::new(&raw[..])
            .take(max as u64 + 1)
            .read_to_end(&mut out);
        match read {
            Err(e) => Err(error(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid gzip: {e}"),
            )),
            Ok(n) if n > max => Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body decompresses to more than this endpoint's max_body ({max} bytes); send smaller batches"),
            )),
            Ok(_) => Ok(out),
        }
    }

    /// Answers one `POST /ingest/<name>` (the token was checked).
    pub(crate) async fn handle(self: Arc<Self>, query: Option<&str>, req: Request) -> Response {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let Some(kind) = content_type.and_then(BodyKind::of) else {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {}: send application/json (an object or an array of \
                     objects) or application/x-ndjson (one object per line)",
                    content_type.map_or("missing".to_string(), |c| format!("{c:?}"))
                ),
            );
        };
        let body = match self.body(&parts.headers, body).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let received = self
            .cfg
            .received_field
            .as_ref()
            .map(|_| weir_core::time::format_rfc3339_ms(weir_core::time::now_ms()));
        let fields: Vec<(&str, &str)> = match (&self.cfg.received_field, &received) {
            (Some(name), Some(at)) => vec![(name.as_str(), at.as_str())],
            _ => Vec::new(),
        };
        let split = split(kind, &body, &fields);
        drop(body);
        if let Some(why) = split.fatal {
            self.counts.rejected.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, why);
        }
        let partial = self.partial(query);
        let rejected = split.rejected.len() as u64;
        let listed = || {
            split
                .rejected
                .iter()
                .take(LIST_REJECTED)
                .map(|r| serde_json::json!({ "index": r.index, "line": r.line, "error": r.error }))
                .collect::<Vec<_>>()
        };
        if rejected > 0 && (!partial || split.records == 0) {
            self.counts.rejected.fetch_add(rejected, Ordering::Relaxed);
            let first = &split.rejected[0];
            let message = format!(
                "record {} (line {}): {}{}",
                first.index,
                first.line,
                first.error,
                match (rejected, partial) {
                    (1, true) => String::new(),
                    (1, false) => "; nothing of the batch was accepted".to_string(),
                    (n, true) => format!(" (and {} more)", n - 1),
                    (n, false) => format!(
                        " (and {} more); nothing of the batch was accepted (?partial=true \
                         accepts the good records)",
                        n - 1
                    ),
                }
            );
            let body = serde_json::json!({
                "error": message,
                "accepted": 0,
                "rejected_count": rejected,
                "rejected": listed(),
            });
            return json(StatusCode::BAD_REQUEST, &body);
        }
        let records = split.records;
        let waiter = match self.enqueue(split.data, records) {
            Ok(w) => w,
            Err(r) => return r,
        };
        self.counts.accepted.fetch_add(records, Ordering::Relaxed);
        self.counts.rejected.fetch_add(rejected, Ordering::Relaxed);
        if let Some(w) = waiter {
            if w.await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the pipeline stopped before the records were durable; send them again",
                );
            }
        }
        let mut body = serde_json::json!({ "accepted": records });
        if rejected > 0 {
            body["rejected_count"] = rejected.into();
            body["rejected"] = listed().into();
        }
        json(StatusCode::OK, &body)
    }

    /// Queues accepted records, or refuses them with 429/503.
    #[allow(clippy::result_large_err)]
    fn enqueue(
        &self,
        data: Vec<u8>,
        records: u64,
    ) -> std::result::Result<Option<tokio::sync::oneshot::Receiver<()>>, Response> {
        if records == 0 {
            return Ok(None);
        }
        let mut q = self.queue.lock().expect("ingest queue lock");
        if q.closed {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the pipeline is stopping; nothing more is accepted",
            ));
        }
        if !q.batches.is_empty() && q.bytes + data.len() > self.cfg.queue.bytes as usize {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            return Err(retry_after(
                StatusCode::TOO_MANY_REQUESTS,
                RETRY_FULL,
                format!(
                    "the pipeline is behind ({} bytes wait for it); retry later",
                    q.bytes
                ),
            ));
        }
        if let Some(b) = &mut q.bucket {
            if let Err(wait) = b.take(records) {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                return Err(retry_after(
                    StatusCode::TOO_MANY_REQUESTS,
                    wait.as_secs_f64().ceil() as u64,
                    format!(
                        "over this endpoint's rate_limit of {} records per second; retry later",
                        self.cfg.rate_limit
                    ),
                ));
            }
        }
        let (ack, waiter) = match self.cfg.ack {
            Ack::Accepted => (None, None),
            Ack::Checkpoint => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        q.next_id += 1;
        let id = q.next_id;
        q.bytes += data.len();
        q.last = Instant::now();
        q.batches.push_back(Batch { id, data, ack });
        drop(q);
        self.ready.notify_one();
        Ok(waiter)
    }
}

/// The source side: hands the queued records to the pipeline.
pub struct HttpSource {
    endpoint: Arc<Endpoint>,
    server: Arc<Server>,
    name: String,
    offset: u64,
    /// Where each batch handed out ends, by batch id.
    ends: MessageEnds,
    /// Requests waiting for the checkpoint that holds their batch, oldest first.
    acks: VecDeque<(u64, tokio::sync::oneshot::Sender<()>)>,
}

impl HttpSource {
    /// Serves `/ingest/<endpoint>` on `server` until dropped.
    pub fn new(cfg: &HttpSourceConfig, server: &Arc<Server>) -> Result<Self> {
        let token = resolve_token(&cfg.token, &cfg.token_env, &format!("source.{}", cfg.name))?;
        let endpoint = Arc::new(Endpoint {
            cfg: cfg.clone(),
            token,
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                bytes: 0,
                next_id: 0,
                closed: false,
                bucket: (cfg.rate_limit > 0).then(|| Bucket {
                    rate: cfg.rate_limit as f64,
                    tokens: cfg.rate_limit as f64,
                    at: Instant::now(),
                }),
                last: Instant::now(),
            }),
            ready: Condvar::new(),
            counts: Counts::default(),
        });
        let name = cfg.endpoint_name().to_string();
        server.add_ingest(&name, endpoint.clone())?;
        Ok(HttpSource {
            endpoint,
            server: server.clone(),
            name,
            offset: 0,
            ends: MessageEnds::new(0),
            acks: VecDeque::new(),
        })
    }

    fn split_name(&self) -> String {
        format!("http/{}", self.name)
    }
}

impl Source for HttpSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: Duration) -> Result<ReadOutcome> {
        self.ends.used(self.offset.saturating_sub(buf.len() as u64));
        let deadline = Instant::now() + wait;
        let mut q = self.endpoint.queue.lock().expect("ingest queue lock");
        while q.batches.is_empty() && !q.closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .endpoint
                .ready
                .wait_timeout(q, deadline - now)
                .expect("ingest queue lock")
                .0;
        }
        if q.batches.is_empty() {
            if q.closed {
                // Stopping, and everything accepted was handed out.
                return Ok(ReadOutcome::Eof);
            }
            let idle = self.endpoint.cfg.stop_when_idle;
            if idle.is_some_and(|d| q.last.elapsed() >= d.to_std()) {
                q.closed = true;
                return Ok(ReadOutcome::Eof);
            }
            return Ok(ReadOutcome::Idle);
        }
        let before = buf.len();
        while let Some(b) = q.batches.front() {
            if buf.len() > before && buf.len() - before + b.data.len() > READ_CHUNK {
                break;
            }
            let b = q.batches.pop_front().expect("checked");
            q.bytes -= b.data.len();
            buf.extend_from_slice(&b.data);
            self.ends
                .push(self.offset + (buf.len() - before) as u64, b.id);
            if let Some(ack) = b.ack {
                self.acks.push_back((b.id, ack));
            }
        }
        drop(q);
        self.offset += (buf.len() - before) as u64;
        Ok(ReadOutcome::Data)
    }

    fn position(&self) -> SourcePosition {
        self.position_before(0)
    }

    fn position_before(&self, unread: u64) -> SourcePosition {
        let at = self.offset.saturating_sub(unread);
        SourcePosition::of_split(at, self.split_name(), self.ends.before(at))
    }

    /// Records after the checkpoint were answered 2xx only with `ack = "accepted"`; those are
    /// not kept across a restart (only `ack = "checkpoint"` promises that). Batch numbers go
    /// on after the checkpoint's.
    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        let last = pos.split(&self.split_name()).unwrap_or(0);
        let mut q = self.endpoint.queue.lock().expect("ingest queue lock");
        // Batches queued before the restore (none in a fresh run) keep their order after it.
        let mut id = last;
        for b in q.batches.iter_mut() {
            id += 1;
            b.id = id;
        }
        q.next_id = id;
        drop(q);
        self.ends = MessageEnds::new(last);
        self.offset = pos.offset;
        self.acks.clear();
        Ok(())
    }

    /// Records answered 2xx are the pipeline's to deliver: new requests get 503 from now on,
    /// and what is queued is read to its end before the input ends.
    fn stopping(&mut self) -> bool {
        let mut q = self.endpoint.queue.lock().expect("ingest queue lock");
        q.closed = true;
        drop(q);
        self.endpoint.ready.notify_all();
        true
    }

    fn commit(&mut self, pos: &SourcePosition) -> Result<()> {
        let Some(upto) = pos.split(&self.split_name()) else {
            return Ok(());
        };
        while self.acks.front().is_some_and(|(id, _)| *id <= upto) {
            let (_, tx) = self.acks.pop_front().expect("checked");
            let _ = tx.send(());
        }
        Ok(())
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.server.remove_ingest(&self.name);
        let mut q = self.endpoint.queue.lock().expect("ingest queue lock");
        q.closed = true;
        let left: usize = q.batches.iter().map(|b| b.data.len()).sum();
        q.batches.clear();
        drop(q);
        let c = &self.endpoint.counts;
        if left > 0 {
            tracing::warn!(
                endpoint = %format!("/ingest/{}", self.name),
                bytes = left,
                "the run failed with accepted records the pipeline had not taken (answered \
                 2xx with ack = \"accepted\"); ack = \"checkpoint\" answers only once records \
                 are durable"
            );
        }
        tracing::info!(
            endpoint = %format!("/ingest/{}", self.name),
            requests = c.requests.load(Ordering::Relaxed),
            accepted = c.accepted.load(Ordering::Relaxed),
            rejected = c.rejected.load(Ordering::Relaxed),
            refused_429 = c.refused.load(Ordering::Relaxed),
            unread_bytes = left,
            "http source closed"
        );
    }
}
