//! Keyed aggregation over tumbling and sliding event-time (or processing-time) windows.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use weir_core::config::Duration;
use weir_core::deadletter::DeadLetters;
use weir_core::fields::{WINDOW_END, WINDOW_START};
use weir_core::message::Port;
use weir_core::time::{Millis, MAX_TIME, MIN_TIME};
use weir_core::value::{find_field, is_supported, Scalar};
use weir_core::{Combiner, Emitter, Error, Operator, Partial, Partitioner, Result};
use weir_expr::{Bound, Expr};

use crate::acc::{pane_result, run_result, AggFn, Input, NumKind, Out, PaneAcc, RunAcc};
use crate::fold::{Fold, Folded, UNFOLDED};
use weir_core::keys::{array_from_scalars, decode, hash_rows, key_hash, Encode};
use weir_core::value::Col;

/// The kind of window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size`, aligned to the Unix epoch.
    Tumbling,
    /// Windows of `size` starting every `slide` (hopping), aligned to the Unix epoch.
    Sliding,
}

/// The window shape: `window = { type = "tumbling", size = "5m" }` or
/// `window = { type = "sliding", size = "5m", slide = "1s" }`.
// A plain struct rather than a tagged enum, so that an error inside it is reported with its
// full key path (`stage.x.window.size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// `"tumbling"` or `"sliding"`.
    #[serde(rename = "type")]
    pub kind: WindowKind,
    /// Window length.
    pub size: Duration,
    /// Distance between window starts (sliding only); at most `size`.
    #[serde(default)]
    pub slide: Option<Duration>,
}

impl WindowSpec {
    /// A tumbling window of `size` ms.
    pub fn tumbling(size: i64) -> Self {
        WindowSpec {
            kind: WindowKind::Tumbling,
            size: Duration::from_ms(size),
            slide: None,
        }
    }

    /// A sliding window of `size` ms every `slide` ms.
    pub fn sliding(size: i64, slide: i64) -> Self {
        WindowSpec {
            kind: WindowKind::Sliding,
            size: Duration::from_ms(size),
            slide: Some(Duration::from_ms(slide)),
        }
    }

    /// (size, slide) in milliseconds.
    pub fn size_slide(&self) -> (i64, i64) {
        (self.size.ms, self.slide.unwrap_or(self.size).ms)
    }
}

/// One aggregate: `{ fn = "sum", field = "bytes", as = "total_bytes" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggSpec {
    /// What to compute.
    #[serde(rename = "fn")]
    pub func: AggFn,
    /// The input: a field, or a SQL expression named with `as` (`field = "status >= 500",
    /// as = "errors"` with `fn = "sum"` counts errors; booleans sum and average as 0/1).
    /// `count` without a field counts rows.
    #[serde(default)]
    pub field: Option<String>,
    /// Output column name; default `count`, `sum_<field>`, `min_<field>`, ….
    #[serde(default, rename = "as")]
    pub name: Option<String>,
}

impl AggSpec {
    /// The output column name.
    pub fn output_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let f = match self.func {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Avg => "avg",
            AggFn::CountDistinct => "count_distinct",
        };
        match &self.field {
            Some(field) if self.func != AggFn::Count => format!("{f}_{field}"),
            Some(field) => format!("count_{field}"),
            None => f.to_string(),
        }
    }
}

const fn default_lateness() -> Duration {
    Duration::from_ms(0)
}

/// Config of an `aggregate` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// The event-time field (a timestamp). Omit it to aggregate in processing time: records
    /// are placed by the wall clock when they reach the stage.
    #[serde(default)]
    pub time_field: Option<String>,
    /// Tumbling or sliding window.
    pub window: WindowSpec,
    /// How long after the watermark passes a window's end it stays open for stragglers
    /// (default `"0s"`).
    #[serde(default = "default_lateness")]
    pub allowed_lateness: Duration,
    /// Group keys (none: one group): field names, or SQL expressions with an optional name,
    /// e.g. `["status", "status / 100 AS class"]`.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// What to compute per window and group.
    pub aggregates: Vec<AggSpec>,
}

impl AggregateConfig {
    /// Checks the config alone; returns every problem with its key path below `path`.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors = Vec::new();
        match (self.window.kind, self.window.slide) {
            (WindowKind::Tumbling, Some(_)) => errors.push(Error::config(
                format!("{path}.window.slide"),
                "a tumbling window has no slide; use type = \"sliding\"",
            )),
            (WindowKind::Sliding, None) => errors.push(Error::config(
                format!("{path}.window.slide"),
                "missing: a sliding window needs a slide, e.g. slide = \"1m\"",
            )),
            _ => {}
        }
        let (size, slide) = self.window.size_slide();
        if size <= 0 {
            errors.push(Error::config(
                format!("{path}.window.size"),
                "expected a duration above 0",
            ));
        }
        if slide <= 0 {
            errors.push(Error::config(
                format!("{path}.window.slide"),
                "expected a duration above 0",
            ));
        } else if slide > size {
            errors.push(Error::config(
                format!("{path}.window.slide"),
                format!(
                    "slide {} is longer than size {}; windows would leave gaps",
                    Duration::from_ms(slide),
                    Duration::from_ms(size)
                ),
            ));
        }
        if size > MAX_WINDOW {
            errors.push(Error::config(
                format!("{path}.window.size"),
                format!(
                    "{} is longer than the longest window, {}",
                    Duration::from_ms(size),
                    Duration::from_ms(MAX_WINDOW)
                ),
            ));
        } else if size > 0 && slide > 0 && size / gcd(size, slide) > MAX_PANES {
            // Each open window keeps one pane per gcd(size, slide): memory grows with this.
            let pane = gcd(size, slide);
            errors.push(Error::config(
                format!("{path}.window"),
                format!(
                    "a window of {} sliding by {} is {} panes of {}; at most {MAX_PANES} \
                     (choose a slide that divides the size more coarsely)",
                    Duration::from_ms(size),
                    Duration::from_ms(slide),
                    size / pane,
                    Duration::from_ms(pane)
                ),
            ));
        }
        if self.allowed_lateness.ms < 0 {
            errors.push(Error::config(
                format!("{path}.allowed_lateness"),
                "expected a duration",
            ));
        }
        if self.aggregates.is_empty() {
            errors.push(Error::config(
                format!("{path}.aggregates"),
                "expected at least one aggregate, e.g. { fn = \"count\" }",
            ));
        }
        let mut names: Vec<String> = vec![WINDOW_START.into(), WINDOW_END.into()];
        for (i, g) in self.group_by.iter().enumerate() {
            match Expr::parse_aliased(g) {
                Ok((e, alias)) => names.push(alias.unwrap_or_else(|| e.text().to_string())),
                Err(e) => errors.push(Error::config(
                    format!("{path}.group_by[{i}]"),
                    e.to_string(),
                )),
            }
        }
        for (i, a) in self.aggregates.iter().enumerate() {
            if let Some(f) = &a.field {
                match Expr::parse(f) {
                    Err(e) => errors.push(Error::config(
                        format!("{path}.aggregates[{i}].field"),
                        e.to_string(),
                    )),
                    Ok(e) if e.as_column().is_none() && a.name.is_none() => {
                        errors.push(Error::config(
                            format!("{path}.aggregates[{i}].as"),
                            format!("name the result of `{f}` with `as`"),
                        ))
                    }
                    Ok(_) => {}
                }
            }
            if a.field.is_none() && a.func != AggFn::Count {
                errors.push(Error::config(
                    format!("{path}.aggregates[{i}].field"),
                    format!("{:?} needs a field", a.func),
                ));
            }
            let n = a.output_name();
            if names.contains(&n) {
                errors.push(Error::config(
                    format!("{path}.aggregates[{i}].as"),
                    format!("output column {n:?} already exists; name it with `as`"),
                ));
            }
            names.push(n);
        }
        errors
    }

    /// Input fields the stage reads (for projection pushdown into parsers).
    pub fn required_fields(&self) -> Vec<String> {
        let mut f: Vec<String> = self.time_field.iter().cloned().collect();
        for g in &self.group_by {
            if let Ok((e, _)) = Expr::parse_aliased(g) {
                f.extend(e.columns());
            }
        }
        for a in &self.aggregates {
            if let Some(Ok(e)) = a.field.as_deref().map(Expr::parse) {
                f.extend(e.columns());
            }
        }
        f.sort();
        f.dedup();
        f
    }
}

