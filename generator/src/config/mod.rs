//! Stage 1: the configuration, read and checked.
//!
//! A unikernel's `unikernel.toml` is read together with the built-in catalogue
//! (`generator/catalogue.toml`, written in the same language) into one [`Config`]: the targets,
//! signatures, keys, crates, constructors and named devices, plus the unikernel's `main`.
//! Everything that can be checked locally is checked here (names, types of keys and
//! parameters, templates, choice cases); the graph stage checks how devices fit together.
//!
//! One file per concern: [`model`] is what later stages read; `parse` reads TOML and
//! expressions with spans; `declare` records every declaration by name; `names`, `keys`,
//! `constructors` and `unikernel` hold the checks of names, `[keys]`, `[constructors]` and
//! `[unikernel]`.

mod constructors;
mod declare;
mod expr;
mod keys;
pub mod model;
mod names;
mod parse;
mod raw;
mod unikernel;

use std::collections::BTreeMap;
use std::path::Path;

pub use expr::{Expr, ExprRef, Literal, Part};
pub use model::*;

use crate::diag::{Diagnostic, FileId, Report, SourceMap, Span};
use crate::key::Key;
use raw::S;

/// The name of a unikernel's configuration file.
pub const CONFIG_FILE: &str = "unikernel.toml";

/// The built-in catalogue of targets, signatures, keys and devices.
pub const CATALOGUE: &str = include_str!("../../catalogue.toml");

/// The display name of the built-in catalogue in messages and plans.
pub const CATALOGUE_NAME: &str = "<catalogue>";

/// The log reporter a unikernel gets unless it says otherwise (Mirage's default reporter).
pub const DEFAULT_REPORTER: &str = "logs(default_console)";

/// The signature every `main` returns.
pub const JOB: &str = "job";

/// The long options of mirage-nix's commands, so no key may be called this (a key is a flag
/// of the same commands). `target` is a key of the catalogue.
pub const RESERVED_FLAGS: &[&str] = &[
    "all-targets",
    "attr",
    "cargo",
    "check",
    "disk",
    "dot",
    "dry-run",
    "eval",
    "force",
    "help",
    "image",
    "json",
    "mem",
    "mirage-root",
    "no-eval",
    "output",
    "print-build-logs",
    "quiet",
    "rebuild",
    "tap",
    "toolchain",
    "unikernel-dir",
    "verbose",
    "version",
    "xen",
];

/// The short options of mirage-nix's commands, so no key may take them as its `short`
/// (`-t` belongs to the catalogue's `target` key, `-l` to `logs`).
pub const RESERVED_SHORTS: &[char] = &['a', 'h', 'L', 'o', 'q', 'V'];

