//! The pipeline file: parse (TOML, `--set` overrides), validate (every error with its key
//! path), plan (schemas, operators, projections) and build (open sources, create sinks).
//!
//! ```toml
//! [source.logs]                      # sources: where records come from
//! type = "file"
//! path = "examples/data/nasa_jul95_sample.log"
//! format = { type = "clf", malformed_status = 999 }
//! event_time = { field = "timestamp", max_out_of_orderness = "30s" }
//!
//! [stage.status_counts]              # stages: what is computed
//! type = "aggregate"
//! input = "logs"
//! time_field = "timestamp"
//! window = { type = "tumbling", size = "5m" }
//! group_by = ["status"]
//! aggregates = [{ fn = "count" }]
//!
//! [sink.console]                     # sinks: where results go
//! type = "stdout"
//! input = "status_counts"
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_schema::SchemaRef;
use serde::de::DeserializeOwned;
use weir_core::config::ByteSize;
use weir_core::watermark::EventTimeConfig;
use weir_core::{deadletter, Error, Operator, Parser, Port, Sink, Source};
use weir_format::FormatConfig;
use weir_http::{Server, ServerConfig};
use weir_runtime::{Pipeline, SinkSpec, SourceSpec, StageSpec};

use crate::registry::{Ctor, SinkKind, SourceKind, StageKind, SINKS, SOURCES, STAGES};

/// A reference to a node's output: `logs`, `logs.errors`, `counts.late`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    /// Producer node.
    pub node: String,
    /// Its port.
    pub port: Port,
}

impl InputRef {
    /// `logs`, `logs.errors`, `counts.late`.
    fn parse(s: &str) -> Result<InputRef, String> {
        let (node, suffix) = s.split_once('.').unwrap_or((s, ""));
        match Port::from_suffix(suffix) {
            Some(port) => Ok(InputRef {
                node: node.to_string(),
                port,
            }),
            None => Err(format!(
                "{s:?}: a node has outputs NAME, NAME.errors and NAME.late, not .{suffix}"
            )),
        }
    }
}

impl std::fmt::Display for InputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Port::Main => write!(f, "{}", self.node),
            p => write!(f, "{}.{}", self.node, p.suffix()),
        }
    }
}

/// A declared source.
pub struct SourceDecl {
    /// Name.
    pub name: String,
    /// Connector config.
    pub kind: SourceKind,
    /// Line format.
    pub format: FormatConfig,
    /// Event time, if any.
    pub event_time: Option<EventTimeConfig>,
    /// Longest line accepted.
    pub max_line: ByteSize,
    /// Lines per second at most (0: unlimited).
    pub rate: u64,
    /// Field that keeps each record's original line, if any.
    pub raw_field: Option<String>,
}

/// A declared stage.
pub struct StageDecl {
    /// Name.
    pub name: String,
    /// Inputs.
    pub inputs: Vec<InputRef>,
    /// What it does.
    pub kind: StageKind,
}

/// A declared sink.
pub struct SinkDecl {
    /// Name.
    pub name: String,
    /// Inputs.
    pub inputs: Vec<InputRef>,
    /// Connector config.
    pub kind: SinkKind,
    /// Longest time written rows may wait before the sink makes them visible, even under
    /// steady input.
    pub flush_interval: weir_core::config::Duration,
}

/// A parsed pipeline file.
pub struct PipelineFile {
    /// Sources in file order.
    pub sources: Vec<SourceDecl>,
    /// Stages in file order.
    pub stages: Vec<StageDecl>,
    /// Sinks in file order.
    pub sinks: Vec<SinkDecl>,
    /// A digest of each node's section, by node name: a checkpoint taken by a pipeline whose
    /// digests differ is not resumed.
    pub fingerprints: std::collections::BTreeMap<String, String>,
    /// `[server]`, if the file has it.
    pub server: Option<ServerConfig>,
}

/// Keys that may change between runs without making a checkpoint unusable.
const FINGERPRINT_FREE: &[&str] = &["rate"];