/// Where a group key or an aggregate's input comes from.
#[derive(Clone)]
pub(crate) enum ColumnSource {
    /// An input column.
    Column(usize),
    /// A computed expression.
    Expr(Bound),
}

/// Routes rows to the instances of an aggregate by their group key (computed as the
/// aggregate computes it, so both agree on every key's hash).
pub(crate) struct GroupKeys(pub(crate) Vec<ColumnSource>);

impl Partitioner for GroupKeys {
    fn hashes(&self, batch: &RecordBatch, out: &mut Vec<u64>) {
        let arrays: Option<Vec<ArrayRef>> = self
            .0
            .iter()
            .map(|k| match k {
                ColumnSource::Column(c) => Some(batch.column(*c).clone()),
                ColumnSource::Expr(e) => e.eval_rows(batch).ok().map(|(a, _)| a),
            })
            .collect();
        let cols: Option<Vec<Col<'_>>> = arrays
            .as_ref()
            .and_then(|a| a.iter().map(Col::new).collect());
        match cols {
            Some(cols) => hash_rows(&cols, batch.num_rows(), out),
            // The instance that gets them reports why the keys cannot be computed.
            None => out.extend(std::iter::repeat_n(0, batch.num_rows())),
        }
    }
}

/// How one aggregate reads its input column.
#[derive(Clone)]
pub(crate) struct AggPlan {
    pub(crate) func: AggFn,
    pub(crate) col: Option<ColumnSource>,
    pub(crate) kind: NumKind,
    out_type: DataType,
}

/// The group-key columns and the aggregates' input columns of `batch`. A row whose key or
/// input expression cannot be computed gets a null there and is reported to `failed` with
/// the reason.
pub(crate) fn eval_inputs(
    key_cols: &[ColumnSource],
    aggs: &[AggPlan],
    batch: &RecordBatch,
    mut failed: impl FnMut(usize, &str),
) -> Result<(Vec<ArrayRef>, Vec<Option<ArrayRef>>)> {
    let mut eval = |e: &Bound, what: &str| -> Result<ArrayRef> {
        let (a, errors) = e.eval_rows(batch).map_err(|err| {
            Error::Internal(format!("evaluating the {what} `{}`: {err}", e.text()))
        })?;
        for (row, why) in errors {
            failed(row, &why);
        }
        Ok(a)
    };
    let keys = key_cols
        .iter()
        .map(|k| match k {
            ColumnSource::Column(c) => Ok(batch.column(*c).clone()),
            ColumnSource::Expr(e) => eval(e, "group key"),
        })
        .collect::<Result<_>>()?;
    let vals = aggs
        .iter()
        .map(|a| match &a.col {
            None => Ok(None),
            Some(ColumnSource::Column(c)) => Ok(Some(batch.column(*c).clone())),
            Some(ColumnSource::Expr(e)) => eval(e, "aggregate input").map(Some),
        })
        .collect::<Result<_>>()?;
    Ok((keys, vals))
}

/// Adds row `row` of the input columns `vals` to `accs`, one accumulator per aggregate.
#[inline]
pub(crate) fn update_accs(
    accs: &mut [PaneAcc],
    aggs: &[AggPlan],
    vals: &[Option<Col<'_>>],
    row: usize,
    val_buf: &mut Vec<u8>,
) {
    for ((acc, plan), col) in accs.iter_mut().zip(aggs).zip(vals) {
        let input = match (col, plan.func) {
            (None, _) => Input::Null,
            (Some(c), AggFn::CountDistinct) => {
                if c.is_null(row) {
                    Input::Null
                } else {
                    val_buf.clear();
                    c.encode(row, val_buf);
                    Input::Bytes(val_buf)
                }
            }
            (Some(c), _) => match plan.kind {
                NumKind::Int => c.int(row).map_or(Input::Null, Input::Int),
                NumKind::UInt => c.uint(row).map_or(Input::Null, Input::UInt),
                NumKind::Float => c.float(row).map_or(Input::Null, Input::Float),
            },
        };
        acc.update(plan.func, input, col.is_none());
    }
}

/// Output rows of one `advance`, flat: row `r` has key `keys[r]` and results
/// `res[r * n_aggs..][..n_aggs]`.
#[derive(Default)]
struct OutRows {
    start: Vec<Millis>,
    end: Vec<Millis>,
    keys: Vec<u32>,
    res: Vec<Out>,
}

/// Interns group keys: each distinct encoded key gets a small id while some pane or window
/// holds state for it, so per-pane state stores ids, never key bytes. An id is freed when its
/// last reference goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyTable {
    /// Not in snapshots: rebuilt from `bytes` on restore (keys are stored once).
    #[serde(skip)]
    ids: HashMap<Vec<u8>, u32>,
    bytes: Vec<Vec<u8>>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl KeyTable {
    /// The id of `key`, interning it if new. The caller takes a reference if it stores it.
    #[inline]
    fn id(&mut self, key: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.bytes[id as usize] = key.to_vec();
                id
            }
            None => {
                self.bytes.push(key.to_vec());
                self.refs.push(0);
                (self.bytes.len() - 1) as u32
            }
        };
        self.ids.insert(key.to_vec(), id);
        id
    }

    fn retain(&mut self, id: u32) {
        self.refs[id as usize] += 1;
    }

    fn release(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r == 0 {
            let bytes = std::mem::take(&mut self.bytes[id as usize]);
            self.ids.remove(&bytes);
            self.free.push(id);
        }
    }

    fn live(&self) -> usize {
        self.ids.len()
    }

    /// Rebuilds the key index after a restore.
    fn reindex(&mut self) {
        let free: hashbrown::HashSet<u32> = self.free.iter().copied().collect();
        self.ids = HashMap::with_capacity(self.bytes.len() - free.len());
        for (id, key) in self.bytes.iter().enumerate() {
            if !free.contains(&(id as u32)) {
                self.ids.insert(key.clone(), id as u32);
            }
        }
    }
}

