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

mod scratch;
use scratch::{root, run, scratch, Scratch};

const UNIX_IMAGES: &[&str] = &["hello-unix", "console-unix", "kv_ro-unix", "block-unix"];

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

    /// `nix eval --raw <attr>` of the scratch flake.
    fn eval_raw(&self, attr: &str) -> String {
        let out = run(&mut self.nix(&["eval", "--raw", &self.attr(attr)]));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Commits everything (a flake input's `git+file` fetch sees commits only).
    fn commit(&self, message: &str) {
        self.add();
        run(Command::new("git").arg("-C").arg(&self.dir).args([
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            message,
        ]));
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

/// `nix develop` on this offline machine fetches nothing: its interactive bash comes from
/// the flake's local `nixpkgs` input (nix/develop-shell), not the pinned nixpkgs, both for a
/// command (`-c`) and for the interactive shell, which reads its commands from stdin here.
#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn nix_develop_fetches_nothing() {
    let s = scratch();
    let flake = s.dir.display().to_string();
    let out = run(&mut s.nix(&[
        "develop",
        &flake,
        "-c",
        "sh",
        "-c",
        "command -v mirage-nix; echo \"$MIRAGE_NIX_TOOLCHAIN\" | head -n1",
    ]));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("-mirage-nix/bin/mirage-nix"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("rustc"), "{stdout}{stderr}");
    for bad in ["download", "error", "warning", "github"] {
        assert!(
            !stderr.to_lowercase().contains(bad),
            "nix develop said {bad}:\n{stderr}"
        );
    }
    let mut shell = s.nix(&["develop", &flake]);
    shell
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = shell.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"echo \"in the shell: $((6 * 7))\"; mirage-nix targets | head -n1\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("in the shell: 42"), "{stdout}{stderr}");
    for bad in ["download", "error", "warning", "github"] {
        assert!(
            !stderr.to_lowercase().contains(bad),
            "nix develop said {bad}:\n{stderr}"
        );
    }
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
    let names = image_names(&s);
    let images: Vec<&str> = names.iter().map(String::as_str).collect();
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
/// `mirage-nix build` says where the disk is. The same for xen over tar, with the disk in its
/// xl configs.
#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn images_over_fat_or_tar_stores_come_with_their_disks() {
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

    // The xen image over tar (issue 9: kv_ro with crunch and tar): the image, its tar disk
    // and its xl configs beside it, the disk line naming that tar read-only.
    let out = s.mirage_nix(&["configure", "-t", "xen", "--kv_ro=tar", "examples/kv_ro"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.add();
    let out = s.mirage_nix(&["build", "-t", "xen", "examples/kv_ro"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(image.file_name().unwrap(), "kv_ro.xen", "{stderr}");
    let tar = std::fs::read(image.with_file_name("t.tar")).unwrap();
    assert_eq!(
        &tar[257..262],
        b"ustar",
        "t.tar beside {image:?} is a tar archive"
    );
    for xl in ["kv_ro.xl", "kv_ro.pv.xl"] {
        let config = std::fs::read_to_string(image.with_file_name(xl)).unwrap();
        assert!(
            config.contains("'format=raw, vdev=xvda, access=ro, target=t.tar'"),
            "{xl}: {config}"
        );
    }
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
            "nixpkgs-pin",
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

    // A pin whose rustc is older than the workspace's rust-version (nixos-24.11's 1.83)
    // fails evaluation, saying what the workspace needs and how to move the pin.
    std::fs::write(
        s.dir.join("nix/tests/stub-nixpkgs/rustc-version"),
        "1.83.0\n",
    )
    .unwrap();
    let out = s
        .nix(&[
            "eval",
            "--raw",
            &s.attr("legacyPackages.x86_64-linux.nixpkgs.hello-unix.drvPath"),
            "--override-input",
            "nixpkgs-pin",
            &stub,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rustc 1.83 was accepted");
    assert!(
        err.contains("rustc 1.83.0") && err.contains("rust-version 1.88"),
        "{err}"
    );
    assert!(
        err.contains("nix flake lock") && err.contains("nix/nixpkgs-pin.json"),
        "{err}"
    );
}

/// `nix/nixpkgs-pin.json`: the flake's pinned nixpkgs (input `nixpkgs-pin`) and the rustc it
/// ships.
fn pin() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("nix/nixpkgs-pin.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A Rust version as numbers ("1.88" is 1.88.0), for comparing.
fn version(v: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = v
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("not a version: {v}")))
        .collect();
    parts.resize(3, 0);
    parts
}

/// Every crate the lock file of the workspace at `dir` holds, for every platform, with its
/// `rust-version` (`cargo metadata` reads it from each crate's manifest): "name version".
fn locked_rust_versions(dir: &Path) -> Vec<(String, Option<String>)> {
    let out = run(Command::new("cargo").current_dir(dir).args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--quiet",
    ]));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&serde_json::Value> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !members.contains(&&p["id"]))
        .map(|p| {
            (
                format!(
                    "{} {}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap()
                ),
                p["rust_version"].as_str().map(String::from),
            )
        })
        .collect()
}

/// The crates of `locked` that need a newer rustc than `rustc`, with what they need.
fn too_new_for(rustc: &str, locked: &[(String, Option<String>)]) -> Vec<String> {
    locked
        .iter()
        .filter_map(|(krate, needs)| {
            let needs = needs.as_deref()?;
            (version(needs) > version(rustc)).then(|| format!("{krate} (rust-version {needs})"))
        })
        .collect()
}

/// The lock files the pinned rustc must build: the workspace's and the flake's own tools'.
fn every_lock() -> Vec<(String, Option<String>)> {
    let mut all = locked_rust_versions(&root());
    all.extend(locked_rust_versions(&root().join("nix/tools")));
    all
}

#[test]
fn the_pinned_nixpkgs_rustc_builds_every_locked_crate() {
    let pin = pin();
    let rustc = pin["rustc"].as_str().unwrap();
    let locked = every_lock();
    assert!(locked.len() > 100, "{} crates", locked.len());
    let too_new = too_new_for(rustc, &locked);
    assert!(
        too_new.is_empty(),
        "the pinned nixpkgs ({} {}) has rustc {rustc}, too old for:\n  {}\n\
         Move the pin to a nixpkgs with a newer rustc (docs/nix.md, \"The nixpkgs pin\"), or \
         resolve the lock to rustc {rustc}.",
        pin["ref"],
        pin["rev"],
        too_new.join("\n  ")
    );

    // The workspace's rust-version is true: no locked crate needs more (clippy's
    // incompatible_msrv checks the std APIs the code uses against it), and the pin has it.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let claimed = manifest["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap();
    let highest = locked
        .iter()
        .filter_map(|(_, v)| v.as_deref())
        .max_by_key(|v| version(v))
        .unwrap();
    assert!(
        version(claimed) >= version(highest),
        "Cargo.toml claims rust-version {claimed}, but locked crates need {highest}: {:?}",
        too_new_for(claimed, &locked)
    );
    assert!(
        version(rustc) >= version(claimed),
        "pin rustc {rustc} < {claimed}"
    );
}

#[test]
fn the_pin_check_fails_for_a_rustc_too_old_for_the_lock() {
    // nixos-24.11's rustc, the flake's earlier pin: edition-2024 crates and sha2 0.11 need more.
    let too_new = too_new_for("1.83.0", &every_lock());
    assert!(
        too_new.iter().any(|c| c.starts_with("sha2 0.11")),
        "{too_new:?}"
    );
}

#[test]
fn the_pin_record_matches_flake_lock_and_the_stub_nixpkgs() {
    let pin = pin();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("flake.lock")).unwrap()).unwrap();
    let node = &lock["nodes"]["nixpkgs-pin"];
    assert_eq!(node["locked"]["rev"], pin["rev"]);
    assert_eq!(node["locked"]["narHash"], pin["narHash"]);
    assert_eq!(node["locked"]["lastModified"], pin["lastModified"]);
    assert_eq!(node["original"]["ref"], pin["ref"]);
    let flake = std::fs::read_to_string(root().join("flake.nix")).unwrap();
    assert!(
        flake.contains(&format!(
            "github:NixOS/nixpkgs/{}",
            pin["ref"].as_str().unwrap()
        )),
        "flake.nix does not follow {}",
        pin["ref"]
    );
    let stub =
        std::fs::read_to_string(root().join("nix/tests/stub-nixpkgs/rustc-version")).unwrap();
    assert_eq!(stub.trim(), pin["rustc"].as_str().unwrap());
}

/// The images the reproducibility, cache and build-farm tests follow: one per kind of
/// target (a process, a Xen guest, a Solo5 image).
const FOLLOWED: &[&str] = &["hello-unix", "hello-xen", "conduit_server-spt"];

/// The NAR hash of a store path (its contents, as Nix compares them), in `store` if given.
fn nar_hash(s: &Scratch, path: &str, store: Option<&Path>) -> String {
    let mut args = vec!["path-info", "--json", path];
    let store_arg;
    if let Some(store) = store {
        store_arg = store.display().to_string();
        args.extend(["--store", &store_arg]);
    }
    let out = run(&mut s.nix(&args));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info[0]["narHash"].as_str().unwrap().to_string()
}

/// How two files differ, for a failure message: their sizes and the bytes that differ.
fn compare_files(a: &Path, b: &Path) -> String {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let differing = x.iter().zip(&y).filter(|(p, q)| p != q).count();
    format!(
        "{} ({} bytes) and {} ({} bytes): {differing} bytes differ (diffoscope shows where)",
        a.display(),
        x.len(),
        b.display(),
        y.len()
    )
}

/// A command with the project's Nix settings (unless the environment has them already).
fn configured(mut cmd: Command) -> Command {
    if let Some(config) = nix_config(&root()) {
        cmd.env("NIX_CONFIG", config);
    }
    cmd
}

/// A new signing key named `name` in `file`; its public half.
fn new_key(s: &Scratch, name: &str, file: &Path) -> String {
    let secret = run(&mut s.nix(&["key", "generate-secret", "--key-name", name])).stdout;
    std::fs::write(file, secret).unwrap();
    let public = run(s
        .nix(&["key", "convert-secret-to-public"])
        .stdin(std::fs::File::open(file).unwrap()))
    .stdout;
    String::from_utf8(public).unwrap().trim().to_string()
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn every_derivation_is_the_same_in_any_store_and_from_any_checkout() {
    let s = scratch();
    // Another checkout of the same commit, deeper and with a longer path.
    let elsewhere_tmp = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere_tmp
        .path()
        .join("a-much-longer-path-to/another-checkout/of-mirage-nix");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    run(Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&s.dir)
        .arg(&elsewhere));
    // A chroot store: builtins.path filters see its physical paths there.
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().display().to_string();

    let apply = "ps: let drvs = set: builtins.mapAttrs (_: d: d.drvPath) set; in \
                 drvs (builtins.removeAttrs ps [ \"checks\" \"perImage\" ]) \
                 // { checks = drvs ps.checks; perImage = drvs ps.perImage; }";
    let eval = |dir: &Path, extra: &[&str]| -> serde_json::Value {
        let attr = format!("{}#legacyPackages.x86_64-linux.host", dir.display());
        let mut args = vec![
            "eval",
            "--json",
            "--option",
            "eval-cache",
            "false",
            &attr,
            "--apply",
            apply,
        ];
        args.extend(extra);
        let out = run(&mut s.nix(&args));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let default = eval(&s.dir, &[]);
    for name in FOLLOWED {
        assert!(default[name].is_string(), "{name}: {default}");
    }
    assert!(
        default["checks"]["hello-unix-boot"].is_string(),
        "{default}"
    );
    assert!(default["perImage"]["hello-unix"].is_string(), "{default}");

    let chroot = eval(&s.dir, &["--store", &store_arg]);
    assert_eq!(
        default, chroot,
        "derivations differ between the default store and --store {store_arg}"
    );
    let moved = eval(&elsewhere, &[]);
    assert_eq!(
        default,
        moved,
        "derivations differ between checkouts at {} and {}",
        s.dir.display(),
        elsewhere.display()
    );
}

/// The builder of the varied builds: runs an image's own builder (`$1`, its arguments
/// after it) with a umask of 077 and, through faketime, a clock ten years ahead. rustc
/// itself runs at the real time (a `rustc` first on PATH drops faketime's preload: rustc
/// deadlocks under libfaketime, its allocator and libfaketime's start-up waiting for each
/// other); bash, cp (the sources' mtimes), cargo (what is fresh), build scripts and the
/// linker see the fake clock.
const VARIED_BUILDER: &str = r#"umask 077
mkdir -p "$NIX_BUILD_TOP/real-time"
cat >"$NIX_BUILD_TOP/real-time/rustc" <<'EOF'
#!/bin/sh
unset LD_PRELOAD FAKETIME
PATH=${PATH#*:}
exec rustc "$@"
EOF
chmod +x "$NIX_BUILD_TOP/real-time/rustc"
export extraPath="$NIX_BUILD_TOP/real-time${extraPath:+:$extraPath}"
/usr/bin/faketime -f +3650d /bin/date -u "+varied build: year %Y, umask $(umask)"
exec /usr/bin/faketime -f +3650d "$@"
"#;

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn images_are_bit_for_bit_the_same_under_build_variations() {
    let s = scratch();
    s.build(FOLLOWED);
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("varied-builder.sh");
    std::fs::write(&script, VARIED_BUILDER).unwrap();
    let build_root = tmp.path().join("another/much-longer/build-directory");
    std::fs::create_dir_all(&build_root).unwrap();

    // Each variation builds the image's derivation with one attribute added, a per-run
    // `variation` (so no store, even one kept between runs, holds it yet, and the image's
    // own derivation and its build log stay as they are), plus what the variation
    // changes; the images are then compared by content.
    let build_variant = |name: &str, attrs: &str, sandbox: &str| -> (String, String) {
        let expr = format!(
            "let d = (builtins.getFlake \"git+file://{dir}\").packages.x86_64-linux.{name}; \
             a = d.drvAttrs; in derivation (a // {{ variation = \"{nonce}\"; {attrs} }})",
            dir = s.dir.display(),
            nonce = nonce()
        );
        let out = run(s
            .nix(&["build", "--impure", "--no-link", "--json", "--expr", &expr])
            .args(["--option", "sandbox", sandbox])
            .env("TMPDIR", &build_root)
            .env("TZ", "Pacific/Kiritimati")
            .env("LANG", "fr_FR.UTF-8")
            .env("LC_ALL", "C.UTF-8"));
        let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let log = run(&mut s.nix(&["log", built[0]["drvPath"].as_str().unwrap()]));
        (
            built[0]["outputs"]["out"].as_str().unwrap().to_string(),
            String::from_utf8_lossy(&log.stdout).into_owned(),
        )
    };
    let this_year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;

    for name in FOLLOWED {
        let out = s.eval_raw(&format!("{name}.outPath"));
        let image = s.eval_raw(&format!("{name}.image"));
        let same = |varied: &str, what: &str| {
            assert_ne!(varied, out);
            if nar_hash(&s, varied, None) != nar_hash(&s, &out, None) {
                panic!(
                    "{name} differs {what}: {}",
                    compare_files(
                        &Path::new(&out).join(&image),
                        &Path::new(varied).join(&image)
                    )
                );
            }
        };

        // 1. Outside the sandbox, in another build directory (under a longer $TMPDIR), with
        // the caller's timezone and locale changed.
        let (varied, log) = build_variant(name, "", "false");
        let place = build_root.join(format!("nix-build-{name}.drv-"));
        assert!(
            log.contains(&place.display().to_string()),
            "{name} was not built in {}:\n{log}",
            build_root.display()
        );
        same(
            &varied,
            &format!("when built outside the sandbox in {}", build_root.display()),
        );

        // 2. In the sandbox, with the builder itself varied: a clock ten years ahead
        // (faketime), a umask of 077, another timezone and locale.
        let (varied, log) = build_variant(
            name,
            &format!(
                "builder = \"/bin/sh\"; \
                 args = [ (builtins.path {{ path = {}; name = \"varied-builder.sh\"; }}) a.builder ] ++ a.args; \
                 TZ = \"Pacific/Kiritimati\"; LANG = \"fr_FR.UTF-8\"; LC_ALL = \"C.UTF-8\";",
                script.display()
            ),
            "true",
        );
        assert!(
            log.contains("Compiling"),
            "the varied build of {name} compiled nothing"
        );
        let seen = log
            .lines()
            .find_map(|l| l.trim().strip_prefix("varied build: year "))
            .unwrap_or_else(|| panic!("the varied build of {name} did not run:\n{log}"));
        assert!(
            seen.starts_with(&(this_year + 10).to_string()) && seen.ends_with("umask 0077"),
            "{seen}"
        );
        same(&varied, "under a fake clock, umask, timezone and locale");
    }
}

/// A Nix store of its own in a temporary directory (`--store DIR`, a chroot store): a
/// developer's machine that has never built anything.
struct FreshStore {
    dir: tempfile::TempDir,
}

impl FreshStore {
    fn new() -> Self {
        FreshStore {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn arg(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// `nix build` of `names` into this store with nothing built here (`--max-jobs 0`),
    /// substituting from `cache` only, trusting `key` only, signatures required.
    fn substitute(&self, s: &Scratch, names: &[&str], cache: &str, key: &str) -> Output {
        let store = self.arg();
        let mut args = vec![
            "build",
            "--no-link",
            "--json",
            "--store",
            &store,
            "--max-jobs",
            "0",
        ];
        args.extend([
            "--option",
            "substituters",
            cache,
            "--option",
            "trusted-public-keys",
            key,
            "--option",
            "require-sigs",
            "true",
        ]);
        let attrs: Vec<String> = names.iter().map(|n| s.attr(n)).collect();
        args.extend(attrs.iter().map(String::as_str));
        s.nix(&args).output().unwrap()
    }

    fn has(&self, s: &Scratch, path: &str) -> bool {
        s.nix(&["path-info", "--store", &self.arg(), path])
            .output()
            .unwrap()
            .status
            .success()
    }
}

/// The names of the flake's image packages (every package but the generator and default).
fn image_names(s: &Scratch) -> Vec<String> {
    let out = run(&mut s.nix(&[
        "eval",
        "--json",
        &s.attr("packages.x86_64-linux"),
        "--apply",
        "builtins.attrNames",
    ]));
    let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    names
        .into_iter()
        .filter(|n| !matches!(n.as_str(), "default" | "mirage-nix"))
        .collect()
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn a_fresh_store_gets_every_image_from_a_signed_cache_and_refuses_bad_signatures() {
    let s = scratch();
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let cache = format!("file://{}", cache_dir.display());
    let key_file = work.path().join("cache.sec");

    // CI's side: build hydraJobs, sign, copy (the script the docs give).
    let out = run(
        configured(Command::new(root().join("scripts/publish-cache")))
            .current_dir(&s.dir)
            .args(["--flake", &s.dir.display().to_string(), "--to", &cache])
            .arg("--key-file")
            .arg(&key_file)
            .args([
                "--new-key",
                &format!("mirage-nix-test-{}", nonce()),
                "--json",
            ]),
    );
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = published["publicKey"].as_str().unwrap().to_string();
    assert!(published["cache"] == cache.as_str(), "{published}");

    // A developer's side: a store that never built anything gets every image from the
    // cache alone, builds nothing, and holds the very bytes CI built.
    let images = image_names(&s);
    let names: Vec<&str> = images.iter().map(String::as_str).collect();
    assert!(names.len() >= 20, "{names:?}");
    let fresh = FreshStore::new();
    let out = fresh.substitute(&s, &names, &cache, &key);
    assert!(
        out.status.success(),
        "substitution failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built.as_array().unwrap().len(), names.len());
    for b in built.as_array().unwrap() {
        let path = b["outputs"]["out"].as_str().unwrap();
        assert_eq!(
            nar_hash(&s, path, Some(fresh.dir.path())),
            nar_hash(&s, path, None),
            "{path} differs from CI's"
        );
    }

    // The same cache with a key the developer does not trust (a wrongly signed cache), and
    // a copy of it without signatures: both refused; nothing lands in the store.
    let untrusted = new_key(&s, "someone-else", &work.path().join("other.sec"));
    let unsigned_dir = work.path().join("unsigned");
    run(Command::new("cp")
        .arg("-r")
        .arg(&cache_dir)
        .arg(&unsigned_dir));
    let mut stripped = 0;
    for entry in std::fs::read_dir(&unsigned_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "narinfo") {
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with("Sig:"))
                .map(|l| format!("{l}\n"))
                .collect();
            stripped += usize::from(kept != text);
            std::fs::write(&path, kept).unwrap();
        }
    }
    assert!(
        stripped >= names.len(),
        "{stripped} narinfos had a signature"
    );
    let unsigned = format!("file://{}", unsigned_dir.display());
    let hello = s.eval_raw("hello-xen.outPath");
    for (what, cache, key) in [
        ("wrongly signed", cache.as_str(), untrusted.as_str()),
        ("unsigned", unsigned.as_str(), key.as_str()),
    ] {
        let fresh = FreshStore::new();
        let out = fresh.substitute(&s, &["hello-xen"], cache, key);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a {what} cache was used:\n{stderr}");
        assert!(!fresh.has(&s, &hello), "{what}: {hello} is in the store");
    }
}

/// A build machine on this one: an ssh server on a free loopback port with a throwaway host
/// key, accepting one throwaway client key whose forced command is `nix-daemon --stdio` on
/// a store of its own (a chroot store in a temporary directory), so what is built there is
/// built in another store, as on a CI farm's or Hydra's build machines. Stopped on drop.
struct Builder {
    dir: tempfile::TempDir,
    sshd: std::process::Child,
    port: u16,
}

impl Builder {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "mirage-nix-test",
                    "-f",
                ])
                .arg(d.join(key)));
        }
        let nix = find_nix().expect("nix on PATH");
        let daemon = nix.with_file_name("nix-daemon");
        let config = format!(
            "store = {}\n{}",
            d.join("store").display(),
            nix_config(&root()).unwrap_or_else(|| std::env::var("NIX_CONFIG").unwrap_or_default())
        );
        let script = d.join("nix-daemon-stdio");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexport NIX_CONFIG='{config}'\nexec {} --stdio\n",
                daemon.display()
            ),
        )
        .unwrap();
        run(Command::new("chmod").arg("+x").arg(&script));
        let client = std::fs::read_to_string(d.join("client_key.pub")).unwrap();
        std::fs::write(
            d.join("authorized_keys"),
            format!("command=\"{}\",restrict {client}", script.display()),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\n\
                 AuthorizedKeysFile {0}/authorized_keys\nPidFile {0}/sshd.pid\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nPermitRootLogin prohibit-password\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("/usr/sbin/sshd (Debian's openssh-server; scripts/setup installs it)");
        let builder = Builder { dir, sshd, port };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        builder
    }

    /// The `builders` line naming this machine.
    fn spec(&self) -> String {
        format!(
            "ssh-ng://root@127.0.0.1 x86_64-linux {} 2",
            self.dir.path().join("client_key").display()
        )
    }

    /// What Nix's ssh needs to reach this machine (its port; the throwaway host key).
    fn ssh_opts(&self) -> String {
        format!(
            "-p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port
        )
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

#[test]
#[ignore = "needs Nix (scripts/test runs it)"]
fn a_remote_builder_over_ssh_ng_builds_the_same_images() {
    let s = scratch();
    s.build(FOLLOWED);
    let local: Vec<String> = FOLLOWED
        .iter()
        .map(|n| nar_hash(&s, &s.eval_raw(&format!("{n}.outPath")), None))
        .collect();

    // The images become new derivations (a per-run salt in their environment), so this
    // store cannot already hold them: building them needs a build machine.
    s.edit("nix/lib/mkCargoDerivation.nix", |t| {
        let salted = t.replace(
            "MIRAGE_NIX_TOOLCHAIN = toolchain.identity;",
            &format!(
                "MIRAGE_NIX_TOOLCHAIN = toolchain.identity + (if builtins.substring 0 7 name == \"mirage-\" then \"\" else \"\\nremote build {}\");",
                nonce()
            ),
        );
        assert_ne!(salted, t, "the salt no longer applies to mkCargoDerivation.nix");
        salted
    });
    s.commit("salt the images");

    let builder = Builder::start();
    let spec = builder.spec();
    let mut args = vec!["build", "--no-link", "--json", "--max-jobs", "0"];
    args.extend(["--builders", &spec]);
    args.extend(["--option", "builders-use-substitutes", "false"]);
    let attrs: Vec<String> = FOLLOWED.iter().map(|n| s.attr(n)).collect();
    args.extend(attrs.iter().map(String::as_str));
    let out = s
        .nix(&args)
        .env("NIX_SSHOPTS", builder.ssh_opts())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the remote build failed:\n{}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(builder.dir.path().join("sshd.log")).unwrap_or_default()
    );
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for b in built.as_array().unwrap() {
        let drv = b["drvPath"].as_str().unwrap();
        let i = FOLLOWED
            .iter()
            .position(|n| drv.ends_with(&format!("-{n}.drv")))
            .unwrap_or_else(|| panic!("{drv} is none of {FOLLOWED:?}"));
        let path = b["outputs"]["out"].as_str().unwrap();
        // Built there (the builder's store has it), copied back here, and byte for byte
        // the image this machine built from the unsalted derivation.
        assert!(
            s.nix(&[
                "path-info",
                "--store",
                &builder.store().display().to_string(),
                path
            ])
            .status()
            .unwrap()
            .success(),
            "{path} is not in the builder's store"
        );
        assert_eq!(
            nar_hash(&s, path, None),
            local[i],
            "{} built remotely differs",
            FOLLOWED[i]
        );
    }
}
