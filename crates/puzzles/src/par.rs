//! Deterministic parallel map over item indices with scoped std threads (no dependency).
//!
//! Every generator in this crate seeds item `i` from `(seed, i)` alone, so the result is the same for any number
//! of threads; threads only change how fast it comes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Threads to use: `LOOPGRAD_THREADS` if set to a positive number, else the machine's available parallelism.
pub fn default_threads() -> usize {
    std::env::var("LOOPGRAD_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// `(0..count).map(|i| f(&mut state, i))` on up to `threads` threads, each with its own `state = init()`; the
/// results come back in index order. A panic in `f` propagates.
pub fn map_with<S, T: Send>(
    count: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, count.max(1));
    if threads == 1 {
        let mut state = init();
        return (0..count).map(|i| f(&mut state, i)).collect();
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut state = init();
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    local.push((i, f(&mut state, i)));
                }
                results.lock().unwrap().extend(local);
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_result_for_any_thread_count() {
        let one = super::map_with(
            100,
            1,
            || 0u64,
            |acc, i| {
                *acc += 1;
                i * i
            },
        );
        let four = super::map_with(100, 4, || 0u64, |_, i| i * i);
        assert_eq!(one, four);
        assert_eq!(one[7], 49);
    }
}
