//! Common Log Format and Combined Log Format.
//!
//! ```text
//! host ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "METHOD PATH PROTOCOL" status bytes
//! host ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "METHOD PATH PROTOCOL" status bytes "referer" "user agent"
//! ```
//! A line is valid when its frame has this shape: fields separated by single spaces, a quoted
//! request, a three-digit status and `bytes` as digits or `-` (null). The request is whatever
//! the client sent, as real servers log it: `METHOD PATH PROTOCOL` is split into its fields,
//! an HTTP/0.9 request `"GET /path"` has a null protocol, and anything else (spaces in the
//! path, doubled spaces, `"-"`, binary junk) is split as well as it can be (method = first
//! token, protocol = last when it is `HTTP/x.y`, path = between; null with fewer than two
//! tokens) while its status and bytes are kept. This is the W1 contract the peers (Spark,
//! Flink, Bytewax) follow (`STATUS_RE` of `../shared/peers/spec.py`), so their outputs are
//! oracles for weir's. Such rows are counted as odd (summary, metrics), not dead letters, and
//! the `request` field keeps the request as sent. A quote escaped as `\"` (Apache) does not
//! end a quoted field; a line cut inside the user agent keeps what is there (also odd).
//! `ident`, `user` and `referer` are null when they are `-`. Text that is
//! not UTF-8 is kept with U+FFFD in place of the bad bytes, so no row is lost to an encoding.
//!
//! A line that is not valid goes to the dead letters with the reason. With
//! `malformed_status = 999` it also becomes a row with status 999, when a `[timestamp]` can
//! be found anywhere in it to place it in time, so error dashboards show data quality.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Int16Builder, StringBuilder, TimestampMillisecondBuilder, UInt16Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::parse::{for_each_line, ParseCounts};
use weir_core::time::days_from_civil;
use weir_core::{Error, Parser, Result};

/// Client host name or address.
pub const HOST: &str = "host";
/// RFC 1413 identity, null when `-`.
pub const IDENT: &str = "ident";
/// Authenticated user, null when `-`.
pub const USER: &str = "user";
/// Request time, UTC milliseconds.
pub const TIMESTAMP: &str = "timestamp";
/// The log line's zone offset from UTC, in minutes (`-0400` is -240).
pub const UTC_OFFSET: &str = "utc_offset";
/// Request method.
pub const METHOD: &str = "method";
/// Request path (with query string).
pub const PATH: &str = "path";
/// Request protocol, e.g. `HTTP/1.0`; null for an HTTP/0.9 request (`GET /path`).
pub const PROTOCOL: &str = "protocol";
/// HTTP status code.
pub const STATUS: &str = "status";
/// Response size in bytes, null when `-`.
pub const BYTES: &str = "bytes";
/// Referer (Combined Log Format), null when absent or `-`.
pub const REFERER: &str = "referer";
/// User agent (Combined Log Format), null when absent.
pub const USER_AGENT: &str = "user_agent";
/// The request as the client sent it, between the quotes (`GET /a HTTP/1.0`), whether or not
/// it splits into method, path and protocol.
pub const REQUEST: &str = "request";

/// All CLF fields in schema order (`request` last: it came later, and tables keep their
/// column order).
pub const FIELDS: [&str; 13] = [
    HOST, IDENT, USER, TIMESTAMP, UTC_OFFSET, METHOD, PATH, PROTOCOL, STATUS, BYTES, REFERER,
    USER_AGENT, REQUEST,
];

/// Options of the CLF parser.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClfConfig {
    /// When set, a malformed line that still has a readable `[timestamp]` becomes a row with
    /// this status (the reference job uses 999) and null request fields, besides its dead
    /// letter. Unset: malformed lines are dead letters only.
    #[serde(default)]
    pub malformed_status: Option<u16>,
}

/// The full CLF schema.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(
        FIELDS
            .iter()
            .map(|&name| match name {
                TIMESTAMP => Field::new(name, ts.clone(), false),
                UTC_OFFSET => Field::new(name, DataType::Int16, false),
                STATUS => Field::new(name, DataType::UInt16, false),
                BYTES => Field::new(name, DataType::UInt64, true),
                _ => Field::new(name, DataType::Utf8, true),
            })
            .collect::<Vec<_>>(),
    ))
}

