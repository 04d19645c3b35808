//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared/data/<sub>` beside the workspace root, or `None` (with a message saying the test is skipped).
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("../shared/data").join(sub);
    if dir.exists() {
        Some(dir)
    } else {
        println!("skipped: {} is absent (the shared data folder is optional)", dir.display());
        None
    }
}
