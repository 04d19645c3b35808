//! The data set type every trainer consumes: token rows of inputs and labels, grouped as TRM groups them.
//!
//! Three levels, as in TRM's `puzzle_dataset.py`:
//! - an **example** is one `(input, label)` pair of token rows, each `seq_len` long;
//! - a **puzzle** is a run of consecutive examples that share one puzzle identifier (an ARC task under one
//!   augmentation has several demonstration pairs; a Sudoku or a maze is one example);
//! - a **group** is a run of consecutive puzzles that are augmented versions of one original puzzle, so that a
//!   sampler can draw one version per group per epoch.
//!
//! Puzzle identifiers index the trainer's puzzle-embedding table. Identifier 0 is the blank identifier (`"<blank>"`,
//! no embedding); Sudoku and Maze sets use only it, ARC gives every augmented task its own.

use std::collections::HashMap;

/// The names of puzzle identifiers, id 0 being `"<blank>"`. Shared between a training and a test set (ARC test
/// examples must use the identifier their task's demonstrations were trained under).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identifiers {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

/// The name of identifier 0.
pub const BLANK_IDENTIFIER: &str = "<blank>";

impl Identifiers {
    /// A table holding only the blank identifier.
    pub fn new() -> Self {
        let mut t = Identifiers { names: Vec::new(), ids: HashMap::new() };
        t.intern(BLANK_IDENTIFIER);
        t
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Token rows with TRM's example / puzzle / group structure. Built with [`ExampleSetBuilder`], read by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExampleSet {
    pub(crate) seq_len: usize,
    pub(crate) vocab_size: usize,
    /// `[num_examples * seq_len]` input tokens, row-major.
    pub(crate) inputs: Vec<u8>,
    /// `[num_examples * seq_len]` label tokens; 0 (PAD) is ignored by the loss.
    pub(crate) labels: Vec<u8>,
    /// `[num_puzzles + 1]`: the examples of puzzle `p` are `puzzle_starts[p]..puzzle_starts[p + 1]`.
    pub(crate) puzzle_starts: Vec<u32>,
    /// `[num_puzzles]`: the identifier of puzzle `p`.
    pub(crate) puzzle_identifiers: Vec<u32>,
    /// `[num_groups + 1]`: the puzzles of group `g` are `group_starts[g]..group_starts[g + 1]`.
    pub(crate) group_starts: Vec<u32>,
    /// `[num_examples]`: the puzzle each example belongs to (derived from `puzzle_starts`).
    pub(crate) example_puzzle: Vec<u32>,
    /// `[num_identifiers]`: identifier names, index 0 = `"<blank>"`.
    pub(crate) identifier_names: Vec<String>,
}

impl ExampleSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.example_puzzle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens per input and per label row.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Number of distinct token ids (PAD included).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// `[seq_len]` input tokens of example `i`.
    pub fn inputs(&self, i: usize) -> &[u8] {
        &self.inputs[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// `[seq_len]` label tokens of example `i`.
    pub fn labels(&self, i: usize) -> &[u8] {
        &self.labels[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// The puzzle identifier (embedding row) of example `i`.
    pub fn puzzle_id(&self, i: usize) -> u32 {
        self.puzzle_identifiers[self.example_puzzle[i] as usize]
    }

    /// Which puzzle (augmented version) example `i` belongs to.
    pub fn puzzle_of(&self, i: usize) -> usize {
        self.example_puzzle[i] as usize
    }

    /// Number of identifiers, blank included: the size of the puzzle-embedding table.
    pub fn num_identifiers(&self) -> usize {
        self.identifier_names.len()
    }

    /// The name of identifier `id` (ARC: `task|||t<k>|||<colour map>`, as TRM writes it).
    pub fn identifier_name(&self, id: u32) -> &str {
        &self.identifier_names[id as usize]
    }

    pub fn num_puzzles(&self) -> usize {
        self.puzzle_identifiers.len()
    }

    pub fn num_groups(&self) -> usize {
        self.group_starts.len() - 1
    }

    /// The example range of puzzle `p`.
    pub fn puzzle_examples(&self, p: usize) -> std::ops::Range<usize> {
        self.puzzle_starts[p] as usize..self.puzzle_starts[p + 1] as usize
    }

    /// The puzzle range of group `g`.
    pub fn group_puzzles(&self, g: usize) -> std::ops::Range<usize> {
        self.group_starts[g] as usize..self.group_starts[g + 1] as usize
    }

    /// Copy the examples `indices` into batch buffers: `inputs` and `labels` get `[indices.len() * seq_len]`
    /// tokens, `puzzle_ids` one identifier per example. The buffers are cleared first and reuse their capacity.
    pub fn gather(&self, indices: &[usize], inputs: &mut Vec<u8>, labels: &mut Vec<u8>, puzzle_ids: &mut Vec<u32>) {
        inputs.clear();
        labels.clear();
        puzzle_ids.clear();
        for &i in indices {
            inputs.extend_from_slice(self.inputs(i));
            labels.extend_from_slice(self.labels(i));
            puzzle_ids.push(self.puzzle_id(i));
        }
    }

    /// Checks every invariant of a set assembled from raw arrays, and derives `example_puzzle` from
    /// `puzzle_starts` (whatever it held): the builder's set when it is finished, and the cache reader's, whose
    /// input is untrusted.
    pub(crate) fn checked(mut self) -> Result<Self, String> {
        let n = self.inputs.len().checked_div(self.seq_len).ok_or("seq_len is 0")?;
        let monotone = |v: &[u32], last: usize| {
            v.first() == Some(&0) && v.last() == Some(&(last as u32)) && v.windows(2).all(|w| w[0] <= w[1])
        };
        let (inputs, labels, vocab_size) = (&self.inputs, &self.labels, self.vocab_size);
        if inputs.len() != n * self.seq_len || labels.len() != inputs.len() {
            return Err("input and label arrays disagree with seq_len".into());
        }
        if vocab_size == 0 || vocab_size > 256 || inputs.iter().chain(labels).any(|&t| t as usize >= vocab_size) {
            return Err("a token is outside the vocabulary".into());
        }
        let (puzzle_starts, puzzle_identifiers) = (&self.puzzle_starts, &self.puzzle_identifiers);
        if !monotone(puzzle_starts, n) || puzzle_identifiers.len() + 1 != puzzle_starts.len() {
            return Err("puzzle index is inconsistent".into());
        }
        if !monotone(&self.group_starts, puzzle_identifiers.len()) {
            return Err("group index is inconsistent".into());
        }
        let names = self.identifier_names.len();
        if names == 0 || puzzle_identifiers.iter().any(|&id| id as usize >= names) {
            return Err("a puzzle identifier has no name".into());
        }
        self.example_puzzle.clear();
        self.example_puzzle.reserve(n);
        for p in 0..puzzle_identifiers.len() {
            let examples = (puzzle_starts[p + 1] - puzzle_starts[p]) as usize;
            self.example_puzzle.extend(std::iter::repeat_n(p as u32, examples));
        }
        Ok(self)
    }
}

/// Builds an [`ExampleSet`] group by group, puzzle by puzzle.
///
/// ```
/// use loopgrad_puzzles::{ExampleSetBuilder, Identifiers};
/// let mut b = ExampleSetBuilder::new(4, 11);
/// b.begin_group();
/// b.begin_puzzle(0);
/// b.push_example(&[1, 2, 1, 3], &[2, 2, 3, 3]);
/// let set = b.finish(&Identifiers::new());
/// assert_eq!((set.len(), set.num_puzzles(), set.num_groups()), (1, 1, 1));
/// ```
#[derive(Clone, Debug)]
pub struct ExampleSetBuilder {
    /// The set so far: its puzzle and group indices end at the last closed puzzle and group, and
    /// `example_puzzle` and `identifier_names` are filled in by [`ExampleSetBuilder::finish`].
    set: ExampleSet,
}

impl ExampleSetBuilder {
    pub fn new(seq_len: usize, vocab_size: usize) -> Self {
        assert!(
            seq_len > 0 && (1..=256).contains(&vocab_size),
            "ExampleSetBuilder: seq_len {seq_len}, vocab {vocab_size}"
        );
        ExampleSetBuilder {
            set: ExampleSet {
                seq_len,
                vocab_size,
                inputs: Vec::new(),
                labels: Vec::new(),
                puzzle_starts: vec![0],
                puzzle_identifiers: Vec::new(),
                group_starts: vec![0],
                example_puzzle: Vec::new(),
                identifier_names: Vec::new(),
            },
        }
    }

    /// Start a new group (a new original puzzle). Empty groups are dropped.
    pub fn begin_group(&mut self) {
        self.close_puzzle();
        if *self.set.group_starts.last().unwrap() as usize != self.set.puzzle_identifiers.len() {
            self.set.group_starts.push(self.set.puzzle_identifiers.len() as u32);
        }
    }

    /// Start a new puzzle (one augmented version) with identifier `identifier`, inside the current group.
    pub fn begin_puzzle(&mut self, identifier: u32) {
        self.close_puzzle();
        self.set.puzzle_identifiers.push(identifier);
    }

    fn num_examples(&self) -> usize {
        self.set.inputs.len() / self.set.seq_len
    }

    /// Record the end of the open puzzle, dropping it if it has no examples.
    fn close_puzzle(&mut self) {
        if self.set.puzzle_identifiers.len() + 1 > self.set.puzzle_starts.len() {
            if *self.set.puzzle_starts.last().unwrap() as usize == self.num_examples() {
                self.set.puzzle_identifiers.pop();
            } else {
                self.set.puzzle_starts.push(self.num_examples() as u32);
            }
        }
    }

    /// Append one example to the open puzzle. Panics (a programming error, not bad data) when a row has the wrong
    /// length, a token is outside the vocabulary, or no puzzle is open.
    pub fn push_example(&mut self, input: &[u8], label: &[u8]) {
        assert!(
            input.len() == self.set.seq_len && label.len() == self.set.seq_len,
            "ExampleSetBuilder::push_example: rows of {} and {} tokens, seq_len {}",
            input.len(),
            label.len(),
            self.set.seq_len
        );
        assert!(
            input.iter().chain(label).all(|&t| (t as usize) < self.set.vocab_size),
            "ExampleSetBuilder::push_example: token outside vocabulary of {}",
            self.set.vocab_size
        );
        assert!(
            self.set.puzzle_identifiers.len() + 1 > self.set.puzzle_starts.len(),
            "push_example before begin_puzzle"
        );
        self.set.inputs.extend_from_slice(input);
        self.set.labels.extend_from_slice(label);
    }

    /// Close the set. `identifiers` must name every identifier used (its names are stored in the set).
    pub fn finish(mut self, identifiers: &Identifiers) -> ExampleSet {
        self.begin_group();
        assert!(
            self.set.puzzle_identifiers.iter().all(|&id| (id as usize) < identifiers.len()),
            "ExampleSetBuilder::finish: a puzzle uses an identifier the table does not name"
        );
        self.set.identifier_names = identifiers.names().to_vec();
        self.set.checked().expect("builder keeps the invariants")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExampleSet {
        let mut ids = Identifiers::new();
        let a = ids.intern("a");
        let b = ids.intern("b");
        let mut builder = ExampleSetBuilder::new(2, 5);
        builder.begin_group();
        builder.begin_puzzle(a);
        builder.push_example(&[1, 2], &[3, 4]);
        builder.push_example(&[2, 2], &[3, 3]);
        builder.begin_puzzle(b);
        builder.push_example(&[4, 4], &[0, 1]);
        builder.begin_puzzle(b); // empty: dropped
        builder.begin_group();
        builder.begin_group(); // empty: dropped
        builder.begin_puzzle(0);
        builder.push_example(&[0, 0], &[1, 1]);
        builder.finish(&ids)
    }

    #[test]
    fn structure_and_accessors() {
        let set = sample();
        assert_eq!((set.len(), set.num_puzzles(), set.num_groups(), set.num_identifiers()), (4, 3, 2, 3));
        assert_eq!(set.inputs(1), &[2, 2]);
        assert_eq!(set.labels(2), &[0, 1]);
        assert_eq!((set.puzzle_id(0), set.puzzle_id(2), set.puzzle_id(3)), (1, 2, 0));
        assert_eq!(set.puzzle_examples(0), 0..2);
        assert_eq!(set.group_puzzles(1), 2..3);
        assert_eq!(set.identifier_name(2), "b");
        let (mut i, mut l, mut p) = (Vec::new(), Vec::new(), Vec::new());
        set.gather(&[3, 0], &mut i, &mut l, &mut p);
        assert_eq!((i, l, p), (vec![0, 0, 1, 2], vec![1, 1, 3, 4], vec![0, 1]));
    }

    #[test]
    fn checked_rejects_broken_indices() {
        let set = sample();
        assert_eq!(set.clone().checked().unwrap(), set);
        assert!(ExampleSet { group_starts: vec![0, 5], ..set.clone() }.checked().is_err());
        assert!(ExampleSet { vocab_size: 2, ..set.clone() }.checked().is_err());
    }
}
