//! `[sink.NAME] type = "mqtt"`: publishes each row as a JSON object to an MQTT topic.
//!
//! With QoS 1 (the default) a flush, and so a checkpoint, completes only when the broker has
//! acknowledged every row published before it; rows in flight when the connection drops are
//! sent again on the resumed session. After a crash the rows that followed the last
//! checkpoint are published again: at-least-once, as MQTT has no deduplication.

use std::collections::HashSet;
use std::time::Duration;

use arrow_array::RecordBatch;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde::Deserialize;
use tokio::sync::watch;
use weir_core::{Error, Result, Sink};

/// `[sink.NAME] type = "mqtt"`: each row as a JSON object on a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSinkConfig {
    /// Broker host (default `127.0.0.1`).
    #[serde(default = "crate::default_host")]
    pub host: String,
    /// Broker port (default 1883).
    #[serde(default = "crate::default_port")]
    pub port: u16,
    /// The topic every row is published to (no wildcards).
    pub topic: String,
    /// 1 (default): wait for the broker's acknowledgement of every row; 0: fire and forget.
    #[serde(default = "crate::default_qos")]
    pub qos: u8,
    /// Ask the broker to keep the last row for new subscribers (default false).
    #[serde(default)]
    pub retain: bool,
    /// The client id (default `weir-<sink name>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name and password, if the broker asks for them.
    #[serde(default)]
    pub username: Option<String>,
    /// See `username`.
    #[serde(default)]
    pub password: Option<String>,
}

impl MqttSinkConfig {
    /// Names the client after the sink unless the config names it.
    pub fn name_client(&mut self, key_path: &str) {
        if self.client_id.is_none() {
            self.client_id = Some(crate::client_id(key_path));
        }
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errs = Vec::new();
        if self.topic.is_empty() || self.topic.contains(['+', '#']) {
            errs.push(Error::config(
                format!("{path}.topic"),
                format!(
                    "{:?} is not a topic to publish to (not empty, no + or #)",
                    self.topic
                ),
            ));
        }
        if self.qos > 1 {
            errs.push(Error::config(
                format!("{path}.qos"),
                format!("{} is not supported: 0 or 1", self.qos),
            ));
        }
        errs
    }
}

/// The MQTT sink.
pub struct MqttSink {
    cfg: MqttSinkConfig,
    client: Option<(
        AsyncClient,
        watch::Receiver<Progress>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Rows handed to the client.
    requested: u64,
    line: String,
}

/// What the connection task has seen: rows acknowledged (or, with QoS 0, written), and the
/// last connection error while one lasts.
#[derive(Debug, Clone, Default)]
struct Progress {
    done: u64,
    trouble: Option<String>,
}

impl MqttSink {
    /// A sink for the config; it connects on its first row.
    pub fn new(cfg: &MqttSinkConfig) -> Self {
        MqttSink {
            cfg: cfg.clone(),
            client: None,
            requested: 0,
            line: String::new(),
        }
    }

    fn what(&self) -> String {
        format!(
            "MQTT {}:{} topic {}",
            self.cfg.host, self.cfg.port, self.cfg.topic
        )
    }

    fn qos(&self) -> QoS {
        match self.cfg.qos {
            0 => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        }
    }

    fn connect(&mut self) -> &AsyncClient {
        if self.client.is_none() {
            let id = self
                .cfg
                .client_id
                .clone()
                .unwrap_or_else(|| "weir-sink".into());
            let mut opts = MqttOptions::new(id, &self.cfg.host, self.cfg.port);
            opts.set_keep_alive(Duration::from_secs(30))
                .set_clean_session(false)
                .set_max_packet_size(16 << 20, 16 << 20);
            if let Some(u) = &self.cfg.username {
                opts.set_credentials(u, self.cfg.password.clone().unwrap_or_default());
            }
            let rt = weir_core::io::runtime();
            let _in_runtime = rt.enter();
            let (client, mut events) = AsyncClient::new(opts, 64);
            let (tx, rx) = watch::channel(Progress::default());
            let task = rt.spawn(async move {
                let mut in_flight = HashSet::<u16>::new();
                let mut backoff = weir_core::io::Backoff::new();
                loop {
                    match events.poll().await {
                        Ok(Event::Outgoing(Outgoing::Publish(0))) => {
                            tx.send_modify(|p| p.done += 1);
                        }
                        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                            in_flight.insert(pkid);
                        }
                        Ok(Event::Incoming(Packet::PubAck(ack))) => {
                            if in_flight.remove(&ack.pkid) {
                                tx.send_modify(|p| p.done += 1);
                            }
                        }
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            backoff.reset();
                            tx.send_modify(|p| p.trouble = None);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tx.send_modify(|p| p.trouble = Some(e.to_string()));
                            backoff.failed();
                            tokio::time::sleep(backoff.delay()).await;
                        }
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
            });
            self.client = Some((client, rx, task));
        }
        &self.client.as_ref().expect("connected above").0
    }

    /// Waits until the broker has every row handed to the client, warning while it is
    /// unreachable.
    fn settle(&mut self) -> Result<()> {
        let (what, want) = (self.what(), self.requested);
        let Some((_, rx, _)) = self.client.as_mut() else {
            return Ok(());
        };
        weir_core::io::wait_for(rx, want, &what, |p| (p.done, p.trouble.clone()))
            .map_err(|_| Error::Internal(format!("{what}: the connection task ended")))
    }
}

impl Sink for MqttSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.line.clear();
        weir_sink::encode::json_lines(batch, 0..batch.num_rows(), &mut self.line);
        let text = std::mem::take(&mut self.line);
        let (topic, qos, retain) = (self.cfg.topic.clone(), self.qos(), self.cfg.retain);
        let client = self.connect().clone();
        let rt = weir_core::io::runtime();
        for obj in text.split_terminator('\n') {
            // Waits while the client has as many rows in flight as it allows.
            rt.block_on(client.publish(topic.as_str(), qos, retain, obj.as_bytes().to_vec()))
                .map_err(|e| Error::Internal(format!("{}: {e}", self.what())))?;
            self.requested += 1;
        }
        self.line = text;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.settle()
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        if let Some((client, _, task)) = self.client.take() {
            let _ = client.try_disconnect();
            task.abort();
        }
    }
}
