//! `cargo run --release -p mirage-nix-bench --bin nix_builds [EXAMPLE...]`: building images
//! through Nix beside a plain `cargo build --release` of the same rendered crate.
//!
//! For each example (default: hello and conduit_server, unix target), on a scratch clone of
//! this repository's HEAD (the real tree is never edited):
//!
//! - Nix: a cold `nix build .#<example>-unix` (every derivation but the generator's is made
//!   new with a salt in the scratch's copy of the library, so the crates are unpacked, the
//!   unix dependency layer and the image built from nothing; the generator is built
//!   beforehand, untimed, as cargo's side gets `mirage-nix render` for free), a no-op
//!   rebuild, and a rebuild after a one-line change in the example's `src/lib.rs`;
//! - cargo: the crate `mirage-nix render` writes from the same plan (with the repository's
//!   Cargo.lock), `cargo build --release --offline` from an empty target directory, again
//!   (warm, no-op), and after the same kind of one-line change.
//!
//! Prints a Markdown table of wall-clock seconds (one run each: cold builds take minutes)
//! and the ratios the goals are stated in. Needs Nix set up
//! (`eval "$(scripts/setup-nix)"`).

use mirage_nix_bench::root;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use mirage_nix::ops::nix::{find_nix, nix_command, nix_config};
use mirage_nix::render::{self, Roots};

fn run(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let took = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
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
    nix: [f64; 3],
    cargo: [f64; 3],
}

fn bench(example: &str, work: &Path, salt: usize) -> Row {
    let dir = work.join(format!("tree-{example}"));
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
    let vendor = dir.join("nix/lib/vendorCargoDeps.nix");
    let text = std::fs::read_to_string(&vendor).unwrap();
    std::fs::write(
        &vendor,
        text.replace(
            "MIRAGE_NIX_TOOLCHAIN = toolchain.identity;",
            &format!(
                "MIRAGE_NIX_TOOLCHAIN = toolchain.identity + \"\\nbench salt {salt} {}\";",
                std::process::id()
            ),
        ),
    )
    .unwrap();
    git(&dir, &["commit", "--quiet", "-am", "bench salt"]);

    let nix = find_nix().expect("nix on PATH: run `eval \"$(scripts/setup-nix)\"`");
    let config = nix_config(&root());
    let nix_build = |attr: &str| {
        let mut cmd = nix_command(&nix, config.as_deref());
        cmd.current_dir(&dir)
            .args(["build", "--no-link"])
            .arg(format!("{}#{attr}", dir.display()));
        run(&mut cmd)
    };
    eprintln!("{example}: building the generator (untimed)");
    nix_build("mirage-nix");
    let attr = format!("{example}-unix");
    eprintln!("{example}: nix cold");
    let cold = nix_build(&attr);
    eprintln!("{example}: nix no-op");
    let noop = nix_build(&attr);
    touch_app(&dir, example, 1);
    eprintln!("{example}: nix app change");
    let app = nix_build(&attr);

    // cargo, on the rendered crate of the same plan.
    let krate = work.join(format!("crate-{example}"));
    let target = work.join(format!("target-{example}"));
    let plan_file = dir.join("examples").join(example).join("plans/unix.json");
    let plan = mirage_nix::ops::read_plan(&plan_file).unwrap_or_else(|r| panic!("{}", r.render()));
    let roots = Roots {
        mirage: dir.clone(),
        unikernel: dir.join("examples").join(example),
    };
    let files = render::crate_files(&plan, &roots, &krate).unwrap();
    render::write(&files, &krate).unwrap();
    std::fs::copy(dir.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let cargo_build = || {
        run(Command::new("cargo")
            .current_dir(&krate)
            .args(["build", "--release", "--offline", "--quiet"])
            .env("CARGO_TARGET_DIR", &target))
    };
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
        cargo: [clean, warm, app_cargo],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let examples: Vec<String> = if args.is_empty() {
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
    let _ = std::fs::remove_dir_all(&work);
    println!("| image | nix cold (s) | cargo clean (s) | ratio (goal < 1.3) | nix no-op (s) (goal < 1) | cargo warm no-op (s) | nix app change (s) | cargo app change (s) | ratio (goal < 1.5) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {}-unix | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
            r.example,
            r.nix[0],
            r.cargo[0],
            r.nix[0] / r.cargo[0],
            r.nix[1],
            r.cargo[1],
            r.nix[2],
            r.cargo[2],
            r.nix[2] / r.cargo[2],
        );
    }
}
