//! The dedup stage's table of remembered keys, grown a few entries at a time.
//!
//! A hash table that is full doubles: it allocates twice the room and moves every entry at
//! once. With 1.8 M uuids that is ~40 ms (and ~250 ms when each key had to be hashed again),
//! during which no record passes the stage: at 100,000 records/s the doublings were the
//! anomaly example's worst latencies. Here a full table is set aside as it is and a new one
//! of twice the room takes the new keys; each new key then moves the entries of the next
//! [`MOVE_BUCKETS`] buckets of the old table over, so the old one is empty long before the
//! new one fills (it holds at most 7/8 of its buckets, and the new one has room for twice
//! that). Lookups try the new table, then the old.

use hashbrown::hash_table::OccupiedEntry;
use hashbrown::HashTable;
use smallvec::SmallVec;
use weir_core::time::Millis;

/// One key's remembered record times: almost always one, so it is kept inline.
pub(super) type Times = SmallVec<[Millis; 1]>;

/// A key, its hash and the times its passed records are remembered at (48 bytes beside the
/// key). The hash is kept so that moving an entry does not read its key, a cache miss away.
#[derive(Debug)]
pub(super) struct Entry {
    pub key: Box<[u8]>,
    pub hash: u64,
    pub times: Times,
}

/// Buckets of the old table emptied for each new key.
const MOVE_BUCKETS: usize = 8;

/// The room of the first table.
const FIRST_CAPACITY: usize = 3;

fn hash_of(e: &Entry) -> u64 {
    e.hash
}

/// Remembered keys in one or, while moving, two hash tables.
#[derive(Debug, Default)]
pub(super) struct Keys {
    new: HashTable<Entry>,
    /// The table being moved out of (empty when no move is under way).
    old: HashTable<Entry>,
    /// The next bucket of `old` to move.
    cursor: usize,
}

impl Keys {
    /// The entry with hash `hash` for which `eq` holds.
    pub fn find(&self, hash: u64, eq: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        let eq = |e: &Entry| e.hash == hash && eq(e);
        self.new.find(hash, eq).or_else(|| self.old.find(hash, eq))
    }

    /// [`Keys::find`], to change or remove the entry.
    pub fn find_entry(
        &mut self,
        hash: u64,
        eq: impl Fn(&Entry) -> bool,
    ) -> Option<OccupiedEntry<'_, Entry>> {
        let eq = |e: &Entry| e.hash == hash && eq(e);
        if let Ok(e) = self.new.find_entry(hash, eq) {
            return Some(e);
        }
        self.old.find_entry(hash, eq).ok()
    }

    /// Adds an entry whose key is in neither table.
    pub fn insert(&mut self, e: Entry) {
        if self.new.len() == self.new.capacity() {
            self.grow();
        }
        self.new.insert_unique(e.hash, e, hash_of);
        self.move_some(MOVE_BUCKETS);
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.new.iter().chain(self.old.iter())
    }

    /// Number of keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }

    /// Sets the full table aside and starts one of twice its room.
    fn grow(&mut self) {
        // Not reached while a move is under way (see the module docs); finish it if it is.
        self.move_some(usize::MAX);
        let room = (self.new.capacity() * 2).max(FIRST_CAPACITY);
        self.old = std::mem::replace(&mut self.new, HashTable::with_capacity(room));
        self.cursor = 0;
    }

    /// Moves the entries of the next `buckets` buckets of the old table to the new one.
    fn move_some(&mut self, buckets: usize) {
        if self.old.is_empty() {
            if self.old.capacity() > 0 {
                self.old = HashTable::new();
            }
            return;
        }
        let end = self
            .cursor
            .saturating_add(buckets)
            .min(self.old.num_buckets());
        for i in self.cursor..end {
            if let Ok(e) = self.old.get_bucket_entry(i) {
                let (e, _) = e.remove();
                self.new.insert_unique(e.hash, e, hash_of);
            }
        }
        self.cursor = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Entry {
        Entry {
            key: i.to_le_bytes().into(),
            // Few distinct hashes, so entries of one hash sit in both tables.
            hash: i % 7,
            times: SmallVec::from_elem(i as Millis, 1),
        }
    }

    #[test]
    fn keys_are_found_and_removed_while_moving_and_no_table_grows_at_once() {
        let mut k = Keys::default();
        let mut present = std::collections::BTreeSet::new();
        let mut moves = 0;
        for i in 0..3_000u64 {
            let buckets = k.new.num_buckets();
            let moving = !k.old.is_empty();
            moves += usize::from(moving);
            k.insert(entry(i));
            present.insert(i);
            if moving {
                assert_eq!(k.new.num_buckets(), buckets, "grew all at once at key {i}");
            }
            if i % 5 == 0 && present.remove(&(i / 2)) {
                let j = i / 2;
                k.find_entry(j % 7, |e| *e.key == j.to_le_bytes())
                    .expect("present")
                    .remove();
            }
            assert_eq!(k.len(), present.len());
            for j in [0, i / 2, i / 3, i] {
                let found = k.find(j % 7, |e| *e.key == j.to_le_bytes());
                let want = present.contains(&j).then_some(j as Millis);
                assert_eq!(found.map(|e| e.times[0]), want, "key {j} after {i}");
            }
        }
        // Each move takes an eighth of the old table's buckets in inserts: ~4,096 / 8 in all.
        assert!(moves > 400, "{moves} inserts while moving");
        let mut all: Vec<u64> = k.iter().map(|e| e.times[0] as u64).collect();
        all.sort_unstable();
        assert_eq!(all, present.into_iter().collect::<Vec<_>>());
    }
}
