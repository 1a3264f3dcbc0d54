//! The talk's examples, each built for unix from its committed plan (render + cargo, as Nix
//! does) and run as a process: what they print, how they take their keys and how they exit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `example(name)` is the unix image of the example `name`, built from its committed plan.
fn example(name: &str) -> PathBuf {
    common::image(name, &[])
}

fn run(name: &str, args: &[&str]) -> (Output, Duration) {
    let image = example(name);
    let start = Instant::now();
    let out = Command::new(image).args(args).output().unwrap();
    (out, start.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs an image in `dir` and returns its standard output, failing on a non-zero exit.
fn output_in(image: &Path, dir: &Path) -> String {
    let out = Command::new(image).current_dir(dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn kv_ro_reads_the_same_bytes_from_crunch_passthrough_tar_and_fat() {
    let dir = common::root().join("examples/kv_ro");
    let crunch = output_in(&example("kv_ro"), &dir);
    assert!(crunch.contains("INF [kv_ro] secret ("), "{crunch}");
    assert!(crunch.contains("subdir/hello.txt ("), "{crunch}");
    let passthrough = output_in(&common::image("kv_ro", &["--kv_ro=passthrough"]), &dir);
    assert_eq!(
        passthrough, crunch,
        "passthrough reads what crunch embedded"
    );
    // tar and fat: the build's disk image (t.tar, t.fat) beside the image, found there
    // whatever the working directory.
    let elsewhere = std::env::temp_dir();
    for store in ["tar", "fat"] {
        let flag = format!("--kv_ro={store}");
        let scratch = common::work_dir().join(format!("kv_ro-{store}"));
        let image = common::image_beside_disks("kv_ro", &[&flag], &scratch);
        assert!(scratch.join(format!("t.{store}")).is_file());
        let out = output_in(&image, &elsewhere);
        assert_eq!(out, crunch, "{store} reads what crunch embedded");
        // The disk is opened read-only: a read-only file serves too.
        let disk = scratch.join(format!("t.{store}"));
        let mut perms = std::fs::metadata(&disk).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&disk, perms).unwrap();
        assert_eq!(
            output_in(&image, &elsewhere),
            crunch,
            "{store}, read-only disk"
        );
        std::fs::remove_file(&disk).unwrap();
        let missing = Command::new(&image).current_dir(&scratch).output().unwrap();
        assert_eq!(missing.status.code(), Some(1));
        let err = text(&missing.stderr);
        assert!(
            err.contains(&disk.display().to_string()),
            "a missing disk is named with its full path: {err}"
        );
    }
}

#[test]
fn block_writes_reads_back_and_checks_sectors() {
    let scratch = common::work_dir().join("block");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("disk.img"), vec![0u8; 1 << 20]).unwrap();
    let out = Command::new(example("block"))
        .current_dir(&scratch)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let missing = common::work_dir().join("block-missing");
    std::fs::create_dir_all(&missing).unwrap();
    let out = Command::new(example("block"))
        .current_dir(&missing)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing disk fails to connect"
    );
    assert!(
        text(&out.stderr).contains("block_of_file"),
        "the error names the device: {}",
        text(&out.stderr)
    );
}

#[test]
fn hello_logs_four_times_a_second_apart() {
    let (out, took) = run("hello", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "INF [hello] Hello World!\n".repeat(4));
    assert!(took >= Duration::from_secs(4), "took {took:?}");
}

#[test]
fn hello_takes_its_message_and_level_from_the_command_line() {
    let (out, _) = run("hello", &["--hello", "Bonjour", "--logs=warn"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "", "info lines are hidden at level warn");
}

#[test]
fn console_prints_the_talks_output() {
    let (out, took) = run("console", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nworld\n".repeat(4));
    assert!(took >= Duration::from_secs(4), "took {took:?}");
}

#[test]
fn help_lists_the_keys_and_exits_63() {
    let (out, _) = run("hello", &["--help"]);
    assert_eq!(out.status.code(), Some(63));
    let usage = text(&out.stdout);
    assert!(
        usage.starts_with("usage: hello [--KEY=VALUE]..."),
        "{usage}"
    );
    assert!(usage.contains("--hello=STRING\n      The message to log. (default: Hello World!)"));
    assert!(usage.contains("--logs=error|warn|info|debug|trace"));
}

#[test]
fn bad_arguments_name_the_key_and_exit_64() {
    let (out, _) = run("hello", &["--logs=loud"]);
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        text(&out.stderr),
        "hello: invalid value `loud` for `--logs`: expected one of error, warn, info, debug, trace\n\
         Run `hello --help` for the list of keys.\n"
    );
    let (out, _) = run("console", &["--lgos=debug"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).starts_with("console: unknown key `--lgos`; did you mean `--logs`?"));
}

#[test]
fn a_failing_console_exits_1_with_the_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full on this host");
        return;
    };
    let out = Command::new(example("console"))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: the unikernel failed: console I/O error (errno 28)\n"
    );
}
