//! `build --cargo`: render a unikernel's crate and compile its image with cargo directly.
//!
//! `mirage-nix build` goes through Nix ([`super::nix`]); this is the fallback for machines
//! without Nix (or `--cargo`): the crate is rendered under `DIR/.mirage-nix/<target>/crate`,
//! compiled from inside it (so its `.cargo/config.toml`, the target's rustc flags, applies)
//! with a target directory shared by every unikernel (so dependencies build once), and the
//! image is copied to `DIR/dist/`, with the disk images its stores read ([`write_disks`]).
//! Unlike Nix it builds the plan the config and keys give,
//! committed or not.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::diag::{Diagnostic, Report};
use crate::plan::Plan;
use crate::render::{self, Roots};

use super::STATE_DIR;

/// Where and how to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Crate locations.
    pub roots: Roots,
    /// The cargo target directory shared by builds.
    pub target_dir: PathBuf,
    /// Whether to hide cargo's progress.
    pub quiet: bool,
}

/// The triple bare-metal images are compiled for: the stable toolchain's host target, with
/// the image's own link flags.
const BARE_METAL_HOST: &str = "x86_64-unknown-linux-gnu";

/// A built image.
#[derive(Clone, Debug)]
pub struct Built {
    /// The image file.
    pub image: PathBuf,
    /// One line telling how to run it.
    pub run_hint: String,
}

fn fail(message: String, help: &str) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error("build", None, message).with_help(help)],
    }
}

/// The folder a plan's crate is rendered into.
pub fn crate_dir(dir: &Path, target: &str) -> PathBuf {
    dir.join(STATE_DIR).join(target).join("crate")
}

/// Renders and compiles the image of `plan`, for the unikernel in `dir`.
pub fn build(plan: &Plan, dir: &Path, opts: &BuildOptions) -> Result<Built, Report> {
    let runtime_dir = plan
        .crates
        .iter()
        .find(|c| c.name == plan.image.runtime)
        .and_then(|c| match &c.source {
            crate::config::CrateSource::Mirage(p) => Some(opts.roots.mirage.join(p)),
            _ => None,
        });
    if runtime_dir
        .as_ref()
        .is_some_and(|d| !d.join("Cargo.toml").exists())
    {
        return Err(fail(
            format!(
                "the {} target has no runtime in this tree yet ({} is missing)",
                plan.target, plan.image.runtime
            ),
            "build for a target whose runtime exists (run `mirage-nix targets`)",
        ));
    }
    if !plan.image.std && plan.image.rustflags.is_empty() {
        return Err(fail(
            format!(
                "{} images are bare-metal and their target declares no rustc flags to link them with cargo directly",
                plan.target
            ),
            &format!("run `nix build .#{}`", plan.nix_attr()),
        ));
    }
    let crate_dir = crate_dir(dir, &plan.target);
    let files = render::crate_files(plan, &opts.roots, &crate_dir)
        .map_err(|e| fail(e.to_string(), "check the folders the plan embeds"))?;
    render::write(&files, &crate_dir).map_err(|e| {
        fail(
            format!("cannot write {}: {e}", crate_dir.display()),
            "check that the directory is writable",
        )
    })?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // From inside the crate, so that its .cargo/config.toml (the target's rustc flags) applies.
    cargo
        .current_dir(&crate_dir)
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg("Cargo.toml")
        .env("CARGO_TARGET_DIR", &opts.target_dir);
    // Bare-metal images: the host triple as cargo's target (as Nix sets CARGO_BUILD_TARGET),
    // so that the target's link flags reach the image only, not build scripts.
    let release = if plan.image.std {
        opts.target_dir.join("release")
    } else {
        cargo.args(["--target", BARE_METAL_HOST]);
        opts.target_dir.join(BARE_METAL_HOST).join("release")
    };
    if opts.quiet {
        cargo.arg("--quiet");
    }
    let status = cargo.status().map_err(|e| {
        fail(
            format!("cannot run cargo: {e}"),
            "install Rust's cargo and put it on PATH",
        )
    })?;
    if !status.success() {
        return Err(fail(format!("cargo failed building {} for {} ({status})", plan.name, plan.target), "read cargo's errors above; the generated code says which config line each device comes from"));
    }
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).map_err(|e| {
        fail(
            format!("cannot create {}: {e}", dist.display()),
            "check that the directory is writable",
        )
    })?;
    let image = dist.join(&plan.image.file);
    let built = release.join(&plan.name);
    std::fs::copy(&built, &image).map_err(|e| {
        fail(
            format!(
                "cannot copy {} to {}: {e}",
                built.display(),
                image.display()
            ),
            "check the cargo target directory",
        )
    })?;
    write_disks(plan, dir, &dist)?;
    Ok(Built {
        run_hint: super::nix::boot_hint(plan, &image),
        image,
    })
}

