//! A seeded batch sampler over an [`ExampleSet`].
//!
//! Two orders:
//! - [`SampleOrder::Groups`] is TRM's training order: every epoch visits the groups in a fresh random order, takes
//!   one random puzzle (augmented version) of each group and emits that puzzle's examples in random order. One
//!   epoch is therefore one augmented version of every original puzzle.
//! - [`SampleOrder::Examples`] shuffles all examples every epoch (every augmented version, every epoch).
//!
//! The stream is endless and batches are consecutive chunks of it, so a batch may straddle two epochs and every
//! batch is full. The same seed gives the same batches.

use crate::example_set::ExampleSet;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleOrder {
    Groups,
    Examples,
}

pub struct BatchSampler<'a> {
    set: &'a ExampleSet,
    order: SampleOrder,
    batch_size: usize,
    rng: Rng,
    /// The current epoch's example order, and how far into it we are.
    queue: Vec<usize>,
    cursor: usize,
    epochs_started: u64,
}

impl<'a> BatchSampler<'a> {
    /// Panics when the set is empty or `batch_size` is 0.
    pub fn new(set: &'a ExampleSet, order: SampleOrder, batch_size: usize, seed: u64) -> Self {
        assert!(
            !set.is_empty() && batch_size > 0,
            "BatchSampler::new: {} examples, batch size {batch_size}",
            set.len()
        );
        BatchSampler { set, order, batch_size, rng: Rng::new(seed), queue: Vec::new(), cursor: 0, epochs_started: 0 }
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// How many epochs have been started (1 after the first batch).
    pub fn epochs_started(&self) -> u64 {
        self.epochs_started
    }

    fn refill(&mut self) {
        self.queue.clear();
        self.cursor = 0;
        self.epochs_started += 1;
        match self.order {
            SampleOrder::Examples => {
                self.queue.extend(0..self.set.len());
                self.rng.shuffle(&mut self.queue);
            }
            SampleOrder::Groups => {
                let groups = self.rng.permutation(self.set.num_groups());
                for g in groups {
                    let puzzles = self.set.group_puzzles(g);
                    let p = puzzles.start + self.rng.below(puzzles.len());
                    let start = self.queue.len();
                    self.queue.extend(self.set.puzzle_examples(p));
                    self.rng.shuffle(&mut self.queue[start..]);
                }
            }
        }
    }

    /// Fill `out` with the next `batch_size` example indices (cleared first).
    pub fn next_batch(&mut self, out: &mut Vec<usize>) {
        out.clear();
        while out.len() < self.batch_size {
            if self.cursor == self.queue.len() {
                self.refill();
            }
            let take = (self.batch_size - out.len()).min(self.queue.len() - self.cursor);
            out.extend_from_slice(&self.queue[self.cursor..self.cursor + take]);
            self.cursor += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_set::{ExampleSetBuilder, Identifiers};

    /// 3 groups of 2 puzzles of 1 example each: example `2g + v` is version `v` of group `g`.
    fn set() -> ExampleSet {
        let mut b = ExampleSetBuilder::new(1, 10);
        for g in 0..3u8 {
            b.begin_group();
            for v in 0..2u8 {
                b.begin_puzzle(0);
                b.push_example(&[2 * g + v], &[0]);
            }
        }
        b.finish(&Identifiers::new())
    }

    #[test]
    fn group_order_draws_one_version_per_group_per_epoch() {
        let set = set();
        let mut s = BatchSampler::new(&set, SampleOrder::Groups, 3, 5);
        let mut batch = Vec::new();
        for _ in 0..20 {
            s.next_batch(&mut batch);
            let mut groups: Vec<usize> = batch.iter().map(|&i| i / 2).collect();
            groups.sort_unstable();
            assert_eq!(groups, vec![0, 1, 2]);
        }
        assert_eq!(s.epochs_started(), 20);
    }

    #[test]
    fn example_order_is_a_permutation_per_epoch_and_seeded() {
        let set = set();
        let mut a = BatchSampler::new(&set, SampleOrder::Examples, 4, 9);
        let mut b = BatchSampler::new(&set, SampleOrder::Examples, 4, 9);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut seen = Vec::new();
        for _ in 0..3 {
            a.next_batch(&mut x);
            b.next_batch(&mut y);
            assert_eq!(x, y);
            seen.extend_from_slice(&x);
        }
        // 12 indices = two full epochs of 6.
        for epoch in seen.chunks(6) {
            let mut e = epoch.to_vec();
            e.sort_unstable();
            assert_eq!(e, (0..6).collect::<Vec<_>>());
        }
    }
}
