//! The watermark generator of a source: bounded out-of-orderness, with an idle timeout after
//! which event time follows the wall clock so windows close when input stalls.

use serde::{Deserialize, Serialize};

use crate::config::Duration;
use crate::time::{Millis, MIN_TIME};

const fn default_bound() -> Duration {
    Duration::from_ms(0)
}

const fn default_idle() -> Duration {
    Duration::from_ms(30_000)
}

const fn default_max_future() -> Duration {
    Duration::from_ms(86_400_000)
}

/// `[source.NAME.event_time]`: which field holds event time and how disordered it may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTimeConfig {
    /// The timestamp field of the parsed records (`"timestamp"` for CLF).
    pub field: String,
    /// How far behind the newest record seen a record may still arrive without being late
    /// (default `"0s"`). The watermark is the newest event time minus this.
    #[serde(default = "default_bound")]
    pub max_out_of_orderness: Duration,
    /// After this long without input (default `"30s"`), event time advances with the wall
    /// clock, so the last windows of a stalled stream still close. `"0s"` disables it.
    #[serde(default = "default_idle")]
    pub idle_timeout: Duration,
    /// A record dated more than this (default `"1d"`) after both the newest event time seen
    /// and the wall clock is refused: it goes to `NAME.errors` with the reason and does not
    /// move the watermark, so one line dated 2095 cannot make every later record late. A
    /// replay of old logs is never refused for its gaps (the wall clock is ahead of them);
    /// a wrong date that is still in the past (1995 in a 2024 log) is not caught by this.
    /// `"0s"` turns the check off.
    #[serde(default = "default_max_future")]
    pub max_future: Duration,
}

/// A [`WatermarkGen`]'s checkpointed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkState {
    /// The newest event time seen.
    pub max_ts: Millis,
}

/// Tracks the newest event time and turns it into watermarks.
#[derive(Debug, Clone)]
pub struct WatermarkGen {
    bound: i64,
    idle_timeout: i64,
    max_future: i64,
    max_ts: Millis,
    emitted: Millis,
    /// Wall-clock time of the last record.
    last_input_wall: Millis,
}

impl WatermarkGen {
    /// A generator for `cfg`.
    pub fn new(cfg: &EventTimeConfig) -> Self {
        WatermarkGen {
            bound: cfg.max_out_of_orderness.ms,
            idle_timeout: cfg.idle_timeout.ms,
            max_future: cfg.max_future.ms,
            max_ts: MIN_TIME,
            emitted: MIN_TIME,
            last_input_wall: MIN_TIME,
        }
    }

    /// Records seen with the largest event time `max_ts` at wall time `now`.
    pub fn observe(&mut self, max_ts: Option<Millis>, now: Millis) {
        if let Some(t) = max_ts {
            self.max_ts = self.max_ts.max(t);
        }
        self.last_input_wall = now;
    }

    /// The latest event time accepted at wall time `now` (see
    /// [`EventTimeConfig::max_future`]); `None` when the check is off.
    pub fn future_limit(&self, now: Millis) -> Option<Millis> {
        (self.max_future > 0).then(|| self.max_ts.max(now).saturating_add(self.max_future))
    }

    /// What survives a restart: the newest event time seen.
    pub fn state(&self) -> WatermarkState {
        WatermarkState {
            max_ts: self.max_ts,
        }
    }

    /// Continues from `state` at wall time `now`; the restored watermark is emitted again on
    /// the next poll, because downstream stages start without one.
    pub fn restore(&mut self, state: &WatermarkState, now: Millis) {
        self.max_ts = state.max_ts;
        self.emitted = MIN_TIME;
        self.last_input_wall = now;
    }

    /// The watermark to emit at wall time `now`, if it advanced.
    pub fn poll(&mut self, now: Millis) -> Option<Millis> {
        if self.max_ts == MIN_TIME {
            return None;
        }
        let mut wm = self.max_ts.saturating_sub(self.bound);
        let idle_for = now.saturating_sub(self.last_input_wall);
        if self.idle_timeout > 0 && idle_for >= self.idle_timeout {
            wm = wm.saturating_add(idle_for);
        }
        (wm > self.emitted).then(|| {
            self.emitted = wm;
            wm
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_disorder_then_idle_clock() {
        let cfg = EventTimeConfig {
            field: "ts".into(),
            max_out_of_orderness: Duration::from_ms(30_000),
            idle_timeout: Duration::from_ms(10_000),
            max_future: Duration::from_ms(60_000),
        };
        let mut g = WatermarkGen::new(&cfg);
        assert_eq!(g.poll(0), None, "no watermark before the first record");
        g.observe(Some(100_000), 0);
        assert_eq!(g.poll(0), Some(70_000));
        g.observe(Some(90_000), 1_000); // out of order: no regression
        assert_eq!(g.poll(1_000), None);
        assert_eq!(g.poll(10_999), None, "not idle yet");
        assert_eq!(
            g.poll(11_000),
            Some(80_000),
            "idle 10 s: event time moves with the clock"
        );
        assert_eq!(g.poll(41_000), Some(110_000));
        // The newer of event time and wall clock, plus max_future.
        assert_eq!(g.future_limit(0), Some(160_000));
        assert_eq!(g.future_limit(1_000_000), Some(1_060_000));
    }
}
