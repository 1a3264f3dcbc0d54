//! Runs the hand-written stand-ins for generated `main.rs` files (examples/) as processes and
//! checks what the talk's examples print and how they exit.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `example(name)` is the path of the example binary `name`, built by `cargo test` next to
/// this test's own binary (target/<profile>/deps/ -> target/<profile>/examples/).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(example(name)).args(args).output().unwrap();
    (out, start.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
