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

    /// Appends an order-preserving encoding of row `i` to `buf`: equal values give equal
    /// bytes, and comparing encodings as bytes orders values as their type does (NULL first),
    /// so keys can be sorted without decoding them. Numbers are big-endian with the sign bit
    /// flipped; strings end with `00 00`, a zero byte inside being written `00 FF`.
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
                if memchr_zero(s) {
                    for &b in s {
                        buf.push(b);
                        if b == 0 {
                            buf.push(0xFF);
                        }
                    }
                } else {
                    buf.extend_from_slice(s);
                }
                buf.extend_from_slice(&[0, 0]);
            }
            Col::F32(_) | Col::F64(_) => {
                let bits = self.float(i).unwrap_or(0.0).to_bits();
                let ordered = if bits >> 63 == 1 {
                    !bits
                } else {
                    bits ^ (1 << 63)
                };
                buf.extend_from_slice(&ordered.to_be_bytes());
            }
            Col::Bool(a) => buf.push(u8::from(a.value(i))),
            Col::U8(_) | Col::U16(_) | Col::U32(_) | Col::U64(_) => {
                let v = match self {
                    Col::U64(a) => a.value(i),
                    _ => self.int(i).unwrap_or(0) as u64,
                };
                buf.extend_from_slice(&v.to_be_bytes());
            }
            _ => buf
                .extend_from_slice(&((self.int(i).unwrap_or(0) as u64) ^ (1 << 63)).to_be_bytes()),
        }
    }
}

#[inline]
fn memchr_zero(s: &[u8]) -> bool {
    s.contains(&0)
}

/// Decodes one value encoded by [`Col::encode`] for a column of type `dt`, advancing `pos`.
pub fn decode(dt: &DataType, buf: &[u8], pos: &mut usize) -> Scalar {
    let tag = buf[*pos];
    *pos += 1;
    if tag == 0 {
        return Scalar::Null;
    }
    let mut take8 = || {
        let v = u64::from_be_bytes(buf[*pos..*pos + 8].try_into().expect("8 bytes"));
        *pos += 8;
        v
    };
    match dt {
        DataType::Utf8 => {
            let mut bytes = Vec::new();
            loop {
                let b = buf[*pos];
                *pos += 1;
                if b == 0 {
                    let next = buf[*pos];
                    *pos += 1;
                    if next == 0 {
                        break;
                    }
                }
                bytes.push(b);
            }
            Scalar::Str(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            )
        }
        DataType::Boolean => {
            let b = buf[*pos] != 0;
            *pos += 1;
            Scalar::Bool(b)
        }
        DataType::Float32 | DataType::Float64 => {
            let o = take8();
            let bits = if o >> 63 == 1 { o ^ (1 << 63) } else { !o };
            Scalar::Float(f64::from_bits(bits))
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Scalar::UInt(take8())
        }
        DataType::Timestamp(..) => Scalar::Time((take8() ^ (1 << 63)) as i64),
        _ => Scalar::Int((take8() ^ (1 << 63)) as i64),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray, UInt64Array};
    use proptest::prelude::*;

    use super::*;

    fn enc(a: &ArrayRef, i: usize) -> Vec<u8> {
        let mut b = Vec::new();
        Col::new(a).unwrap().encode(i, &mut b);
        b
    }

    proptest! {
        /// Encodings sort like the values and decode back to them.
        #[test]
        fn encoding_preserves_order_and_roundtrips(
            ints in proptest::collection::vec(proptest::option::of(any::<i64>()), 2),
            uints in proptest::collection::vec(any::<u64>(), 2),
            floats in proptest::collection::vec(-1e12f64..1e12, 2),
            strs in proptest::collection::vec("[a\\x00b]{0,4}", 2),
        ) {
            let cases: Vec<(ArrayRef, Vec<Scalar>)> = vec![
                (Arc::new(Int64Array::from(ints.clone())), ints.iter().map(|v| v.map_or(Scalar::Null, Scalar::Int)).collect()),
                (Arc::new(UInt64Array::from(uints.clone())), uints.iter().map(|&v| Scalar::UInt(v)).collect()),
                (Arc::new(Float64Array::from(floats.clone())), floats.iter().map(|&v| Scalar::Float(v)).collect()),
                (Arc::new(StringArray::from(strs.clone())), strs.iter().map(|v| Scalar::Str(v.clone())).collect()),
            ];
            for (array, values) in cases {
                let (a, b) = (enc(&array, 0), enc(&array, 1));
                prop_assert_eq!(a.cmp(&b), values[0].total_cmp(&values[1]), "{:?}", values);
                let mut pos = 0;
                prop_assert_eq!(&decode(array.data_type(), &a, &mut pos), &values[0]);
                prop_assert_eq!(pos, a.len());
            }
        }
    }
}
