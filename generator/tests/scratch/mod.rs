//! What the tests on scratch clones share: a clone of this repository in a temporary
//! directory, commands that must succeed, and mirage-nix run on the clone as its own tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `root()` is this mirage-nix tree.
pub fn root() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

/// A clone of this repository's HEAD in a temporary directory (or, where the tree is not a
/// git checkout, such as an exported archive, a copy of it committed to a new repository).
pub struct Scratch {
    _tmp: tempfile::TempDir,
    /// The clone.
    pub dir: PathBuf,
}

/// `scratch()` is a new clone of this repository.
pub fn scratch() -> Scratch {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirage-nix");
    let git = |args: &[&str]| {
        run(Command::new("git").arg("-C").arg(&dir).args(args));
    };
    if root().join(".git").exists() {
        run(Command::new("git")
            .args(["clone", "--quiet"])
            .arg(root())
            .arg(&dir));
    } else {
        std::fs::create_dir(&dir).unwrap();
        run(Command::new("sh").arg("-c").arg(
            "tar -C \"$0\" --exclude=./target --exclude='./result*' --exclude='*/.mirage-nix' -cf - . | tar -C \"$1\" -xf -",
        ).arg(root()).arg(&dir));
        git(&["init", "--quiet"]);
    }
    git(&["config", "user.name", "test"]);
    git(&["config", "user.email", "test@example.invalid"]);
    if !root().join(".git").exists() {
        git(&["add", "--all"]);
        git(&["commit", "--quiet", "--message", "the tree under test"]);
    }
    Scratch { _tmp: tmp, dir }
}

/// `run(cmd)` is the output of `cmd`, which must succeed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Scratch {
    /// `mirage_nix(args)` is the output of this build's mirage-nix run in the clone, with the
    /// clone as its tree.
    pub fn mirage_nix(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
            .current_dir(&self.dir)
            .env("MIRAGE_NIX_ROOT", &self.dir)
            .args(args)
            .output()
            .unwrap()
    }
}
