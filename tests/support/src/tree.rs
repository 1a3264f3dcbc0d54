//! Where things are: the mirage-nix tree and scratch folders beside the build's outputs.

use std::path::{Path, PathBuf};

/// `root()` is the mirage-nix tree.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the support crate sits in the tree")
}

/// `target_dir()` is the cargo target directory: the one a test binary was built in
/// (`target/<profile>/deps/<test>`), else `$CARGO_TARGET_DIR`, else the tree's `target/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running program's path");
    if exe.parent().and_then(Path::file_name) == Some("deps".as_ref()) {
        if let Some(target) = exe.ancestors().nth(3) {
            return target.to_path_buf();
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    std::path::absolute(target).expect("the current directory exists")
}

/// `scratch(name)` is the folder `name` under the target directory, made if missing: where a
/// harness renders crates, builds images and keeps what it fetched.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
    dir
}
