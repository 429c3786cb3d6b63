//! Single values taken out of batches: group keys, and cells that sinks print.

use std::cmp::Ordering;
use std::fmt::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, PrimitiveArray, StringArray};
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
        match Col::from_dyn(array) {
            Some(c) => c.scalar(row),
            None => panic!(
                "unsupported column type {} reached Scalar::from_array",
                array.data_type()
            ),
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
            // JSON has no NaN or infinity; as null they would be one value with a real null.
            Scalar::Float(v) => write_json_str(non_finite(*v), out),
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
            Scalar::Float(v) if v.is_finite() => v.to_string(),
            Scalar::Float(v) => non_finite(*v).to_string(),
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

/// A column of one batch, downcast.
pub enum Col<'a> {
    /// Signed integers of any width.
    I8(&'a PrimitiveArray<Int8Type>),
    /// 16-bit.
    I16(&'a PrimitiveArray<Int16Type>),
    /// 32-bit.
    I32(&'a PrimitiveArray<Int32Type>),
    /// 64-bit.
    I64(&'a PrimitiveArray<Int64Type>),
    /// Unsigned 8-bit.
    U8(&'a PrimitiveArray<UInt8Type>),
    /// Unsigned 16-bit.
    U16(&'a PrimitiveArray<UInt16Type>),
    /// Unsigned 32-bit.
    U32(&'a PrimitiveArray<UInt32Type>),
    /// Unsigned 64-bit.
    U64(&'a PrimitiveArray<UInt64Type>),
    /// 32-bit float.
    F32(&'a PrimitiveArray<Float32Type>),
    /// 64-bit float.
    F64(&'a PrimitiveArray<Float64Type>),
    /// Timestamps (ms).
    Ts(&'a PrimitiveArray<TimestampMillisecondType>),
    /// Booleans.
    Bool(&'a arrow_array::BooleanArray),
    /// Strings.
    Str(&'a StringArray),
}

impl<'a> Col<'a> {
    /// Downcasts `a`; `None` for an unsupported type (checked when the pipeline is built).
    pub fn new(a: &'a ArrayRef) -> Option<Col<'a>> {
        Self::from_dyn(a.as_ref())
    }

    /// Downcasts `a`; `None` for an unsupported type.
    pub fn from_dyn(a: &'a dyn Array) -> Option<Col<'a>> {
        Some(match a.data_type() {
            DataType::Int8 => Col::I8(a.as_primitive()),
            DataType::Int16 => Col::I16(a.as_primitive()),
            DataType::Int32 => Col::I32(a.as_primitive()),
            DataType::Int64 => Col::I64(a.as_primitive()),
            DataType::UInt8 => Col::U8(a.as_primitive()),
            DataType::UInt16 => Col::U16(a.as_primitive()),
            DataType::UInt32 => Col::U32(a.as_primitive()),
            DataType::UInt64 => Col::U64(a.as_primitive()),
            DataType::Float32 => Col::F32(a.as_primitive()),
            DataType::Float64 => Col::F64(a.as_primitive()),
            DataType::Timestamp(TimeUnit::Millisecond, _) => Col::Ts(a.as_primitive()),
            DataType::Boolean => Col::Bool(a.as_boolean()),
            DataType::Utf8 => Col::Str(a.as_string::<i32>()),
            _ => return None,
        })
    }

    /// The value at `i` as a [`Scalar`].
    pub fn scalar(&self, i: usize) -> Scalar {
        if self.is_null(i) {
            return Scalar::Null;
        }
        match self {
            Col::U8(_) | Col::U16(_) | Col::U32(_) => Scalar::UInt(self.int(i).unwrap_or(0) as u64),
            Col::U64(a) => Scalar::UInt(a.value(i)),
            Col::F32(_) | Col::F64(_) => Scalar::Float(self.float(i).unwrap_or(f64::NAN)),
            Col::Ts(a) => Scalar::Time(a.value(i)),
            Col::Bool(a) => Scalar::Bool(a.value(i)),
            Col::Str(a) => Scalar::Str(a.value(i).to_owned()),
            _ => Scalar::Int(self.int(i).unwrap_or(0)),
        }
    }

    /// Appends the value at `i` as JSON to `out`, without intermediate allocations (the hot
    /// path of every JSON sink).
    #[inline]
    pub fn write_json(&self, i: usize, out: &mut String) {
        if self.is_null(i) {
            out.push_str("null");
            return;
        }
        match self {
            Col::Str(a) => write_json_str(a.value(i), out),
            Col::Ts(a) => {
                out.push('"');
                crate::time::write_rfc3339_ms(a.value(i), out);
                out.push('"');
            }
            Col::U64(a) => out.push_str(itoa::Buffer::new().format(a.value(i))),
            Col::F32(_) | Col::F64(_) | Col::Bool(_) => self.scalar(i).write_json(out),
            _ => out.push_str(itoa::Buffer::new().format(self.int(i).unwrap_or(0))),
        }
    }

    /// The column's Arrow type.
    pub fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    fn array(&self) -> &dyn Array {
        match self {
            Col::I8(a) => *a,
            Col::I16(a) => *a,
            Col::I32(a) => *a,
            Col::I64(a) => *a,
            Col::U8(a) => *a,
            Col::U16(a) => *a,
            Col::U32(a) => *a,
            Col::U64(a) => *a,
            Col::F32(a) => *a,
            Col::F64(a) => *a,
            Col::Ts(a) => *a,
            Col::Bool(a) => *a,
            Col::Str(a) => *a,
        }
    }

    /// Whether row `i` is null.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.array().is_null(i)
    }

    /// The value at `i` as an integer (floats are not integers: `None`).
    #[inline]
    pub fn int(&self, i: usize) -> Option<i64> {
        if self.is_null(i) {
            return None;
        }
        Some(match self {
            Col::I8(a) => a.value(i).into(),
            Col::I16(a) => a.value(i).into(),
            Col::I32(a) => a.value(i).into(),
            Col::I64(a) => a.value(i),
            Col::U8(a) => a.value(i).into(),
            Col::U16(a) => a.value(i).into(),
            Col::U32(a) => a.value(i).into(),
            Col::U64(a) => a.value(i) as i64,
            Col::Ts(a) => a.value(i),
            Col::Bool(a) => a.value(i).into(),
            _ => return None,
        })
    }

    /// The value at `i` of an unsigned integer column (`None` for null or another type).
    #[inline]
    pub fn uint(&self, i: usize) -> Option<u64> {
        if self.is_null(i) {
            return None;
        }
        Some(match self {
            Col::U8(a) => a.value(i).into(),
            Col::U16(a) => a.value(i).into(),
            Col::U32(a) => a.value(i).into(),
            Col::U64(a) => a.value(i),
            _ => return None,
        })
    }

    /// The value at `i` as a float.
    #[inline]
    pub fn float(&self, i: usize) -> Option<f64> {
        match self {
            Col::F32(a) => (!a.is_null(i)).then(|| a.value(i).into()),
            Col::F64(a) => (!a.is_null(i)).then(|| a.value(i)),
            Col::U64(a) => (!a.is_null(i)).then(|| a.value(i) as f64),
            _ => self.int(i).map(|v| v as f64),
        }
    }
}

/// How a float that is not finite is written: `NaN`, `Infinity`, `-Infinity` (the spellings
/// of JavaScript, Python's `json` and PostgreSQL).
pub fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// The index of field `name` in `schema`, if it exists and has a supported type; otherwise
/// pushes a config error at key path `at` (naming the fields there are) and returns `None`.
pub fn find_field(
    schema: &arrow_schema::Schema,
    name: &str,
    at: String,
    errors: &mut Vec<crate::Error>,
) -> Option<usize> {
    match schema.index_of(name) {
        Ok(i) if is_supported(schema.field(i).data_type()) => Some(i),
        Ok(i) => {
            let t = schema.field(i).data_type();
            errors.push(crate::Error::config(
                at,
                format!("field {name:?} has unsupported type {t}"),
            ));
            None
        }
        Err(_) => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let msg = format!(
                "no field {name:?} in the input; it has {}",
                names.join(", ")
            );
            errors.push(crate::Error::config(at, msg));
            None
        }
    }
}

/// [`find_field`] for an event-time field: also a config error at `at` unless the field is a
/// millisecond timestamp.
pub fn find_time_field(
    schema: &arrow_schema::Schema,
    name: &str,
    at: String,
    errors: &mut Vec<crate::Error>,
) -> Option<usize> {
    let i = find_field(schema, name, at.clone(), errors)?;
    let t = schema.field(i).data_type();
    if matches!(t, DataType::Timestamp(TimeUnit::Millisecond, _)) {
        Some(i)
    } else {
        errors.push(crate::Error::config(
            at,
            format!("field {name:?} is {t}, expected a timestamp"),
        ));
        None
    }
}

/// Appends `s` as a JSON string literal to `out`.
pub fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
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
