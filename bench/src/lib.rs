//! What the benchmark programs share: where the tree is, a scratch folder, building an
//! example's image from its committed plan the way Nix does (render, then cargo with only the
//! plan's flags), timing a run to its first guest line, and medians.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirage_nix::render::{self, Roots};

/// The mirage-nix tree.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the bench crate sits in the tree")
}

/// A scratch folder for rendered crates and their builds, under the cargo target directory.
pub fn work_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let dir =
        std::path::absolute(target.join("bench-images")).expect("the current directory exists");
    std::fs::create_dir_all(&dir).expect("the target directory is writable");
    dir
}

/// `build_image(example, target)` renders the example's committed plan for `target`, builds it
/// with cargo in release mode and returns the image's path.
pub fn build_image(example: &str, target: &str) -> PathBuf {
    let root = root();
    let dir = root.join("examples").join(example);
    let plan = mirage_nix::ops::read_plan(&dir.join("plans").join(format!("{target}.json")))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = work_dir()
        .join("crates")
        .join(format!("{example}-{target}"));
    let roots = Roots {
        mirage: root,
        unikernel: dir,
    };
    render::write(&render::crate_files(&plan, &roots, &out).unwrap(), &out).unwrap();
    let cargo_target = work_dir().join(format!("target-{target}"));
    let status = Command::new("cargo")
        .current_dir(&out)
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", &cargo_target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "building {example} for {target} failed");
    cargo_target.join("release").join(&plan.name)
}

/// The median of some samples.
pub fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    samples.sort();
    samples[samples.len() / 2]
}

/// `time_run(cmd, is_guest_line)` runs `cmd` and returns the times to the first line of its
/// output that `is_guest_line` accepts (the unikernel's, not the emulator's) and to its end.
pub fn time_run(mut cmd: Command, is_guest_line: fn(&str) -> bool) -> (Duration, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        if first.is_none() && is_guest_line(&line) {
            first = Some(start.elapsed());
        }
    }
    child.wait().unwrap();
    (first.unwrap_or_default(), start.elapsed())
}

/// Runs `cmd`, panicking with its output if it fails; its output.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
