//! Event time: UTC milliseconds since the Unix epoch, calendar arithmetic and durations.
//!
//! weir keeps time as `i64` milliseconds everywhere (the Arrow type
//! `Timestamp(Millisecond, "UTC")`). The calendar functions are Howard Hinnant's
//! `days_from_civil`/`civil_from_days`, exact for the proleptic Gregorian calendar.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// The smallest event time; the watermark of a stage that has seen nothing.
pub const MIN_TIME: Millis = i64::MIN;
/// The largest event time; the watermark sent at the end of a finite input, which closes
/// every window.
pub const MAX_TIME: Millis = i64::MAX;

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12, `day` 1..=31).
#[inline]
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number since 1970-01-01.
#[inline]
pub const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Number of days in `month` of `year`.
#[inline]
pub const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Formats UTC milliseconds as RFC 3339, with a fraction only when it is not zero:
/// `1995-07-01T04:00:01Z`, `1995-07-01T04:00:01.250Z`.
pub fn format_rfc3339_ms(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:03}Z")
    }
}

/// Appends [`format_rfc3339_ms`] of `ms` to `out` without allocating.
pub fn write_rfc3339_ms(ms: Millis, out: &mut String) {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        out.push_str(&format_rfc3339_ms(ms));
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            b[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, i64::from(m), 2);
    put(8, i64::from(d), 2);
    put(11, sod / 3600, 2);
    put(14, sod / 60 % 60, 2);
    put(17, sod % 60, 2);
    let text = if frac == 0 {
        b[19] = b'Z';
        &b[..20]
    } else {
        put(20, frac, 3);
        &b[..]
    };
    out.push_str(std::str::from_utf8(text).expect("ASCII digits"));
}

/// Parses an RFC 3339 / ISO 8601 timestamp (`2026-11-21T14:05:00Z`,
/// `2026-11-21 14:05:00.123+01:00`, no zone = UTC) into UTC milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        let mut v = 0i64;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || hh > 23 || mm > 59 {
        return None;
    }
    if ss > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            frac_ms *= 10;
        }
    }
    let offset_s = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset_s;
    Some(secs * 1000 + frac_ms)
}

/// Parses a duration such as `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` or a compound
/// `"1m30s"` into milliseconds. A bare number is refused: units are never guessed.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("expected a duration like \"5m\", got an empty string".into());
    }
    let bad = || format!("expected a duration like \"5m\", \"30s\" or \"250ms\", got {s:?}");
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad());
        }
        let n: i64 = t[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &t[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats milliseconds as the shortest duration string [`parse_duration_ms`] accepts.
pub fn format_duration_ms(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (size, name) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{}", rest / size, name));
            rest %= size;
        }
    }
    out
}

/// Wall-clock time now, in UTC milliseconds.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        // 1995-07-01T00:00:01-04:00, the first NASA log line.
        let secs = days_from_civil(1995, 7, 1) * 86_400 + 1 + 4 * 3600;
        assert_eq!(secs, 804_571_201);
        assert_eq!(format_rfc3339_ms(804_571_201_000), "1995-07-01T04:00:01Z");
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_parse() {
        assert_eq!(
            parse_rfc3339_ms("1995-07-01T04:00:01Z"),
            Some(804_571_201_000)
        );
        assert_eq!(
            parse_rfc3339_ms("1995-07-01T00:00:01-04:00"),
            Some(804_571_201_000)
        );
        assert_eq!(
            parse_rfc3339_ms("1995-07-01 04:00:01.5"),
            Some(804_571_201_500)
        );
        assert_eq!(parse_rfc3339_ms("1995-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("1995-07-01T04:00:01Zjunk"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("5")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(parse_duration_ms("5 minutes").is_err());
        assert!(parse_duration_ms("-5s").is_err());
        assert_eq!(format_duration_ms(90_000), "1m30s");
    }

    proptest! {
        #[test]
        fn civil_roundtrip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn write_matches_format(ms in -10_000_000_000_000i64..10_000_000_000_000) {
            let mut s = String::new();
            write_rfc3339_ms(ms, &mut s);
            prop_assert_eq!(s, format_rfc3339_ms(ms));
        }

        #[test]
        fn rfc3339_roundtrip(ms in -10_000_000_000_000i64..10_000_000_000_000) {
            prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }

        #[test]
        fn duration_roundtrip(ms in 0i64..10_000_000_000) {
            prop_assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
    }
}
