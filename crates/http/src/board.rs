//! The dashboard's state: what each shown output emitted last, the pipeline's counters, and
//! the stream of updates every open page follows.
//!
//! An output shown on the dashboard is fed by a [`BoardSink`], one per output, which encodes
//! rows as JSON and publishes them at most every 100 ms (at each sink tick). The [`Board`]
//! keeps, per output, what a page needs to draw it from scratch — the last two windows of a
//! top-K list (the current one and the one it is compared with for rank changes), the last
//! `keep` windows of a chart, the last `keep` rows of a feed — and numbers every update. A
//! page that connects gets a snapshot with the number it reflects, then every later update;
//! a page that falls behind (its queue of updates overflows) gets a new snapshot instead of a
//! backlog, so one slow browser costs memory bounded by the queue, not by its slowness.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use axum::extract::ws::Utf8Bytes;
use serde::Deserialize;
use tokio::sync::broadcast;
use weir_core::metrics::NodeMetrics;
use weir_core::time::Millis;
use weir_core::value::write_json_str;
use weir_core::{Error, Result, Sink};

/// Updates a page may lag behind before it is sent a fresh snapshot instead.
const LAG: usize = 256;
/// Windows of a chart kept unless `keep` says otherwise (an hour of 10 s windows).
const CHART_KEEP: usize = 360;
/// Rows of a feed kept unless `keep` says otherwise.
const FEED_KEEP: usize = 200;
/// Windows a top-K list keeps: the current one and the one before (for rank changes).
const TOP_WINDOWS: usize = 2;
/// The most rows one output keeps whatever its view, so that a chart of a high-cardinality
/// output cannot take the server's memory.
const MAX_ROWS: usize = 100_000;

/// How the dashboard draws an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Ranked lists (a `top_k` stage's output: it has a `rank` column), one per group, with
    /// each key's move since the previous window (up, down, new).
    Top,
    /// A line chart of a windowed output: x is `window_end`, one line per distinct value of
    /// the non-numeric columns (e.g. per status), y the last numeric column.
    Chart,
    /// The newest rows first, as a table (alerts, dead letters, anything else).
    Feed,
}

impl View {
    fn name(self) -> &'static str {
        match self {
            View::Top => "top",
            View::Chart => "chart",
            View::Feed => "feed",
        }
    }

    /// The view an output's schema suggests: ranked rows are a list, windowed rows with a
    /// number a chart, anything else a feed.
    pub fn of(schema: &Schema) -> View {
        let has = |n: &str| schema.column_with_name(n).is_some();
        let numeric = schema.fields().iter().any(|f| f.data_type().is_numeric());
        if has("rank") && has("change") {
            // A top-K's changes (entered, left, up, down) read best as a feed.
            View::Feed
        } else if has("rank") && has("window_end") {
            View::Top
        } else if has("window_end") && numeric {
            View::Chart
        } else {
            View::Feed
        }
    }
}

/// One entry of `[server] dashboard`: a node's output by name, or a table with options.
#[derive(Debug, Clone)]
pub enum DashboardEntry {
    /// `"top_cart"`: the output of that node, drawn as its schema suggests.
    Name(String),
    /// `{ output = "alerts", view = "feed", keep = 500, title = "DDoS alerts" }`.
    Full(DashboardOutput),
}

/// An output the dashboard shows, with its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardOutput {
    /// The node (source or stage) whose output is shown; `node.errors` or `node.late` for a
    /// side port. Also its name in `/api/outputs/<output>`.
    pub output: String,
    /// `top`, `chart` or `feed` (default: from the output's columns, see [`View::of`]).
    #[serde(default)]
    pub view: Option<View>,
    /// Windows a chart keeps (default 360), rows a feed keeps (default 200).
    #[serde(default)]
    pub keep: Option<usize>,
    /// The panel's heading (default: the output's name).
    #[serde(default)]
    pub title: Option<String>,
    /// A chart's value column (default: `count` if there is one, else the last numeric one).
    #[serde(default)]
    pub y: Option<String>,
    /// A chart's line per distinct value of these columns (default: the columns before `y`
    /// but the window's bounds, which for an `aggregate` stage are its `group_by` keys).
    #[serde(default)]
    pub series: Option<Vec<String>>,
}

