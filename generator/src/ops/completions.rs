//! `completions`: shell completion scripts for bash, zsh and fish.
//!
//! A script knows mirage-nix's commands and options ([`CommandSpec`], read from the command
//! line's own definition), completes option values it can list (`-t` targets, `--xen` modes),
//! folders for DIR, and asks mirage-nix itself for the keys of the unikernel the line names (or
//! the one in the current directory) each time it completes a flag: `mirage-nix completions
//! keys -- WORDS...` prints [`key_lines`], so the keys offered are those reachable for the
//! target and keys already typed, as `--help` lists them.

use std::fmt::Write;

use crate::key::KeyType;
use crate::Unikernel;

/// A shell a completion script is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash (`complete -F`).
    Bash,
    /// zsh (`compdef`).
    Zsh,
    /// fish (`complete -c`).
    Fish,
}

impl Shell {
    /// Every shell with its name.
    pub const ALL: [(Shell, &'static str); 3] = [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
    ];

    /// The shell named `name`.
    pub fn from_name(name: &str) -> Option<Shell> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

/// What a positional argument is, for completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Positional {
    /// A unikernel's folder.
    Dir,
    /// A file.
    File,
    /// One of these words.
    Words(Vec<String>),
}

/// An option of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// `--long`, without the dashes.
    pub long: Option<String>,
    /// `-s`.
    pub short: Option<char>,
    /// Whether it takes a value.
    pub takes_value: bool,
    /// The values it takes, when they are a list.
    pub values: Vec<String>,
    /// Whether its value is a folder or a file (completed as such).
    pub path: bool,
    /// One line of help.
    pub help: String,
}

/// A command of mirage-nix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Its name.
    pub name: String,
    /// One line of help.
    pub about: String,
    /// Its options.
    pub options: Vec<OptionSpec>,
    /// Its positional arguments, in order.
    pub positionals: Vec<Positional>,
    /// Whether it takes the unikernel's keys as flags.
    pub keyed: bool,
}

/// `key_lines(uk, reachable)` is what `completions keys` prints: one line per flag a command
/// line may add, the flag then a tab and its help: `--KEY=` for keys with free values,
/// `--KEY=VALUE` for each value of enumerations and booleans, and `--KEY` for booleans.
pub fn key_lines<'a>(uk: &Unikernel, reachable: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = String::new();
    for name in reachable {
        if name == crate::key::TARGET {
            continue;
        }
        let Some(key) = uk.config.keys.get(name) else {
            continue;
        };
        let doc = key.doc.replace(['\t', '\n'], " ");
        let values: Vec<String> = match &key.ty {
            KeyType::Enum(values) => values.clone(),
            KeyType::Bool => {
                let _ = writeln!(out, "--{name}\t{doc}");
                vec!["true".into(), "false".into()]
            }
            _ => {
                let _ = writeln!(out, "--{name}=\t{doc}");
                continue;
            }
        };
        for v in values {
            let _ = writeln!(out, "--{name}={v}\t{doc}");
        }
    }
    out
}

/// `script(shell, program, commands)` is the completion script of `program` for `shell`.
pub fn script(shell: Shell, program: &str, commands: &[CommandSpec]) -> String {
    match shell {
        Shell::Bash => bash(program, commands),
        Shell::Zsh => zsh(program, commands),
        Shell::Fish => fish(program, commands),
    }
}

/// A POSIX-shell single-quoted word.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The option words of a command: `--long` and `-s`.
fn option_words(c: &CommandSpec) -> Vec<String> {
    let mut words = Vec::new();
    for o in &c.options {
        if let Some(l) = &o.long {
            words.push(if o.takes_value {
                format!("--{l}=")
            } else {
                format!("--{l}")
            });
        }
        if let Some(s) = o.short {
            words.push(format!("-{s}"));
        }
    }
    words
}

/// The names (`-s`, `--long`) of `o`.
fn option_names(o: &OptionSpec) -> Vec<String> {
    o.long
        .iter()
        .map(|l| format!("--{l}"))
        .chain(o.short.map(|s| format!("-{s}")))
        .collect()
}

