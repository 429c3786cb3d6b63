//! Panes of bounded size: Space-Saving per pane and group (an approximate top-K's counts).
//!
//! An open pane keeps at most `counters` keys per group. A new key arriving at a full group
//! takes the slot of the group's key with the smallest count (the smallest slot among equal
//! counts) and inherits that count, then adds its own (Metwally, Agrawal and El Abbadi,
//! "Efficient computation of frequent and top-k elements in data streams", 2005). So a
//! pane's count of a key overestimates its true count by at most the pane's smallest count,
//! and a key evicted from the pane is undercounted by at most the same; the smallest count is
//! at most the pane's records divided by `counters`. Summed over the panes of a window, every
//! count is within N / `counters` of the truth, N being the window's records in the group.
//!
//! The smallest count is found through a min-heap of (count, slot) whose entries may be stale
//! (a count only grows, so a stale entry is too small): a stale top is refreshed and pushed
//! again until the top is current. Not in snapshots: rebuilt from the pane's slots.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow_schema::DataType;
use hashbrown::HashMap;
use weir_core::keys::decode;

use crate::acc::PaneAcc;

/// How many keys a pane keeps per group.
#[derive(Debug, Clone)]
pub(crate) struct Cap {
    /// The number of group key columns (the first key columns).
    pub(crate) groups: usize,
    /// Keys per pane and group.
    pub(crate) counters: usize,
}

impl Cap {
    /// The length of the group keys' encoding at the start of the encoded key `key`.
    pub(crate) fn group_len(&self, types: &[DataType], key: &[u8]) -> usize {
        let mut pos = 0;
        for dt in &types[..self.groups] {
            decode(dt, key, &mut pos);
        }
        pos
    }
}

/// One group's keys in one open pane.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Keys (slots) of the group in the pane.
    len: usize,
    /// (count when pushed, slot): each slot once, its count possibly stale (too small).
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

/// A slot's count: a capped pane's only accumulator is a count.
fn count(accs: &[PaneAcc], slot: u32, stride: usize) -> i64 {
    match accs[slot as usize * stride] {
        PaneAcc::Count(c) => c,
        _ => unreachable!("a capped pane counts"),
    }
}

impl Summary {
    /// Whether the group has room for another key.
    pub(crate) fn has_room(&self, cap: &Cap) -> bool {
        self.len < cap.counters
    }

    /// Records a new slot of the group (count 0).
    pub(crate) fn add(&mut self, slot: u32) {
        self.len += 1;
        self.heap.push(Reverse((0, slot)));
    }

    /// The slot with the smallest count (then the smallest slot), to be taken over by a new
    /// key that inherits its count.
    pub(crate) fn evict(&mut self, accs: &[PaneAcc], stride: usize) -> u32 {
        loop {
            let Reverse((c, slot)) = self.heap.pop().expect("a full group has slots");
            let now = count(accs, slot, stride);
            if now == c {
                // The new key's count starts from this one (the entry goes stale as it grows).
                self.heap.push(Reverse((now, slot)));
                return slot;
            }
            self.heap.push(Reverse((now, slot)));
        }
    }
}

/// Rebuilds the summaries of a pane from its slots (after a restore).
pub(crate) fn summaries(
    cap: &Cap,
    types: &[DataType],
    keys: &[Vec<u8>],
    ids: &[u32],
    accs: &[PaneAcc],
    stride: usize,
) -> HashMap<Vec<u8>, Summary> {
    let mut out: HashMap<Vec<u8>, Summary> = HashMap::new();
    for (slot, &id) in ids.iter().enumerate() {
        let key = &keys[id as usize];
        let group = &key[..cap.group_len(types, key)];
        let s = out.entry_ref(group).or_default();
        s.len += 1;
        s.heap
            .push(Reverse((count(accs, slot as u32, stride), slot as u32)));
    }
    out
}
