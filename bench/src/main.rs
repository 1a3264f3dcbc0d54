//! Benchmarks of the generator, printed as a Markdown table (run on demand, not in CI):
//!
//! ```text
//! cargo run --release -p mirage-nix-bench [-- --runs N]
//! ```
//!
//! For every example and target it measures, as medians over N runs:
//! - `configure`: reading unikernel.toml with the catalogue, building and checking the graph,
//!   evaluating it and writing the plan's JSON, in process;
//! - `describe --dot`: the same load, then drawing the unevaluated graph;
//! - the whole `mirage-nix configure -t T DIR --check`-free command as a process (start-up,
//!   parsing, plan), which is what a user waits for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mirage_nix::eval::Mode;
use mirage_nix::ops::{self, DescribeFormat};
use mirage_nix::Unikernel;
use mirage_nix_bench::median;

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

/// Copies a unikernel's config and the folders it may embed (all but its crate's and the
/// build's) into `to`.
fn copy_config(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let kind = e.file_type().unwrap();
        if kind.is_file() && name == "unikernel.toml" {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        } else if kind.is_dir()
            && !["src", "target", "plans", ".mirage-nix"].contains(&name.to_str().unwrap_or(""))
        {
            copy_config(&e.path(), &to.join(&name));
            for f in std::fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                if f.file_type().unwrap().is_file() {
                    std::fs::copy(f.path(), to.join(&name).join(f.file_name())).unwrap();
                }
            }
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = std::env::var_os("MIRAGE_NIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/mirage-nix"));
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("unikernel.toml").is_file())
        .collect();
    examples.sort();
    let scratch = std::env::temp_dir().join("mirage-nix-bench");
    println!("| example | target | configure (ms, in process) | describe --dot (ms) | configure command (ms, process) |");
    println!("|---|---|---:|---:|---:|");
    for dir in &examples {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let uk = Unikernel::load(dir).expect("examples load");
        for target in uk.config.targets.keys() {
            let ctx = uk.context(target, []).unwrap();
            if uk.plan(&ctx).is_err() {
                continue;
            }
            let configure = time(runs, || {
                let uk = Unikernel::load(dir).unwrap();
                let ctx = uk.context(target, []).unwrap();
                std::hint::black_box(uk.plan(&ctx).unwrap().to_json());
            });
            let dot = time(runs, || {
                let uk = Unikernel::load(dir).unwrap();
                let ctx = uk.context(target, []).unwrap();
                let _ = mirage_nix::eval::evaluate(&uk.config, &uk.graph, &ctx, Mode::Partial);
                std::hint::black_box(ops::describe(&uk, &ctx, DescribeFormat::DotUnevaluated));
            });
            let process = if binary.is_file() {
                let copy = scratch.join(&name);
                copy_config(dir, &copy);
                let d = time(runs.min(30), || {
                    let ok = Command::new(&binary)
                        .args(["configure", "-t", target])
                        .arg(&copy)
                        .output()
                        .unwrap()
                        .status
                        .success();
                    assert!(ok, "mirage-nix configure failed");
                });
                ms(d)
            } else {
                "(build mirage-nix --release)".to_string()
            };
            println!(
                "| {name} | {target} | {} | {} | {process} |",
                ms(configure),
                ms(dot)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    reference(runs.min(10));
}

/// The reference: Functoria compiles `config.ml` (with dune, against the mirage library) and
/// runs it. Functoria is not packaged for Debian, so this times the smallest OCaml config
/// there can be, compiled by `ocamlopt` and run: a lower bound of what `mirage configure` does.
fn reference(runs: usize) {
    const CONFIG_ML: &str = "type 'a typ = Typ of string\n\
        let console : unit typ = Typ \"console\"\n\
        let register name devices =\n  \
          Printf.printf \"{\\\"name\\\": %S, \\\"devices\\\": [%s]}\\n\" name\n    \
          (String.concat \", \" (List.map (Printf.sprintf \"%S\") devices))\n\
        let () = ignore console; register \"console\" [\"default_console\"; \"default_time\"]\n";
    let dir = std::env::temp_dir().join("mirage-nix-bench-ocaml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.ml"), CONFIG_ML).unwrap();
    let compile_and_run = || {
        let built = Command::new("ocamlopt")
            .current_dir(&dir)
            .args(["config.ml", "-o", "config.exe"])
            .output();
        matches!(built, Ok(o) if o.status.success())
            && Command::new(dir.join("config.exe"))
                .output()
                .is_ok_and(|o| o.status.success())
    };
    println!();
    if compile_and_run() {
        let d = time(runs, || assert!(compile_and_run()));
        println!("| reference: lower bound of Functoria's configure | ms |");
        println!("|---|---:|");
        println!(
            "| the smallest OCaml config, compiled by `ocamlopt` and run | {} |",
            ms(d)
        );
    } else {
        println!("(reference not measured: `ocamlopt` is missing; `apt-get install ocaml-nox` provides it)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