/// `function` is the function name of `program`'s completion (`_mirage_nix`).
fn function(program: &str) -> String {
    format!(
        "_{}",
        program.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// Every option that takes a value, with the `case` pattern of its command and names in a
/// bash or zsh script (`"build --toolchain"|"build -T"`).
fn value_options(commands: &[CommandSpec]) -> impl Iterator<Item = (String, &OptionSpec)> {
    commands.iter().flat_map(|c| {
        c.options.iter().filter(|o| o.takes_value).map(move |o| {
            let pats: Vec<String> = option_names(o)
                .iter()
                .map(|n| format!("\"{} {n}\"", c.name))
                .collect();
            (pats.join("|"), o)
        })
    })
}

/// The `case` lines of a bash or zsh script completing each command's positional arguments:
/// `line(command, arms)` for each command that has any, its arms `arm(index, action)` with
/// `action(positional)` the shell's way to complete it.
fn positional_cases(
    commands: &[CommandSpec],
    action: impl Fn(&Positional) -> String,
    arm: impl Fn(usize, &str) -> String,
    line: impl Fn(&str, &str) -> String,
) -> String {
    let mut out = String::new();
    for c in commands {
        let arms: String = c
            .positionals
            .iter()
            .enumerate()
            .map(|(i, p)| arm(i, &action(p)))
            .collect();
        if !arms.is_empty() {
            out.push_str(&line(&c.name, &arms));
        }
    }
    out
}

/// The names of the commands that take the unikernel's keys as options.
fn keyed_names(commands: &[CommandSpec]) -> Vec<&str> {
    commands
        .iter()
        .filter(|c| c.keyed)
        .map(|c| c.name.as_str())
        .collect()
}

fn bash(program: &str, commands: &[CommandSpec]) -> String {
    let f = function(program);
    let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
    let keyed = keyed_names(commands);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# bash completion for {program}: `eval \"$({program} completions bash)\"`, or save it as\n\
         # /usr/share/bash-completion/completions/{program}. Keys come from `{program} completions keys`."
    );
    let _ = writeln!(s, "{f}() {{");
    s.push_str(
        r#"    local line=${COMP_LINE:0:COMP_POINT}
    local -a ws
    read -ra ws <<< "$line"
    local cur=""
    [[ $line =~ [[:space:]]$ ]] || { cur=${ws[-1]}; unset 'ws[-1]'; }
    local prev=${ws[-1]:-} sub="" w
    for w in "${ws[@]:1}"; do
        case $w in -*) ;; *) sub=$w; break ;; esac
    done
    local -a cands=()
"#,
    );
    let _ = writeln!(
        s,
        "    if [[ -z $sub ]]; then\n        cands=({} --help --version)\n    else",
        names.join(" ")
    );
    // Option values: by the previous word, or after `=`.
    s.push_str("        local opt=\"\" val=\"\"\n");
    s.push_str("        if [[ $cur == --*=* ]]; then opt=${cur%%=*}; val=${cur#*=}; elif [[ $prev == -* ]]; then opt=$prev; fi\n");
    s.push_str("        case \"$sub $opt\" in\n");
    for (pats, o) in value_options(commands) {
        let action = if o.path {
            "mapfile -t cands < <(compgen -f -- \"${val:-$cur}\")".to_string()
        } else if o.values.is_empty() {
            "cands=()".to_string()
        } else {
            format!("cands=({})", o.values.join(" "))
        };
        let _ = writeln!(
            s,
            "            {pats}) {action}; [[ $cur == --*=* ]] && {{ local p=${{cur%%=*}}=; cands=(\"${{cands[@]/#/$p}}\"); }} ;;"
        );
    }
    s.push_str("            *) opt=\"\" ;;\n        esac\n");
    s.push_str("        if [[ -n $opt ]]; then :\n");
    s.push_str("        elif [[ $cur == -* ]]; then\n            case $sub in\n");
    for c in commands {
        let _ = writeln!(
            s,
            "                {}) cands=({}) ;;",
            c.name,
            option_words(c).join(" ")
        );
    }
    s.push_str("            esac\n");
    let _ = writeln!(
        s,
        "            case $sub in {})\n                local k\n                while IFS= read -r k; do cands+=(\"${{k%%$'\\t'*}}\"); done < <({program} completions keys -- \"${{ws[@]}}\" 2>/dev/null)\n            esac",
        keyed.join("|")
    );
    s.push_str("        else\n            local n=0\n            for w in \"${ws[@]:2}\"; do [[ $w == -* ]] || n=$((n + 1)); done\n            case $sub in\n");
    s.push_str(&positional_cases(
        commands,
        |p| match p {
            Positional::Dir => "mapfile -t cands < <(compgen -d -- \"$cur\")".to_string(),
            Positional::File => "mapfile -t cands < <(compgen -f -- \"$cur\")".to_string(),
            Positional::Words(w) => format!("cands=({})", w.join(" ")),
        },
        |i, action| format!("{i}) {action} ;; "),
        |name, arms| format!("                {name}) case $n in {arms}esac ;;\n"),
    ));
    s.push_str("            esac\n        fi\n    fi\n");
    s.push_str(
        r#"    mapfile -t COMPREPLY < <(compgen -W "${cands[*]}" -- "$cur")
    # Bash replaces only what follows the last `=` of the word when `=` breaks words.
    if [[ $cur == *=* && $COMP_WORDBREAKS == *=* ]]; then
        local p=${cur%=*}=
        COMPREPLY=("${COMPREPLY[@]#"$p"}")
    fi
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]]; then compopt -o nospace 2>/dev/null; fi
    if [[ ${#COMPREPLY[@]} -eq 1 && -d ${COMPREPLY[0]} ]]; then compopt -o nospace 2>/dev/null; COMPREPLY[0]+=/; fi
}
"#,
    );
    let _ = writeln!(s, "complete -F {f} {program}");
    s
}

