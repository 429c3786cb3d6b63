//! Webhook: each row is POSTed as a JSON object to a URL, with a timeout, retries with
//! exponential backoff and jitter, an optional secret header, and a dead-letter file for rows
//! that could not be delivered. Up to `concurrency` requests run at once from a bounded queue:
//! a slow receiver slows the pipeline only when the queue is full. Rows may arrive out of
//! order (alerts carry their own time and `alert_id`).
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
const fn default_concurrency() -> usize {
    64
}
const fn default_queue() -> usize {
    10_000
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
    /// Requests in flight at once (default 64): a receiver answering in 500 ms still takes
    /// 128 rows per second.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Rows waiting for a free request before the pipeline is made to wait (default 10000).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

impl WebhookConfig {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut e = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            e.push(Error::config(
                format!("{path}.url"),
                format!(
                    "expected an http:// or https:// URL, got {:?}",
                    weir_core::redact::url(&self.url)
                ),
            ));
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            e.push(Error::config(
                format!("{path}.concurrency"),
                format!(
                    "expected 1 to 1024 requests at once, got {}",
                    self.concurrency
                ),
            ));
        }
        if self.queue == 0 {
            e.push(Error::config(
                format!("{path}.queue"),
                "expected at least 1 row",
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

/// POSTs bodies with retries; one per worker thread (each with its own jitter).
#[derive(Clone)]
pub struct Poster {
    cfg: WebhookConfig,
    /// The URL's secrets out of every message and dead letter.
    redact: weir_core::redact::Redactor,
    agent: ureq::Agent,
    rng: u64,
}

impl Poster {
    /// A poster for `cfg`.
    pub fn new(cfg: &WebhookConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout.to_std()))
            .http_status_as_error(false)
            .build()
            .into();
        Poster {
            redact: weir_core::redact::Redactor::new(&cfg.url),
            cfg: cfg.clone(),
            agent,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
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
                    last = format!("HTTP {code} from {}", self.redact.url());
                    if (400..500).contains(&code) && code != 408 && code != 429 {
                        return Delivery::Failed(format!("{last} (not retried)"));
                    }
                }
                Err(e) => last = self.redact.scrub(&format!("POST {}: {e}", self.cfg.url)),
            }
            tracing::warn!(url = %self.redact.url(), attempt = attempt + 1, error = %last, "webhook delivery failed");
        }
        Delivery::Failed(format!("{last} (after {} attempts)", self.cfg.retries + 1))
    }
}

/// A row on its way: its JSON body and idempotency key.
struct Job {
    body: String,
    key: String,
}

/// What the sink did, for the run summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Rows accepted by the receiver.
    pub delivered: u64,
    /// Of those, rows that needed more than one attempt.
    pub retried: u64,
    /// Rows given up (to the dead-letter file, when there is one).
    pub dead_lettered: u64,
}

/// The webhook sink: rows go into a bounded queue that `concurrency` workers deliver from, so
/// one slow receiver answering in 500 ms still takes `concurrency` × 2 rows per second, and
/// the pipeline waits only when the queue is full.
pub struct WebhookSink {
    cfg: WebhookConfig,
    redact: weir_core::redact::Redactor,
    jobs: Option<crossbeam_channel::Sender<Job>>,
    outcomes: crossbeam_channel::Receiver<(Job, Delivery)>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Rows queued or being delivered.
    in_flight: u64,
    dead: Option<BufWriter<File>>,
    text: String,
    counts: Counts,
}

impl WebhookSink {
    /// A sink for `cfg` (opens the dead-letter file, if one is configured, for appending: rows
    /// that failed in earlier runs stay in it) and its delivery workers.
    pub fn new(cfg: &WebhookConfig) -> Result<Self> {
        let dead = match &cfg.dead_letter {
            Some(p) => Some(crate::append(p)?),
            None => None,
        };
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(cfg.queue.max(1));
        let (done, outcomes) = crossbeam_channel::unbounded();
        let mut workers = Vec::new();
        for i in 0..cfg.concurrency.max(1) {
            let (queue, done) = (queue.clone(), done.clone());
            let mut poster = Poster::new(cfg);
            poster.rng ^= (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
            let h = std::thread::Builder::new()
                .name(format!("weir-webhook-{i}"))
                .spawn(move || {
                    for job in queue {
                        let d = poster.deliver(&job.body, &job.key);
                        if done.send((job, d)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::io("starting a webhook worker", e))?;
            workers.push(h);
        }
        Ok(WebhookSink {
            redact: weir_core::redact::Redactor::new(&cfg.url),
            cfg: cfg.clone(),
            jobs: Some(jobs),
            outcomes,
            workers,
            in_flight: 0,
            dead,
            text: String::new(),
            counts: Counts::default(),
        })
    }

    /// What the sink did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Takes the outcomes that arrived; with `all`, waits for every row in flight.
    fn collect(&mut self, all: bool) -> Result<()> {
        while self.in_flight > 0 {
            let next = if all {
                self.outcomes.recv().ok()
            } else {
                self.outcomes.try_recv().ok()
            };
            let Some((job, delivery)) = next else {
                if all {
                    return Err(Error::Internal("the webhook workers stopped".into()));
                }
                return Ok(());
            };
            self.in_flight -= 1;
            match delivery {
                Delivery::Delivered(attempts) => {
                    self.counts.delivered += 1;
                    self.counts.retried += u64::from(attempts > 1);
                }
                Delivery::Failed(reason) => {
                    self.counts.dead_lettered += 1;
                    tracing::error!(url = %self.redact.url(), %reason, "webhook: giving up on a row");
                    if let Some(d) = &mut self.dead {
                        let mut line = String::from("{\"error\":");
                        weir_core::value::write_json_str(&reason, &mut line);
                        line.push_str(",\"row\":");
                        line.push_str(&job.body);
                        line.push_str("}\n");
                        d.write_all(line.as_bytes())
                            .map_err(|e| Error::io("writing the webhook dead letters", e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush_dead(&mut self) -> Result<()> {
        if let Some(d) = &mut self.dead {
            d.flush()
                .map_err(|e| Error::io("flushing the webhook dead letters", e))?;
        }
        Ok(())
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
            let jobs = self
                .jobs
                .as_ref()
                .ok_or_else(|| Error::Internal("webhook: a write after finish".into()))?;
            // Blocks only when the queue is full: back-pressure, not a stall per row.
            jobs.send(Job { body, key })
                .map_err(|_| Error::Internal("the webhook workers stopped".into()))?;
            self.in_flight += 1;
            self.collect(false)?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.collect(false)?;
        self.flush_dead()
    }

    /// At a checkpoint every row before the barrier has been delivered or dead-lettered, so
    /// a crash after it repeats only rows after it (at-least-once).
    fn pre_commit(&mut self, _epoch: u64) -> Result<Vec<u8>> {
        self.collect(true)?;
        self.flush_dead()?;
        Ok(Vec::new())
    }

    /// Delivers (or dead-letters) everything queued before returning.
    fn finish(&mut self) -> Result<()> {
        self.jobs = None;
        self.collect(true)?;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.flush_dead()
    }

    fn summary(&self) -> Option<String> {
        let c = self.counts;
        Some(format!(
            "{} rows delivered ({} after retries), {} dead-lettered{}",
            c.delivered,
            c.retried,
            c.dead_lettered,
            match (&self.cfg.dead_letter, c.dead_lettered) {
                (_, 0) => String::new(),
                (Some(p), _) => format!(" to {}", p.display()),
                (None, _) => " and dropped (no dead_letter file is set)".into(),
            }
        ))
    }
}

#[cfg(test)]
mod tests;
