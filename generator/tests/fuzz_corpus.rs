//! Replays the fuzzers' committed corpus and every crash they found (`generator/fuzz/corpus/`
//! and `generator/fuzz/regressions/`, one input per file) through the same invariants the
//! fuzz targets check (`mirage_nix::oracle`), on the stable toolchain: no panic, and whatever
//! configures renders into a Cargo.toml and a main.rs that parse and say what the plan says.

use std::path::{Path, PathBuf};

use mirage_nix::oracle::{self, Outcome};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .flat_map(|set| {
            std::fs::read_dir(fuzz.join(set).join(target))
                .into_iter()
                .flatten()
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with(".gitkeep"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&Path, &[u8]) -> Outcome) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    oracle::prepare(dir.path()).unwrap();
    let files = inputs(target);
    let mut rendered = 0;
    for file in &files {
        let input = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(dir.path(), &input))
            .unwrap_or_else(|_| panic!("{} breaks an invariant", file.display()));
        rendered += usize::from(outcome == Outcome::Rendered);
    }
    (files.len(), rendered)
}

#[test]
fn the_config_corpus_holds_every_invariant() {
    let (inputs, rendered) = replay("config", oracle::check_config);
    assert!(inputs >= 80, "the corpus has {inputs} configs");
    assert!(rendered >= 20, "only {rendered} of {inputs} configs render");
}

#[test]
fn the_plan_corpus_holds_every_invariant() {
    let (inputs, rendered) = replay("plan", oracle::check_plan);
    assert!(inputs >= 20, "the corpus has {inputs} plans");
    assert!(rendered >= 20, "only {rendered} of {inputs} plans render");
}