/// One valid line, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClfRecord<'a> {
    /// Client host.
    pub host: &'a [u8],
    /// Identity (`-` kept as is).
    pub ident: &'a [u8],
    /// User (`-` kept as is).
    pub user: &'a [u8],
    /// UTC milliseconds.
    pub timestamp: i64,
    /// Zone offset in minutes.
    pub utc_offset: i16,
    /// Method; `None` when the request has fewer than two tokens.
    pub method: Option<&'a [u8]>,
    /// Path; `None` when the request has fewer than two tokens.
    pub path: Option<&'a [u8]>,
    /// Protocol, `None` for an HTTP/0.9 request (`GET /path`).
    pub protocol: Option<&'a [u8]>,
    /// Status.
    pub status: u16,
    /// Bytes, `None` for `-`.
    pub bytes: Option<u64>,
    /// Referer and user agent of a Combined Log Format line; the agent is `None` when the
    /// line ends after the referer.
    pub combined: Option<(&'a [u8], Option<&'a [u8]>)>,
    /// The request between the quotes, as sent.
    pub request: &'a [u8],
    /// The request is not `METHOD PATH [PROTOCOL]`: it is split best-effort.
    pub odd_request: bool,
    /// The referer and user agent are cut short or followed by more text.
    pub odd_tail: bool,
}

impl ClfRecord<'_> {
    /// A part did not split as the format says (the request or the referer and agent). The
    /// row's time, status and bytes are real; the odd parts are split best-effort.
    pub fn odd(&self) -> bool {
        self.odd_request || self.odd_tail
    }
}

/// Caches the start of the day of the last timestamp seen: log lines come in time order, so
/// almost every line shares the date and zone of the one before and only `HH:MM:SS` is parsed.
#[derive(Debug, Default, Clone)]
pub struct TsCache {
    key: [u8; 16],
    base_ms: i64,
    offset_min: i16,
    valid: bool,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

#[inline]
fn d2(b: &[u8]) -> Option<u32> {
    let (x, y) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (x < 10 && y < 10).then(|| u32::from(x) * 10 + u32::from(y))
}

impl TsCache {
    /// Parses `dd/Mon/yyyy:HH:MM:SS +zzzz` (exactly 26 bytes) into UTC milliseconds and the
    /// zone offset in minutes. Dates that do not exist (31 Apr) are refused.
    #[inline]
    pub fn parse(&mut self, s: &[u8]) -> Option<(i64, i16)> {
        if s.len() != 26 || s[11] != b':' || s[14] != b':' || s[17] != b':' || s[20] != b' ' {
            return None;
        }
        let hh = d2(&s[12..14])?;
        let mm = d2(&s[15..17])?;
        let ss = d2(&s[18..20])?;
        if hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        let mut key = [0u8; 16];
        key[..11].copy_from_slice(&s[..11]);
        key[11..].copy_from_slice(&s[21..26]);
        if !self.valid || key != self.key {
            self.fill(&key)?;
        }
        let secs = i64::from(hh * 3600 + mm * 60 + ss);
        Some((self.base_ms + secs * 1000, self.offset_min))
    }

