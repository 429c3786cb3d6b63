//! `alert`: "N records of one key within W" threshold alerts that fire once per episode.
//!
//! For each key, the window holds the key's records with event time in `(t − W, t]`, where `t`
//! is the newest event time seen for the key. When a record arrives and the window then holds
//! at least N records and the key is armed, one alert leaves at once (in the same call, not at
//! a window boundary) and the key disarms. The alert names its trigger — the N-th record of
//! the window, oldest first — and carries the key, the count, the window bounds and the chosen
//! fields of the trigger and of the contributing records (at most `max_contributors`).
//!
//! The key re-arms when its trigger leaves the window (`t − W ≥ trigger time`); if the window
//! still holds N or more records, the next record fires a new alert with a new trigger.
//!
//! ```text
//! W = 5 min, N = 3        t:  0    1    2    3    4    5    6    7   (minutes)
//! records of key A            a    a    a              a    a
//!                                       ▲ fires (trigger: the 3rd)   (window (1,6]: 3 records)
//!                                                      ▲ at 6 the trigger (2) is still in (1,6]: no alert
//! ```
//! Records are placed by event time (ties by arrival). A record older than the watermark
//! minus `allowed_lateness` goes to the late port. A key's state is released once its window is
//! empty and its trigger can no longer be in any future window.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use weir_core::config::Duration;
use weir_core::fields::{META_JSON, WINDOW_END, WINDOW_START};
use weir_core::keys::{array_from_scalars, decode, key_hash, Encode};
use weir_core::operator::ColumnKeys;
use weir_core::time::{now_ms, Millis, MIN_TIME};
use weir_core::value::{find_field, find_time_field, write_json_str, Col, Scalar};
use weir_core::{Emitter, Error, Operator, Partitioner, Port, Result};

/// Output field: stable id of the alert (key and trigger time), for deduplication downstream.
pub const ALERT_ID: &str = "alert_id";
/// Output field: event time of the trigger record.
pub const TRIGGER_TIME: &str = "trigger_time";
/// Output field: records in the window when the alert fired.
pub const COUNT: &str = "count";
/// Output field: the trigger record's chosen fields, a JSON object.
pub const TRIGGER: &str = "trigger";
/// Output field: the contributing records' chosen fields, a JSON array, oldest first.
pub const CONTRIBUTORS: &str = "contributors";
/// Output field: wall-clock time the alert was emitted.
pub const FIRED_AT: &str = "fired_at";

const fn default_max_contributors() -> usize {
    100
}

/// `[stage.NAME] type = "alert"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The event-time field (a timestamp).
    pub time_field: String,
    /// Fields that identify a key (e.g. `["target_ip"]`); none: one key.
    #[serde(default)]
    pub key: Vec<String>,
    /// The window length W: "N records within W".
    pub window: Duration,
    /// N: how many records in the window fire the alert (at least 1).
    pub threshold: u64,
    /// Fields of the trigger and contributing records to carry in the alert.
    #[serde(default)]
    pub fields: Vec<String>,
    /// At most this many contributing records are listed (default 100).
    #[serde(default = "default_max_contributors")]
    pub max_contributors: usize,
    /// How far behind the watermark a record may arrive and still count (default `"0s"`).
    #[serde(default)]
    pub allowed_lateness: Duration,
}

impl AlertConfig {
    /// Input fields the stage reads.
    pub fn required_fields(&self) -> Vec<String> {
        let mut f = vec![self.time_field.clone()];
        f.extend(self.key.iter().cloned());
        f.extend(self.fields.iter().cloned());
        f.sort();
        f.dedup();
        f
    }

    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut e = Vec::new();
        if self.window.ms <= 0 {
            e.push(Error::config(
                format!("{path}.window"),
                "expected a duration above 0",
            ));
        }
        if self.threshold == 0 {
            e.push(Error::config(
                format!("{path}.threshold"),
                "expected at least 1",
            ));
        }
        e
    }
}

/// One record in a key's window.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rec {
    t: Millis,
    seq: u64,
    /// The chosen fields as a JSON object.
    fields: Box<str>,
}

/// A key's window and arming state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyState {
    /// Records with time in (newest − W, newest], sorted by (time, arrival).
    window: VecDeque<Rec>,
    newest: Millis,
    armed: bool,
    trigger_t: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    keys: HashMap<Vec<u8>, KeyState>,
    close: Millis,
    seq: u64,
}

const STATE_VERSION: u32 = 1;

/// One fired alert before it is built into a batch.
struct Fired {
    key: Vec<Scalar>,
    trigger_t: Millis,
    count: usize,
    start: Millis,
    end: Millis,
    trigger: String,
    contributors: String,
}

