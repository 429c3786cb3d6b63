//! A shop's clickstream as JSON lines, for the trends job: users in sessions viewing products,
//! browsing category pages, searching, adding to the cart and buying.
//!
//! ```json
//! {"timestamp":"2026-12-03T10:00:00.000Z","user_id":"u4711","session_id":"s12","action":"view","product_id":"p42","category":"c7"}
//! {"timestamp":"2026-12-03T10:00:00.001Z","user_id":"u4711","session_id":"s12","action":"search","query":"q3"}
//! ```
//!
//! - Actions: `view` 55 %, `category` (a category page, with `category` only) 15 %, `search`
//!   (with `query` only) 15 %, `add_to_cart` 12 %, `purchase` 3 % — about the shares of the
//!   real Taobao sample, with searches and category pages added. A cart or purchase is of the
//!   product the session viewed last, 70 % of the time.
//! - Popularity is Zipf (exponent 1.1) over products, categories and search terms. Product
//!   popularity drifts: every 10 minutes of event time a new product becomes the most popular
//!   and every other moves one rank down, so hits fade slowly and the top K of a sliding
//!   window changes as trends do. Each product belongs to one category for good.
//! - 1 000 sessions are open at a time; each event continues a random one, and a session ends
//!   after about 20 events, replaced by a new one of a random user (Zipf: some users come back
//!   often).
//! - Event time starts at `start_ms` and advances `1000 / events_per_sec` ms per event, in
//!   order. The same seed gives the same bytes.

use super::{zipf_cum, LineGen, Rng};

/// How popularity moves: every `DRIFT_MS` of event time, each product moves one rank down and
/// the product that was least popular becomes the most.
const DRIFT_MS: i64 = 600_000;
const ACTIONS: [&str; 5] = ["view", "category", "search", "add_to_cart", "purchase"];
const ACTION_CUM: [f64; 5] = [0.55, 0.70, 0.85, 0.97, 1.00];
const OPEN_SESSIONS: usize = 1000;
const SEARCH_TERMS: usize = 2000;

/// One open session: its id, user, and the product viewed last.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
    user: usize,
    last_viewed: Option<usize>,
}

/// Generates clickstream events (see the module docs).
pub struct ClicksGen {
    rng: Rng,
    product_cum: Vec<f64>,
    category_of: Vec<usize>,
    category_cum: Vec<f64>,
    user_cum: Vec<f64>,
    term_cum: Vec<f64>,
    sessions: Vec<Session>,
    next_session: u64,
    start_ms: i64,
    step_ms: f64,
    n: u64,
}

impl ClicksGen {
    /// `products` in `categories`, `users`; event time from `start_ms`, `events_per_sec`.
    pub fn new(
        seed: u64,
        products: usize,
        categories: usize,
        users: usize,
        start_ms: i64,
        events_per_sec: f64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let (products, categories, users) = (products.max(1), categories.max(1), users.max(1));
        // Categories have Zipf sizes too: a few large ones, many small.
        let category_cum = zipf_cum(categories, 1.0);
        let category_of = (0..products).map(|_| rng.pick(&category_cum)).collect();
        let user_cum = zipf_cum(users, 0.8);
        let mut g = ClicksGen {
            product_cum: zipf_cum(products, 1.1),
            category_of,
            category_cum,
            term_cum: zipf_cum(SEARCH_TERMS, 1.0),
            sessions: Vec::with_capacity(OPEN_SESSIONS),
            next_session: 0,
            user_cum,
            rng,
            start_ms,
            step_ms: 1000.0 / events_per_sec.max(1e-3),
            n: 0,
        };
        for _ in 0..OPEN_SESSIONS {
            let s = g.new_session();
            g.sessions.push(s);
        }
        g
    }

    fn new_session(&mut self) -> Session {
        self.next_session += 1;
        Session {
            id: self.next_session,
            user: self.rng.pick(&self.user_cum),
            last_viewed: None,
        }
    }

    /// A product drawn by popularity at event time `t`: the popularity ranks drift.
    fn product(&mut self, t: i64) -> usize {
        let n = self.product_cum.len();
        let rank = self.rng.pick(&self.product_cum);
        let shift = (t - self.start_ms).div_euclid(DRIFT_MS) as usize % n;
        (rank + n - shift) % n
    }
}

impl LineGen for ClicksGen {
    fn set_start(&mut self, start_ms: i64) {
        self.start_ms = start_ms;
    }

