//! Top-K: per window (and per group, if asked) the K keys with the highest value of an
//! aggregate, ranked as the window's panes change rather than by sorting every key at every
//! slide.
//!
//! A top-K is an [`Aggregate`] keyed by the group keys and then the ranked key, whose one
//! aggregate is the ranking value, plus a ranking per group (see [`ranking`]: each key's
//! value, and the head of the ranking in order). The aggregate places records in panes,
//! decides lateness and keeps each key's running value over the sliding window exactly as the
//! `aggregate` stage does; when a window closes it reports only the keys whose value changed
//! (a pane of theirs entered or left the window) and those that left, and the ranking moves
//! just those. Emitting a window reads the first K entries of each group's head. A tumbling
//! window starts empty, so its ranking is built from its keys when it closes.
//!
//! Ties: rows are ranked by value, highest first, then by key ascending (keys compare as their
//! columns do: NULL first, then by value, column by column), so ranks are 1..=K without gaps
//! or repeats and the output is deterministic. A null value (a sum of nulls) ranks last.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashMap;
use serde::Deserialize;
use weir_core::config::Duration;
use weir_core::deadletter::DeadLetters;
use weir_core::keys::{array_from_scalars, decode, key_hash};
use weir_core::time::{Millis, MAX_TIME};
use weir_core::value::Scalar;
use weir_core::{Emitter, Error, Operator, Partitioner, Result};
use weir_expr::Expr;

use crate::acc::Out;
use crate::aggregate::{result_column, GroupKeys, WindowChanges};
use crate::{AggFn, AggSpec, Aggregate, AggregateConfig, WindowSpec};

mod ranking;
use ranking::Ranking;

/// The name of the rank column.
pub const RANK: &str = "rank";

/// The most keys a top-K emits per window and group.
const MAX_K: usize = 100_000;

fn count() -> AggSpec {
    AggSpec {
        func: AggFn::Count,
        field: None,
        name: None,
    }
}

const fn no_lateness() -> Duration {
    Duration::from_ms(0)
}

/// Config of a `top_k` stage:
///
/// ```toml
/// [stage.top_pages]
/// type = "top_k"
/// input = "logs"
/// time_field = "time"
/// window = { type = "sliding", size = "10m", slide = "1m" }
/// key = ["path"]                 # what is ranked
/// by = { fn = "count" }          # the ranking value (the default)
/// k = 5
/// group_by = []                  # top K per group, e.g. ["category"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopKConfig {
    /// The event-time field (a timestamp). Omit it to rank in processing time.
    #[serde(default)]
    pub time_field: Option<String>,
    /// Tumbling or sliding window; a sliding window emits its top K at every slide.
    pub window: WindowSpec,
    /// How long after the watermark passes a window's end it stays open (default `"0s"`).
    #[serde(default = "no_lateness")]
    pub allowed_lateness: Duration,
    /// The ranked key: fields or SQL expressions with an optional name (`"lower(path) AS
    /// page"`).
    pub key: Vec<String>,
    /// Rank per group (none: one ranking per window).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The value ranked, highest first: an aggregate as in the `aggregate` stage (default
    /// `{ fn = "count" }`).
    #[serde(default = "count")]
    pub by: AggSpec,
    /// How many keys per window (and group).
    pub k: usize,
    /// `"all"` (default): every window's top K. `"changes"`: only what changed since the
    /// previous window, for live consumers (see [`Emit::Changes`]).
    #[serde(default)]
    pub emit: Emit,
    /// Approximate counts in bounded memory for very many keys (see [`Approximate`]); the
    /// default is exact.
    #[serde(default)]
    pub approximate: Option<Approximate>,
}

/// `approximate = { counters = 1000 }`: each pane keeps at most `counters` keys per group
/// (Space-Saving), so state is bounded by panes × groups × counters whatever the number of
/// distinct keys. Every emitted count is within N / `counters` of the key's true count in
/// the window (N: the window's records in the group), and a key left out of the top K has a
/// true count at most 2N / `counters` above that of any key listed. Ranks by count only.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approximate {
    /// Keys kept per pane and group (at least K).
    pub counters: usize,
}

