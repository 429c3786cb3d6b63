//! The registry of connectors and stages. Each type is its config struct implementing one
//! trait ([`SourceType`], [`StageType`], [`SinkType`]): its checks, the fields it reads, the
//! paths it writes and how it builds. The lists [`SOURCES`], [`STAGES`] and [`SINKS`] name
//! them, one line per type; connectors behind a cargo feature are listed only with it.

use std::any::Any;
use std::path::Path;

use arrow_schema::SchemaRef;
use serde::de::DeserializeOwned;
use weir_core::{Error, Operator, Sink, Source};
use weir_http::ingest::{HttpSource, HttpSourceConfig};
use weir_operator::alert::{Alert, AlertConfig};
use weir_operator::anomaly::{Anomaly, AnomalyConfig};
use weir_operator::condition::{Condition, ConditionConfig};
use weir_operator::dedup::{Dedup, DedupConfig};
use weir_operator::enrich::{Enrich, EnrichConfig};
use weir_operator::filter::{Filter, FilterConfig};
use weir_sink::archive::ArchiveConfig;
use weir_sink::csv::{CsvConfig as CsvSinkConfig, CsvSink};
use weir_sink::jsonl::{JsonlConfig, JsonlSink};
use weir_sink::owned::OutputKind::{File, Folder};
use weir_sink::parquet::{ParquetConfig, ParquetSink};
use weir_sink::postgres::{PostgresConfig, PostgresSink};
use weir_sink::stdout::{StdoutConfig, StdoutSink};
use weir_sink::webhook::{WebhookConfig, WebhookSink};
use weir_source::file::{FileConfig, FileSource};
use weir_source::gen::{GenConfig, GenSource};
use weir_source::stdin::{StdinConfig, StdinSource};
use weir_source::tail::{TailConfig, TailSource};
use weir_window::{Aggregate, AggregateConfig, TopK, TopKConfig};

use crate::config::de;

/// A constructor from the rest of a `[source|stage|sink.NAME]` table and its key path.
pub type Ctor<T> = fn(toml::Value, &str) -> Result<T, Error>;

/// The config behind a registry entry, for callers that need its concrete type (tests).
/// Call it on the trait object (`kind.as_ref().as_any()`): on the `Box` it would give the box.
pub trait AsAny {
    /// The config itself.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A source connector type: its config, its checks, and how it opens.
pub trait SourceType: AsAny + Send + Sync + 'static {
    /// Fills defaults that depend on the node's key path (`source.events`), such as the name
    /// of a broker-side consumer.
    fn named(&mut self, _key_path: &str) {}

    /// Checks the config alone; errors carry key paths below `path`. Required, so that a new
    /// type says whether serde's checks are all it needs.
    fn validate(&self, path: &str) -> Vec<Error>;

    /// Fields the source adds to each record (a message's topic or subject), with their
    /// config keys: only a JSON format can carry them, and it must declare them.
    fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    /// The file the source reads, if it reads one (no sink may write it).
    fn input_path(&self) -> Option<&Path> {
        None
    }

    /// A problem visible before running (a missing input file), with its key path.
    fn preflight(&self, _path: &str) -> Option<Error> {
        None
    }

    /// Whether the source needs the pipeline's web server (it is started for it).
    fn serves(&self) -> bool {
        false
    }

    /// Whether it delivers JSON records only (so the format must be json).
    fn takes_json(&self) -> bool {
        false
    }

    /// Opens the source.
    fn open(&self, cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error>;
}

/// What a source may need from the pipeline when it opens.
pub struct OpenContext<'a> {
    /// The pipeline's web server, when it runs one.
    pub server: Option<&'a std::sync::Arc<weir_http::Server>>,
}

/// A configured source connector.
pub type SourceKind = Box<dyn SourceType>;

fn source<C: SourceType + DeserializeOwned>(
    v: toml::Value,
    path: &str,
) -> Result<SourceKind, Error> {
    let mut c: C = de(v, path)?;
    c.named(path);
    Ok(Box::new(c))
}

/// Source types by name.
pub const SOURCES: &[(&str, Ctor<SourceKind>)] = &[
    ("file", source::<FileConfig>),
    ("tail", source::<TailConfig>),
    ("stdin", source::<StdinConfig>),
    ("generator", source::<GenConfig>),
    ("http", source::<HttpSourceConfig>),
    #[cfg(feature = "nats")]
    ("nats", source::<weir_nats::source::NatsSourceConfig>),
    #[cfg(feature = "mqtt")]
    ("mqtt", source::<weir_mqtt::source::MqttSourceConfig>),
];

