//! A buffer pool keyed by length, one per thread and element type.
//!
//! A training step runs the same shapes step after step, so every buffer it needs was freed by the step before.
//! [`crate::Tensor`] takes its storage from here and gives it back on drop; after the first step nothing
//! reaches the allocator. The counters are public so that tests and benches can assert exactly that.

use crate::float::Float;
use std::collections::HashMap;

/// Counters of one thread's pool for one element type. Element counts, not bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// `take` calls served from a free list.
    pub hits: u64,
    /// `take` calls that had to allocate.
    pub misses: u64,
    /// Elements in buffers handed out and not yet given back.
    pub live: usize,
    /// The largest `live` has been since the last [`reset_high_water`].
    pub high_water: usize,
    /// Elements held in free lists, ready for reuse.
    pub pooled: usize,
}

/// Free lists of buffers, keyed by exact length.
pub struct Pool<E> {
    free: HashMap<usize, Vec<Vec<E>>>,
    stats: PoolStats,
}

impl<E: Float> Pool<E> {
    pub fn new() -> Self {
        Pool { free: HashMap::new(), stats: PoolStats::default() }
    }

    /// A buffer of exactly `len` elements whose contents are unspecified (but initialised: old values or zero).
    pub fn take(&mut self, len: usize) -> Vec<E> {
        let buf = match self.free.get_mut(&len).and_then(|l| l.pop()) {
            Some(b) => {
                self.stats.hits += 1;
                self.stats.pooled -= len;
                b
            }
            None => {
                self.stats.misses += 1;
                vec![E::ZERO; len]
            }
        };
        self.stats.live += len;
        self.stats.high_water = self.stats.high_water.max(self.stats.live);
        buf
    }

    /// Returns a buffer for reuse. Buffers that did not come from `take` are welcome too.
    pub fn give(&mut self, buf: Vec<E>) {
        let len = buf.len();
        if len == 0 {
            return;
        }
        self.stats.live = self.stats.live.saturating_sub(len);
        self.stats.pooled += len;
        self.free.entry(len).or_default().push(buf);
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Frees every pooled buffer (the counters stay).
    pub fn clear(&mut self) {
        self.free.clear();
        self.stats.pooled = 0;
    }
}

impl<E: Float> Default for Pool<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// A buffer of `len` elements with unspecified (initialised) contents, from this thread's pool.
pub fn take<E: Float>(len: usize) -> Vec<E> {
    if len == 0 {
        return Vec::new();
    }
    E::with_pool(|p| p.take(len))
}

/// A buffer of `len` zeros from this thread's pool.
pub fn take_zeroed<E: Float>(len: usize) -> Vec<E> {
    let mut b = take(len);
    b.fill(E::ZERO);
    b
}

/// Gives a buffer back to this thread's pool (dropped instead during thread teardown).
pub fn give<E: Float>(buf: Vec<E>) {
    if buf.is_empty() {
        return;
    }
    let mut slot = Some(buf);
    E::try_with_pool(|p| p.give(slot.take().unwrap()));
}

/// This thread's counters for element type `E`.
pub fn stats<E: Float>() -> PoolStats {
    E::with_pool(|p| p.stats())
}

/// Sets the high-water mark to the current live count, to measure the peak of what follows.
pub fn reset_high_water<E: Float>() {
    E::with_pool(|p| p.stats.high_water = p.stats.live)
}

/// Frees this thread's pooled buffers of type `E`.
pub fn clear<E: Float>() {
    E::with_pool(|p| p.clear())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_of_the_same_length() {
        let mut p = Pool::<f32>::new();
        let a = p.take(10);
        p.give(a);
        let b = p.take(10);
        assert_eq!(p.stats().hits, 1);
        assert_eq!(p.stats().misses, 1);
        assert_eq!(p.stats().live, 10);
        p.give(b);
        assert_eq!(p.stats().live, 0);
        assert_eq!(p.stats().pooled, 10);
        assert_eq!(p.stats().high_water, 10);
    }
}
