//! Row encoders shared by all sinks.

use arrow_array::RecordBatch;
use weir_core::value::{write_json_str, Col, Scalar};

/// Appends row `row` of `batch` as one JSON object and a newline.
pub fn json_line(batch: &RecordBatch, row: usize, out: &mut String) {
    json_lines(batch, row..row + 1, out);
}

/// Appends rows `rows` of `batch` as JSON objects, one per line. Columns are downcast and
/// field names escaped once per call, not once per row.
pub fn json_lines(batch: &RecordBatch, rows: std::ops::Range<usize>, out: &mut String) {
    let schema = batch.schema();
    let names: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut n = String::from(if i == 0 { "{" } else { "," });
            write_json_str(f.name(), &mut n);
            n.push(':');
            n
        })
        .collect();
    let cols: Vec<Col<'_>> = batch
        .columns()
        .iter()
        .map(|c| Col::new(c).expect("sinks get supported types"))
        .collect();
    for row in rows {
        for (name, col) in names.iter().zip(&cols) {
            out.push_str(name);
            col.write_json(row, out);
        }
        if cols.is_empty() {
            out.push('{');
        }
        out.push_str("}\n");
    }
}

/// Appends `s` as a CSV cell, quoted when it holds a comma, quote or line break.
pub fn csv_cell(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Appends the header line of `batch`'s schema as CSV.
pub fn csv_header(batch: &RecordBatch, out: &mut String) {
    for (i, f) in batch.schema().fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(f.name(), out);
    }
    out.push('\n');
}

/// Appends row `row` of `batch` as a CSV line.
pub fn csv_line(batch: &RecordBatch, row: usize, out: &mut String) {
    for i in 0..batch.num_columns() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(
            &Scalar::from_array(batch.column(i).as_ref(), row).to_text(),
            out,
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut s = String::new();
        csv_cell("plain", &mut s);
        s.push('|');
        csv_cell("a,\"b\"", &mut s);
        assert_eq!(s, "plain|\"a,\"\"b\"\"\"");
    }
}
