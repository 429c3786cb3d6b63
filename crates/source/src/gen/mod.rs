//! Deterministic generators of realistic input, for examples, tests and benchmarks.
//!
//! [`ClfGen`] writes Common Log Format lines shaped like the peers' `gen_clf.py`: about 20
//! events per second of event time from 01/Jul/1995 00:00:00 -0400, 50 hosts and 200 paths
//! with Zipf-like skew, statuses 200/304/302/404/500/403 at 80/8/5/4/2/1 %, 5 % of lines up to
//! 30 s out of order, 0.5 % malformed (one in five without any timestamp). The same seed gives
//! the same bytes on every machine.

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

/// What a generator source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenKind {
    /// Common Log Format lines ([`ClfGen`]).
    Clf,
}

const fn default_seed() -> u64 {
    42
}

/// `[source.NAME] type = "generator"`: synthetic input without any file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenConfig {
    /// What to generate: `"clf"`.
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
}

/// A generator as a source, with a token-bucket rate limit.
pub struct GenSource {
    gen: ClfGen,
    cfg: GenConfig,
    produced: u64,
    offset: u64,
    started: std::time::Instant,
}

impl GenSource {
    /// A source producing what `cfg` says.
    pub fn new(cfg: &GenConfig) -> Self {
        GenSource {
            gen: ClfGen::new(cfg.seed),
            cfg: cfg.clone(),
            produced: 0,
            offset: 0,
            started: std::time::Instant::now(),
        }
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
                .saturating_sub(self.produced)
                .min(self.cfg.rate.max(1));
            if available == 0 {
                std::thread::sleep(wait.min(std::time::Duration::from_millis(5)));
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

    fn seek(&mut self, _pos: &SourcePosition) -> Result<()> {
        Err(Error::config(
            "checkpoint",
            "a generator source cannot be resumed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
