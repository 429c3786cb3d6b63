//! Standard output: an aligned table on a terminal, JSON lines (or CSV) when piped.
//!
//! A closed pipe (`weir run … | head`) ends the sink quietly; it is not an error.

use std::io::{IsTerminal, Write};

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use serde::Deserialize;
use weir_core::value::Scalar;
use weir_core::{Error, Result, Sink};

/// How rows are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// A table on a terminal, JSON lines otherwise (default).
    #[default]
    Auto,
    /// An aligned table with a header.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// `[sink.NAME] type = "stdout"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// `"auto"` (default), `"table"`, `"jsonl"` or `"csv"`.
    #[serde(default)]
    pub format: StdoutFormat,
}

/// The stdout sink, generic over the writer for tests.
pub struct StdoutSink<W: Write + Send = std::io::Stdout> {
    out: W,
    format: StdoutFormat,
    widths: Option<Vec<usize>>,
    text: String,
    closed: bool,
}

impl StdoutSink {
    /// Writes to the process's standard output.
    pub fn new(cfg: &StdoutConfig) -> Self {
        let format = match cfg.format {
            StdoutFormat::Auto if std::io::stdout().is_terminal() => StdoutFormat::Table,
            StdoutFormat::Auto => StdoutFormat::Jsonl,
            f => f,
        };
        StdoutSink::with_writer(std::io::stdout(), format)
    }
}

fn right_aligned(dt: &DataType) -> bool {
    dt.is_numeric()
}

impl<W: Write + Send> StdoutSink<W> {
    /// Writes to `out` in `format` (`Auto` means JSON lines here).
    pub fn with_writer(out: W, format: StdoutFormat) -> Self {
        StdoutSink {
            out,
            format,
            widths: None,
            text: String::new(),
            closed: false,
        }
    }

    /// The writer (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn table(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let cells: Vec<Vec<String>> = (0..batch.num_rows())
            .map(|r| {
                (0..batch.num_columns())
                    .map(|c| Scalar::from_array(batch.column(c).as_ref(), r).to_text())
                    .collect()
            })
            .collect();
        if self.widths.is_none() {
            let widths: Vec<usize> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(c, f)| {
                    cells
                        .iter()
                        .map(|row| row[c].chars().count())
                        .chain([f.name().len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let header: Vec<String> = schema
                .fields()
                .iter()
                .zip(&widths)
                .map(|(f, w)| format!("{:<w$}", f.name(), w = *w))
                .collect();
            self.text.push_str(header.join("  ").trim_end());
            self.text.push('\n');
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            self.text.push_str(&rule.join("  "));
            self.text.push('\n');
            self.widths = Some(widths);
        }
        let widths = self.widths.as_mut().expect("set above");
        for row in cells {
            let mut line = Vec::with_capacity(row.len());
            for (c, cell) in row.into_iter().enumerate() {
                let w = widths[c].max(cell.chars().count());
                widths[c] = w;
                line.push(if right_aligned(schema.field(c).data_type()) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                });
            }
            self.text.push_str(line.join("  ").trim_end());
            self.text.push('\n');
        }
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    fn closed(&self) -> bool {
        self.closed
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.text.clear();
        match self.format {
            StdoutFormat::Table => self.table(batch),
            StdoutFormat::Csv => {
                if self.widths.is_none() {
                    crate::encode::csv_header(batch, &mut self.text);
                    self.widths = Some(Vec::new());
                }
                for r in 0..batch.num_rows() {
                    crate::encode::csv_line(batch, r, &mut self.text);
                }
            }
            StdoutFormat::Auto | StdoutFormat::Jsonl => {
                crate::encode::json_lines(batch, 0..batch.num_rows(), &mut self.text);
            }
        }
        match self
            .out
            .write_all(self.text.as_bytes())
            .and_then(|_| self.out.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| Error::io("writing to standard output", e)),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| Error::io("flushing standard output", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn table_aligns_numbers_right_and_text_left() {
        let b = RecordBatch::try_from_iter([
            (
                "status",
                Arc::new(StringArray::from(vec!["200", "999"])) as _,
            ),
            ("count", Arc::new(Int64Array::from(vec![12345, 7])) as _),
        ])
        .unwrap();
        let mut sink = StdoutSink::with_writer(Vec::new(), StdoutFormat::Table);
        sink.write(&b).unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "status  count\n──────  ─────\n200     12345\n999         7\n"
        );
    }
}
