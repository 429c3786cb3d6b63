//! weir-format owns the parsers that turn lines of text into typed Arrow batches: Common and
//! Combined Log Format ([`clf`]), JSON lines ([`json`]) and CSV ([`csv`]).
//!
//! A source node feeds each parser chunks of whole lines; the parser appends rows to its
//! column builders and pushes every line it cannot parse to the dead letters with a reason and
//! its line number. Bad input is data, never an `Err` and never a panic.
//!
//! ```
//! use weir_core::{deadletter::DeadLetters, Parser};
//! use weir_format::{FormatConfig, build_parser};
//!
//! let cfg: FormatConfig = serde_json::from_str(r#"{"type": "clf", "malformed_status": 999}"#).unwrap();
//! let mut p = build_parser(&cfg, None).unwrap();
//! let mut dead = DeadLetters::new("logs");
//! let log = b"h - - [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 6245\n\
//!             h - - [01/Jul/1995:00:00:02 -0400] \"GET / HTTP/1.0\" 2O0 6245\n";
//! p.parse_chunk(log, 1, &mut dead);
//! assert_eq!(p.finish().num_rows(), 2); // the second counts under status 999
//! assert_eq!(dead.total(), 1);
//! ```

pub mod clf;
pub mod csv;
pub mod json;
pub mod raw;
pub mod template;
pub mod typed;

use serde::Deserialize;
use weir_core::{Error, Parser, Result};

pub use typed::{FieldSpec, FieldType};

#[cfg(test)]
mod tests;

/// How the lines of a source are parsed (`[source.NAME.format]` in a pipeline file).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FormatConfig {
    /// Common Log Format, and Combined Log Format (referer and user agent) on the same lines.
    #[serde(alias = "combined")]
    Clf(clf::ClfConfig),
    /// One JSON object per line, with a declared schema.
    Json(json::JsonConfig),
    /// Comma-separated values, one record per line.
    Csv(csv::CsvConfig),
    /// Apache httpd logs by their `LogFormat` string or a preset (`common`, `combined`,
    /// `vhost_combined`).
    Apache(template::TemplateConfig),
    /// nginx logs by their `log_format` string or a preset (`combined`, `main`).
    Nginx(template::TemplateConfig),
}

impl FormatConfig {
    /// Checks the config; returns every problem with its key path below `path`.
    pub fn validate(&self, path: &str) -> Vec<Error> {
        match self {
            FormatConfig::Clf(_) => Vec::new(),
            FormatConfig::Json(c) => typed::validate_fields(&c.fields, &format!("{path}.fields")),
            FormatConfig::Csv(c) => c.validate(path),
            FormatConfig::Apache(c) | FormatConfig::Nginx(c) => {
                match template::Template::compile(self.dialect(), &c.log_format) {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![Error::config(format!("{path}.log_format"), e)],
                }
            }
        }
    }

    fn dialect(&self) -> template::Dialect {
        match self {
            FormatConfig::Nginx(_) => template::Dialect::Nginx,
            _ => template::Dialect::Apache,
        }
    }

    /// Names of all the fields this format can produce, in schema order.
    pub fn field_names(&self) -> Vec<String> {
        match self {
            FormatConfig::Clf(_) => clf::FIELDS.iter().map(|f| f.to_string()).collect(),
            FormatConfig::Json(c) => c.fields.iter().map(|f| f.name.clone()).collect(),
            FormatConfig::Csv(c) => c.fields.iter().map(|f| f.name.clone()).collect(),
            FormatConfig::Apache(c) | FormatConfig::Nginx(c) => {
                template::Template::compile(self.dialect(), &c.log_format)
                    .map(|t| t.columns().into_iter().map(|(n, _)| n).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// Builds the parser for `cfg`. `projection` names the fields downstream stages need; `None`
/// means all of them. Fields not needed are still checked (a malformed line stays malformed)
/// but never materialised.
pub fn build_parser(cfg: &FormatConfig, projection: Option<&[String]>) -> Result<Box<dyn Parser>> {
    Ok(match cfg {
        FormatConfig::Clf(c) => Box::new(clf::ClfParser::new(c, projection)?),
        FormatConfig::Json(c) => Box::new(json::JsonParser::new(c, projection)?),
        FormatConfig::Csv(c) => Box::new(csv::CsvParser::new(c, projection)?),
        FormatConfig::Apache(c) | FormatConfig::Nginx(c) => {
            Box::new(template::TemplateParser::new(cfg.dialect(), c, projection)?)
        }
    })
}

/// Builds the parser of a source: [`build_parser`], and when `raw_field` is set and wanted by
/// `projection`, each row also carries its original line in that field ([`raw::WithRaw`]).
pub fn build_source_parser(
    cfg: &FormatConfig,
    raw_field: Option<&str>,
    projection: Option<&[String]>,
) -> Result<Box<dyn Parser>> {
    let Some(raw) = raw_field else {
        return build_parser(cfg, projection);
    };
    if cfg.field_names().iter().any(|f| f == raw) {
        return Err(Error::Schema(format!(
            "raw_field {raw:?} is also a field of the format; choose another name"
        )));
    }
    let wants_raw = projection.is_none_or(|p| p.iter().any(|f| f == raw));
    let inner: Option<Vec<String>> =
        projection.map(|p| p.iter().filter(|f| *f != raw).cloned().collect());
    let parser = build_parser(cfg, inner.as_deref())?;
    Ok(if wants_raw {
        Box::new(raw::WithRaw::new(parser, raw))
    } else {
        parser
    })
}
