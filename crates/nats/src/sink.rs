//! `[sink.NAME] type = "nats"`: publishes each row as a JSON object to a NATS subject.
//!
//! Through JetStream (the default) every row carries a message id, `<run id>-<row number>`,
//! and the sink waits for the stream's acknowledgement of each before a flush or checkpoint
//! completes; a publish that fails or times out is sent again with the same id. The run id and
//! row count are in the checkpoint, so after a crash the replayed rows get the ids they had,
//! and the stream drops the ones it already stored if they come back within its duplicate
//! window (`duplicate_window`, two minutes by default). Rows are never dropped: while the
//! server is unreachable the sink retries with backoff and its input waits.

use std::time::Duration;

use arrow_array::RecordBatch;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use serde::Deserialize;
use weir_core::{Error, Result, Sink};
use weir_sink::msgid::MessageIds;

use weir_core::io::Backoff;

use crate::DEFAULT_URL;

/// Publishes in flight before the sink waits for their acknowledgements (below the client's
/// limit of 5,000).
const MAX_IN_FLIGHT: usize = 4096;

/// `[sink.NAME] type = "nats"`: each row as a JSON object on a subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server address (default `nats://127.0.0.1:4222`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The subject every row is published to.
    pub subject: String,
    /// Publish through JetStream (default true): a stream must capture `subject`, each row is
    /// acknowledged by it and deduplicated by message id. `false`: plain NATS messages, for
    /// live subscribers only; what nobody is subscribed to is gone.
    #[serde(default = "yes")]
    pub jetstream: bool,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

fn yes() -> bool {
    true
}

impl NatsSinkConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let s = &self.subject;
        let bad = s.is_empty()
            || s.contains([' ', '\t', '\r', '\n', '*', '>'])
            || s.split('.').any(str::is_empty);
        if bad {
            return vec![Error::config(
                format!("{path}.subject"),
                format!("{s:?} is not a subject to publish to (dot-separated tokens, no wildcards or spaces)"),
            )];
        }
        Vec::new()
    }
}

/// A row waiting for its acknowledgement.
struct Pending {
    id: u64,
    payload: Bytes,
}

/// The NATS sink.
pub struct NatsSink {
    cfg: NatsSinkConfig,
    conn: Option<(async_nats::Client, jetstream::Context)>,
    backoff: Backoff,
    /// The rows' message ids; kept across checkpoints.
    ids: MessageIds,
    pending: Vec<Pending>,
    line: String,
    duplicates: u64,
}

impl NatsSink {
    /// A sink for the config; it connects on its first flush.
    pub fn new(cfg: &NatsSinkConfig) -> Self {
        NatsSink {
            cfg: cfg.clone(),
            conn: None,
            backoff: Backoff::new(),
            ids: MessageIds::new(),
            pending: Vec::new(),
            line: String::new(),
            duplicates: 0,
        }
    }

    fn what(&self) -> String {
        format!("NATS subject {} at {}", self.cfg.subject, self.cfg.url)
    }

    /// Publishes every pending row and waits until the server has them, retrying through
    /// outages.
    fn settle(&mut self) -> Result<()> {
        let rt = weir_core::io::runtime();
        while !self.pending.is_empty() {
            if self.conn.is_none() {
                std::thread::sleep(self.backoff.until_due());
                let connect = async_nats::ConnectOptions::new()
                    .name("weir")
                    .connection_timeout(Duration::from_secs(5))
                    .connect(self.cfg.url.as_str());
                match rt.block_on(connect) {
                    Ok(client) => {
                        // The context starts a task of its own on the runtime.
                        let _in_runtime = rt.enter();
                        let js = jetstream::ContextBuilder::new()
                            .ack_timeout(Duration::from_secs(10))
                            .build(client.clone());
                        self.conn = Some((client, js));
                        self.backoff.reset();
                    }
                    Err(e) => {
                        tracing::warn!(sink = %self.what(), error = %e, retry_in = ?self.backoff.delay(), "cannot connect; rows wait");
                        self.backoff.failed();
                        continue;
                    }
                }
            }
            let (client, js) = self.conn.clone().expect("connected above");
            let subject = self.cfg.subject.clone();
            let (run, jetstream) = (self.ids.run().to_string(), self.cfg.jetstream);
            let pending = std::mem::take(&mut self.pending);
            let (failed, error, duplicates) = rt.block_on(async move {
                publish_all(&client, &js, &subject, &run, jetstream, pending).await
            });
            self.duplicates += duplicates;
            self.pending = failed;
            match error {
                None => {}
                Some(PublishFailure::Fatal(e)) => return Err(e),
                Some(PublishFailure::Retry(e)) => {
                    tracing::warn!(sink = %self.what(), error = %e, rows = self.pending.len(), retry_in = ?self.backoff.delay(), "publishing failed; retrying");
                    self.conn = None;
                    self.backoff.failed();
                }
            }
        }
        Ok(())
    }
}