/// Reads `DIR/unikernel.toml` with the built-in catalogue and checks it.
pub fn load(dir: &Path) -> Result<Config, Report> {
    let path = dir.join(CONFIG_FILE);
    let mut sources = SourceMap::default();
    let text = match crate::input::read_text(&path) {
        Ok(text) => text,
        Err(e) => {
            let help = match e.kind() {
                std::io::ErrorKind::NotFound => format!("run mirage-nix in a unikernel's directory or pass it as DIR; a unikernel needs a `{CONFIG_FILE}` (see docs/config.md)"),
                std::io::ErrorKind::PermissionDenied => "check the file's permissions".to_string(),
                _ => format!(
                    "`{CONFIG_FILE}` must be a regular UTF-8 text file of at most {} MiB",
                    crate::input::MAX_INPUT_BYTES >> 20
                ),
            };
            return Err(Report {
                sources,
                diagnostics: vec![Diagnostic::error(
                    "config-unreadable",
                    None,
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .with_help(help)],
            });
        }
    };
    load_str(dir, &path.display().to_string(), &text, &mut sources)
}

/// Like [`load`], with the unikernel's file given as text (`name` is how messages call it).
pub fn load_str(
    dir: &Path,
    name: &str,
    text: &str,
    sources: &mut SourceMap,
) -> Result<Config, Report> {
    let catalogue = sources.add(CATALOGUE_NAME, CATALOGUE);
    let file = sources.add(name, text);
    let mut loader = Loader {
        sources: std::mem::take(sources),
        diags: Vec::new(),
        targets: BTreeMap::new(),
        signatures: BTreeMap::new(),
        keys: BTreeMap::new(),
        crates: BTreeMap::new(),
        constructors: BTreeMap::new(),
        devices: BTreeMap::new(),
        raw_constructors: Vec::new(),
        raw_keys: Vec::new(),
        rust_exprs: Vec::new(),
        catalogue,
        claimed: Default::default(),
    };
    let cat = loader.parse(catalogue);
    let user = loader.parse(file);
    let main = match (cat, user) {
        (Some(cat), Some(user)) => {
            if cat.unikernel.is_some() {
                loader.diags.push(Diagnostic::error(
                    "internal",
                    None,
                    "the catalogue must not declare [unikernel]",
                ));
            }
            loader.declare(catalogue, cat, true);
            let unikernel = user.unikernel.as_ref().map(|u| (u.span(), ()));
            if !user.targets.is_empty() {
                let (name, _) = user.targets.iter().next().expect("non-empty");
                loader.diags.push(
                    Diagnostic::error("unknown-field", Span::new(file, name.span()), "a unikernel cannot declare targets")
                        .with_help("targets are built into mirage-nix (run `mirage-nix targets`); remove the [targets] table"),
                );
            }
            let raw_main = user.unikernel.map(|u| (u.span(), u.into_inner()));
            loader.declare(
                file,
                raw::File {
                    unikernel: None,
                    targets: BTreeMap::new(),
                    ..user
                },
                false,
            );
            loader.finish_declarations();
            match raw_main {
                Some((span, m)) => loader.main(file, span, m),
                None => {
                    debug_assert!(unikernel.is_none());
                    loader.diags.push(
                        Diagnostic::error("missing-unikernel", Span::new(file, 0..0), "this file has no [unikernel] table")
                            .with_help("start it with [unikernel] and at least `name` and `signature` (see docs/config.md)"),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let Loader {
        sources: loaded,
        diags,
        targets,
        signatures,
        keys,
        crates,
        constructors,
        devices,
        ..
    } = loader;
    match main {
        Some(main) if diags.is_empty() => Ok(Config {
            sources: loaded,
            file,
            dir: dir.to_path_buf(),
            main,
            targets,
            signatures,
            keys,
            crates,
            constructors,
            devices,
        }),
        _ => Err(Report {
            sources: loaded,
            diagnostics: if diags.is_empty() {
                vec![Diagnostic::error(
                    "internal",
                    None,
                    "configuration rejected without a reason; this is a bug",
                )]
            } else {
                diags
            },
        }),
    }
}

struct Loader {
    sources: SourceMap,
    diags: Vec<Diagnostic>,
    targets: BTreeMap<String, Target>,
    signatures: BTreeMap<String, Signature>,
    keys: BTreeMap<String, Key>,
    crates: BTreeMap<String, Crate>,
    constructors: BTreeMap<String, Constructor>,
    devices: BTreeMap<String, NamedDevice>,
    raw_constructors: Vec<(FileId, S, toml::Spanned<raw::Constructor>)>,
    raw_keys: Vec<(FileId, S, toml::Spanned<raw::Key>)>,
    /// Connect code with stand-ins, to check as Rust expressions all at once.
    rust_exprs: Vec<(Span, String)>,
    /// The built-in catalogue's file.
    catalogue: FileId,
    /// Names claimed so far, by namespace and normalised name: the name as declared and where.
    claimed: std::collections::HashMap<(Namespace, String), (String, Span)>,
}

/// The namespaces in which names must be unique, each up to its own normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Namespace {
    /// Constructors and named devices: one namespace.
    Device,
    /// Keys, as flags (`-` and `_` are one).
    Flag,
    /// Short flags.
    Short,
    /// Crates, as Rust names (`-` and `_` are one).
    Crate,
}

impl Loader {
    /// Claims `name` (normalised as `id`) in a namespace at `span`, or returns who has it.
    fn claim(
        &mut self,
        ns: Namespace,
        id: String,
        name: &str,
        span: Span,
    ) -> Option<(String, Span)> {
        match self.claimed.entry((ns, id)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((name.to_string(), span));
                None
            }
        }
    }

    /// Who has claimed `id` in a namespace, if anyone.
    fn claimant(&self, ns: Namespace, id: &str) -> Option<&(String, Span)> {
        self.claimed.get(&(ns, id.to_string()))
    }

    /// Whether `file` is the built-in catalogue.
    fn is_catalogue(&self, file: FileId) -> bool {
        file == self.catalogue
    }

    fn span(&self, file: FileId, s: &S) -> Span {
        Span::new(file, s.span())
    }

    /// Keeps a checked value, or records why it was rejected.
    fn keep<T>(&mut self, r: Result<T, Diagnostic>) -> Option<T> {
        r.map_err(|d| self.diags.push(d)).ok()
    }
}