impl SourceType for FileConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn input_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn preflight(&self, path: &str) -> Option<Error> {
        (!self.path.exists()).then(|| {
            Error::config(
                format!("{path}.path"),
                format!("{} does not exist", self.path.display()),
            )
        })
    }
    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(FileSource::open(self)?))
    }
}

/// A followed file may appear later (as with `tail -F`): no preflight.
impl SourceType for TailConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn input_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(TailSource::new(self)))
    }
}

impl SourceType for StdinConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(StdinSource::new(self)))
    }
}

impl SourceType for GenConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(GenSource::new(self)?))
    }
}

impl SourceType for HttpSourceConfig {
    fn named(&mut self, key_path: &str) {
        self.name_endpoint(key_path);
    }
    fn validate(&self, path: &str) -> Vec<Error> {
        HttpSourceConfig::validate(self, path)
    }
    fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        HttpSourceConfig::metadata_fields(self)
    }
    fn serves(&self) -> bool {
        true
    }
    fn takes_json(&self) -> bool {
        true
    }
    fn open(&self, cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        let server = cx
            .server
            .ok_or_else(|| Error::Internal("an http source opened without a server".into()))?;
        Ok(Box::new(HttpSource::new(self, server)?))
    }
}

#[cfg(feature = "nats")]
impl SourceType for weir_nats::source::NatsSourceConfig {
    fn named(&mut self, key_path: &str) {
        self.name_consumer(key_path);
    }
    fn validate(&self, path: &str) -> Vec<Error> {
        weir_nats::source::NatsSourceConfig::validate(self, path)
    }
    fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        weir_nats::source::NatsSourceConfig::metadata_fields(self)
    }
    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(weir_nats::source::NatsSource::new(self)))
    }
}

#[cfg(feature = "mqtt")]
impl SourceType for weir_mqtt::source::MqttSourceConfig {
    fn named(&mut self, key_path: &str) {
        self.name_client(key_path);
    }
    fn validate(&self, path: &str) -> Vec<Error> {
        weir_mqtt::source::MqttSourceConfig::validate(self, path)
    }
    fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        weir_mqtt::source::MqttSourceConfig::metadata_fields(self)
    }
    fn open(&self, _cx: &OpenContext<'_>) -> Result<Box<dyn Source>, Error> {
        Ok(Box::new(weir_mqtt::source::MqttSource::new(self)))
    }
}

/// A stage type: its config, its checks, the fields it reads, and how it builds.
pub trait StageType: AsAny + Send + Sync + 'static {
    /// Checks the config alone (required, as for sources).
    fn validate(&self, path: &str) -> Vec<Error>;

    /// Input fields the stage itself reads; `None`: all of them.
    fn required_fields(&self) -> Option<Vec<String>>;

    /// Whether the stage's output records are its input records (so its consumers' needs are
    /// its input's needs too).
    fn passes_records_through(&self) -> bool {
        false
    }

    /// Builds the operator for its input schema.
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>>;
}

/// A configured stage.
pub type StageKind = Box<dyn StageType>;

fn stage<C: StageType + DeserializeOwned>(v: toml::Value, path: &str) -> Result<StageKind, Error> {
    Ok(Box::new(de::<C>(v, path)?))
}

/// Stage types by name.
pub const STAGES: &[(&str, Ctor<StageKind>)] = &[
    ("aggregate", stage::<AggregateConfig>),
    ("top_k", stage::<TopKConfig>),
    ("filter", stage::<FilterConfig>),
    ("enrich", stage::<EnrichConfig>),
    ("dedup", stage::<DedupConfig>),
    ("anomaly", stage::<AnomalyConfig>),
    ("alert", stage::<AlertConfig>),
    ("condition", stage::<ConditionConfig>),
    ("union", stage::<UnionConfig>),
];

/// `type = "union"`: merges inputs of one schema; it has no options.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnionConfig {}

