//! Compiling an Apache `LogFormat` or nginx `log_format` string into literals and typed
//! fields, with every problem named at `weir check`.

use arrow_schema::DataType;

/// Which server's syntax a format string is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Apache httpd `LogFormat` (`%h %l %u %t "%r" %>s %b`).
    Apache,
    /// nginx `log_format` (`$remote_addr - $remote_user [$time_local] …`).
    Nginx,
}

/// How a field's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text; `-` is null.
    Text,
    /// The request line: kept, and split into method, path and protocol.
    Request,
    /// A three-digit HTTP status.
    Status,
    /// Digits.
    Uint,
    /// Digits, or `-` for null (`%b`).
    UintOrDash,
    /// Seconds with a fraction, or a list of them (summed); `-` is null.
    Float,
    /// `[dd/Mon/yyyy:HH:MM:SS +zzzz]` (Apache `%t`).
    BracketTime,
    /// `dd/Mon/yyyy:HH:MM:SS +zzzz` (nginx `$time_local`).
    ClfTime,
    /// RFC 3339 (nginx `$time_iso8601`).
    IsoTime,
}

/// A field of the template.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    pub kind: Kind,
    /// Its first output column.
    pub col: usize,
    /// One past its last output column (the request and times have more than one).
    pub end: usize,
    /// Between quotes in the template: it ends at an unescaped quote.
    pub quoted: bool,
    /// The literal after the field, where it ends; `None` at the end of the line.
    pub next: Option<Vec<u8>>,
    /// An nginx `$upstream_*` value, a list when several upstreams were tried
    /// (`10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80`): its `, ` and ` : ` do not end it.
    pub list: bool,
    /// Time and status: a line without them is malformed, a line cut short after them is
    /// kept.
    pub required: bool,
    /// Why a line is malformed when this field's text is not of its kind.
    pub invalid: String,
    /// Why a line is malformed when this quoted field has no closing quote.
    pub unterminated: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Lit(Vec<u8>),
    Field(FieldDef),
}

/// A compiled format string.
#[derive(Debug, Clone)]
pub struct Template {
    pub(crate) items: Vec<Item>,
    /// For each literal item, why a line that lacks it is malformed.
    pub(crate) lit_errors: Vec<String>,
    columns: Vec<(String, DataType)>,
    /// The column of the status, for rows of malformed lines.
    pub(crate) status_col: Option<usize>,
    /// The column of the first time, for rows of malformed lines.
    pub(crate) time_col: Option<usize>,
    /// Number of required fields.
    pub(crate) required: usize,
}