fn or_empty_object(fields: &str) -> &str {
    if fields.is_empty() {
        "{}"
    } else {
        fields
    }
}

/// The alert operator (see the module docs).
pub struct Alert {
    schema: SchemaRef,
    out_schema: SchemaRef,
    time_col: usize,
    key_cols: Vec<usize>,
    field_cols: Vec<(String, usize)>,
    window: i64,
    threshold: usize,
    max_contributors: usize,
    lateness: i64,
    state: State,
    key_buf: Vec<u8>,
    /// `close` at the last sweep of idle keys.
    last_sweep: Millis,
}

impl Alert {
    /// Builds the operator for `schema`; errors carry key paths below `path`.
    pub fn new(cfg: &AlertConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
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
        let field_cols: Vec<(String, usize)> = cfg
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| find(f, format!("{path}.fields[{i}]")).map(|c| (f.clone(), c)))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let json = |name: &str| {
            Field::new(name, DataType::Utf8, false).with_metadata(std::collections::HashMap::from(
                [(META_JSON.to_string(), "true".to_string())],
            ))
        };
        let mut fields = vec![Field::new(ALERT_ID, DataType::Utf8, false)];
        fields.extend(
            key_cols
                .iter()
                .map(|&c| schema.field(c).as_ref().clone().with_nullable(true)),
        );
        fields.extend([
            Field::new(TRIGGER_TIME, ts.clone(), false),
            Field::new(COUNT, DataType::Int64, false),
            Field::new(WINDOW_START, ts.clone(), false),
            Field::new(WINDOW_END, ts.clone(), false),
            json(TRIGGER),
            json(CONTRIBUTORS),
            Field::new(FIRED_AT, ts, false),
        ]);
        Ok(Alert {
            out_schema: Arc::new(Schema::new(fields)),
            schema,
            time_col: time_col.expect("checked above"),
            key_cols,
            field_cols,
            window: cfg.window.ms,
            threshold: cfg.threshold as usize,
            max_contributors: cfg.max_contributors,
            lateness: cfg.allowed_lateness.ms,
            state: State {
                keys: HashMap::new(),
                close: MIN_TIME,
                seq: 0,
            },
            key_buf: Vec::new(),
            last_sweep: MIN_TIME,
        })
    }

    /// Keys holding state.
    pub fn state_keys(&self) -> usize {
        self.state.keys.len()
    }

    fn fields_json(&self, cols: &[Col<'_>], row: usize) -> Box<str> {
        let mut s = String::from("{");
        for (i, ((name, _), col)) in self.field_cols.iter().zip(cols).enumerate() {
            if i > 0 {
                s.push(',');
            }
            write_json_str(name, &mut s);
            s.push(':');
            col.write_json(row, &mut s);
        }
        s.push('}');
        s.into_boxed_str()
    }

    fn build(&self, fired: Vec<Fired>) -> RecordBatch {
        let n = fired.len();
        let ts = |f: &dyn Fn(&Fired) -> Millis| {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for x in &fired {
                b.append_value(f(x));
            }
            Arc::new(b.finish()) as ArrayRef
        };
        let text = |f: &dyn Fn(&Fired) -> String| {
            let mut b = StringBuilder::new();
            for x in &fired {
                b.append_value(f(x));
            }
            Arc::new(b.finish()) as ArrayRef
        };
        let mut cols: Vec<ArrayRef> = vec![text(&|x| {
            let key: Vec<String> = x.key.iter().map(Scalar::to_text).collect();
            format!("{}@{}", key.join("|"), x.trigger_t)
        })];
        for (i, &c) in self.key_cols.iter().enumerate() {
            let vals: Vec<Scalar> = fired.iter().map(|x| x.key[i].clone()).collect();
            cols.push(array_from_scalars(self.schema.field(c).data_type(), &vals));
        }
        cols.push(ts(&|x| x.trigger_t));
        let mut counts = Int64Builder::with_capacity(n);
        for x in &fired {
            counts.append_value(x.count as i64);
        }
        cols.push(Arc::new(counts.finish()));
        cols.push(ts(&|x| x.start));
        cols.push(ts(&|x| x.end));
        cols.push(text(&|x| x.trigger.clone()));
        cols.push(text(&|x| x.contributors.clone()));
        let now = now_ms();
        cols.push(ts(&|_| now));
        RecordBatch::try_new(self.out_schema.clone(), cols)
            .expect("alert columns follow the schema")
    }
}