/// By hand rather than `untagged`, so that a bad table says which key is wrong.
impl<'de> Deserialize<'de> for DashboardEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DashboardEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a node's name (\"top_cart\") or a table ({ output = \"alerts\", view = \"feed\" })")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(DashboardEntry::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                DashboardOutput::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(DashboardEntry::Full)
            }
        }
        d.deserialize_any(V)
    }
}

impl DashboardEntry {
    /// The entry as a table.
    pub fn output(&self) -> DashboardOutput {
        match self {
            DashboardEntry::Name(n) => DashboardOutput {
                output: n.clone(),
                view: None,
                keep: None,
                title: None,
                y: None,
                series: None,
            },
            DashboardEntry::Full(o) => o.clone(),
        }
    }
}

/// A node whose counters the dashboard and `/metrics` show.
#[derive(Clone)]
pub struct Watched {
    /// Node name.
    pub name: String,
    /// `source`, `stage` or `sink`.
    pub kind: &'static str,
    /// Its live counters.
    pub metrics: Arc<NodeMetrics>,
}

/// Checkpoint figures for the dashboard and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointFigures {
    /// Completed in this run.
    pub completed: u64,
    /// Failed in this run.
    pub failed: u64,
    /// Epoch of the newest completed checkpoint.
    pub last_epoch: u64,
    /// When it became durable (ms since 1970), 0 before the first.
    pub last_at_ms: u64,
}

/// Reads the checkpoint figures of a running pipeline.
pub type CheckpointProbe = Arc<dyn Fn() -> CheckpointFigures + Send + Sync>;

/// What the pipeline's health is read from.
#[derive(Clone, Default)]
pub(crate) struct Watch {
    pub nodes: Vec<Watched>,
    pub checkpoints: Option<CheckpointProbe>,
}

/// A row kept for a page: the end of its window (if the output has one) and its JSON.
struct Row {
    end: Option<Millis>,
    json: Box<str>,
}

/// One output on the dashboard.
struct Panel {
    view: View,
    title: String,
    /// `[name, type]` of each column, as JSON.
    columns: String,
    /// A chart's value column and the columns that tell its lines apart, as JSON.
    chart: String,
    /// Windows (top, chart) or rows (feed) kept.
    keep: usize,
    rows: VecDeque<Row>,
    /// Rows per window end among `rows` (top, chart).
    ends: BTreeMap<Millis, usize>,
    /// Rows ever published.
    total: u64,
}

impl Panel {
    fn push(&mut self, row: Row) {
        if let Some(e) = row.end {
            *self.ends.entry(e).or_default() += 1;
        }
        self.rows.push_back(row);
        self.total += 1;
    }

    /// Drops what the view no longer needs: windows beyond `keep` (oldest first), rows beyond
    /// `keep` for a feed, and rows beyond [`MAX_ROWS`] in any case.
    fn trim(&mut self) {
        if self.view == View::Feed {
            while self.rows.len() > self.keep {
                self.rows.pop_front();
            }
        } else if self.ends.len() > self.keep {
            let cut = *self
                .ends
                .keys()
                .nth(self.ends.len() - self.keep)
                .expect("more ends than keep");
            self.ends = self.ends.split_off(&cut);
            self.rows.retain(|r| r.end.is_none_or(|e| e >= cut));
        }
        while self.rows.len() > MAX_ROWS {
            if let Some(Row { end: Some(e), .. }) = self.rows.pop_front() {
                if let Some(n) = self.ends.get_mut(&e) {
                    *n -= 1;
                    if *n == 0 {
                        self.ends.remove(&e);
                    }
                }
            }
        }
    }

    /// The rows a REST client asks for: a top-K's current window, all kept rows otherwise.
    fn current(&self) -> impl Iterator<Item = &Row> {
        let last = match self.view {
            View::Top => self.ends.keys().next_back().copied(),
            _ => None,
        };
        self.rows
            .iter()
            .filter(move |r| last.is_none() || r.end == last)
    }

    fn describe(&self, name: &str, out: &mut String) {
        out.push_str("{\"name\":");
        write_json_str(name, out);
        out.push_str(",\"title\":");
        write_json_str(&self.title, out);
        let _ = write!(
            out,
            ",\"view\":\"{}\",\"columns\":{},\"keep\":{},\"total\":{}{}",
            self.view.name(),
            self.columns,
            self.keep,
            self.total,
            self.chart
        );
    }
}

fn rows_json<'a>(rows: impl Iterator<Item = &'a Row>, out: &mut String) {
    out.push('[');
    for (i, r) in rows.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.json);
    }
    out.push(']');
}

