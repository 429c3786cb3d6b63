//! The registry of connectors and stages: adding one is one enum variant and one line in a
//! slice here, plus its folder in its crate.

use arrow_schema::SchemaRef;
use weir_core::{Error, Operator, Sink, Source};
#[cfg(feature = "mqtt")]
use weir_mqtt::{
    sink::{MqttSink, MqttSinkConfig},
    source::{MqttSource, MqttSourceConfig},
};
#[cfg(feature = "nats")]
use weir_nats::{
    sink::{NatsSink, NatsSinkConfig},
    source::{NatsSource, NatsSourceConfig},
};
use weir_operator::alert::{Alert, AlertConfig};
use weir_operator::condition::{Condition, ConditionConfig};
use weir_operator::filter::{Filter, FilterConfig};
use weir_sink::archive::ArchiveConfig;
use weir_sink::csv::{CsvConfig as CsvSinkConfig, CsvSink};
use weir_sink::jsonl::{JsonlConfig, JsonlSink};
use weir_sink::parquet::{ParquetConfig, ParquetSink};
use weir_sink::postgres::{PostgresConfig, PostgresSink};
use weir_sink::stdout::{StdoutConfig, StdoutSink};
use weir_sink::webhook::{WebhookConfig, WebhookSink};
use weir_source::file::{FileConfig, FileSource};
use weir_source::gen::{GenConfig, GenSource};
use weir_source::stdin::{StdinConfig, StdinSource};
use weir_source::tail::{TailConfig, TailSource};
use weir_window::{Aggregate, AggregateConfig};

use crate::config::de;

/// A constructor from the rest of a `[source|stage|sink.NAME]` table and its key path.
pub type Ctor<T> = fn(toml::Value, &str) -> Result<T, Error>;

/// A configured source connector.
pub enum SourceKind {
    /// `type = "file"`.
    File(FileConfig),
    /// `type = "tail"`.
    Tail(TailConfig),
    /// `type = "stdin"`.
    Stdin(StdinConfig),
    /// `type = "generator"`.
    Generator(GenConfig),
    /// `type = "nats"`: a NATS JetStream stream.
    #[cfg(feature = "nats")]
    Nats(NatsSourceConfig),
    /// `type = "mqtt"`: topics of an MQTT broker.
    #[cfg(feature = "mqtt")]
    Mqtt(MqttSourceConfig),
}

/// Source types by name.
pub const SOURCES: &[(&str, Ctor<SourceKind>)] = &[
    ("file", |v, p| de(v, p).map(SourceKind::File)),
    ("tail", |v, p| de(v, p).map(SourceKind::Tail)),
    ("stdin", |v, p| de(v, p).map(SourceKind::Stdin)),
    ("generator", |v, p| de(v, p).map(SourceKind::Generator)),
    #[cfg(feature = "nats")]
    ("nats", |v, p| {
        de::<NatsSourceConfig>(v, p).map(|mut c| {
            c.name_consumer(p);
            SourceKind::Nats(c)
        })
    }),
    #[cfg(feature = "mqtt")]
    ("mqtt", |v, p| {
        de::<MqttSourceConfig>(v, p).map(|mut c| {
            c.name_client(p);
            SourceKind::Mqtt(c)
        })
    }),
];

impl SourceKind {
    /// Opens the source.
    pub fn open(&self) -> Result<Box<dyn Source>, Error> {
        Ok(match self {
            SourceKind::File(c) => Box::new(FileSource::open(c)?),
            SourceKind::Tail(c) => Box::new(TailSource::new(c)),
            SourceKind::Stdin(c) => Box::new(StdinSource::new(c)),
            SourceKind::Generator(c) => Box::new(GenSource::new(c)?),
            #[cfg(feature = "nats")]
            SourceKind::Nats(c) => Box::new(NatsSource::new(c)),
            #[cfg(feature = "mqtt")]
            SourceKind::Mqtt(c) => Box::new(MqttSource::new(c)),
        })
    }

