//! `mirage-nix run`, end to end with the real binary: it builds an image (with cargo, so that
//! these tests need no Nix; `generator/tests/nix.rs` runs it through Nix) and boots it where
//! it runs: a unix process, a xen guest under QEMU (PVH, and dom0 on Xen), an spt image under
//! the tests' own minimal spt loader given as the tender (`SOLO5_SPT`), and its exit status is
//! the unikernel's. Runs that build in an example's folder (`dist/`, `.mirage-nix/`) take its
//! lock, so that two tests never build the same folder at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The lock of a unikernel's folder.
fn lock(dir: &Path) -> MutexGuard<'static, ()> {
    static LOCKS: OnceLock<Mutex<std::collections::HashMap<PathBuf, &'static Mutex<()>>>> =
        OnceLock::new();
    let m = {
        let mut all = LOCKS.get_or_init(Default::default).lock().unwrap();
        *all.entry(dir.to_path_buf())
            .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `mirage-nix run ARGS` (with `--cargo -q` added), in `cwd`, with `env`.
fn run_in(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = args
        .iter()
        .map(|a| cwd.join(a))
        .find(|p| p.join("unikernel.toml").is_file())
        .unwrap_or_else(|| cwd.to_path_buf());
    let _folder = lock(&dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirage-nix"));
    cmd.current_dir(cwd)
        .arg("run")
        .args(["--cargo", "-q"])
        .args(args)
        .env("MIRAGE_NIX_ROOT", root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    eprintln!(
        "mirage-nix run {}: {:?}\n{}",
        args.join(" "),
        out.status.code(),
        text(&out.stderr)
    );
    out
}

fn run(args: &[&str]) -> Output {
    run_in(&root(), &[], args)
}

/// A unikernel that ends as its runtime key `--fail` says: 0, or 1 with an error; it needs
/// no device, so it boots anywhere. Made once, outside the tree.
fn status_unikernel() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mirage-nix-run-status-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("unikernel.toml"),
            "[unikernel]\nname = \"status\"\nsignature = \"job\"\nkeys = [\"fail\"]\n\n\
             [keys.fail]\ntype = \"bool\"\ndefault = false\nstage = \"runtime\"\n\
             doc = \"End with an error (exit status 1).\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"status\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("src/lib.rs"),
            "#![no_std]\n/// Fails when asked to.\npub async fn start(fail: bool) -> Result<(), &'static str> {\n    \
             if fail { Err(\"asked to fail\") } else { Ok(()) }\n}\n",
        )
        .unwrap();
        dir
    })
}

fn hello_lines(message: &str) -> String {
    format!("INF [hello] {message}\n").repeat(4)
}

fn qemu_here() -> bool {
    let ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: qemu-system-x86_64 is not installed (scripts/setup installs it)");
    }
    ok
}

#[test]
fn unix_hello_prints_the_four_lines() {
    let out = run(&["-t", "unix", "examples/hello", "--hello=Hi"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), hello_lines("Hi"));
    let err = text(&out.stderr);
    assert!(err.contains("booting hello: "), "{err}");
    assert!(
        err.contains(" examples/hello/dist/hello --hello=Hi"),
        "{err}"
    );
}

