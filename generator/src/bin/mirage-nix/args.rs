//! Arguments of the commands that take keys.
//!
//! Their flags depend on the unikernel: before clap parses the command line, [`KeyedCommand`]
//! finds DIR and the keys already given, loads the config, and works out which keys are
//! reachable; only those become flags. A flag that names a key of the config that does not
//! apply here, or no key at all, gets its own message with the closest known flag.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};
use mirage_nix::config::{CONFIG_FILE, RESERVED_FLAGS};
use mirage_nix::diag::{closest, Diagnostic, Report};
use mirage_nix::key::{KeyType, Stage};
use mirage_nix::Unikernel;

/// A problem with no file location, as a report.
pub fn report(code: &'static str, message: String) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error(code, None, message)],
    }
}

/// The `DIR` argument.
pub fn dir_arg() -> Arg {
    Arg::new("dir")
        .value_name("DIR")
        .value_parser(clap::value_parser!(PathBuf))
        .help(format!(
            "The unikernel's directory, holding {CONFIG_FILE} (default: the current directory)"
        ))
}

/// The DIR of parsed arguments.
pub fn dir_of(m: &ArgMatches) -> PathBuf {
    m.get_one::<PathBuf>("dir")
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A command taking keys, before its key flags are added.
pub fn keyed(name: &'static str, about: &'static str) -> Command {
    let target = Arg::new("target")
        .short('t')
        .long("target")
        .value_name("TARGET")
        .value_parser(["unix", "xen", "hvt", "spt"])
        .help("The target the image is built for (default: the last configured, else unix)")
        .help_heading("Configure keys");
    Command::new(name)
        .about(about)
        .arg(dir_arg())
        .arg(target)
        .after_help(
        "Keys: the flags under \"Configure keys\" and \"Runtime keys\" come from the unikernel's \
         config and are those that apply to the target and the keys already given. Runtime keys \
         given here become the image's defaults; they can still be changed at boot.",
    )
}

/// A keyed command's unikernel and the keys its command line may set.
pub struct KeyedCommand {
    /// The unikernel's directory.
    pub dir: PathBuf,
    /// The unikernel, if its config loaded.
    pub unikernel: Option<Unikernel>,
    /// Why it did not load.
    pub load_error: Option<Report>,
    reachable: BTreeSet<String>,
}

impl KeyedCommand {
    /// Finds DIR and the keys given in `argv`, loads the config and computes reachable keys.
    pub fn prepare(name: &str, argv: &[String]) -> Result<KeyedCommand, Report> {
        Self::read(name, argv, true)
    }

    /// Like [`KeyedCommand::prepare`], for a command line being typed (shell completion):
    /// flags that are not keys yet are let be.
    pub fn peek(name: &str, argv: &[String]) -> Result<KeyedCommand, Report> {
        Self::read(name, argv, false)
    }

    /// The keys a command line may still add, as `completions keys` prints them.
    pub fn key_lines(&self) -> String {
        self.unikernel
            .as_ref()
            .map(|uk| mirage_nix::ops::completions::key_lines(uk, &self.reachable))
            .unwrap_or_default()
    }

    fn read(name: &str, argv: &[String], check: bool) -> Result<KeyedCommand, Report> {
        let after: Vec<&str> = argv
            .iter()
            .map(String::as_str)
            .skip_while(|a| *a != name)
            .skip(1)
            .take_while(|a| *a != "--")
            .collect();
        let wants_help = after.iter().any(|a| *a == "--help" || *a == "-h");
        let positionals: Vec<&str> = positionals(&after);
        // DIR is the last positional that is a folder or holds a config (query's INFO comes
        // first); a config that cannot be read is then reported, never silently replaced by
        // the current directory's.
        let dir = positionals
            .iter()
            .rev()
            .find(|p| looks_like_dir(p))
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let (unikernel, load_error) = match Unikernel::load(&dir) {
            Ok(u) => (Some(u), None),
            Err(r) if wants_help => (None, Some(r)),
            Err(r) => return Err(r),
        };
        let mut reachable = BTreeSet::new();
        if let Some(uk) = &unikernel {
            let peeked = peek_keys(uk, &after);
            let target = mirage_nix::ops::default_target(
                &dir,
                peeked
                    .iter()
                    .find(|(k, _)| k == "target")
                    .map(|(_, v)| v.as_str()),
            );
            let valid: Vec<(&str, &str)> = peeked
                .iter()
                .filter(|(k, v)| {
                    uk.config
                        .keys
                        .get(k)
                        .is_some_and(|key| key.ty.parse(v).is_ok())
                })
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let ctx = uk
                .context(&target, valid.clone())
                .or_else(|_| uk.context("unix", valid))?;
            reachable = uk.reachable_keys(&ctx);
            if check {
                check_flags(uk, &after, &reachable, &ctx.target)?;
            }
        }
        Ok(KeyedCommand {
            dir,
            unikernel,
            load_error,
            reachable,
        })
    }

    /// Adds one flag per reachable key (the target always) to a keyed command.
    pub fn add_keys(&self, mut c: Command) -> Command {
        if self.unikernel.is_none() {
            let why = self
                .load_error
                .as_ref()
                .and_then(|r| r.diagnostics.first())
                .map_or(format!("no {CONFIG_FILE} found"), |d| d.message.clone());
            return c.before_help(format!("({why}: only the target is listed; run this in a unikernel's directory to see its keys)"));
        }
        let uk = self.unikernel.as_ref().expect("checked above");
        for name in &self.reachable {
            if name == "target" {
                continue;
            }
            let key = &uk.config.keys[name];
            let default = key.default.to_string();
            let mut arg = Arg::new(name.clone())
                .long(name.clone())
                .value_name(key.ty.placeholder())
                .action(ArgAction::Set)
                .help(format!("{} [default: {default}]", key.doc))
                .help_heading(if key.stage == Stage::Configure {
                    "Configure keys"
                } else {
                    "Runtime keys"
                });
            if key.ty == KeyType::Bool {
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true");
            }
            if let Some(s) = key.short {
                arg = arg.short(s);
            }
            c = c.arg(arg);
        }
        c
    }
}

/// Tokens that are not flags nor flag values: DIR candidates (and query's INFO).
fn positionals<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a.starts_with('-') {
            let takes_value = matches!(
                a,
                "-t" | "--target"
                    | "--mirage-root"
                    | "--toolchain"
                    | "-l"
                    | "--logs"
                    | "--mem"
                    | "--disk"
                    | "--tap"
                    | "--xen"
                    | "--image"
            ) || (a.starts_with("--")
                && !a.contains('=')
                && i + 1 < args.len()
                && !args[i + 1].starts_with('-')
                && !looks_like_dir(args[i + 1]));
            i += if takes_value { 2 } else { 1 };
        } else {
            out.push(a);
            i += 1;
        }
    }
    out
}