/// The presets: what the servers' stock configurations name.
const APACHE_PRESETS: [(&str, &str); 5] = [
    ("common", r#"%h %l %u %t "%r" %>s %b"#),
    (
        "combined",
        r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#,
    ),
    (
        "vhost_combined",
        r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#,
    ),
    ("referer", "%{Referer}i -> %U"),
    ("agent", "%{User-agent}i"),
];
const NGINX_PRESETS: [(&str, &str); 2] = [
    (
        "combined",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#,
    ),
    (
        "main",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#,
    ),
];

/// A header or variable name as a column name: `User-Agent` is `user_agent`.
fn column_name(s: &str) -> String {
    s.to_ascii_lowercase().replace('-', "_")
}

/// The name and kind of an Apache directive `%{arg}X`.
fn apache_field(letter: char, arg: Option<&str>) -> Result<(String, Kind), String> {
    use Kind::*;
    let named = |prefix: &str| -> Result<(String, Kind), String> {
        match arg {
            Some(a) if !a.is_empty() => Ok((format!("{prefix}{}", column_name(a)), Text)),
            _ => Err(format!("%{letter} needs a name: %{{Name}}{letter}")),
        }
    };
    let plain = |name: &str, kind: Kind| -> Result<(String, Kind), String> {
        match arg {
            None => Ok((name.to_string(), kind)),
            Some(a) => Err(format!(
                "%{{{a}}}{letter} is not supported; write %{letter}"
            )),
        }
    };
    match letter {
        'a' => match arg {
            Some("c") => Ok(("peer_ip".into(), Text)),
            _ => plain("client_ip", Text),
        },
        'A' => plain("local_ip", Text),
        'B' => plain("bytes", Uint),
        'b' => plain("bytes", UintOrDash),
        'C' => named("cookie_"),
        'D' => plain("time_us", Uint),
        'e' => named("env_"),
        'f' => plain("filename", Text),
        'h' => plain("host", Text),
        'H' => plain("request_protocol", Text),
        'i' => named(""),
        'I' => plain("bytes_received", Uint),
        'k' => plain("keepalive_requests", Uint),
        'l' => plain("ident", Text),
        'L' => plain("log_id", Text),
        'm' => plain("request_method", Text),
        'n' => named("note_"),
        'o' => named("response_"),
        'O' => plain("bytes_sent", Uint),
        'p' => match arg {
            None | Some("canonical") => Ok(("port".into(), Uint)),
            Some("local") => Ok(("local_port".into(), Uint)),
            Some("remote") => Ok(("remote_port".into(), Uint)),
            Some(a) => Err(format!("%{{{a}}}p: expected canonical, local or remote")),
        },
        'P' => match arg {
            None | Some("pid") => Ok(("pid".into(), Uint)),
            Some("tid") => Ok(("tid".into(), Uint)),
            Some(a) => Err(format!("%{{{a}}}P: expected pid or tid")),
        },
        'q' => plain("query_string", Text),
        'r' => plain("request", Request),
        'R' => plain("handler", Text),
        's' => plain("status", Status),
        'S' => plain("bytes_transferred", Uint),
        't' => match arg {
            None => Ok(("timestamp".into(), BracketTime)),
            Some(a) => Err(format!(
                "%{{{a}}}t: custom time formats are not supported; log with %t"
            )),
        },
        'T' => match arg {
            None | Some("s") => Ok(("time_s".into(), Uint)),
            Some("ms") => Ok(("time_ms".into(), Uint)),
            Some("us") => Ok(("time_us".into(), Uint)),
            Some(a) => Err(format!("%{{{a}}}T: expected s, ms or us")),
        },
        'u' => plain("user", Text),
        'U' => plain("url_path", Text),
        'v' => plain("vhost", Text),
        'V' => plain("server_name", Text),
        'X' => plain("connection_status", Text),
        other => Err(format!("%{other} is not a directive weir knows")),
    }
}

/// The kind of an nginx variable (its name is the column's).
fn nginx_kind(var: &str) -> Kind {
    match var {
        "time_local" => Kind::ClfTime,
        "time_iso8601" => Kind::IsoTime,
        "status" => Kind::Status,
        "request" => Kind::Request,
        "body_bytes_sent"
        | "bytes_sent"
        | "request_length"
        | "connection"
        | "connection_requests"
        | "remote_port"
        | "server_port"
        | "content_length"
        | "upstream_bytes_received"
        | "upstream_bytes_sent" => Kind::UintOrDash,
        "request_time"
        | "upstream_response_time"
        | "upstream_connect_time"
        | "upstream_header_time"
        | "msec"
        | "gzip_ratio" => Kind::Float,
        _ => Kind::Text,
    }
}

/// A literal (`Ok`) or a directive's name and kind (`Err`) of a format string.
type Token = Result<String, (String, Kind)>;

/// Splits a format string into literals and directives.
fn tokens(dialect: Dialect, text: &str) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    let flush = |lit: &mut String, out: &mut Vec<Token>| {
        if !lit.is_empty() {
            out.push(Ok(std::mem::take(lit)));
        }
    };
    while let Some(c) = chars.next() {
        match (dialect, c) {
            // Pasted from httpd.conf, where the string is in quotes: `\"` is a quote.
            (Dialect::Apache, '\\') => match chars.next() {
                Some('"') => lit.push('"'),
                Some('\\') => lit.push('\\'),
                Some('t') => lit.push('\t'),
                Some(o) => return Err(format!("`\\{o}` is not an escape of LogFormat")),
                None => return Err("a lone `\\` at the end".into()),
            },
            (Dialect::Apache, '%') => {
                if chars.peek() == Some(&'%') {
                    chars.next();
                    lit.push('%');
                    continue;
                }
                let mut arg = None;
                loop {
                    match chars.peek() {
                        Some('<' | '>') => {
                            chars.next();
                        }
                        Some('!' | '0'..='9' | ',') => {
                            return Err(
                                "conditional directives (%400,501{…}i, %!200…) are not supported"
                                    .into(),
                            )
                        }
                        Some('{') => {
                            chars.next();
                            let a: String = chars.by_ref().take_while(|&c| c != '}').collect();
                            arg = Some(a);
                        }
                        _ => break,
                    }
                }
                let Some(letter) = chars.next() else {
                    return Err("the format ends inside a directive".into());
                };
                let field = apache_field(letter, arg.as_deref())?;
                flush(&mut lit, &mut out);
                out.push(Err(field));
            }
            (Dialect::Nginx, '$') => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.next() != Some('}') {
                    return Err(format!("`${{{name}` has no closing brace"));
                }
                if name.is_empty() {
                    return Err("a `$` without a variable name".into());
                }
                flush(&mut lit, &mut out);
                let kind = nginx_kind(&name);
                out.push(Err((name, kind)));
            }
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut out);
    Ok(out)
}

