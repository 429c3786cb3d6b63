//! Deterministic generators of realistic input, for examples, tests and benchmarks.
//!
//! [`ClfGen`] writes Common Log Format lines shaped like the peers' `gen_clf.py`: about 20
//! events per second of event time from 01/Jul/1995 00:00:00 -0400, 50 hosts and 200 paths
//! with Zipf-like skew, statuses 200/304/302/404/500/403 at 80/8/5/4/2/1 %, 5 % of lines up to
//! 30 s out of order, 0.5 % malformed (one in five without any timestamp). The same seed gives
//! the same bytes on every machine.
//!
//! [`DdosGen`] writes JSON security messages `{"timestamp", "type", "target_ip",
//! "source_ip"}`: background events of four types against `targets` addresses, and a share of
//! DDOS events concentrated on a few attacked targets that change every few minutes of event
//! time, so "10 DDOS attempts at one IP within 5 minutes" fires now and then.
//!
//! [`ClicksGen`] writes a shop's clickstream as JSON (see [`clicks`]): sessions viewing,
//! searching, adding to the cart and buying, with Zipf popularity that drifts.
//!
//! [`KddGen`] replays the rows of a KDD Cup 1999 file as JSON (see [`kdd`]), drawn at random
//! or each once in order, with `utc`, `uuid`, `sequence_id` and `index` added.

pub mod clicks;
pub mod kdd;

pub use clicks::ClicksGen;
pub use kdd::KddGen;
use serde::Deserialize;
use weir_core::{Error, ReadOutcome, Result, Source, SourcePosition};

/// A small, fast, seedable generator (SplitMix64 seeding xoshiro256**).
#[derive(Debug, Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Index drawn from cumulative weights.
    pub fn pick(&mut self, cum: &[f64]) -> usize {
        let x = self.f64() * cum[cum.len() - 1];
        cum.partition_point(|&c| c <= x).min(cum.len() - 1)
    }
}

fn zipf_cum(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|i| {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            acc
        })
        .collect()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const STATUSES: [&str; 6] = ["200", "304", "302", "404", "500", "403"];
const STATUS_CUM: [f64; 6] = [0.80, 0.88, 0.93, 0.97, 0.99, 1.00];
/// 1995-07-01T00:00:00-04:00.
const START_EPOCH: i64 = 804_571_200;

/// Generates CLF lines (see the module docs).
pub struct ClfGen {
    rng: Rng,
    hosts: Vec<String>,
    paths: Vec<String>,
    host_cum: Vec<f64>,
    path_cum: Vec<f64>,
    clock: f64,
    last_sec: i64,
    ts_text: String,
}

