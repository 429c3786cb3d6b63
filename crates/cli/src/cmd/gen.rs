//! `weir gen`: deterministic synthetic input to stdout, a file or an HTTP endpoint.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum GenKind {
    /// Common Log Format lines like the NASA logs of 1995: ~20 events/s of event time, 5 %
    /// up to 30 s out of order, 0.5 % malformed.
    Clf {
        #[command(flatten)]
        common: GenCommon,
    },
    /// JSON security messages {timestamp, type, target_ip, source_ip}: background events of
    /// four types and DDOS bursts on a few attacked targets that change every few minutes.
    /// Event time starts at --start and advances 1/--rate s per message (1 ms at full speed).
    Ddos {
        #[command(flatten)]
        common: GenCommon,
        /// Number of target addresses.
        #[arg(long, default_value_t = 1000)]
        targets: usize,
        /// Share of messages that are DDOS attempts on attacked targets.
        #[arg(long, default_value_t = 0.01)]
        attack_share: f64,
        /// Event time of the first message (RFC 3339); default: now.
        #[arg(long)]
        start: Option<String>,
    },
    /// A shop's clickstream as JSON {timestamp, user_id, session_id, action, product_id,
    /// category, query}: sessions viewing products (55 %), category pages (15 %), searching
    /// (15 %), adding to the cart (12 %) and buying (3 %), with Zipf popularity that drifts a
    /// rank every minute of event time. Event time starts at --start and advances 1/--rate s
    /// per event (1 ms at full speed).
    Clicks {
        #[command(flatten)]
        common: GenCommon,
        /// Number of products.
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        /// Number of categories the products belong to.
        #[arg(long, default_value_t = 100)]
        categories: usize,
        /// Number of users.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Event time of the first event (RFC 3339); default: now.
        #[arg(long)]
        start: Option<String>,
    },
    /// KDD Cup 1999 network-connection records replayed as JSON: each row of --file (plain or
    /// gzip, no header) with the column names of --names, plus `utc` (event time from --start,
    /// 1/--rate s apart), `uuid` (random, from the seed), `sequence_id` (from 0) and `index`
    /// (the file row, from 0). Rows are drawn at random with replacement, or with --once every
    /// row in file order exactly once.
    ///
    /// weir gen kdd --file kddcup.data_10_percent.gz --rate 100000 | weir run examples/anomaly.toml
    Kdd {
        #[command(flatten)]
        common: GenCommon,
        /// The file to replay.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Its column names, one `name: continuous.` or `name: symbolic.` per line (default:
        /// kddcup.names beside --file); the label is the last column of every row.
        #[arg(long, value_name = "FILE")]
        names: Option<PathBuf>,
        /// Every row once, in file order (-n then caps the count), instead of random draws.
        #[arg(long)]
        once: bool,
        /// Event time of the first record (RFC 3339); default: now.
        #[arg(long)]
        start: Option<String>,
    },
}

/// Options every generator takes.
#[derive(clap::Args)]
pub(crate) struct GenCommon {
    /// Number of lines; 0 = never stop.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    count: u64,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Lines per second of wall-clock time (token bucket); 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Output file (default: stdout).
    #[arg(long, short, conflicts_with = "http")]
    out: Option<PathBuf>,
    /// POST the lines to this URL instead, as newline-delimited JSON/text bodies of up to
    /// 8192 lines (for HTTP ingest endpoints).
    #[arg(long, visible_alias = "to", value_name = "URL")]
    http: Option<String>,
}

/// Where generated lines go.
enum GenOut {
    Writer(Box<dyn Write>),
    /// The agent, the URL, and how many times the endpoint answered 429.
    Http(ureq::Agent, String, u64),
}

impl GenOut {
    fn send(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        match self {
            GenOut::Writer(w) => Ok(w.write_all(chunk)?),
            GenOut::Http(agent, url, waits) => loop {
                let mut resp = agent
                    .post(url.as_str())
                    .header("Content-Type", "application/x-ndjson")
                    .send(chunk)
                    .with_context(|| format!("POST to {url}"))?;
                let status = resp.status().as_u16();
                if status == 429 {
                    // The endpoint is saturated: wait as long as it asks, then send again.
                    let secs = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                        .unwrap_or(1);
                    *waits += 1;
                    std::thread::sleep(std::time::Duration::from_secs(secs.clamp(1, 60)));
                    continue;
                }
                if !(200..300).contains(&status) {
                    let body = resp.body_mut().read_to_string().unwrap_or_default();
                    anyhow::bail!("POST to {url}: HTTP {status}: {}", body.trim());
                }
                return Ok(());
            },
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let GenOut::Writer(w) = self {
            w.flush()?;
        }
        Ok(())
    }
}

pub(crate) fn generate(
    mut cfg: weir_source::gen::GenConfig,
    common: GenCommon,
) -> anyhow::Result<ExitCode> {
    use weir_core::{ReadOutcome, Source};
    cfg.count = common.count;
    cfg.rate = common.rate;
    cfg.seed = common.seed;
    let mut src = weir_source::gen::GenSource::new(&cfg)?;
    let mut w = match (&common.out, &common.http) {
        (_, Some(url)) => GenOut::Http(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            url.clone(),
            0,
        ),
        (Some(p), None) => GenOut::Writer(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        (None, None) => GenOut::Writer(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        ))),
    };
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        buf.clear();
        match src.read(&mut buf, std::time::Duration::from_millis(100))? {
            ReadOutcome::Eof => break,
            ReadOutcome::Idle => w.flush()?,
            ReadOutcome::Data => {
                w.send(&buf)?;
                if cfg.rate > 0 {
                    w.flush()?;
                }
            }
        }
    }
    w.flush()?;
    if let GenOut::Http(_, url, waits @ 1..) = w {
        eprintln!(
            "weir gen: {url} was saturated {waits} times (429); waited as it asked and sent again"
        );
    }
    Ok(ExitCode::SUCCESS)
}
