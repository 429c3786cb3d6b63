//! weir-mqtt: MQTT connectors (MQTT 3.1.1, rumqttc).
//!
//! - [`source::MqttSource`] subscribes to topic filters with QoS 1 on a persistent session and
//!   acknowledges each message only once a durable checkpoint holds it: at-least-once, nothing
//!   lost across crashes or broker outages (within what the broker itself keeps).
//! - [`sink::MqttSink`] publishes each row as a JSON object with QoS 1 and waits for the
//!   broker's acknowledgements before a flush or checkpoint completes.
//!
//! Both run their connection on the process's one async runtime ([`weir_core::io`]). A broker
//! that is down at the start or goes away mid-run is retried with backoff (100 ms doubling to
//! 30 s), with a warning; nothing is dropped meanwhile. No TLS yet.

pub mod sink;
pub mod source;

#[cfg(test)]
mod tests;

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_port() -> u16 {
    1883
}

fn default_qos() -> u8 {
    1
}

/// The default client id of a source or sink: `source.sensors` → `weir-sensors`.
fn client_id(key_path: &str) -> String {
    let name = key_path.rsplit('.').next().unwrap_or(key_path);
    format!("weir-{name}")
}