impl ClfGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let domains = [
            "ksc.example.com",
            "prodigy.example.net",
            "aol.example.com",
            "compuserve.example.com",
            "netcom.example.com",
        ];
        let hosts = (0..50)
            .map(|i| {
                if i % 7 == 3 {
                    format!("198.51.100.{}", 10 + i)
                } else {
                    format!("h{i:02}.{}", domains[i % 5])
                }
            })
            .collect();
        let mut paths: Vec<String> = [
            "/",
            "/index.html",
            "/ksc.html",
            "/history/apollo/",
            "/shuttle/countdown/",
            "/images/NASA-logosmall.gif",
            "/images/KSC-logosmall.gif",
            "/cgi-bin/imagemap/countdown",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        paths.extend((0..60).map(|i| format!("/images/img{i:03}.gif")));
        paths.extend((40..90).map(|n| format!("/shuttle/missions/sts-{n}/mission-sts-{n}.html")));
        paths.extend((1..18).map(|n| format!("/history/apollo/apollo-{n}/apollo-{n}.html")));
        paths.extend((0..65).map(|i| format!("/docs/page{i:02}.html")));
        // Shuffle so popularity is not alphabetical.
        for i in (1..paths.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            paths.swap(i, j);
        }
        ClfGen {
            host_cum: zipf_cum(50, 1.1),
            path_cum: zipf_cum(paths.len(), 0.9),
            hosts,
            paths,
            rng,
            clock: START_EPOCH as f64,
            last_sec: i64::MIN,
            ts_text: String::new(),
        }
    }

    /// Appends one line (with `\n`) to `out`.
    pub fn line(&mut self, out: &mut Vec<u8>) {
        use std::io::Write;
        let r = &mut self.rng;
        self.clock += -0.05 * (1.0 - r.f64()).ln();
        let t = if r.f64() < 0.05 {
            self.clock - r.f64() * 30.0
        } else {
            self.clock
        };
        let sec = t as i64;
        if sec != self.last_sec {
            let local = sec - 4 * 3600;
            let (y, m, d) = weir_core::time::civil_from_days(local.div_euclid(86_400));
            let sod = local.rem_euclid(86_400);
            self.ts_text = format!(
                "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} -0400",
                MONTHS[m as usize - 1],
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            );
            self.last_sec = sec;
        }
        let host = &self.hosts[r.pick(&self.host_cum)];
        let path = &self.paths[r.pick(&self.path_cum)];
        let x = r.f64();
        let method = if x < 0.98 {
            "GET"
        } else if x < 0.99 {
            "HEAD"
        } else {
            "POST"
        };
        let status = STATUSES[r.pick(&STATUS_CUM)];
        let size = match status {
            "304" => {
                if r.f64() < 0.5 {
                    "0".to_string()
                } else {
                    "-".to_string()
                }
            }
            "200" | "302" => ((8.0 + 1.5 * normal(r)).exp() as u64 + 1).to_string(),
            _ => {
                if r.f64() < 0.8 {
                    r.below(1501).to_string()
                } else {
                    "-".to_string()
                }
            }
        };
        let ts = &self.ts_text;
        if r.f64() < 0.005 {
            let _ = match r.below(10) {
                0 => writeln!(out),
                1 => writeln!(out, "{host} - - GET {path} ???"),
                2 | 3 => writeln!(out, "{host} - - [{ts}] \"{method} {path}"),
                4 => writeln!(
                    out,
                    "{host} - - [{ts}] \"{method} {path} HTTP/1.0\" 2O0 {size}"
                ),
                5 => writeln!(
                    out,
                    "{host} - - [{ts}] \"{method} {path} HTTP/1.0 {status} {size}"
                ),
                6 => writeln!(
                    out,
                    "{host} - - [{ts}] \"{method} {path} extra HTTP/1.0\" {status} {size}"
                ),
                7 => writeln!(out, "{host} - - [{ts}] \"{path}\" {status} {size}"),
                8 => writeln!(
                    out,
                    "{host} - - [{ts}] \"{method} {path} HTTP/1.0\" {status} {size} junk"
                ),
                _ => writeln!(
                    out,
                    "{host} - - [{ts}] \"{method} {path} HTTP/1.0\" {status}0 {size}"
                ),
            };
        } else {
            let _ = writeln!(
                out,
                "{host} - - [{ts}] \"{method} {path} HTTP/1.0\" {status} {size}"
            );
        }
    }
}

/// A standard normal deviate (Box–Muller).
fn normal(r: &mut Rng) -> f64 {
    let (u1, u2) = (1.0 - r.f64(), r.f64());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Something that writes one line at a time.
pub trait LineGen: Send {
    /// Appends one line (with `\n`) to `out`.
    fn line(&mut self, out: &mut Vec<u8>);

    /// Moves the event time of the first line to `start_ms` (for generators whose event time
    /// follows the wall clock from the moment they start).
    fn set_start(&mut self, _start_ms: i64) {}
}

impl LineGen for ClfGen {
    fn line(&mut self, out: &mut Vec<u8>) {
        ClfGen::line(self, out)
    }
}

/// Generates JSON security messages (see the module docs).
pub struct DdosGen {
    rng: Rng,
    targets: Vec<String>,
    attack_share: f64,
    attacked: Vec<usize>,
    attack_until: Vec<i64>,
    start_ms: i64,
    step_ms: f64,
    n: u64,
}

/// Background event types and their cumulative weights: DDOS attempts are rare outside attacks.
const EVENT_TYPES: [&str; 4] = ["AUTH_FAILURE", "PORT_SCAN", "MALWARE", "DDOS"];
const EVENT_CUM: [f64; 4] = [0.40, 0.75, 0.99, 1.00];

impl DdosGen {
    /// `targets` addresses; `attack_share` of events are DDOS on attacked targets; event time
    /// starts at `start_ms` and advances `1000 / events_per_sec` ms per event.
    pub fn new(
        seed: u64,
        targets: usize,
        attack_share: f64,
        start_ms: i64,
        events_per_sec: f64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let targets: Vec<String> = (0..targets.max(1))
            .map(|i| format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256))
            .collect();
        let n_attacked = (targets.len() / 200).max(1);
        let attacked = (0..n_attacked)
            .map(|_| rng.below(targets.len() as u64) as usize)
            .collect();
        DdosGen {
            attack_until: vec![start_ms; n_attacked],
            rng,
            targets,
            attack_share,
            attacked,
            start_ms,
            step_ms: 1000.0 / events_per_sec.max(1e-3),
            n: 0,
        }
    }
}

