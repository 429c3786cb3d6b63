//! One group's ranking: each key's value, and the head of the ranking in order.
//!
//! Keeping every key of a long window in an ordered set costs a removal and an insertion in
//! a large B-tree (and an allocation) for every key that changes at every slide, though only
//! the first K are ever read. A [`Ranking`] keeps in order only its *head*: exactly the keys
//! that rank at or before a *bound* entry. A change to a key behind the bound is one hash-map
//! write and one comparison. The head holds about `head` keys: when it grows to twice that it
//! is cut back (the bound moves up to its new last entry); when changes leave fewer than K
//! keys in it, it is rebuilt from the values by selection (O(keys), rare: it takes K keys
//! falling behind the bound between two cuts).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use hashbrown::HashMap;

use crate::acc::Out;

/// The head's target size for a top `k`: room for keys to fall behind the bound before a
/// rebuild is needed.
pub(super) fn head_size(k: usize) -> usize {
    k.saturating_mul(2).saturating_add(32)
}

/// One group's keys, each with its value, and its head in rank order.
pub(super) struct Ranking {
    /// Sliding windows: every key's value (tumbling windows offer their keys once and keep
    /// no values).
    values: HashMap<Box<[u8]>, Out>,
    /// The keys that rank at or before `bound`, in rank order.
    head: BTreeSet<Entry>,
    /// `None`: every key is in the head.
    bound: Option<Entry>,
    /// The head's target size (see [`head_size`]).
    size: usize,
}

impl Ranking {
    pub(super) fn new(size: usize) -> Self {
        Ranking {
            values: HashMap::new(),
            head: BTreeSet::new(),
            bound: None,
            size: size.max(1),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.values.is_empty() && self.head.is_empty()
    }

    /// A key's value (sliding windows).
    pub(super) fn value(&self, item: &[u8]) -> Option<Out> {
        self.values.get(item).copied()
    }

    /// Whether a key with this value belongs in the head.
    fn in_head(&self, value: Out, item: &[u8]) -> bool {
        match &self.bound {
            None => true,
            Some(b) => (&Probe::new(value, item) as &dyn Ranked) <= (b as &dyn Ranked),
        }
    }

    /// Tumbling windows: ranks a key of the window being closed.
    pub(super) fn offer(&mut self, item: &[u8], value: Out) {
        if self.in_head(value, item) {
            self.head.insert(Entry::new(value, item));
            self.cut();
        }
    }

    /// Sliding windows: a key's value is now `value` (`None`: it left the window).
    pub(super) fn set(&mut self, item: &[u8], value: Option<Out>) {
        let old = match value {
            Some(v) => match self.values.get_mut(item) {
                Some(old) => Some(std::mem::replace(old, v)),
                None => {
                    self.values.insert(item.into(), v);
                    None
                }
            },
            None => self.values.remove(item),
        };
        if let Some(old) = old {
            if self.in_head(old, item) {
                self.head.remove(&Probe::new(old, item) as &dyn Ranked);
            }
        }
        if let Some(v) = value {
            self.offer(item, v);
        }
    }

    /// Cuts a head grown to twice its size back to its size.
    fn cut(&mut self) {
        if self.head.len() < self.size.saturating_mul(2) {
            return;
        }
        while self.head.len() > self.size {
            self.head.pop_last();
        }
        self.bound = self.head.last().cloned();
    }

    /// The first `k` keys in rank order, with their values.
    pub(super) fn top(&mut self, k: usize) -> impl Iterator<Item = &Entry> {
        if self.head.len() < k && self.bound.is_some() {
            self.rebuild(k);
        }
        self.head.iter().take(k)
    }

    /// Rebuilds the head from the values: the first `size` keys (at least `k`) by selection.
    fn rebuild(&mut self, k: usize) {
        let n = self.size.max(k);
        let mut all: Vec<Probe> = self
            .values
            .iter()
            .map(|(item, v)| Probe::new(*v, item))
            .collect();
        let cmp = |a: &Probe, b: &Probe| (a as &dyn Ranked).cmp(b as &dyn Ranked);
        if all.len() > n {
            all.select_nth_unstable_by(n - 1, cmp);
            all.truncate(n);
        }
        let head: BTreeSet<Entry> = all.iter().map(|p| Entry::new(p.value, p.item)).collect();
        let full = self.values.len() > head.len();
        self.bound = full.then(|| head.last().cloned()).flatten();
        self.head = head;
    }
}

/// One ranked key of a group: its value (highest first) and the key's encoding (ascending).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: Out,
    /// The first 16 bytes of `item`, zero-padded, big-endian: most keys (an integer is 9
    /// bytes) compare by it alone; equal prefixes fall back to the bytes.
    prefix: u128,
    pub(super) item: Box<[u8]>,
}