/// The most counters per pane and group.
const MAX_COUNTERS: usize = 10_000_000;

/// What a top-K emits per window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Emit {
    /// The K rows of every window and group.
    #[default]
    All,
    /// Per window and group, a row for each key that entered the top K, left it, moved up or
    /// down in it, or kept its rank with another value, with two more columns: `change`
    /// (`entered`, `left`, `up`, `down`, `updated`) and `previous_rank` (null for `entered`).
    /// A key that left has a null rank and the value it has now, null if it left the window.
    /// Applying the rows in order to the previous list gives the current one.
    Changes,
}

/// The change column's name ([`Emit::Changes`]).
pub const CHANGE: &str = "change";
/// The previous rank column's name ([`Emit::Changes`]).
pub const PREVIOUS_RANK: &str = "previous_rank";

impl TopKConfig {
    /// The aggregate the top-K ranks from: keyed by the group keys, then the ranked key.
    fn aggregate(&self) -> AggregateConfig {
        AggregateConfig {
            time_field: self.time_field.clone(),
            window: self.window,
            allowed_lateness: self.allowed_lateness,
            group_by: self.group_by.iter().chain(&self.key).cloned().collect(),
            aggregates: vec![self.by.clone()],
        }
    }

    /// Moves an error of the underlying aggregate's config to this config's keys.
    fn remap(&self, e: Error, path: &str) -> Error {
        let Error::Config { path: at, message } = e else {
            return e;
        };
        let Some(rest) = at.strip_prefix(path) else {
            return Error::Config { path: at, message };
        };
        let groups = self.group_by.len();
        let at = if let Some(i) = rest
            .strip_prefix(".group_by[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse::<usize>().ok())
        {
            match i.checked_sub(groups) {
                Some(k) => format!("{path}.key[{k}]"),
                None => at,
            }
        } else if let Some(r) = rest.strip_prefix(".aggregates[0]") {
            format!("{path}.by{r}")
        } else {
            at
        };
        Error::Config { path: at, message }
    }

    /// Checks the config alone; returns every problem with its key path below `path`.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors: Vec<Error> = self
            .aggregate()
            .validate(path)
            .into_iter()
            .map(|e| self.remap(e, path))
            .collect();
        if self.key.is_empty() {
            errors.push(Error::config(
                format!("{path}.key"),
                "expected at least one field to rank, e.g. key = [\"path\"]",
            ));
        }
        if let Some(a) = &self.approximate {
            if self.by.func != AggFn::Count {
                errors.push(Error::config(
                    format!("{path}.approximate"),
                    "an approximate top-K ranks by count (Space-Saving counts records); \
                     use by = { fn = \"count\" } or drop `approximate`",
                ));
            }
            if a.counters < self.k.max(1) || a.counters > MAX_COUNTERS {
                errors.push(Error::config(
                    format!("{path}.approximate.counters"),
                    format!(
                        "expected {} (k) to {MAX_COUNTERS}, got {}; the error bound is \
                         records / counters, so take many more than k",
                        self.k.max(1),
                        a.counters
                    ),
                ));
            }
        }
        if self.k == 0 || self.k > MAX_K {
            errors.push(Error::config(
                format!("{path}.k"),
                format!("expected 1 to {MAX_K}, got {}", self.k),
            ));
        }
        let named = |list: &'static str, keys: &[String]| -> Vec<(String, String)> {
            keys.iter()
                .enumerate()
                .filter_map(|(i, k)| {
                    let (e, alias) = Expr::parse_aliased(k).ok()?;
                    Some((
                        format!("{path}.{list}[{i}]"),
                        alias.unwrap_or_else(|| e.text().to_string()),
                    ))
                })
                .collect()
        };
        let mut outputs = named("group_by", &self.group_by);
        outputs.extend(named("key", &self.key));
        outputs.push((format!("{path}.by.as"), self.by.output_name()));
        let reserved: &[&str] = match self.emit {
            Emit::All => &[RANK],
            Emit::Changes => &[RANK, CHANGE, PREVIOUS_RANK],
        };
        for (at, name) in outputs {
            if reserved.contains(&name.as_str()) {
                errors.push(Error::config(
                    at,
                    format!(
                        "{name:?} is a column of the top-K's own; name this one with AS / `as`"
                    ),
                ));
            }
        }
        errors
    }

    /// Input fields the stage reads.
    pub fn required_fields(&self) -> Vec<String> {
        self.aggregate().required_fields()
    }
}

