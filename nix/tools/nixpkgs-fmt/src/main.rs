//! `mirage-nix-fmt [--check] PATH...`: formats Nix files with the `nixpkgs-fmt` library, in
//! place, or with `--check` lists the files that are not formatted and fails. Directories
//! are walked for `*.nix` files (skipping `.git`, `target` and `result*`); no path means the
//! current directory, as `nix fmt` expects.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn nix_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".git" || name == "target" || name.starts_with("result") {
                continue;
            }
            nix_files(&e.path(), out)?;
        }
    } else if path.extension().is_some_and(|e| e == "nix") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let mut paths: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `nix fmt` with no argument: the current directory.
    if paths.is_empty() {
        paths.push(".");
    }
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = nix_files(Path::new(p), &mut files) {
            eprintln!("mirage-nix-fmt: {p}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut unformatted = 0;
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("mirage-nix-fmt: {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        };
        let formatted = nixpkgs_fmt::reformat_string(&text);
        if formatted == text {
            continue;
        }
        if check {
            eprintln!("not formatted: {}", f.display());
            unformatted += 1;
        } else if let Err(e) = std::fs::write(f, formatted) {
            eprintln!("mirage-nix-fmt: {}: {e}", f.display());
            return ExitCode::FAILURE;
        }
    }
    if unformatted > 0 {
        eprintln!(
            "{unformatted} of {} Nix files are not formatted: run `nix fmt`",
            files.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
