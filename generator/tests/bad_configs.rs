//! The corpus of bad configurations under `tests/configs/bad/`: each file starts with comment
//! lines saying what must be reported (`# code:`, `# at: LINE:COL`, `# message:`, and
//! optionally `# help:` and `# args:` for the target and keys to configure with). Every file
//! must give exactly that diagnostic first, located, without panicking.

use std::path::{Path, PathBuf};

use mirage_nix::diag::Report;
use mirage_nix::Unikernel;

struct Expectation {
    args: Vec<(String, String)>,
    target: String,
    code: String,
    at: String,
    message: String,
    help: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs/bad")
}

fn expectation(text: &str, file: &Path) -> Expectation {
    let header = |name: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("# {name}: ")))
            .next()
            .map(str::to_string)
    };
    let mut target = "unix".to_string();
    let mut args = Vec::new();
    if let Some(a) = header("args") {
        let words: Vec<&str> = a.split_whitespace().collect();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "-t" {
                target = words[i + 1].to_string();
                i += 2;
                continue;
            }
            let (k, v) = words[i]
                .trim_start_matches("--")
                .split_once('=')
                .expect("--key=value");
            args.push((k.to_string(), v.to_string()));
            i += 1;
        }
    }
    let need =
        |name: &str| header(name).unwrap_or_else(|| panic!("{} lacks `# {name}:`", file.display()));
    Expectation {
        args,
        target,
        code: need("code"),
        at: need("at"),
        message: need("message"),
        help: header("help"),
    }
}

/// Loads, evaluates and plans a config, returning the first report.
fn outcome(file: &Path, text: &str, e: &Expectation) -> Result<(), Report> {
    let uk = Unikernel::from_str(file.parent().unwrap(), &file.display().to_string(), text)?;
    let ctx = uk.context(
        &e.target,
        e.args.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    uk.plan(&ctx).map(|_| ())
}

#[test]
fn every_bad_config_gives_its_located_diagnostic() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the corpus must hold at least 25 configs, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let e = expectation(&text, file);
        let report = match outcome(file, &text, &e) {
            Ok(()) => {
                failures.push(format!("{}: accepted, expected {}", file.display(), e.code));
                continue;
            }
            Err(r) => r,
        };
        let rendered = report.render();
        let first = &report.diagnostics[0];
        let at = first.primary.map(|s| {
            let l = report.sources.location(s);
            format!("{}:{}", l.line, l.column)
        });
        let mut problems = Vec::new();
        if first.code != e.code {
            problems.push(format!("code {} instead of {}", first.code, e.code));
        }
        if at.as_deref() != Some(e.at.as_str()) {
            problems.push(format!("at {at:?} instead of {}", e.at));
        }
        if !first.message.contains(&e.message) {
            problems.push(format!("message {:?} lacks {:?}", first.message, e.message));
        }
        if let Some(h) = &e.help {
            if !first
                .help
                .as_deref()
                .unwrap_or_default()
                .contains(h.as_str())
            {
                problems.push(format!("help {:?} lacks {h:?}", first.help));
            }
        }
        if first.help.is_none() {
            problems.push("no help saying how to fix it".into());
        }
        if !rendered.contains(&format!("{}:{}", file.display(), e.at)) {
            problems.push("the rendered report does not name file:line:col".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n{rendered}",
                file.display(),
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad configs misreported:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