    /// Checks the config alone. Every arm is spelled out: a new source type must say whether it
    /// has checks.
    #[cfg_attr(not(any(feature = "nats", feature = "mqtt")), allow(unused_variables))]
    pub fn validate(&self, path: &str) -> Vec<Error> {
        match self {
            #[cfg(feature = "nats")]
            SourceKind::Nats(c) => c.validate(path),
            #[cfg(feature = "mqtt")]
            SourceKind::Mqtt(c) => c.validate(path),
            // Serde checks these completely.
            SourceKind::File(_)
            | SourceKind::Tail(_)
            | SourceKind::Stdin(_)
            | SourceKind::Generator(_) => Vec::new(),
        }
    }

    /// Fields the source adds to each record (a message's topic or subject), with their
    /// config keys: only a JSON format can carry them, and it must declare them.
    pub fn metadata_fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            #[cfg(feature = "nats")]
            SourceKind::Nats(c) => c.metadata_fields(),
            #[cfg(feature = "mqtt")]
            SourceKind::Mqtt(c) => c.metadata_fields(),
            SourceKind::File(_)
            | SourceKind::Tail(_)
            | SourceKind::Stdin(_)
            | SourceKind::Generator(_) => Vec::new(),
        }
    }

    /// The file the source reads, if it reads one.
    pub fn input_path(&self) -> Option<&std::path::Path> {
        match self {
            SourceKind::File(c) => Some(&c.path),
            SourceKind::Tail(c) => Some(&c.path),
            SourceKind::Stdin(_) | SourceKind::Generator(_) => None,
            #[cfg(feature = "nats")]
            SourceKind::Nats(_) => None,
            #[cfg(feature = "mqtt")]
            SourceKind::Mqtt(_) => None,
        }
    }

    /// A problem visible before running (a missing input file), with its key path.
    pub fn preflight(&self, path: &str) -> Option<Error> {
        match self {
            SourceKind::File(c) if !c.path.exists() => Some(Error::config(
                format!("{path}.path"),
                format!("{} does not exist", c.path.display()),
            )),
            // A followed file may appear later (as with `tail -F`); the others need no file.
            SourceKind::File(_)
            | SourceKind::Tail(_)
            | SourceKind::Stdin(_)
            | SourceKind::Generator(_) => None,
            #[cfg(feature = "nats")]
            SourceKind::Nats(_) => None,
            #[cfg(feature = "mqtt")]
            SourceKind::Mqtt(_) => None,
        }
    }
}

/// A configured stage.
pub enum StageKind {
    /// `type = "aggregate"`: windowed keyed aggregation.
    Aggregate(AggregateConfig),
    /// `type = "union"`: merges inputs of one schema.
    Union,
    /// `type = "filter"`: keeps records matching a SQL condition.
    Filter(FilterConfig),
    /// `type = "alert"`: N records of a key within W, fired once per episode.
    Alert(AlertConfig),
    /// `type = "condition"`: alerts on window results, fire once until the condition clears.
    Condition(ConditionConfig),
}

/// Stage types by name.
pub const STAGES: &[(&str, Ctor<StageKind>)] = &[
    ("aggregate", |v, p| de(v, p).map(StageKind::Aggregate)),
    ("filter", |v, p| de(v, p).map(StageKind::Filter)),
    ("alert", |v, p| de(v, p).map(StageKind::Alert)),
    ("condition", |v, p| de(v, p).map(StageKind::Condition)),
    ("union", |v, p| {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct UnionConfig {}
        de::<UnionConfig>(v, p).map(|_| StageKind::Union)
    }),
];