enum PublishFailure {
    Retry(String),
    Fatal(Error),
}

/// Publishes `pending` and waits for the acknowledgements; returns the rows to send again,
/// why, and how many the stream reported as duplicates.
async fn publish_all(
    client: &async_nats::Client,
    js: &jetstream::Context,
    subject: &str,
    run: &str,
    jetstream: bool,
    pending: Vec<Pending>,
) -> (Vec<Pending>, Option<PublishFailure>, u64) {
    let subject = async_nats::Subject::from(subject);
    if !jetstream {
        for (i, p) in pending.iter().enumerate() {
            if let Err(e) = client.publish(subject.clone(), p.payload.clone()).await {
                let failure = PublishFailure::Retry(e.to_string());
                return (pending.into_iter().skip(i).collect(), Some(failure), 0);
            }
        }
        return match client.flush().await {
            Ok(()) => (Vec::new(), None, 0),
            Err(e) => (pending, Some(PublishFailure::Retry(e.to_string())), 0),
        };
    }
    let mut acks = Vec::with_capacity(pending.len());
    for p in &pending {
        let msg = PublishMessage::build()
            .payload(p.payload.clone())
            .message_id(format!("{run}-{}", p.id));
        acks.push(js.send_publish(subject.clone(), msg).await);
    }
    let (mut failed, mut failure, mut duplicates) = (Vec::new(), None, 0);
    for (p, ack) in pending.into_iter().zip(acks) {
        let res = match ack {
            Ok(fut) => fut.await,
            Err(e) => Err(e),
        };
        match res {
            Ok(ack) => duplicates += u64::from(ack.duplicate),
            Err(e) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    let msg = format!(
                        "no JetStream stream captures subject {subject}; create one (e.g. `nats \
                         stream add --subjects {subject}`) or set `jetstream = false` to publish \
                         plain messages"
                    );
                    failure = Some(PublishFailure::Fatal(Error::Service(msg)));
                } else if failure.is_none() {
                    failure = Some(PublishFailure::Retry(e.to_string()));
                }
                failed.push(p);
            }
        }
    }
    (failed, failure, duplicates)
}

impl Sink for NatsSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.line.clear();
        weir_sink::encode::json_lines(batch, 0..batch.num_rows(), &mut self.line);
        // One object per line; JSON escapes line breaks inside strings.
        let text = std::mem::take(&mut self.line);
        for obj in text.split_terminator('\n') {
            self.pending.push(Pending {
                id: self.ids.number(),
                payload: Bytes::copy_from_slice(obj.as_bytes()),
            });
            if self.pending.len() >= MAX_IN_FLIGHT {
                self.settle()?;
            }
        }
        self.line = text;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.settle()
    }

    fn summary(&self) -> Option<String> {
        (self.duplicates > 0).then(|| {
            format!(
                "{} rows the stream already had (sent again after a restart) were dropped by it",
                self.duplicates
            )
        })
    }

    fn recover(&mut self, state: Option<&[u8]>) -> Result<()> {
        self.ids.recover("nats sink", state)
    }

    fn pre_commit(&mut self, _epoch: u64) -> Result<Vec<u8>> {
        self.settle()?;
        self.ids.encode("nats sink")
    }
}