impl LineGen for DdosGen {
    fn set_start(&mut self, start_ms: i64) {
        let shift = start_ms - self.start_ms;
        self.start_ms = start_ms;
        for u in &mut self.attack_until {
            *u += shift;
        }
    }

    fn line(&mut self, out: &mut Vec<u8>) {
        use std::io::Write;
        let t = self.start_ms + (self.n as f64 * self.step_ms) as i64;
        self.n += 1;
        let r = &mut self.rng;
        let (kind, target) = if r.f64() < self.attack_share {
            let a = r.below(self.attacked.len() as u64) as usize;
            if t >= self.attack_until[a] {
                // This attack is over: another target is hit for 1 to 10 minutes.
                self.attacked[a] = r.below(self.targets.len() as u64) as usize;
                self.attack_until[a] = t + 60_000 * (1 + r.below(10) as i64);
            }
            ("DDOS", self.attacked[a])
        } else {
            (
                EVENT_TYPES[r.pick(&EVENT_CUM)],
                r.below(self.targets.len() as u64) as usize,
            )
        };
        let source = format!("203.0.{}.{}", r.below(256), r.below(256));
        let mut ts = String::new();
        weir_core::time::write_rfc3339_ms(t, &mut ts);
        let _ = writeln!(
            out,
            r#"{{"timestamp":"{ts}","type":"{kind}","target_ip":"{}","source_ip":"{source}"}}"#,
            self.targets[target]
        );
    }
}

/// What a generator source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenKind {
    /// Common Log Format lines ([`ClfGen`]).
    Clf,
    /// JSON security messages ([`DdosGen`]).
    Ddos,
    /// A shop's clickstream as JSON ([`ClicksGen`]).
    Clicks,
    /// KDD Cup 1999 records replayed as JSON ([`KddGen`]).
    Kdd,
}

const fn default_targets() -> usize {
    1000
}

const fn default_attack_share() -> f64 {
    0.01
}

const fn default_seed() -> u64 {
    42
}

const fn default_products() -> usize {
    10_000
}

const fn default_categories() -> usize {
    100
}

const fn default_users() -> usize {
    100_000
}

/// `[source.NAME] type = "generator"`: synthetic input without any file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenConfig {
    /// What to generate: `"clf"`, `"ddos"`, `"clicks"` or `"kdd"`.
    pub kind: GenKind,
    /// Lines to produce; 0 (default) never ends.
    #[serde(default)]
    pub count: u64,
    /// Lines per second of wall-clock time; 0 (default) is as fast as possible.
    #[serde(default)]
    pub rate: u64,
    /// Random seed (default 42): the same seed gives the same lines.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `ddos`: number of target addresses (default 1000).
    #[serde(default = "default_targets")]
    pub targets: usize,
    /// `ddos`: share of events that are DDOS on attacked targets (default 0.01).
    #[serde(default = "default_attack_share")]
    pub attack_share: f64,
    /// `ddos`, `clicks`, `kdd`: event time of the first message, RFC 3339 (default: now). Event time
    /// advances by 1/`rate` s per message (1 ms when `rate` is 0).
    #[serde(default)]
    pub start: Option<String>,
    /// `clicks`: number of products (default 10 000).
    #[serde(default = "default_products")]
    pub products: usize,
    /// `clicks`: number of categories (default 100).
    #[serde(default = "default_categories")]
    pub categories: usize,
    /// `clicks`: number of users (default 100 000).
    #[serde(default = "default_users")]
    pub users: usize,
    /// `kdd`: the KDD Cup 1999 file to replay (plain or gzip, no header row).
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
    /// `kdd`: its column names, in `kddcup.names`' layout (default: `kddcup.names` beside
    /// `file`); the label is the last column.
    #[serde(default)]
    pub names: Option<std::path::PathBuf>,
    /// `kdd`: every row once, in file order (`count` then caps it), instead of rows drawn at
    /// random with replacement.
    #[serde(default)]
    pub once: bool,
}