impl StageKind {
    /// Checks the config alone.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        match self {
            StageKind::Aggregate(c) => c.validate(path),
            StageKind::Union => Vec::new(),
            StageKind::Filter(c) => match weir_expr::Expr::parse(&c.condition) {
                Ok(_) => Vec::new(),
                Err(e) => vec![Error::config(format!("{path}.where"), e.to_string())],
            },
            StageKind::Alert(c) => c.validate(path),
            StageKind::Condition(c) => c.validate(path),
        }
    }

    /// Input fields the stage itself reads; `None`: all of them.
    pub fn required_fields(&self) -> Option<Vec<String>> {
        match self {
            StageKind::Aggregate(c) => Some(c.required_fields()),
            StageKind::Union => Some(Vec::new()),
            StageKind::Filter(c) => Some(c.required_fields()),
            StageKind::Alert(c) => Some(c.required_fields()),
            StageKind::Condition(c) => Some(c.required_fields()),
        }
    }

    /// Whether the stage's output records are its input records (so its consumers' needs are
    /// its input's needs too).
    pub fn passes_records_through(&self) -> bool {
        matches!(self, StageKind::Union | StageKind::Filter(_))
    }

    /// Builds the operator for its input schema.
    pub fn build(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        let built: Result<Box<dyn Operator>, Vec<Error>> = match self {
            StageKind::Aggregate(c) => Aggregate::new(c, input, path).map(|op| Box::new(op) as _),
            StageKind::Union => Ok(Box::new(weir_runtime::union::Union::new(input))),
            StageKind::Filter(c) => Filter::new(c, input, path).map(|op| Box::new(op) as _),
            StageKind::Alert(c) => Alert::new(c, input, path).map(|op| Box::new(op) as _),
            StageKind::Condition(c) => Condition::new(c, input, path).map(|op| Box::new(op) as _),
        };
        // validate() already reported the config-only problems; keep the schema ones.
        built.map_err(|errs| {
            let own: Vec<String> = self
                .validate(path)
                .iter()
                .map(ToString::to_string)
                .collect();
            errs.into_iter()
                .filter(|e| !own.contains(&e.to_string()))
                .collect()
        })
    }
}

/// A path a sink writes.
pub struct Output<'a> {
    /// Its config key (`path`, `dead_letter`).
    pub key: &'static str,
    /// The path.
    pub path: &'a std::path::Path,
    /// A file or a folder of files.
    pub kind: weir_sink::owned::OutputKind,
    /// Whether a run may replace what is there (truncate a file, empty a table).
    pub replaces: bool,
}

/// A configured sink.
pub enum SinkKind {
    /// `type = "stdout"`.
    Stdout(StdoutConfig),
    /// `type = "jsonl"`.
    Jsonl(JsonlConfig),
    /// `type = "csv"`.
    Csv(CsvSinkConfig),
    /// `type = "parquet"`.
    Parquet(ParquetConfig),
    /// `type = "postgres"`.
    Postgres(PostgresConfig),
    /// `type = "webhook"`.
    Webhook(WebhookConfig),
    /// `type = "archive"`.
    Archive(ArchiveConfig),
    /// `type = "nats"`.
    #[cfg(feature = "nats")]
    Nats(NatsSinkConfig),
    /// `type = "mqtt"`.
    #[cfg(feature = "mqtt")]
    Mqtt(MqttSinkConfig),
}

/// Sink types by name.
pub const SINKS: &[(&str, Ctor<SinkKind>)] = &[
    ("stdout", |v, p| de(v, p).map(SinkKind::Stdout)),
    ("jsonl", |v, p| de(v, p).map(SinkKind::Jsonl)),
    ("csv", |v, p| de(v, p).map(SinkKind::Csv)),
    ("parquet", |v, p| de(v, p).map(SinkKind::Parquet)),
    ("postgres", |v, p| de(v, p).map(SinkKind::Postgres)),
    ("webhook", |v, p| de(v, p).map(SinkKind::Webhook)),
    ("archive", |v, p| de(v, p).map(SinkKind::Archive)),
    #[cfg(feature = "nats")]
    ("nats", |v, p| de(v, p).map(SinkKind::Nats)),
    #[cfg(feature = "mqtt")]
    ("mqtt", |v, p| {
        de::<MqttSinkConfig>(v, p).map(|mut c| {
            c.name_client(p);
            SinkKind::Mqtt(c)
        })
    }),
];

