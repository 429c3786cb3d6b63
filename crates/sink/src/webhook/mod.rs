//! Webhook: each row is POSTed as a JSON object to a URL, with a timeout, retries with
//! exponential backoff and jitter, an optional secret header, and a dead-letter file for rows
//! that could not be delivered.
//!
//! Delivery is at-least-once: a request that timed out may still have arrived, and is retried;
//! after a crash, a pipeline resumed from its checkpoint sends again the rows that followed it.
//! Every request carries an `Idempotency-Key` header (the row's `alert_id`, or a hash of the
//! row: window, keys and values, which a replay reproduces) so receivers can drop repeats. A 2xx answer is success; 4xx other than 408 and 429 is
//! final (the row goes to the dead letters at once); other failures are retried.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use arrow_array::RecordBatch;
use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::{Error, Result, Sink};

const fn default_timeout() -> Duration {
    Duration::from_ms(5_000)
}
const fn default_retries() -> u32 {
    5
}
const fn default_backoff() -> Duration {
    Duration::from_ms(200)
}
const fn default_max_backoff() -> Duration {
    Duration::from_ms(30_000)
}

/// `[sink.NAME] type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// Extra request headers, e.g. a secret: `headers = { "X-Weir-Token" = "…" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one attempt (default `"5s"`).
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Attempts after the first (default 5).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry (default `"200ms"`); doubled each time, with ±50 % jitter.
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
    /// Longest wait between attempts (default `"30s"`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Duration,
    /// JSON-lines file for rows that could not be delivered, each with the last error.
    /// Without it such rows are counted and logged only.
    #[serde(default)]
    pub dead_letter: Option<PathBuf>,
}

impl WebhookConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut e = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            e.push(Error::config(
                format!("{path}.url"),
                format!("expected an http:// or https:// URL, got {:?}", self.url),
            ));
        }
        if self.timeout.ms <= 0 {
            e.push(Error::config(
                format!("{path}.timeout"),
                "expected a duration above 0",
            ));
        }
        e
    }
}

/// Outcome of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted after this many attempts.
    Delivered(u32),
    /// Given up; the last error.
    Failed(String),
}

/// The webhook sink.
pub struct WebhookSink {
    cfg: WebhookConfig,
    agent: ureq::Agent,
    dead: Option<BufWriter<File>>,
    text: String,
    rng: u64,
    delivered: u64,
    failed: u64,
}

impl WebhookSink {
    /// A sink for `cfg` (opens the dead-letter file, if one is configured, for appending: rows
    /// that failed in earlier runs stay in it).
    pub fn new(cfg: &WebhookConfig) -> Result<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout.to_std()))
            .http_status_as_error(false)
            .build()
            .into();
        let dead = match &cfg.dead_letter {
            Some(p) => Some(crate::append(p)?),
            None => None,
        };
        Ok(WebhookSink {
            cfg: cfg.clone(),
            agent,
            dead,
            text: String::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            delivered: 0,
            failed: 0,
        })
    }

    /// Rows delivered and rows given up so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.delivered, self.failed)
    }

    fn jitter(&mut self, ms: i64) -> StdDuration {
        // xorshift: no need for a crypto RNG to spread retries.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let factor = 0.5 + (self.rng % 1000) as f64 / 1000.0;
        StdDuration::from_millis((ms as f64 * factor) as u64)
    }

    /// POSTs one JSON body, retrying as configured.
    pub fn deliver(&mut self, body: &str, idempotency_key: &str) -> Delivery {
        let mut wait = self.cfg.backoff.ms;
        let mut last = String::new();
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                let d = self.jitter(wait);
                std::thread::sleep(d);
                wait = (wait * 2).min(self.cfg.max_backoff.ms);
            }
            let mut req = self
                .agent
                .post(&self.cfg.url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", idempotency_key);
            for (k, v) in &self.cfg.headers {
                req = req.header(k, v);
            }
            match req.send(body) {
                Ok(resp) if resp.status().is_success() => return Delivery::Delivered(attempt + 1),
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    last = format!("HTTP {code} from {}", self.cfg.url);
                    if (400..500).contains(&code) && code != 408 && code != 429 {
                        return Delivery::Failed(format!("{last} (not retried)"));
                    }
                }
                Err(e) => last = format!("POST {}: {e}", self.cfg.url),
            }
            tracing::warn!(url = %self.cfg.url, attempt = attempt + 1, error = %last, "webhook delivery failed");
        }
        Delivery::Failed(format!("{last} (after {} attempts)", self.cfg.retries + 1))
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Sink for WebhookSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let id_col = batch.schema().index_of("alert_id").ok();
        for row in 0..batch.num_rows() {
            self.text.clear();
            crate::encode::json_line(batch, row, &mut self.text);
            let body = self.text.trim_end().to_string();
            let key = match id_col {
                Some(c) => {
                    weir_core::value::Scalar::from_array(batch.column(c).as_ref(), row).to_text()
                }
                None => format!("{:016x}", fnv1a(&body)),
            };
            match self.deliver(&body, &key) {
                Delivery::Delivered(_) => self.delivered += 1,
                Delivery::Failed(reason) => {
                    self.failed += 1;
                    tracing::error!(url = %self.cfg.url, %reason, "webhook: giving up on a row");
                    if let Some(d) = &mut self.dead {
                        let mut line = String::from("{\"error\":");
                        weir_core::value::write_json_str(&reason, &mut line);
                        line.push_str(",\"row\":");
                        line.push_str(&body);
                        line.push_str("}\n");
                        d.write_all(line.as_bytes())
                            .map_err(|e| Error::io("writing the webhook dead letters", e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(d) = &mut self.dead {
            d.flush()
                .map_err(|e| Error::io("flushing the webhook dead letters", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