impl Operator for Alert {
    fn output_schema(&self) -> SchemaRef {
        self.out_schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let times = Col::new(batch.column(self.time_col)).expect("checked at build");
        let keys: Vec<Col<'_>> = self
            .key_cols
            .iter()
            .map(|&c| Col::new(batch.column(c)).expect("checked"))
            .collect();
        let fields: Vec<Col<'_>> = self
            .field_cols
            .iter()
            .map(|(_, c)| Col::new(batch.column(*c)).expect("checked"))
            .collect();
        let mut late = Vec::new();
        let mut fired = Vec::new();
        for row in 0..batch.num_rows() {
            let Some(t) = times.int(row).filter(|&t| t >= self.state.close) else {
                late.push(row as u32);
                continue;
            };
            self.key_buf.clear();
            for k in &keys {
                k.encode(row, &mut self.key_buf);
            }
            let seq = self.state.seq;
            self.state.seq += 1;
            let rec = Rec {
                t,
                seq,
                fields: if fields.is_empty() {
                    "{}".into()
                } else {
                    self.fields_json(&fields, row)
                },
            };
            let st = self
                .state
                .keys
                .entry_ref(self.key_buf.as_slice())
                .or_insert_with(|| KeyState {
                    window: VecDeque::new(),
                    newest: MIN_TIME,
                    armed: true,
                    trigger_t: MIN_TIME,
                });
            st.newest = st.newest.max(t);
            // Place by event time, after records of the same time (arrival order).
            let at = st.window.partition_point(|r| r.t <= t);
            st.window.insert(at, rec);
            let from = st.newest.saturating_sub(self.window);
            while st.window.front().is_some_and(|r| r.t <= from) {
                st.window.pop_front();
            }
            if !st.armed && from >= st.trigger_t {
                st.armed = true;
            }
            if st.armed && st.window.len() >= self.threshold {
                let trigger = &st.window[self.threshold - 1];
                st.armed = false;
                st.trigger_t = trigger.t;
                let mut contributors = String::from("[");
                for (i, r) in st.window.iter().take(self.max_contributors).enumerate() {
                    if i > 0 {
                        contributors.push(',');
                    }
                    contributors.push_str(or_empty_object(&r.fields));
                }
                contributors.push(']');
                let mut pos = 0;
                let key = keys
                    .iter()
                    .map(|k| decode(k.data_type(), &self.key_buf, &mut pos))
                    .collect();
                fired.push(Fired {
                    key,
                    trigger_t: trigger.t,
                    count: st.window.len(),
                    start: from,
                    end: st.newest,
                    trigger: or_empty_object(&trigger.fields).to_string(),
                    contributors,
                });
            }
        }
        if !fired.is_empty() {
            out.data(self.build(fired));
        }
        if !late.is_empty() {
            out.side(
                Port::Late,
                arrow_select::take::take_record_batch(batch, &UInt32Array::from(late))?,
            );
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Millis, out: &mut Emitter) -> Result<()> {
        self.state.close = self.state.close.max(wm.saturating_sub(self.lateness));
        out.watermark(wm);
        // Sweeping every key costs O(keys); watermarks come with every batch. Sweep when event
        // time has moved by a quarter window (at least 1 s) since the last sweep: state is
        // released a little later, the hot path stays cheap.
        let step = (self.window / 4).max(1000);
        if self.state.close < self.last_sweep.saturating_add(step) {
            return Ok(());
        }
        self.last_sweep = self.state.close;
        // No future record is older than `close`, so nothing at or before close − W can be in
        // a future window: drop it, and release keys left with nothing to remember.
        let horizon = self.state.close.saturating_sub(self.window);
        self.state.keys.retain(|_, st| {
            while st.window.front().is_some_and(|r| r.t <= horizon) {
                st.window.pop_front();
            }
            !(st.window.is_empty() && (st.armed || st.trigger_t <= horizon))
        });
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        weir_core::state::encode("alert", STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.state = weir_core::state::decode("alert", STATE_VERSION, bytes)?;
        Ok(())
    }

    fn partitioner(&self) -> Option<Arc<dyn Partitioner>> {
        // An alert fires the moment its record arrives: alerts of different keys leave their
        // instances in the order they fire, with no merge that would hold them back.
        (!self.key_cols.is_empty())
            .then(|| Arc::new(ColumnKeys(self.key_cols.clone())) as Arc<dyn Partitioner>)
    }

    fn restore_keyed(&mut self, states: &[Vec<u8>], owns: &dyn Fn(u64) -> bool) -> Result<()> {
        let mut merged = State {
            keys: HashMap::new(),
            close: MIN_TIME,
            seq: 0,
        };
        for bytes in states {
            let st: State = weir_core::state::decode("alert", STATE_VERSION, bytes)?;
            merged.close = merged.close.max(st.close);
            merged.seq = merged.seq.max(st.seq);
            merged
                .keys
                .extend(st.keys.into_iter().filter(|(k, _)| owns(key_hash(k))));
        }
        self.state = merged;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
