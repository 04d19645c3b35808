//! Unit tests of the atomic write (the rest of the checkpoint tests are in `crates/nn/tests/checkpoint.rs`).

use super::writer::{tmp_path, write_atomic};
use super::CheckpointError;
use std::fs;
use std::path::{Path, PathBuf};

fn put(tmp: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    fs::write(tmp, bytes).map_err(|source| CheckpointError::Io { path: tmp.to_path_buf(), action: "write", source })
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loopgrad-nn-atomic-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tmp_path_is_a_sibling_with_a_tmp_suffix() {
    let p = PathBuf::from("runs").join("a").join("model.safetensors");
    assert_eq!(tmp_path(&p), PathBuf::from("runs").join("a").join("model.safetensors.tmp"));
}

#[test]
fn a_write_that_fails_halfway_leaves_the_previous_file_and_no_temporary() {
    let d = scratch_dir("fail");
    let p = d.join("ckpt.safetensors");
    write_atomic(&p, |tmp| put(tmp, b"good old checkpoint")).unwrap();
    let err = write_atomic(&p, |tmp| {
        put(tmp, b"half of a new chec")?;
        Err(CheckpointError::Corrupt { path: tmp.to_path_buf(), reason: "simulated failure mid-write".into() })
    })
    .unwrap_err();
    assert!(err.to_string().contains("simulated failure"), "{err}");
    assert_eq!(fs::read(&p).unwrap(), b"good old checkpoint");
    assert!(!tmp_path(&p).exists(), "the partial temporary file must be removed");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_stale_temporary_from_a_crash_is_replaced_by_the_next_write() {
    let d = scratch_dir("stale");
    let p = d.join("ckpt.safetensors");
    fs::write(tmp_path(&p), b"left behind by a killed process").unwrap();
    write_atomic(&p, |tmp| put(tmp, b"new")).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    assert!(!tmp_path(&p).exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn writing_into_a_missing_directory_is_an_io_error_naming_the_file() {
    let d = scratch_dir("nodir");
    let p = d.join("no").join("such").join("ckpt.safetensors");
    let err = super::CheckpointWriter::<f32>::new().write(&p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CheckpointError::Io { .. }), "{msg}");
    assert!(msg.contains("ckpt.safetensors.tmp") && msg.contains("cannot write"), "{msg}");
    fs::remove_dir_all(&d).unwrap();
}
