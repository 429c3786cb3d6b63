//! `[source.NAME] type = "mqtt"`: subscribes to topics on an MQTT broker.
//!
//! QoS 1 on a persistent session (`clean_session = false`, a fixed client id): the broker keeps
//! the subscription and every message not acknowledged while weir is away, and delivers them
//! when it comes back. Acknowledgements (PUBACK) are sent only once the checkpoint that holds
//! a message is durable (without checkpoints, right after each read), so a run killed at any
//! moment loses nothing; what it had read after its last checkpoint is delivered again
//! (at-least-once: MQTT has no position to resume from).
//!
//! The connection runs on the process's one async runtime; messages reach the source through
//! a bounded channel, so a slow pipeline stops the client reading from its socket.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde::Deserialize;
use tokio::sync::mpsc;
use weir_core::{Error, Framing, MessageEnds, ReadOutcome, Result, Source, SourcePosition};

/// Messages the connection may hold for the source before it stops reading its socket.
const CHANNEL: usize = 4096;

/// Bytes handed out per read at most.
const READ_CHUNK: usize = 1 << 20;

/// `[source.NAME] type = "mqtt"`: messages of topics on an MQTT broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSourceConfig {
    /// Broker host (default `127.0.0.1`).
    #[serde(default = "crate::default_host")]
    pub host: String,
    /// Broker port (default 1883).
    #[serde(default = "crate::default_port")]
    pub port: u16,
    /// Topic filters to subscribe to; `+` matches one level, `#` the rest
    /// (`sensors/+/temperature`, `logs/#`).
    pub topics: Vec<String>,
    /// 1 (default): at-least-once, acknowledged after the checkpoint; 0: at-most-once, what
    /// arrives while weir is away is lost.
    #[serde(default = "crate::default_qos")]
    pub qos: u8,
    /// The client id that names the broker's session for weir (default `weir-<source name>`);
    /// two runs with the same id share one session.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Start without the broker's stored session (default false: keep it, so messages
    /// published while weir is away are delivered when it returns).
    #[serde(default)]
    pub clean_session: bool,
    /// User name and password, if the broker asks for them.
    #[serde(default)]
    pub username: Option<String>,
    /// See `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// How a message becomes input lines: `"message"` (default) or `"lines"`.
    #[serde(default)]
    pub framing: Framing,
    /// Put each message's topic into its record under this name (JSON objects only: the
    /// field goes first into the object; declare it in the format's fields as a string).
    #[serde(default)]
    pub topic_field: Option<String>,
    /// End the input after this long without a message (replays, tests); default never.
    #[serde(default)]
    pub stop_when_idle: Option<weir_core::config::Duration>,
}

impl MqttSourceConfig {
    /// Names the client after the source (`source.sensors` → `weir-sensors`) unless the
    /// config names it.
    pub fn name_client(&mut self, key_path: &str) {
        if self.client_id.is_none() {
            self.client_id = Some(crate::client_id(key_path));
        }
    }

    /// The fields this source adds to each record, with their config keys.
    pub fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        self.topic_field
            .iter()
            .map(|f| ("topic_field", f.as_str()))
            .collect()
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        if self.topics.is_empty() {
            errs.push(Error::config(
                format!("{path}.topics"),
                "at least one topic filter, e.g. [\"sensors/#\"]",
            ));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if let Some(why) = topic_filter_problem(t) {
                errs.push(Error::config(format!("{path}.topics[{i}]"), why));
            }
        }
        if self.qos > 1 {
            errs.push(Error::config(
                format!("{path}.qos"),
                format!(
                    "{} is not supported: 0 (at most once) or 1 (at least once)",
                    self.qos
                ),
            ));
        }
        if self.username.is_none() && self.password.is_some() {
            errs.push(Error::config(
                format!("{path}.password"),
                "a password needs a username",
            ));
        }
        errs
    }
}

/// Why `t` is not a valid MQTT topic filter, if it is not.
fn topic_filter_problem(t: &str) -> Option<String> {
    if t.is_empty() {
        return Some("a topic filter cannot be empty".into());
    }
    let levels: Vec<&str> = t.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Some(format!("{t:?}: `#` must be a whole level and the last one"));
        }
        if l.contains('+') && *l != "+" {
            return Some(format!("{t:?}: `+` must be a whole level"));
        }
    }
    None
}