    #[cold]
    fn fill(&mut self, key: &[u8; 16]) -> Option<()> {
        // key = dd/Mon/yyyy then the zone +zzzz
        if key[2] != b'/' || key[6] != b'/' {
            return None;
        }
        let day = d2(&key[0..2])?;
        let month = MONTHS.iter().position(|m| &key[3..6] == *m)? as u32 + 1;
        let year = i64::from(d2(&key[7..9])? * 100 + d2(&key[9..11])?);
        if day == 0 || day > weir_core::time::days_in_month(year, month) {
            return None;
        }
        let sign = match key[11] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (zh, zm) = (d2(&key[12..14])?, d2(&key[14..16])?);
        if zm > 59 {
            return None;
        }
        let offset_min = sign * (zh * 60 + zm) as i16;
        self.base_ms =
            days_from_civil(year, month, day) * 86_400_000 - i64::from(offset_min) * 60_000;
        self.offset_min = offset_min;
        self.key = *key;
        self.valid = true;
        Some(())
    }
}

/// The space-free token at `from` and the position after its space. A plain loop: host,
/// ident and user are a few bytes long, too short for `memchr` to pay off.
#[inline]
fn token(line: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = line.get(from..)?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    (sp > 0).then(|| (&rest[..sp], from + sp + 1))
}

/// Method, path and protocol (absent for HTTP/0.9) of a request line.
type Request<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

/// Splits a request into its space-separated tokens in one pass: up to three non-empty
/// tokens free of the other whitespace (`\t \n \v \f \r`), as the peers' `\S+` demands.
#[inline]
fn split_request(req: &[u8]) -> Option<Request<'_>> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut cuts = [0usize; 2];
    let mut n = 0;
    let mut i = 0;
    while i < req.len() {
        // Eight bytes at a time: skip words without any byte below 0x21 (SWAR; bytes of 0x80
        // and above may flag a word falsely, which only sends it down the byte loop).
        if let Some(w) = req.get(i..i + 8) {
            let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            if x.wrapping_sub(ONES * 0x21) & !x & HIGH == 0 {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(req.len());
        for (j, &b) in req[i..end].iter().enumerate() {
            if b == b' ' {
                if n == 2 {
                    return None;
                }
                cuts[n] = i + j;
                n += 1;
            } else if (0x09..=0x0d).contains(&b) {
                return None;
            }
        }
        i = end;
    }
    let (m, p, v) = match n {
        1 => (&req[..cuts[0]], &req[cuts[0] + 1..], None),
        2 => (
            &req[..cuts[0]],
            &req[cuts[0] + 1..cuts[1]],
            Some(&req[cuts[1] + 1..]),
        ),
        _ => return None,
    };
    let ok = !m.is_empty() && !p.is_empty() && v.is_none_or(|v| v.starts_with(b"HTTP/"));
    ok.then_some((m, p, v))
}

/// Method, path and protocol, each possibly absent.
pub type LenientRequest<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

/// Method, path and protocol of a request that is not three clean tokens (`GET /a b
/// HTTP/1.0`, `GET  /x HTTP/1.0`, `/path` alone, `-`, binary junk a TLS handshake leaves):
/// method = the first token, protocol = the last when it looks like `HTTP/x.y`, path = what
/// is between, trimmed; with fewer than two tokens all three are null.
#[cold]
fn lenient_request(req: &[u8]) -> LenientRequest<'_> {
    fn ws(b: &u8) -> bool {
        b.is_ascii_whitespace()
    }
    fn trim(s: &[u8]) -> &[u8] {
        let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
        let end = s.iter().rposition(|b| !ws(b)).map_or(start, |p| p + 1);
        &s[start..end.max(start)]
    }
    let req = trim(req);
    let Some(first_end) = req.iter().position(ws) else {
        return (None, None, None);
    };
    let method = &req[..first_end];
    let rest = trim(&req[first_end..]);
    let last_start = rest.iter().rposition(ws).map_or(0, |p| p + 1);
    let last = &rest[last_start..];
    let (path, protocol) = if last_start > 0 && last.starts_with(b"HTTP/") {
        (trim(&rest[..last_start]), Some(last))
    } else {
        (rest, None)
    };
    (Some(method), (!path.is_empty()).then_some(path), protocol)
}

/// Method, path and protocol of a request, and whether it split cleanly as
/// `METHOD PATH [PROTOCOL]` (else best-effort, see [`lenient_request`]).
#[inline]
pub fn split_request_lenient(req: &[u8]) -> (LenientRequest<'_>, bool) {
    match split_request(req) {
        Some((m, p, v)) => ((Some(m), Some(p), v), true),
        None => (lenient_request(req), false),
    }
}

/// Parses one line. On failure returns the reason, naming what was expected.
#[inline]
pub fn parse_line<'a>(
    line: &'a [u8],
    cache: &mut TsCache,
) -> std::result::Result<ClfRecord<'a>, &'static str> {
    if line.is_empty() {
        return Err("empty line");
    }
    let (host, i) = token(line, 0).ok_or("expected `host ident user [timestamp]`")?;
    let (ident, i) = token(line, i).ok_or("expected `ident user [timestamp]` after host")?;
    let (user, i) = token(line, i).ok_or("expected `user [timestamp]` after ident")?;
    if line.get(i) != Some(&b'[') || line.get(i + 27) != Some(&b']') {
        return Err("expected `[dd/Mon/yyyy:HH:MM:SS +zzzz]` after user");
    }
    let (timestamp, utc_offset) = cache
        .parse(&line[i + 1..i + 27])
        .ok_or("invalid timestamp, expected dd/Mon/yyyy:HH:MM:SS +zzzz")?;
    if line.get(i + 28) != Some(&b' ') || line.get(i + 29) != Some(&b'"') {
        return Err("expected a quoted request after the timestamp");
    }
    let req_start = i + 30;
    // The request ends at the first quote followed by ` ddd ` or ` ddd` at the end of line.
    let mut search = req_start;
    let (req_end, status) = loop {
        let q = memchr::memchr(b'"', &line[search..])
            .map(|p| search + p)
            .ok_or("missing closing quote of the request, or no 3-digit status after it")?;
        let after = &line[q + 1..];
        // Apache writes a quote inside the request as `\"`: that one does not end it.
        if after.len() >= 6
            && after[0] == b' '
            && after[4] == b' '
            && after[1..4].iter().all(u8::is_ascii_digit)
            && !escaped(line, q)
        {
            let d = |i: usize| u16::from(after[i] - b'0');
            break (q, d(1) * 100 + d(2) * 10 + d(3));
        }
        search = q + 1;
    };
    let request = &line[req_start..req_end];
    // HTTP/0.9 requests (`GET /path`) have no protocol; the NASA logs have them. A request
    // that is not `METHOD PATH PROTOCOL` is still what the client sent, and its status is
    // real: it is split as well as it can be (see [`lenient_request`]).
    let ((method, path, protocol), clean) = split_request_lenient(request);
    let mut odd_tail = false;
    let bytes_start = req_end + 6;
    let rest = &line[bytes_start..];
    let bytes_len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let bytes_tok = &rest[..bytes_len];
    let bytes = match bytes_tok {
        b"-" => None,
        [] => return Err("expected bytes (digits or `-`) after the status"),
        t => {
            let mut v: u64 = 0;
            for &c in t {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return Err("bytes is not digits or `-`");
                }
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d)))
                    .ok_or("bytes does not fit in 64 bits")?;
            }
            Some(v)
        }
    };
    let combined = if bytes_len == rest.len() {
        None
    } else {
        let tail = &rest[bytes_len..];
        if tail.len() < 3 || &tail[..2] != b" \"" {
            return Err("unexpected text after bytes (expected end of line or `\"referer\" \"user agent\"`)");
        }
        let (referer, agent, clean) = combined_tail(&tail[2..]);
        odd_tail = !clean;
        Some((referer, agent))
    };
    Ok(ClfRecord {
        host,
        ident,
        user,
        timestamp,
        utc_offset,
        method,
        path,
        protocol,
        status,
        bytes,
        combined,
        request,
        odd_request: !clean,
        odd_tail,
    })
}

