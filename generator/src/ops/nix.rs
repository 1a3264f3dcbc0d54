//! `build` through Nix: which flake and attribute build a plan, the `nix build` command line,
//! reading its result, and the one line that says how to boot the image.
//!
//! The flake is the unikernel's own when its directory has a `flake.nix` (a downstream
//! project made with `nix flake init -t`), else the mirage-nix tree's, whose packages are
//! `<name>-<target>` for every committed plan (`nix/lib/mkUnikernelPackages.nix`). Nix builds
//! the *committed* plan, so [`build_with_nix`] first checks that it is the plan the config
//! and keys give.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::diag::{Diagnostic, Report};
use crate::plan::Plan;

use super::{plan_path, read_plan, Built};

/// How to drive `nix build`.
#[derive(Clone, Debug, Default)]
pub struct NixOptions {
    /// The mirage-nix tree (its flake builds the examples; its `scripts/setup-nix` knows the
    /// project's Nix settings).
    pub mirage_root: PathBuf,
    /// The toolchain source, `host` or `nixpkgs`; `None` is the flake's default.
    pub toolchain: Option<String>,
    /// Show the builders' whole logs (`nix build -L`) rather than nix's progress.
    pub print_build_logs: bool,
    /// Build again even if the image is in the store, and fail if it differs (`--rebuild`).
    pub rebuild: bool,
    /// The `nix` program.
    pub nix: PathBuf,
}

/// The `nix` on PATH (or `$MIRAGE_NIX_NIX`), if there is one.
pub fn find_nix() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MIRAGE_NIX_NIX") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nix"))
        .find(|p| p.is_file())
}

fn fail(code: &'static str, message: String, help: impl Into<String>) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error(code, None, message).with_help(help)],
    }
}

/// The flake that builds the plans of the unikernel in `dir`: its own when it has a
/// `flake.nix`, else the mirage-nix tree's when `dir` is inside it.
pub fn locate_flake(mirage_root: &Path, dir: &Path) -> Result<PathBuf, Report> {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, dir) = (abs(mirage_root), abs(dir));
    if dir.join("flake.nix").is_file() {
        return Ok(dir);
    }
    if dir.starts_with(&root) && root.join("flake.nix").is_file() {
        return Ok(root);
    }
    Err(fail(
        "no-flake",
        format!(
            "no flake builds {}: it has no flake.nix and is outside the mirage-nix tree {}",
            dir.display(),
            root.display()
        ),
        format!(
            "create one with `nix flake init -t {}` in {}, or build with cargo: `mirage-nix build --cargo`",
            root.display(),
            dir.display()
        ),
    ))
}

/// The installable of a plan's image: `<flake>#<name>-<target>`, or
/// `<flake>#<source>.<name>-<target>` for an explicit toolchain source.
pub fn installable(flake: &Path, attr: &str, toolchain: Option<&str>) -> String {
    match toolchain {
        Some(source) => format!("{}#{source}.{attr}", flake.display()),
        None => format!("{}#{attr}", flake.display()),
    }
}

/// The NIX_CONFIG `nix` should run with: the caller's when it already enables flakes, else
/// the project's settings as `scripts/setup-nix --print-config` prints them (no binary
/// cache, the sandbox, flakes), else `None` (nix's own settings plus the flags
/// [`nix_command`] adds).
pub fn nix_config(mirage_root: &Path) -> Option<String> {
    if std::env::var("NIX_CONFIG").is_ok_and(|c| c.contains("flakes")) {
        return None;
    }
    let script = mirage_root.join("scripts").join("setup-nix");
    let out = Command::new(&script)
        .arg("--print-config")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    parse_exported_config(&text)
}

/// The value of `export NIX_CONFIG=$'...'` as bash's `printf %q` writes it.
pub fn parse_exported_config(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("export NIX_CONFIG="))?;
    if let Some(body) = line.strip_prefix("$'").and_then(|b| b.strip_suffix('\'')) {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        Some(out)
    } else {
        Some(
            line.trim_matches('\'')
                .replace("\\ ", " ")
                .replace("\\=", "="),
        )
    }
}

