//! Single values taken out of batches: group keys, and cells that sinks print.

use std::cmp::Ordering;
use std::fmt::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};

use crate::time::format_rfc3339_ms;

/// One value of a supported column type.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any signed integer type.
    Int(i64),
    /// Any unsigned integer type.
    UInt(u64),
    /// Any float type.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A timestamp in UTC milliseconds.
    Time(i64),
}

/// Whether weir's operators and sinks handle columns of this type.
pub fn is_supported(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::Timestamp(TimeUnit::Millisecond, _)
    )
}

impl Scalar {
    /// The value at `row` of `array`.
    ///
    /// # Panics
    /// If the array's type is not [supported](is_supported); schemas are checked when a
    /// pipeline is built, so this is a broken invariant.
    pub fn from_array(array: &dyn Array, row: usize) -> Scalar {
        if array.is_null(row) {
            return Scalar::Null;
        }
        match array.data_type() {
            DataType::Boolean => Scalar::Bool(array.as_boolean().value(row)),
            DataType::Int8 => Scalar::Int(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => Scalar::Int(array.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => Scalar::Int(array.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => Scalar::Int(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => Scalar::UInt(array.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => Scalar::UInt(array.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => Scalar::UInt(array.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => Scalar::UInt(array.as_primitive::<UInt64Type>().value(row)),
            DataType::Float32 => {
                Scalar::Float(array.as_primitive::<Float32Type>().value(row).into())
            }
            DataType::Float64 => Scalar::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => Scalar::Str(array.as_string::<i32>().value(row).to_owned()),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                Scalar::Time(array.as_primitive::<TimestampMillisecondType>().value(row))
            }
            other => panic!("unsupported column type {other} reached Scalar::from_array"),
        }
    }

    /// Appends the value as a JSON value to `out`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Scalar::Null => out.push_str("null"),
            Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Scalar::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Scalar::UInt(v) => {
                let _ = write!(out, "{v}");
            }
            Scalar::Float(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            Scalar::Float(_) => out.push_str("null"),
            Scalar::Str(s) => write_json_str(s, out),
            Scalar::Time(ms) => write_json_str(&format_rfc3339_ms(*ms), out),
        }
    }

    /// The value as text for tables and CSV (NULL is empty).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Null => String::new(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(v) => v.to_string(),
            Scalar::UInt(v) => v.to_string(),
            Scalar::Float(v) => v.to_string(),
            Scalar::Str(s) => s.clone(),
            Scalar::Time(ms) => format_rfc3339_ms(*ms),
        }
    }

    /// A total order: NULL first, then by value; values of different kinds by kind.
    pub fn total_cmp(&self, other: &Scalar) -> Ordering {
        use Scalar::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Less,
            (_, Null) => Ordering::Greater,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) | (Time(a), Time(b)) => a.cmp(b),
            (UInt(a), UInt(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Int(_) => 2,
            Scalar::UInt(_) => 3,
            Scalar::Float(_) => 4,
            Scalar::Str(_) => 5,
            Scalar::Time(_) => 6,
        }
    }
}

/// Appends `s` as a JSON string literal to `out`.
pub fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping() {
        let mut s = String::new();
        Scalar::Str("a\"b\\c\n\u{1}".into()).write_json(&mut s);
        assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    }
}
