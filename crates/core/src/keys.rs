//! Group keys and distinct values as bytes: an order-preserving encoding of column values
//! (so keys sort without decoding), its decoding, and arrays built back from decoded values.
//! Windows, alerts and every keyed operator share it.

use std::sync::Arc;

use crate::value::{Col, Scalar};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, TimeUnit};

/// Encodes column values as bytes.
pub trait Encode {
    /// Appends an order-preserving encoding of row `i` to `buf`.
    fn encode(&self, i: usize, buf: &mut Vec<u8>);
}

impl Encode for Col<'_> {
    /// Appends an order-preserving encoding of row `i` to `buf`: equal values give equal
    /// bytes, and comparing encodings as bytes orders values as their type does (NULL first),
    /// so keys can be sorted without decoding them. Numbers are big-endian with the sign bit
    /// flipped; strings end with `00 00`, a zero byte inside being written `00 FF`.
    #[inline]
    fn encode(&self, i: usize, buf: &mut Vec<u8>) {
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

/// Key groups of every keyed operator. A key belongs to one group for good (by its hash); a
/// checkpoint keeps each key with its hash, so state taken with N instances can be handed to M:
/// every instance owns a contiguous range of groups. 128 groups spread keys evenly over up to
/// a few dozen instances (Flink's default maximum parallelism is 128 too).
pub const KEY_GROUPS: u32 = 128;

/// The hash of an encoded key (XXH64, seed 0): the same on every machine, run and weir version,
/// because it decides which instance owns a key and checkpoints depend on it.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    twox_hash::XxHash64::oneshot(0, key)
}

/// The key group of a key hash.
#[inline]
pub fn key_group(hash: u64) -> u32 {
    (hash % u64::from(KEY_GROUPS)) as u32
}

/// Which of `instances` instances owns the key with hash `hash`: instance `i` owns the groups
/// `[i·G/n, (i+1)·G/n)`, so rescaling moves whole groups.
#[inline]
pub fn owner(hash: u64, instances: usize) -> usize {
    key_group(hash) as usize * instances / KEY_GROUPS as usize
}

/// Appends the key hash of every row to `out`: the hash of the row's values in `keys`, encoded
/// one after the other as a keyed operator encodes its key. Runs of equal keys are hashed once.
pub fn hash_rows(keys: &[Col<'_>], rows: usize, out: &mut Vec<u64>) {
    out.reserve(rows);
    if let [k] = keys {
        if !matches!(k, Col::Str(_) | Col::F32(_) | Col::F64(_)) {
            return hash_int_rows(k, rows, out);
        }
    }
    let (mut buf, mut last) = (Vec::new(), Vec::new());
    let mut last_hash = None;
    for row in 0..rows {
        buf.clear();
        for k in keys {
            k.encode(row, &mut buf);
        }
        let h = match last_hash {
            Some(h) if buf == last => h,
            _ => {
                let h = key_hash(&buf);
                std::mem::swap(&mut buf, &mut last);
                last_hash = Some(h);
                h
            }
        };
        out.push(h);
    }
}

/// [`hash_rows`] for one integer-like key column (integers, timestamps, booleans): a small
/// direct-mapped cache of value → hash, so the few values of a column like an HTTP status
/// are encoded and hashed once per batch rather than once per row.
fn hash_int_rows(k: &Col<'_>, rows: usize, out: &mut Vec<u64>) {
    const SLOTS: usize = 64;
    let mut cache: [Option<(Option<i64>, u64)>; SLOTS] = [None; SLOTS];
    let mut buf = Vec::with_capacity(9);
    for row in 0..rows {
        let v = k.int(row);
        let slot = v.map_or(0, |v| v as usize % SLOTS);
        let h = match cache[slot] {
            Some((cached, h)) if cached == v => h,
            _ => {
                buf.clear();
                k.encode(row, &mut buf);
                let h = key_hash(&buf);
                cache[slot] = Some((v, h));
                h
            }
        };
        out.push(h);
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
        Encode::encode(&Col::new(a).unwrap(), i, &mut b);
        b
    }

    #[test]
    fn key_hashes_are_stable_and_groups_split_into_ranges() {
        // Checkpoints depend on these values: they must never change.
        assert_eq!(key_hash(b""), 0xef46_db37_51d8_e999);
        assert_eq!(key_hash(b"abc"), 0x44bc_2cf5_ad77_0999);
        for n in 1..=8 {
            let owners: Vec<usize> = (0..u64::from(KEY_GROUPS)).map(|g| owner(g, n)).collect();
            assert!(owners.windows(2).all(|w| w[0] <= w[1]), "contiguous ranges");
            assert_eq!((owners[0], owners[owners.len() - 1]), (0, n - 1));
        }
    }

    proptest! {
        /// Every row's hash is the hash of its encoded key, whichever path computed it (the
        /// cache of an integer column, runs of equal keys), with few values, nulls and
        /// repeats.
        #[test]
        fn row_hashes_are_the_hashes_of_the_encoded_keys(
            ints in proptest::collection::vec(proptest::option::of(-70i64..70), 0..200),
            strs in proptest::collection::vec("[ab]{0,2}", 200),
        ) {
            let n = ints.len();
            let int: ArrayRef = Arc::new(Int64Array::from(ints.clone()));
            let uint: ArrayRef = Arc::new(UInt64Array::from_iter(
                ints.iter().map(|v| v.map(|v| (v as u64).wrapping_mul(1 << 58))),
            ));
            let st: ArrayRef = Arc::new(StringArray::from(strs[..n].to_vec()));
            for cols in [vec![&int], vec![&uint], vec![&st], vec![&int, &st]] {
                let keys: Vec<Col<'_>> = cols.iter().map(|a| Col::new(a).unwrap()).collect();
                let mut got = Vec::new();
                hash_rows(&keys, n, &mut got);
                let want: Vec<u64> = (0..n)
                    .map(|row| {
                        let mut buf = Vec::new();
                        for k in &keys {
                            k.encode(row, &mut buf);
                        }
                        key_hash(&buf)
                    })
                    .collect();
                prop_assert_eq!(got, want);
            }
        }

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
