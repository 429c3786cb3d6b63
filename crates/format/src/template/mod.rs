//! Web-server logs in the layout their server was told to write: an Apache `LogFormat` or an
//! nginx `log_format`, pasted from the server's config, or a named preset.
//!
//! ```toml
//! format = { type = "apache", log_format = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D' }
//! format = { type = "nginx", log_format = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time' }
//! format = { type = "apache", log_format = "vhost_combined" }
//! ```
//!
//! The template is compiled once into a list of literals and fields; a line is read left to
//! right, each field ending where the literal after it begins (for a quoted field: at the
//! first quote not escaped as `\"` that the literal's rest follows), so no regex runs per line.
//! Columns are typed: status and sizes are integers, `%t`/`$time_local`/`$time_iso8601` are
//! timestamps (with `utc_offset`), `%D`/`%T` integers of microseconds/seconds,
//! `$request_time` and the upstream times floats of seconds, the request (`%r`/`$request`) is
//! kept as sent in `request` and split best-effort into `method`, `path`, `protocol`, and
//! everything else is text, `-` being null. Apache directives take the names of the CLF
//! fields they are (`%h` is `host`, `%>s` is `status`, `%{User-Agent}i` is `user_agent`), so
//! pipelines work on both; nginx columns are named after their variables (`remote_addr`,
//! `body_bytes_sent`), except `$request`'s parts.
//!
//! As with CLF, a line whose frame is broken (a literal missing, a status that is not a
//! number, no time) is a dead letter, and with `malformed_status` also a row under that
//! status when a time can be found in it. A line cut short after its time and status keeps
//! what it has, with the missing fields null, counted as odd, as is a request that does not
//! split into `METHOD PATH PROTOCOL`.

mod compile;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Float64Builder, Int16Builder, StringBuilder, TimestampMillisecondBuilder,
    UInt16Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use weir_core::deadletter::DeadLetters;
use weir_core::parse::{for_each_line, ParseCounts};
use weir_core::{Error, Parser, Result};

use crate::clf::{find_timestamp, split_request_lenient, TsCache};
pub use compile::{Dialect, Kind, Template};

/// Options of the `apache` and `nginx` formats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The server's format string, or a preset: Apache `common`, `combined`,
    /// `vhost_combined`, `referer`, `agent`; nginx `combined`, `main`.
    pub log_format: String,
    /// As for `clf`: a malformed line with a findable time also becomes a row with this
    /// status.
    #[serde(default)]
    pub malformed_status: Option<u16>,
}

/// What one field of a line held, as positions in the line or a value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Got {
    Null,
    Text(u32, u32),
    Uint(u64),
    Float(f64),
    Time(i64, i16),
}

impl Got {
    /// The text of `part`, a slice of `line` (whose length fits in 32 bits).
    #[inline]
    fn within(line: &[u8], part: &[u8]) -> Got {
        let off = part.as_ptr() as usize - line.as_ptr() as usize;
        Got::Text(off as u32, (off + part.len()) as u32)
    }
}

/// A column and its builder.
enum Col {
    Text(StringBuilder),
    Status(UInt16Builder),
    Uint(UInt64Builder),
    Float(Float64Builder),
    Time(TimestampMillisecondBuilder),
    Offset(Int16Builder),
}

impl Col {
    fn builder(&mut self) -> &mut dyn ArrayBuilder {
        match self {
            Col::Text(b) => b,
            Col::Status(b) => b,
            Col::Uint(b) => b,
            Col::Float(b) => b,
            Col::Time(b) => b,
            Col::Offset(b) => b,
        }
    }
}

/// The template parser (see the module docs).
pub struct TemplateParser {
    template: Template,
    /// Set when the template is laid out as CLF: lines are read by the CLF scanner.
    clf: Option<compile::ClfLayout>,
    schema: SchemaRef,
    /// The projected columns: the template column each reads, and its builder.
    cols: Vec<(usize, Col)>,
    got: Vec<Got>,
    rows: usize,
    odd: u64,
    cache: TsCache,
    malformed_status: Option<u16>,
}