/// Builds a stage and keeps only the errors [`StageType::validate`] did not report already
/// (the schema ones).
pub fn build_stage(
    kind: &dyn StageType,
    input: SchemaRef,
    path: &str,
) -> Result<Box<dyn Operator>, Vec<Error>> {
    kind.build_op(input, path).map_err(|errs| {
        let own: Vec<String> = kind
            .validate(path)
            .iter()
            .map(ToString::to_string)
            .collect();
        errs.into_iter()
            .filter(|e| !own.contains(&e.to_string()))
            .collect()
    })
}

fn boxed<O: Operator + 'static>(
    op: Result<O, Vec<Error>>,
) -> Result<Box<dyn Operator>, Vec<Error>> {
    op.map(|op| Box::new(op) as _)
}

impl StageType for AggregateConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        AggregateConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(AggregateConfig::required_fields(self))
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Aggregate::new(self, input, path))
    }
}

impl StageType for TopKConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        TopKConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(TopKConfig::required_fields(self))
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(TopK::new(self, input, path))
    }
}

impl StageType for FilterConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        match weir_expr::Expr::parse(&self.condition) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Error::config(format!("{path}.where"), e.to_string())],
        }
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(FilterConfig::required_fields(self))
    }
    fn passes_records_through(&self) -> bool {
        true
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Filter::new(self, input, path))
    }
}

impl StageType for EnrichConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        EnrichConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(EnrichConfig::required_fields(self))
    }
    /// Its records are its input's with fields added: what its consumers read of the input
    /// (fields it defines are not the format's, and the projection leaves them out).
    fn passes_records_through(&self) -> bool {
        true
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Enrich::new(self, input, path))
    }
}

impl StageType for DedupConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        DedupConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(DedupConfig::required_fields(self))
    }
    fn passes_records_through(&self) -> bool {
        true
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Dedup::new(self, input, path))
    }
}

impl StageType for AnomalyConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        AnomalyConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        AnomalyConfig::required_fields(self)
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Anomaly::new(self, input, path))
    }
}

impl StageType for AlertConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        AlertConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(AlertConfig::required_fields(self))
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Alert::new(self, input, path))
    }
}

impl StageType for ConditionConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        ConditionConfig::validate(self, path)
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        Some(ConditionConfig::required_fields(self))
    }
    fn build_op(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        boxed(Condition::new(self, input, path))
    }
}

impl StageType for UnionConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn required_fields(&self) -> Option<Vec<String>> {
        Some(Vec::new())
    }
    fn passes_records_through(&self) -> bool {
        true
    }
    fn build_op(&self, input: SchemaRef, _path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        Ok(Box::new(weir_runtime::union::Union::new(input)))
    }
}

/// A path a sink writes.
pub struct Output<'a> {
    /// Its config key (`path`, `dead_letter`).
    pub key: &'static str,
    /// The path.
    pub path: &'a Path,
    /// A file or a folder of files.
    pub kind: weir_sink::owned::OutputKind,
    /// Whether a run may replace what is there (truncate a file, empty a table).
    pub replaces: bool,
}

fn out<'a>(
    key: &'static str,
    path: &'a Path,
    kind: weir_sink::owned::OutputKind,
    replaces: bool,
) -> Output<'a> {
    Output {
        key,
        path,
        kind,
        replaces,
    }
}

/// A sink type: its config, its checks, the paths it writes, and how it is created.
pub trait SinkType: AsAny + Send + Sync + 'static {
    /// Fills defaults that depend on the node's key path (`sink.alerts`), such as a client id.
    fn named(&mut self, _key_path: &str) {}

    /// Checks the config alone (required, as for sources).
    fn validate(&self, path: &str) -> Vec<Error>;

    /// The paths the sink writes, with their config key, and whether the sink may replace
    /// what is there (then it must be weir's own: see `weir_sink::owned`).
    fn outputs(&self) -> Vec<Output<'_>> {
        Vec::new()
    }

    /// Input fields the sink writes; `None` (the default): all of them.
    fn required_fields(&self) -> Option<Vec<String>> {
        None
    }

    /// Checks the config against the schema of the sink's input (by default any schema:
    /// rows are written as text).
    fn check_schema(&self, _path: &str, _schema: &arrow_schema::Schema) -> Vec<Error> {
        Vec::new()
    }

    /// Whether the sink writes to standard output (which then carries no progress display).
    fn is_stdout(&self) -> bool {
        false
    }

    /// Creates the sink.
    fn create(&self) -> Result<Box<dyn Sink>, Error>;
}