/// Whether the quote at `q` is escaped: preceded by an odd number of backslashes.
#[inline]
pub(crate) fn escaped(line: &[u8], q: usize) -> bool {
    line[..q].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// The next quote in `s` that is not escaped.
#[inline]
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'"', &s[from..]) {
        if !escaped(s, from + p) {
            return Some(from + p);
        }
        from += p + 1;
    }
    None
}

/// Referer and user agent from what follows ` "` after the bytes: `referer" "agent"`. What
/// real servers write besides is kept as well as it can be, with `clean` false: a line cut
/// inside the agent (no closing quote; the agent is what is there), a referer alone, or more
/// text after the agent (`%D`, a virtual host: read those with a `log_format`).
#[inline]
fn combined_tail(s: &[u8]) -> (&[u8], Option<&[u8]>, bool) {
    let Some(q) = closing_quote(s) else {
        return (s, None, false);
    };
    let referer = &s[..q];
    let Some(rest) = s[q + 1..].strip_prefix(b" \"") else {
        return (referer, None, false);
    };
    match closing_quote(rest) {
        Some(end) => (referer, Some(&rest[..end]), end + 1 == rest.len()),
        None => (referer, Some(rest), false),
    }
}

/// Finds a `[timestamp]` anywhere in a line (for malformed lines).
pub fn find_timestamp(line: &[u8], cache: &mut TsCache) -> Option<(i64, i16)> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'[', &line[from..]) {
        let at = from + p;
        if line.get(at + 27) == Some(&b']') {
            if let Some(t) = cache.parse(&line[at + 1..at + 27]) {
                return Some(t);
            }
        }
        from = at + 1;
    }
    None
}

