//! A one-pass scanner of one JSON object per line that keeps only the declared fields.
//!
//! It validates the whole line as strictly as `serde_json::Value` does (grammar, UTF-8,
//! escapes and surrogate pairs, numbers that overflow to infinity, at most 127 levels of
//! nesting), but builds nothing: a declared field's value is remembered as a [`Slot`], a kind
//! and a byte range of the line, and converted only when the whole line is valid. Keys are
//! matched against the declared ones in a small tree (`geo.country` reaches into
//! `{"geo": {"country": …}}`), trying the key after the last match first, because producers
//! write their keys in the same order on every line.
//!
//! serde_json with a visitor did the same at 1 M lines/s on the DDOS messages; a value tree
//! per line is what made it slow. The scanner's result is checked against `serde_json::Value`
//! on generated lines (tests.rs), which is the oracle of its semantics.

use std::borrow::Cow;

/// JSON's limit of nesting as serde_json counts it: a line nested deeper is refused.
const MAX_DEPTH: usize = 127;

/// What a declared field held on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The key was not on the line.
    Missing,
    Null,
    True,
    False,
    /// A number; its text is `line[start..end]`.
    Num,
    /// A string without escapes; its text is `line[start..end]`.
    Str,
    /// A string with escapes between `line[start..end]` (the quotes excluded).
    StrEscaped,
    Array,
    Object,
}

/// A declared field's value on the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
    /// A number without exponent of at most 19 digits: its digits as an integer
    /// (`-1.25` is 125), read while scanning so conversion need not read them again.
    pub digits: u64,
    /// How many of `digits` follow the point (2 for `-1.25`); [`Slot::INEXACT`] when the
    /// number is not as above (or the slot is not a number).
    pub frac: u8,
    /// The number has a minus sign.
    pub neg: bool,
}

impl Slot {
    pub const INEXACT: u8 = u8::MAX;

    pub const MISSING: Slot = Slot {
        kind: Kind::Missing,
        start: 0,
        end: 0,
        digits: 0,
        frac: Slot::INEXACT,
        neg: false,
    };

    /// The number as a 64-bit integer, when it is one written plainly (no point, no
    /// exponent, at most 19 digits, not `-0`, which serde_json does not read as an integer).
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        // `frac` is 0 only for an exact number without fraction digits.
        (self.kind == Kind::Num
            && self.frac == 0
            && self.digits <= i64::MAX as u64
            && !(self.neg && self.digits == 0))
            .then(|| {
                let d = self.digits as i64;
                if self.neg {
                    -d
                } else {
                    d
                }
            })
    }

    /// The slot's text in `line` (slots start and end at ASCII bytes of the line).
    pub fn text<'a>(&self, line: &'a str) -> &'a str {
        &line[self.start as usize..self.end as usize]
    }
}

/// One key of an object level: the field it names and the level below it.
#[derive(Debug, Default)]
struct Entry {
    key: Box<[u8]>,
    /// The key, its closing quote and a colon, as compared in place on a line.
    probe: Probe,
    /// The key's bytes need no escaping in JSON: a line's key can be compared in place.
    plain: bool,
    field: Option<usize>,
    child: Option<Level>,
    /// The fields reached through `child`: reset when the key appears again on a line (the
    /// last occurrence of a key wins, as in a `serde_json::Value`).
    below: Vec<usize>,
}

#[derive(Debug, Default)]
struct Level {
    entries: Vec<Entry>,
}

impl Level {
    fn entry(&mut self, key: &str) -> &mut Entry {
        let at = match self.entries.iter().position(|e| &*e.key == key.as_bytes()) {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    key: key.as_bytes().into(),
                    probe: Probe::new(&[key.as_bytes(), b"\":"].concat()),
                    plain: key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'),
                    ..Entry::default()
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[at]
    }
}

/// A dotted name as a top-level key, and its field.
type Dotted = (Box<[u8]>, usize);

/// The declared field names as a tree of keys. A name with dots (`geo.country`) is found
/// nested, or as a key with those dots at the top level (`{"geo.country": …}`, as flattened
/// logs write it); the nested value wins when both are there.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    root: Level,
    /// Top-level keys equal to a dotted name, and its field.
    dotted: Vec<Dotted>,
    fields: usize,
}

