//! ARC-AGI-1 and ARC-AGI-2 (and ConceptARC): tasks of coloured grids, as TRM trains and scores them.
//!
//! - [`load`]: the task-JSON directory format and TRM's Kaggle combined format, with strict validation.
//! - [`canvas`]: the 30x30 token canvas (0 PAD, 1 EOS, colour `c` -> `c + 2`, EOS right of and below the grid)
//!   and TRM's crop.
//! - [`augment`]: dihedral transforms x colour permutations with black fixed, invertible, named as TRM names them.
//! - [`dataset`]: TRM's training split and test set, with augmentation and train-only translation.
//! - [`eval`]: crop, undo the augmentation, vote across augmentations, pass@1 / pass@2.

pub mod augment;
pub mod canvas;
pub mod dataset;
pub mod eval;
pub mod load;

pub use augment::Augmentation;
pub use dataset::{build_datasets, ArcConfig, ArcDatasets};
pub use eval::{ArcEvaluator, ArcScores};
pub use load::{load_kaggle, load_path, load_task_dir, load_trm_recipe};

/// Largest grid side ARC allows, and the canvas side.
pub const MAX_SIDE: usize = 30;
/// Colours are `0..COLOURS`.
pub const COLOURS: u8 = 10;

/// A grid of colours `0..=9`, row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
    pub cells: Vec<u8>,
}

impl Grid {
    /// Panics unless `cells.len() == rows * cols` (a programming error; loaders validate input first).
    pub fn new(rows: usize, cols: usize, cells: Vec<u8>) -> Self {
        assert_eq!(cells.len(), rows * cols, "Grid::new: {} cells for {rows}x{cols}", cells.len());
        Grid { rows, cols, cells }
    }

    pub fn get(&self, r: usize, c: usize) -> u8 {
        self.cells[r * self.cols + c]
    }

    /// The grid drawn for a terminal: one digit per cell.
    pub fn draw(&self) -> String {
        let mut out = String::new();
        for row in self.cells.chunks(self.cols.max(1)) {
            out.extend(row.iter().map(|&c| (b'0' + c) as char));
            out.push('\n');
        }
        out
    }
}

/// A demonstration pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub input: Grid,
    pub output: Grid,
}

/// A test pair; the output is unknown for Kaggle challenges without a solutions file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestPair {
    pub input: Grid,
    pub output: Option<Grid>,
}

/// One ARC task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub train: Vec<Pair>,
    pub test: Vec<TestPair>,
}