impl TemplateParser {
    /// A parser of `cfg` in `dialect`, producing the fields in `projection` (all when
    /// `None`).
    pub fn new(
        dialect: Dialect,
        cfg: &TemplateConfig,
        projection: Option<&[String]>,
    ) -> Result<Self> {
        let template = Template::compile(dialect, &cfg.log_format)
            .map_err(|e| Error::Schema(format!("log_format: {e}")))?;
        let names = template.columns();
        if let Some(p) = projection {
            for name in p {
                if !names.iter().any(|(n, _)| n == name) {
                    let all: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(Error::Schema(format!(
                        "this log_format has no field {name:?}; its fields are {}",
                        all.join(", ")
                    )));
                }
            }
        }
        let want = |name: &str| projection.is_none_or(|p| p.iter().any(|f| f == name));
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for (i, (name, ty)) in names.iter().enumerate() {
            if !want(name) {
                continue;
            }
            fields.push(Field::new(
                name,
                ty.clone(),
                !matches!(ty, DataType::Timestamp(..) | DataType::Int16),
            ));
            cols.push((
                i,
                match ty {
                    DataType::Utf8 => Col::Text(StringBuilder::new()),
                    DataType::UInt16 => Col::Status(UInt16Builder::new()),
                    DataType::UInt64 => Col::Uint(UInt64Builder::new()),
                    DataType::Float64 => Col::Float(Float64Builder::new()),
                    DataType::Int16 => Col::Offset(Int16Builder::new()),
                    _ => Col::Time(TimestampMillisecondBuilder::new().with_timezone("UTC")),
                },
            ));
        }
        Ok(TemplateParser {
            got: vec![Got::Null; names.len()],
            clf: template.clf_layout(),
            template,
            schema: Arc::new(Schema::new(fields)),
            cols,
            rows: 0,
            odd: 0,
            cache: TsCache::default(),
            malformed_status: cfg.malformed_status,
        })
    }

    /// The Arrow types of the template's columns, for `weir check` and the schema.
    pub fn column_type(kind: Kind) -> DataType {
        match kind {
            Kind::Text | Kind::Request => DataType::Utf8,
            Kind::Status => DataType::UInt16,
            Kind::Uint | Kind::UintOrDash => DataType::UInt64,
            Kind::Float => DataType::Float64,
            Kind::ClfTime | Kind::BracketTime | Kind::IsoTime => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
            }
        }
    }

    /// Appends the row in `self.got`.
    fn push(&mut self, line: &[u8]) {
        for (i, col) in &mut self.cols {
            match (col, self.got[*i]) {
                (Col::Text(b), Got::Text(s, e)) => put_text(b, &line[s as usize..e as usize]),
                (Col::Status(b), Got::Uint(v)) => b.append_value(v as u16),
                (Col::Uint(b), Got::Uint(v)) => b.append_value(v),
                (Col::Float(b), Got::Float(v)) => b.append_value(v),
                (Col::Time(b), Got::Time(t, _)) => b.append_value(t),
                (Col::Offset(b), Got::Time(_, o)) => b.append_value(o),
                (Col::Text(b), _) => b.append_null(),
                (Col::Status(b), _) => b.append_null(),
                (Col::Uint(b), _) => b.append_null(),
                (Col::Float(b), _) => b.append_null(),
                (Col::Time(b), _) => b.append_null(),
                (Col::Offset(b), _) => b.append_null(),
            }
        }
        self.rows += 1;
    }

    /// Reads `line` into `self.got`. `Ok(odd)` when it gave a row, else why not.
    fn read(&mut self, line: &[u8]) -> std::result::Result<bool, String> {
        if let Some(odd) = self
            .clf
            .and_then(|l| read_clf(&l, line, &mut self.cache, &mut self.got))
        {
            return Ok(odd);
        }
        read_line(&self.template, line, &mut self.cache, &mut self.got).map_err(str::to_owned)
    }
}

/// Reads a line of a template laid out as CLF with the CLF parser's scanner, which is
/// faster than the general reader ([`read_line`]). `None` (and the general reader reads the
/// line) unless the line is one the general reader reads the same way: a valid CLF line with
/// no quote inside the request and, for the Combined layout, a clean referer and agent.
#[inline]
fn read_clf(
    l: &compile::ClfLayout,
    line: &[u8],
    cache: &mut TsCache,
    got: &mut [Got],
) -> Option<bool> {
    if line.len() > u32::MAX as usize {
        return None;
    }
    let r = crate::clf::parse_line(line, cache).ok()?;
    if memchr::memchr(b'"', r.request).is_some() {
        return None;
    }
    let span = |x: &[u8]| Got::within(line, x);
    let text = |x: &[u8]| if x == b"-" { Got::Null } else { span(x) };
    match (l.tail, r.combined) {
        (None, None) => {}
        (Some([re, ua]), Some((referer, Some(agent)))) if !r.odd_tail => {
            got[re] = text(referer);
            got[ua] = text(agent);
        }
        _ => return None,
    }
    for (&c, v) in l.text.iter().zip([r.host, r.ident, r.user]) {
        got[c] = text(v);
    }
    got[l.time] = Got::Time(r.timestamp, r.utc_offset);
    got[l.time + 1] = got[l.time];
    got[l.request] = span(r.request);
    for (c, v) in [r.method, r.path, r.protocol].into_iter().enumerate() {
        got[l.request + 1 + c] = v.map_or(Got::Null, span);
    }
    got[l.status] = Got::Uint(u64::from(r.status));
    got[l.bytes] = r.bytes.map_or(Got::Null, Got::Uint);
    Some(r.odd_request)
}

