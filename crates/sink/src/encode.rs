//! Row encoders shared by all sinks.

use arrow_array::{Array, RecordBatch};
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
    let raw_json: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.metadata().get(weir_core::fields::META_JSON).is_some())
        .collect();
    // Consecutive rows often share a timestamp (a window's bounds): format each run once.
    let mut last_ts: Vec<Option<(i64, usize, usize)>> = vec![None; cols.len()];
    for row in rows {
        for (((name, col), last), raw) in names
            .iter()
            .zip(&cols)
            .zip(last_ts.iter_mut())
            .zip(&raw_json)
        {
            out.push_str(name);
            match col {
                Col::Str(a) if *raw && a.is_valid(row) => out.push_str(a.value(row)),
                Col::Ts(a) if a.is_valid(row) => {
                    let v = a.value(row);
                    match *last {
                        Some((lv, from, to)) if lv == v => out.extend_from_within(from..to),
                        _ => {
                            let from = out.len();
                            col.write_json(row, out);
                            *last = Some((v, from, out.len()));
                        }
                    }
                }
                _ => col.write_json(row, out),
            }
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
    fn repeated_timestamps_are_written_like_fresh_ones() {
        use std::sync::Arc;
        let ts = arrow_array::TimestampMillisecondArray::from(vec![
            Some(0),
            Some(0),
            None,
            Some(1500),
            Some(0),
        ])
        .with_timezone("UTC");
        let b = RecordBatch::try_from_iter([("t", Arc::new(ts) as _)]).unwrap();
        let mut all = String::new();
        json_lines(&b, 0..5, &mut all);
        let mut one_by_one = String::new();
        for r in 0..5 {
            json_line(&b, r, &mut one_by_one);
        }
        assert_eq!(all, one_by_one);
        assert_eq!(
            all.lines().nth(3),
            Some(r#"{"t":"1970-01-01T00:00:01.500Z"}"#)
        );
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut s = String::new();
        csv_cell("plain", &mut s);
        s.push('|');
        csv_cell("a,\"b\"", &mut s);
        assert_eq!(s, "plain|\"a,\"\"b\"\"\"");
    }
}
