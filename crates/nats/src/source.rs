//! `[source.NAME] type = "nats"`: reads a JetStream stream through a durable pull consumer.
//!
//! The checkpoint, not the server, decides where a run starts: the source keeps the stream
//! sequence of the last message it handed out, and on every (re)start and after every lost
//! connection it recreates its consumer to deliver from the next sequence, so messages arrive
//! once and in stream order. The consumer's acknowledgements (policy "all": one ack covers
//! every earlier message) are sent only once the checkpoint that holds the messages is durable;
//! without checkpoints, right after each read. A restart without a checkpoint goes on from the
//! consumer's acknowledged floor, so a durable consumer remembers how far weir got.
//!
//! weir only deletes and recreates consumers it created itself (their description says so);
//! it never creates or changes the stream.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, stream::Stream as JsStream};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use weir_core::{Error, Framing, MessageEnds, ReadOutcome, Result, Source, SourcePosition};

use weir_core::io::Backoff;

use crate::DEFAULT_URL;

/// What a consumer weir made says about itself; weir recreates only consumers that say this.
const OWN_DESCRIPTION: &str = "weir source (recreated by weir at its checkpoint's position)";

/// `[source.NAME] type = "nats"`: a JetStream stream, read through a durable pull consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSourceConfig {
    /// Server address (default `nats://127.0.0.1:4222`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The stream to read; it must exist (`nats stream add`): weir does not create streams.
    pub stream: String,
    /// Only messages whose subject matches (wildcards `*` and `>`); default all of the
    /// stream's.
    #[serde(default)]
    pub subject: Option<String>,
    /// Name of the durable consumer weir reads through (default `weir-<source name>`).
    #[serde(default)]
    pub consumer: Option<String>,
    /// Where a consumer weir creates for the first time starts: `"all"` (the stream's first
    /// message, default) or `"new"` (messages published from now on).
    #[serde(default)]
    pub start: Start,
    /// How a message becomes input lines: `"message"` (default: one record per message;
    /// line breaks inside it become spaces, so a pretty-printed JSON object is one record) or
    /// `"lines"` (each line of a message is a record: NDJSON batches, log lines).
    #[serde(default)]
    pub framing: Framing,
    /// Messages asked of the server at a time (default 1000).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// How long the server waits for an acknowledgement before it redelivers (default
    /// `"5m"`). Acknowledgements follow checkpoints, so keep it above the checkpoint
    /// interval; redelivered messages weir already has are skipped, not read twice.
    #[serde(default = "default_ack_wait")]
    pub ack_wait: weir_core::config::Duration,
    /// Put each message's subject into its record under this name (JSON objects only: the
    /// field goes first into the object; declare it in the format's fields as a string).
    #[serde(default)]
    pub subject_field: Option<String>,
    /// Put the time the server stored each message into its record under this name, as an
    /// RFC 3339 string with milliseconds (JSON objects only; declare it as a timestamp). An
    /// event time for payloads that carry none.
    #[serde(default)]
    pub published_field: Option<String>,
    /// End the input once every message the stream held for the consumer has been read
    /// (default false: wait for more, as a stream does). For replaying a stream as a batch
    /// job, and for tests.
    #[serde(default)]
    pub stop_when_caught_up: bool,
}

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The stream's first message.
    #[default]
    All,
    /// Messages published after the consumer was created.
    New,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

fn default_batch() -> usize {
    1000
}

fn default_ack_wait() -> weir_core::config::Duration {
    weir_core::config::Duration::from_ms(300_000)
}

impl NatsSourceConfig {
    /// Names the consumer after the source (`source.events` → `weir-events`) unless the
    /// config names it.
    pub fn name_consumer(&mut self, key_path: &str) {
        if self.consumer.is_none() {
            let name = key_path.rsplit('.').next().unwrap_or(key_path);
            self.consumer = Some(format!("weir-{name}"));
        }
    }

    /// The fields this source adds to each record, with their config keys.
    pub fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        let subject = self
            .subject_field
            .iter()
            .map(|f| ("subject_field", f.as_str()));
        let published = self
            .published_field
            .iter()
            .map(|f| ("published_field", f.as_str()));
        subject.chain(published).collect()
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        let bad_name = |s: &str| s.is_empty() || s.contains(['.', '*', '>', ' ', '\t']);
        if bad_name(&self.stream) {
            errs.push(Error::config(
                format!("{path}.stream"),
                format!(
                    "{:?} is not a stream name (no dots, spaces or wildcards)",
                    self.stream
                ),
            ));
        }
        if let Some(c) = &self.consumer {
            if bad_name(c) {
                errs.push(Error::config(
                    format!("{path}.consumer"),
                    format!("{c:?} is not a consumer name (no dots, spaces or wildcards)"),
                ));
            }
        }
        if self.batch == 0 {
            errs.push(Error::config(format!("{path}.batch"), "must be at least 1"));
        }
        if self.ack_wait.ms < 1000 {
            errs.push(Error::config(
                format!("{path}.ack_wait"),
                "must be at least 1s (acknowledgements wait for checkpoints)",
            ));
        }
        errs
    }
}