/// What the connection task tells the source.
enum Incoming {
    Message(Publish),
    /// A connection problem (the client reconnects by itself).
    Trouble(String),
    /// (Re)connected.
    Connected,
}

/// A live client and the channel its connection task fills.
struct Live {
    client: AsyncClient,
    rx: mpsc::Receiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

/// The MQTT source.
pub struct MqttSource {
    cfg: MqttSourceConfig,
    client_id: String,
    live: Option<Live>,
    /// Messages handed out.
    received: u64,
    /// Bytes handed out.
    offset: u64,
    ends: MessageEnds,
    /// Messages to acknowledge once a checkpoint covers them: their number and the packet
    /// (without payload).
    unacked: VecDeque<(u64, Publish)>,
    /// Last time a message arrived, for `stop_when_idle`.
    last_message: std::time::Instant,
    /// The broker is not reachable now (for one warning per outage).
    trouble: bool,
    /// Whether the "waiting for the checkpoint" hint was given.
    hinted: bool,
}

impl MqttSource {
    /// A source for the config; it connects on its first read.
    pub fn new(cfg: &MqttSourceConfig) -> Self {
        MqttSource {
            client_id: cfg.client_id.clone().unwrap_or_else(|| "weir".into()),
            cfg: cfg.clone(),
            live: None,
            received: 0,
            offset: 0,
            ends: MessageEnds::new(0),
            unacked: VecDeque::new(),
            last_message: std::time::Instant::now(),
            trouble: false,
            hinted: false,
        }
    }

    fn what(&self) -> String {
        format!(
            "MQTT {}:{} (client {}, topics {})",
            self.cfg.host,
            self.cfg.port,
            self.client_id,
            self.cfg.topics.join(", ")
        )
    }

    fn qos(&self) -> QoS {
        match self.cfg.qos {
            0 => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        }
    }

    /// Starts the client and its connection task.
    fn connect(&mut self) -> Live {
        let mut opts = MqttOptions::new(&self.client_id, &self.cfg.host, self.cfg.port);
        opts.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(self.cfg.clean_session)
            .set_manual_acks(true)
            .set_max_packet_size(16 << 20, 16 << 20);
        if let Some(u) = &self.cfg.username {
            opts.set_credentials(u, self.cfg.password.clone().unwrap_or_default());
        }
        let rt = weir_core::io::runtime();
        let _in_runtime = rt.enter();
        let (client, mut events) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (sub, topics, qos) = (client.clone(), self.cfg.topics.clone(), self.qos());
        let task = rt.spawn(async move {
            let mut backoff = weir_core::io::Backoff::new();
            loop {
                let sent = match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => tx.send(Incoming::Message(p)).await,
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff.reset();
                        // A stored session keeps its subscriptions; subscribing again is
                        // harmless and covers topics added to the config.
                        let filters = topics
                            .iter()
                            .map(|t| rumqttc::SubscribeFilter::new(t.clone(), qos));
                        if let Err(e) = sub.try_subscribe_many(filters) {
                            let _ = tx.send(Incoming::Trouble(e.to_string())).await;
                        }
                        tx.send(Incoming::Connected).await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let sent = tx.send(Incoming::Trouble(e.to_string())).await;
                        backoff.failed();
                        tokio::time::sleep(backoff.delay()).await;
                        sent
                    }
                };
                if sent.is_err() {
                    return; // the source is gone
                }
            }
        });
        Live { client, rx, task }
    }

    fn take(&mut self, inc: Incoming, buf: &mut Vec<u8>, before: usize) {
        match inc {
            Incoming::Message(p) => {
                match &self.cfg.topic_field {
                    Some(name) => {
                        let mut with = Vec::with_capacity(p.payload.len() + p.topic.len() + 16);
                        weir_core::source::with_json_fields(
                            &p.payload,
                            &[(name, &p.topic)],
                            &mut with,
                        );
                        self.cfg.framing.append(&with, buf);
                    }
                    None => self.cfg.framing.append(&p.payload, buf),
                }
                self.received += 1;
                self.ends
                    .push(self.offset + (buf.len() - before) as u64, self.received);
                if p.qos != QoS::AtMostOnce {
                    let header = Publish {
                        payload: bytes::Bytes::new(),
                        ..p
                    };
                    self.unacked.push_back((self.received, header));
                }
                self.last_message = std::time::Instant::now();
            }
            Incoming::Trouble(why) => {
                if !self.trouble {
                    tracing::warn!(source = %self.what(), error = %why, "cannot reach the broker; retrying with backoff");
                }
                self.trouble = true;
            }
            Incoming::Connected => {
                if self.trouble {
                    tracing::info!(source = %self.what(), "connected again");
                }
                self.trouble = false;
            }
        }
    }
}

