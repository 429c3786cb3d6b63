//! The registry of connectors and stages: adding one is one enum variant and one line in a
//! slice here, plus its folder in its crate.

use arrow_schema::SchemaRef;
use weir_core::{Error, Operator, Sink, Source};
use weir_sink::csv::{CsvConfig as CsvSinkConfig, CsvSink};
use weir_sink::jsonl::{JsonlConfig, JsonlSink};
use weir_sink::stdout::{StdoutConfig, StdoutSink};
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
}

/// Source types by name.
pub const SOURCES: &[(&str, Ctor<SourceKind>)] = &[
    ("file", |v, p| de(v, p).map(SourceKind::File)),
    ("tail", |v, p| de(v, p).map(SourceKind::Tail)),
    ("stdin", |v, p| de(v, p).map(SourceKind::Stdin)),
    ("generator", |v, p| de(v, p).map(SourceKind::Generator)),
];

impl SourceKind {
    /// Opens the source.
    pub fn open(&self) -> Result<Box<dyn Source>, Error> {
        Ok(match self {
            SourceKind::File(c) => Box::new(FileSource::open(c)?),
            SourceKind::Tail(c) => Box::new(TailSource::new(c)),
            SourceKind::Stdin(c) => Box::new(StdinSource::new(c)),
            SourceKind::Generator(c) => Box::new(GenSource::new(c)),
        })
    }

    /// A problem visible before running (a missing input file), with its key path.
    pub fn preflight(&self, path: &str) -> Option<Error> {
        match self {
            SourceKind::File(c) if !c.path.exists() => Some(Error::config(
                format!("{path}.path"),
                format!("{} does not exist", c.path.display()),
            )),
            _ => None,
        }
    }
}

/// A configured stage.
pub enum StageKind {
    /// `type = "aggregate"`: windowed keyed aggregation.
    Aggregate(AggregateConfig),
    /// `type = "union"`: merges inputs of one schema.
    Union,
}

/// Stage types by name.
pub const STAGES: &[(&str, Ctor<StageKind>)] = &[
    ("aggregate", |v, p| de(v, p).map(StageKind::Aggregate)),
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
        }
    }

    /// Input fields the stage reads; `None` when it passes every field on.
    pub fn required_fields(&self) -> Option<Vec<String>> {
        match self {
            StageKind::Aggregate(c) => Some(c.required_fields()),
            StageKind::Union => None,
        }
    }

    /// Builds the operator for its input schema.
    pub fn build(&self, input: SchemaRef, path: &str) -> Result<Box<dyn Operator>, Vec<Error>> {
        Ok(match self {
            StageKind::Aggregate(c) => {
                // validate() already reported config-only problems; keep the schema ones.
                let op = Aggregate::new(c, input, path).map_err(|errs| {
                    let own: Vec<String> =
                        c.validate(path).iter().map(ToString::to_string).collect();
                    errs.into_iter()
                        .filter(|e| !own.contains(&e.to_string()))
                        .collect::<Vec<_>>()
                })?;
                Box::new(op)
            }
            StageKind::Union => Box::new(weir_runtime::union::Union::new(input)),
        })
    }
}

/// A configured sink.
pub enum SinkKind {
    /// `type = "stdout"`.
    Stdout(StdoutConfig),
    /// `type = "jsonl"`.
    Jsonl(JsonlConfig),
    /// `type = "csv"`.
    Csv(CsvSinkConfig),
}

/// Sink types by name.
pub const SINKS: &[(&str, Ctor<SinkKind>)] = &[
    ("stdout", |v, p| de(v, p).map(SinkKind::Stdout)),
    ("jsonl", |v, p| de(v, p).map(SinkKind::Jsonl)),
    ("csv", |v, p| de(v, p).map(SinkKind::Csv)),
];

impl SinkKind {
    /// Creates the sink.
    pub fn create(&self) -> Result<Box<dyn Sink>, Error> {
        Ok(match self {
            SinkKind::Stdout(c) => Box::new(StdoutSink::new(c)),
            SinkKind::Jsonl(c) => Box::new(JsonlSink::create(c)?),
            SinkKind::Csv(c) => Box::new(CsvSink::create(c)?),
        })
    }
}