/// Whether `a` is a unikernel's directory: a folder, or one holding a config of any kind
/// (which is then read, and refused if it is not a regular file).
fn looks_like_dir(a: &str) -> bool {
    let p = std::path::Path::new(a);
    p.is_dir() || std::fs::symlink_metadata(p.join(CONFIG_FILE)).is_ok()
}

/// `(key, value)` pairs written as `--key=value`, `--key value`, `-t value` or `--flag`.
fn peek_keys(uk: &Unikernel, args: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        let (name, inline) = if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(short) = a.strip_prefix('-').and_then(|s| s.chars().next()) {
            match uk.config.keys.values().find(|k| k.short == Some(short)) {
                Some(k) => (
                    k.name.clone(),
                    (a.len() > 2).then(|| a[2..].trim_start_matches('=').to_string()),
                ),
                None => continue,
            }
        } else {
            continue;
        };
        let Some(key) = uk.config.keys.get(&name) else {
            continue;
        };
        let value = match inline {
            Some(v) => v,
            None if key.ty == KeyType::Bool => "true".to_string(),
            None if i < args.len() => {
                i += 1;
                args[i - 1].to_string()
            }
            None => continue,
        };
        out.push((name, value));
    }
    out
}

/// Rejects `--name` flags that are neither the command's own nor a reachable key.
fn check_flags(
    uk: &Unikernel,
    args: &[&str],
    reachable: &BTreeSet<String>,
    target: &str,
) -> Result<(), Report> {
    for a in args {
        let Some(long) = a.strip_prefix("--") else {
            continue;
        };
        let name = long.split_once('=').map_or(long, |(n, _)| n);
        if RESERVED_FLAGS.contains(&name) || name == "target" || reachable.contains(name) {
            continue;
        }
        let message = if uk.config.keys.contains_key(name) {
            Diagnostic::error(
                "unreachable-key",
                None,
                format!(
                    "key --{name} does not apply to `{}` on {target} with these keys",
                    uk.config.main.name
                ),
            )
            .with_help(format!(
                "no device reading --{name} is in the graph; the keys that apply are: {}",
                flags(reachable)
            ))
        } else {
            let known = RESERVED_FLAGS
                .iter()
                .copied()
                .chain(reachable.iter().map(String::as_str));
            Diagnostic::error(
                "unknown-key",
                None,
                format!(
                    "unknown flag --{name}{}",
                    closest(name, known)
                        .map(|c| format!("; did you mean `--{c}`?"))
                        .unwrap_or_default()
                ),
            )
            .with_help(format!(
                "the keys that apply here are: {}",
                flags(reachable)
            ))
        };
        return Err(Report {
            sources: uk.config.sources.clone(),
            diagnostics: vec![message],
        });
    }
    Ok(())
}

fn flags(keys: &BTreeSet<String>) -> String {
    keys.iter()
        .map(|k| format!("--{k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key values given on the command line (the target excluded), as text.
pub fn given_keys(uk: &Unikernel, m: &ArgMatches) -> Vec<(String, String)> {
    uk.config
        .keys
        .keys()
        .filter(|k| *k != "target")
        .filter_map(|k| {
            m.try_get_one::<String>(k)
                .ok()
                .flatten()
                .map(|v| (k.clone(), v.clone()))
        })
        .collect()
}