/// A `nix` command with the experimental features flakes need, and `config` as NIX_CONFIG.
pub fn nix_command(nix: &Path, config: Option<&str>) -> Command {
    let mut cmd = Command::new(nix);
    cmd.args(["--extra-experimental-features", "nix-command flakes"]);
    if let Some(c) = config {
        cmd.env("NIX_CONFIG", c);
    }
    cmd
}

/// The arguments of `nix build` for `installable`, writing the result link `out_link`.
pub fn build_args(installable: &str, out_link: &Path, opts: &NixOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["build".into(), installable.into(), "--json".into()];
    args.push("--out-link".into());
    args.push(out_link.as_os_str().to_owned());
    if opts.print_build_logs {
        args.push("--print-build-logs".into());
    }
    if opts.rebuild {
        args.push("--rebuild".into());
    }
    args
}

/// The `out` paths of `nix build --json`'s output.
pub fn parse_build_json(text: &str) -> Result<Vec<PathBuf>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let items = value.as_array().ok_or("not a JSON list")?;
    let outs: Vec<PathBuf> = items
        .iter()
        .filter_map(|i| i.pointer("/outputs/out")?.as_str().map(PathBuf::from))
        .collect();
    if outs.is_empty() {
        return Err("no output path".into());
    }
    Ok(outs)
}

/// Where the image is inside a package: `bin/<file>` for unix (so `nix run` works), the
/// file itself otherwise (as `nix/lib/buildUnikernel.nix` installs it).
pub fn image_in(out: &Path, plan: &Plan) -> PathBuf {
    if plan.image.std {
        out.join("bin").join(&plan.image.file)
    } else {
        out.join(&plan.image.file)
    }
}

/// One line saying how to boot `image`, by image format.
pub fn boot_hint(plan: &Plan, image: &Path) -> String {
    let beside = image.parent().unwrap_or(Path::new("."));
    let disks: Vec<&crate::plan::Disk> =
        plan.nodes.iter().filter_map(|n| n.disk.as_ref()).collect();
    let image = image.display();
    match plan.image.format.as_str() {
        "elf-unix" if !disks.is_empty() => {
            let files: Vec<String> = disks
                .iter()
                .map(|d| beside.join(&d.file).display().to_string())
                .collect();
            format!(
                "run it with `{image}` (add --help for its keys); it reads {} beside it",
                files.join(", ")
            )
        }
        "elf-unix" => format!("run it with `{image}` (add --help for its keys)"),
        "xen-pv" => format!(
            "boot it with `scripts/xen-run pvh {image}` in the mirage-nix tree (through its \
             PVH entry under QEMU; `dom0` boots it on Xen, `xl` prints an xl config)"
        ),
        "solo5-hvt" | "solo5-spt" => {
            format!(
                "boot it with `{} --mem=64{} -- {image}` (add --help for its keys)",
                plan.image.format,
                solo5_devices(plan, beside)
            )
        }
        other => format!("the image is {image} (format {other})"),
    }
}

/// `solo5_devices(plan, beside)` is the tender options attaching the plan's Solo5 devices,
/// each preceded by a space: `--net:NAME=TAP` (a host tap interface) and `--block:NAME=FILE`,
/// FILE being the disk image the build made in `beside` when there is one.
fn solo5_devices(plan: &Plan, beside: &Path) -> String {
    plan.nodes
        .iter()
        .filter_map(|n| Some((n.manifest.as_ref()?, n.disk.as_ref())))
        .map(|(m, disk)| match (m.kind, disk) {
            (crate::config::ManifestKind::Net, _) => format!(" --net:{}=TAP", m.name),
            (crate::config::ManifestKind::Block, Some(d)) => {
                format!(" --block:{}={}", m.name, beside.join(&d.file).display())
            }
            (crate::config::ManifestKind::Block, None) => format!(" --block:{}=FILE", m.name),
        })
        .collect()
}