impl Keys {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Keys {
        let mut keys = Keys::default();
        for (f, name) in names.into_iter().enumerate() {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() > 1 && parts.iter().all(|p| !p.is_empty()) {
                keys.dotted.push((name.as_bytes().into(), f));
                let mut level = &mut keys.root;
                for p in &parts[..parts.len() - 1] {
                    let e = level.entry(p);
                    e.below.push(f);
                    level = e.child.get_or_insert_with(Level::default);
                }
                level.entry(parts[parts.len() - 1]).field = Some(f);
            } else {
                keys.root.entry(name).field = Some(f);
            }
            keys.fields = f + 1;
        }
        keys
    }

    /// Number of declared fields.
    pub fn fields(&self) -> usize {
        self.fields
    }
}

/// Why a line is not a JSON object, with the 1-based column where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub what: &'static str,
    pub column: usize,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at column {}", self.what, self.column)
    }
}

type Res<T> = Result<T, Invalid>;

/// Scans `line` (one JSON object) into `nested` (values found by the key tree) and `dotted`
/// (values of top-level keys with dots), one slot per declared field. Returns the line as
/// text: it is checked to be UTF-8 once, as a whole (a byte that is not UTF-8 is refused
/// inside a string by serde_json, and is not JSON outside one).
pub(crate) fn scan<'a>(
    line: &'a [u8],
    keys: &Keys,
    nested: &mut [Slot],
    dotted: &mut [Slot],
) -> Res<&'a str> {
    nested.fill(Slot::MISSING);
    dotted.fill(Slot::MISSING);
    let text = std::str::from_utf8(line).map_err(|e| Invalid {
        what: "invalid UTF-8",
        column: e.valid_up_to() + 1,
    })?;
    if line.len() > u32::MAX as usize {
        return Err(Invalid {
            what: "line longer than 4 GiB",
            column: 1,
        });
    }
    let mut s = Scanner { b: line, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(s.err("expected a JSON object"));
    }
    s.object(Some(&keys.root), Some(&keys.dotted), nested, dotted, 1)?;
    s.ws();
    if s.i != line.len() {
        return Err(s.err("trailing characters after the object"));
    }
    Ok(text)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[cold]
    fn err(&self, what: &'static str) -> Invalid {
        Invalid {
            what,
            column: self.i + 1,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &'static str) -> Res<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// An object at `{`; declared keys of `level` fill the slots.
    fn object(
        &mut self,
        level: Option<&Level>,
        dotted_keys: Option<&[Dotted]>,
        nested: &mut [Slot],
        dotted: &mut [Slot],
        depth: usize,
    ) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested deeper than 127 levels"));
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut hint = 0;
        loop {
            if self.peek() != Some(b'"') {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.err("expected a key in quotes"));
                }
            }
            // The key the last one is usually followed by, compared in place: when the line
            // has it, followed by its closing quote and a colon, the key is that one and a
            // valid string (its bytes have no quote, backslash or control character).
            let expected = level
                .and_then(|l| l.entries.get(hint))
                .filter(|e| e.plain && e.probe.at(&self.b[self.i + 1..]));
            let (key, entry): (Cow<[u8]>, Option<&Entry>) = match expected {
                Some(e) => {
                    self.i += e.key.len() + 3;
                    hint += 1;
                    (Cow::Borrowed(&e.key), Some(e))
                }
                None => {
                    let (ks, ke, escaped) = self.string()?;
                    let key: Cow<[u8]> = if escaped {
                        Cow::Owned(unescape(&self.b[ks..ke]).into_bytes())
                    } else {
                        Cow::Borrowed(&self.b[ks..ke])
                    };
                    let entry = level.and_then(|l| {
                        let at = l.entries.iter().position(|e| *e.key == *key)?;
                        hint = at + 1;
                        Some(&l.entries[at])
                    });
                    self.expect(b':', "expected `:` after a key")?;
                    (key, entry)
                }
            };
            self.ws();
            // The key again: what an earlier value held below it is gone (the last one wins).
            for &f in entry.map_or(&[][..], |e| &e.below) {
                nested[f] = Slot::MISSING;
            }
            let start = self.i;
            // Numbers and strings, the usual values, are read here; the rest in `value`.
            let slot = match (entry, self.peek()) {
                (_, Some(b'-' | b'0'..=b'9')) => {
                    let (digits, frac, neg) = self.number()?;
                    Slot {
                        digits,
                        frac,
                        neg,
                        ..self.slot(Kind::Num, start)
                    }
                }
                (_, Some(b'"')) => self.string_slot()?,
                (
                    Some(Entry {
                        child: Some(child), ..
                    }),
                    Some(b'{'),
                ) => {
                    self.object(Some(child), None, nested, dotted, depth + 1)?;
                    self.slot(Kind::Object, start)
                }
                _ => self.value(depth)?,
            };
            if let Some(f) = entry.and_then(|e| e.field) {
                nested[f] = slot;
            }
            if let Some(d) = dotted_keys.filter(|d| !d.is_empty()) {
                if let Some(&(_, f)) = d.iter().find(|(k, _)| **k == *key) {
                    dotted[f] = slot;
                }
            }
            let mut c = self.peek();
            if !matches!(c, Some(b',' | b'}')) {
                self.ws();
                c = self.peek();
            }
            match c {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}` after a value")),
            }
        }
    }

    fn slot(&self, kind: Kind, start: usize) -> Slot {
        Slot {
            kind,
            start: start as u32,
            end: self.i as u32,
            ..Slot::MISSING
        }
    }

    /// A string at `"`, as a slot.
    #[inline]
    fn string_slot(&mut self) -> Res<Slot> {
        let (s, e, escaped) = self.string()?;
        let kind = if escaped { Kind::StrEscaped } else { Kind::Str };
        Ok(Slot {
            kind,
            start: s as u32,
            end: e as u32,
            ..Slot::MISSING
        })
    }

    /// Any value at the current position (whitespace skipped).
    fn value(&mut self, depth: usize) -> Res<Slot> {
        let start = self.i;
        match self.peek() {
            Some(b'"') => self.string_slot(),
            Some(b'{') => {
                self.object(None, None, &mut [], &mut [], depth + 1)?;
                Ok(self.slot(Kind::Object, start))
            }
            Some(b'[') => {
                self.array(depth + 1)?;
                Ok(self.slot(Kind::Array, start))
            }
            Some(b't') => self.word(b"true", Kind::True),
            Some(b'f') => self.word(b"false", Kind::False),
            Some(b'n') => self.word(b"null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => {
                let (digits, frac, neg) = self.number()?;
                Ok(Slot {
                    digits,
                    frac,
                    neg,
                    ..self.slot(Kind::Num, start)
                })
            }
            _ => Err(self.err("expected a value")),
        }
    }

    fn word(&mut self, w: &[u8], kind: Kind) -> Res<Slot> {
        if self.b[self.i..].starts_with(w) {
            let start = self.i;
            self.i += w.len();
            Ok(self.slot(kind, start))
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn array(&mut self, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested deeper than 127 levels"));
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `]` after a value")),
            }
        }
    }

    /// A string at `"`: returns the range between the quotes and whether it has escapes.
    #[inline]
    fn string(&mut self) -> Res<(usize, usize, bool)> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        self.i += 1;
        let start = self.i;
        let b = self.b;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while none is a quote, a backslash or a control
            // character (SWAR: a zero byte of `x ^ c` or a byte below 0x20 sets its high bit;
            // bytes of 0x80 and above may set it falsely, which only ends the fast loop).
            while let Some(w) = b.get(self.i..self.i + 8) {
                let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
                let stop = zero(x ^ (ONES * u64::from(b'"')))
                    | zero(x ^ (ONES * u64::from(b'\\')))
                    | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
                if stop != 0 {
                    break;
                }
                self.i += 8;
            }
            let Some(&c) = b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                    continue;
                }
                0..=0x1f => return Err(self.err("control character in a string")),
                _ => {}
            }
            self.i += 1;
        }
        let end = self.i;
        self.i += 1;
        Ok((start, end, escaped))
    }

    /// An escape at `\`; a `\u` high surrogate must be followed by a `\u` low one.
    fn escape(&mut self) -> Res<()> {
        match self.b.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(())
            }
            Some(b'u') => {
                let u = self.hex4(self.i + 2)?;
                self.i += 6;
                match u {
                    0xD800..=0xDBFF => {
                        if self.b.get(self.i) != Some(&b'\\')
                            || self.b.get(self.i + 1) != Some(&b'u')
                        {
                            return Err(self.err("lone leading surrogate in a \\u escape"));
                        }
                        let low = self.hex4(self.i + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.err("lone leading surrogate in a \\u escape"));
                        }
                        self.i += 6;
                        Ok(())
                    }
                    0xDC00..=0xDFFF => Err(self.err("lone trailing surrogate in a \\u escape")),
                    _ => Ok(()),
                }
            }
            _ => Err(self.err("invalid escape in a string")),
        }
    }

    fn hex4(&self, at: usize) -> Res<u32> {
        let h = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        let mut v = 0;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, refused when it
    /// overflows a 64-bit float (as serde_json refuses `1e400`). Returns its digits, the
    /// count after the point and its sign (see [`Slot::digits`]).
    ///
    /// Inlined into the scanner's loop, with the position in a register: numbers are most
    /// of the values of sensor and network records, and a call per number cost a fifth of
    /// the parse.
    #[inline(always)]
    fn number(&mut self) -> Res<(u64, u8, bool)> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let neg = b.get(i) == Some(&b'-');
        i += usize::from(neg);
        // Digits read (a leading `0` of the integer part is not one), and their value, which
        // wraps past 19 digits (the count says so).
        let (mut n, mut v) = (0usize, 0u64);
        let mut digits = |i: &mut usize| {
            while let Some(&c) = b.get(*i) {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                n += 1;
                *i += 1;
            }
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => digits(&mut i),
            _ => {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        let int_digits = i - start;
        let mut frac = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let from = i;
            digits(&mut i);
            frac = i - from;
            if frac == 0 {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        self.i = i;
        if matches!(b.get(i), Some(b'e' | b'E')) || int_digits > 300 {
            return self.number_tail(start, v, neg);
        }
        let exact = n <= 19;
        Ok((v, if exact { frac as u8 } else { Slot::INEXACT }, neg))
    }

    /// The rest of a number with an exponent, or of a very long one: checked to be in
    /// a double's range (only those can overflow).
    #[cold]
    #[inline(never)]
    fn number_tail(&mut self, start: usize, v: u64, neg: bool) -> Res<(u64, u8, bool)> {
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).expect("digits are ASCII");
        if !text.parse::<f64>().is_ok_and(f64::is_finite) {
            self.i = start;
            return Err(self.err("number out of range"));
        }
        Ok((v, Slot::INEXACT, neg))
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}

/// Bytes to find at the start of a line's remainder, compared a word (eight bytes) at a time,
/// inline: keys are short, and a call to memcmp per key cost a tenth of the parse.
#[derive(Debug, Default)]
struct Probe {
    bytes: Box<[u8]>,
    /// The first eight bytes (zero-padded) and the mask of those that count.
    head: u64,
    mask: u64,
}

impl Probe {
    fn new(bytes: &[u8]) -> Probe {
        let n = bytes.len().min(8);
        let mut head = [0u8; 8];
        head[..n].copy_from_slice(&bytes[..n]);
        Probe {
            bytes: bytes.into(),
            head: u64::from_le_bytes(head),
            mask: if n == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * n)) - 1
            },
        }
    }

    /// Whether `s` starts with the probe's bytes.
    #[inline]
    fn at(&self, s: &[u8]) -> bool {
        let p = &*self.bytes;
        let n = p.len();
        if s.len() < 8 || s.len() < n {
            return s.starts_with(p);
        }
        let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        if word(s, 0) & self.mask != self.head {
            return false;
        }
        // The words after the first, the last one overlapping the one before.
        let mut at = 8;
        while at + 8 < n {
            if word(s, at) != word(p, at) {
                return false;
            }
            at += 8;
        }
        n <= 8 || word(s, n - 8) == word(p, n - 8)
    }
}

/// The text of a string with escapes (already validated by the scanner).
pub(crate) fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    let hex = |at: usize| {
        u32::from_str_radix(std::str::from_utf8(&raw[at..at + 4]).expect("hex"), 16).expect("hex")
    };
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let c = match raw[i + 1] {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let u = hex(i + 2);
                i += 4;
                if (0xD800..0xDC00).contains(&u) {
                    let low = hex(i + 4);
                    i += 6;
                    char::from_u32(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00))
                        .expect("a valid pair")
                } else {
                    char::from_u32(u).expect("not a surrogate")
                }
            }
            other => other as char,
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += 2;
    }
    String::from_utf8(out).expect("validated UTF-8 and escapes")
}
