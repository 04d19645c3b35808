//! A buffer pool keyed by length, one per thread and element type.
//!
//! A training step runs the same shapes step after step, so every buffer it needs was freed by the step before.
//! [`crate::Tensor`] takes its storage from here and gives it back on drop; after the first step nothing
//! reaches the allocator. The counters are public so that tests and benches can assert exactly that.

use crate::float::Float;
use std::collections::HashMap;
use std::marker::PhantomData;

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

    /// Counts a buffer that did not come from `take` as live (a `Vec` adopted by `Tensor::from_vec`), so that
    /// giving it back later balances the books.
    pub fn adopt(&mut self, len: usize) {
        self.stats.live += len;
        self.stats.high_water = self.stats.high_water.max(self.stats.live);
    }

    /// Takes a live buffer off the books for good (its `Vec` leaves the pool's care: `Tensor::into_vec`).
    pub fn release(&mut self, len: usize) {
        self.stats.live = self.stats.live.saturating_sub(len);
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

/// Gives a buffer back to this thread's pool (dropped instead during thread teardown).
pub fn give<E: Float>(buf: Vec<E>) {
    if buf.is_empty() {
        return;
    }
    let mut slot = Some(buf);
    E::try_with_pool(|p| p.give(slot.take().unwrap()));
}

/// Counts an outside buffer of `len` elements as live in this thread's pool (see [`Pool::adopt`]).
pub fn adopt<E: Float>(len: usize) {
    E::with_pool(|p| p.adopt(len))
}

/// Takes `len` live elements off this thread's books (see [`Pool::release`]).
pub fn release<E: Float>(len: usize) {
    E::with_pool(|p| p.release(len))
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

/// What one thread's pool did between [`PoolSpan::start`] and [`PoolSpan::delta`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolDelta {
    /// `take` calls served from a free list.
    pub hits: u64,
    /// `take` calls that allocated.
    pub misses: u64,
    /// Change of the live element count (negative: more was given back than taken).
    pub live_change: isize,
    /// The most elements live at once in the span, above the live count at its start.
    pub peak_extra: usize,
}

/// A span of this thread's pool activity for element type `E`, for tests and benches: "the second step missed 0
/// times and peaked at N extra elements". Starting a span resets the high-water mark, so spans do not nest.
/// ("Window" in loopgrad means the gradient window of a supervision step only.)
pub struct PoolSpan<E: Float> {
    start: PoolStats,
    _elem: PhantomData<E>,
}

impl<E: Float> PoolSpan<E> {
    pub fn start() -> Self {
        reset_high_water::<E>();
        PoolSpan { start: stats::<E>(), _elem: PhantomData }
    }

    /// The counts since [`PoolSpan::start`] (the span goes on).
    pub fn delta(&self) -> PoolDelta {
        let now = stats::<E>();
        PoolDelta {
            hits: now.hits - self.start.hits,
            misses: now.misses - self.start.misses,
            live_change: now.live as isize - self.start.live as isize,
            peak_extra: now.high_water.saturating_sub(self.start.live),
        }
    }
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

    #[test]
    fn lengths_are_kept_apart_and_high_water_tracks_the_peak() {
        let mut p = Pool::<f64>::new();
        let (a, b) = (p.take(4), p.take(6));
        assert_eq!((p.stats().live, p.stats().high_water), (10, 10));
        p.give(a);
        let c = p.take(6); // a 4 is free, but not a 6
        assert_eq!((p.stats().hits, p.stats().misses), (0, 3));
        assert_eq!((p.stats().live, p.stats().high_water, p.stats().pooled), (12, 12, 4));
        p.give(b);
        p.give(c);
        assert_eq!((p.stats().live, p.stats().pooled), (0, 16));
        p.clear();
        assert_eq!(p.stats().pooled, 0);
        let _d = p.take(4);
        assert_eq!(p.stats().misses, 4, "cleared buffers are gone");
    }

    #[test]
    fn adopted_and_released_buffers_keep_the_books_balanced() {
        let mut p = Pool::<f32>::new();
        p.adopt(5);
        p.give(vec![0.0; 5]);
        assert_eq!((p.stats().live, p.stats().pooled), (0, 5));
        let v = p.take(5);
        p.release(v.len());
        assert_eq!((p.stats().live, p.stats().hits), (0, 1));
    }

    #[test]
    fn a_span_reports_the_work_inside_it() {
        let warm = take::<f32>(32);
        give(warm);
        let w = PoolSpan::<f32>::start();
        let a = take::<f32>(32);
        let b = take::<f32>(33);
        give(a);
        let d = w.delta();
        assert_eq!((d.hits, d.misses, d.live_change, d.peak_extra), (1, 1, 33, 65));
        give(b);
        assert_eq!(w.delta().live_change, 0);
    }
}
