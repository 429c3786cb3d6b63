//! What a remembered key costs the dedup stage, counted by a global allocator that tracks the
//! bytes live on the heap (its own test binary, so no other test's allocations count).
//!
//! `max_keys` is documented with this figure, and a dedup over a minute of 100,000 records/s
//! remembers 6 M keys: the figure is the stage's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use weir_core::{Emitter, Operator};
use weir_operator::dedup::{Dedup, DedupConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        LIVE.fetch_add(size as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn a_remembered_uuid_costs_about_125_bytes() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("uuid", DataType::Utf8, false),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]));
    let cfg: DedupConfig =
        toml::from_str("key = [\"uuid\"]\ntime_field = \"t\"\nwithin = \"1h\"").unwrap();
    let mut d = Dedup::new(&cfg, schema.clone(), "stage.unique").unwrap();
    const KEYS: usize = 200_000;
    let before = LIVE.load(Ordering::Relaxed);
    for chunk in 0..KEYS / 1000 {
        let ids: Vec<String> = (chunk * 1000..(chunk + 1) * 1000)
            // As `weir gen kdd` writes them: 36 characters.
            .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", i * 7919, i))
            .collect();
        let times: Vec<i64> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| i as i64)
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)) as ArrayRef,
                Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let mut out = Emitter::default();
        d.on_batch(&batch, &mut out).unwrap();
    }
    assert_eq!(d.remembered(), KEYS, "every uuid passed and is remembered");
    let per_key = (LIVE.load(Ordering::Relaxed) - before) as f64 / KEYS as f64;
    // 36 for the key, 48 for its table entry (at a load of 0.76 here), 16 for its place in
    // the time order (a vector of 262,144); a key stored twice, in a map of keys and a
    // BTreeMap of times, took 227.
    assert!(
        (100.0..=130.0).contains(&per_key),
        "{per_key:.1} bytes live per remembered 36-byte uuid"
    );
}