#[test]
fn unix_exit_statuses_are_the_unikernels() {
    let status = status_unikernel().to_str().unwrap();
    assert_eq!(run(&["-t", "unix", status]).status.code(), Some(0));
    let failed = run(&["-t", "unix", status, "--fail"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(text(&failed.stderr).contains("asked to fail"));
    // After `--`, the words go to the image as they are.
    let help = run(&["-t", "unix", "examples/hello", "--", "--help"]);
    assert_eq!(help.status.code(), Some(63));
    assert!(
        text(&help.stdout).contains("--hello=STRING"),
        "{}",
        text(&help.stdout)
    );
    let bad = run(&["-t", "unix", "examples/hello", "--", "--bogus"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(text(&bad.stderr).contains("unknown key `--bogus`"));
}

#[test]
fn xen_console_boots_under_qemu_and_prints_the_talks_output() {
    if !qemu_here() {
        return;
    }
    let out = run(&["-t", "xen", "examples/console"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "hello\nworld\n".repeat(4));
    assert!(
        text(&out.stderr).contains("-kernel "),
        "the QEMU command is shown"
    );
}

#[test]
fn xen_exit_statuses_are_the_unikernels_through_pvh_and_dom0() {
    if !qemu_here() {
        return;
    }
    let status = status_unikernel().to_str().unwrap();
    assert_eq!(run(&["-t", "xen", status]).status.code(), Some(0));
    let failed = run(&["-t", "xen", status, "--fail"]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stdout));
    assert!(text(&failed.stdout).contains("asked to fail"));
    let help = run(&["-t", "xen", "examples/hello", "--", "--help"]);
    assert_eq!(help.status.code(), Some(63));
    let bad = run(&["-t", "xen", "examples/hello", "--", "--bogus"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(text(&bad.stdout).contains("unknown key `--bogus`"));
    // As dom0 on Xen: Xen's log stays out of the console, a clean shutdown is 0 and a crash
    // (any failure: Xen tells no status) 1.
    let dom0 = run(&["-t", "xen", "--xen=dom0", "examples/hello", "--hello=Hej"]);
    assert_eq!(dom0.status.code(), Some(0));
    assert_eq!(text(&dom0.stdout), hello_lines("Hej"));
    let crashed = run(&["-t", "xen", "--xen=dom0", status, "--fail"]);
    assert_eq!(crashed.status.code(), Some(1));
    assert!(text(&crashed.stderr).contains("the domain crashed"));
}

/// The tests' minimal spt loader, as a command with `solo5-spt`'s command line.
fn mini_spt() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "-q",
                "-p",
                "mirage-test-support",
                "--bin",
                "mini-solo5-spt",
                "--message-format=json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|m| Some(PathBuf::from(m.get("executable")?.as_str()?)))
            .expect("cargo names the loader's executable")
    })
    .clone()
}

fn run_spt(args: &[&str]) -> Output {
    let tender = mini_spt();
    let mut all = vec!["-t", "spt"];
    all.extend(args);
    run_in(&root(), &[("SOLO5_SPT", tender.to_str().unwrap())], &all)
}

#[test]
fn spt_runs_hello_under_the_tender_given() {
    let out = run_spt(&["examples/hello", "--hello=Hi there"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), hello_lines("Hi there"));
    let err = text(&out.stderr);
    assert!(err.contains("mini-solo5-spt --mem=64 -- "), "{err}");
    let bad = run_spt(&["examples/hello", "--", "--bogus"]);
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn spt_runs_kv_ro_over_the_tar_disk_the_build_made() {
    let out = run_spt(&["--kv_ro=tar", "examples/kv_ro"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let console = text(&out.stdout);
    assert!(console.contains("INF [kv_ro] foobar"), "{console}");
    assert!(
        console.contains("Hello from a subdirectory of the store."),
        "{console}"
    );
    assert!(
        text(&out.stderr).contains("--block:t=")
            && text(&out.stderr).contains("/examples/kv_ro/dist/t.tar"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn spt_attaches_block_devices_from_a_file_or_empty_at_a_size() {
    let disk = std::env::temp_dir().join(format!("mirage-nix-run-disk-{}", std::process::id()));
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let given = format!("storage={}", disk.display());
    let first = run_spt(&["examples/block", "--disk", &given]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stdout));
    assert!(
        text(&first.stdout).contains("no previous run"),
        "{}",
        text(&first.stdout)
    );
    // The same file again: what the first run wrote is there.
    let second = run_spt(&["examples/block", "--disk", &given]);
    assert!(
        !text(&second.stdout).contains("no previous run"),
        "{}",
        text(&second.stdout)
    );
    std::fs::remove_file(&disk).unwrap();
    // An empty disk of a size: made for the run, gone after it.
    let empty = run_spt(&["examples/block", "--disk=storage=1M"]);
    assert_eq!(empty.status.code(), Some(0));
    assert!(
        text(&empty.stdout).contains("2048 sectors"),
        "{}",
        text(&empty.stdout)
    );
    assert!(text(&empty.stderr).contains("an empty disk of 1048576 bytes for this run"));
    let err = text(&empty.stderr);
    let made = err
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--block:storage="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no --block:storage in {err}"));
    assert!(made.starts_with(std::env::temp_dir()), "{}", made.display());
    assert!(!made.exists(), "{} stayed", made.display());
    // None at all: the error says how to give one, before anything is built.
    let none = run_spt(&["examples/block"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("--disk storage=FILE"),
        "{}",
        text(&none.stderr)
    );
}