/// The rows of the windows emitted by one call.
#[derive(Default)]
struct Rows {
    start: Vec<Millis>,
    end: Vec<Millis>,
    group: Vec<Box<[u8]>>,
    rank: Vec<Option<i64>>,
    item: Vec<Box<[u8]>>,
    value: Vec<Out>,
    /// [`Emit::Changes`]: the change and the previous rank.
    change: Vec<&'static str>,
    previous: Vec<Option<i64>>,
}

impl Rows {
    fn push(
        &mut self,
        (start, end): (Millis, Millis),
        group: &[u8],
        rank: Option<i64>,
        item: &[u8],
        v: Out,
    ) {
        self.start.push(start);
        self.end.push(end);
        self.group.push(group.into());
        self.rank.push(rank);
        self.item.push(item.into());
        self.value.push(v);
    }

    fn changed(&mut self, change: &'static str, previous: Option<i64>) {
        self.change.push(change);
        self.previous.push(previous);
    }
}

/// A group's top K as last emitted: (key, value) in rank order.
type Listed = Vec<(Box<[u8]>, Out)>;

/// A group's last list with the end of its window.
type Held = (Millis, Listed);

/// What a top-K keeps across a restart besides its aggregate.
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    /// The aggregate's snapshot.
    inner: Vec<u8>,
    /// [`Emit::Changes`]: each group's top K as last emitted.
    listed: Vec<(Box<[u8]>, Held)>,
}

const STATE_VERSION: u32 = 1;

/// The top-K operator (see the module docs).
pub struct TopK {
    inner: Aggregate,
    /// Number of group key columns (the first key columns of `inner`).
    groups: usize,
    k: usize,
    out_schema: SchemaRef,
    /// Per group (encoded group keys): its keys and their ranking.
    ranking: BTreeMap<Box<[u8]>, Ranking>,
    /// The size of each ranking's ordered head ([`ranking::head_size`]).
    head: usize,
    /// Values too large for the output type.
    dead: DeadLetters,
    emit: Emit,
    /// [`Emit::Changes`]: each group's top K as last emitted, with the end of its window.
    listed: BTreeMap<Box<[u8]>, Held>,
}

impl TopK {
    /// Builds the operator for input `schema`; returns every problem found, with paths below
    /// `path`.
    pub fn new(cfg: &TopKConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let own = cfg.validate(path);
        let mut inner = match Aggregate::new(&cfg.aggregate(), schema, path) {
            Ok(inner) if own.is_empty() => inner,
            Ok(_) => return Err(own),
            Err(errs) => {
                let mut all: Vec<Error> = errs.into_iter().map(|e| cfg.remap(e, path)).collect();
                for e in own {
                    if !all.iter().any(|a| a.to_string() == e.to_string()) {
                        all.push(e);
                    }
                }
                return Err(all);
            }
        };
        inner.track_holders();
        if let Some(a) = &cfg.approximate {
            inner.cap(cfg.group_by.len(), a.counters);
        }
        let groups = cfg.group_by.len();
        // The aggregate's output: window_start, window_end, its keys, the value.
        let agg = inner.output_schema();
        let fields = agg.fields();
        let mut out: Vec<Field> = fields[..2 + groups]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        out.push(Field::new(RANK, DataType::Int64, cfg.emit == Emit::Changes));
        out.extend(fields[2 + groups..].iter().map(|f| f.as_ref().clone()));
        if cfg.emit == Emit::Changes {
            // A key that left the window has no value.
            let value = out.pop().expect("a value column").with_nullable(true);
            out.push(value);
            out.push(Field::new(CHANGE, DataType::Utf8, false));
            out.push(Field::new(PREVIOUS_RANK, DataType::Int64, true));
        }
        Ok(TopK {
            inner,
            groups,
            k: cfg.k,
            out_schema: Arc::new(Schema::new(out)),
            ranking: BTreeMap::new(),
            head: ranking::head_size(cfg.k),
            dead: DeadLetters::of_stage(path),
            emit: cfg.emit,
            listed: BTreeMap::new(),
        })
    }

