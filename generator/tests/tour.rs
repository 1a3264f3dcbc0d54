//! The README's tour, followed line by line as a user would right after `scripts/demo`.
//!
//! The commands are read from README.md itself (the `$ ` lines of the tour's ```console
//! block), so the page and this test cannot drift apart. They run in order in one bash, in
//! a scratch clone left as `scripts/demo` leaves a checkout: mirage-nix in
//! `target/release/` (this build's, with the clone as its tree) and hello configured for
//! unix, xen, hvt, then spt. Where the README shows what a command prints, its output
//! (stdout and stderr together, as a terminal shows them) must be exactly that, `...`
//! standing for any lines; a command that shows an error must fail, any other succeed. A
//! line marked `# on a Xen host` is skipped, saying why: it boots a server in a Xen dom0.
//!
//! The tour builds through Nix and boots under QEMU, so its run is ignored by `cargo test`;
//! `scripts/test` runs it after `nix flake check`, whose store holds the images:
//!
//!     cargo test -p mirage-nix --locked --test tour -- --ignored --nocapture
//!
//! The checks of the README's text itself (every command names its target) run always.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod scratch;
use scratch::{root, scratch};

/// The marker of a command that needs a Xen dom0.
const ON_A_XEN_HOST: &str = "# on a Xen host";

/// The marker the shell prints after each command, before its exit status.
const END_OF_COMMAND: char = '\u{1e}';

/// The longest the whole tour may take (it builds images through Nix when the store lacks
/// them, and boots one under QEMU).
const DEADLINE: Duration = Duration::from_secs(1200);

/// One `$ ` line of the tour and what the README shows it prints.
#[derive(Debug)]
struct Step {
    /// Its line in README.md.
    line: usize,
    /// The command, as typed.
    command: String,
    /// The output shown, trailing blank lines dropped; `...` is any lines.
    shown: Vec<String>,
}

impl Step {
    /// Whether the output shown is an error, so that the command must fail.
    fn shows_an_error(&self) -> bool {
        self.shown.iter().any(|l| l.starts_with("error"))
    }

    /// Why this step does not run here, if it does not.
    fn skipped_because(&self) -> Option<&'static str> {
        self.command.contains(ON_A_XEN_HOST).then_some(
            "it needs a Xen dom0 with a bridge xenbr0, and the server it boots serves until stopped",
        )
    }
}

/// The steps of the README's tour: its first ```console block after the tour's heading.
fn tour(readme: &str) -> Vec<Step> {
    let mut lines = readme.lines().enumerate();
    lines
        .by_ref()
        .find(|(_, l)| l.starts_with("## A tour"))
        .expect("README.md has a section `## A tour...`");
    lines
        .by_ref()
        .find(|(_, l)| l.trim() == "```console")
        .expect("the tour has a ```console block");
    let mut steps: Vec<Step> = Vec::new();
    for (i, l) in lines {
        if l.trim() == "```" {
            break;
        }
        match l.strip_prefix("$ ") {
            Some(command) => steps.push(Step {
                line: i + 1,
                command: command.to_string(),
                shown: Vec::new(),
            }),
            None => steps
                .last_mut()
                .expect("the tour's block starts with a command")
                .shown
                .push(l.trim_end().to_string()),
        }
    }
    for step in &mut steps {
        trim_blank_tail(&mut step.shown);
    }
    steps
}

fn trim_blank_tail(lines: &mut Vec<String>) {
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
}

/// `matches(shown, actual)`: the lines are equal, a `...` in `shown` standing for any
/// number of lines.
fn matches(shown: &[String], actual: &[String]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.first() == Some(first) && matches(rest, &actual[1..]),
    }
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The tour's mirage-nix commands that work on one target name it with `-t`, but the one
/// that shows the choice made without it, which says so; and every other marker is known.
#[test]
fn every_tour_command_names_its_target() {
    let steps = tour(&readme());
    assert!(steps.len() >= 10, "{steps:#?}");
    let per_target = ["describe", "query", "build", "run"];
    for step in &steps {
        let words: Vec<&str> = step.command.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "mirage-nix") else {
            continue;
        };
        let verb = words.get(at + 1).copied().unwrap_or_default();
        let configure_one = verb == "configure"
            && !words
                .iter()
                .any(|w| *w == "--all-targets" || *w == "--check");
        if !(per_target.contains(&verb) || configure_one) {
            continue;
        }
        let named = words
            .iter()
            .any(|w| *w == "-t" || w.starts_with("--target"));
        assert!(
            named || step.command.contains("without -t"),
            "README.md:{}: `{}` names no target: add -t, or say `without -t` in its comment",
            step.line,
            step.command
        );
    }
}

