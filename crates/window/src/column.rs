//! Typed access to the columns an aggregation reads, resolved once per batch so the per-row
//! loop does not look at Arrow types: key encoding, numeric inputs, and decoding keys back.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, PrimitiveArray, StringArray};
use arrow_schema::{DataType, TimeUnit};
use weir_core::value::Scalar;

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

    /// The value at `i` as a float.
    #[inline]
    pub fn float(&self, i: usize) -> Option<f64> {
        match self {
            Col::F32(a) => (!a.is_null(i)).then(|| a.value(i).into()),
            Col::F64(a) => (!a.is_null(i)).then(|| a.value(i)),
            _ => self.int(i).map(|v| v as f64),
        }
    }

    /// Appends an encoding of row `i` to `buf`: a null byte, then fixed-width little-endian
    /// numbers or a length-prefixed string. Equal values give equal bytes.
    #[inline]
    pub fn encode(&self, i: usize, buf: &mut Vec<u8>) {
        if self.is_null(i) {
            buf.push(0);
            return;
        }
        buf.push(1);
        match self {
            Col::Str(a) => {
                let s = a.value(i).as_bytes();
                buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
                buf.extend_from_slice(s);
            }
            Col::F32(a) => buf.extend_from_slice(&f64::from(a.value(i)).to_bits().to_le_bytes()),
            Col::F64(a) => buf.extend_from_slice(&a.value(i).to_bits().to_le_bytes()),
            Col::Bool(a) => buf.push(u8::from(a.value(i))),
            _ => buf.extend_from_slice(&self.int(i).unwrap_or(0).to_le_bytes()),
        }
    }
}

/// Decodes one value encoded by [`Col::encode`] for a column of type `dt`, advancing `pos`.
pub fn decode(dt: &DataType, buf: &[u8], pos: &mut usize) -> Scalar {
    let tag = buf[*pos];
    *pos += 1;
    if tag == 0 {
        return Scalar::Null;
    }
    let mut take8 = || {
        let v = u64::from_le_bytes(buf[*pos..*pos + 8].try_into().expect("8 bytes"));
        *pos += 8;
        v
    };
    match dt {
        DataType::Utf8 => {
            let n = u32::from_le_bytes(buf[*pos..*pos + 4].try_into().expect("4 bytes")) as usize;
            *pos += 4;
            let s = String::from_utf8_lossy(&buf[*pos..*pos + n]).into_owned();
            *pos += n;
            Scalar::Str(s)
        }
        DataType::Boolean => {
            let b = buf[*pos] != 0;
            *pos += 1;
            Scalar::Bool(b)
        }
        DataType::Float32 | DataType::Float64 => Scalar::Float(f64::from_bits(take8())),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Scalar::UInt(take8())
        }
        DataType::Timestamp(..) => Scalar::Time(take8() as i64),
        _ => Scalar::Int(take8() as i64),
    }
}

/// Builds an array of type `dt` from scalars (produced by [`decode`] for that type).
pub fn array_from_scalars(dt: &DataType, values: &[Scalar]) -> ArrayRef {
    use arrow_array::builder::*;
    macro_rules! prim {
        ($b:ty, $variant:ident, $t:ty) => {{
            let mut b = <$b>::with_capacity(values.len());
            for v in values {
                match v {
                    Scalar::$variant(x) => b.append_value(*x as $t),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match dt {
        DataType::Int8 => prim!(Int8Builder, Int, i8),
        DataType::Int16 => prim!(Int16Builder, Int, i16),
        DataType::Int32 => prim!(Int32Builder, Int, i32),
        DataType::Int64 => prim!(Int64Builder, Int, i64),
        DataType::UInt8 => prim!(UInt8Builder, UInt, u8),
        DataType::UInt16 => prim!(UInt16Builder, UInt, u16),
        DataType::UInt32 => prim!(UInt32Builder, UInt, u32),
        DataType::UInt64 => prim!(UInt64Builder, UInt, u64),
        DataType::Float32 => prim!(Float32Builder, Float, f32),
        DataType::Float64 => prim!(Float64Builder, Float, f64),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            let mut b = TimestampMillisecondBuilder::with_capacity(values.len());
            for v in values {
                match v {
                    Scalar::Time(x) => b.append_value(*x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish().with_timezone_opt(tz.clone())) as ArrayRef
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                match v {
                    Scalar::Bool(x) => b.append_value(*x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Scalar::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}
