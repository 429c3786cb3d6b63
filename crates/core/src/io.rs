//! The process's one async runtime, for network connectors.
//!
//! Pipeline nodes are synchronous threads; a network client (NATS today, MQTT, Kafka and the
//! web server next) runs its connection on this runtime and a node waits on it with
//! [`tokio::runtime::Runtime::block_on`] for at most the time it may wait anyway (a source's
//! read wait, a sink's flush). Nothing is buffered between the two beyond what the node asked
//! for, so back-pressure reaches the network client.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shared runtime: two worker threads named `weir-io`, created on first use.
///
/// # Panics
/// If the operating system refuses to start its threads.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-io")
            .enable_all()
            .build()
            .expect("the I/O runtime's threads start")
    })
}

/// Exponential backoff between attempts to reach a server: 100 ms doubling to 30 s.
#[derive(Debug)]
pub struct Backoff {
    failures: u32,
    next: Instant,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    /// No failure yet: the first attempt is due now.
    pub fn new() -> Self {
        Backoff {
            failures: 0,
            next: Instant::now(),
        }
    }

    /// The wait after the failures so far.
    pub fn delay(&self) -> Duration {
        Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX)
    }

    /// An attempt failed: the next is due after [`Backoff::delay`].
    pub fn failed(&mut self) {
        self.next = Instant::now() + self.delay();
        self.failures += 1;
    }

    /// An attempt succeeded.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.next = Instant::now();
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the next attempt is due.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Time until the next attempt is due.
    pub fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Waits until a connection task has `want` things done (rows a broker acknowledged),
/// reading `(done, trouble)` from what it publishes on `rx`, and logs a warning every 5 s
/// while a trouble lasts (`what`: the connection, for the log). When the task ends first,
/// returns the last trouble it reported.
pub fn wait_for<P>(
    rx: &mut tokio::sync::watch::Receiver<P>,
    want: u64,
    what: &str,
    progress: impl Fn(&P) -> (u64, Option<String>),
) -> Result<(), Option<String>> {
    let mut warned = Instant::now();
    loop {
        let (done, trouble) = progress(&rx.borrow_and_update());
        if done >= want {
            return Ok(());
        }
        if let Some(why) = &trouble {
            if warned.elapsed() >= Duration::from_secs(5) {
                tracing::warn!(connection = %what, error = %why, waiting = want - done, "rows wait for the server");
                warned = Instant::now();
            }
        }
        let changed = runtime()
            .block_on(async { tokio::time::timeout(Duration::from_secs(1), rx.changed()).await });
        if let Ok(Err(_)) = changed {
            return Err(trouble);
        }
    }
}
