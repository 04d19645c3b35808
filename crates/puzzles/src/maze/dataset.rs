//! Mazes to an [`ExampleSet`]: inputs are the question's tokens, labels the answer's; one group per maze holding
//! the maze and, with augmentation, its 7 other dihedral images (HRM's maze augmentation). A dihedral image of a
//! shortest path is a shortest path of the image, so augmented labels stay valid; they are no longer A*'s own
//! choice on the image, which matters only for exact-match scoring of augmented data.

use super::{to_tokens, MazeRecord, VOCAB_SIZE};
use crate::dihedral::dihedral;
use crate::example_set::{ExampleSet, ExampleSetBuilder, Identifiers};

/// The dihedral image `tid` (0..8, see [`crate::dihedral`]) of a maze's question and answer.
pub fn transform(record: &MazeRecord, tid: u8) -> (Vec<u8>, Vec<u8>) {
    let s = record.size;
    (dihedral(&record.question, s, s, tid), dihedral(&record.answer, s, s, tid))
}

/// Token rows of `records`, with all 8 dihedral images per maze when `augment`. Panics if sizes differ.
pub fn to_example_set(records: &[MazeRecord], augment: bool) -> ExampleSet {
    let size = records.first().map_or(1, |r| r.size);
    assert!(records.iter().all(|r| r.size == size), "maze::to_example_set: records mix maze sizes");
    let mut builder = ExampleSetBuilder::new(size * size, VOCAB_SIZE);
    for r in records {
        builder.begin_group();
        for tid in 0..if augment { 8 } else { 1 } {
            let (q, a) = transform(r, tid);
            builder.begin_puzzle(0);
            builder.push_example(&to_tokens(&q), &to_tokens(&a));
        }
    }
    builder.finish(&Identifiers::new())
}

#[cfg(test)]
mod tests {
    use super::super::{from_tokens, generate::generate_mazes, score::valid_shortest_path, MazeConfig};
    use super::*;
    use proptest::prelude::{prop_assert, proptest, ProptestConfig};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn every_dihedral_image_keeps_a_shortest_path(seed in 0u64..1_000_000, size in 5usize..16) {
            let config = MazeConfig::new(size, size + 2);
            let m = &generate_mazes(&config, 1, seed).unwrap()[0];
            for tid in 0..8 {
                let (q, a) = transform(m, tid);
                prop_assert!(valid_shortest_path(&q, &a, size), "tid {}", tid);
            }
        }
    }

    #[test]
    fn set_layout() {
        let mazes = generate_mazes(&MazeConfig::new(8, 10), 3, 2).unwrap();
        let set = to_example_set(&mazes, true);
        assert_eq!((set.len(), set.num_groups(), set.seq_len(), set.vocab_size()), (24, 3, 64, 6));
        assert_eq!(from_tokens(set.labels(0)), mazes[0].answer);
    }
}
