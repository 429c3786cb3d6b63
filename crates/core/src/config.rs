//! Config value types shared by every component: durations (`"5m"`) and sizes (`"128MiB"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{format_duration_ms, parse_duration_ms};

/// A duration written as `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` or `"1m30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration {
    /// The duration in milliseconds.
    pub ms: i64,
}

impl Duration {
    /// A duration of `ms` milliseconds.
    pub const fn from_ms(ms: i64) -> Self {
        Duration { ms }
    }

    /// This duration as a [`std::time::Duration`].
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ms.max(0) as u64)
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_duration_ms(self.ms))
    }
}

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration_ms(s)
            .map(Duration::from_ms)
            .map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration_ms(&s)
            .map(Duration::from_ms)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A size in bytes written as `"512KiB"`, `"128MiB"`, `"1GiB"`, `"64kB"` or `"4096B"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize {
    /// The size in bytes.
    pub bytes: u64,
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        ByteSize { bytes }
    }
}

/// Parses `"128MiB"`-style sizes; binary (KiB, MiB, GiB) and decimal (kB, MB, GB) units.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("expected a size like \"128MiB\" or \"64KiB\", got {s:?}");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if split == 0 {
        return Err(bad());
    }
    let n: u64 = t[..split].parse().map_err(|_| bad())?;
    let mult: u64 = match t[split..].trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_byte_size(&s)
            .map(ByteSize::from_bytes)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}B", self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_byte_size("64kB"), Ok(64_000));
        assert!(parse_byte_size("128")
            .unwrap_err()
            .contains("expected a size"));
        assert!(parse_byte_size("MiB").is_err());
    }
}