fn put_text(b: &mut StringBuilder, v: &[u8]) {
    match std::str::from_utf8(v) {
        Ok(s) => b.append_value(s),
        Err(_) => b.append_value(String::from_utf8_lossy(v)),
    }
}

/// Reads one line by the template into `got` (one entry per column). Returns whether the
/// line was odd, or why it is malformed.
fn read_line<'t>(
    t: &'t Template,
    line: &[u8],
    cache: &mut TsCache,
    got: &mut [Got],
) -> std::result::Result<bool, &'t str> {
    use compile::Item;
    if line.len() > u32::MAX as usize {
        return Err("line longer than 4 GiB");
    }
    let mut at = 0usize;
    // Columns before this one hold the fields read so far; a complete line writes them all,
    // so only a line cut short needs the rest set to null.
    let mut filled = 0usize;
    let mut odd = false;
    let mut done_required = 0;
    for (i, item) in t.items.iter().enumerate() {
        match item {
            Item::Lit(lit) => {
                if starts_with(&line[at..], lit) {
                    at += lit.len();
                    continue;
                }
                if lit.starts_with(&line[at..]) && done_required == t.required {
                    // Cut short after everything that matters: keep what is there.
                    odd = true;
                    at = line.len();
                    got[filled..].fill(Got::Null);
                    break;
                }
                return Err(&t.lit_errors[i]);
            }
            Item::Field(f) => {
                let next = f.next.as_deref();
                let rest = &line[at..];
                let len = match f.kind {
                    // Fixed width: `[dd/Mon/yyyy:HH:MM:SS +zzzz]` or without the brackets.
                    Kind::BracketTime => 28.min(rest.len()),
                    Kind::ClfTime => 26.min(rest.len()),
                    _ => match next {
                        None => rest.len(),
                        Some(next) if f.quoted => match quoted_end(rest, &next[1..]) {
                            Some(n) => n,
                            None if done_required + usize::from(f.required) == t.required => {
                                // A quoted field cut short (a truncated user agent).
                                odd = true;
                                rest.len()
                            }
                            None => return Err(&f.unterminated),
                        },
                        Some(next) if f.list => list_end(rest, next),
                        // Unquoted fields are short (a host, `-`, digits): a plain loop
                        // beats memchr's setup, as in the CLF parser.
                        Some(&[b]) => rest.iter().position(|&c| c == b).unwrap_or(rest.len()),
                        Some(next) => memchr::memmem::find(rest, next).unwrap_or(rest.len()),
                    },
                };
                let v = &rest[..len];
                let (s, e) = (at as u32, (at + len) as u32);
                let col = f.col;
                match f.kind {
                    Kind::Text => {
                        got[col] = if v == b"-" {
                            Got::Null
                        } else {
                            Got::Text(s, e)
                        };
                    }
                    Kind::Request => {
                        got[col] = Got::Text(s, e);
                        let ((m, p, pr), clean) = split_request_lenient(v);
                        odd |= !clean;
                        let span = |x: Option<&[u8]>| x.map_or(Got::Null, |x| Got::within(line, x));
                        got[col + 1] = span(m);
                        got[col + 2] = span(p);
                        got[col + 3] = span(pr);
                    }
                    Kind::Status => {
                        if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
                            return Err(&f.invalid);
                        }
                        got[col] = Got::Uint(u64::from(
                            (v[0] - b'0') as u16 * 100
                                + (v[1] - b'0') as u16 * 10
                                + (v[2] - b'0') as u16,
                        ));
                    }
                    Kind::Uint | Kind::UintOrDash => {
                        got[col] = match v {
                            b"-" => Got::Null,
                            _ => Got::Uint(digits(v).ok_or(f.invalid.as_str())?),
                        };
                    }
                    Kind::Float => {
                        got[col] = match v {
                            b"-" | b"" => Got::Null,
                            _ => Got::Float(seconds(v).ok_or(f.invalid.as_str())?),
                        };
                    }
                    Kind::BracketTime => {
                        if v.len() != 28 || v[0] != b'[' || v[27] != b']' {
                            return Err(&f.invalid);
                        }
                        let (ms, off) = cache.parse(&v[1..27]).ok_or(f.invalid.as_str())?;
                        got[col] = Got::Time(ms, off);
                        got[col + 1] = Got::Time(ms, off);
                    }
                    Kind::ClfTime => {
                        let (ms, off) = cache.parse(v).ok_or(f.invalid.as_str())?;
                        got[col] = Got::Time(ms, off);
                        got[col + 1] = Got::Time(ms, off);
                    }
                    Kind::IsoTime => {
                        let text = std::str::from_utf8(v).map_err(|_| f.invalid.as_str())?;
                        let ms =
                            weir_core::time::parse_rfc3339_ms(text).ok_or(f.invalid.as_str())?;
                        got[col] = Got::Time(ms, iso_offset(v));
                        got[col + 1] = got[col];
                    }
                }
                done_required += usize::from(f.required);
                filled = f.end;
                at += len;
            }
        }
    }
    if at < line.len() {
        return Err("unexpected text after the last field of the log_format");
    }
    Ok(odd)
}