/// A stable digest of a section (keys sorted; 64-bit FNV-1a of its canonical text).
fn fingerprint(t: &toml::Table) -> String {
    fn canon(v: &toml::Value, out: &mut String) {
        match v {
            toml::Value::Table(t) => {
                let mut keys: Vec<&String> = t.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&format!("{k:?}="));
                    canon(&t[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            toml::Value::Array(a) => {
                out.push('[');
                for x in a {
                    canon(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut t = t.clone();
    for k in FINGERPRINT_FREE {
        t.remove(*k);
    }
    let mut text = String::new();
    canon(&toml::Value::Table(t), &mut text);
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Deserialises `v` into `T`, reporting the full key path below `path` on failure.
pub fn de<T: DeserializeOwned>(v: toml::Value, path: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let full = if inner == "." || inner.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        let inner = e.into_inner();
        let msg = inner.message().trim_end().to_string();
        Error::config(full, msg)
    })
}

/// Applies `key.path=value` overrides; the value is read as TOML, or as a string if it is not
/// valid TOML (so `--set source.logs.path=/var/log/x.log` needs no quotes).
pub fn apply_set(doc: &mut toml::Table, set: &str) -> Result<(), Error> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| Error::config("--set", format!("expected key.path=value, got {set:?}")))?;
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            table.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        table = entry.as_table_mut().ok_or_else(|| {
            Error::config(
                parts[..=i].join("."),
                format!("--set {key}: this key is not a table"),
            )
        })?;
    }
    Err(Error::config("--set", "empty key"))
}

fn take_inputs(t: &mut toml::Table, path: &str, errors: &mut Vec<Error>) -> Vec<InputRef> {
    let raw: Vec<String> = match t.remove("input") {
        None => {
            errors.push(Error::config(
                format!("{path}.input"),
                "missing: name the source or stage to read, e.g. input = \"logs\"",
            ));
            return Vec::new();
        }
        Some(toml::Value::String(s)) => vec![s],
        Some(toml::Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| match v {
                toml::Value::String(s) => Some(s),
                other => {
                    errors.push(Error::config(
                        format!("{path}.input"),
                        format!("expected names, got {other}"),
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errors.push(Error::config(
                format!("{path}.input"),
                format!("expected a name or a list of names, got {other}"),
            ));
            return Vec::new();
        }
    };
    raw.into_iter()
        .filter_map(|s| {
            InputRef::parse(&s)
                .map_err(|e| errors.push(Error::config(format!("{path}.input"), e)))
                .ok()
        })
        .collect()
}

fn take_type(
    t: &mut toml::Table,
    path: &str,
    known: &[&str],
    errors: &mut Vec<Error>,
) -> Option<String> {
    match t.remove("type") {
        Some(toml::Value::String(s)) if known.contains(&s.as_str()) => Some(s),
        Some(toml::Value::String(s)) => {
            errors.push(Error::config(
                format!("{path}.type"),
                format!("unknown type {s:?}; expected one of {}", known.join(", ")),
            ));
            None
        }
        _ => {
            errors.push(Error::config(
                format!("{path}.type"),
                format!("missing; expected one of {}", known.join(", ")),
            ));
            None
        }
    }
}

/// Takes `type` from a section and builds its kind from the rest with the registry entry of
/// that name; reports problems to `errors`.
fn kind_of<K>(
    mut t: toml::Table,
    path: &str,
    registry: &[(&str, Ctor<K>)],
    errors: &mut Vec<Error>,
) -> Option<K> {
    let names: Vec<&str> = registry.iter().map(|(n, _)| *n).collect();
    let ty = take_type(&mut t, path, &names, errors)?;
    let ctor = registry.iter().find(|(n, _)| *n == ty).map(|(_, c)| c)?;
    ctor(toml::Value::Table(t), path)
        .map_err(|e| errors.push(e))
        .ok()
}

fn sections(
    doc: &mut toml::Table,
    key: &str,
    errors: &mut Vec<Error>,
) -> Vec<(String, toml::Table)> {
    match doc.remove(key) {
        None => Vec::new(),
        Some(toml::Value::Table(t)) => t
            .into_iter()
            .filter_map(|(name, v)| match v {
                toml::Value::Table(t) => Some((name, t)),
                _ => {
                    errors.push(Error::config(
                        format!("{key}.{name}"),
                        format!("expected a table [{key}.{name}]"),
                    ));
                    None
                }
            })
            .collect(),
        Some(_) => {
            errors.push(Error::config(
                key,
                format!("expected tables like [{key}.NAME]"),
            ));
            Vec::new()
        }
    }
}

/// Reads and validates a pipeline file. Returns every error found, each with its key path.
pub fn load(path: &Path, sets: &[String]) -> Result<PipelineFile, Vec<Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Error::io(format!("reading {}", path.display()), e)])?;
    parse(&text, sets).map_err(|errs| {
        errs.into_iter()
            .map(|e| match e {
                Error::Config { path: p, message } if p.is_empty() => {
                    Error::config(path.display().to_string(), message)
                }
                other => other,
            })
            .collect()
    })
}

/// Parses and validates pipeline TOML text.
pub fn parse(text: &str, sets: &[String]) -> Result<PipelineFile, Vec<Error>> {
    let mut doc: toml::Table = toml::from_str(text)
        .map_err(|e| vec![Error::config("", e.to_string().trim_end().to_string())])?;
    let mut errors = Vec::new();
    for s in sets {
        if let Err(e) = apply_set(&mut doc, s) {
            errors.push(e);
        }
    }
    let server = doc.remove("server").and_then(|v| {
        let cfg = de::<ServerConfig>(v, "server")
            .map_err(|e| errors.push(e))
            .ok()?;
        let problems = cfg.validate("server");
        let ok = problems.is_empty();
        errors.extend(problems);
        ok.then_some(cfg)
    });
    let source_sections = sections(&mut doc, "source", &mut errors);
    let stage_sections = sections(&mut doc, "stage", &mut errors);
    let sink_sections = sections(&mut doc, "sink", &mut errors);
    let mut file = PipelineFile {
        sources: Vec::new(),
        stages: Vec::new(),
        sinks: Vec::new(),
        fingerprints: source_sections
            .iter()
            .chain(&stage_sections)
            .chain(&sink_sections)
            .map(|(n, t)| (n.clone(), fingerprint(t)))
            .collect(),
        server,
    };
    // Names declared, even by sections with errors, so an input naming them is not reported
    // as unknown on top of their own errors.
    let declared: Vec<String> = source_sections
        .iter()
        .chain(&stage_sections)
        .map(|(n, _)| n.clone())
        .collect();
    if source_sections.is_empty() {
        errors.push(Error::config(
            "source",
            "a pipeline needs at least one [source.NAME]",
        ));
    }
    let shows = file
        .server
        .as_ref()
        .is_some_and(|c| !c.dashboard.is_empty());
    if sink_sections.is_empty() && !shows {
        errors.push(Error::config(
            "sink",
            "a pipeline needs at least one [sink.NAME] (or outputs in [server] dashboard); \
             try type = \"stdout\"",
        ));
    }
    for (name, mut t) in source_sections {
        let path = format!("source.{name}");
        let format = match t.remove("format") {
            Some(v) => de::<FormatConfig>(v, &format!("{path}.format"))
                .map_err(|e| errors.push(e))
                .ok(),
            None => {
                errors.push(Error::config(
                    format!("{path}.format"),
                    "missing; e.g. format = { type = \"clf\" }",
                ));
                None
            }
        };
        // A format with problems has no field list to check the event time against.
        let format = format.filter(|f| {
            let problems = f.validate(&format!("{path}.format"));
            let ok = problems.is_empty();
            errors.extend(problems);
            ok
        });
        let event_time = t.remove("event_time").and_then(|v| {
            de::<EventTimeConfig>(v, &format!("{path}.event_time"))
                .map_err(|e| errors.push(e))
                .ok()
        });
        if let (Some(et), Some(f)) = (&event_time, &format) {
            if !f.field_names().contains(&et.field) {
                errors.push(Error::config(
                    format!("{path}.event_time.field"),
                    format!(
                        "the format has no field {:?}; it has {}",
                        et.field,
                        f.field_names().join(", ")
                    ),
                ));
            }
        }
        let max_line = match t.remove("max_line") {
            Some(v) => de::<ByteSize>(v, &format!("{path}.max_line"))
                .map_err(|e| errors.push(e))
                .unwrap_or(ByteSize::from_bytes(0)),
            None => ByteSize::from_bytes(weir_runtime::DEFAULT_MAX_LINE as u64),
        };
        // A generator paces itself (its rate also spaces its event times); other sources are
        // paced by the source node.
        let is_generator = t.get("type").and_then(|v| v.as_str()) == Some("generator");
        let rate = match (!is_generator).then(|| t.remove("rate")).flatten() {
            Some(v) => de::<u64>(v, &format!("{path}.rate"))
                .map_err(|e| errors.push(e))
                .unwrap_or(0),
            None => 0,
        };
        let raw_field = t.remove("raw_field").and_then(|v| {
            de::<String>(v, &format!("{path}.raw_field"))
                .map_err(|e| errors.push(e))
                .ok()
        });
        if let (Some(raw), Some(f)) = (&raw_field, &format) {
            let problem = if raw.is_empty() {
                Some("expected a field name, got \"\"".to_string())
            } else if f.field_names().contains(raw) {
                Some(format!(
                    "{raw:?} is a field of the format already; choose another name"
                ))
            } else {
                None
            };
            errors.extend(problem.map(|p| Error::config(format!("{path}.raw_field"), p)));
        }
        let kind = kind_of(t, &path, SOURCES, &mut errors);
        if let Some(k) = &kind {
            errors.extend(k.validate(&path));
            if k.takes_json() && !matches!(format, None | Some(FormatConfig::Json(_))) {
                errors.push(Error::config(
                    format!("{path}.format"),
                    "this source receives JSON records: use format = { type = \"json\", fields = [...] }",
                ));
            }
            for (key, field) in k.metadata_fields() {
                // A format with problems was reported already.
                let problem = match &format {
                    None => None,
                    Some(f @ FormatConfig::Json(_)) => (!f.field_names().iter().any(|n| n == field))
                        .then(|| {
                            format!(
                                "declare {field:?} in format.fields, e.g. {{ name = {field:?}, type = \"string\" }}"
                            )
                        }),
                    Some(_) => Some("only a json format can carry it".to_string()),
                };
                errors.extend(problem.map(|p| Error::config(format!("{path}.{key}"), p)));
            }
        }
        if let (Some(kind), Some(format)) = (kind, format) {
            file.sources.push(SourceDecl {
                name,
                kind,
                format,
                event_time,
                max_line,
                rate,
                raw_field,
            });
        }
    }
    for (name, mut t) in stage_sections {
        let path = format!("stage.{name}");
        let inputs = take_inputs(&mut t, &path, &mut errors);
        let kind = kind_of(t, &path, STAGES, &mut errors);
        if let Some(kind) = kind {
            errors.extend(kind.validate(&path));
            file.stages.push(StageDecl { name, inputs, kind });
        }
    }
    for (name, mut t) in sink_sections {
        let path = format!("sink.{name}");
        let inputs = take_inputs(&mut t, &path, &mut errors);
        // The archive has its own flush_interval (how often the open file gets whole gzip
        // members, 5 s by default); the key means the same there, so it reads it too.
        let own_flush = t.get("type").and_then(|v| v.as_str()) == Some("archive");
        let flush = if own_flush {
            t.get("flush_interval").cloned()
        } else {
            t.remove("flush_interval")
        };
        let key = format!("{path}.flush_interval");
        let flush_interval = match flush.map(|v| de::<weir_core::config::Duration>(v, &key)) {
            None => weir_runtime::DEFAULT_FLUSH_INTERVAL,
            Some(Ok(d)) if d.ms > 0 => d,
            Some(Ok(d)) => {
                errors.push(Error::config(
                    key,
                    format!("expected a duration above 0, got \"{d}\""),
                ));
                weir_runtime::DEFAULT_FLUSH_INTERVAL
            }
            Some(Err(e)) => {
                errors.push(e);
                weir_runtime::DEFAULT_FLUSH_INTERVAL
            }
        };
        let kind = kind_of(t, &path, SINKS, &mut errors);
        if let Some(kind) = kind {
            errors.extend(kind.validate(&path));
            file.sinks.push(SinkDecl {
                name,
                inputs,
                kind,
                flush_interval,
            });
        }
    }
    for key in doc.keys() {
        errors.push(Error::config(
            key.clone(),
            "unknown section; expected [source.NAME], [stage.NAME], [sink.NAME] or [server]",
        ));
    }
    check_graph(&file, &declared, &mut errors);
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

fn check_graph(file: &PipelineFile, declared: &[String], errors: &mut Vec<Error>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let all = file
        .sources
        .iter()
        .map(|s| ("source", &s.name))
        .chain(file.stages.iter().map(|s| ("stage", &s.name)))
        .chain(file.sinks.iter().map(|s| ("sink", &s.name)));
    for (kind, name) in all {
        if let Some(other) = seen.insert(name, kind) {
            errors.push(Error::config(
                format!("{kind}.{name}"),
                format!("the name is also used by [{other}.{name}]; names must be unique"),
            ));
        }
        if name.contains('.') || name.is_empty() {
            errors.push(Error::config(
                format!("{kind}.{name}"),
                "a name must be non-empty and contain no '.'",
            ));
        }
    }
    let producers: HashSet<&str> = declared.iter().map(String::as_str).collect();
    let consumers = file
        .stages
        .iter()
        .map(|s| ("stage", &s.name, &s.inputs))
        .chain(file.sinks.iter().map(|s| ("sink", &s.name, &s.inputs)));
    for (kind, name, inputs) in consumers {
        for i in inputs {
            if !producers.contains(i.node.as_str()) {
                let mut names: Vec<&str> = producers.iter().copied().collect();
                names.sort();
                errors.push(Error::config(
                    format!("{kind}.{name}.input"),
                    format!(
                        "no source or stage named {:?}; there are: {}",
                        i.node,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
}

/// A source with its parser and the fields that parser produces (`None`: all).
type BuiltSource = (SourceDecl, Box<dyn Parser>, Option<Vec<String>>);

/// A validated pipeline with schemas and operators built, nothing opened yet.
pub struct Plan {
    sources: Vec<BuiltSource>,
    /// Stages with their operator and input schema (to build more instances of it).
    stages: Vec<(StageDecl, Box<dyn Operator>, SchemaRef)>,
    sinks: Vec<SinkDecl>,
    /// Schema of every node's main output.
    pub schemas: HashMap<String, SchemaRef>,
    /// Digest of every node's configuration (see [`PipelineFile::fingerprints`]).
    pub fingerprints: std::collections::BTreeMap<String, String>,
    /// `[server]`, or its defaults when only a source needs the server.
    server_config: Option<ServerConfig>,
    /// The server, once started.
    server: Option<std::sync::Arc<Server>>,
    /// Outputs the dashboard shows, with what they read and its schema.
    dashboard: Vec<(weir_http::DashboardOutput, InputRef, SchemaRef)>,
}

/// Fields of `node`'s main output that its consumers read (`None`: all of them). A stage
/// that passes records through (filter, union) needs what it reads itself plus what its own
/// consumers need. `depth` stops a cycle, which planning reports.
fn needed(file: &PipelineFile, node: &str, depth: usize) -> Option<Vec<String>> {
    if depth > file.stages.len() {
        return None;
    }
    let reads = |inputs: &[InputRef]| {
        inputs
            .iter()
            .any(|i| i.node == node && i.port == Port::Main)
    };
    // The dashboard shows every column of a node's main output it shows.
    if file
        .server
        .as_ref()
        .is_some_and(|c| c.dashboard.iter().any(|d| d.output().output == node))
    {
        return None;
    }
    let mut need = Vec::new();
    for s in file.sinks.iter().filter(|s| reads(&s.inputs)) {
        need.extend(s.kind.required_fields()?);
    }
    for st in file.stages.iter().filter(|s| reads(&s.inputs)) {
        need.extend(st.kind.required_fields()?);
        if st.kind.passes_records_through() {
            need.extend(needed(file, &st.name, depth + 1)?);
        }
    }
    Some(need)
}

/// Fields the parser of `source` must produce (`None`: all of them).
fn projection(file: &PipelineFile, source: &SourceDecl) -> Option<Vec<String>> {
    let mut need = needed(file, &source.name, 0)?;
    need.extend(source.event_time.iter().map(|e| e.field.clone()));
    // Fields the format lacks are left out here so the stage reports them, with its path.
    let mut known = source.format.field_names();
    known.extend(source.raw_field.clone());
    need.retain(|f| known.contains(f));
    need.sort();
    need.dedup();
    Some(need)
}

impl Plan {
    /// Builds parsers and operators and checks every schema; returns every error found.
    pub fn new(file: PipelineFile) -> Result<Plan, Vec<Error>> {
        let mut errors = Vec::new();
        let mut schemas: HashMap<String, SchemaRef> = HashMap::new();
        let mut port_schema: HashMap<(String, Port), SchemaRef> = HashMap::new();
        let projections: Vec<Option<Vec<String>>> =
            file.sources.iter().map(|s| projection(&file, s)).collect();
        let PipelineFile {
            sources,
            stages,
            sinks,
            fingerprints,
            server,
        } = file;
        let server_config = match sources.iter().any(|s| s.kind.serves()) {
            true => Some(server.unwrap_or_default()),
            false => server,
        };
        let mut built_sources = Vec::new();
        for (decl, proj) in sources.into_iter().zip(projections) {
            match weir_format::build_source_parser(
                &decl.format,
                decl.raw_field.as_deref(),
                proj.as_deref(),
            ) {
                Ok(p) => {
                    schemas.insert(decl.name.clone(), p.schema());
                    port_schema.insert((decl.name.clone(), Port::Main), p.schema());
                    port_schema.insert((decl.name.clone(), Port::Errors), deadletter::schema());
                    built_sources.push((decl, p, proj));
                }
                Err(e) => errors.push(Error::config(
                    format!("source.{}.format", decl.name),
                    e.to_string(),
                )),
            }
        }
        // Stages in dependency order: build each once all its inputs have schemas.
        let mut pending: Vec<StageDecl> = stages;
        let mut built_stages = Vec::new();
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for decl in pending {
                let ins: Option<Vec<SchemaRef>> = decl
                    .inputs
                    .iter()
                    .map(|i| port_schema.get(&(i.node.clone(), i.port)).cloned())
                    .collect();
                let Some(ins) = ins else {
                    rest.push(decl);
                    continue;
                };
                let path = format!("stage.{}", decl.name);
                let Some(first) = ins.first().cloned() else {
                    errors.push(Error::config(
                        format!("{path}.input"),
                        "expected at least one input",
                    ));
                    continue;
                };
                if let Some((i, _)) = ins
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.fields() != first.fields())
                {
                    errors.push(Error::config(
                        format!("{path}.input"),
                        format!(
                            "inputs {} and {} have different schemas; a stage's inputs must match",
                            decl.inputs[0], decl.inputs[i]
                        ),
                    ));
                    continue;
                }
                match crate::registry::build_stage(decl.kind.as_ref(), first.clone(), &path) {
                    Ok(op) => {
                        let out = op.output_schema();
                        schemas.insert(decl.name.clone(), out.clone());
                        port_schema.insert((decl.name.clone(), Port::Main), out);
                        port_schema.insert((decl.name.clone(), Port::Late), first.clone());
                        port_schema.insert((decl.name.clone(), Port::Errors), deadletter::schema());
                        for (port, schema) in op.extra_ports() {
                            port_schema.insert((decl.name.clone(), port), schema);
                        }
                        built_stages.push((decl, op, first));
                    }
                    Err(errs) => errors.extend(errs),
                }
            }
            if rest.is_empty() || rest.len() == before {
                for d in &rest {
                    let known = d.inputs.iter().all(|i| {
                        port_schema.contains_key(&(i.node.clone(), Port::Main))
                            || !port_schema.keys().any(|(n, _)| n == &i.node)
                    });
                    let why = if known {
                        "its inputs form a cycle or failed to build"
                    } else {
                        "an input failed to build"
                    };
                    errors.push(Error::config(
                        format!("stage.{}.input", d.name),
                        why.to_string(),
                    ));
                }
                break;
            }
            pending = rest;
        }
        for s in &sinks {
            // Sinks that need particular columns check them now, with the key path.
            if let [i] = s.inputs.as_slice() {
                if let Some(schema) = port_schema.get(&(i.node.clone(), i.port)) {
                    errors.extend(s.kind.check_schema(&format!("sink.{}", s.name), schema));
                }
            }
            for i in &s.inputs {
                if !port_schema.contains_key(&(i.node.clone(), i.port))
                    && port_schema.keys().any(|(n, _)| n == &i.node)
                {
                    errors.push(Error::config(
                        format!("sink.{}.input", s.name),
                        format!("{} has no {} output", i.node, i.port.suffix()),
                    ));
                }
            }
        }
        let mut dashboard = Vec::new();
        for (i, entry) in server_config
            .iter()
            .flat_map(|c| c.dashboard.iter())
            .enumerate()
        {
            let d = entry.output();
            let path = format!("server.dashboard[{i}]");
            let r = match InputRef::parse(&d.output) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(Error::config(&path, e));
                    continue;
                }
            };
            match port_schema.get(&(r.node.clone(), r.port)) {
                Some(schema) => dashboard.push((d, r, schema.clone())),
                None if port_schema.keys().any(|(n, _)| n == &r.node) => {
                    errors.push(Error::config(
                        &path,
                        format!("{} has no {} output", r.node, r.port.suffix()),
                    ))
                }
                None => errors.push(Error::config(
                    &path,
                    format!(
                        "no source or stage named {:?}; the dashboard shows a node's output",
                        r.node
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Plan {
                sources: built_sources,
                stages: built_stages,
                sinks,
                schemas,
                fingerprints,
                server_config,
                server: None,
                dashboard,
            })
        } else {
            Err(errors)
        }
    }

    /// Opens sources and creates sinks. With `workers` above 1, a source whose parser takes
    /// chunks independently (and that is not paced by `rate`) parses on that many threads, and
    /// a keyed stage (one whose operator has a partitioner) runs as that many instances, and a
    /// stateless stage reading such a source runs beside its parser threads.
    pub fn build(mut self, workers: usize) -> Result<Pipeline, Error> {
        let mut p = Pipeline::default();
        let server = self.serve()?;
        for (decl, parser, proj) in self.sources {
            let cx = crate::registry::OpenContext {
                server: server.as_ref(),
            };
            let source: Box<dyn Source> = decl.kind.open(&cx)?;
            let parallel = if workers > 1 && decl.rate == 0 && parser.chunks_independent() {
                (0..workers)
                    .map(|_| {
                        weir_format::build_source_parser(
                            &decl.format,
                            decl.raw_field.as_deref(),
                            proj.as_deref(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            p.sources.push(SourceSpec {
                name: decl.name,
                source,
                parser,
                parallel,
                event_time: decl.event_time,
                max_line: decl.max_line.bytes as usize,
                rate: decl.rate,
            });
        }
        for (decl, op, input) in self.stages {
            let path = format!("stage.{}", decl.name);
            let copies = |n: usize| {
                (0..n)
                    .map(|_| crate::registry::build_stage(decl.kind.as_ref(), input.clone(), &path))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|errs| Error::Internal(format!("building {path} again: {errs:?}")))
            };
            // A keyed stage runs as `workers` instances, each owning a share of the keys; a
            // stateless one gets a copy per parser thread, to run beside them when it reads a
            // source that parses on `workers` threads (the runtime decides).
            let parallel = match workers > 1 && op.partitioner().is_some() {
                true => copies(workers - 1)?,
                false => Vec::new(),
            };
            let beside = match workers > 1 && op.stateless() {
                true => copies(workers)?,
                false => Vec::new(),
            };
            p.stages.push(StageSpec {
                name: decl.name,
                op,
                inputs: decl.inputs.into_iter().map(|i| (i.node, i.port)).collect(),
                parallel,
                beside,
            });
        }
        for decl in self.sinks {
            let sink: Box<dyn Sink> = decl.kind.create()?;
            p.sinks.push(SinkSpec {
                name: decl.name,
                sink,
                inputs: decl.inputs.into_iter().map(|i| (i.node, i.port)).collect(),
                flush_interval: decl.flush_interval.to_std(),
            });
        }
        if let Some(server) = &server {
            for (d, input, schema) in self.dashboard {
                let sink = server.board().add(&d, &schema)?;
                p.sinks.push(SinkSpec {
                    name: format!("dashboard:{}", d.output),
                    sink: Box::new(sink),
                    inputs: vec![(input.node, input.port)],
                    flush_interval: std::time::Duration::from_millis(250),
                });
            }
        }
        Ok(p)
    }

    /// Starts the web server if the pipeline has `[server]` or a source that needs one (once;
    /// [`Plan::build`] calls it too): call it first to learn its address.
    pub fn serve(&mut self) -> Result<Option<std::sync::Arc<Server>>, Error> {
        if self.server.is_none() {
            if let Some(cfg) = &self.server_config {
                self.server = Some(Server::start(cfg)?);
            }
        }
        Ok(self.server.clone())
    }

    /// Whether a sink writes to standard output.
    pub fn writes_stdout(&self) -> bool {
        self.sinks.iter().any(|s| s.kind.is_stdout())
    }

    /// Problems found without running: input files that do not exist, and output paths a
    /// run would destroy or could not write (see [`output_problems`]).
    pub fn preflight(&self) -> Vec<Error> {
        let mut errors: Vec<Error> = self
            .sources
            .iter()
            .filter_map(|(d, _, _)| d.kind.preflight(&format!("source.{}", d.name)))
            .collect();
        let inputs: Vec<(String, &Path)> = self
            .sources
            .iter()
            .filter_map(|(d, _, _)| Some((format!("source.{}.path", d.name), d.kind.input_path()?)))
            .collect();
        let outputs: Vec<(String, crate::registry::Output<'_>)> = self
            .sinks
            .iter()
            .flat_map(|d| {
                d.kind
                    .outputs()
                    .into_iter()
                    .map(move |o| (format!("sink.{}.{}", d.name, o.key), o))
            })
            .collect();
        errors.extend(output_problems(&inputs, &outputs));
        errors
    }
}

/// What would make a run lose data through its outputs: an output that is an input (it would
/// be truncated while read, or grow while read), two outputs on one path or one inside the
/// other (they overwrite or mix), an existing file or folder weir did not create where the
/// sink replaces its output, and a path that cannot be created.
fn output_problems(
    inputs: &[(String, &Path)],
    outputs: &[(String, crate::registry::Output<'_>)],
) -> Vec<Error> {
    use weir_sink::owned::{self, OutputKind};
    let norm_in: Vec<_> = inputs.iter().map(|(_, p)| owned::normalize(p)).collect();
    let norm_out: Vec<_> = outputs
        .iter()
        .map(|(_, o)| owned::normalize(o.path))
        .collect();
    let mut errors = Vec::new();
    let special: Vec<bool> = outputs
        .iter()
        .map(|(_, o)| owned::is_special(o.path))
        .collect();
    for (i, (key, o)) in outputs.iter().enumerate() {
        // A device or a pipe (`/dev/null`) may take any number of writers.
        if special[i] {
            continue;
        }
        let at = &norm_out[i];
        let covers = |other: &Path| {
            other == at.as_path() || (o.kind == OutputKind::Folder && other.starts_with(at))
        };
        if let Some(j) = norm_in.iter().position(|p| covers(p)) {
            errors.push(Error::config(
                key.clone(),
                format!(
                    "{} is the input of {} ({}); a sink must not write what a source reads",
                    o.path.display(),
                    inputs[j].0.trim_end_matches(".path"),
                    inputs[j].1.display()
                ),
            ));
            continue;
        }
        let clash = outputs.iter().enumerate().find(|(j, (_, other))| {
            let p = &norm_out[*j];
            *j != i
                && !special[*j]
                && (p == at
                    || (o.kind == OutputKind::Folder && p.starts_with(at))
                    || (other.kind == OutputKind::Folder && at.starts_with(p)))
        });
        if let Some((j, (other_key, _))) = clash {
            // Reported once, at the later of the two.
            if j < i {
                errors.push(Error::config(
                    key.clone(),
                    format!(
                        "{} overlaps the output of {other_key} ({}); two sinks would overwrite \
                         or mix each other's files",
                        o.path.display(),
                        outputs[j].1.path.display()
                    ),
                ));
            }
            continue;
        }
        let problem = match (o.kind, o.replaces) {
            (OutputKind::File, true) => owned::file_problem(o.path),
            (OutputKind::Folder, true) => {
                owned::table_problem(o.path, weir_sink::parquet::TABLE_META)
            }
            (OutputKind::File, false) => std::fs::metadata(o.path)
                .ok()
                .filter(|m| m.is_dir())
                .map(|_| format!("{} is a directory; expected a file path", o.path.display())),
            (OutputKind::Folder, false) => std::fs::metadata(o.path)
                .ok()
                .filter(|m| !m.is_dir())
                .map(|_| format!("{} exists and is not a directory", o.path.display())),
        };
        if let Some(p) = problem.or_else(|| owned::unwritable(o.path)) {
            errors.push(Error::config(key.clone(), p));
        }
    }
    errors
}

#[cfg(test)]
mod tests;
