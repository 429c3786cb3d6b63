//! CSV: one record per line, RFC 4180 quoting (`"a ""quoted"" value"`), a configurable
//! delimiter. Columns come from a header line or from the declared field list.
//!
//! The fields are always declared, so the schema is known before the first byte arrives. With
//! `header = true` the first line names the columns and declared fields are matched by name
//! (other columns are ignored); with `header = false` the declared fields are the columns in
//! order. A record with
//! the wrong number of columns or a value of the wrong type is a dead letter. A quoted value
//! cannot span lines: such a record is dead-lettered, never glued to the next line.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::parse::{for_each_line, ParseCounts};
use weir_core::{Error, Parser, Result};

use crate::typed::{from_text, projection_mask, validate_fields, FieldSpec, RowWriter};

const fn default_true() -> bool {
    true
}
const fn default_delimiter() -> char {
    ','
}

/// Options of the CSV parser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The first line names the columns (default true).
    #[serde(default = "default_true")]
    pub header: bool,
    /// Field delimiter, one ASCII character (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// The fields to read: `[{ name = "status", type = "uint" }, …]`.
    pub fields: Vec<FieldSpec>,
}

impl CsvConfig {
    pub(crate) fn validate(&self, path: &str) -> Vec<Error> {
        let mut errors = Vec::new();
        if !self.delimiter.is_ascii() {
            errors.push(Error::config(
                format!("{path}.delimiter"),
                format!("expected one ASCII character, got {:?}", self.delimiter),
            ));
        }
        errors.extend(validate_fields(&self.fields, &format!("{path}.fields")));
        errors
    }
}

/// The CSV parser.
pub struct CsvParser {
    cfg: CsvConfig,
    writer: RowWriter,
    header_seen: bool,
    /// Why the header could not be used: every record is then a dead letter with this reason.
    broken_header: Option<String>,
    /// For each declared field, its column index in a record.
    columns: Vec<usize>,
    /// Number of columns a record must have.
    width: usize,
    /// Built once: building a csv-core reader per line cost 89 % of the parse time.
    reader: csv_core::Reader,
    /// The unquoted cells of the current line, back to back; `ends[i]` ends cell `i`.
    scratch: Vec<u8>,
    ends: Vec<usize>,
    /// Number of cells of the current line.
    cells: usize,
    /// Blank lines since the last [`Parser::take_counts`].
    blank: u64,
}

impl CsvParser {
    /// A parser producing the fields in `projection` (all declared when `None`).
    pub fn new(cfg: &CsvConfig, projection: Option<&[String]>) -> Result<Self> {
        let keep = projection_mask(&cfg.fields, projection, "csv")?;
        Ok(CsvParser {
            cfg: cfg.clone(),
            writer: RowWriter::new(cfg.fields.clone(), keep),
            header_seen: !cfg.header,
            broken_header: None,
            columns: (0..cfg.fields.len()).collect(),
            width: cfg.fields.len(),
            reader: csv_core::ReaderBuilder::new()
                .delimiter(cfg.delimiter as u8)
                .build(),
            scratch: vec![0; 4096],
            ends: vec![0; 64],
            cells: 0,
            blank: 0,
        })
    }

