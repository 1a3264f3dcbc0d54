//! What the benchmark programs share: where the tree is, a scratch folder, building an
//! example's image from its committed plan the way Nix does (`mirage-test-support`'s image
//! builder), timing a run to its first guest line, and medians.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirage_test_support::image::Builder;
use mirage_test_support::tree::scratch;

pub use mirage_test_support::tree::root;

/// A scratch folder for rendered crates and their builds, under the cargo target directory.
pub fn work_dir() -> PathBuf {
    scratch("bench-images")
}

/// `build_image(example, target)` builds the example's committed plan for `target` as
/// `nix build` does (the Solo5 targets with the host triple as cargo's target) and returns
/// the image's path.
pub fn build_image(example: &str, target: &str) -> PathBuf {
    let builder = Builder::new(work_dir());
    let builder = if matches!(target, "hvt" | "spt") {
        builder.host_target()
    } else {
        builder
    };
    builder
        .committed(&format!("examples/{example}"), target)
        .path
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