/// Builders of the projected columns; `None` for a column nobody needs.
struct Columns {
    host: Option<StringBuilder>,
    ident: Option<StringBuilder>,
    user: Option<StringBuilder>,
    timestamp: Option<TimestampMillisecondBuilder>,
    utc_offset: Option<Int16Builder>,
    method: Option<StringBuilder>,
    path: Option<StringBuilder>,
    protocol: Option<StringBuilder>,
    status: Option<UInt16Builder>,
    bytes: Option<UInt64Builder>,
    referer: Option<StringBuilder>,
    user_agent: Option<StringBuilder>,
    request: Option<StringBuilder>,
}

/// Appends to a projected string column; the check for "not projected" stays inline.
#[inline(always)]
fn put_str(b: &mut Option<StringBuilder>, v: Option<&[u8]>) {
    if let Some(b) = b {
        put_str_into(b, v);
    }
}

#[inline(never)]
fn put_str_into(b: &mut StringBuilder, v: Option<&[u8]>) {
    {
        match v {
            None => b.append_null(),
            Some(v) => match std::str::from_utf8(v) {
                Ok(s) => b.append_value(s),
                Err(_) => b.append_value(String::from_utf8_lossy(v)),
            },
        }
    }
}

#[inline]
fn dash_null(v: &[u8]) -> Option<&[u8]> {
    (v != b"-").then_some(v)
}

/// The CLF parser (see the module docs).
pub struct ClfParser {
    schema: SchemaRef,
    cols: Columns,
    rows: usize,
    cache: TsCache,
    malformed_status: Option<u16>,
    /// Rows with an odd part since the last [`Parser::take_counts`].
    odd: u64,
}

