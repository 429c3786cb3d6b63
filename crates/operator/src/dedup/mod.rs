//! `dedup`: passes the first record of each key and sends its copies to `NODE.duplicates`.
//!
//! Two records are copies when their keys are equal and their event times are at most
//! `within` apart. A record passes unless a record of its key with an event time within
//! `within` of its own has passed before it; otherwise it goes to the duplicates output
//! (counted per node, like late and malformed records). Replays, producer retries and
//! at-least-once sources repeat records with the same id close in time: `within` is how far
//! apart in event time such a repeat can be.
//!
//! ```text
//! within = 10 min        t:  0    4    8   12   16   (minutes)
//! records of key A           a    a         a    a
//!                            ▲ passes
//!                                 ▲ copy (4 − 0 ≤ 10)
//!                                           ▲ passes (12 − 0 > 10; the copy at 4 never passed)
//!                                                ▲ copy (16 − 12 ≤ 10)
//! ```
//!
//! State is bounded in time: a passed record's time is forgotten once the watermark (minus
//! `allowed_lateness`) is more than `within` past it, because no later record can be its copy.
//! A record older than the watermark minus `allowed_lateness` cannot be checked (its copies
//! may be forgotten) and goes to `NODE.late`. State is bounded in size too: at `max_keys`
//! remembered records the oldest is forgotten early (counted and logged), so a copy of it
//! would pass. Records without a key or an event time go to `NODE.errors`.
//!
//! ```toml
//! [stage.unique]
//! type = "dedup"
//! input = "connections"
//! key = ["uuid"]
//! time_field = "utc"
//! within = "10m"
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use hashbrown::DefaultHashBuilder;
use serde::{Deserialize, Serialize};
use smallvec::smallvec;
use weir_core::config::Duration;
use weir_core::deadletter::DeadLetters;
use weir_core::keys::{key_hash, Encode};
use weir_core::operator::ColumnKeys;
use weir_core::time::{Millis, MIN_TIME};
use weir_core::value::{find_field, find_time_field, Col};
use weir_core::{Emitter, Error, Operator, Partitioner, Port, Result};

use keys::{Entry, Keys, Times};

const fn default_max_keys() -> usize {
    10_000_000
}

/// `[stage.NAME] type = "dedup"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Fields that identify a record (e.g. `["uuid"]`).
    pub key: Vec<String>,
    /// The event-time field (a timestamp).
    pub time_field: String,
    /// How far apart in event time two records of one key may be and still be copies.
    pub within: Duration,
    /// How far behind the watermark a record may arrive and still be checked (default `"0s"`).
    #[serde(default)]
    pub allowed_lateness: Duration,
    /// At most this many passed records are remembered per instance (default 10,000,000,
    /// about 1.3 GiB with 36-byte keys: ~125 bytes each, `tests/dedup_memory.rs`); beyond it
    /// the oldest is forgotten early.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

impl DedupConfig {
    /// Input fields the stage reads.
    pub fn required_fields(&self) -> Vec<String> {
        let mut f = self.key.clone();
        f.push(self.time_field.clone());
        f.sort();
        f.dedup();
        f
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut e = Vec::new();
        if self.key.is_empty() {
            e.push(Error::config(
                format!("{path}.key"),
                "expected the fields that identify a record, e.g. [\"uuid\"]",
            ));
        }
        if self.within.ms < 0 {
            e.push(Error::config(
                format!("{path}.within"),
                "expected a duration",
            ));
        }
        if self.allowed_lateness.ms < 0 {
            e.push(Error::config(
                format!("{path}.allowed_lateness"),
                "expected a duration",
            ));
        }
        if self.max_keys == 0 {
            e.push(Error::config(
                format!("{path}.max_keys"),
                "expected at least 1",
            ));
        }
        e
    }
}

