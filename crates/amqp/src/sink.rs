//! The RabbitMQ sink: rows → a bounded buffer → one connection task that publishes them with
//! publisher confirms and publishes again what a broken connection left unconfirmed.

use std::collections::VecDeque;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};

use lapin::{BasicProperties, Connection, ConnectionProperties, PublisherConfirm};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use weir_core::{Error, Result, Sink};
use weir_sink::msgid::MessageIds;

/// `[sink.NAME] type = "rabbitmq"`: each row as a JSON message to an exchange.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    /// The broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`: user guest, virtual host
    /// `/`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The exchange to publish to; it must exist (weir does not declare it). Default `""`,
    /// the broker's default exchange, which routes a message to the queue named by its
    /// routing key.
    #[serde(default)]
    pub exchange: String,
    /// The routing key of each row: text with `{field}` replaced by the row's value
    /// (`"alerts.{target_ip}"`, `"trends.top_cart"`); a null is empty, `{{` is a brace.
    pub routing_key: String,
    /// Persistent messages (delivery mode 2, default true): a durable queue keeps them across
    /// a broker restart.
    #[serde(default = "yes")]
    pub persistent: bool,
    /// Rows that may wait for the broker (default 10000); beyond it the sink's input waits.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
}

fn default_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}

fn yes() -> bool {
    true
}

fn default_buffer() -> usize {
    10_000
}

/// A piece of a routing-key template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

fn parse_template(t: &str) -> std::result::Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty() || name.contains('{') {
                    return Err(format!(
                        "{t:?}: expected {{field}} with a field name, or {{{{ for a brace"
                    ));
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Field(name));
            }
            '}' => return Err(format!("{t:?}: a lone '}}'; write }}}} for a brace")),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

impl AmqpSinkConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        if !self.url.starts_with("amqp://") {
            errs.push(Error::config(
                format!("{path}.url"),
                format!(
                    "{:?}: expected amqp://user:password@host:port/vhost (no TLS yet)",
                    self.url
                ),
            ));
        } else if let Err(e) = self.url.parse::<lapin::uri::AMQPUri>() {
            errs.push(Error::config(format!("{path}.url"), e.to_string()));
        }
        match parse_template(&self.routing_key) {
            Err(e) => errs.push(Error::config(format!("{path}.routing_key"), e)),
            Ok(parts) if parts.is_empty() && self.exchange.is_empty() => errs.push(Error::config(
                format!("{path}.routing_key"),
                "the default exchange routes by routing key to the queue of that name: give \
                 one, or an exchange",
            )),
            Ok(_) => {}
        }
        if self.buffer == 0 {
            errs.push(Error::config(
                format!("{path}.buffer"),
                "must be at least 1",
            ));
        }
        errs
    }

    /// Checks that the routing key's fields are columns of the sink's input.
    pub fn check_schema(&self, path: &str, schema: &Schema) -> Vec<Error> {
        let Ok(parts) = parse_template(&self.routing_key) else {
            return Vec::new();
        };
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Field(f) if schema.field_with_name(f).is_err() => Some(Error::config(
                    format!("{path}.routing_key"),
                    format!(
                        "the input has no field {f:?}; it has {}",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                _ => None,
            })
            .collect()
    }
}

/// One row on its way.
#[derive(Debug, Clone)]
struct Msg {
    /// The row's number, which orders messages published again.
    n: u64,
    id: String,
    key: String,
    body: Vec<u8>,
}

/// What the connection task reports: rows confirmed by the broker, messages published
/// again after a broken connection, and the current trouble while it lasts.
#[derive(Debug, Clone, Default)]
struct Progress {
    confirmed: u64,
    republished: u64,
    trouble: Option<String>,
}

/// The RabbitMQ sink.
pub struct AmqpSink {
    cfg: AmqpSinkConfig,
    key: Vec<Part>,
    conn: Option<(
        mpsc::Sender<Msg>,
        watch::Receiver<Progress>,
        tokio::task::JoinHandle<()>,
    )>,
    /// The rows' message ids; kept across checkpoints.
    ids: MessageIds,
    /// Rows handed over since this sink was opened (what `confirmed` counts towards).
    sent: u64,
    line: String,
}

impl AmqpSink {
    /// A sink for the config (validated); it connects on its first row.
    pub fn new(cfg: &AmqpSinkConfig) -> Self {
        AmqpSink {
            cfg: cfg.clone(),
            key: parse_template(&cfg.routing_key).unwrap_or_default(),
            conn: None,
            ids: MessageIds::new(),
            sent: 0,
            line: String::new(),
        }
    }

    fn what(&self) -> String {
        what(&self.cfg)
    }

    fn start(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel(self.cfg.buffer);
        let (ptx, prx) = watch::channel(Progress::default());
        let task = weir_core::io::runtime().spawn(publish_task(self.cfg.clone(), rx, ptx));
        self.conn = Some((tx, prx, task));
    }

