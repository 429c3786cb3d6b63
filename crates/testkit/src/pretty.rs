//! Record batches written as tables, so a test shows its input and expected output as rows.
//!
//! ```
//! use weir_testkit::from_pretty;
//!
//! let b = from_pretty(
//!     "
//!     ts:ts!                | status:u16 | bytes:u64 | path:str
//!     1995-07-01T00:00:01Z  | 200        | 6245      | /history/apollo/
//!     1000                  | 404        | .         | \"a | b\"
//!     ",
//! );
//! assert_eq!(b.num_rows(), 2);
//! assert!(b.column(2).is_null(1));
//! ```

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// Builds a [`RecordBatch`] from a table: a header of `name:type` cells, then one line per row,
/// cells separated by `|`, blank lines and lines starting with `#` skipped.
///
/// Types: `i64 i32 u64 u32 u16 f64 bool str ts` — `ts` is a UTC millisecond timestamp (weir's
/// event-time type) written as RFC 3339 or as milliseconds since the epoch. A type ending in
/// `!` is NOT NULL; otherwise the column is nullable and the cell `.` is null. A string in
/// double quotes keeps `|`, `.` and outer spaces (`\"` and `\\` inside). A malformed table
/// panics with the line and cell, since this is for tests.
pub fn from_pretty(table: &str) -> RecordBatch {
    let mut lines = table
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().expect("from_pretty: the table has no header");
    let fields: Vec<Field> = cells(header)
        .iter()
        .map(|c| {
            let (name, ty) = c.text.split_once(':').unwrap_or_else(|| {
                panic!("from_pretty: header cell {:?} is not name:type", c.text)
            });
            let (ty, nullable) = match ty.strip_suffix('!') {
                Some(t) => (t, false),
                None => (ty, true),
            };
            Field::new(name.trim(), data_type(ty.trim()), nullable)
        })
        .collect();
    let mut columns: Vec<Column> = fields.iter().map(|f| Column::new(f.data_type())).collect();
    for (n, line) in lines {
        let row = cells(line);
        assert_eq!(
            row.len(),
            fields.len(),
            "from_pretty: line {} has {} cells, the header {}",
            n + 1,
            row.len(),
            fields.len()
        );
        for ((col, cell), field) in columns.iter_mut().zip(&row).zip(&fields) {
            if !cell.quoted && cell.text == "." {
                assert!(
                    field.is_nullable(),
                    "from_pretty: line {}: {} is NOT NULL",
                    n + 1,
                    field.name()
                );
                col.null();
            } else {
                col.push(&cell.text).unwrap_or_else(|why| {
                    panic!(
                        "from_pretty: line {}, column {}: {:?} {why}",
                        n + 1,
                        field.name(),
                        cell.text
                    )
                });
            }
        }
    }
    let arrays: Vec<ArrayRef> = columns.into_iter().map(Column::finish).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .unwrap_or_else(|e| panic!("from_pretty: {e}"))
}

fn data_type(ty: &str) -> DataType {
    match ty {
        "i64" => DataType::Int64,
        "i32" => DataType::Int32,
        "u64" => DataType::UInt64,
        "u32" => DataType::UInt32,
        "u16" => DataType::UInt16,
        "f64" => DataType::Float64,
        "bool" => DataType::Boolean,
        "str" => DataType::Utf8,
        "ts" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        other => {
            panic!("from_pretty: unknown type {other:?} (i64 i32 u64 u32 u16 f64 bool str ts)")
        }
    }
}

struct Cell {
    text: String,
    quoted: bool,
}

/// Splits a line at `|` outside double quotes; unquoted cells are trimmed.
fn cells(line: &str) -> Vec<Cell> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut text = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => text.extend(chars.next()),
                    Some(c) => text.push(c),
                    None => panic!("from_pretty: unclosed quote in {line:?}"),
                }
            }
            while chars.peek().is_some_and(|c| *c != '|') {
                let c = chars.next().unwrap_or(' ');
                assert!(
                    c.is_whitespace(),
                    "from_pretty: text after a quote in {line:?}"
                );
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != '|') {
                text.push(c);
            }
            text.truncate(text.trim_end().len());
        }
        out.push(Cell { text, quoted });
        if chars.next().is_none() {
            return out;
        }
    }
}