/// A failure while connecting or setting up the consumer: worth a retry (the server is down or
/// restarting), or not (the stream does not exist, the consumer is not weir's).
enum SetupError {
    Retry(String),
    Fatal(Error),
}

/// The connection and its message stream, while connected.
struct Live {
    client: async_nats::Client,
    /// The sequence the consumer delivers from.
    from: u64,
    messages: pull::Stream,
    /// Nothing was pending for the consumer after the last message read.
    caught_up: bool,
    /// The consumer's delivery sequence of the last message (0: none yet): a jump means
    /// deliveries were lost with a connection.
    delivered: u64,
}

/// The JetStream source.
pub struct NatsSource {
    cfg: NatsSourceConfig,
    consumer: String,
    live: Option<Live>,
    backoff: Backoff,
    /// Stream sequence of the last message handed out (0: none yet).
    last_seq: u64,
    /// Where the consumer must deliver from on the next setup: set by a checkpoint and by
    /// every lost connection; `None` on a fresh start (then the consumer's own floor).
    resume_at: Option<u64>,
    /// Bytes handed out.
    offset: u64,
    /// Where the messages the node may not have used yet end, by stream sequence.
    ends: MessageEnds,
    /// Reply subjects to acknowledge through, newest last: the last message of each read.
    acks: VecDeque<(u64, async_nats::Subject)>,
    /// Redelivered messages skipped because they were handed out already.
    skipped: u64,
}

impl NatsSource {
    /// A source for the config; it connects on its first read.
    pub fn new(cfg: &NatsSourceConfig) -> Self {
        let consumer = cfg.consumer.clone().unwrap_or_else(|| "weir".to_string());
        NatsSource {
            cfg: cfg.clone(),
            consumer,
            live: None,
            backoff: Backoff::new(),
            last_seq: 0,
            resume_at: None,
            offset: 0,
            ends: MessageEnds::new(0),
            acks: VecDeque::new(),
            skipped: 0,
        }
    }

    fn split_name(&self) -> String {
        format!("{}/{}", self.cfg.stream, self.consumer)
    }

    fn what(&self) -> String {
        format!(
            "NATS stream {} (consumer {}) at {}",
            self.cfg.stream, self.consumer, self.cfg.url
        )
    }