impl SinkKind {
    /// Creates the sink.
    pub fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(match self {
            SinkKind::Stdout(c) => Box::new(StdoutSink::new(c)),
            SinkKind::Jsonl(c) => Box::new(JsonlSink::create(c)?),
            SinkKind::Csv(c) => Box::new(CsvSink::create(c)?),
            SinkKind::Parquet(c) => Box::new(ParquetSink::create(c)?),
            SinkKind::Postgres(c) => Box::new(PostgresSink::new(c)),
            SinkKind::Webhook(c) => Box::new(WebhookSink::new(c)?),
            SinkKind::Archive(c) => weir_sink::archive::create(c)?,
            #[cfg(feature = "nats")]
            SinkKind::Nats(c) => Box::new(NatsSink::new(c)),
            #[cfg(feature = "mqtt")]
            SinkKind::Mqtt(c) => Box::new(MqttSink::new(c)),
        })
    }

    /// Checks the config alone. Every arm is spelled out (no wildcard): a new sink type must
    /// say whether it has checks, or the build fails here.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        match self {
            SinkKind::Webhook(c) => c.validate(path),
            SinkKind::Postgres(c) => c.validate(path),
            SinkKind::Archive(c) => c.validate(path),
            #[cfg(feature = "nats")]
            SinkKind::Nats(c) => c.validate(path),
            #[cfg(feature = "mqtt")]
            SinkKind::Mqtt(c) => c.validate(path),
            // Serde checks these completely: a path, a format name.
            SinkKind::Stdout(_) | SinkKind::Jsonl(_) | SinkKind::Csv(_) | SinkKind::Parquet(_) => {
                Vec::new()
            }
        }
    }

    /// The paths the sink writes, with their config key, and whether the sink may replace
    /// what is there (then it must be weir's own: see `weir_sink::owned`).
    pub fn outputs(&self) -> Vec<Output<'_>> {
        use weir_sink::owned::OutputKind::{File, Folder};
        let out = |key, path, kind, replaces| Output {
            key,
            path,
            kind,
            replaces,
        };
        match self {
            SinkKind::Jsonl(c) => vec![out("path", &c.path, File, true)],
            SinkKind::Csv(c) => vec![out("path", &c.path, File, true)],
            SinkKind::Parquet(c) => vec![out("path", &c.path, Folder, true)],
            // An archive only adds files (a Parquet archive is a table, which replaces).
            SinkKind::Archive(c) => vec![out(
                "path",
                &c.path,
                Folder,
                c.format == weir_sink::archive::ArchiveFormat::Parquet,
            )],
            SinkKind::Webhook(c) => c
                .dead_letter
                .iter()
                .map(|p| out("dead_letter", p, File, false))
                .collect(),
            SinkKind::Stdout(_) | SinkKind::Postgres(_) => Vec::new(),
            #[cfg(feature = "nats")]
            SinkKind::Nats(_) => Vec::new(),
            #[cfg(feature = "mqtt")]
            SinkKind::Mqtt(_) => Vec::new(),
        }
    }

    /// Input fields the sink writes; `None`: all of them.
    pub fn required_fields(&self) -> Option<Vec<String>> {
        match self {
            SinkKind::Archive(c) => c.required_fields(),
            // These write every field of their input.
            SinkKind::Stdout(_)
            | SinkKind::Jsonl(_)
            | SinkKind::Csv(_)
            | SinkKind::Parquet(_)
            | SinkKind::Postgres(_)
            | SinkKind::Webhook(_) => None,
            #[cfg(feature = "nats")]
            SinkKind::Nats(_) => None,
            #[cfg(feature = "mqtt")]
            SinkKind::Mqtt(_) => None,
        }
    }

    /// Checks the config against the schema of the sink's input.
    pub fn check_schema(&self, path: &str, schema: &arrow_schema::Schema) -> Vec<Error> {
        match self {
            SinkKind::Postgres(c) => c.check_schema(path, schema),
            SinkKind::Parquet(c) => c.check_schema(path, schema),
            SinkKind::Archive(c) => c.check_schema(path, schema),
            // Any schema: rows are written as text (JSON, CSV) whatever their columns.
            SinkKind::Stdout(_) | SinkKind::Jsonl(_) | SinkKind::Csv(_) | SinkKind::Webhook(_) => {
                Vec::new()
            }
            #[cfg(feature = "nats")]
            SinkKind::Nats(_) => Vec::new(),
            #[cfg(feature = "mqtt")]
            SinkKind::Mqtt(_) => Vec::new(),
        }
    }
}