/// A zsh `_describe` entry: `word:help` with the word's colons escaped.
fn zsh_entry(word: &str, help: &str) -> String {
    sq(&format!(
        "{}:{}",
        word.replace('\\', "\\\\").replace(':', "\\:"),
        help.replace('\n', " ")
    ))
}

fn zsh(program: &str, commands: &[CommandSpec]) -> String {
    let f = function(program);
    let keyed = keyed_names(commands);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#compdef {program}\n# zsh completion for {program}: `eval \"$({program} completions zsh)\"` after compinit, or\n\
         # save it as _{program} in a folder of $fpath. Keys come from `{program} completions keys`."
    );
    let _ = writeln!(s, "{f}() {{");
    s.push_str("    local cur=${words[CURRENT]} prev=${words[CURRENT-1]} sub=\"\" w\n");
    s.push_str("    for w in \"${(@)words[2,CURRENT-1]}\"; do\n        [[ $w == -* ]] || { sub=$w; break; }\n    done\n");
    s.push_str("    local -a cands\n    if [[ -z $sub ]]; then\n        cands=(\n");
    for c in commands {
        let _ = writeln!(s, "            {}", zsh_entry(&c.name, &c.about));
    }
    s.push_str("        )\n        _describe -t commands 'mirage-nix command' cands\n        return\n    fi\n");
    s.push_str("    local opt=\"\"\n    if [[ $cur == --*=* ]]; then opt=${cur%%=*}; elif [[ $prev == -* ]]; then opt=$prev; fi\n");
    s.push_str("    local -a values\n    local kind=\"\"\n    case \"$sub $opt\" in\n");
    for (pats, o) in value_options(commands) {
        let action = if o.path {
            "kind=path".to_string()
        } else {
            format!("kind=values; values=({})", o.values.join(" "))
        };
        let _ = writeln!(s, "        {pats}) {action} ;;");
    }
    s.push_str("    esac\n");
    s.push_str(
        r#"    if [[ -n $kind ]]; then
        if [[ $cur == --*=* ]]; then
            compset -P '*='
        fi
        if [[ $kind == path ]]; then _files; else compadd -a values; fi
        return
    fi
    if [[ $cur == -* ]]; then
        case $sub in
"#,
    );
    for c in commands {
        let entries: Vec<String> = c
            .options
            .iter()
            .flat_map(|o| {
                let names = option_names(o);
                names
                    .into_iter()
                    .map(|n| {
                        let word = if o.takes_value && n.starts_with("--") {
                            format!("{n}=")
                        } else {
                            n
                        };
                        zsh_entry(&word, &o.help)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let _ = writeln!(
            s,
            "            {}) cands=({}) ;;",
            c.name,
            entries.join(" ")
        );
    }
    s.push_str("        esac\n");
    let _ = writeln!(
        s,
        "        case $sub in {})\n            local k\n            for k in \"${{(@f)$({program} completions keys -- \"${{(@)words[1,CURRENT-1]}}\" 2>/dev/null)}}\"; do\n                [[ -n $k ]] && cands+=(\"${{${{k%%$'\\t'*}}//:/\\\\:}}:${{k#*$'\\t'}}\")\n            done\n        esac",
        keyed.join("|")
    );
    s.push_str(
        r#"        local -a eq plain
        for w in "${cands[@]}"; do
            if [[ ${w%%:*} == *= ]]; then eq+=("$w"); else plain+=("$w"); fi
        done
        _describe -t options 'option' plain
        _describe -t options 'option' eq -S ''
        return
    fi
    local n=0
    for w in "${(@)words[3,CURRENT-1]}"; do [[ $w == -* ]] || n=$((n + 1)); done
    case $sub in
"#,
    );
    s.push_str(&positional_cases(
        commands,
        |p| match p {
            Positional::Dir => "_files -/".to_string(),
            Positional::File => "_files".to_string(),
            Positional::Words(w) => format!("compadd -- {}", w.join(" ")),
        },
        |i, action| format!("({i}) {action} ;; "),
        |name, arms| format!("        {name}) case $n in {arms}esac ;;\n"),
    ));
    s.push_str("    esac\n}\n");
    let _ = writeln!(
        s,
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then {f} \"$@\"; else compdef {f} {program}; fi"
    );
    s
}

fn fish(program: &str, commands: &[CommandSpec]) -> String {
    let f = function(program);
    let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
    let keyed = keyed_names(commands);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# fish completion for {program}: `{program} completions fish | source`, or save it as\n\
         # ~/.config/fish/completions/{program}.fish. Keys come from `{program} completions keys`."
    );
    let _ = writeln!(s, "complete -c {program} -e\ncomplete -c {program} -f");
    let _ = writeln!(
        s,
        "function {f}_keys\n    {program} completions keys -- (commandline -opc) 2>/dev/null\nend"
    );
    let _ = writeln!(
        s,
        "function {f}_position\n    # The number of positional words after the command's name.\n    set -l n 0\n    for w in (commandline -opc)[3..-1]\n        string match -q -- '-*' $w; or set n (math $n + 1)\n    end\n    echo $n\nend"
    );
    let no_sub = format!("not __fish_seen_subcommand_from {}", names.join(" "));
    for c in commands {
        let _ = writeln!(
            s,
            "complete -c {program} -n {} -a {} -d {}",
            sq(&no_sub),
            c.name,
            sq(&c.about)
        );
    }
    for c in commands {
        let cond = format!("__fish_seen_subcommand_from {}", c.name);
        for o in &c.options {
            let mut line = format!("complete -c {program} -n {}", sq(&cond));
            if let Some(l) = &o.long {
                let _ = write!(line, " -l {l}");
            }
            if let Some(sh) = o.short {
                let _ = write!(line, " -s {sh}");
            }
            if o.takes_value {
                if o.path {
                    line.push_str(" -rF");
                } else if o.values.is_empty() {
                    line.push_str(" -r");
                } else {
                    let _ = write!(line, " -xa {}", sq(&o.values.join(" ")));
                }
            }
            let _ = write!(line, " -d {}", sq(&o.help));
            let _ = writeln!(s, "{line}");
        }
        for (i, p) in c.positionals.iter().enumerate() {
            let at = format!(
                "{cond}; and not string match -q -- '-*' (commandline -ct); and test ({f}_position) -eq {i}"
            );
            let what = match p {
                Positional::Dir => "-xa '(__fish_complete_directories)'".to_string(),
                Positional::File => "-F".to_string(),
                Positional::Words(w) => format!("-xa {}", sq(&w.join(" "))),
            };
            let _ = writeln!(s, "complete -c {program} -n {} {what}", sq(&at));
        }
    }
    let _ = writeln!(
        s,
        "complete -c {program} -n {} -a '({f}_keys)'",
        sq(&format!(
            "__fish_seen_subcommand_from {}; and string match -q -- '-*' (commandline -ct)",
            keyed.join(" ")
        ))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<CommandSpec> {
        vec![CommandSpec {
            name: "run".into(),
            about: "Boot it: the image's own status".into(),
            options: vec![OptionSpec {
                long: Some("target".into()),
                short: Some('t'),
                takes_value: true,
                values: vec!["unix".into(), "xen".into()],
                path: false,
                help: "The target".into(),
            }],
            positionals: vec![Positional::Dir],
            keyed: true,
        }]
    }

    #[test]
    fn scripts_name_the_commands_options_and_values() {
        for (shell, _) in Shell::ALL {
            let s = script(shell, "mirage-nix", &spec());
            assert!(s.contains("run"), "{s}");
            assert!(s.contains("unix xen"), "{s}");
            assert!(s.contains("mirage-nix completions keys --"), "{s}");
        }
    }

    #[test]
    fn quotes_survive_in_help() {
        let s = script(Shell::Fish, "mirage-nix", &spec());
        assert!(s.contains("'Boot it: the image'\\''s own status'"), "{s}");
        let s = script(Shell::Zsh, "mirage-nix", &spec());
        assert!(
            s.contains("'run:Boot it: the image'\\''s own status'"),
            "{s}"
        );
    }
}