    /// Connects, finds the stream and (re)creates the consumer at the right sequence.
    async fn setup(&self) -> std::result::Result<Live, SetupError> {
        let retry =
            |what: &str, e: &dyn std::fmt::Display| SetupError::Retry(format!("{what}: {e}"));
        let client = async_nats::ConnectOptions::new()
            .name("weir")
            .connection_timeout(Duration::from_secs(5))
            .connect(self.cfg.url.as_str())
            .await
            .map_err(|e| retry("connecting", &e))?;
        let js = jetstream::new(client.clone());
        let stream = match js.get_stream(&self.cfg.stream).await {
            Ok(s) => s,
            Err(e) => {
                use async_nats::jetstream::context::GetStreamErrorKind as K;
                use async_nats::jetstream::ErrorCode;
                return Err(match e.kind() {
                    K::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                        SetupError::Fatal(Error::Service(format!(
                            "{}: the stream does not exist; create it (e.g. `nats stream add {}`) \
                             or correct `stream`",
                            self.what(),
                            self.cfg.stream
                        )))
                    }
                    _ => retry("finding the stream", &e),
                });
            }
        };
        let from = self.start_sequence(&stream).await?;
        let mut config = pull::Config {
            durable_name: Some(self.consumer.clone()),
            description: Some(OWN_DESCRIPTION.to_string()),
            ack_policy: AckPolicy::All,
            ack_wait: self.cfg.ack_wait.to_std(),
            // Acknowledgements wait for checkpoints: the server must not stop delivering
            // because many are pending.
            max_ack_pending: -1,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        };
        if let Some(s) = &self.cfg.subject {
            config.filter_subject = s.clone();
        }
        let consumer = stream.create_consumer(config).await.map_err(|e| {
            use async_nats::jetstream::stream::ConsumerErrorKind as K;
            match e.kind() {
                K::JetStream(j) => SetupError::Fatal(Error::Service(format!(
                    "{}: the server refused the consumer: {j}",
                    self.what()
                ))),
                _ => retry("creating the consumer", &e),
            }
        })?;
        let caught_up = consumer.cached_info().num_pending == 0;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.cfg.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| retry("starting to pull", &e))?;
        Ok(Live {
            client,
            from,
            delivered: 0,
            messages,
            caught_up,
        })
    }

    /// The stream sequence the consumer delivers from: after the checkpoint or the last
    /// message handed out; on a fresh start after what an existing consumer of weir's
    /// acknowledged, else the stream's start (`start = "all"`) or its end (`"new"`). An
    /// existing consumer of weir's is deleted here (the caller recreates it); one that is not
    /// weir's is refused.
    async fn start_sequence(&self, stream: &JsStream) -> std::result::Result<u64, SetupError> {
        let retry =
            |what: &str, e: &dyn std::fmt::Display| SetupError::Retry(format!("{what}: {e}"));
        let fresh = || async {
            match (self.resume_at, self.cfg.start) {
                (Some(seq), _) => Ok(seq),
                (None, Start::All) => Ok(1),
                (None, Start::New) => {
                    let mut stream = stream.clone();
                    let info = stream
                        .info()
                        .await
                        .map_err(|e| retry("reading the stream", &e))?;
                    Ok(info.state.last_sequence + 1)
                }
            }
        };
        let info = match stream.consumer_info(&self.consumer).await {
            Ok(info) => info,
            Err(e) => {
                use async_nats::jetstream::context::ConsumerInfoErrorKind as K;
                return match e.kind() {
                    K::NotFound => fresh().await,
                    _ => Err(retry("looking up the consumer", &e)),
                };
            }
        };
        if info.config.description.as_deref() != Some(OWN_DESCRIPTION) {
            return Err(SetupError::Fatal(Error::Service(format!(
                "{}: a consumer of that name exists and weir did not create it; weir recreates \
                 its own consumer to resume exactly at its checkpoint, so name another one with \
                 `consumer`",
                self.what()
            ))));
        }
        let floor = info.ack_floor.stream_sequence;
        stream
            .delete_consumer(&self.consumer)
            .await
            .map_err(|e| retry("recreating the consumer", &e))?;
        Ok(self.resume_at.unwrap_or(floor + 1))
    }

    /// The connection broke: start again after the last message handed out.
    fn lost(&mut self, why: String) {
        tracing::warn!(source = %self.what(), error = %why, retry_in = ?self.backoff.delay(), "lost the connection; reconnecting");
        self.live = None;
        self.resume_at = Some(self.last_seq + 1);
        self.acks.clear();
        self.backoff.failed();
    }
}