/// A configured sink.
pub type SinkKind = Box<dyn SinkType>;

fn sink<C: SinkType + DeserializeOwned>(v: toml::Value, path: &str) -> Result<SinkKind, Error> {
    let mut c: C = de(v, path)?;
    c.named(path);
    Ok(Box::new(c))
}

/// Sink types by name.
pub const SINKS: &[(&str, Ctor<SinkKind>)] = &[
    ("stdout", sink::<StdoutConfig>),
    ("jsonl", sink::<JsonlConfig>),
    ("csv", sink::<CsvSinkConfig>),
    ("parquet", sink::<ParquetConfig>),
    ("postgres", sink::<PostgresConfig>),
    ("webhook", sink::<WebhookConfig>),
    ("archive", sink::<ArchiveConfig>),
    #[cfg(feature = "nats")]
    ("nats", sink::<weir_nats::sink::NatsSinkConfig>),
    #[cfg(feature = "mqtt")]
    ("mqtt", sink::<weir_mqtt::sink::MqttSinkConfig>),
    #[cfg(feature = "rabbitmq")]
    ("rabbitmq", sink::<weir_amqp::AmqpSinkConfig>),
];

impl SinkType for StdoutConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn is_stdout(&self) -> bool {
        true
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(StdoutSink::new(self)))
    }
}

impl SinkType for JsonlConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<Output<'_>> {
        vec![out("path", &self.path, File, true)]
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(JsonlSink::create(self)?))
    }
}

impl SinkType for CsvSinkConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<Output<'_>> {
        vec![out("path", &self.path, File, true)]
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(CsvSink::create(self)?))
    }
}

impl SinkType for ParquetConfig {
    /// Serde checks it completely.
    fn validate(&self, _path: &str) -> Vec<Error> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<Output<'_>> {
        vec![out("path", &self.path, Folder, true)]
    }
    fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        ParquetConfig::check_schema(self, path, schema)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(ParquetSink::create(self)?))
    }
}

impl SinkType for PostgresConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        PostgresConfig::validate(self, path)
    }
    fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        PostgresConfig::check_schema(self, path, schema)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(PostgresSink::new(self)))
    }
}

impl SinkType for WebhookConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        WebhookConfig::validate(self, path)
    }
    fn outputs(&self) -> Vec<Output<'_>> {
        self.dead_letter
            .iter()
            .map(|p| out("dead_letter", p, File, false))
            .collect()
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(WebhookSink::new(self)?))
    }
}

impl SinkType for ArchiveConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        ArchiveConfig::validate(self, path)
    }
    /// An archive only adds files (a Parquet archive is a table, which replaces).
    fn outputs(&self) -> Vec<Output<'_>> {
        let table = self.format == weir_sink::archive::ArchiveFormat::Parquet;
        vec![out("path", &self.path, Folder, table)]
    }
    fn required_fields(&self) -> Option<Vec<String>> {
        ArchiveConfig::required_fields(self)
    }
    fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        ArchiveConfig::check_schema(self, path, schema)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        weir_sink::archive::create(self)
    }
}

#[cfg(feature = "nats")]
impl SinkType for weir_nats::sink::NatsSinkConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        weir_nats::sink::NatsSinkConfig::validate(self, path)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(weir_nats::sink::NatsSink::new(self)))
    }
}

#[cfg(feature = "rabbitmq")]
impl SinkType for weir_amqp::AmqpSinkConfig {
    fn validate(&self, path: &str) -> Vec<Error> {
        weir_amqp::AmqpSinkConfig::validate(self, path)
    }
    fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        weir_amqp::AmqpSinkConfig::check_schema(self, path, schema)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(weir_amqp::AmqpSink::new(self)))
    }
}

#[cfg(feature = "mqtt")]
impl SinkType for weir_mqtt::sink::MqttSinkConfig {
    fn named(&mut self, key_path: &str) {
        self.name_client(key_path);
    }
    fn validate(&self, path: &str) -> Vec<Error> {
        weir_mqtt::sink::MqttSinkConfig::validate(self, path)
    }
    fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(Box::new(weir_mqtt::sink::MqttSink::new(self)))
    }
}