/// The remembered records: each key's passed times in a table found by the key's hash, and
/// every passed record's (time, key hash) in a min-heap, the order they are forgotten in.
/// The heap holds the hash, not the key, so a key is stored once: 124 bytes live per
/// remembered 36-byte key in all, where keeping the key in both took 227
/// (`tests/dedup_memory.rs`).
#[derive(Debug, Default)]
struct State {
    /// Hashes keys for the table, seeded at random for each instance: the keys come from the
    /// stream, and a fixed hash (such as the partitioner's) would let whoever writes the
    /// stream choose keys that collide and make every lookup slow.
    hasher: DefaultHashBuilder,
    keys: Keys,
    order: BinaryHeap<Reverse<(Millis, u64)>>,
    /// Records older than this are late.
    close: Millis,
}

/// What a snapshot holds: the order is rebuilt from the keys.
#[derive(Serialize, Deserialize)]
struct Saved {
    keys: Vec<(Vec<u8>, Vec<Millis>)>,
    close: Millis,
    evicted: u64,
}

const STATE_VERSION: u32 = 1;

impl State {
    fn new() -> Self {
        State {
            close: MIN_TIME,
            ..State::default()
        }
    }

    /// The table's hash of `key`.
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of remembered records (not keys: a key may have several far-apart times).
    fn len(&self) -> usize {
        self.order.len()
    }

    /// The remembered times of `key`, whose hash is `hash`.
    fn times(&self, hash: u64, key: &[u8]) -> Option<&Times> {
        self.keys.find(hash, |e| *e.key == *key).map(|e| &e.times)
    }

    fn remember(&mut self, hash: u64, key: &[u8], t: Millis) {
        self.order.push(Reverse((t, hash)));
        match self.keys.find_entry(hash, |e| *e.key == *key) {
            Some(mut e) => e.get_mut().times.push(t),
            None => self.keys.insert(Entry {
                key: key.into(),
                hash,
                times: smallvec![t],
            }),
        }
    }

    /// The time of the oldest remembered record.
    fn first(&self) -> Option<Millis> {
        self.order.peek().map(|Reverse((t, _))| *t)
    }

    /// Forgets the oldest remembered record: the entry with its key's hash that holds its
    /// time (two keys of one 64-bit hash that also share a time are too rare to matter, and
    /// either one's time goes, which only lets one copy pass early).
    fn forget_first(&mut self) -> Option<Millis> {
        let Reverse((t, hash)) = self.order.pop()?;
        if let Some(mut e) = self.keys.find_entry(hash, |e| e.times.contains(&t)) {
            let times = &mut e.get_mut().times;
            if let Some(i) = times.iter().position(|x| *x == t) {
                times.swap_remove(i);
            }
            if times.is_empty() {
                e.remove();
            }
        }
        Some(t)
    }
}

/// The dedup operator (see the module docs).
pub struct Dedup {
    schema: SchemaRef,
    key_cols: Vec<usize>,
    key_names: Vec<String>,
    time_col: usize,
    within: i64,
    lateness: i64,
    max_keys: usize,
    state: State,
    /// Records forgotten early because state was full.
    evicted: u64,
    key_buf: Vec<u8>,
    dead: DeadLetters,
}

impl Dedup {
    /// Builds the operator for `schema`; errors carry key paths below `path`.
    pub fn new(cfg: &DedupConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let mut errors = cfg.validate(path);
        let time_col = find_time_field(
            &schema,
            &cfg.time_field,
            format!("{path}.time_field"),
            &mut errors,
        );
        let mut find = |name: &str, at: String| find_field(&schema, name, at, &mut errors);
        let key_cols: Vec<usize> = cfg
            .key
            .iter()
            .enumerate()
            .filter_map(|(i, k)| find(k, format!("{path}.key[{i}]")))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Dedup {
            schema,
            key_cols,
            key_names: cfg.key.clone(),
            time_col: time_col.expect("checked above"),
            within: cfg.within.ms,
            lateness: cfg.allowed_lateness.ms,
            max_keys: cfg.max_keys,
            state: State::new(),
            evicted: 0,
            key_buf: Vec::new(),
            dead: DeadLetters::of_stage(path),
        })
    }

    /// Passed records remembered now.
    pub fn remembered(&self) -> usize {
        self.state.len()
    }

    /// Records forgotten early because `max_keys` were remembered.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets records no future record can be a copy of: future records are at or after
    /// `close`, so a record passed at `t` with `t + within < close` is out of their reach.
    fn expire(&mut self) {
        while let Some(t) = self.state.first() {
            if t.saturating_add(self.within) >= self.state.close {
                break;
            }
            self.state.forget_first();
        }
    }

    fn evict(&mut self) {
        while self.state.len() >= self.max_keys {
            self.state.forget_first();
            self.evicted += 1;
            if self.evicted.is_power_of_two() {
                tracing::warn!(
                    evicted = self.evicted,
                    max_keys = self.max_keys,
                    "dedup state is full: the oldest remembered records are forgotten before `within` has passed, so copies of them would pass (raise max_keys or shorten within)"
                );
            }
        }
    }
}