#[test]
fn shown_output_matches_with_elisions() {
    let lines = |s: &str| -> Vec<String> { s.lines().map(String::from).collect() };
    assert!(matches(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
    assert!(matches(&lines("a\n...\nb"), &lines("a\nb")));
    assert!(matches(&lines("...\nb\n..."), &lines("a\nb\nc")));
    assert!(!matches(&lines("a\n...\nd"), &lines("a\nb\nc")));
    assert!(!matches(&lines("a"), &lines("a\nb")));
    let steps = tour("## A tour\n\n```console\n$ one\nx\n\n$ two # c\n\n```\n$ not\n");
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].line, steps[0].shown.clone()), (4, lines("x")));
    assert_eq!(steps[1].command, "two # c");
    assert!(steps[1].shown.is_empty());
}

/// The bash script that runs `steps` in `dir`, printing after each the end marker, its
/// exit status and the time.
fn script(dir: &Path, steps: &[&Step]) -> String {
    let mut s = String::from("exec 2>&1 </dev/null\necho \"$EPOCHREALTIME\"\n");
    s += &format!("cd '{}'\n", dir.display());
    for step in steps {
        s += &step.command;
        s += &format!("\nprintf '{END_OF_COMMAND}%s %s\\n' \"$?\" \"$EPOCHREALTIME\"\n");
    }
    s
}

/// Leaves the clone in `dir` as `scripts/demo` leaves a checkout.
fn as_after_the_demo(s: &scratch::Scratch) {
    let release = s.dir.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mirage-nix"), release.join("mirage-nix"))
        .unwrap();
    for target in ["unix", "xen", "hvt", "spt"] {
        let out = s.mirage_nix(&["configure", "-t", target, "examples/hello"]);
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
#[ignore = "needs Nix and QEMU (scripts/test runs it)"]
fn the_readme_tour_works_line_by_line_after_the_demo() {
    let steps = tour(&readme());
    let s = scratch();
    as_after_the_demo(&s);
    let (ran, skipped): (Vec<&Step>, Vec<&Step>) =
        steps.iter().partition(|s| s.skipped_because().is_none());
    for step in &skipped {
        eprintln!(
            "skipped README.md:{}: `{}`: {}",
            step.line,
            step.command,
            step.skipped_because().unwrap_or_default()
        );
    }
    let start = Instant::now();
    let mut shell = Command::new("timeout")
        .args([
            "--kill-after=10",
            &DEADLINE.as_secs().to_string(),
            "bash",
            "-c",
        ])
        .arg(script(&s.dir, &ran))
        .env("MIRAGE_NIX_ROOT", &s.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = String::new();
    shell
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let status = shell.wait().unwrap();
    let results = results(&output);
    let mut failures = Vec::new();
    for (i, step) in ran.iter().enumerate() {
        let Some(result) = results.get(i) else {
            failures.push(format!(
                "README.md:{}: `{}` never ended (the tour's shell: {status})",
                step.line, step.command
            ));
            break;
        };
        eprintln!(
            "README.md:{}: exit status {}, {:.1} s: {}",
            step.line, result.status, result.seconds, step.command
        );
        let mut actual: Vec<String> = result
            .output
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        trim_blank_tail(&mut actual);
        if !step.shown.is_empty() && !matches(&step.shown, &actual) {
            failures.push(format!(
                "README.md:{}: `{}` printed\n{}\nwhere the README shows\n{}",
                step.line,
                step.command,
                actual.join("\n"),
                step.shown.join("\n")
            ));
        }
        if (result.status == 0) == step.shows_an_error() {
            failures.push(format!(
                "README.md:{}: `{}` exited with {}, but the README shows {}",
                step.line,
                step.command,
                result.status,
                if step.shows_an_error() {
                    "an error"
                } else {
                    "no error"
                }
            ));
        }
    }
    eprintln!("the tour took {:.1?}", start.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What one command of the tour did.
struct Outcome {
    output: String,
    status: i32,
    seconds: f64,
}

/// The outcome of each command that ended, from the output of the [`script`]: the start
/// time, then each command's output followed by the end marker, its status and the time.
fn results(output: &str) -> Vec<Outcome> {
    let mut parts = output.split(END_OF_COMMAND);
    let first = parts.next().unwrap_or_default();
    let (start, mut pending) = first.split_once('\n').unwrap_or((first, ""));
    let mut last: f64 = start.parse().unwrap_or_default();
    let mut outcomes = Vec::new();
    for part in parts {
        let (verdict, next) = part.split_once('\n').unwrap_or((part, ""));
        let (code, when) = verdict.split_once(' ').unwrap_or((verdict, ""));
        let when: f64 = when.parse().unwrap_or(last);
        outcomes.push(Outcome {
            output: pending.to_string(),
            status: code.parse().unwrap_or(-1),
            seconds: when - last,
        });
        (last, pending) = (when, next);
    }
    outcomes
}
