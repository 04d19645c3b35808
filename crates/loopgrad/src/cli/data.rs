//! STUB: `loopgrad data` (owned by the puzzles work).

use clap::Subcommand;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Validate a puzzle file or directory.
    Inspect {
        /// sudoku, maze or arc
        #[arg(long)]
        task: String,
        path: std::path::PathBuf,
    },
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Inspect { task, path } => {
            anyhow::bail!("data inspect --task {task} {}: not implemented yet", path.display())
        }
    }
}