impl Source for NatsSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: Duration) -> Result<ReadOutcome> {
        // What the node passes back unused is the tail of what was handed out; everything
        // before it was used.
        self.ends.used(self.offset.saturating_sub(buf.len() as u64));
        let rt = weir_core::io::runtime();
        if self.live.is_none() {
            if !self.backoff.due() {
                std::thread::sleep(self.backoff.until_due().min(wait));
                return Ok(ReadOutcome::Idle);
            }
            match rt.block_on(self.setup()) {
                Ok(live) => {
                    if self.backoff.failures() > 0 {
                        tracing::info!(source = %self.what(), "connected");
                    }
                    self.backoff.reset();
                    self.acks.clear();
                    if self.resume_at.is_none() {
                        // A fresh start: a checkpoint before the first message must resume
                        // here, not at the stream's start.
                        self.last_seq = live.from.saturating_sub(1);
                        self.ends = MessageEnds::new(self.last_seq);
                    }
                    self.live = Some(live);
                }
                Err(SetupError::Fatal(e)) => return Err(e),
                Err(SetupError::Retry(why)) => {
                    tracing::warn!(source = %self.what(), error = %why, retry_in = ?self.backoff.delay(), "cannot read; retrying");
                    self.backoff.failed();
                    return Ok(ReadOutcome::Idle);
                }
            }
        }
        let live = self.live.as_mut().expect("connected above");
        let limit = self.cfg.batch;
        // The first message may take up to `wait`; the ones already here come with it.
        let got: Vec<std::result::Result<jetstream::Message, String>> = rt.block_on(async {
            let mut got = Vec::new();
            let first = tokio::time::timeout(wait, live.messages.next()).await;
            let Ok(Some(first)) = first else {
                return got;
            };
            got.push(first.map_err(|e| e.to_string()));
            while got.len() < limit {
                match futures_util::FutureExt::now_or_never(live.messages.next()) {
                    Some(Some(m)) => got.push(m.map_err(|e| e.to_string())),
                    _ => break,
                }
            }
            got
        });
        if got.is_empty() {
            let end = self.cfg.stop_when_caught_up && live.caught_up;
            return Ok(if end {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Idle
            });
        }
        let before = buf.len();
        let mut last_reply = None;
        for m in got {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    // What came before the error is kept; the rest is delivered again.
                    self.lost(e);
                    break;
                }
            };
            let seq = match m.info() {
                Ok(info) => {
                    let live = self.live.as_mut().expect("connected while reading");
                    let gap = live.delivered != 0 && info.consumer_sequence != live.delivered + 1;
                    if gap {
                        // Deliveries went missing with a reconnection: the server would send
                        // them again only after ack_wait, out of order. Start again in order.
                        let why = format!(
                            "deliveries {}..{} did not arrive",
                            live.delivered + 1,
                            info.consumer_sequence
                        );
                        self.lost(why);
                        break;
                    }
                    live.delivered = info.consumer_sequence;
                    live.caught_up = info.pending == 0;
                    info.stream_sequence
                }
                Err(e) => {
                    self.lost(format!("a message without JetStream metadata: {e}"));
                    break;
                }
            };
            if seq <= self.last_seq {
                self.skipped += 1;
                continue;
            }
            if self.cfg.subject_field.is_none() && self.cfg.published_field.is_none() {
                self.cfg.framing.append(&m.message.payload, buf);
            } else {
                let published = self.cfg.published_field.as_ref().map(|_| {
                    let ms = m.info().map_or(0, |i| {
                        (i.published.unix_timestamp_nanos() / 1_000_000) as i64
                    });
                    weir_core::time::format_rfc3339_ms(ms)
                });
                let mut fields: Vec<(&str, &str)> = Vec::with_capacity(2);
                if let Some(name) = &self.cfg.subject_field {
                    fields.push((name, m.message.subject.as_str()));
                }
                if let (Some(name), Some(p)) = (&self.cfg.published_field, &published) {
                    fields.push((name, p));
                }
                let mut with = Vec::with_capacity(m.message.payload.len() + 64);
                weir_core::source::with_json_fields(&m.message.payload, &fields, &mut with);
                self.cfg.framing.append(&with, buf);
            }
            self.last_seq = seq;
            self.ends
                .push(self.offset + (buf.len() - before) as u64, seq);
            if let Some(r) = &m.message.reply {
                last_reply = Some((seq, r.clone()));
            }
        }
        if let (Some(r), Some(_)) = (last_reply, &self.live) {
            self.acks.push_back(r);
        }
        self.offset += (buf.len() - before) as u64;
        Ok(if buf.len() > before {
            ReadOutcome::Data
        } else {
            ReadOutcome::Idle
        })
    }

    fn position(&self) -> SourcePosition {
        self.position_before(0)
    }

    fn position_before(&self, unread: u64) -> SourcePosition {
        let at = self.offset.saturating_sub(unread);
        SourcePosition::of_split(at, self.split_name(), self.ends.before(at))
    }

    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        let name = self.split_name();
        let Some(seq) = pos.split(&name) else {
            return Err(Error::State(format!(
                "the checkpoint has no position for {name} (it has {:?}); a source's stream or \
                 consumer cannot change between runs of one checkpoint folder",
                pos.splits.iter().map(|s| &s.split).collect::<Vec<_>>()
            )));
        };
        self.last_seq = seq;
        self.ends = MessageEnds::new(seq);
        self.resume_at = Some(seq + 1);
        self.offset = pos.offset;
        self.live = None;
        self.acks.clear();
        Ok(())
    }

    fn commit(&mut self, pos: &SourcePosition) -> Result<()> {
        let Some(upto) = pos.split(&self.split_name()) else {
            return Ok(());
        };
        let mut newest = None;
        while self.acks.front().is_some_and(|(seq, _)| *seq <= upto) {
            newest = self.acks.pop_front();
        }
        let (Some((_, reply)), Some(live)) = (newest, &self.live) else {
            return Ok(());
        };
        // Policy "all": this one acknowledgement covers every earlier message. A lost one is
        // covered by the next; until then the server may redeliver, which is skipped.
        let client = live.client.clone();
        let res = weir_core::io::runtime().block_on(async move {
            client.publish(reply, Bytes::new()).await?;
            client.flush().await?;
            Ok::<(), async_nats::Error>(())
        });
        if let Err(e) = res {
            tracing::warn!(source = %self.what(), error = %e, "could not acknowledge; the next checkpoint will");
        }
        Ok(())
    }
}

impl Drop for NatsSource {
    fn drop(&mut self) {
        if self.skipped > 0 {
            tracing::info!(source = %self.what(), skipped = self.skipped, "redelivered messages skipped (already read)");
        }
    }
}