    /// The routing key of each row of `batch`.
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        let n = batch.num_rows();
        let mut keys = vec![String::new(); n];
        let opts = arrow_cast::display::FormatOptions::new().with_null("");
        for part in &self.key {
            match part {
                Part::Text(t) => keys.iter_mut().for_each(|k| k.push_str(t)),
                Part::Field(f) => {
                    let col = batch.column_by_name(f).ok_or_else(|| {
                        Error::Internal(format!(
                            "{}: no column {f} for the routing key",
                            self.what()
                        ))
                    })?;
                    let fmt = arrow_cast::display::ArrayFormatter::try_new(col, &opts)
                        .map_err(|e| Error::Internal(format!("{}: {e}", self.what())))?;
                    for (row, k) in keys.iter_mut().enumerate() {
                        use std::fmt::Write;
                        let _ = write!(k, "{}", fmt.value(row));
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Waits until the broker has confirmed every row handed over, warning every 5 s while
    /// it is unreachable.
    fn settle(&mut self) -> Result<()> {
        let (what, want) = (self.what(), self.sent);
        let Some((_, rx, _)) = self.conn.as_mut() else {
            return Ok(());
        };
        weir_core::io::wait_for(rx, want, &what, |p| (p.confirmed, p.trouble.clone())).map_err(
            |trouble| {
                let why = trouble.unwrap_or_else(|| "the connection task ended".into());
                Error::Service(format!("{what}: {why}"))
            },
        )
    }
}

fn what(cfg: &AmqpSinkConfig) -> String {
    // The URL without its password.
    let url = match (cfg.url.find("://"), cfg.url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("amqp://{}", &cfg.url[at + 1..]),
        _ => cfg.url.clone(),
    };
    format!(
        "RabbitMQ {url} exchange {:?} routing key {:?}",
        cfg.exchange, cfg.routing_key
    )
}

/// Published and not yet confirmed, oldest first.
type InFlight = VecDeque<(Msg, PublisherConfirm)>;

/// Most messages published and not yet confirmed on one channel.
const WINDOW: usize = 1024;

/// Longest wait for the broker to connect, take a publish or close; beyond it the connection
/// is taken for dead. A socket cut mid-handshake or mid-close can leave lapin's future pending
/// for good (seen in the outage test: a publish task waiting forever after a cut).
const BROKER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for the oldest publisher confirm before the connection is taken for dead and
/// its unconfirmed rows are published again.
const CONFIRM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects (again and again, with backoff), publishes what arrives and counts confirms. A
/// message a broken connection left unconfirmed, or the broker refused (nack), is published
/// again, first thing on the next connection. A refused exchange (it does not exist, no
/// permission) is fatal: the task ends with the reason as its trouble.
async fn publish_task(
    cfg: AmqpSinkConfig,
    mut rx: mpsc::Receiver<Msg>,
    progress: watch::Sender<Progress>,
) {
    let mut backoff = weir_core::io::Backoff::new();
    let mut again: VecDeque<Msg> = VecDeque::new();
    let mut closed = false;
    let base = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(if cfg.persistent { 2 } else { 1 });
    loop {
        if closed && again.is_empty() {
            return;
        }
        let conn = async {
            let conn = Connection::connect(&cfg.url, ConnectionProperties::default()).await?;
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>((conn, channel))
        };
        let conn = match tokio::time::timeout(BROKER_WAIT, conn).await {
            Ok(c) => c.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {BROKER_WAIT:?}")),
        };
        let (conn, channel) = match conn {
            Ok(c) => c,
            Err(e) => {
                progress.send_modify(|p| p.trouble = Some(format!("connecting: {e}")));
                backoff.failed();
                tokio::time::sleep(backoff.delay()).await;
                if progress.is_closed() {
                    return;
                }
                continue;
            }
        };
        if backoff.failures() > 0 {
            tracing::info!(sink = %what(&cfg), "connected");
        }
        backoff.reset();
        progress.send_modify(|p| p.trouble = None);
        let mut in_flight: InFlight = VecDeque::new();
        let broke: Option<String> = loop {
            // What the last connection left comes first, then new rows while the window has
            // room; otherwise wait for the oldest confirm.
            let next = if let Some(m) = again.pop_front() {
                Some(m)
            } else if in_flight.len() < WINDOW && !closed {
                if in_flight.is_empty() {
                    match rx.recv().await {
                        Some(m) => Some(m),
                        None => {
                            closed = true;
                            None
                        }
                    }
                } else {
                    match rx.try_recv() {
                        Ok(m) => Some(m),
                        Err(mpsc::error::TryRecvError::Empty) => None,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            None
                        }
                    }
                }
            } else {
                None
            };
            if let Some(m) = next {
                let props = base.clone().with_message_id(m.id.as_str().into());
                let published = tokio::time::timeout(
                    BROKER_WAIT,
                    channel.basic_publish(
                        cfg.exchange.as_str().into(),
                        m.key.as_str().into(),
                        BasicPublishOptions::default(),
                        &m.body,
                        props,
                    ),
                )
                .await;
                match published {
                    Ok(Ok(confirm)) => in_flight.push_back((m, confirm)),
                    Ok(Err(e)) => {
                        again.push_front(m);
                        break Some(format!("publishing: {e}"));
                    }
                    Err(_) => {
                        again.push_front(m);
                        break Some(format!("publishing: no answer within {BROKER_WAIT:?}"));
                    }
                }
                continue;
            }
            let Some((_, confirm)) = in_flight.front_mut() else {
                if closed {
                    break None;
                }
                continue;
            };
            let Ok(confirmation) = tokio::time::timeout(CONFIRM_WAIT, confirm).await else {
                break Some(format!("no publisher confirm within {CONFIRM_WAIT:?}"));
            };
            let (m, _) = in_flight.pop_front().expect("front exists");
            match confirmation {
                Ok(c) if c.is_ack() => progress.send_modify(|p| p.confirmed += 1),
                Ok(_) => {
                    tracing::warn!(sink = %what(&cfg), "the broker refused a message (nack); publishing it again");
                    progress.send_modify(|p| p.republished += 1);
                    again.push_back(m);
                }
                Err(e) => {
                    again.push_front(m);
                    break Some(format!("waiting for confirms: {e}"));
                }
            }
        };
        // The channel first: closing the connection under an open channel makes lapin log
        // an error at every normal end.
        if broke.is_none() {
            let _ = tokio::time::timeout(BROKER_WAIT, channel.close(200, "weir sink done".into()))
                .await;
        }
        let _ = tokio::time::timeout(BROKER_WAIT, conn.close(200, "weir sink done".into())).await;
        let Some(why) = broke else {
            if closed && again.is_empty() && in_flight.is_empty() {
                return;
            }
            continue;
        };
        // Unconfirmed messages go out again, in their order, before anything new.
        let lost: Vec<Msg> = in_flight.into_iter().map(|(m, _)| m).collect();
        let n = lost.len() as u64;
        for m in lost.into_iter().rev() {
            again.push_front(m);
        }
        // `again` now holds the failed one first, then the in-flight ones; order by id.
        again.make_contiguous().sort_by_key(|m| m.n);
        tracing::warn!(sink = %what(&cfg), error = %why, unconfirmed = n, retry_in = ?backoff.delay(), "lost the connection; publishing unconfirmed rows again after reconnecting");
        progress.send_modify(|p| {
            p.trouble = Some(why);
            p.republished += n;
        });
        if fatal(&progress) {
            return;
        }
        backoff.failed();
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// Whether the trouble is one no retry cures: the broker closed the channel because the
/// exchange does not exist (404) or access was refused (403).
fn fatal(progress: &watch::Sender<Progress>) -> bool {
    let p = progress.borrow();
    p.trouble
        .as_deref()
        .is_some_and(|t| t.contains("NOT_FOUND") || t.contains("ACCESS_REFUSED"))
}

impl Sink for AmqpSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = self.keys(batch)?;
        self.line.clear();
        weir_sink::encode::json_lines(batch, 0..batch.num_rows(), &mut self.line);
        let text = std::mem::take(&mut self.line);
        self.start();
        let (tx, _, task) = self.conn.as_ref().expect("started above");
        for (obj, key) in text.split_terminator('\n').zip(keys) {
            let n = self.ids.number();
            let msg = Msg {
                n,
                id: self.ids.id(n),
                key,
                body: obj.as_bytes().to_vec(),
            };
            // Waits while the buffer is full: back-pressure, never a drop.
            if tx.blocking_send(msg).is_err() || task.is_finished() {
                let why = self
                    .conn
                    .as_mut()
                    .and_then(|(_, rx, _)| rx.borrow().trouble.clone())
                    .unwrap_or_else(|| "the connection task ended".into());
                return Err(Error::Service(format!("{}: {why}", self.what())));
            }
            self.sent += 1;
        }
        self.line = text;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.settle()
    }

    fn summary(&self) -> Option<String> {
        let (_, rx, _) = self.conn.as_ref()?;
        let p = rx.borrow();
        (p.republished > 0).then(|| {
            format!(
                "{} rows confirmed by RabbitMQ; {} published again after a lost connection or \
                 a refusal (consumers may see those twice: message_id tells them apart)",
                p.confirmed, p.republished
            )
        })
    }

    fn recover(&mut self, state: Option<&[u8]>) -> Result<()> {
        self.ids.recover("rabbitmq sink", state)
    }

    fn pre_commit(&mut self, _epoch: u64) -> Result<Vec<u8>> {
        self.settle()?;
        self.ids.encode("rabbitmq sink")
    }
}

impl Drop for AmqpSink {
    fn drop(&mut self) {
        if let Some((tx, _, task)) = self.conn.take() {
            drop(tx);
            // Rows not flushed are the caller's failure to report; do not hang on them.
            task.abort();
        }
    }
}