    /// Cell `i` of the line last split, as text (bytes that are not UTF-8 become U+FFFD).
    fn cell(&self, i: usize) -> std::borrow::Cow<'_, str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        String::from_utf8_lossy(&self.scratch[start..self.ends[i]])
    }

    /// Splits one line into cells; `Err` when the quoting is broken.
    fn split(&mut self, line: &[u8]) -> std::result::Result<(), String> {
        use csv_core::ReadRecordResult as R;
        // Every quote is either an opening, a closing or half of an escaped `""`, so a line
        // with an odd number of quotes has an unterminated quoted value (or one spanning lines).
        if memchr::memchr_iter(b'"', line).count() % 2 == 1 {
            return Err("unterminated quoted value (a value cannot span lines)".into());
        }
        let rdr = &mut self.reader;
        rdr.reset();
        // Output is never longer than input, and a line has at most len + 1 fields.
        self.scratch
            .resize(self.scratch.len().max(line.len() + 1), 0);
        self.ends.resize(self.ends.len().max(line.len() + 2), 0);
        let (mut input, mut nout, mut nend) = (line, 0, 0);
        loop {
            let (res, nin, o, e) =
                rdr.read_record(input, &mut self.scratch[nout..], &mut self.ends[nend..]);
            // csv-core keeps its output position across the calls of one record, so `ends`
            // are already offsets from the start of the record's output.
            input = &input[nin..];
            nout += o;
            nend += e;
            match res {
                R::Record | R::End => break,
                R::InputEmpty => {}
                R::OutputFull | R::OutputEndsFull => return Err("record too large".into()),
            }
        }
        self.cells = nend;
        Ok(())
    }

    fn header(&mut self, no: u64, line: &[u8], dead: &mut DeadLetters) {
        self.header_seen = true;
        if let Err(reason) = self.split(line) {
            dead.push(Some(no), &format!("header: {reason}"), line);
            self.broken_header = Some(format!("the header on line {no} could not be read"));
            return;
        }
        let mut cols = Vec::new();
        for f in &self.cfg.fields {
            match (0..self.cells).position(|i| self.cell(i) == f.name.as_str()) {
                Some(i) => cols.push(i),
                None => {
                    let reason = format!("header has no column {:?} (declared in fields)", f.name);
                    dead.push(Some(no), &reason, line);
                    self.broken_header = Some(format!(
                        "the header on line {no} has no column {:?}",
                        f.name
                    ));
                    return;
                }
            }
        }
        self.columns = cols;
        self.width = self.cells;
    }
}

impl Parser for CsvParser {
    fn schema(&self) -> SchemaRef {
        self.writer.schema()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        let mut blank = 0;
        let n = for_each_line(chunk, first_line, |no, line| {
            if line.is_empty() {
                blank += 1;
                return;
            }
            if !self.header_seen {
                self.header(no, line, dead);
                return;
            }
            if let Some(reason) = &self.broken_header {
                dead.push(Some(no), reason, line);
                return;
            }
            if let Err(reason) = self.split(line) {
                dead.push(Some(no), &reason, line);
                return;
            }
            if self.cells != self.width {
                let reason = format!("expected {} columns, got {}", self.width, self.cells);
                dead.push(Some(no), &reason, line);
                return;
            }
            let (scratch, ends, columns) = (&self.scratch, &self.ends, &self.columns);
            let res = self.writer.write(|i, spec| {
                let c = columns[i];
                let cell = &scratch[if c == 0 { 0 } else { ends[c - 1] }..ends[c]];
                match std::str::from_utf8(cell) {
                    Ok(text) => from_text(spec.ty, text),
                    Err(_) => {
                        from_text(spec.ty, &String::from_utf8_lossy(cell)).map(|v| v.into_owned())
                    }
                }
            });
            if let Err(reason) = res {
                dead.push(Some(no), &reason, line);
            }
        });
        self.blank += blank;
        n
    }

    /// With a header, the first chunk's first line sets the columns of every later one.
    fn chunks_independent(&self) -> bool {
        !self.cfg.header
    }

    fn fatal(&self) -> Option<String> {
        self.broken_header.as_ref().map(|why| {
            format!(
                "{why}, so no record of this input can be read (the header line went to the \
                 dead letters): name the columns in `fields` as the header does, or set \
                 header = false"
            )
        })
    }

    fn take_counts(&mut self) -> ParseCounts {
        ParseCounts {
            blank: std::mem::take(&mut self.blank),
            ..ParseCounts::default()
        }
    }

    fn pending_rows(&self) -> usize {
        self.writer.rows()
    }

    fn finish(&mut self) -> RecordBatch {
        self.writer.finish()
    }
}
