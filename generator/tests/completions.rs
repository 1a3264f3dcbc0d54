//! Shell completions, run in the real shells: bash through its completion function (as
//! `complete -F` calls it), fish through `complete -C`, zsh through its completion function
//! with the completion system's builtins recorded, and once for real in an interactive zsh.
//! Each completes in a unikernel's directory, with this mirage-nix first on PATH, so that
//! key flags come from that unikernel.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mirage_nix() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mirage-nix"))
}

/// `PATH` with this mirage-nix first.
fn path() -> String {
    let bin = mirage_nix().parent().unwrap().to_path_buf();
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin.display())
}

fn script(shell: &str) -> PathBuf {
    let out = Command::new(mirage_nix())
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = tempfile::Builder::new()
        .suffix(&format!(".{shell}"))
        .tempfile()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    std::fs::write(&file, out.stdout).unwrap();
    file
}

fn have(shell: &str) -> bool {
    Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program` in `shell` in examples/hello, returns its output.
fn in_shell(shell: &str, args: &[&str], program: &str) -> String {
    let out = Command::new(shell)
        .args(args)
        .arg(program)
        .current_dir(root().join("examples/hello"))
        .env("PATH", path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shell} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// What bash's completion offers for `line` (the cursor at its end).
fn bash(lines: &[&str]) -> Vec<Vec<String>> {
    let s = script("bash");
    let mut program = format!("source {}\n", s.display());
    for l in lines {
        program.push_str(&format!(
            "COMP_LINE={l:?}; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< \"$COMP_LINE\"; COMP_CWORD=${{#COMP_WORDS[@]}}; _mirage_nix; printf '%s\\n' \"${{COMPREPLY[@]}}\"; echo '##'\n"
        ));
    }
    let out = in_shell("bash", &["--norc", "-c"], &program);
    std::fs::remove_file(s).unwrap();
    split_answers(&out)
}

/// The answers of a script that prints `##` after each, each sorted.
fn split_answers(out: &str) -> Vec<Vec<String>> {
    out.split("##\n")
        .map(|a| {
            let mut words: Vec<String> = a
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect();
            words.sort();
            words
        })
        .collect()
}

#[test]
fn bash_completes_commands_targets_keys_and_their_values() {
    let a = bash(&[
        "mirage-nix ru",
        "mirage-nix run -t ",
        "mirage-nix build --target=x",
        "mirage-nix run --he",
        "mirage-nix describe ../kv_ro --kv_ro=",
        "mirage-nix describe ../kv_ro -t xen --kv",
        "mirage-nix run --xen=",
        "mirage-nix query ",
        "mirage-nix completions ",
        "mirage-nix configure --dr",
    ]);
    assert_eq!(a[0], ["run"]);
    assert_eq!(a[1], ["hvt", "spt", "unix", "xen"]);
    // Bash replaces what follows `=` only.
    assert_eq!(a[2], ["xen"]);
    // hello's own key, from the unikernel in the current directory.
    assert_eq!(a[3], ["--hello=", "--help"]);
    assert_eq!(a[4], ["crunch", "fat", "passthrough", "tar"]);
    assert!(a[5].contains(&"--kv_ro=tar".to_string()), "{:?}", a[5]);
    assert_eq!(a[6], ["dom0", "pvh", "pvh-dom0", "xl", "xl-pv"]);
    assert!(
        a[7].contains(&"plan".to_string()) && a[7].contains(&"nix-attr".to_string()),
        "{:?}",
        a[7]
    );
    assert_eq!(a[8], ["bash", "fish", "zsh"]);
    assert_eq!(a[9], ["--dry-run"]);
}

/// Keys follow the target and the keys typed, as `--help` does: `--kv_ro=passthrough` is
/// offered on unix only, and conduit_server's `--ipv4` with `--net=direct` only.
#[test]
fn bash_offers_the_keys_that_apply_to_the_line() {
    let a = bash(&[
        "mirage-nix configure -t xen ../conduit_server --",
        "mirage-nix configure -t unix --net=direct ../conduit_server --ip",
        "mirage-nix configure -t unix --net=socket ../conduit_server --ip",
    ]);
    assert!(a[0].contains(&"--port=".to_string()), "{:?}", a[0]);
    assert_eq!(a[1], ["--ipv4-gateway=", "--ipv4="]);
    assert!(a[2].is_empty(), "{:?}", a[2]);
}

#[test]
fn fish_completes_targets_and_keys() {
    if !have("fish") {
        return eprintln!("skipped: fish is not installed (scripts/setup installs it)");
    }
    let s = script("fish");
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source {}; complete -C '{line}'", s.display());
        in_shell("fish", &["--no-config", "-c"], &program)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        complete("mirage-nix run -t "),
        ["hvt", "spt", "unix", "xen"]
    );
    assert_eq!(complete("mirage-nix run --he"), ["--hello=", "--help"]);
    assert_eq!(
        complete("mirage-nix describe ../kv_ro --kv_ro=t"),
        ["--kv_ro=tar"]
    );
    assert_eq!(complete("mirage-nix completions "), ["bash", "fish", "zsh"]);
    std::fs::remove_file(s).unwrap();
}

#[test]
fn zsh_completes_targets_and_keys() {
    if !have("zsh") {
        return eprintln!("skipped: zsh is not installed (scripts/setup installs it)");
    }
    let s = script("zsh");
    // The completion system's builtins, recording what they are given.
    let stubs = r#"
compdef() { :; }
compset() { :; }
_files() { print -r -- "<files $*>"; }
compadd() { local i; for ((i = 1; i <= $#; i++)); do case ${@[i]} in -a) print -rl -- "${(@P)${@[i+1]}}"; return ;; --) print -rl -- "${@[i+1,-1]}"; return ;; esac; done; }
_describe() { print -rl -- "${(@P)4}" | sed 's/\\:/@@/g; s/:.*//; s/@@/:/g'; }
comp() { words=(${(z)1}); [[ $1 == *' ' ]] && words+=(""); CURRENT=$#words; _mirage_nix | grep -- "^$words[CURRENT]"; print -r -- '##'; }
"#;
    let program = format!(
        "{stubs}\nsource {}\ncomp 'mirage-nix ru'\ncomp 'mirage-nix run -t '\ncomp 'mirage-nix run --he'\ncomp 'mirage-nix describe ../kv_ro --kv_ro=t'\n",
        s.display()
    );
    let a = split_answers(&in_shell("zsh", &["-f", "-c"], &program));
    assert_eq!(a[0], ["run"]);
    assert_eq!(a[1], ["hvt", "spt", "unix", "xen"]);
    assert_eq!(a[2], ["--hello=", "--help"]);
    assert_eq!(a[3], ["--kv_ro=tar"]);
    // And once in a real interactive zsh: `--xe<TAB>` becomes `--xen=`, and a second TAB
    // lists the modes.
    let real = format!(
        r#"zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'autoload -Uz compinit; compinit -u -D; source {}; PS1="%% "; unsetopt beep'
sleep 0.5
zpty -w -n z $'mirage-nix run --xe\t'
sleep 1.5
zpty -w -n z $'\t'
sleep 1.5
out=""; while zpty -r -t z chunk 2>/dev/null; do out+=$chunk; done
print -r -- "$out"
zpty -d z"#,
        s.display()
    );
    let out = in_shell("zsh", &["-f", "-c"], &real);
    assert!(out.contains("--xen="), "{out}");
    assert!(out.contains("pvh-dom0"), "{out}");
    std::fs::remove_file(s).unwrap();
}
