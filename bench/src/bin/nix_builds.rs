//! `cargo run --release -p mirage-nix-bench --bin nix_builds [EXAMPLE...]`: building images
//! through Nix beside a plain `cargo build --release` of the same rendered crate.
//!
//! For each example (default: hello and conduit_server, unix target), on a scratch clone of
//! this repository's HEAD (the real tree is never edited):
//!
//! - Nix: a cold `nix build .#<example>-unix` (every derivation but the generator's is made
//!   new with a salt in the scratch's copy of the library, so the unix dependency layers and
//!   the image are built from nothing; the crates stay unpacked, as cargo's registry keeps
//!   them for cargo's side; the generator is built
//!   beforehand, untimed, as cargo's side gets `mirage-nix render` for free), a no-op
//!   rebuild, a cold build of the same image on a layer of its own (`.#perImage.<name>`),
//!   and a rebuild after a one-line change in the example's `src/lib.rs`;
//! - cargo: the crate `mirage-nix render` writes from the same plan (with the repository's
//!   Cargo.lock), `cargo build --release --offline` from an empty target directory, again
//!   (warm, no-op), and after the same kind of one-line change.
//!
//! - with no example named, every unix image as well: one cold `nix build` of them all
//!   beside a clean cargo build of each rendered crate, one after another.
//!
//! Prints a Markdown table of wall-clock seconds (one run each: cold builds take minutes)
//! and the ratios the goals are stated in. Needs Nix set up
//! (`eval "$(scripts/setup-nix)"`).

use mirage_nix_bench::{root, run_ok};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mirage_nix::ops::nix::{find_nix, nix_command, nix_config};
use mirage_nix::render::{self, Roots};

fn run(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    run_ok(cmd);
    start.elapsed().as_secs_f64()
}

fn git(dir: &Path, args: &[&str]) {
    run(Command::new("git").arg("-C").arg(dir).args(args));
}