struct Inner {
    /// Number of the last update published.
    seq: u64,
    outputs: BTreeMap<String, Panel>,
}

/// Rates need the counters of the previous reading.
struct Reading {
    at: Instant,
    counts: Vec<(u64, u64)>,
}

/// The dashboard's state, shared by the sinks that feed it and the pages that show it.
pub struct Board {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Utf8Bytes>,
    watch: Mutex<Watch>,
    /// The last health reading as JSON, and the counters it was computed from.
    health: Mutex<(String, Option<Reading>)>,
    started: Instant,
    clients: AtomicUsize,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            inner: Mutex::new(Inner {
                seq: 0,
                outputs: BTreeMap::new(),
            }),
            tx: broadcast::channel(LAG).0,
            watch: Mutex::new(Watch::default()),
            health: Mutex::new(("null".into(), None)),
            started: Instant::now(),
            clients: AtomicUsize::new(0),
        }
    }
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => "time",
        t if t.is_numeric() => "number",
        DataType::Boolean => "bool",
        _ => "string",
    }
}

/// A chart's `"y"` and `"series"` members: configured (and checked) or chosen from the schema.
fn chart_columns(cfg: &DashboardOutput, schema: &Schema) -> Result<String> {
    let path = format!("server.dashboard ({})", cfg.output);
    let fields = schema.fields();
    let y = match &cfg.y {
        Some(y) => match schema.column_with_name(y) {
            Some((i, f)) if f.data_type().is_numeric() => i,
            Some(_) => return Err(Error::config(path, format!("y: {y} is not a number"))),
            None => {
                return Err(Error::config(
                    path,
                    format!("y: {} has no column {y}", cfg.output),
                ))
            }
        },
        None => match schema.column_with_name("count") {
            Some((i, _)) => i,
            None => fields
                .iter()
                .rposition(|f| f.data_type().is_numeric())
                .ok_or_else(|| Error::config(path.clone(), "a chart needs a numeric column"))?,
        },
    };
    let series: Vec<String> = match &cfg.series {
        Some(s) => {
            if let Some(bad) = s.iter().find(|c| schema.column_with_name(c).is_none()) {
                return Err(Error::config(
                    path,
                    format!("series: {} has no column {bad}", cfg.output),
                ));
            }
            s.clone()
        }
        None => fields[..y]
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != "window_start" && n != "window_end")
            .collect(),
    };
    let mut out = String::from(",\"y\":");
    write_json_str(fields[y].name(), &mut out);
    out.push_str(",\"series\":[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(s, &mut out);
    }
    out.push(']');
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Board {
    /// Adds an output and returns the sink that feeds it.
    pub fn add(self: &Arc<Self>, cfg: &DashboardOutput, schema: &Schema) -> Result<BoardSink> {
        let view = cfg.view.unwrap_or_else(|| View::of(schema));
        let end = match schema.column_with_name("window_end") {
            Some((i, f))
                if matches!(f.data_type(), DataType::Timestamp(TimeUnit::Millisecond, _)) =>
            {
                Some(i)
            }
            _ => None,
        };
        if view != View::Feed && end.is_none() {
            return Err(Error::config(
                "server.dashboard",
                format!(
                    "{} has no window_end column (a timestamp), so it cannot be drawn as a {}; \
                     use view = \"feed\"",
                    cfg.output,
                    view.name()
                ),
            ));
        }
        if view == View::Top && schema.column_with_name("rank").is_none() {
            return Err(Error::config(
                "server.dashboard",
                format!(
                    "{} has no rank column: a top list needs a top_k stage's output",
                    cfg.output
                ),
            ));
        }
        let chart = match view {
            View::Chart => chart_columns(cfg, schema)?,
            _ => String::new(),
        };
        let mut columns = String::from("[");
        for (i, f) in schema.fields().iter().enumerate() {
            if i > 0 {
                columns.push(',');
            }
            columns.push('[');
            write_json_str(f.name(), &mut columns);
            let _ = write!(columns, ",\"{}\"]", type_name(f.data_type()));
        }
        columns.push(']');
        let keep = match view {
            View::Top => TOP_WINDOWS,
            View::Chart => cfg.keep.unwrap_or(CHART_KEEP),
            View::Feed => cfg.keep.unwrap_or(FEED_KEEP),
        }
        .max(1);
        let mut inner = self.inner.lock().expect("board lock");
        if inner.outputs.contains_key(&cfg.output) {
            return Err(Error::config(
                "server.dashboard",
                format!("{} is listed twice", cfg.output),
            ));
        }
        inner.outputs.insert(
            cfg.output.clone(),
            Panel {
                view,
                title: cfg.title.clone().unwrap_or_else(|| cfg.output.clone()),
                columns,
                chart,
                keep,
                rows: VecDeque::new(),
                ends: BTreeMap::new(),
                total: 0,
            },
        );
        Ok(BoardSink {
            board: self.clone(),
            name: cfg.output.clone(),
            end,
            pending: Vec::new(),
            text: String::new(),
        })
    }

    /// Names of the outputs shown.
    pub fn outputs(&self) -> Vec<String> {
        let inner = self.inner.lock().expect("board lock");
        inner.outputs.keys().cloned().collect()
    }

    /// Makes the pipeline's counters visible (the dashboard's health panel, `/metrics`).
    pub fn watch(&self, nodes: Vec<Watched>, checkpoints: Option<CheckpointProbe>) {
        *self.watch.lock().expect("watch lock") = Watch { nodes, checkpoints };
    }

    pub(crate) fn watched(&self) -> Watch {
        self.watch.lock().expect("watch lock").clone()
    }

    /// Follows updates: subscribe before taking the snapshot, and skip updates it includes.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.tx.subscribe()
    }

    /// Pages connected.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    pub(crate) fn connected(&self, delta: isize) {
        match delta {
            1 => self.clients.fetch_add(1, Ordering::Relaxed),
            _ => self.clients.fetch_sub(1, Ordering::Relaxed),
        };
    }

    /// Seconds since the server started.
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Publishes rows of an output, already JSON, and trims what the output keeps.
    fn publish(&self, name: &str, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().expect("board lock");
        inner.seq += 1;
        let seq = inner.seq;
        let Some(panel) = inner.outputs.get_mut(name) else {
            return;
        };
        let mut msg = format!("{{\"type\":\"rows\",\"seq\":{seq},\"output\":");
        write_json_str(name, &mut msg);
        msg.push_str(",\"rows\":");
        // A page applies the same trimming, so rows the panel drops at once need not travel.
        let from = rows.len().saturating_sub(match panel.view {
            View::Feed => panel.keep,
            _ => MAX_ROWS,
        });
        rows_json(rows[from..].iter(), &mut msg);
        msg.push('}');
        for r in rows {
            panel.push(r);
        }
        panel.trim();
        // Sent under the lock so that updates leave in `seq` order; no page connected is not
        // an error.
        let _ = self.tx.send(Utf8Bytes::from(msg));
    }

    /// Everything a page needs to draw from scratch, and the update number it reflects.
    pub(crate) fn snapshot(&self) -> String {
        let health = self.health.lock().expect("health lock").0.clone();
        let inner = self.inner.lock().expect("board lock");
        let mut out = format!(
            "{{\"type\":\"snapshot\",\"seq\":{},\"outputs\":[",
            inner.seq
        );
        for (i, (name, p)) in inner.outputs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            p.describe(name, &mut out);
            out.push_str(",\"rows\":");
            rows_json(p.rows.iter(), &mut out);
            out.push('}');
        }
        let _ = write!(out, "],\"health\":{health}}}");
        out
    }

    /// `GET /api/outputs`: the outputs and how they are drawn.
    pub(crate) fn list(&self) -> String {
        let inner = self.inner.lock().expect("board lock");
        let mut out = String::from("{\"outputs\":[");
        for (i, (name, p)) in inner.outputs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            p.describe(name, &mut out);
            out.push('}');
        }
        out.push_str("]}\n");
        out
    }

    /// `GET /api/outputs/<name>`: a top-K's current lists, or the rows a chart or feed
    /// keeps; `None` for an output not shown.
    pub(crate) fn output(&self, name: &str) -> Option<String> {
        let inner = self.inner.lock().expect("board lock");
        let p = inner.outputs.get(name)?;
        let mut out = String::new();
        p.describe(name, &mut out);
        if p.view == View::Top {
            let end = p.ends.keys().next_back().copied();
            let _ = write!(
                out,
                ",\"window_end_ms\":{}",
                end.map_or("null".into(), |e| e.to_string())
            );
        }
        out.push_str(",\"rows\":");
        rows_json(p.current(), &mut out);
        out.push_str("}\n");
        Some(out)
    }

    /// Reads the counters, computes rates since the last reading, keeps the result for
    /// snapshots and `/api/pipeline`, and sends it to the pages. Called every second.
    pub(crate) fn sample(&self) {
        let watch = self.watched();
        let now = Instant::now();
        let wall = now_ms() as i64;
        let mut health = self.health.lock().expect("health lock");
        let prev = health.1.take();
        let secs = prev
            .as_ref()
            .map(|p| now.duration_since(p.at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let mut counts = Vec::with_capacity(watch.nodes.len());
        let mut out = format!(
            "{{\"uptime_s\":{:.1},\"clients\":{},\"nodes\":[",
            self.uptime(),
            self.clients()
        );
        for (i, n) in watch.nodes.iter().enumerate() {
            let m = &n.metrics;
            let (rin, rout) = (
                NodeMetrics::get(&m.records_in),
                NodeMetrics::get(&m.records_out),
            );
            counts.push((rin, rout));
            let rate = |j: usize, now: u64| -> f64 {
                match (&prev, secs) {
                    (Some(p), Some(s)) if p.counts.len() == watch.nodes.len() => {
                        let before = if j == 0 { p.counts[i].0 } else { p.counts[i].1 };
                        now.saturating_sub(before) as f64 / s
                    }
                    _ => 0.0,
                }
            };
            let wm = m.watermark.load(Ordering::Relaxed);
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            write_json_str(&n.name, &mut out);
            let _ = write!(
                out,
                ",\"kind\":\"{}\",\"records_in\":{rin},\"records_out\":{rout},\
                 \"in_per_s\":{:.1},\"out_per_s\":{:.1},\"bytes_in\":{},\"malformed\":{},\
                 \"late\":{},\"windows\":{},\"watermark_ms\":{},\"watermark_lag_ms\":{}}}",
                n.kind,
                rate(0, rin),
                rate(1, rout),
                NodeMetrics::get(&m.bytes_in),
                NodeMetrics::get(&m.malformed),
                NodeMetrics::get(&m.late),
                NodeMetrics::get(&m.windows),
                if wm == i64::MIN {
                    "null".into()
                } else {
                    wm.to_string()
                },
                if wm == i64::MIN || wm == i64::MAX {
                    "null".into()
                } else {
                    (wall - wm).max(0).to_string()
                },
            );
        }
        out.push(']');
        match watch.checkpoints.as_ref().map(|c| c()) {
            Some(c) => {
                let age = match c.last_at_ms {
                    0 => "null".to_string(),
                    at => format!("{:.1}", (wall as u64).saturating_sub(at) as f64 / 1000.0),
                };
                let _ = write!(
                    out,
                    ",\"checkpoint\":{{\"completed\":{},\"failed\":{},\"last_epoch\":{},\"age_s\":{age}}}",
                    c.completed, c.failed, c.last_epoch
                );
            }
            None => out.push_str(",\"checkpoint\":null"),
        }
        out.push('}');
        let msg = format!("{{\"type\":\"health\",\"health\":{out}}}");
        *health = (out, Some(Reading { at: now, counts }));
        drop(health);
        let _ = self.tx.send(Utf8Bytes::from(msg));
    }

    /// `GET /api/pipeline`: the last health reading.
    pub(crate) fn health(&self) -> String {
        self.health.lock().expect("health lock").0.clone() + "\n"
    }
}

/// Feeds one output of the dashboard. Rows are encoded as they arrive and published at each
/// tick (about every 100 ms) and at flush, so a page gets at most ten updates a second per
/// output however fast windows close.
pub struct BoardSink {
    board: Arc<Board>,
    name: String,
    /// The `window_end` column, if any.
    end: Option<usize>,
    pending: Vec<Row>,
    text: String,
}

impl BoardSink {
    fn publish(&mut self) {
        self.board
            .publish(&self.name, std::mem::take(&mut self.pending));
    }
}

impl Sink for BoardSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.text.clear();
        weir_sink::encode::json_lines(batch, 0..batch.num_rows(), &mut self.text);
        let ends = self
            .end
            .map(|i| batch.column(i).as_primitive::<TimestampMillisecondType>());
        for (i, line) in self.text.lines().enumerate() {
            let end = ends.and_then(|e| e.is_valid(i).then(|| e.value(i)));
            self.pending.push(Row {
                end,
                json: line.into(),
            });
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.publish();
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.publish();
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(format!("shown on the dashboard as {}", self.name))
    }
}