enum Column {
    I64(Int64Builder),
    I32(Int32Builder),
    U64(UInt64Builder),
    U32(UInt32Builder),
    U16(UInt16Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Ts(TimestampMillisecondBuilder),
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| "is not a number of the column's type".to_string())
}

impl Column {
    fn new(t: &DataType) -> Column {
        match t {
            DataType::Int64 => Column::I64(Int64Builder::new()),
            DataType::Int32 => Column::I32(Int32Builder::new()),
            DataType::UInt64 => Column::U64(UInt64Builder::new()),
            DataType::UInt32 => Column::U32(UInt32Builder::new()),
            DataType::UInt16 => Column::U16(UInt16Builder::new()),
            DataType::Float64 => Column::F64(Float64Builder::new()),
            DataType::Boolean => Column::Bool(BooleanBuilder::new()),
            DataType::Utf8 => Column::Str(StringBuilder::new()),
            _ => Column::Ts(TimestampMillisecondBuilder::new().with_timezone("UTC")),
        }
    }

    fn push(&mut self, s: &str) -> Result<(), String> {
        match self {
            Column::I64(b) => b.append_value(num(s)?),
            Column::I32(b) => b.append_value(num(s)?),
            Column::U64(b) => b.append_value(num(s)?),
            Column::U32(b) => b.append_value(num(s)?),
            Column::U16(b) => b.append_value(num(s)?),
            Column::F64(b) => b.append_value(num(s)?),
            Column::Bool(b) => b.append_value(match s {
                "true" => true,
                "false" => false,
                _ => return Err("is not true or false".into()),
            }),
            Column::Str(b) => b.append_value(s),
            Column::Ts(b) => b.append_value(match s.parse::<i64>() {
                Ok(ms) => ms,
                Err(_) => arrow_cast::parse::string_to_timestamp_nanos(s)
                    .map_err(|e| format!("is not RFC 3339 or milliseconds: {e}"))?
                    .div_euclid(1_000_000),
            }),
        }
        Ok(())
    }

    fn null(&mut self) {
        match self {
            Column::I64(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::U64(b) => b.append_null(),
            Column::U32(b) => b.append_null(),
            Column::U16(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Bool(b) => b.append_null(),
            Column::Str(b) => b.append_null(),
            Column::Ts(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::I64(mut b) => Arc::new(b.finish()),
            Column::I32(mut b) => Arc::new(b.finish()),
            Column::U64(mut b) => Arc::new(b.finish()),
            Column::U32(mut b) => Arc::new(b.finish()),
            Column::U16(mut b) => Arc::new(b.finish()),
            Column::F64(mut b) => Arc::new(b.finish()),
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::Str(mut b) => Arc::new(b.finish()),
            Column::Ts(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, UInt64Type};
    use arrow_array::Array;

    use super::*;

    #[test]
    fn types_nulls_quotes_and_times() {
        let b = from_pretty(
            r#"
            # a comment, then the header
            ts:ts!               | k:str   | n:u64 | ok:bool | x:f64
            1970-01-01T00:00:01Z | a       | 1     | true    | 0.5
            2000                 | "b | ." | .     | false   | -1e3
            -1                   | "."     | 18446744073709551615 | . | .
            "#,
        );
        assert_eq!(b.num_rows(), 3);
        assert!(!b.schema().field(0).is_nullable());
        assert!(b.schema().field(1).is_nullable());
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.values().to_vec(), [1000, 2000, -1]);
        assert_eq!(
            b.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let k = b.column(1).as_string::<i32>();
        assert_eq!(
            k.iter().collect::<Vec<_>>(),
            [Some("a"), Some("b | ."), Some(".")]
        );
        let n = b.column(2).as_primitive::<UInt64Type>();
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            [Some(1), None, Some(u64::MAX)]
        );
        assert_eq!(b.column(3).null_count(), 1);
        assert_eq!(b.column(4).null_count(), 1);
    }

    #[test]
    #[should_panic(expected = "line 3 has 1 cells, the header 2")]
    fn a_short_row_is_refused() {
        from_pretty("a:i64 | b:i64\n1 | 2\n3");
    }

    #[test]
    #[should_panic(expected = "column a: \"x\" is not a number")]
    fn a_bad_number_is_refused() {
        from_pretty("a:i64\nx");
    }

    #[test]
    #[should_panic(expected = "line 2: a is NOT NULL")]
    fn a_null_in_a_not_null_column_is_refused() {
        from_pretty("a:i64!\n.");
    }
}