/// Checks that the committed plan is `plan`: Nix builds committed plans only.
pub fn check_committed(plan: &Plan, dir: &Path) -> Result<(), Report> {
    let path = plan_path(dir, &plan.target);
    let configure = {
        let mut words = vec![
            "mirage-nix configure".to_string(),
            format!("-t {}", plan.target),
        ];
        words.extend(plan.explicit_flags());
        words.push(dir.display().to_string());
        words.join(" ")
    };
    let help = format!(
        "run `{configure}` and commit the plan (`git add {}`): Nix builds committed plans; \
         or build this once with cargo: add --cargo",
        path.display()
    );
    match read_plan(&path) {
        Err(_) if !path.exists() => Err(fail(
            "no-plan",
            format!("there is no plan {} for Nix to build", path.display()),
            help,
        )),
        Err(e) => Err(e),
        Ok(committed) if committed != *plan => Err(fail(
            "plan-differs",
            format!(
                "the committed plan {} differs from what the config and keys give",
                path.display()
            ),
            help,
        )),
        Ok(_) => Ok(()),
    }
}

/// Builds the committed plan `plan` of the unikernel in `dir` with `nix build`, leaving the
/// result link at `DIR/.mirage-nix/<target>/result` (a garbage-collector root). Nix's progress
/// (or with `print_build_logs` the builders' logs) goes to stderr.
pub fn build_with_nix(plan: &Plan, dir: &Path, opts: &NixOptions) -> Result<Built, Report> {
    check_committed(plan, dir)?;
    let flake = locate_flake(&opts.mirage_root, dir)?;
    let target = installable(&flake, &plan.nix_attr(), opts.toolchain.as_deref());
    let state = dir.join(super::STATE_DIR).join(&plan.target);
    std::fs::create_dir_all(&state).map_err(|e| {
        fail(
            "io",
            format!("cannot create {}: {e}", state.display()),
            "check that the directory is writable",
        )
    })?;
    let out_link = std::path::absolute(state.join("result")).unwrap_or(state.join("result"));
    let config = nix_config(&opts.mirage_root);
    let mut cmd = nix_command(&opts.nix, config.as_deref());
    cmd.args(build_args(&target, &out_link, opts))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let output = cmd.output().map_err(|e| {
        fail(
            "nix",
            format!("cannot run {}: {e}", opts.nix.display()),
            "install Nix and set it up with `eval \"$(scripts/setup-nix)\"`, or add --cargo",
        )
    })?;
    if !output.status.success() {
        return Err(fail(
            "nix",
            format!("`nix build {target}` failed ({})", output.status),
            "read nix's error above: an evaluation error names the file and the command that \
             fixes it; add -L for the build logs; a missing toolchain or crate needs \
             `eval \"$(scripts/setup-nix)\"`",
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let out = parse_build_json(&stdout)
        .map_err(|e| {
            fail(
                "nix",
                format!("cannot read `nix build --json`'s output: {e}"),
                "report this",
            )
        })?
        .remove(0);
    let image = image_in(&out, plan);
    Ok(Built {
        run_hint: boot_hint(plan, &image),
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(format: &str, std: bool) -> Plan {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/plans/unix.json"),
        )
        .unwrap();
        let mut p = Plan::from_json(&text).unwrap();
        p.image.format = format.into();
        p.image.std = std;
        p
    }

    #[test]
    fn installables_name_the_attribute_and_the_toolchain_source() {
        let f = Path::new("/m");
        assert_eq!(installable(f, "hello-unix", None), "/m#hello-unix");
        assert_eq!(
            installable(f, "hello-unix", Some("nixpkgs")),
            "/m#nixpkgs.hello-unix"
        );
    }

    #[test]
    fn build_arguments() {
        let opts = NixOptions {
            print_build_logs: true,
            rebuild: true,
            ..Default::default()
        };
        let args = build_args("/m#hello-unix", Path::new("/d/result"), &opts);
        assert_eq!(
            args,
            [
                "build",
                "/m#hello-unix",
                "--json",
                "--out-link",
                "/d/result",
                "--print-build-logs",
                "--rebuild"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn reads_nix_build_json() {
        let text = r#"[{"drvPath":"/nix/store/a-hello-unix.drv","outputs":{"out":"/nix/store/b-hello-unix"}}]"#;
        assert_eq!(
            parse_build_json(text).unwrap(),
            [PathBuf::from("/nix/store/b-hello-unix")]
        );
        assert!(parse_build_json("[]").is_err());
        assert!(parse_build_json("building...").is_err());
    }

    #[test]
    fn images_and_boot_hints_by_format() {
        let out = Path::new("/nix/store/b-hello-unix");
        let unix = plan("elf-unix", true);
        let image = image_in(out, &unix);
        assert_eq!(image, out.join("bin/hello"));
        assert_eq!(
            boot_hint(&unix, &image),
            "run it with `/nix/store/b-hello-unix/bin/hello` (add --help for its keys)"
        );
        let xen = plan("xen-pv", false);
        assert_eq!(image_in(out, &xen), out.join("hello"));
        assert!(boot_hint(&xen, &image_in(out, &xen)).contains("scripts/xen-run pvh"));
        assert!(boot_hint(&plan("solo5-hvt", false), out).contains("solo5-hvt"));
        assert!(boot_hint(&plan("solo5-spt", false), out).contains("solo5-spt"));
        for f in ["elf-unix", "xen-pv", "solo5-hvt", "solo5-spt", "other"] {
            assert!(!boot_hint(&plan(f, false), out).contains('\n'), "one line");
        }
    }

    #[test]
    fn solo5_hints_attach_the_manifests_devices() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |p: &str| crate::ops::read_plan(&root.join(p)).unwrap();
        let server = read("examples/conduit_server/plans/spt.json");
        assert_eq!(
            boot_hint(&server, Path::new("conduit_server.spt")),
            "boot it with `solo5-spt --mem=64 --net:service=TAP -- conduit_server.spt` \
             (add --help for its keys)"
        );
        let block = read("examples/block/plans/hvt.json");
        assert!(boot_hint(&block, Path::new("block.hvt"))
            .contains("solo5-hvt --mem=64 --block:storage=FILE -- block.hvt"));
    }

    #[test]
    fn reads_the_exported_config_of_setup_nix() {
        let text = "export NIX_CONFIG=$'extra-experimental-features = nix-command flakes\\nsubstituters =\\nsandbox = true'\n";
        assert_eq!(
            parse_exported_config(text).unwrap(),
            "extra-experimental-features = nix-command flakes\nsubstituters =\nsandbox = true"
        );
        assert_eq!(parse_exported_config("nothing"), None);
    }

    #[test]
    fn the_flake_is_the_unikernels_own_or_the_mirage_trees() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let root = std::fs::canonicalize(root).unwrap();
        assert_eq!(
            locate_flake(&root, &root.join("examples/hello")).unwrap(),
            root
        );
        let own = tempfile::tempdir().unwrap();
        std::fs::write(own.path().join("flake.nix"), "{}").unwrap();
        assert_eq!(
            locate_flake(&root, own.path()).unwrap(),
            std::fs::canonicalize(own.path()).unwrap()
        );
        let none = tempfile::tempdir().unwrap();
        let err = locate_flake(&root, none.path()).unwrap_err().render();
        assert!(err.contains("nix flake init -t"), "{err}");
    }

    #[test]
    fn a_plan_that_is_not_committed_is_not_built() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan("elf-unix", true);
        let err = check_committed(&p, dir.path()).unwrap_err().render();
        assert!(err.contains("mirage-nix configure -t unix"), "{err}");
        std::fs::create_dir_all(dir.path().join("plans")).unwrap();
        std::fs::write(dir.path().join("plans/unix.json"), p.to_json()).unwrap();
        check_committed(&p, dir.path()).unwrap();
        let mut other = p.clone();
        other.name = "other".into();
        let err = check_committed(&other, dir.path()).unwrap_err().render();
        assert!(err.contains("differs"), "{err}");
    }
}