impl ClfParser {
    /// A parser producing the fields in `projection` (all when `None`).
    pub fn new(cfg: &ClfConfig, projection: Option<&[String]>) -> Result<Self> {
        let full = schema();
        if let Some(p) = projection {
            for name in p {
                if !FIELDS.contains(&name.as_str()) {
                    return Err(Error::Schema(format!(
                        "clf has no field {name:?}; its fields are {}",
                        FIELDS.join(", ")
                    )));
                }
            }
        }
        let want = |name: &str| projection.is_none_or(|p| p.iter().any(|f| f == name));
        let s = |name: &str| want(name).then(StringBuilder::new);
        let cols = Columns {
            host: s(HOST),
            ident: s(IDENT),
            user: s(USER),
            timestamp: want(TIMESTAMP)
                .then(|| TimestampMillisecondBuilder::new().with_timezone("UTC")),
            utc_offset: want(UTC_OFFSET).then(Int16Builder::new),
            method: s(METHOD),
            path: s(PATH),
            protocol: s(PROTOCOL),
            status: want(STATUS).then(UInt16Builder::new),
            bytes: want(BYTES).then(UInt64Builder::new),
            referer: s(REFERER),
            user_agent: s(USER_AGENT),
            request: s(REQUEST),
        };
        let fields: Vec<Field> = full
            .fields()
            .iter()
            .filter(|f| want(f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        Ok(ClfParser {
            schema: Arc::new(Schema::new(fields)),
            cols,
            rows: 0,
            cache: TsCache::default(),
            malformed_status: cfg.malformed_status,
            odd: 0,
        })
    }

    #[inline]
    fn push(&mut self, r: &ClfRecord<'_>) {
        let c = &mut self.cols;
        put_str(&mut c.host, Some(r.host));
        put_str(&mut c.ident, dash_null(r.ident));
        put_str(&mut c.user, dash_null(r.user));
        if let Some(b) = &mut c.timestamp {
            b.append_value(r.timestamp);
        }
        if let Some(b) = &mut c.utc_offset {
            b.append_value(r.utc_offset);
        }
        put_str(&mut c.method, r.method);
        put_str(&mut c.path, r.path);
        put_str(&mut c.protocol, r.protocol);
        if let Some(b) = &mut c.status {
            b.append_value(r.status);
        }
        if let Some(b) = &mut c.bytes {
            b.append_option(r.bytes);
        }
        put_str(&mut c.referer, r.combined.and_then(|(re, _)| dash_null(re)));
        put_str(&mut c.user_agent, r.combined.and_then(|(_, ua)| ua));
        put_str(&mut c.request, Some(r.request));
        self.odd += u64::from(r.odd());
        self.rows += 1;
    }

    fn push_malformed(&mut self, ts: i64, offset: i16, status: u16) {
        let c = &mut self.cols;
        for b in [
            &mut c.host,
            &mut c.ident,
            &mut c.user,
            &mut c.method,
            &mut c.path,
            &mut c.protocol,
            &mut c.referer,
            &mut c.user_agent,
            &mut c.request,
        ] {
            put_str(b, None);
        }
        if let Some(b) = &mut c.timestamp {
            b.append_value(ts);
        }
        if let Some(b) = &mut c.utc_offset {
            b.append_value(offset);
        }
        if let Some(b) = &mut c.status {
            b.append_value(status);
        }
        if let Some(b) = &mut c.bytes {
            b.append_null();
        }
        self.rows += 1;
    }
}

impl Parser for ClfParser {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        for_each_line(chunk, first_line, |no, line| {
            match parse_line(line, &mut self.cache) {
                Ok(rec) => self.push(&rec),
                Err(reason) => match self.malformed_status {
                    Some(status) => match find_timestamp(line, &mut self.cache) {
                        Some((ts, off)) => {
                            self.push_malformed(ts, off, status);
                            dead.push(Some(no), reason, line);
                        }
                        None => {
                            dead.push(Some(no), &format!("{reason}; no [timestamp] found"), line)
                        }
                    },
                    None => dead.push(Some(no), reason, line),
                },
            }
        })
    }

    fn pending_rows(&self) -> usize {
        self.rows
    }

    fn chunks_independent(&self) -> bool {
        true
    }

    fn take_counts(&mut self) -> ParseCounts {
        ParseCounts {
            odd: std::mem::take(&mut self.odd),
            ..ParseCounts::default()
        }
    }

    fn finish(&mut self) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let c = &mut self.cols;
        fn dynb<B: ArrayBuilder>(b: &mut Option<B>) -> Option<&mut dyn ArrayBuilder> {
            b.as_mut().map(|b| b as &mut dyn ArrayBuilder)
        }
        // In schema order (FIELDS); unprojected columns have no builder.
        let builders = [
            dynb(&mut c.host),
            dynb(&mut c.ident),
            dynb(&mut c.user),
            dynb(&mut c.timestamp),
            dynb(&mut c.utc_offset),
            dynb(&mut c.method),
            dynb(&mut c.path),
            dynb(&mut c.protocol),
            dynb(&mut c.status),
            dynb(&mut c.bytes),
            dynb(&mut c.referer),
            dynb(&mut c.user_agent),
            dynb(&mut c.request),
        ];
        let cols: Vec<ArrayRef> = builders.into_iter().flatten().map(|b| b.finish()).collect();
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("the CLF builders follow the schema")
    }
}

#[cfg(test)]
mod tests;
