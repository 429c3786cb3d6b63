//! Secrets out of everything weir writes as text: a URL shown in a warning, a dead letter, the
//! summary or an error keeps its scheme, host and port and loses what may be a credential.
//!
//! A webhook URL's user and password, its query (`?token=…`) and its path (a Slack or Teams
//! incoming-webhook URL is itself the secret: `https://hooks.slack.com/services/T…/B…/X…`)
//! all become `***`.
//!
//! ```
//! use weir_core::redact::{url, Redactor};
//! assert_eq!(url("https://bot:hunter2@example.com:8443/hook/abc?token=s3cr3t"),
//!            "https://***@example.com:8443/***?***");
//! let r = Redactor::new("http://u:pw@h/x?token=s3cr3t");
//! assert_eq!(r.scrub("POST http://u:pw@h/x?token=s3cr3t: refused (pw)"),
//!            "POST http://***@h/***?***: refused (***)");
//! ```

/// The parts of `scheme://[userinfo@]host[/path][?query]`; `None` without `://`.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    path: &'a str,
    query: &'a str,
}

fn parts(raw: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = raw.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    Some(Parts {
        scheme,
        userinfo,
        host,
        path,
        query,
    })
}

/// `raw` with credentials, path and query replaced by `***`.
pub fn url(raw: &str) -> String {
    let Some(p) = parts(raw) else {
        return "***".into();
    };
    let mut out = format!("{}://", p.scheme);
    if p.userinfo.is_some() {
        out.push_str("***@");
    }
    out.push_str(p.host);
    if !p.path.trim_end_matches('/').is_empty() {
        out.push_str("/***");
    }
    if !p.query.is_empty() {
        out.push_str("?***");
    }
    out
}

/// Scrubs one URL's secrets from any text (a library's error message may quote the URL, or
/// only its password).
#[derive(Debug, Clone)]
pub struct Redactor {
    /// (secret, replacement), longest first.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for the secrets of `raw_url`.
    pub fn new(raw_url: &str) -> Self {
        let mut secrets = vec![(raw_url.to_string(), url(raw_url))];
        if let Some(p) = parts(raw_url) {
            if let Some(userinfo) = p.userinfo {
                secrets.push((format!("{userinfo}@"), "***@".into()));
                if let Some((_, password)) = userinfo.split_once(':') {
                    secrets.push((password.to_string(), "***".into()));
                }
            }
            if p.path.trim_end_matches('/').len() > 1 {
                secrets.push((p.path.to_string(), "/***".into()));
            }
            if !p.query.is_empty() {
                secrets.push((p.query.to_string(), "***".into()));
            }
        }
        // Short fragments (a one-letter password) would mangle unrelated text.
        secrets.retain(|(s, _)| s.len() >= 2);
        secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    /// The URL, redacted.
    pub fn url(&self) -> &str {
        self.secrets.first().map_or("***", |s| s.1.as_str())
    }

    /// `text` with every secret of the URL replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, with) in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), with);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_every_part_are_replaced() {
        for (raw, want) in [
            ("https://example.com/", "https://example.com"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            (
                "https://hooks.slack.com/services/T0/B0/XYZ",
                "https://hooks.slack.com/***",
            ),
            ("http://user:pw@h:1/a?token=t&x=y", "http://***@h:1/***?***"),
            ("http://tok@h", "http://***@h"),
            (
                "postgresql://weir:s3cret@db:5432/test",
                "postgresql://***@db:5432/***",
            ),
            ("not a url", "***"),
        ] {
            assert_eq!(url(raw), want, "{raw}");
        }
    }

    #[test]
    fn scrub_finds_secrets_quoted_in_pieces() {
        let r = Redactor::new("https://bot:hunter2@hooks.example.com/services/T0/B0?token=abc");
        let text = "hunter2 rejected for bot:hunter2@hooks.example.com; token=abc; \
                    /services/T0/B0 not found";
        let s = r.scrub(text);
        for secret in ["hunter2", "token=abc", "/services/T0/B0"] {
            assert!(!s.contains(secret), "{s}");
        }
        assert_eq!(r.url(), "https://***@hooks.example.com/***?***");
    }
}
