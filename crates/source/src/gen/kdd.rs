//! The KDD Cup 1999 replayer: network-connection records of a CSV file (the UCI files have no
//! header; the column names come from `kddcup.names`, the label is the last, unnamed column)
//! as JSON objects, each with four fields added:
//!
//! - `utc`: event time, from the generator's start advancing 1/rate s per record (1 ms at full
//!   speed), as the other generators do;
//! - `uuid`: a random (version 4) UUID, from the seed;
//! - `sequence_id`: the record's number in the replay, from 0;
//! - `index`: the row of the file it was taken from, from 0.
//!
//! Rows are drawn at random with replacement (seeded) or, with `once`, every row in file order
//! exactly once. A value that is a number is written as a JSON number (the 0/1 flags that
//! `kddcup.names` calls symbolic, such as `logged_in`, too), text and the label as strings; a
//! continuous value that is not a number therefore arrives as a string, and the pipeline's
//! parser reports it rather than the replayer hiding it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use weir_core::{Error, Result};

use super::{LineGen, Rng};

/// One column of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Whether `kddcup.names` calls it continuous (else symbolic).
    pub continuous: bool,
}

/// Columns from a `kddcup.names` file: `name: continuous.` or `name: symbolic.` per line (other
/// lines, such as the class list on the first, are skipped), and `label` last.
pub fn read_names(path: &Path) -> Result<Vec<Column>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut cols: Vec<Column> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, t)| Column {
            name: n.trim().to_string(),
            continuous: t.trim().trim_end_matches('.') == "continuous",
        })
        .collect();
    if cols.is_empty() {
        return Err(Error::config(
            "names",
            format!(
                "{}: no `name: continuous.` or `name: symbolic.` lines",
                path.display()
            ),
        ));
    }
    cols.push(Column {
        name: "label".into(),
        continuous: false,
    });
    Ok(cols)
}

/// The `kddcup.names` beside `file`, when the config names none.
pub fn default_names(file: &Path) -> PathBuf {
    file.with_file_name("kddcup.names")
}

/// The rows of a KDD file, in memory.
pub struct KddRows {
    columns: Vec<Column>,
    text: Vec<u8>,
    /// Start of each row in `text`, and the end of the last.
    starts: Vec<usize>,
}

impl KddRows {
    /// Reads `file` (plain or gzip) with the columns of `names`; every row must have them all.
    pub fn load(file: &Path, names: &Path) -> Result<Self> {
        let columns = read_names(names)?;
        let io = |e| Error::io(format!("reading {}", file.display()), e);
        let mut raw = Vec::new();
        std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(io)?;
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(raw.len() * 30);
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(io)?;
            out
        } else {
            raw
        };
        let mut starts = vec![0];
        let mut at = 0;
        for line in text.split_inclusive(|b| *b == b'\n') {
            at += line.len();
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if body.is_empty() {
                *starts.last_mut().expect("one start") = at; // blank line: skipped
                continue;
            }
            let n = body.iter().filter(|b| **b == b',').count() + 1;
            if n != columns.len() {
                return Err(Error::config(
                    "file",
                    format!(
                        "{} line {}: {n} columns, {} expected ({} from {} and the label)",
                        file.display(),
                        starts.len(),
                        columns.len(),
                        columns.len() - 1,
                        names.display()
                    ),
                ));
            }
            starts.push(at);
        }
        if starts.len() < 2 {
            return Err(Error::config(
                "file",
                format!("{} has no rows", file.display()),
            ));
        }
        Ok(KddRows {
            columns,
            text,
            starts,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether there are none (never: loading refuses an empty file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn row(&self, i: usize) -> &[u8] {
        let r = &self.text[self.starts[i]..self.starts[i + 1]];
        let r = r.strip_suffix(b"\n").unwrap_or(r);
        r.strip_suffix(b"\r").unwrap_or(r)
    }
}

/// A JSON number as RFC 8259 spells one (`0.00` and `181` are; `?`, `.5` and `1.` are not).
fn is_json_number(s: &[u8]) -> bool {
    let mut i = usize::from(s.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if s.get(i) == Some(&b'0') {
        i += 1;
    } else if !digits(&mut i) {
        return false;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == s.len()
}

fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Replays KDD rows as JSON lines (see the module docs).
pub struct KddGen {
    rows: std::sync::Arc<KddRows>,
    rng: Rng,
    once: bool,
    start_ms: i64,
    step_ms: f64,
    n: u64,
}

impl KddGen {
    /// A replayer of `rows`: in order once, or drawn with replacement by `seed`.
    pub fn new(
        rows: std::sync::Arc<KddRows>,
        seed: u64,
        once: bool,
        start_ms: i64,
        events_per_sec: f64,
    ) -> Self {
        KddGen {
            rows,
            rng: Rng::new(seed),
            once,
            start_ms,
            step_ms: 1000.0 / events_per_sec.max(1e-3),
            n: 0,
        }
    }
}

impl LineGen for KddGen {
    fn set_start(&mut self, start_ms: i64) {
        self.start_ms = start_ms;
    }

    fn line(&mut self, out: &mut Vec<u8>) {
        let rows = &*self.rows;
        let index = if self.once {
            (self.n as usize) % rows.len()
        } else {
            self.rng.below(rows.len() as u64) as usize
        };
        out.push(b'{');
        let last = rows.columns.len() - 1;
        for (i, (col, value)) in rows
            .columns
            .iter()
            .zip(rows.row(index).split(|b| *b == b','))
            .enumerate()
        {
            json_string(out, col.name.as_bytes());
            out.push(b':');
            if i < last && is_json_number(value) {
                out.extend_from_slice(value);
            } else {
                json_string(out, value);
            }
            out.push(b',');
        }
        let t = self.start_ms + (self.n as f64 * self.step_ms) as i64;
        let mut ts = String::new();
        weir_core::time::write_rfc3339_ms(t, &mut ts);
        let u = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        // Version 4, variant 10: a random UUID as RFC 9562 lays it out.
        let u = (u & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let _ = writeln!(
            out,
            r#""utc":"{ts}","uuid":"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}","sequence_id":{},"index":{index}}}"#,
            (u >> 96) as u32,
            (u >> 80) as u16,
            (u >> 64) as u16,
            (u >> 48) as u16,
            u & 0xFFFF_FFFF_FFFF,
            self.n
        );
        self.n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_told_from_other_text() {
        for ok in ["0", "181", "0.00", "-1.5e3", "1E+2"] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "?", ".5", "1.", "01", "1e", "tcp", "1,2", "NaN", "inf"] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
