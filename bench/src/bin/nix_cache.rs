//! `cargo run --release -p mirage-nix-bench --bin nix_cache [ATTR...]`: how long a machine
//! that has never built anything takes to get images from a signed binary cache, beside
//! building the same images cold.
//!
//! On a scratch clone of this repository's HEAD, for the images named (default: hello-xen
//! and conduit_server-spt, a Xen guest and a Solo5 image):
//!
//! - CI's side, untimed: the images are built here and `scripts/publish-cache` signs them
//!   and copies them to a `file://` cache;
//! - from the cache: a fresh chroot store (`nix build --store DIR`) substitutes them, with
//!   `--max-jobs 0` (nothing may be built), the cache as its only substituter and its key
//!   as the only trusted one; evaluation included;
//! - cold: another fresh chroot store holding only what `scripts/setup-nix` gives a
//!   machine (the toolchain and the crates, copied in untimed) builds them: the generator,
//!   each target's layers, the images; evaluation included.
//!
//! Prints a Markdown table of wall-clock seconds (one run each: the cold build takes
//! minutes). Needs Nix set up (`eval "$(scripts/setup-nix)"`).

use mirage_nix_bench::{root, run_ok, work_dir};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use mirage_nix::ops::nix::{find_nix, nix_command, nix_config};

fn timed(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    run_ok(cmd);
    start.elapsed().as_secs_f64()
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names = if names.is_empty() {
        vec!["hello-xen".to_string(), "conduit_server-spt".to_string()]
    } else {
        names
    };
    let config = nix_config(&root());
    let nix_path = find_nix().expect("nix on PATH: run `eval \"$(scripts/setup-nix)\"`");
    let nix = |args: &[&str]| {
        let mut cmd = nix_command(&nix_path, config.as_deref());
        cmd.args(args);
        cmd
    };

    let work_path = work_dir().join(format!("nix-cache-{}", std::process::id()));
    std::fs::create_dir_all(&work_path).unwrap();
    let work = &work_path;
    let tree = work.join("mirage-nix");
    run_ok(
        Command::new("git")
            .args(["clone", "--quiet"])
            .arg(root())
            .arg(&tree),
    );
    let attrs: Vec<String> = names
        .iter()
        .map(|n| format!("{}#{n}", tree.display()))
        .collect();
    let attr_args: Vec<&str> = attrs.iter().map(String::as_str).collect();

    // CI's side: build, sign, publish.
    eprintln!("nix_cache: building and publishing {names:?} (untimed)");
    let cache = format!("file://{}", work.join("cache").display());
    let key = work.join("cache.sec");
    let mut publish = Command::new(root().join("scripts/publish-cache"));
    if let Some(c) = &config {
        publish.env("NIX_CONFIG", c);
    }
    publish
        .args(["--flake", &tree.display().to_string(), "--to", &cache])
        .arg("--key-file")
        .arg(&key)
        .args(["--new-key", "mirage-nix-bench"]);
    for n in &names {
        publish.args(["--only", &format!("packages.x86_64-linux.{n}")]);
    }
    run_ok(&mut publish);
    let public_key = String::from_utf8(
        run_ok(nix(&["key", "convert-secret-to-public"]).stdin(std::fs::File::open(&key).unwrap()))
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();

    // A fresh store, from the cache.
    let from_cache_store = work.join("store-from-cache");
    let store_arg = from_cache_store.display().to_string();
    let mut args = vec![
        "build",
        "--no-link",
        "--store",
        &store_arg,
        "--max-jobs",
        "0",
    ];
    args.extend(["--option", "substituters", &cache]);
    args.extend(["--option", "trusted-public-keys", &public_key]);
    args.extend(attr_args.iter().copied());
    eprintln!("nix_cache: a fresh store substitutes them");
    let from_cache = timed(&mut nix(&args));

    // A fresh store with the toolchain and the crates (setup-nix's part), built cold.
    let cold_store = work.join("store-cold");
    let cold_arg = cold_store.display().to_string();
    let mut args = vec!["path-info", "--derivation"];
    args.extend(attr_args.iter().copied());
    let drvs = lines(&run_ok(&mut nix(&args)));
    let nix_store = nix_path.with_file_name("nix-store");
    let mut query = Command::new(&nix_store);
    query.args(["--query", "--requisites", "--include-outputs"]);
    query.args(&drvs);
    let seeds: Vec<String> = lines(&run_ok(&mut query))
        .into_iter()
        .filter(|p| !p.ends_with(".drv") && (p.ends_with(".tar.gz") || p.contains("-host-rust-")))
        .collect();
    eprintln!(
        "nix_cache: seeding a fresh store with the toolchain and {} crates (untimed)",
        seeds.len() - 1
    );
    let mut args = vec!["copy", "--no-check-sigs", "--to", &cold_arg];
    args.extend(seeds.iter().map(String::as_str));
    run_ok(&mut nix(&args));
    let mut args = vec!["build", "--no-link", "--store", &cold_arg];
    args.extend(attr_args.iter().copied());
    eprintln!("nix_cache: the same store-less machine builds them cold");
    let cold = timed(&mut nix(&args));

    let size = |dir: &Path| {
        let out = run_ok(Command::new("du").args(["-sb"]).arg(dir));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
    };
    println!("| images | fresh store, from the signed cache | fresh store, built cold | cold / cache | cache size |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| {} | {from_cache:.1} s | {cold:.1} s | {:.0}x | {:.1} MB |",
        names.join(" + "),
        cold / from_cache,
        size(&work.join("cache")) as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(work);
}