    fn line(&mut self, out: &mut Vec<u8>) {
        use std::io::Write;
        let t = self.start_ms + (self.n as f64 * self.step_ms) as i64;
        self.n += 1;
        let s = self.rng.below(self.sessions.len() as u64) as usize;
        if self.rng.below(20) == 0 {
            self.sessions[s] = self.new_session();
        }
        let action = ACTIONS[self.rng.pick(&ACTION_CUM)];
        let mut ts = String::new();
        weir_core::time::write_rfc3339_ms(t, &mut ts);
        let (id, user) = (self.sessions[s].id, self.sessions[s].user);
        let _ = write!(
            out,
            r#"{{"timestamp":"{ts}","user_id":"u{user}","session_id":"s{id}","action":"{action}""#
        );
        match action {
            "category" => {
                let c = self.rng.pick(&self.category_cum);
                let _ = write!(out, r#","category":"c{c}""#);
            }
            "search" => {
                let q = self.rng.pick(&self.term_cum);
                let _ = write!(out, r#","query":"q{q}""#);
            }
            _ => {
                let again = match self.sessions[s].last_viewed {
                    Some(p) if action != "view" && self.rng.f64() < 0.7 => Some(p),
                    _ => None,
                };
                let p = match again {
                    Some(p) => p,
                    None => self.product(t),
                };
                if action == "view" {
                    self.sessions[s].last_viewed = Some(p);
                }
                let c = self.category_of[p];
                let _ = write!(out, r#","product_id":"p{p}","category":"c{c}""#);
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn events(seed: u64, n: usize) -> Vec<serde_json::Value> {
        let mut g = ClicksGen::new(seed, 10_000, 100, 100_000, 1_764_547_200_000, 1000.0);
        let mut buf = Vec::new();
        for _ in 0..n {
            g.line(&mut buf);
        }
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    #[test]
    fn same_seed_same_events_and_each_action_has_its_fields() {
        let a = events(7, 100_000);
        assert_eq!(a, events(7, 100_000));
        assert_ne!(a[..100], events(8, 100)[..]);
        assert_eq!(a[0]["timestamp"], "2025-12-01T00:00:00Z");
        assert_eq!(a[1000]["timestamp"], "2025-12-01T00:00:01Z");
        let mut actions: HashMap<String, usize> = HashMap::new();
        let mut category_of: HashMap<String, String> = HashMap::new();
        for e in &a {
            let o = e.as_object().unwrap();
            let action = o["action"].as_str().unwrap().to_string();
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            let extra: &[&str] = match action.as_str() {
                "category" => &["category"],
                "search" => &["query"],
                _ => &["product_id", "category"],
            };
            for k in ["timestamp", "user_id", "session_id", "action"]
                .iter()
                .chain(extra)
            {
                assert!(keys.contains(k), "{e} lacks {k}");
            }
            assert_eq!(keys.len(), 4 + extra.len(), "{e}");
            if let Some(p) = o.get("product_id") {
                // A product stays in its category.
                let c = o["category"].as_str().unwrap().to_string();
                let seen = category_of
                    .entry(p.as_str().unwrap().into())
                    .or_insert(c.clone());
                assert_eq!(*seen, c, "{p} changed category");
            }
            *actions.entry(action).or_default() += 1;
        }
        for (action, share) in [
            ("view", 0.55),
            ("category", 0.15),
            ("search", 0.15),
            ("add_to_cart", 0.12),
            ("purchase", 0.03),
        ] {
            let got = actions[action] as f64 / a.len() as f64;
            assert!((got - share).abs() < 0.01, "{action}: {got}");
        }
    }

    #[test]
    fn popularity_is_skewed_and_drifts() {
        // 100 events per second of event time: the first 10 minutes and those an hour later.
        let mut g = ClicksGen::new(3, 10_000, 100, 100_000, 1_764_547_200_000, 100.0);
        let mut buf = Vec::new();
        for _ in 0..420_000 {
            g.line(&mut buf);
        }
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        fn product(l: &str) -> Option<&str> {
            l.split(r#""product_id":""#).nth(1)?.split('"').next()
        }
        let ranked = |from: usize| {
            let mut n: HashMap<&str, usize> = HashMap::new();
            for l in &lines[from..from + 60_000] {
                if l.contains(r#""action":"view""#) {
                    *n.entry(product(l).unwrap()).or_default() += 1;
                }
            }
            let views: usize = n.values().sum();
            let mut v: Vec<(usize, &str)> = n.into_iter().map(|(p, c)| (c, p)).collect();
            v.sort_unstable_by(|x, y| y.cmp(x));
            (v, views)
        };
        let (first, views) = ranked(0);
        let share = first[0].0 as f64 / views as f64;
        assert!(share > 0.08, "the top product has {share} of the views");
        assert!(first.len() > 2000, "{} products viewed", first.len());
        let (later, _) = ranked(360_000);
        assert_ne!(
            first[0].1, later[0].1,
            "an hour later the top product is another"
        );
        // The hit of the first 10 minutes has faded six ranks, not vanished.
        let now = later.iter().position(|(_, p)| *p == first[0].1).unwrap();
        assert!((4..=9).contains(&now), "the first hit is now at rank {now}");
        // A cart is of the product the session viewed last 70 % of the time, so carts are as
        // skewed as views.
        let carts = lines
            .iter()
            .filter(|l| l.contains(r#""action":"add_to_cart""#))
            .count();
        assert!((48_000..53_000).contains(&carts), "{carts} carts");
    }
}