impl GenConfig {
    /// A config with the defaults of every optional field.
    pub fn new(kind: GenKind) -> Self {
        GenConfig {
            kind,
            count: 0,
            rate: 0,
            seed: default_seed(),
            targets: default_targets(),
            attack_share: default_attack_share(),
            start: None,
            products: default_products(),
            categories: default_categories(),
            users: default_users(),
            file: None,
            names: None,
            once: false,
        }
    }
}

/// A generator as a source, with a token-bucket rate limit.
pub struct GenSource {
    gen: Box<dyn LineGen>,
    cfg: GenConfig,
    produced: u64,
    offset: u64,
    started: std::time::Instant,
    /// Lines skipped by a seek: the rate limit counts from there.
    skipped: u64,
}

impl GenSource {
    /// A source producing what `cfg` says.
    pub fn new(cfg: &GenConfig) -> Result<Self> {
        let mut cfg = cfg.clone();
        let gen: Box<dyn LineGen> = match cfg.kind {
            GenKind::Clf => Box::new(ClfGen::new(cfg.seed)),
            GenKind::Ddos | GenKind::Clicks | GenKind::Kdd => {
                let start = match &cfg.start {
                    None => weir_core::time::now_ms(),
                    Some(s) => weir_core::time::parse_rfc3339_ms(s).ok_or_else(|| {
                        Error::config("start", format!("expected an RFC 3339 time like \"2026-11-21T14:00:00Z\", got {s:?}"))
                    })?,
                };
                let per_sec = if cfg.rate > 0 {
                    cfg.rate as f64
                } else {
                    1000.0
                };
                match cfg.kind {
                    GenKind::Ddos => Box::new(DdosGen::new(
                        cfg.seed,
                        cfg.targets,
                        cfg.attack_share,
                        start,
                        per_sec,
                    )),
                    GenKind::Kdd => {
                        let file = cfg.file.as_deref().ok_or_else(|| {
                            Error::config("file", "a kdd generator replays a file: set `file` (e.g. kddcup.data_10_percent.gz)")
                        })?;
                        let names = cfg
                            .names
                            .clone()
                            .unwrap_or_else(|| kdd::default_names(file));
                        let rows = kdd::KddRows::load(file, &names)?;
                        if cfg.once {
                            let all = rows.len() as u64;
                            cfg.count = if cfg.count == 0 {
                                all
                            } else {
                                cfg.count.min(all)
                            };
                        }
                        Box::new(KddGen::new(
                            std::sync::Arc::new(rows),
                            cfg.seed,
                            cfg.once,
                            start,
                            per_sec,
                        ))
                    }
                    _ => Box::new(ClicksGen::new(
                        cfg.seed,
                        cfg.products,
                        cfg.categories,
                        cfg.users,
                        start,
                        per_sec,
                    )),
                }
            }
        };
        let mut gen = gen;
        let started = std::time::Instant::now();
        if cfg.kind != GenKind::Clf && cfg.start.is_none() {
            // Building 100 k target names takes milliseconds: start the event clock with the
            // token bucket, not before, or every message would look that much late.
            gen.set_start(weir_core::time::now_ms());
        }
        Ok(GenSource {
            gen,
            cfg,
            produced: 0,
            offset: 0,
            started,
            skipped: 0,
        })
    }
}

impl Source for GenSource {
    fn read(&mut self, buf: &mut Vec<u8>, wait: std::time::Duration) -> Result<ReadOutcome> {
        if self.cfg.count > 0 && self.produced >= self.cfg.count {
            return Ok(ReadOutcome::Eof);
        }
        let mut budget = 8192u64;
        if self.cfg.count > 0 {
            budget = budget.min(self.cfg.count - self.produced);
        }
        if self.cfg.rate > 0 {
            let allowed = (self.started.elapsed().as_secs_f64() * self.cfg.rate as f64) as u64;
            let available = allowed
                .saturating_sub(self.produced - self.skipped)
                .min(self.cfg.rate.max(1));
            if available == 0 {
                std::thread::sleep(wait.min(std::time::Duration::from_millis(1)));
                return Ok(ReadOutcome::Idle);
            }
            budget = budget.min(available);
        }
        let start = buf.len();
        for _ in 0..budget {
            self.gen.line(buf);
        }
        self.produced += budget;
        self.offset += (buf.len() - start) as u64;
        Ok(ReadOutcome::Data)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::at(self.offset)
    }