    /// Sets the size of each group's ordered head, for tests that make it cut and rebuild
    /// often.
    #[cfg(test)]
    fn with_head(mut self, head: usize) -> Self {
        self.head = head.max(self.k);
        self
    }

    /// Where the ranked key starts in an encoded key (after the group keys).
    fn split(&self, key: &[u8]) -> usize {
        let mut pos = 0;
        for dt in &self.inner.key_types()[..self.groups] {
            decode(dt, key, &mut pos);
        }
        pos
    }

    /// The group's ranking and the ranked key's bytes of an encoded key.
    fn ranking<'k>(&mut self, key: &'k [u8]) -> (&mut Ranking, &'k [u8]) {
        let at = self.split(key);
        let head = self.head;
        let group = &key[..at];
        if !self.ranking.contains_key(group) {
            self.ranking.insert(group.into(), Ranking::new(head));
        }
        let ranking = self.ranking.get_mut(group).expect("inserted");
        (ranking, &key[at..])
    }

    /// A sliding window's key has the value `value` now (`None`: it left the window).
    fn set(&mut self, key: &[u8], value: Option<Out>) {
        let (ranking, item) = self.ranking(key);
        ranking.set(item, value);
        if ranking.is_empty() {
            let at = key.len() - item.len();
            self.ranking.remove(&key[..at]);
        }
    }

    /// Moves the ranking to the window `w` and appends its top K per group to `rows`.
    fn apply(&mut self, w: &WindowChanges, rows: &mut Rows) {
        if self.inner.is_tumbling() {
            // Empty: cleared after the previous window.
            for (key, value) in w.set() {
                let (ranking, item) = self.ranking(key);
                ranking.offer(item, value);
            }
        } else {
            for key in w.gone() {
                self.set(key, None);
            }
            for (key, value) in w.set() {
                self.set(key, Some(value));
            }
        }
        match self.emit {
            Emit::All => {
                for (group, ranking) in &mut self.ranking {
                    for (rank, e) in ranking.top(self.k).enumerate() {
                        let at = (w.start, w.end);
                        rows.push(at, group, Some(rank as i64 + 1), &e.item, e.value);
                    }
                }
            }
            Emit::Changes => self.changes(w, rows),
        }
        if self.inner.is_tumbling() {
            self.ranking.clear();
        }
    }

    /// [`Emit::Changes`]: appends to `rows` how each group's top K differs from the one last
    /// emitted, and remembers the new one.
    fn changes(&mut self, w: &WindowChanges, rows: &mut Rows) {
        // Tumbling: a key's value in this window, for keys that left the top K.
        let now: HashMap<&[u8], Out> = match self.inner.is_tumbling() {
            true => w.set().collect(),
            false => HashMap::new(),
        };
        let mut groups: Vec<Box<[u8]>> = self.ranking.keys().cloned().collect();
        groups.extend(
            self.listed
                .keys()
                .filter(|g| !self.ranking.contains_key(*g))
                .cloned(),
        );
        groups.sort_unstable();
        for group in groups {
            let new: Listed = self
                .ranking
                .get_mut(&group)
                .map(|ranking| {
                    ranking
                        .top(self.k)
                        .map(|e| (e.item.clone(), e.value))
                        .collect()
                })
                .unwrap_or_default();
            let old = self.listed.remove(&group).unwrap_or_default().1;
            let rank_in = |list: &Listed, item: &[u8]| list.iter().position(|(i, _)| &**i == item);
            // Those that left first (by their previous rank), then the new list by rank.
            for (p, (item, _)) in old.iter().enumerate() {
                if rank_in(&new, item).is_none() {
                    let value = match self.inner.is_tumbling() {
                        true => now
                            .get([&group[..], &item[..]].concat().as_slice())
                            .copied(),
                        false => self.ranking.get(&group).and_then(|r| r.value(item)),
                    };
                    rows.push(
                        (w.start, w.end),
                        &group,
                        None,
                        item,
                        value.unwrap_or(Out::Null),
                    );
                    rows.changed("left", Some(p as i64 + 1));
                }
            }
            for (r, (item, value)) in new.iter().enumerate() {
                let change = match rank_in(&old, item) {
                    None => Some(("entered", None)),
                    Some(p) if p > r => Some(("up", Some(p))),
                    Some(p) if p < r => Some(("down", Some(p))),
                    Some(p) if old[p].1 != *value => Some(("updated", Some(p))),
                    Some(_) => None,
                };
                if let Some((change, previous)) = change {
                    rows.push((w.start, w.end), &group, Some(r as i64 + 1), item, *value);
                    rows.changed(change, previous.map(|p| p as i64 + 1));
                }
            }
            if !new.is_empty() {
                self.listed.insert(group, (w.end, new));
            }
        }
    }

    /// [`Emit::Changes`] of tumbling windows: a group whose next window holds none of its keys
    /// (no window at all, or one of other groups only) has left at that window's end, if the
    /// end is before `bound` (or at it, with `inclusive`). Its keys leave with a null value.
    /// (Sliding windows need no such step: the aggregate closes the window a group's last key
    /// leaves.)
    fn expire(&mut self, bound: Millis, inclusive: bool, rows: &mut Rows) {
        if self.emit != Emit::Changes || !self.inner.is_tumbling() {
            return;
        }
        let size = self.inner.size();
        let due = |end: Millis| {
            let at = end.saturating_add(size);
            at < bound || (inclusive && at == bound)
        };
        let mut gone: Vec<(Millis, Box<[u8]>)> = self
            .listed
            .iter()
            .filter(|(_, (end, _))| due(*end))
            .map(|(g, (end, _))| (end.saturating_add(size), g.clone()))
            .collect();
        gone.sort_unstable();
        for (at, group) in gone {
            let (_, list) = self.listed.remove(&group).expect("listed");
            for (p, (item, _)) in list.iter().enumerate() {
                rows.push((at - size, at), &group, None, item, Out::Null);
                rows.changed("left", Some(p as i64 + 1));
            }
        }
    }

    /// Closes the windows up to `t` and emits their top K.
    fn advance(&mut self, t: Millis, out: &mut Emitter) {
        let windows = self.inner.advance_changes(t, &mut out.windows_closed);
        let mut rows = Rows::default();
        for w in windows {
            self.expire(w.end, false, &mut rows);
            self.apply(&w, &mut rows);
        }
        self.expire(t, true, &mut rows);
        if rows.item.is_empty() {
            return;
        }
        let (batch, overflows) = self.build_output(&rows);
        for (row, why) in overflows {
            self.dead.push_row(&why, &batch, row);
        }
        out.data(batch);
        self.dead.emit(out);
    }

    fn build_output(&self, rows: &Rows) -> (RecordBatch, Vec<(usize, String)>) {
        let n = rows.item.len();
        let ts = |v: &[Millis]| {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            b.append_slice(v);
            Arc::new(b.finish()) as ArrayRef
        };
        let mut cols: Vec<ArrayRef> = vec![ts(&rows.start), ts(&rows.end)];
        let (group_types, item_types) = self.inner.key_types().split_at(self.groups);
        let keys = |types: &[DataType], keys: &[Box<[u8]>], cols: &mut Vec<ArrayRef>| {
            let mut pos = vec![0usize; n];
            for dt in types {
                let vals: Vec<Scalar> = keys
                    .iter()
                    .zip(pos.iter_mut())
                    .map(|(k, p)| decode(dt, k, p))
                    .collect();
                cols.push(array_from_scalars(dt, &vals));
            }
        };
        keys(group_types, &rows.group, &mut cols);
        let ints = |v: &[Option<i64>]| {
            let mut b = Int64Builder::with_capacity(n);
            b.extend(v.iter().copied());
            Arc::new(b.finish()) as ArrayRef
        };
        cols.push(ints(&rows.rank));
        keys(item_types, &rows.item, &mut cols);
        let mut overflows = Vec::new();
        let value = self.out_schema.field(cols.len());
        cols.push(result_column(
            self.inner.value_type(),
            value.name(),
            n,
            |r| rows.value[r],
            &mut overflows,
        ));
        if self.emit == Emit::Changes {
            cols.push(Arc::new(arrow_array::StringArray::from(
                rows.change.clone(),
            )));
            cols.push(ints(&rows.previous));
        }
        let batch = RecordBatch::try_new(self.out_schema.clone(), cols)
            .expect("output columns follow the output schema");
        (batch, overflows)
    }

    /// Rebuilds the ranking of a sliding window from the aggregate's state.
    fn rebuild(&mut self) {
        self.ranking.clear();
        if self.inner.is_tumbling() {
            return;
        }
        for (key, value) in self.inner.window_values() {
            self.set(&key, Some(value));
        }
    }
}

