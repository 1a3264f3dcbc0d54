//! Snapshots of what every committed plan renders to: `src/main.rs` and `Cargo.toml` of each
//! example × target, and the `xl` configs of the xen ones. The plans themselves are pinned byte for byte by the CLI tests (they are
//! committed and regenerated there); these pin the code generated from them. Review changes
//! with `cargo insta review`.

use std::path::{Path, PathBuf};

use mirage_nix::ops::read_plan;
use mirage_nix::render::{crate_files, Roots};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

#[test]
fn rendered_crates_of_every_example_and_target() {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .flat_map(|e| {
            std::fs::read_dir(e.path().join("plans"))
                .into_iter()
                .flatten()
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    plans.sort();
    assert!(
        plans.len() >= 20,
        "expected a plan per example and target, found {}",
        plans.len()
    );
    for path in plans {
        let plan = read_plan(&path).unwrap();
        let example = path.parent().and_then(Path::parent).unwrap().to_path_buf();
        let out = example.join(".mirage-nix").join(&plan.target).join("crate");
        let roots = Roots {
            mirage: root(),
            unikernel: example,
        };
        let files = crate_files(&plan, &roots, &out).unwrap();
        for file in files.iter().filter(|f| {
            f.path
                .extension()
                .is_some_and(|x| x == "rs" || x == "toml" || x == "xl")
        }) {
            let name = format!(
                "{}-{}-{}",
                plan.name,
                plan.target,
                file.path.file_name().unwrap().to_string_lossy()
            );
            // `.cargo/config.toml` names the runtime's folder (a linker script) by absolute
            // path; the snapshot holds a placeholder so that it does not depend on the checkout.
            let text = String::from_utf8_lossy(&file.contents)
                .replace(&root().display().to_string(), "<mirage-root>");
            insta::assert_snapshot!(name, text);
        }
    }
}