    /// Generates and discards the lines before `pos`: the same seed gives the same lines.
    fn seek(&mut self, pos: &SourcePosition) -> Result<()> {
        if self.cfg.kind == GenKind::Ddos && self.cfg.start.is_none() {
            return Err(Error::config(
                "start",
                "a ddos generator without `start` takes its event times from the clock, so it \
                 cannot be resumed from a checkpoint; set start = \"<RFC 3339 time>\"",
            ));
        }
        let mut fresh = GenSource::new(&self.cfg)?;
        let mut line = Vec::with_capacity(1024);
        while fresh.offset < pos.offset {
            line.clear();
            fresh.gen.line(&mut line);
            fresh.offset += line.len() as u64;
            fresh.produced += 1;
        }
        if fresh.offset != pos.offset || (self.cfg.count > 0 && fresh.produced > self.cfg.count) {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "byte {} is not a line boundary of this generator's output (were its \
                     options changed?)",
                    pos.offset
                ),
            ));
        }
        fresh.skipped = fresh.produced;
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_resumes_the_same_lines() {
        let mut cfg = GenConfig::new(GenKind::Ddos);
        cfg.count = 500;
        cfg.start = Some("2026-11-22T00:00:00Z".into());
        let mut all = Vec::new();
        let mut g = GenSource::new(&cfg).unwrap();
        while g.read(&mut all, std::time::Duration::ZERO).unwrap() == ReadOutcome::Data {}
        let cut = all
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(199)
            .unwrap()
            .0
            + 1;
        let mut resumed = GenSource::new(&cfg).unwrap();
        resumed.seek(&SourcePosition::at(cut as u64)).unwrap();
        let mut rest = Vec::new();
        while resumed.read(&mut rest, std::time::Duration::ZERO).unwrap() == ReadOutcome::Data {}
        assert_eq!(rest, &all[cut..]);
        assert!(resumed.seek(&SourcePosition::at(cut as u64 + 1)).is_err());
        cfg.start = None;
        let err = GenSource::new(&cfg)
            .unwrap()
            .seek(&SourcePosition::at(0))
            .unwrap_err();
        assert!(err.to_string().contains("set start"), "{err}");
    }

    #[test]
    fn ddos_messages_are_json_with_attack_bursts() {
        let mut g = DdosGen::new(3, 1000, 0.05, 1_700_000_000_000, 100.0);
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            g.line(&mut buf);
        }
        let text = String::from_utf8(buf).unwrap();
        let ddos: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(r#""type":"DDOS""#))
            .collect();
        // 5 % attack share plus 1 % of the background.
        assert!(
            (500..700).contains(&ddos.len()),
            "{} DDOS lines",
            ddos.len()
        );
        assert!(text
            .lines()
            .next()
            .unwrap()
            .starts_with(r#"{"timestamp":"2023-11-14T22:13:20Z","type":"#));
        let mut per_target = std::collections::HashMap::new();
        for l in &ddos {
            let t = l
                .split(r#""target_ip":""#)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            *per_target.entry(t).or_insert(0) += 1;
        }
        assert!(
            per_target.values().any(|&n| n >= 50),
            "attacked targets get bursts"
        );
    }

    #[test]
    fn same_seed_same_bytes_and_realistic_mix() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut ga, mut gb) = (ClfGen::new(7), ClfGen::new(7));
        for _ in 0..20_000 {
            ga.line(&mut a);
            gb.line(&mut b);
        }
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        let ok200 = lines.iter().filter(|l| l.contains("\" 200 ")).count();
        assert!(
            (15_000..17_000).contains(&ok200),
            "{ok200} lines with status 200"
        );
        assert!(
            lines[0].starts_with("h") || lines[0].starts_with("198."),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("[01/Jul/1995:00:00:"), "{}", lines[0]);
    }
}