fn prefix(item: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = item.len().min(16);
    head[..n].copy_from_slice(&item[..n]);
    u128::from_be_bytes(head)
}

impl Entry {
    fn new(value: Out, item: &[u8]) -> Self {
        Entry {
            value,
            prefix: prefix(item),
            item: item.into(),
        }
    }
}

/// What orders the ranking, borrowed: an entry, or a [`Probe`] that finds one in a set
/// without building it (no allocation per removal).
trait Ranked {
    fn value(&self) -> Out;
    fn prefix(&self) -> u128;
    fn item(&self) -> &[u8];
}

impl Ranked for Entry {
    fn value(&self) -> Out {
        self.value
    }
    fn prefix(&self) -> u128 {
        self.prefix
    }
    fn item(&self) -> &[u8] {
        &self.item
    }
}

/// An entry's ordering fields over borrowed key bytes.
struct Probe<'a> {
    value: Out,
    prefix: u128,
    item: &'a [u8],
}

impl<'a> Probe<'a> {
    fn new(value: Out, item: &'a [u8]) -> Self {
        Probe {
            value,
            prefix: prefix(item),
            item,
        }
    }
}

impl Ranked for Probe<'_> {
    fn value(&self) -> Out {
        self.value
    }
    fn prefix(&self) -> u128 {
        self.prefix
    }
    fn item(&self) -> &[u8] {
        self.item
    }
}

impl<'a> std::borrow::Borrow<dyn Ranked + 'a> for Entry {
    fn borrow(&self) -> &(dyn Ranked + 'a) {
        self
    }
}

/// Integers compare as integers, floats by total order; `Null` after everything.
fn by_value(a: Out, b: Out) -> Ordering {
    let int = |o: Out| match o {
        Out::Int(v) => i128::from(v),
        Out::Sum(v) => v,
        Out::Float(f) => f as i128,
        Out::Null => 0,
    };
    match (a, b) {
        (Out::Null, Out::Null) => Ordering::Equal,
        (Out::Null, _) => Ordering::Greater,
        (_, Out::Null) => Ordering::Less,
        (Out::Float(x), Out::Float(y)) => y.total_cmp(&x),
        (x, y) => int(y).cmp(&int(x)),
    }
}

impl Ord for dyn Ranked + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        by_value(self.value(), other.value())
            .then(self.prefix().cmp(&other.prefix()))
            .then_with(|| self.item().cmp(other.item()))
    }
}

impl PartialOrd for dyn Ranked + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn Ranked + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn Ranked + '_ {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self as &dyn Ranked).cmp(other as &dyn Ranked)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// After any sequence of changes, the first K of the head are the first K of all keys
        /// sorted from scratch, whatever the head's size.
        #[test]
        fn the_head_holds_the_first_keys(
            changes in proptest::collection::vec((0u8..40, proptest::option::of(-3i64..12)), 0..300),
            size in 1usize..6,
            k in 1usize..6,
            every in 1usize..20,
        ) {
            let mut ranking = Ranking::new(size);
            let mut all: std::collections::BTreeMap<Vec<u8>, Out> = Default::default();
            for (i, (key, value)) in changes.into_iter().enumerate() {
                let item = vec![b'k', key];
                let value = value.map(Out::Int);
                ranking.set(&item, value);
                match value {
                    Some(v) => all.insert(item, v),
                    None => all.remove(&item),
                };
                if i % every == 0 {
                    let mut want: Vec<Entry> = all.iter().map(|(i, v)| Entry::new(*v, i)).collect();
                    want.sort();
                    want.truncate(k);
                    let got: Vec<Entry> = ranking.top(k).cloned().collect();
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(ranking.is_empty(), all.is_empty());
                }
            }
        }
    }
}