impl Source for MqttSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: Duration) -> Result<ReadOutcome> {
        self.ends.used(self.offset.saturating_sub(buf.len() as u64));
        if self.live.is_none() {
            self.live = Some(self.connect());
            self.last_message = std::time::Instant::now();
        }
        let before = buf.len();
        let rt = weir_core::io::runtime();
        let first = {
            let live = self.live.as_mut().expect("connected above");
            rt.block_on(async { tokio::time::timeout(wait, live.rx.recv()).await })
        };
        match first {
            Ok(Some(inc)) => self.take(inc, buf, before),
            Ok(None) => {
                return Err(Error::Internal(format!(
                    "{}: the connection task ended",
                    self.what()
                )))
            }
            Err(_) => {}
        }
        while buf.len() - before < READ_CHUNK {
            let next = self.live.as_mut().expect("connected").rx.try_recv();
            match next {
                Ok(inc) => self.take(inc, buf, before),
                Err(_) => break,
            }
        }
        self.offset += (buf.len() - before) as u64;
        if buf.len() > before {
            return Ok(ReadOutcome::Data);
        }
        if self.unacked.len() >= 20 && !self.hinted {
            self.hinted = true;
            tracing::warn!(source = %self.what(), waiting = self.unacked.len(), "messages wait for the next checkpoint to be acknowledged; brokers deliver only so many unacknowledged QoS 1 messages to a client (mosquitto: max_inflight_messages, 20 by default), so with checkpoints the rate is at most that many per checkpoint interval: raise the broker's limit or shorten --checkpoint-interval");
        }
        match self.cfg.stop_when_idle {
            Some(idle) if self.last_message.elapsed() >= idle.to_std() => Ok(ReadOutcome::Eof),
            _ => Ok(ReadOutcome::Idle),
        }
    }

    fn position(&self) -> SourcePosition {
        self.position_before(0)
    }

    fn position_before(&self, unread: u64) -> SourcePosition {
        let at = self.offset.saturating_sub(unread);
        SourcePosition::of_split(at, format!("mqtt/{}", self.client_id), self.ends.before(at))
    }

    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        // The broker's session, not a position, decides what comes next: what was not
        // acknowledged is delivered again. The count only goes on.
        let count = pos.splits.first().map_or(0, |s| s.position);
        self.received = count;
        self.offset = pos.offset;
        self.ends = MessageEnds::new(count);
        Ok(())
    }

    fn commit(&mut self, pos: &SourcePosition) -> Result<()> {
        let upto = pos.splits.first().map_or(0, |s| s.position);
        let Some(live) = &self.live else {
            return Ok(());
        };
        while self.unacked.front().is_some_and(|(n, _)| *n <= upto) {
            let (_, p) = self.unacked.pop_front().expect("checked");
            // Waits for room in the client's request queue; a PUBACK lost with the connection
            // is not needed: the broker delivers the message again, which is at-least-once.
            let res = weir_core::io::runtime().block_on(live.client.ack(&p));
            if let Err(e) = res {
                tracing::warn!(source = %self.what(), error = %e, "could not acknowledge");
            }
        }
        self.hinted = false;
        Ok(())
    }
}

impl Drop for MqttSource {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            // Leave the session to the broker (unacknowledged messages stay there).
            let _ = live.client.try_disconnect();
            live.task.abort();
        }
    }
}