impl Template {
    /// Compiles `text` (a format string or a preset name) of `dialect`.
    pub fn compile(dialect: Dialect, text: &str) -> Result<Template, String> {
        let presets: &[(&str, &str)] = match dialect {
            Dialect::Apache => &APACHE_PRESETS,
            Dialect::Nginx => &NGINX_PRESETS,
        };
        let marker = match dialect {
            Dialect::Apache => '%',
            Dialect::Nginx => '$',
        };
        let text = match presets.iter().find(|(n, _)| *n == text) {
            Some((_, t)) => *t,
            None if !text.contains(marker) => {
                let names: Vec<&str> = presets.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "{text:?} is neither a format string (it has no `{marker}`) nor a preset ({})",
                    names.join(", ")
                ));
            }
            None => text,
        };
        let toks = tokens(dialect, text)?;
        let mut t = Template {
            items: Vec::new(),
            lit_errors: Vec::new(),
            columns: Vec::new(),
            status_col: None,
            time_col: None,
            required: 0,
        };
        let mut prev_name: Option<String> = None;
        for (i, tok) in toks.iter().enumerate() {
            match tok {
                Ok(lit) => {
                    let next = match toks.get(i + 1) {
                        Some(Err((n, _))) => format!(" before {n}"),
                        _ => String::new(),
                    };
                    let after = prev_name
                        .as_ref()
                        .map_or(" at the start of the line".to_string(), |p| {
                            format!(" after {p}")
                        });
                    t.lit_errors
                        .push(format!("expected `{lit}`{after}{next} (log_format)"));
                    t.items.push(Item::Lit(lit.as_bytes().to_vec()));
                }
                Err((name, kind)) => {
                    if let Some(Err((n, _))) = i.checked_sub(1).and_then(|p| toks.get(p)) {
                        return Err(format!(
                            "{n} and {name} have nothing between them: where one ends is unknown"
                        ));
                    }
                    let quoted = matches!(i.checked_sub(1).and_then(|p| toks.get(p)), Some(Ok(l)) if l.ends_with('"'))
                        && matches!(toks.get(i + 1), Some(Ok(l)) if l.starts_with('"'));
                    let col = t.columns.len();
                    let mut add = |n: &str, ty: DataType| -> Result<(), String> {
                        if t.columns.iter().any(|(c, _)| c == n) {
                            return Err(format!("the field {n} appears twice"));
                        }
                        t.columns.push((n.to_string(), ty));
                        Ok(())
                    };
                    let ty = super::TemplateParser::column_type(*kind);
                    add(name, ty)?;
                    match kind {
                        Kind::Request => {
                            for n in [crate::clf::METHOD, crate::clf::PATH, crate::clf::PROTOCOL] {
                                add(n, DataType::Utf8)?;
                            }
                        }
                        Kind::BracketTime | Kind::ClfTime | Kind::IsoTime => {
                            let offset = if t.time_col.is_none() {
                                crate::clf::UTC_OFFSET.to_string()
                            } else {
                                format!("{name}_utc_offset")
                            };
                            add(&offset, DataType::Int16)?;
                        }
                        _ => {}
                    }
                    let required = matches!(
                        kind,
                        Kind::Status | Kind::BracketTime | Kind::ClfTime | Kind::IsoTime
                    );
                    if *kind == Kind::Status {
                        t.status_col.get_or_insert(col);
                    }
                    if required && *kind != Kind::Status {
                        t.time_col.get_or_insert(col);
                    }
                    t.required += usize::from(required);
                    let what = match kind {
                        Kind::Status => "a 3-digit status",
                        Kind::Uint => "digits",
                        Kind::UintOrDash => "digits or `-`",
                        Kind::Float => "seconds (digits with a fraction) or `-`",
                        Kind::BracketTime => "[dd/Mon/yyyy:HH:MM:SS +zzzz]",
                        Kind::ClfTime => "dd/Mon/yyyy:HH:MM:SS +zzzz",
                        Kind::IsoTime => "an ISO 8601 time",
                        Kind::Text | Kind::Request => "text",
                    };
                    t.lit_errors.push(String::new());
                    t.items.push(Item::Field(FieldDef {
                        kind: *kind,
                        col,
                        end: t.columns.len(),
                        quoted,
                        next: match toks.get(i + 1) {
                            Some(Ok(l)) => Some(l.as_bytes().to_vec()),
                            _ => None,
                        },
                        list: dialect == Dialect::Nginx && name.starts_with("upstream_"),
                        required,
                        invalid: format!("{name} is not {what}"),
                        unterminated: format!("{name} has no closing quote"),
                    }));
                    prev_name = Some(name.clone());
                }
            }
        }
        if !t.items.iter().any(|i| matches!(i, Item::Field(_))) {
            return Err("the format has no field".into());
        }
        Ok(t)
    }

    /// Output columns: name and Arrow type, in order.
    pub fn columns(&self) -> Vec<(String, DataType)> {
        self.columns.clone()
    }

    /// Where the fields are when the template is laid out as the Common Log Format
    /// (`%h %l %u %t "%r" %>s %b`), optionally followed by ` "%{Referer}i" "%{User-Agent}i"`
    /// as in the Combined format, with any text directives in the text places.
    pub(crate) fn clf_layout(&self) -> Option<ClfLayout> {
        use Kind::*;
        let shape: Vec<Result<Kind, &[u8]>> = self
            .items
            .iter()
            .map(|i| match i {
                Item::Lit(l) => Err(l.as_slice()),
                Item::Field(f) => Ok(f.kind),
            })
            .collect();
        let common: [Result<Kind, &[u8]>; 13] = [
            Ok(Text),
            Err(b" "),
            Ok(Text),
            Err(b" "),
            Ok(Text),
            Err(b" "),
            Ok(BracketTime),
            Err(b" \""),
            Ok(Request),
            Err(b"\" "),
            Ok(Status),
            Err(b" "),
            Ok(UintOrDash),
        ];
        let tail: [Result<Kind, &[u8]>; 5] =
            [Err(b" \""), Ok(Text), Err(b"\" \""), Ok(Text), Err(b"\"")];
        let combined = match shape.len() {
            13 => false,
            18 => true,
            _ => return None,
        };
        if shape[..13] != common || (combined && shape[13..] != tail) {
            return None;
        }
        let cols: Vec<usize> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Field(f) => Some(f.col),
                Item::Lit(_) => None,
            })
            .collect();
        Some(ClfLayout {
            text: [cols[0], cols[1], cols[2]],
            time: cols[3],
            request: cols[4],
            status: cols[5],
            bytes: cols[6],
            tail: combined.then(|| [cols[7], cols[8]]),
        })
    }
}

/// The columns of a template laid out as the Common or Combined Log Format (see
/// [`Template::clf_layout`]): such lines are read by the CLF parser's scanner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClfLayout {
    /// Host, ident and user (or what the template has in their places).
    pub text: [usize; 3],
    /// The time; its offset is the next column.
    pub time: usize,
    /// The request; method, path and protocol are the next three columns.
    pub request: usize,
    pub status: usize,
    pub bytes: usize,
    /// Referer and user agent.
    pub tail: Option<[usize; 2]>,
}