/// `write_disks(plan, unikernel, out)` makes the disk images `plan` reads (tar archives, FAT
/// filesystems) from the folders of the unikernel in `unikernel`, into `out`, beside the image;
/// it returns their paths.
pub fn write_disks(plan: &Plan, unikernel: &Path, out: &Path) -> Result<Vec<PathBuf>, Report> {
    render::check(plan).map_err(|e| {
        fail(
            e.to_string(),
            "regenerate the plan with `mirage-nix configure`",
        )
    })?;
    let disks = render::disk::disks(plan, unikernel).map_err(|e| {
        fail(
            e.to_string(),
            "a disk holds the folder's regular files, named as a FAT or tar archive can name them",
        )
    })?;
    let mut written = Vec::new();
    for (file, bytes) in disks {
        let path = out.join(&file);
        let image = render::File {
            path: PathBuf::from(&file),
            contents: bytes,
        };
        render::write(&[image], out).map_err(|e| {
            fail(
                format!("cannot write {}: {e}", path.display()),
                "check that the directory is writable",
            )
        })?;
        written.push(path);
    }
    Ok(written)
}

/// How `build` and `run` build an image: with Nix unless asked for cargo or there is no Nix.
#[derive(Clone, Debug, Default)]
pub struct ImageBuild {
    /// Build with cargo directly (`--cargo`).
    pub cargo: bool,
    /// The mirage-nix tree given with `--mirage-root`.
    pub mirage_root: Option<PathBuf>,
    /// The Nix toolchain source (`--toolchain`).
    pub toolchain: Option<String>,
    /// Show the builders' logs (`-L`).
    pub print_build_logs: bool,
    /// Build again and compare (`--rebuild`).
    pub rebuild: bool,
    /// Hide cargo's progress (`-q`).
    pub quiet: bool,
}

/// `build_image(plan, dir, opts, say)` builds the image of `plan` for the unikernel in `dir`:
/// through `nix build` of the committed plan when Nix is on PATH, else (or with `cargo`) with
/// cargo into `DIR/dist/`. `say` gets one line about what is built how, before it is.
pub fn build_image(
    plan: &Plan,
    dir: &Path,
    opts: &ImageBuild,
    say: &mut dyn FnMut(String),
) -> Result<Built, Report> {
    let mirage = super::mirage_root(opts.mirage_root.as_deref());
    let nix = if opts.cargo {
        None
    } else {
        let found = super::find_nix();
        if found.is_none() {
            say("nix is not on PATH: building with cargo instead (set Nix up with `eval \"$(scripts/setup-nix)\"`, see docs/nix.md)".into());
        }
        found
    };
    if let Some(nix) = nix {
        // A downstream unikernel's own flake names the mirage-nix tree itself: the
        // generator (e.g. `nix run`'s, far from any tree) needs none then.
        let mirage = match mirage {
            Err(_) if dir.join("flake.nix").is_file() => dir.to_path_buf(),
            other => other?,
        };
        let nix_opts = super::NixOptions {
            mirage_root: mirage,
            toolchain: opts.toolchain.clone(),
            print_build_logs: opts.print_build_logs,
            rebuild: opts.rebuild,
            nix,
        };
        say(format!(
            "building {} for {} with nix",
            plan.name, plan.target
        ));
        return super::build_with_nix(plan, dir, &nix_opts);
    }
    let mirage = mirage?;
    let cargo_opts = BuildOptions {
        target_dir: mirage.join("target").join("mirage-nix"),
        roots: Roots {
            mirage,
            unikernel: dir.to_path_buf(),
        },
        quiet: opts.quiet,
    };
    say(format!(
        "building {} for {} with cargo",
        plan.name, plan.target
    ));
    build(plan, dir, &cargo_opts)
}