/// `s.starts_with(p)` for the one- and two-byte literals between fields without a call to
/// memcmp.
#[inline(always)]
fn starts_with(s: &[u8], p: &[u8]) -> bool {
    match (p, s) {
        ([a], [x, ..]) => a == x,
        ([a, b], [x, y, ..]) => a == x && b == y,
        ([_] | [_, _], _) => false,
        _ => s.starts_with(p),
    }
}

/// Where a quoted field ends in `rest`: at the first quote not escaped as `\"` that `after`
/// (what the template has after the closing quote) follows, or at a last quote ending the
/// line when the template has nothing after it.
fn quoted_end(rest: &[u8], after: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'"', &rest[from..]) {
        let q = from + p;
        if !crate::clf::escaped(rest, q) && starts_with(&rest[q + 1..], after) {
            return Some(q);
        }
        from = q + 1;
    }
    None
}

/// Where an nginx upstream list ends: at `next`, unless it is the space of a `, ` or ` : `
/// between the list's entries.
fn list_end(rest: &[u8], next: &[u8]) -> usize {
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&rest[from..], next) {
        let at = from + p;
        let after = &rest[at + next.len()..];
        let inside = next == b" "
            && ((at > 0 && rest[at - 1] == b',')
                || after.starts_with(b": ")
                || (at > 0 && rest[at - 1] == b':' && at > 1 && rest[at - 2] == b' '));
        if !inside {
            return at;
        }
        from = at + 1;
    }
    rest.len()
}

fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &c| {
        let d = c.wrapping_sub(b'0');
        (d < 10).then_some(())?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Seconds as nginx writes them: `0.012`, or a list of upstream times (`0.010, 0.002 :
/// 0.001`, one per upstream tried), summed; `-` entries count as nothing.
fn seconds(v: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(v).ok()?;
    let mut sum = 0.0;
    let mut any = false;
    for part in text.split([',', ':']) {
        let part = part.trim();
        if part == "-" {
            continue;
        }
        sum += crate::typed::parse_f64(part).filter(|x| x.is_finite())?;
        any = true;
    }
    any.then_some(sum)
}

/// The zone offset in minutes of an RFC 3339 time (`…+02:00`, `…Z`).
fn iso_offset(v: &[u8]) -> i16 {
    let n = v.len();
    if n >= 6 && (v[n - 6] == b'+' || v[n - 6] == b'-') && v[n - 3] == b':' {
        let d = |i: usize| i16::from(v[i].wrapping_sub(b'0'));
        let m = (d(n - 5) * 10 + d(n - 4)) * 60 + d(n - 2) * 10 + d(n - 1);
        if v[n - 6] == b'-' {
            -m
        } else {
            m
        }
    } else {
        0
    }
}

impl Parser for TemplateParser {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64 {
        for_each_line(chunk, first_line, |no, line| match self.read(line) {
            Ok(odd) => {
                self.odd += u64::from(odd);
                self.push(line);
            }
            Err(reason) => {
                let status = self.malformed_status;
                match status.and_then(|s| find_timestamp(line, &mut self.cache).map(|t| (s, t))) {
                    Some((s, (ms, off))) => {
                        self.got.fill(Got::Null);
                        if let Some(c) = self.template.status_col {
                            self.got[c] = Got::Uint(u64::from(s));
                        }
                        if let Some(c) = self.template.time_col {
                            self.got[c] = Got::Time(ms, off);
                            self.got[c + 1] = Got::Time(ms, off);
                        }
                        self.push(line);
                        dead.push(Some(no), &reason, line);
                    }
                    None if status.is_some() && line.is_empty() => {
                        dead.push(Some(no), "empty line", line)
                    }
                    None if status.is_some() => {
                        dead.push(Some(no), &format!("{reason}; no [timestamp] found"), line)
                    }
                    None => dead.push(Some(no), &reason, line),
                }
            }
        })
    }

    fn pending_rows(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        let cols: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|(_, c)| c.builder().finish())
            .collect();
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("the template's builders follow its schema")
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
}
