//! Nix end-to-end: caching, reproducibility, bad plans, bare-metal flags, `mirage-nix build`
//! and `explain`, each on a scratch clone of this repository (the real tree is never
//! edited). They need Nix set up (`eval "$(scripts/setup-nix)"`) and take minutes, so they
//! are ignored by `cargo test`; `scripts/test` runs them:
//!
//!     cargo test -p mirage-nix --test nix -- --ignored --test-threads=1
//!
//! Derivations are counted with `nix build --dry-run`, which lists exactly the derivations
//! a build would run (there is no binary cache to fetch from).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use mirage_nix::ops::nix::{find_nix, nix_command, nix_config};

const UNIX_IMAGES: &[&str] = &["hello-unix", "console-unix", "kv_ro-unix", "block-unix"];

fn root() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

/// A clone of this repository's HEAD in a temporary directory (or, where the tree is not a
/// git checkout, such as an exported archive, a copy of it committed to a new repository).
struct Scratch {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn scratch() -> Scratch {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirage-nix");
    let git = |args: &[&str]| {
        run(Command::new("git").arg("-C").arg(&dir).args(args));
    };
    if root().join(".git").exists() {
        run(Command::new("git")
            .args(["clone", "--quiet"])
            .arg(root())
            .arg(&dir));
    } else {
        std::fs::create_dir(&dir).unwrap();
        run(Command::new("sh").arg("-c").arg(
            "tar -C \"$0\" --exclude=./target --exclude='./result*' --exclude='*/.mirage-nix' -cf - . | tar -C \"$1\" -xf -",
        ).arg(root()).arg(&dir));
        git(&["init", "--quiet"]);
    }
    git(&["config", "user.name", "test"]);
    git(&["config", "user.email", "test@example.invalid"]);
    if !root().join(".git").exists() {
        git(&["add", "--all"]);
        git(&["commit", "--quiet", "--message", "the tree under test"]);
    }
    Scratch { _tmp: tmp, dir }
}

/// A token unique to this run. Edits carry it so that their derivations are new even where
/// the Nix store is kept between runs (a store that already holds an edited image would
/// build nothing and hide what a test counts).
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos}-{}", std::process::id())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Scratch {
    fn nix(&self, args: &[&str]) -> Command {
        let nix = find_nix().expect("nix on PATH: run `eval \"$(scripts/setup-nix)\"`");
        let mut cmd = nix_command(&nix, nix_config(&root()).as_deref());
        cmd.current_dir(&self.dir).args(args);
        cmd
    }

    fn attr(&self, name: &str) -> String {
        format!("{}#{name}", self.dir.display())
    }

    /// Builds `names` (packages of the scratch flake).
    fn build(&self, names: &[&str]) {
        let mut args = vec!["build", "--no-link"];
        let attrs: Vec<String> = names.iter().map(|n| self.attr(n)).collect();
        args.extend(attrs.iter().map(String::as_str));
        run(&mut self.nix(&args));
    }

    /// The names of the derivations `nix build` of `names` would run.
    fn to_build(&self, names: &[&str]) -> Vec<String> {
        let mut args = vec!["build", "--no-link", "--dry-run"];
        let attrs: Vec<String> = names.iter().map(|n| self.attr(n)).collect();
        args.extend(attrs.iter().map(String::as_str));
        let out = run(&mut self.nix(&args));
        let text = String::from_utf8_lossy(&out.stderr);
        let mut drvs: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("/nix/store/") && l.ends_with(".drv"))
            .map(|l| mirage_nix::ops::explain::store_name(l).to_string())
            .collect();
        drvs.sort();
        drvs
    }

    fn edit(&self, file: &str, f: impl FnOnce(String) -> String) {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, f(text)).unwrap();
    }

    /// The crates cargo compiled in the build of `attr`, from its log: "name vX (path)".
    fn compiled(&self, attr: &str) -> Vec<String> {
        let log = run(&mut self.nix(&["log", &self.attr(attr)]));
        String::from_utf8_lossy(&log.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Compiling "))
            .map(String::from)
            .collect()
    }

    /// Stages everything (flakes see tracked files only).
    fn add(&self) {
        run(Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["add", "-A"]));
    }

    fn mirage_nix(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
            .current_dir(&self.dir)
            .env("MIRAGE_NIX_ROOT", &self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// `nix eval` of an attribute that must fail; its error text.
    fn eval_error(&self, attr: &str) -> String {
        let out = self
            .nix(&["eval", "--raw", &format!("{}.drvPath", self.attr(attr))])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{attr} evaluated");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn an_unchanged_image_builds_nothing() {
    let s = scratch();
    s.build(&["hello-unix"]);
    assert_eq!(s.to_build(&["hello-unix"]), Vec::<String>::new());
    let start = Instant::now();
    s.build(&["hello-unix"]);
    let took = start.elapsed();
    eprintln!("no-op nix build .#hello-unix: {took:.2?}");
    assert!(took.as_secs_f64() < 5.0, "a no-op build took {took:?}");
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn flake_show_lists_every_output() {
    let s = scratch();
    let out = run(&mut s.nix(&["flake", "show", "--json", &s.dir.display().to_string()]));
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let system = "x86_64-linux";
    let packages = &show["packages"][system];
    for name in [
        "mirage-nix",
        "default",
        "hello-unix",
        "hello-xen",
        "conduit_server-unix",
    ] {
        assert_eq!(
            packages[name]["type"], "derivation",
            "packages.{name}: {show}"
        );
    }
    assert_eq!(show["apps"][system]["hello-unix"]["type"], "app", "{show}");
    assert_eq!(show["apps"][system]["default"]["type"], "app", "{show}");
    for check in [
        "hello-unix-boot",
        "hello-xen-boot",
        "nix-unit-tests",
        "plans-fresh",
        "nix-format",
    ] {
        assert_eq!(
            show["checks"][system][check]["type"], "derivation",
            "checks.{check}: {show}"
        );
    }
    assert_eq!(
        show["devShells"][system]["default"]["type"], "derivation",
        "{show}"
    );
    assert_eq!(show["formatter"][system]["type"], "derivation", "{show}");
    assert_eq!(show["templates"]["default"]["type"], "template", "{show}");
    assert!(
        show["hydraJobs"]["packages"][system]["hello-unix"].is_object(),
        "{show}"
    );
    assert!(
        show["hydraJobs"]["checks"][system]["hello-unix-boot"].is_object(),
        "{show}"
    );
    assert!(
        show["legacyPackages"].is_object() && show["lib"].is_object(),
        "{show}"
    );
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn every_image_rebuilds_bit_for_bit() {
    let s = scratch();
    let out = run(&mut s.nix(&[
        "eval",
        "--json",
        &s.attr("packages.x86_64-linux"),
        "--apply",
        "builtins.attrNames",
    ]));
    let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let images: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !matches!(*n, "default" | "mirage-nix"))
        .collect();
    assert!(images.contains(&"hello-unix"), "{images:?}");
    s.build(&images);
    // Each image compiles its unikernel's crate and the rendered crate, nothing else: the
    // target's layers hold every other crate with the features this plan needs.
    for image in &images {
        let compiled = s.compiled(image);
        assert_eq!(compiled.len(), 2, "{image} compiled {compiled:?}");
    }
    let mut args = vec!["build", "--no-link", "--rebuild"];
    let attrs: Vec<String> = images.iter().map(|n| s.attr(n)).collect();
    args.extend(attrs.iter().map(String::as_str));
    // Fails with "may not be deterministic" if any output differs.
    run(&mut s.nix(&args));
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn an_app_change_or_a_key_rebuilds_one_derivation() {
    let s = scratch();
    s.build(UNIX_IMAGES);
    // The workspace layer compiles mirage-nix's crates only: every third-party crate it
    // needs was compiled, with the same features, by the dependency layer under it.
    let third_party: Vec<String> = s
        .compiled("hello-unix.depsArtifacts")
        .into_iter()
        .filter(|c| !c.contains("(/build/src/"))
        .collect();
    assert_eq!(third_party, Vec::<String>::new());
    let edited = format!("for _ in 0..4 {{ // a one-line change {}", nonce());
    s.edit("examples/hello/src/lib.rs", |t| {
        let changed = t.replacen("for _ in 0..4 {", &edited, 1);
        assert_ne!(changed, t, "the line to change is gone from examples/hello");
        changed
    });
    // The crate and its link are one derivation; the dependency layer, the generator and
    // the other images are untouched.
    assert_eq!(s.to_build(UNIX_IMAGES), ["hello-unix"]);
    s.build(&["hello-unix"]);
    // Inside it cargo compiles the example's crate and the rendered crate, nothing else:
    // third-party crates come from the dependency layer, mirage-nix's from the workspace layer.
    let compiled: Vec<String> = s
        .compiled("hello-unix")
        .iter()
        .map(|c| c.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(compiled, ["hello", "hello-unix"]);

    // A key's value changes the plan, hence the image, not the layer.
    let hello = format!("--hello=Hi {}", nonce());
    let out = s.mirage_nix(&["configure", "-t", "unix", &hello, "examples/hello"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(s.to_build(UNIX_IMAGES), ["hello-unix"]);
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn an_image_on_its_own_layer_needs_no_shared_layer() {
    let s = scratch();
    let attr = "perImage.hello-unix";
    // Its closure: its own layer, none of the target's shared ones.
    let out = run(&mut s.nix(&["show-derivation", "--recursive", &s.attr(attr)]));
    let closure: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = closure
        .keys()
        .map(|d| mirage_nix::ops::explain::store_name(d))
        .collect();
    assert!(names.contains(&"hello-unix-layer"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("mirage-unix-")),
        "{names:?}"
    );
    s.build(&[attr]);
    assert_eq!(s.compiled(attr).len(), 2, "{:?}", s.compiled(attr));
    // An app change rebuilds the image, not its layer.
    s.edit("examples/hello/src/lib.rs", |t| {
        t + &format!("// an edit {}\n", nonce())
    });
    assert_eq!(s.to_build(&[attr]), ["hello-unix"]);
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn a_change_to_another_runtime_rebuilds_no_unix_image() {
    let s = scratch();
    s.build(UNIX_IMAGES);
    // runtime/xen (created if the Xen runtime has not landed yet), with a new dependency.
    s.edit("runtime/xen/Cargo.toml", |t| {
        if t.is_empty() {
            "[package]\nname = \"mirage-xen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlog = \"0.4\"\n".into()
        } else {
            t + "\n# an edit\n"
        }
    });
    s.edit("runtime/xen/src/lib.rs", |t| {
        if t.is_empty() {
            "#![no_std]\n".into()
        } else {
            t + "\n// an edit\n"
        }
    });
    s.add();
    assert_eq!(s.to_build(UNIX_IMAGES), Vec::<String>::new());
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn bad_plans_fail_evaluation_naming_the_file_and_the_fix() {
    let s = scratch();
    let plan = "examples/hello/plans/unix.json";
    let fix = "mirage-nix configure -t unix examples/hello";

    // An unknown schema version.
    let original = std::fs::read_to_string(s.dir.join(plan)).unwrap();
    s.edit(plan, |t| t.replace("\"version\": 2", "\"version\": 99"));
    let err = s.eval_error("hello-unix");
    assert!(
        err.contains(plan) && err.contains("plan version 99"),
        "{err}"
    );
    assert!(err.contains("configure -t unix examples/hello"), "{err}");
    std::fs::write(s.dir.join(plan), &original).unwrap();

    // A stale plan: the config changed after it was made.
    s.edit("examples/hello/unikernel.toml", |t| t + "\n# an edit\n");
    let err = s.eval_error("hello-unix");
    assert!(err.contains(plan) && err.contains("stale"), "{err}");
    assert!(err.contains(fix), "{err}");
    run(Command::new("git")
        .arg("-C")
        .arg(&s.dir)
        .args(["checkout", "examples/hello/unikernel.toml"]));

    // A missing plan: an example with a config and no plans.
    std::fs::remove_dir_all(s.dir.join("examples/hello/plans")).unwrap();
    s.add();
    let err = s.eval_error("hello-unix");
    assert!(err.contains(plan) && err.contains("no plan"), "{err}");
    assert!(err.contains("mirage-nix configure"), "{err}");
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn bare_metal_images_and_layers_share_the_targets_rustflags() {
    let s = scratch();
    let flags = r#"["-C", "link-arg=-T{runtime}/link.ld", "-C", "relocation-model=static"]"#;
    if !s.dir.join("runtime/xen/Cargo.toml").exists() {
        // The Xen runtime has not landed: a stand-in crate, and flags in its plans.
        s.edit("runtime/xen/Cargo.toml", |_| {
            "[package]\nname = \"mirage-xen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nmirage-runtime = { path = \"../core\" }\n".into()
        });
        s.edit("runtime/xen/src/lib.rs", |_| "#![no_std]\n".into());
        s.edit("runtime/xen/link.ld", |_| "ENTRY(_start)\n".into());
        s.edit("Cargo.toml", |t| {
            t.replacen(
                "\"runtime/unix\",",
                "\"runtime/unix\",\n    \"runtime/xen\",",
                1,
            )
        });
        run(Command::new("cargo").current_dir(&s.dir).args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
        ]));
        for entry in std::fs::read_dir(s.dir.join("examples")).unwrap() {
            let plan = entry.unwrap().path().join("plans/xen.json");
            if plan.exists() {
                let mut v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
                v["image"]["rustflags"] = serde_json::from_str(flags).unwrap();
                std::fs::write(&plan, serde_json::to_string_pretty(&v).unwrap()).unwrap();
            }
        }
    }
    s.add();
    // The image derivation exists now that its runtime crate does.
    let env_of = |attr: &str| -> serde_json::Value {
        let out = run(&mut s.nix(&["show-derivation", &s.attr(attr)]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_object().unwrap().values().next().unwrap()["env"].clone()
    };
    let image = env_of("hello-xen");
    let layer = env_of("hello-xen.depsArtifacts");
    assert_eq!(image["extraRustflags"], layer["extraRustflags"]);
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.join("examples/hello/plans/xen.json")).unwrap(),
    )
    .unwrap();
    if let Some(flags) = plan["image"]["rustflags"].as_array() {
        let text = image["extraRustflags"].as_str().unwrap();
        assert_eq!(text.lines().count(), flags.len(), "{text}");
        assert!(!text.contains("{runtime}"), "{text}");
    }
    // The layer compiles every crate of the target's plans with those flags.
    s.build(&["hello-xen.depsArtifacts"]);
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn mirage_nix_build_and_explain() {
    let s = scratch();
    let out = s.mirage_nix(&["build", "examples/hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        image.starts_with("/nix/store") && image.ends_with("bin/hello"),
        "{image:?}"
    );
    assert!(image.is_file());
    assert!(stderr.contains("run it with"), "{stderr}");
    assert!(s
        .dir
        .join("examples/hello/.mirage-nix/unix/result")
        .exists());

    // A build of an uncommitted key value is refused with the command that fixes it.
    let out = s.mirage_nix(&["build", "--hello=Hi", "examples/hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("mirage-nix configure -t unix --hello=Hi"),
        "{stderr}"
    );

    s.edit("examples/hello/src/lib.rs", |t| t + "\n// an edit\n");
    let out = s.mirage_nix(&["explain", "HEAD", ".", "--attr", "hello-unix"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("source examples-hello-src changed"), "{text}");
    assert!(text.contains("differs: src/lib.rs"), "{text}");
    assert!(!text.contains("mirage-unix-deps"), "{text}");
}

/// `--kv_ro=fat` committed: `nix build .#kv_ro-unix` gives the image and, beside it, the FAT
/// disk the build made of `t`; the image reads every file from it, from any directory; and
/// `mirage-nix build` says where the disk is.
#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn an_image_over_a_fat_store_comes_with_its_disk() {
    let s = scratch();
    let out = s.mirage_nix(&["configure", "-t", "unix", "--kv_ro=fat", "examples/kv_ro"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.add();
    let out = s.mirage_nix(&["build", "examples/kv_ro"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let disk = image.with_file_name("t.fat");
    assert!(disk.is_file(), "{disk:?} beside {image:?}");
    assert!(
        stderr.contains(&format!("it reads {}", disk.display())),
        "{stderr}"
    );
    let run = run(Command::new(&image).current_dir(std::env::temp_dir()));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("INF [kv_ro] secret (7 bytes, sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f):"), "{text}");
    assert!(
        text.contains("INF [kv_ro] subdir/hello.txt (40 bytes"),
        "{text}"
    );
    // The disk is the one `mirage-nix disks` makes: the same bytes on every machine.
    let local = s.dir.join("disks");
    let out = s.mirage_nix(&[
        "disks",
        "examples/kv_ro/plans/unix.json",
        "-o",
        local.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(local.join("t.fat")).unwrap(),
        std::fs::read(&disk).unwrap()
    );
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn a_downstream_flake_builds_its_own_unikernel_from_the_template() {
    // Two roots side by side, as a user has them: a mirage-nix checkout and the unikernel.
    let s = scratch();
    let app = s.dir.parent().unwrap().join("myapp");
    std::fs::create_dir(&app).unwrap();
    let template = format!("path:{}", s.dir.display());
    run(s.nix(&["flake", "init", "-t", &template]).current_dir(&app));
    let flake = app.join("flake.nix");
    let text = std::fs::read_to_string(&flake).unwrap();
    assert!(text.contains("github:mirage-nix/mirage-nix"), "{text}");
    std::fs::write(
        &flake,
        text.replace("github:mirage-nix/mirage-nix", &template),
    )
    .unwrap();
    run(Command::new("git")
        .arg("-C")
        .arg(&app)
        .args(["init", "--quiet"]));
    run(Command::new("git").arg("-C").arg(&app).args(["add", "-A"]));

    // The template's committed plans are current.
    let check = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args(["configure", "--check"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // `mirage-nix build` uses the unikernel's own flake, whose lib call lays out both roots.
    let out = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .current_dir(&app)
        .env("MIRAGE_NIX_ROOT", &s.dir)
        .args(["build", "."])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(image.ends_with("bin/myapp"), "{image:?}");
    let help = Command::new(&image).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(63), "{help:?}");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--hello")
            || String::from_utf8_lossy(&help.stderr).contains("--hello")
    );

    // An edit to the downstream's code rebuilds its image only.
    std::fs::write(
        app.join("src/lib.rs"),
        std::fs::read_to_string(app.join("src/lib.rs")).unwrap()
            + &format!("// an edit {}\n", nonce()),
    )
    .unwrap();
    let out = run(s
        .nix(&["build", "--no-link", "--dry-run", ".#myapp-unix"])
        .current_dir(&app));
    let text = String::from_utf8_lossy(&out.stderr);
    let drvs: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(".drv"))
        .collect();
    assert_eq!(drvs.len(), 1, "{text}");
    assert!(drvs[0].ends_with("-myapp-unix.drv"), "{text}");
}

/// Where `text` names a path of the host (`/usr/...`, `/bin/sh`, ...) rather than one in
/// the store or the build directory: a `/` that starts a path (not inside a store path's
/// name, a URL or a relative path) followed by a top-level directory of a host system.
fn host_paths(text: &str) -> Vec<String> {
    const HOST_DIRS: &[&str] = &[
        "usr", "bin", "sbin", "lib", "lib64", "etc", "opt", "home", "root", "tmp", "var",
    ];
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (i, _) in text.match_indices('/') {
        let starts_path =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"./-_:".contains(&bytes[i - 1]));
        if !starts_path {
            continue;
        }
        let rest = &text[i + 1..];
        let dir: String = rest.chars().take_while(|c| *c != '/').collect();
        let dir = dir
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        if HOST_DIRS.contains(&dir) {
            found.push(text[i..].chars().take(60).collect());
        }
    }
    found
}

#[test]
fn host_paths_are_found_where_they_start_a_path_only() {
    assert_eq!(
        host_paths("x=/usr/bin/qemu -kernel \"$exe\""),
        ["/usr/bin/qemu -kernel \"$exe\""]
    );
    assert_eq!(host_paths("exec /bin/sh"), ["/bin/sh"]);
    assert!(host_paths("/nix/store/abc-rustc/bin:/nix/store/def-tar/bin").is_empty());
    assert!(host_paths("--remap-path-prefix=$top=/build https://x.org/lib/ a/usr/b").is_empty());
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn the_nixpkgs_source_evaluates_every_output_free_of_host_paths() {
    // This machine has no nixpkgs: a stand-in with the attributes the nixpkgs toolchain
    // uses (nix/tests/stub-nixpkgs) replaces the input, so the build graph above it, ours,
    // is what is checked.
    let s = scratch();
    let stub = format!("path:{}", s.dir.join("nix/tests/stub-nixpkgs").display());
    let eval = |attr: &str, apply: &str| -> Vec<String> {
        let out = run(&mut s.nix(&[
            "eval",
            "--json",
            &s.attr(attr),
            "--override-input",
            "nixpkgs",
            &stub,
            "--apply",
            apply,
        ]));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let host_packages = eval("packages.x86_64-linux", "builtins.attrNames");
    let nixpkgs_packages: Vec<String> =
        eval("legacyPackages.x86_64-linux.nixpkgs", "builtins.attrNames")
            .into_iter()
            .filter(|n| n != "checks" && n != "perImage")
            .collect();
    assert_eq!(
        nixpkgs_packages, host_packages,
        "the two sources differ in packages"
    );
    let drvs = eval(
        "legacyPackages.x86_64-linux.nixpkgs",
        "ps: let names = builtins.filter (n: n != \"checks\" && n != \"perImage\") (builtins.attrNames ps); \
         drvs = set: map (n: set.${n}.drvPath) (builtins.attrNames set); in \
         map (n: ps.${n}.drvPath) names ++ drvs ps.checks ++ drvs ps.perImage",
    );
    assert!(
        drvs.iter().any(|d| d.ends_with("-hello-xen-boot.drv")),
        "{drvs:?}"
    );

    // Every derivation they need, and every file they take from the source tree.
    let mut args = vec!["show-derivation", "--recursive"];
    args.extend(drvs.iter().map(String::as_str));
    let out = run(&mut s.nix(&args));
    let closure: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert!(closure.len() > drvs.len(), "{} derivations", closure.len());
    let mut offences = Vec::new();
    for (drv, d) in &closure {
        let mut texts: Vec<String> = vec![d["builder"].as_str().unwrap_or_default().into()];
        texts.extend(
            d["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from)),
        );
        texts.extend(
            d["env"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str().map(String::from)),
        );
        for src in d["inputSrcs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
        {
            if let Ok(text) = std::fs::read_to_string(src) {
                texts.push(text);
            }
        }
        for text in &texts {
            offences.extend(host_paths(text).into_iter().map(|p| format!("{drv}: {p}")));
        }
    }
    assert!(
        offences.is_empty(),
        "host paths with the nixpkgs source:\n{}",
        offences.join("\n")
    );
}