/// A pane that has not closed yet: for each key (by id) a slot of accumulators, stored flat
/// (`accs[slot * n_aggs..][..n_aggs]`), so a pane allocates nothing per key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenPane {
    idx: i64,
    /// Not in snapshots: rebuilt from `ids` on restore.
    #[serde(skip)]
    slots: HashMap<u32, u32>,
    ids: Vec<u32>,
    accs: Vec<PaneAcc>,
    /// A capped pane's groups ([`capped`]). Not in snapshots: rebuilt on restore.
    #[serde(skip)]
    summaries: HashMap<Vec<u8>, capped::Summary>,
}

/// A key's closed panes inside the current sliding window (pane indexes, and accumulators
/// flat with a stride of n_aggs) and their running aggregate.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyWindow {
    panes: VecDeque<i64>,
    accs: VecDeque<PaneAcc>,
    running: Box<[RunAcc]>,
}

/// Everything an [`Aggregate`] must keep across a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    keys: KeyTable,
    open: VecDeque<OpenPane>,
    windows: HashMap<u32, KeyWindow>,
    closed_upto: Millis,
    last_end: Option<Millis>,
    /// For a top-K (`track_holders`): per closed pane in the sliding windows, the keys that
    /// hold it, so a slide visits only the keys whose panes leave. Rebuilt on restore.
    #[serde(skip)]
    holders: std::collections::BTreeMap<i64, Vec<u32>>,
}

const STATE_VERSION: u32 = 3;

/// The windowed keyed aggregation operator (see the crate docs for semantics).
pub struct Aggregate {
    out_schema: SchemaRef,
    in_schema: SchemaRef,
    time_col: Option<usize>,
    key_cols: Vec<ColumnSource>,
    key_types: Vec<DataType>,
    aggs: Vec<AggPlan>,
    size: i64,
    slide: i64,
    pane: i64,
    lateness: i64,
    state: State,
    /// Keep `State::holders` (a top-K's aggregate).
    track_holders: bool,
    /// Panes of bounded size (an approximate top-K's aggregate).
    cap: Option<capped::Cap>,
    key_buf: Vec<u8>,
    last_key: Vec<u8>,
    val_buf: Vec<u8>,
    late_rows: Vec<u32>,
    /// Latest wall-clock time seen in processing-time mode.
    now: Millis,
    /// Rows whose key or input could not be computed, and sums too large for their type.
    dead: DeadLetters,
}

/// Why an aggregate's value is null: its sum does not fit the output type.
fn overflow(name: &str, sum: i128, ty: &str) -> String {
    format!("the sum {sum} does not fit {ty}; {name} is null")
}

/// The longest window: 100 years (longer sizes overflow time arithmetic long before they
/// are useful).
const MAX_WINDOW: i64 = 36_500 * 86_400_000;

/// Panes per window at most (a 1-day window sliding by 1 s is 86 400).
const MAX_PANES: i64 = 1_000_000;

const fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Aggregate {
    /// Builds the operator for input `schema`; returns every problem found, with paths below
    /// `path`.
    pub fn new(cfg: &AggregateConfig, schema: SchemaRef, path: &str) -> Result<Self, Vec<Error>> {
        let mut errors = cfg.validate(path);
        let find =
            |name: &str, at: String, errors: &mut Vec<Error>| find_field(&schema, name, at, errors);
        let time_col = match &cfg.time_field {
            None => None,
            Some(t) => {
                let i = find(t, format!("{path}.time_field"), &mut errors);
                if let Some(i) = i {
                    if !matches!(
                        schema.field(i).data_type(),
                        DataType::Timestamp(TimeUnit::Millisecond, _)
                    ) {
                        errors.push(Error::config(
                            format!("{path}.time_field"),
                            format!(
                                "field {t:?} is {}, expected a timestamp",
                                schema.field(i).data_type()
                            ),
                        ));
                    }
                }
                i
            }
        };
        let mut key_cols = Vec::new();
        let mut key_fields = Vec::new();
        for (i, k) in cfg.group_by.iter().enumerate() {
            let at = format!("{path}.group_by[{i}]");
            let Ok((expr, alias)) = Expr::parse_aliased(k) else {
                continue;
            }; // reported by validate
            if let Some(col) = expr.as_column() {
                if let Some(c) = find(col, at, &mut errors) {
                    let f = schema.field(c).as_ref().clone().with_nullable(true);
                    key_fields.push(match alias {
                        Some(a) => f.with_name(a),
                        None => f,
                    });
                    key_cols.push(ColumnSource::Column(c));
                }
                continue;
            }
            match expr.bind(&schema) {
                Ok(b) if is_supported(b.data_type()) => {
                    let name = alias.unwrap_or_else(|| expr.text().to_string());
                    key_fields.push(Field::new(name, b.data_type().clone(), true));
                    key_cols.push(ColumnSource::Expr(b));
                }
                Ok(b) => errors.push(Error::config(
                    at,
                    format!("the key's type {} is not supported", b.data_type()),
                )),
                Err(e) => errors.push(Error::config(at, e.to_string())),
            }
        }
        let mut aggs = Vec::new();
        for (i, a) in cfg.aggregates.iter().enumerate() {
            let at = format!("{path}.aggregates[{i}].field");
            let (col, dt) = match a.field.as_deref().map(Expr::parse) {
                None | Some(Err(_)) => (None, None), // a syntax error is reported by validate
                Some(Ok(e)) => match e.as_column() {
                    Some(name) => match find(name, at.clone(), &mut errors) {
                        Some(c) => (
                            Some(ColumnSource::Column(c)),
                            Some(schema.field(c).data_type().clone()),
                        ),
                        None => (None, None),
                    },
                    None => match e.bind(&schema) {
                        Ok(b) => {
                            let dt = b.data_type().clone();
                            (Some(ColumnSource::Expr(b)), Some(dt))
                        }
                        Err(err) => {
                            errors.push(Error::config(at.clone(), err.to_string()));
                            (None, None)
                        }
                    },
                },
            };
            let kind = match &dt {
                Some(DataType::Float32 | DataType::Float64) => NumKind::Float,
                Some(d) if d.is_unsigned_integer() => NumKind::UInt,
                _ => NumKind::Int,
            };
            // Windows keep integers and floats; an explicit DECIMAL says which it should be.
            if let Some(d @ (DataType::Decimal128(..) | DataType::Decimal256(..))) = &dt {
                errors.push(Error::config(
                    at.clone(),
                    format!(
                        "{:?} is {d}: CAST it to BIGINT or DOUBLE",
                        a.field.as_deref().unwrap_or("")
                    ),
                ));
                continue;
            }
            // Booleans sum and average as 0/1: `sum(status >= 500)` counts errors.
            let numeric = matches!(&dt, Some(d) if d.is_numeric()
                || matches!(d, DataType::Timestamp(..))
                || (matches!(d, DataType::Boolean) && matches!(a.func, AggFn::Sum | AggFn::Avg)));
            if matches!(a.func, AggFn::Sum | AggFn::Avg | AggFn::Min | AggFn::Max)
                && dt.is_some()
                && !numeric
            {
                errors.push(Error::config(
                    format!("{path}.aggregates[{i}].field"),
                    format!(
                        "{:?} needs a numeric or timestamp field, {:?} is {}",
                        a.func,
                        a.field.as_deref().unwrap_or(""),
                        dt.as_ref().map(|d| d.to_string()).unwrap_or_default()
                    ),
                ));
            }
            if a.func == AggFn::Sum && matches!(dt, Some(DataType::Timestamp(..))) {
                errors.push(Error::config(
                    format!("{path}.aggregates[{i}].field"),
                    "cannot sum timestamps",
                ));
            }
            let out_type = match (a.func, kind, &dt) {
                (AggFn::Count | AggFn::CountDistinct, _, _) => DataType::Int64,
                (AggFn::Avg, _, _) | (_, NumKind::Float, _) => DataType::Float64,
                (AggFn::Min | AggFn::Max, _, Some(t @ DataType::Timestamp(..))) => t.clone(),
                (AggFn::Sum | AggFn::Min | AggFn::Max, NumKind::UInt, _) => DataType::UInt64,
                _ => DataType::Int64,
            };
            aggs.push(AggPlan {
                func: a.func,
                col,
                kind,
                out_type,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let ts_type = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let mut fields = vec![
            Field::new(WINDOW_START, ts_type.clone(), false),
            Field::new(WINDOW_END, ts_type, false),
        ];
        let key_types = key_fields.iter().map(|f| f.data_type().clone()).collect();
        fields.extend(key_fields);
        for (a, p) in cfg.aggregates.iter().zip(&aggs) {
            fields.push(Field::new(
                a.output_name(),
                p.out_type.clone(),
                p.func != AggFn::Count && p.func != AggFn::CountDistinct,
            ));
        }
        let (size, slide) = cfg.window.size_slide();
        Ok(Aggregate {
            out_schema: Arc::new(Schema::new(fields)),
            key_types,
            in_schema: schema,
            time_col,
            key_cols,
            aggs,
            size,
            slide,
            pane: gcd(size, slide),
            lateness: cfg.allowed_lateness.ms,
            state: State {
                keys: KeyTable::default(),
                open: VecDeque::new(),
                windows: HashMap::new(),
                closed_upto: MIN_TIME,
                last_end: None,
                holders: Default::default(),
            },
            track_holders: false,
            cap: None,
            key_buf: Vec::new(),
            last_key: Vec::new(),
            val_buf: Vec::new(),
            late_rows: Vec::new(),
            now: MIN_TIME,
            dead: DeadLetters::of_stage(path),
        })
    }

    /// The window end at which the pane `idx` closes: the first window end at or after the
    /// pane's end.
    #[inline]
    fn close_end(&self, idx: i64) -> Millis {
        let pane_end = idx.saturating_add(1).saturating_mul(self.pane);
        pane_end
            .div_euclid(self.slide)
            .saturating_add(i64::from(pane_end.rem_euclid(self.slide) != 0))
            .saturating_mul(self.slide)
    }

    /// Number of distinct keys holding state (in open panes or sliding windows).
    pub fn state_keys(&self) -> usize {
        self.state.keys.live()
    }

    /// The index in `state.open` of the pane `idx`, opened if it is not.
    fn open_pane(&mut self, idx: i64) -> usize {
        match self.state.open.binary_search_by_key(&idx, |p| p.idx) {
            Ok(i) => i,
            Err(i) => {
                self.state.open.insert(
                    i,
                    OpenPane {
                        idx,
                        slots: HashMap::new(),
                        ids: Vec::new(),
                        accs: Vec::new(),
                        summaries: HashMap::new(),
                    },
                );
                i
            }
        }
    }

    /// The slot of the encoded key `key` in the open pane at `cursor`, added if it has none.
    fn slot(&mut self, cursor: usize, key: &[u8]) -> usize {
        let pane = &mut self.state.open[cursor];
        if let Some(&slot) = self
            .state
            .keys
            .ids
            .get(key)
            .and_then(|id| pane.slots.get(id))
        {
            return slot as usize;
        }
        let id = self.state.keys.id(key);
        let slot = pane.ids.len();
        if let Some(cap) = &self.cap {
            let group = &key[..cap.group_len(&self.key_types, key)];
            let summary = pane.summaries.entry_ref(group).or_default();
            if !summary.has_room(cap) {
                // Space-Saving: the key takes over the slot (and count) of the smallest.
                let slot = summary.evict(&pane.accs, self.aggs.len());
                let old = std::mem::replace(&mut pane.ids[slot as usize], id);
                pane.slots.remove(&old);
                pane.slots.insert(id, slot);
                self.state.keys.retain(id);
                self.state.keys.release(old);
                return slot as usize;
            }
            summary.add(slot as u32);
        }
        pane.slots.insert(id, slot as u32);
        pane.ids.push(id);
        pane.accs
            .extend(self.aggs.iter().map(|a| PaneAcc::new(a.func, a.kind)));
        self.state.keys.retain(id);
        slot
    }

    fn add_rows(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        let n = batch.num_rows();
        let times = self
            .time_col
            .map(|c| Col::new(batch.column(c)).expect("checked at build"));
        let dead = &mut self.dead;
        let (key_arrays, val_arrays) =
            eval_inputs(&self.key_cols, &self.aggs, batch, |row, why| {
                dead.push_row(why, batch, row)
            })?;
        let keys: Vec<Col<'_>> = key_arrays
            .iter()
            .map(|a| Col::new(a).expect("key types are checked at build"))
            .collect();
        self.dead.emit(out);
        let vals: Vec<Option<Col<'_>>> = val_arrays
            .iter()
            .map(|a| a.as_ref().map(|a| Col::new(a).expect("checked at build")))
            .collect();
        self.late_rows.clear();
        // The open pane last written to: consecutive records usually share it.
        let mut cursor = usize::MAX;
        // The previous row's pane: its times [lo, hi), its index and whether it closed
        // already (the divisions that place a row are skipped for the rows after it).
        let mut span = (0i64, 0i64, 0i64, false);
        // (cursor, slot) of the previous row's key, whose bytes are in `self.last_key`.
        let mut last: Option<(usize, usize)> = None;
        for row in 0..n {
            let ts = match &times {
                Some(t) => match t.int(row) {
                    Some(ts) => ts,
                    None => {
                        // A record without event time cannot be placed in any window: it
                        // goes out with the late ones rather than vanish.
                        self.late_rows.push(row as u32);
                        continue;
                    }
                },
                None => self.now,
            };
            let (idx, late) = if ts >= span.0 && ts < span.1 {
                (span.2, span.3)
            } else {
                let idx = ts.div_euclid(self.pane);
                let late = self.close_end(idx) <= self.state.closed_upto;
                // Saturated bounds still hold only this pane's times.
                let lo = idx.saturating_mul(self.pane);
                let hi = idx.saturating_add(1).saturating_mul(self.pane);
                span = (lo, hi, idx, late);
                (idx, late)
            };
            if late {
                self.late_rows.push(row as u32);
                continue;
            }
            if cursor >= self.state.open.len() || self.state.open[cursor].idx != idx {
                last = None;
                cursor = self.open_pane(idx);
            }
            self.key_buf.clear();
            for k in &keys {
                k.encode(row, &mut self.key_buf);
            }
            // Runs of equal keys are common (most requests are 200s): reuse the last slot.
            let cached = last
                .filter(|&(c, _)| c == cursor)
                .filter(|_| self.key_buf == self.last_key);
            let slot = match cached {
                Some((_, slot)) => slot,
                None => {
                    let key = std::mem::take(&mut self.key_buf);
                    let slot = self.slot(cursor, &key);
                    last = Some((cursor, slot));
                    self.key_buf = std::mem::replace(&mut self.last_key, key);
                    slot
                }
            };
            let n_aggs = self.aggs.len();
            let accs = &mut self.state.open[cursor].accs[slot * n_aggs..(slot + 1) * n_aggs];
            update_accs(accs, &self.aggs, &vals, row, &mut self.val_buf);
        }
        if !self.late_rows.is_empty() {
            let idx = UInt32Array::from(std::mem::take(&mut self.late_rows));
            if let Ok(late) = arrow_select::take::take_record_batch(batch, &idx) {
                out.side(Port::Late, late);
            }
        }
        Ok(())
    }

    /// The next window end that has data to emit, if any.
    fn next_end(&self) -> Option<Millis> {
        let from_open = self.state.open.front().map(|p| self.close_end(p.idx));
        let from_windows = match (self.state.windows.is_empty(), self.state.last_end) {
            (false, Some(e)) => Some(e.saturating_add(self.slide)),
            _ => None,
        };
        match (from_open, from_windows) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Closes every window whose end is at or before `t` and emits their rows as one batch,
    /// ordered by window end, then key.
    fn advance(&mut self, t: Millis, out: &mut Emitter) {
        let mut rows = OutRows::default();
        let mut released = Vec::new();
        while let Some(end) = self.next_end() {
            if end > t {
                break;
            }
            self.close_window(end, &mut rows, &mut released, None);
            out.windows_closed.push(end);
        }
        self.state.closed_upto = self.state.closed_upto.max(t);
        if !rows.keys.is_empty() {
            let (batch, overflows) = self.build_output(&rows);
            for (row, why) in overflows {
                self.dead.push_row(&why, &batch, row);
            }
            out.data(batch);
            self.dead.emit(out);
        }
        // Key ids stay valid until the rows naming them are built.
        for id in released {
            self.state.keys.release(id);
        }
    }

    /// Closes the window ending at `end`, appending its rows (sorted by key, unless changes
    /// only) to `rows`; ids whose state ended are added to `released`.
    ///
    /// With `gone` (what a top-K keeps its ranking from), a sliding window's rows are only
    /// those of the keys whose value changed since the previous window (a pane entered or
    /// left), and the keys that left the window altogether are added to `gone`.
    fn close_window(
        &mut self,
        end: Millis,
        rows: &mut OutRows,
        released: &mut Vec<u32>,
        mut gone: Option<&mut Vec<u32>>,
    ) {
        let start = end.saturating_sub(self.size);
        let n = self.aggs.len();
        let first_row = rows.keys.len();
        let tumbling = self.size == self.slide;
        let changes = gone.is_some();
        // Changes only are read through the index of pane holders (a top-K keeps it).
        debug_assert!(!changes || self.track_holders);
        let mut entered: hashbrown::HashSet<u32> = hashbrown::HashSet::new();
        while self
            .state
            .open
            .front()
            .is_some_and(|p| self.close_end(p.idx) <= end)
        {
            let pane = self.state.open.pop_front().expect("checked non-empty");
            for (slot, &id) in pane.ids.iter().enumerate() {
                let accs = &pane.accs[slot * n..(slot + 1) * n];
                if tumbling {
                    rows.keys.push(id);
                    rows.res.extend(
                        self.aggs
                            .iter()
                            .zip(accs)
                            .map(|(a, acc)| pane_result(a.func, acc)),
                    );
                    released.push(id);
                    continue;
                }
                let w = match self.state.windows.get_mut(&id) {
                    Some(w) => {
                        // The window already holds a reference to this key.
                        released.push(id);
                        w
                    }
                    None => self.state.windows.entry(id).or_insert_with(|| KeyWindow {
                        panes: VecDeque::new(),
                        accs: VecDeque::new(),
                        running: self
                            .aggs
                            .iter()
                            .zip(accs)
                            .map(|(a, acc)| RunAcc::new(a.func, acc))
                            .collect(),
                    }),
                };
                for (r, acc) in w.running.iter_mut().zip(accs) {
                    r.add(acc);
                }
                if changes {
                    entered.insert(id);
                }
                if self.track_holders {
                    self.state.holders.entry(pane.idx).or_default().push(id);
                }
                w.panes.push_back(pane.idx);
                w.accs.extend(accs.iter().cloned());
            }
        }
        if !tumbling && self.track_holders {
            // Only the keys holding a pane that leaves, and those a pane entered, change.
            let first_idx = start.div_euclid(self.pane);
            let mut done: hashbrown::HashSet<u32> = hashbrown::HashSet::new();
            let push = |id: u32, w: &KeyWindow, rows: &mut OutRows| {
                rows.keys.push(id);
                rows.res.extend(
                    self.aggs
                        .iter()
                        .zip(w.running.iter())
                        .map(|(a, r)| run_result(a.func, r)),
                );
            };
            while let Some(holders) = self.state.holders.first_entry() {
                if *holders.key() >= first_idx {
                    break;
                }
                for id in holders.remove() {
                    if !done.insert(id) {
                        continue;
                    }
                    let w = self
                        .state
                        .windows
                        .get_mut(&id)
                        .expect("a holder has a window");
                    while w.panes.front().is_some_and(|idx| *idx < first_idx) {
                        w.panes.pop_front();
                        for r in w.running.iter_mut() {
                            let acc = w.accs.pop_front().expect("n accumulators per pane");
                            r.sub(&acc);
                        }
                    }
                    if w.panes.is_empty() {
                        self.state.windows.remove(&id);
                        if let Some(g) = gone.as_deref_mut() {
                            g.push(id);
                        }
                        released.push(id);
                    } else if changes {
                        push(id, w, rows);
                    }
                }
            }
            if changes {
                for id in entered {
                    if done.insert(id) {
                        push(id, &self.state.windows[&id], rows);
                    }
                }
            }
        } else if !tumbling {
            let first_idx = start.div_euclid(self.pane);
            let aggs = &self.aggs;
            self.state.windows.retain(|&id, w| {
                while w.panes.front().is_some_and(|idx| *idx < first_idx) {
                    w.panes.pop_front();
                    for r in w.running.iter_mut() {
                        let acc = w.accs.pop_front().expect("n accumulators per pane");
                        r.sub(&acc);
                    }
                }
                if w.panes.is_empty() {
                    released.push(id);
                    return false;
                }
                rows.keys.push(id);
                rows.res.extend(
                    aggs.iter()
                        .zip(w.running.iter())
                        .map(|(a, r)| run_result(a.func, r)),
                );
                true
            });
        }
        self.state.last_end = Some(end);
        self.state.closed_upto = self.state.closed_upto.max(end);
        let added = rows.keys.len() - first_row;
        rows.start.extend(std::iter::repeat_n(start, added));
        rows.end.extend(std::iter::repeat_n(end, added));
        // Encoded keys sort like their values: order this window's rows by key bytes (a
        // top-K's changes need no order).
        if added > 1 && !changes {
            let keys = &self.state.keys.bytes;
            let mut order: Vec<usize> = (0..added).collect();
            order.sort_unstable_by(|&a, &b| {
                keys[rows.keys[first_row + a] as usize]
                    .cmp(&keys[rows.keys[first_row + b] as usize])
            });
            let ids: Vec<u32> = order.iter().map(|&o| rows.keys[first_row + o]).collect();
            let res: Vec<Out> = order
                .iter()
                .flat_map(|&o| {
                    rows.res[(first_row + o) * n..(first_row + o + 1) * n]
                        .iter()
                        .copied()
                })
                .collect();
            rows.keys[first_row..].copy_from_slice(&ids);
            rows.res[first_row * n..].copy_from_slice(&res);
        }
    }

    /// The result rows as a batch, and the rows whose sum does not fit the output type (their
    /// value is null), with the reason.
    fn build_output(&self, rows: &OutRows) -> (RecordBatch, Vec<(usize, String)>) {
        let mut overflows = Vec::new();
        let n = rows.keys.len();
        let n_aggs = self.aggs.len();
        let ts = |v: &[Millis]| {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            b.append_slice(v);
            Arc::new(b.finish()) as ArrayRef
        };
        let mut cols: Vec<ArrayRef> = vec![ts(&rows.start), ts(&rows.end)];
        // Decode the keys column by column, each row's read position carried along.
        let mut pos = vec![0usize; n];
        for dt in &self.key_types {
            let vals: Vec<Scalar> = rows
                .keys
                .iter()
                .zip(pos.iter_mut())
                .map(|(&id, p)| decode(dt, &self.state.keys.bytes[id as usize], p))
                .collect();
            cols.push(array_from_scalars(dt, &vals));
        }
        for (i, a) in self.aggs.iter().enumerate() {
            // Aggregates follow window_start, window_end and the keys.
            let name = self.out_schema.field(2 + self.key_types.len() + i).name();
            let result = |r: usize| rows.res[r * n_aggs + i];
            cols.push(result_column(&a.out_type, name, n, result, &mut overflows));
        }
        let batch = RecordBatch::try_new(self.out_schema.clone(), cols)
            .expect("output columns follow the output schema");
        (batch, overflows)
    }
}

/// One window closed for a top-K: keys as the aggregate encodes them, with the value of its
/// (first) aggregate. The keys are copied into one buffer (a key may be released, and its id
/// reused, before the top-K reads the window): no allocation per key.
pub(crate) struct WindowChanges {
    pub(crate) start: Millis,
    pub(crate) end: Millis,
    bytes: Vec<u8>,
    /// Tumbling: every key of the window. Sliding: the keys whose value changed since the
    /// previous window (a pane of theirs entered or left). Ends of keys in `bytes`.
    set: Vec<(usize, Out)>,
    /// Sliding: the keys that left the window (their ends in `bytes`, after those of `set`).
    gone: Vec<usize>,
}

impl WindowChanges {
    fn push(&mut self, key: &[u8]) -> usize {
        self.bytes.extend_from_slice(key);
        self.bytes.len()
    }

    /// The keys whose value changed, with the value.
    pub(crate) fn set(&self) -> impl Iterator<Item = (&[u8], Out)> + '_ {
        let starts = std::iter::once(0).chain(self.set.iter().map(|s| s.0));
        starts
            .zip(&self.set)
            .map(|(start, &(end, v))| (&self.bytes[start..end], v))
    }

    /// The keys that left the window.
    pub(crate) fn gone(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let first = self.set.last().map_or(0, |s| s.0);
        let starts = std::iter::once(first).chain(self.gone.iter().copied());
        starts
            .zip(&self.gone)
            .map(|(start, &end)| &self.bytes[start..end])
    }
}

/// What a top-K reads of the aggregate it ranks (`crate::topk`).
impl Aggregate {
    pub(crate) fn is_tumbling(&self) -> bool {
        self.size == self.slide
    }

    /// Keeps, per closed pane, the keys holding it, so that a slide (with changes only) visits
    /// just those; set before any state is restored.
    pub(crate) fn track_holders(&mut self) {
        self.track_holders = true;
    }

    /// Keeps at most `counters` keys per open pane and group (Space-Saving, see [`capped`]),
    /// the group being the first `groups` key columns; the one aggregate must be a count. Set
    /// before any state is restored.
    pub(crate) fn cap(&mut self, groups: usize, counters: usize) {
        debug_assert!(self.aggs.len() == 1 && self.aggs[0].func == AggFn::Count);
        self.cap = Some(capped::Cap { groups, counters });
    }

    pub(crate) fn size(&self) -> i64 {
        self.size
    }

    pub(crate) fn in_event_time(&self) -> bool {
        self.time_col.is_some()
    }

    pub(crate) fn lateness(&self) -> i64 {
        self.lateness
    }

    /// Processing time: moves the clock to `now` (never back) and returns it.
    pub(crate) fn clock(&mut self, now: Millis) -> Millis {
        self.now = self.now.max(now);
        self.now
    }

    pub(crate) fn closed_upto(&self) -> Millis {
        self.state.closed_upto
    }

    pub(crate) fn key_sources(&self) -> &[ColumnSource] {
        &self.key_cols
    }

    pub(crate) fn key_types(&self) -> &[DataType] {
        &self.key_types
    }

    /// The output type of the first aggregate.
    pub(crate) fn value_type(&self) -> &DataType {
        &self.aggs[0].out_type
    }

    /// Closes every window whose end is at or before `t`, like `advance`, and returns each
    /// window's changes instead of its rows; the ends go to `closed`.
    pub(crate) fn advance_changes(
        &mut self,
        t: Millis,
        closed: &mut Vec<Millis>,
    ) -> Vec<WindowChanges> {
        let mut windows = Vec::new();
        while let Some(end) = self.next_end() {
            if end > t {
                break;
            }
            let (mut rows, mut released, mut gone) = (OutRows::default(), Vec::new(), Vec::new());
            self.close_window(end, &mut rows, &mut released, Some(&mut gone));
            let n = self.aggs.len();
            let bytes = &self.state.keys.bytes;
            let mut w = WindowChanges {
                start: end.saturating_sub(self.size),
                end,
                bytes: Vec::new(),
                set: Vec::with_capacity(rows.keys.len()),
                gone: Vec::with_capacity(gone.len()),
            };
            for (r, &id) in rows.keys.iter().enumerate() {
                let at = w.push(&bytes[id as usize]);
                w.set.push((at, rows.res[r * n]));
            }
            for &id in &gone {
                let at = w.push(&bytes[id as usize]);
                w.gone.push(at);
            }
            windows.push(w);
            for id in released {
                self.state.keys.release(id);
            }
            closed.push(end);
        }
        self.state.closed_upto = self.state.closed_upto.max(t);
        windows
    }

    /// Sliding: every key in the current window with the value of the first aggregate, as of
    /// the last window closed.
    pub(crate) fn window_values(&self) -> Vec<(Vec<u8>, Out)> {
        let f = self.aggs[0].func;
        self.state
            .windows
            .iter()
            .map(|(&id, w)| {
                let key = self.state.keys.bytes[id as usize].clone();
                (key, run_result(f, &w.running[0]))
            })
            .collect()
    }
}

/// The output column of one aggregate from its `n` results (`result(row)`); a sum that does
/// not fit `out_type` becomes null and its row is added to `overflows` with the reason.
pub(crate) fn result_column(
    out_type: &DataType,
    name: &str,
    n: usize,
    result: impl Fn(usize) -> Out,
    overflows: &mut Vec<(usize, String)>,
) -> ArrayRef {
    match out_type {
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            for r in 0..n {
                match result(r) {
                    Out::Float(v) => b.append_value(v),
                    Out::Int(v) => b.append_value(v as f64),
                    Out::Sum(v) => b.append_value(v as f64),
                    Out::Null => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(..) => {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for r in 0..n {
                match result(r) {
                    Out::Int(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::UInt64 => {
            let mut b = UInt64Builder::with_capacity(n);
            for r in 0..n {
                match result(r) {
                    Out::Int(v) => b.append_value(crate::acc::unflip(v)),
                    Out::Sum(v) => match u64::try_from(v) {
                        Ok(v) => b.append_value(v),
                        Err(_) => {
                            b.append_null();
                            overflows.push((r, overflow(name, v, "uint64")));
                        }
                    },
                    Out::Float(v) => b.append_value(v as u64),
                    Out::Null => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = Int64Builder::with_capacity(n);
            for r in 0..n {
                match result(r) {
                    Out::Int(v) => b.append_value(v),
                    Out::Sum(v) => match i64::try_from(v) {
                        Ok(v) => b.append_value(v),
                        Err(_) => {
                            b.append_null();
                            overflows.push((r, overflow(name, v, "int64")));
                        }
                    },
                    Out::Float(v) => b.append_value(v as i64),
                    Out::Null => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

impl Operator for Aggregate {
    fn output_schema(&self) -> SchemaRef {
        self.out_schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        if batch.schema().fields() != self.in_schema.fields() {
            return Err(Error::Internal(format!(
                "aggregate got a batch of schema {:?}, built for {:?}",
                batch.schema(),
                self.in_schema
            )));
        }
        if self.time_col.is_none() {
            self.now = self.now.max(weir_core::time::now_ms());
        }
        self.add_rows(batch, out)?;
        Ok(())
    }

    fn on_watermark(&mut self, wm: Millis, out: &mut Emitter) -> Result<()> {
        if self.time_col.is_some() {
            let close = if wm == MAX_TIME {
                MAX_TIME
            } else {
                wm.saturating_sub(self.lateness)
            };
            self.advance(close, out);
            out.watermark(close);
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Millis, out: &mut Emitter) -> Result<()> {
        if self.time_col.is_none() {
            self.now = self.now.max(now);
            self.advance(self.now.saturating_sub(self.lateness), out);
            out.watermark(self.state.closed_upto);
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        self.advance(MAX_TIME, out);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        weir_core::state::encode("aggregate", STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.install(weir_core::state::decode("aggregate", STATE_VERSION, bytes)?);
        Ok(())
    }

    fn partitioner(&self) -> Option<Arc<dyn Partitioner>> {
        // Without a group key every row has the same (empty) key: one instance does it all.
        (!self.key_cols.is_empty())
            .then(|| Arc::new(GroupKeys(self.key_cols.clone())) as Arc<dyn Partitioner>)
    }

    fn combiner(&self) -> Option<Arc<dyn Combiner>> {
        // In processing time a row's window is the instance's clock: only it can place rows.
        let time_col = self.time_col?;
        let exact = self.aggs.iter().all(|a| PaneAcc::mergeable(a.func, a.kind));
        (exact && !self.key_cols.is_empty()).then(|| {
            Arc::new(Fold {
                time_col,
                keys: GroupKeys(self.key_cols.clone()),
                aggs: self.aggs.clone(),
                pane: self.pane,
                skip: AtomicU32::new(0),
            }) as Arc<dyn Combiner>
        })
    }

    fn on_partial(&mut self, part: &Partial, out: &mut Emitter) -> Result<()> {
        let Some(f) = part.part.downcast_ref::<Folded>() else {
            return Err(Error::Internal(
                "an aggregate got records folded by another operator".into(),
            ));
        };
        let n_aggs = self.aggs.len();
        let mut late: Vec<u32> = Vec::new();
        let mut cursor = usize::MAX;
        for (i, &idx) in f.panes.iter().enumerate() {
            // A fold's rows are late together: lateness is decided per pane.
            if self.close_end(idx) <= self.state.closed_upto {
                late.push(f.ids[i]);
                continue;
            }
            if cursor >= self.state.open.len() || self.state.open[cursor].idx != idx {
                cursor = self.open_pane(idx);
            }
            let slot = self.slot(cursor, f.key(i));
            let accs = &mut self.state.open[cursor].accs[slot * n_aggs..(slot + 1) * n_aggs];
            for ((acc, a), other) in accs
                .iter_mut()
                .zip(&self.aggs)
                .zip(&f.accs[i * n_aggs..(i + 1) * n_aggs])
            {
                acc.merge(a.func, other);
            }
        }
        if !late.is_empty() {
            // The late folds' rows, in their order in the batch.
            late.sort_unstable();
            let rows: Vec<u32> = f
                .fold_of_row
                .iter()
                .enumerate()
                .filter(|(_, fold)| **fold != UNFOLDED && late.binary_search(fold).is_ok())
                .map(|(row, _)| row as u32)
                .collect();
            let rows = arrow_select::take::take_record_batch(&f.batch, &UInt32Array::from(rows))?;
            out.side(Port::Late, rows);
        }
        Ok(())
    }

    fn output_order(&self) -> Option<Vec<usize>> {
        // Window end, then the key columns (see `advance`). Encoded keys sort as the key
        // columns do: NULL first, then by value.
        Some(
            std::iter::once(1)
                .chain(2..2 + self.key_types.len())
                .collect(),
        )
    }

    fn restore_keyed(&mut self, states: &[Vec<u8>], owns: &dyn Fn(u64) -> bool) -> Result<()> {
        self.restore_keys(states, &|key| owns(key_hash(key)))
    }
}

impl Aggregate {
    /// Restores from the snapshots of every instance of an earlier run the keys (encoded)
    /// that `owns` accepts.
    pub(crate) fn restore_keys(
        &mut self,
        states: &[Vec<u8>],
        owns: &dyn Fn(&[u8]) -> bool,
    ) -> Result<()> {
        let n = self.aggs.len();
        let mut merged = State {
            keys: KeyTable::default(),
            open: VecDeque::new(),
            windows: HashMap::new(),
            closed_upto: MIN_TIME,
            last_end: None,
            holders: Default::default(),
        };
        for bytes in states {
            let st: State = weir_core::state::decode("aggregate", STATE_VERSION, bytes)?;
            // Every instance saw the same watermarks: these agree, or the later one holds.
            merged.closed_upto = merged.closed_upto.max(st.closed_upto);
            merged.last_end = merged.last_end.max(st.last_end);
            let own = |id: u32, keys: &mut KeyTable| {
                let key = &st.keys.bytes[id as usize];
                owns(key).then(|| {
                    let new = keys.id(key);
                    keys.retain(new);
                    new
                })
            };
            for pane in &st.open {
                let at = match merged.open.binary_search_by_key(&pane.idx, |p| p.idx) {
                    Ok(at) => at,
                    Err(at) => {
                        merged.open.insert(
                            at,
                            OpenPane {
                                idx: pane.idx,
                                slots: HashMap::new(),
                                ids: Vec::new(),
                                accs: Vec::new(),
                                summaries: HashMap::new(),
                            },
                        );
                        at
                    }
                };
                for (slot, &id) in pane.ids.iter().enumerate() {
                    if let Some(new) = own(id, &mut merged.keys) {
                        let target = &mut merged.open[at];
                        target.ids.push(new);
                        target
                            .accs
                            .extend_from_slice(&pane.accs[slot * n..(slot + 1) * n]);
                    }
                }
            }
            for (&id, w) in &st.windows {
                if let Some(new) = own(id, &mut merged.keys) {
                    merged.windows.insert(new, w.clone());
                }
            }
        }
        merged.open.retain(|p| !p.ids.is_empty());
        self.install(merged);
        Ok(())
    }
}

impl Aggregate {
    /// Makes `state` current, rebuilding the indexes that snapshots leave out.
    fn install(&mut self, mut state: State) {
        state.keys.reindex();
        for pane in &mut state.open {
            pane.slots = pane
                .ids
                .iter()
                .enumerate()
                .map(|(slot, &id)| (id, slot as u32))
                .collect();
            if let Some(cap) = &self.cap {
                pane.summaries = capped::summaries(
                    cap,
                    &self.key_types,
                    &state.keys.bytes,
                    &pane.ids,
                    &pane.accs,
                    self.aggs.len(),
                );
            }
        }
        state.holders.clear();
        if self.track_holders {
            for (&id, w) in &state.windows {
                for &idx in &w.panes {
                    state.holders.entry(idx).or_default().push(id);
                }
            }
        }
        self.state = state;
    }
}

mod capped;

#[cfg(test)]
mod tests;
