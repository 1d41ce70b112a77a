//! Where the shared real-world data lives, and how to skip loudly when it is absent.
#![allow(dead_code)]

use std::path::PathBuf;

/// `/work/shared` seen from this crate (`../../../shared`), or `RELAYWATCH_SHARED` when set.
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RELAYWATCH_SHARED") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The path if it exists; otherwise says so on stderr and returns `None` so the test can return early.
pub fn require(rel: &str) -> Option<PathBuf> {
    let p = shared_dir().join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; set RELAYWATCH_SHARED to the shared data folder to run this test",
            p.display()
        );
        None
    }
}