/// Appends a comment line to the example's library: an app-only, one-line change.
fn touch_app(dir: &Path, example: &str, n: usize) {
    let lib = dir.join("examples").join(example).join("src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).unwrap();
    text.push_str(&format!("// bench edit {n}\n"));
    std::fs::write(&lib, text).unwrap();
}

struct Row {
    example: String,
    /// Cold, no-op, app change, on the target's shared layers.
    nix: [f64; 3],
    /// Cold on the image's own layer (`.#perImage.<name>`).
    nix_own_layer: f64,
    cargo: [f64; 3],
}

/// A clone of HEAD under `work` in which every derivation that compiles, except the
/// generator's, is new (salted).
fn salted_clone(work: &Path, name: &str, salt: usize) -> PathBuf {
    let dir = work.join(format!("tree-{name}"));
    git(&root(), &["clone", "--quiet", ".", dir.to_str().unwrap()]);
    git(&dir, &["config", "user.email", "bench@example.invalid"]);
    git(&dir, &["config", "user.name", "bench"]);
    // The salt: every derivation of the library except the generator's gets a new hash.
    let lib = dir.join("nix/lib/mkCargoDerivation.nix");
    let text = std::fs::read_to_string(&lib).unwrap();
    let salted = text.replace(
        "MIRAGE_NIX_TOOLCHAIN = toolchain.identity;",
        &format!(
            "MIRAGE_NIX_TOOLCHAIN = toolchain.identity + (if builtins.substring 0 10 name == \"mirage-nix\" then \"\" else \"\\nbench salt {salt} {}\");",
            std::process::id()
        ),
    );
    assert_ne!(
        text, salted,
        "the bench's salt no longer applies to mkCargoDerivation.nix"
    );
    std::fs::write(&lib, salted).unwrap();
    // The vendor directory (the links to the unpacked crates) is new too; the crates stay
    // unpacked, as they stay downloaded and unpacked in cargo's registry for cargo's side.
    let vendor = dir.join("nix/lib/vendorCargoDeps.nix");
    let text = std::fs::read_to_string(&vendor).unwrap();
    let salted = text.replace(
        "    inherit name links;\n",
        &format!(
            "    inherit name links;\n    benchSalt = \"{salt} {}\";\n",
            std::process::id()
        ),
    );
    assert_ne!(
        text, salted,
        "the bench's salt no longer applies to vendorCargoDeps.nix"
    );
    std::fs::write(&vendor, salted).unwrap();
    git(&dir, &["commit", "--quiet", "-am", "bench salt"]);
    dir
}

/// `nix build` of `attrs` of the flake in `dir`: wall-clock seconds.
fn nix_build(dir: &Path, attrs: &[String]) -> f64 {
    let nix = find_nix().expect("nix on PATH: run `eval \"$(scripts/setup-nix)\"`");
    let mut cmd = nix_command(&nix, nix_config(&root()).as_deref());
    cmd.current_dir(dir).args(["build", "--no-link"]);
    cmd.args(attrs.iter().map(|a| format!("{}#{a}", dir.display())));
    run(&mut cmd)
}

/// The crate `mirage-nix render` writes from the example's unix plan in `dir`, with the
/// repository's Cargo.lock, under `work`.
fn render_crate(dir: &Path, example: &str, work: &Path) -> PathBuf {
    let krate = work.join(format!("crate-{example}"));
    let plan_file = dir.join("examples").join(example).join("plans/unix.json");
    let plan = mirage_nix::ops::read_plan(&plan_file).unwrap_or_else(|r| panic!("{}", r.render()));
    let roots = Roots {
        mirage: dir.to_path_buf(),
        unikernel: dir.join("examples").join(example),
    };
    let files = render::crate_files(&plan, &roots, &krate).unwrap();
    render::write(&files, &krate).unwrap();
    std::fs::copy(dir.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    krate
}

/// `cargo build --release` of `krate` into `target`: wall-clock seconds.
fn cargo_build(krate: &Path, target: &Path) -> f64 {
    run(Command::new("cargo")
        .current_dir(krate)
        .args(["build", "--release", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", target))
}

/// Every unix image at once: one cold `nix build` of them all (the layers are built once
/// and shared) beside a clean cargo build of each rendered crate, as a project without
/// shared layers builds them. Seconds: (nix, cargo, images).
fn bench_all(work: &Path, salt: usize) -> (f64, f64, usize) {
    let dir = salted_clone(work, "all", salt);
    let mut examples: Vec<String> = std::fs::read_dir(dir.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("plans/unix.json").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    examples.sort();
    eprintln!("every unix image: building the generator (untimed)");
    nix_build(&dir, &["mirage-nix".to_string()]);
    eprintln!("every unix image: nix cold");
    let attrs: Vec<String> = examples.iter().map(|e| format!("{e}-unix")).collect();
    let nix = nix_build(&dir, &attrs);
    eprintln!("every unix image: cargo clean, one crate after another");
    let cargo = examples
        .iter()
        .map(|e| {
            cargo_build(
                &render_crate(&dir, e, work),
                &work.join(format!("target-all-{e}")),
            )
        })
        .sum();
    (nix, cargo, examples.len())
}

fn bench(example: &str, work: &Path, salt: usize) -> Row {
    let dir = salted_clone(work, example, salt);
    let nix_build = |attr: &str| nix_build(&dir, &[attr.to_string()]);
    eprintln!("{example}: building the generator (untimed)");
    nix_build("mirage-nix");
    let attr = format!("{example}-unix");
    eprintln!("{example}: nix cold");
    let cold = nix_build(&attr);
    eprintln!("{example}: nix no-op");
    let noop = nix_build(&attr);
    eprintln!("{example}: nix cold, on its own layer");
    let own_layer = nix_build(&format!("perImage.{attr}"));
    touch_app(&dir, example, 1);
    eprintln!("{example}: nix app change");
    let app = nix_build(&attr);

    // cargo, on the rendered crate of the same plan.
    let krate = render_crate(&dir, example, work);
    let target = work.join(format!("target-{example}"));
    let cargo_build = || cargo_build(&krate, &target);
    eprintln!("{example}: cargo clean");
    let clean = cargo_build();
    eprintln!("{example}: cargo warm no-op");
    let warm = cargo_build();
    touch_app(&dir, example, 2);
    eprintln!("{example}: cargo app change");
    let app_cargo = cargo_build();
    Row {
        example: example.to_string(),
        nix: [cold, noop, app],
        nix_own_layer: own_layer,
        cargo: [clean, warm, app_cargo],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let every_image = args.is_empty();
    let examples: Vec<String> = if every_image {
        vec!["hello".into(), "conduit_server".into()]
    } else {
        args
    };
    let work = std::env::temp_dir().join(format!("mirage-nix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let rows: Vec<Row> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| bench(e, &work, i))
        .collect();
    let all = every_image.then(|| bench_all(&work, rows.len()));
    let _ = std::fs::remove_dir_all(&work);
    println!("| image | nix cold (s) | cargo clean (s) | ratio (goal < 1.3) | nix cold, own layer (s) | ratio | nix no-op (s) (goal < 1) | cargo warm no-op (s) | nix app change (s) | cargo app change (s) | ratio (goal < 1.5) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {}-unix | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
            r.example,
            r.nix[0],
            r.cargo[0],
            r.nix[0] / r.cargo[0],
            r.nix_own_layer,
            r.nix_own_layer / r.cargo[0],
            r.nix[1],
            r.cargo[1],
            r.nix[2],
            r.cargo[2],
            r.nix[2] / r.cargo[2],
        );
    }
    if let Some((nix, cargo, images)) = all {
        println!();
        println!("| every unix image ({images}) | nix cold, one build (s) | cargo clean, each crate (s) | ratio |");
        println!("|---|---:|---:|---:|");
        println!("| all | {nix:.1} | {cargo:.1} | {:.2} |", nix / cargo);
    }
}