impl Operator for TopK {
    fn output_schema(&self) -> SchemaRef {
        self.out_schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        // Late rows and rows whose key or value cannot be computed leave from the aggregate.
        self.inner.on_batch(batch, out)
    }

    fn on_watermark(&mut self, wm: Millis, out: &mut Emitter) -> Result<()> {
        if self.inner.in_event_time() {
            let close = if wm == MAX_TIME {
                MAX_TIME
            } else {
                wm.saturating_sub(self.inner.lateness())
            };
            self.advance(close, out);
            out.watermark(close);
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Millis, out: &mut Emitter) -> Result<()> {
        if !self.inner.in_event_time() {
            let now = self.inner.clock(now);
            self.advance(now.saturating_sub(self.inner.lateness()), out);
            out.watermark(self.inner.closed_upto());
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        self.advance(MAX_TIME, out);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        // The ranking is rebuilt from the aggregate's windows.
        let state = State {
            inner: self.inner.snapshot()?,
            listed: self
                .listed
                .iter()
                .map(|(g, l)| (g.clone(), l.clone()))
                .collect(),
        };
        weir_core::state::encode("top_k", STATE_VERSION, &state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let state: State = weir_core::state::decode("top_k", STATE_VERSION, bytes)?;
        self.inner.restore(&state.inner)?;
        self.listed = state.listed.into_iter().collect();
        self.rebuild();
        Ok(())
    }

    fn partitioner(&self) -> Option<Arc<dyn Partitioner>> {
        // A group's keys must meet in one instance: without groups, one instance ranks all.
        (self.groups > 0).then(|| {
            Arc::new(GroupKeys(self.inner.key_sources()[..self.groups].to_vec()))
                as Arc<dyn Partitioner>
        })
    }

    fn output_order(&self) -> Option<Vec<usize>> {
        // Window end, the group keys, the rank.
        Some(std::iter::once(1).chain(2..2 + self.groups + 1).collect())
    }

    fn restore_keyed(&mut self, states: &[Vec<u8>], owns: &dyn Fn(u64) -> bool) -> Result<()> {
        let groups = self.inner.key_types()[..self.groups].to_vec();
        let mut inner = Vec::new();
        self.listed.clear();
        for bytes in states {
            let state: State = weir_core::state::decode("top_k", STATE_VERSION, bytes)?;
            inner.push(state.inner);
            // A group's list was kept by the one instance that owned it.
            self.listed
                .extend(state.listed.into_iter().filter(|(g, _)| owns(key_hash(g))));
        }
        self.inner.restore_keys(&inner, &|key| {
            let mut pos = 0;
            for dt in &groups {
                decode(dt, key, &mut pos);
            }
            owns(key_hash(&key[..pos]))
        })?;
        self.rebuild();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