impl Operator for Dedup {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn extra_ports(&self) -> Vec<(Port, SchemaRef)> {
        vec![(Port::Duplicates, self.schema.clone())]
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let times = Col::new(batch.column(self.time_col)).expect("checked at build");
        let keys: Vec<Col<'_>> = self
            .key_cols
            .iter()
            .map(|&c| Col::new(batch.column(c)).expect("checked at build"))
            .collect();
        let n = batch.num_rows();
        let mut pass = Vec::with_capacity(n);
        let mut copies = Vec::new();
        let mut late = Vec::new();
        for row in 0..n {
            let Some(t) = times.int(row) else {
                pass.push(false);
                self.dead
                    .push_row("no event time: cannot tell copies apart", batch, row);
                continue;
            };
            if let Some(k) = keys.iter().position(|k| k.is_null(row)) {
                pass.push(false);
                let why = format!("key {}: missing", self.key_names[k]);
                self.dead.push_row(&why, batch, row);
                continue;
            }
            if t < self.state.close {
                pass.push(false);
                late.push(row as u32);
                continue;
            }
            self.key_buf.clear();
            for k in &keys {
                k.encode(row, &mut self.key_buf);
            }
            let within = self.within;
            let hash = self.state.hash(&self.key_buf);
            let copy = self
                .state
                .times(hash, &self.key_buf)
                .is_some_and(|ts| ts.iter().any(|&p| t.abs_diff(p) <= within as u64));
            if copy {
                pass.push(false);
                copies.push(row as u32);
            } else {
                pass.push(true);
                self.evict();
                self.state.remember(hash, &self.key_buf, t);
            }
        }
        if copies.len() + late.len() + self.dead.len() == 0 {
            out.data(batch.clone());
        } else {
            let kept = BooleanArray::from(pass);
            out.data(arrow_select::filter::filter_record_batch(batch, &kept)?);
        }
        let take =
            |rows: Vec<u32>| arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows));
        if !copies.is_empty() {
            out.side(Port::Duplicates, take(copies)?);
        }
        if !late.is_empty() {
            out.side(Port::Late, take(late)?);
        }
        self.dead.emit(out);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Millis, out: &mut Emitter) -> Result<()> {
        self.state.close = self.state.close.max(wm.saturating_sub(self.lateness));
        self.expire();
        out.watermark(wm);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let saved = Saved {
            keys: self
                .state
                .keys
                .iter()
                .map(|e| (e.key.to_vec(), e.times.to_vec()))
                .collect(),
            close: self.state.close,
            evicted: self.evicted,
        };
        weir_core::state::encode("dedup", STATE_VERSION, &saved)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.restore_keyed(&[bytes.to_vec()], &|_| true)
    }

    fn partitioner(&self) -> Option<Arc<dyn Partitioner>> {
        Some(Arc::new(ColumnKeys(self.key_cols.clone())))
    }

    fn restore_keyed(&mut self, states: &[Vec<u8>], owns: &dyn Fn(u64) -> bool) -> Result<()> {
        let mut state = State::new();
        let mut evicted = 0;
        for bytes in states {
            let saved: Saved = weir_core::state::decode("dedup", STATE_VERSION, bytes)?;
            state.close = state.close.max(saved.close);
            evicted += saved.evicted;
            for (key, times) in saved.keys {
                if owns(key_hash(&key)) {
                    let hash = state.hash(&key);
                    for t in times {
                        state.remember(hash, &key, t);
                    }
                }
            }
        }
        self.state = state;
        self.evicted = evicted;
        Ok(())
    }
}

mod keys;
#[cfg(test)]
mod tests;
