//! What both trainers share: the record matrix and growing trees on several threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Records as rows of `width` features, row after row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    width: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// An empty matrix of `width` features.
    pub fn new(width: usize) -> Self {
        Matrix {
            width,
            data: Vec::new(),
        }
    }

    /// Wraps rows laid out one after another.
    ///
    /// # Panics
    /// If `data` is not whole rows.
    pub fn from_rows(width: usize, data: Vec<f32>) -> Self {
        assert!(
            width > 0 && data.len().is_multiple_of(width),
            "{} values are not rows of {width}",
            data.len()
        );
        Matrix { width, data }
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.width).unwrap_or(0)
    }

    /// Row `r`, feature `f`.
    #[inline]
    pub fn get(&self, r: usize, f: usize) -> f32 {
        self.data[r * self.width + f]
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.width..(r + 1) * self.width]
    }

    /// All values, row after row.
    pub fn values(&self) -> &[f32] {
        &self.data
    }

    /// Appends a row.
    ///
    /// # Panics
    /// If it is not `width` values long.
    pub fn push(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.width);
        self.data.extend_from_slice(row);
    }

    /// Appends rows laid out one after another.
    pub fn extend(&mut self, rows: &[f32]) {
        assert_eq!(rows.len() % self.width.max(1), 0);
        self.data.extend_from_slice(rows);
    }

    /// The rows at `index`, in that order.
    pub fn select(&self, index: &[usize]) -> Matrix {
        let mut m = Matrix::new(self.width);
        m.data.reserve(index.len() * self.width);
        for &r in index {
            m.data.extend_from_slice(self.row(r));
        }
        m
    }
}

/// Runs `grow(t)` for every tree `t` on `threads` threads and returns the trees in tree
/// order: each tree draws from its own random stream, so the forest does not depend on which
/// thread grew what.
pub(crate) fn for_each_tree<T: Send>(
    trees: usize,
    threads: usize,
    grow: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<T>>> = Mutex::new((0..trees).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, trees.max(1)) {
            s.spawn(|| loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= trees {
                    break;
                }
                let tree = grow(t);
                done.lock().unwrap_or_else(|e| e.into_inner())[t] = Some(tree);
            });
        }
    });
    done.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|t| t.expect("every tree index was taken by a thread"))
        .collect()
}
