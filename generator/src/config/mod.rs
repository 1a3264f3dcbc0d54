//! Stage 1: the configuration, read and checked.
//!
//! A unikernel's `unikernel.toml` is read together with the built-in catalogue
//! (`generator/catalogue.toml`, written in the same language) into one [`Config`]: the targets,
//! signatures, keys, crates, constructors and named devices, plus the unikernel's `main`.
//! Everything that can be checked locally is checked here (names, types of keys and
//! parameters, templates, choice cases); the graph stage checks how devices fit together.

mod expr;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use expr::{Expr, Literal};

use crate::diag::{did_you_mean, Diagnostic, FileId, Report, SourceMap, Span};
use crate::key::{self, Default_, Key, KeyType, KeyValue, Stage};
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

/// Options that every command taking keys already uses, so no key may be called this.
pub const RESERVED_FLAGS: &[&str] = &[
    "help",
    "dot",
    "eval",
    "no-eval",
    "json",
    "check",
    "all-targets",
    "output",
    "version",
    "quiet",
    "dry-run",
    "mem",
    "disk",
    "tap",
    "xen",
    "verbose",
    "image",
];

/// A target an image can be built for.
#[derive(Clone, Debug)]
pub struct Target {
    /// The target's name (`unix`, `xen`, ...).
    pub name: String,
    /// What it is.
    pub doc: String,
    /// The runtime crate providing `main!` and the base devices.
    pub runtime: String,
    /// Whether images link `std`.
    pub std: bool,
    /// The image file name pattern (`{name}.xen`).
    pub image: String,
    /// The image format.
    pub format: String,
    /// Extra rustc flags, with `{runtime}` for the runtime crate's folder.
    pub rustflags: Vec<String>,
}

/// A device signature (Functoria's `typ`).
#[derive(Clone, Debug)]
pub struct Signature {
    /// Its name.
    pub name: String,
    /// The Rust trait implementing devices provide.
    pub trait_path: String,
    /// What it stands for.
    pub doc: String,
    /// Where it was declared.
    pub span: Span,
}

/// Where a crate's source comes from, as recorded in plans.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CrateSource {
    /// A folder of the mirage-nix tree (`runtime/unix`), relative to its root.
    Mirage(String),
    /// A folder relative to the unikernel's directory.
    Local(String),
    /// A version requirement on crates.io.
    Registry(String),
}

/// A crate implementations come from.
#[derive(Clone, Debug)]
pub struct Crate {
    /// The package name.
    pub name: String,
    /// Where it comes from.
    pub source: CrateSource,
    /// Where it was declared.
    pub span: Span,
}

/// The type of a constructor parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// A value: `string`, `int` or `bool`.
    Value(&'static str),
    /// A device of a signature.
    Device(String),
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamType::Value(v) => f.write_str(v),
            ParamType::Device(s) => f.write_str(s),
        }
    }
}

/// A constructor parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name, used in templates and choice bodies.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
}

/// One implementation of a constructor.
#[derive(Clone, Debug)]
pub struct Impl {
    /// The targets it exists on; `None` for all.
    pub targets: Option<Vec<String>>,
    /// The crate it comes from.
    pub crate_name: String,
    /// Features of that crate it needs.
    pub features: Vec<String>,
    /// The connect code template (Tera syntax over parameters, `keys`, `deps`, `embed`, `id`).
    pub connect: String,
    /// Whether the connect code returns a `Result`.
    pub fallible: bool,
    /// The string parameter naming a folder to embed into the image.
    pub embed: Option<String>,
    /// The Solo5 manifest entry it needs: its kind and a template of its name.
    pub manifest: Option<(ManifestKind, String)>,
    /// The disk image the build makes for it: its format and the string parameter naming the
    /// folder.
    pub disk: Option<(crate::plan::DiskFormat, String)>,
    /// Where it was declared.
    pub span: Span,
}

/// The kinds of Solo5 devices.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum ManifestKind {
    /// A network interface (`NET_BASIC`).
    #[serde(rename = "NET_BASIC")]
    Net,
    /// A block device (`BLOCK_BASIC`).
    #[serde(rename = "BLOCK_BASIC")]
    Block,
}

impl Impl {
    /// Whether this implementation exists on `target`.
    pub fn supports(&self, target: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| t == target))
    }
}

/// One case of a choice: when every key test holds, use the expression.
#[derive(Clone, Debug)]
pub struct Case {
    /// Key tests (key name and value); empty for the default case.
    pub when: Vec<(String, KeyValue)>,
    /// The expression chosen.
    pub use_: Expr,
    /// Where the case was declared.
    pub span: Span,
}

/// What a constructor does.
#[derive(Clone, Debug)]
pub enum Body {
    /// It is a device, with implementations per target.
    Impls {
        /// The implementations.
        impls: Vec<Impl>,
        /// Why it is missing on some targets, and what to use instead.
        unavailable: BTreeMap<String, String>,
    },
    /// It chooses between expressions by key values (Functoria's `match_impl`).
    Choose(Vec<Case>),
}

/// A constructor (Functoria's `impl`): something that builds a device of a signature.
#[derive(Clone, Debug)]
pub struct Constructor {
    /// Its name.
    pub name: String,
    /// What it builds.
    pub doc: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
    /// The signature of what it builds.
    pub signature: String,
    /// Keys it reads.
    pub keys: Vec<String>,
    /// Devices it needs started first.
    pub deps: Vec<Expr>,
    /// Devices local to its body, by name.
    pub lets: BTreeMap<String, Expr>,
    /// A device or a choice.
    pub body: Body,
    /// Where it was declared.
    pub span: Span,
}

impl Constructor {
    /// The constructor's type as shown in messages: `generic_kv_ro(dir: string) -> kv_ro`.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect();
        format!("{}({}) -> {}", self.name, params.join(", "), self.signature)
    }
}

/// The unikernel's entry point: Functoria's `main`.
#[derive(Clone, Debug)]
pub struct Main {
    /// The image name.
    pub name: String,
    /// The unikernel's crate.
    pub crate_name: String,
    /// Its folder relative to the config.
    pub path: String,
    /// The entry function path.
    pub start: String,
    /// The signatures of `start`'s device arguments, with their spans.
    pub signature: Vec<(String, Span)>,
    /// The devices passed to `start`.
    pub args: Vec<Expr>,
    /// Devices started first but not passed.
    pub deps: Vec<Expr>,
    /// Keys passed to `start` after the devices.
    pub keys: Vec<(String, Span)>,
    /// The log reporter, if any.
    pub reporter: Option<Expr>,
    /// Where `[unikernel]` is.
    pub span: Span,
}

/// A named device.
#[derive(Clone, Debug)]
pub struct NamedDevice {
    /// The name.
    pub name: String,
    /// Its expression.
    pub expr: Expr,
    /// Where the name was declared.
    pub span: Span,
}

/// A whole, checked configuration: the catalogue plus one unikernel.
#[derive(Clone, Debug)]
pub struct Config {
    /// The files read.
    pub sources: SourceMap,
    /// The unikernel's own file.
    pub file: FileId,
    /// The unikernel's directory.
    pub dir: PathBuf,
    /// `main`.
    pub main: Main,
    /// Targets by name.
    pub targets: BTreeMap<String, Target>,
    /// Signatures by name.
    pub signatures: BTreeMap<String, Signature>,
    /// Keys by name.
    pub keys: BTreeMap<String, Key>,
    /// Crates by name.
    pub crates: BTreeMap<String, Crate>,
    /// Constructors by name.
    pub constructors: BTreeMap<String, Constructor>,
    /// Named devices by name.
    pub devices: BTreeMap<String, NamedDevice>,
}

impl Config {
    /// `file:line:col` of a span, with the unikernel's file named by its bare file name
    /// (so plans never contain machine paths).
    pub fn origin(&self, span: Span) -> String {
        let mut loc = self.sources.location(span);
        if span.file == self.file {
            loc.file = CONFIG_FILE.to_string();
        }
        loc.to_string()
    }
}

/// Reads `DIR/unikernel.toml` with the built-in catalogue and checks it.
pub fn load(dir: &Path) -> Result<Config, Report> {
    let path = dir.join(CONFIG_FILE);
    let mut sources = SourceMap::default();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            let help = if e.kind() == std::io::ErrorKind::NotFound {
                format!("run mirage-nix in a unikernel's directory or pass it as DIR; a unikernel needs a `{CONFIG_FILE}` (see docs/config.md)")
            } else {
                "check the file's permissions".to_string()
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
}

/// Maps each byte of a TOML string's value to its offset inside the quotes of its source
/// `raw`, following escapes; `None` for multi-line strings or anything unexpected.
fn source_offsets(raw: &str, value: &str) -> expr::OffsetMap {
    let literal = raw.starts_with('\'') && !raw.starts_with("'''");
    let basic = raw.starts_with('"') && !raw.starts_with("\"\"\"");
    if !(literal || basic) || raw.len() < 2 {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    if literal {
        return (inner == value).then(|| (0..=value.len()).collect());
    }
    let mut map = Vec::with_capacity(value.len() + 1);
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let (len, decoded) = if bytes[i] == b'\\' {
            let esc = *bytes.get(i + 1)?;
            let (len, c) = match esc {
                b'"' => (2, '"'),
                b'\\' => (2, '\\'),
                b'n' => (2, '\n'),
                b't' => (2, '\t'),
                b'r' => (2, '\r'),
                b'b' => (2, '\u{8}'),
                b'f' => (2, '\u{c}'),
                b'e' => (2, '\u{1b}'),
                b'u' | b'U' => {
                    let n = if esc == b'u' { 4 } else { 8 };
                    let hex = inner.get(i + 2..i + 2 + n)?;
                    (2 + n, char::from_u32(u32::from_str_radix(hex, 16).ok()?)?)
                }
                _ => return None,
            };
            (len, c.len_utf8())
        } else {
            let c = inner[i..].chars().next()?;
            (c.len_utf8(), c.len_utf8())
        };
        for _ in 0..decoded {
            map.push(i);
        }
        i += len;
    }
    map.push(inner.len());
    (map.len() == value.len() + 1).then_some(map)
}

/// `name` if `map` declares it, else an `unknown-<what>` diagnostic suggesting the closest name.
fn known<T>(
    map: &BTreeMap<String, T>,
    name: &str,
    what: &str,
    span: Span,
    help: String,
) -> Result<String, Diagnostic> {
    if map.contains_key(name) {
        return Ok(name.to_string());
    }
    let code = match what {
        "signature" => "unknown-signature",
        "key" => "unknown-key",
        "crate" => "unknown-crate",
        "target" => "unknown-target",
        other => unreachable!("no diagnostic code for an unknown {other}"),
    };
    let hint = did_you_mean(name, map.keys().map(String::as_str));
    Err(Diagnostic::error(code, span, format!("unknown {what} `{name}`{hint}")).with_help(help))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn valid_key_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Loader {
    fn span(&self, file: FileId, s: &S) -> Span {
        Span::new(file, s.span())
    }

    fn parse(&mut self, file: FileId) -> Option<raw::File> {
        match toml::from_str::<raw::File>(self.sources.text(file)) {
            Ok(f) => Some(f),
            Err(e) => {
                let span = e.span().map(|r| Span::new(file, r));
                let message = e.message().trim().to_string();
                let help = if message.contains("unknown field") {
                    "remove or rename the field; docs/config.md lists every field of every table"
                } else if message.contains("missing field") {
                    "add the field; docs/config.md lists what each table needs"
                } else {
                    "fix the TOML syntax; see docs/config.md for the shape of unikernel.toml"
                };
                self.diags
                    .push(Diagnostic::error("toml", span, message).with_help(help));
                None
            }
        }
    }

    /// Whether `name` is already declared in any namespace of constructors and devices.
    fn name_taken(&self, name: &str) -> Option<Span> {
        self.constructors
            .get(name)
            .map(|c| c.span)
            .or_else(|| self.devices.get(name).map(|d| d.span))
            .or_else(|| {
                self.raw_constructors
                    .iter()
                    .find(|(_, n, _)| n.get_ref() == name)
                    .map(|(f, n, _)| Span::new(*f, n.span()))
            })
    }

    /// Whether `name` can name a new constructor or device (`what`): well formed and not yet
    /// taken in their shared namespace; reports why not.
    fn fresh_name(&mut self, what: &str, name: &str, span: Span) -> bool {
        if let Some(prev) = self.name_taken(name) {
            self.duplicate(what, name, span, prev);
            return false;
        }
        if !valid_name(name) {
            self.diags.push(
                Diagnostic::error(
                    "bad-name",
                    span,
                    format!("`{name}` is not a valid {what} name"),
                )
                .with_help("use lower-case letters, digits and `_`, starting with a letter"),
            );
            return false;
        }
        true
    }

    fn duplicate(&mut self, what: &str, name: &str, span: Span, previous: Span) {
        self.diags.push(
            Diagnostic::error("duplicate-name", span, format!("{what} `{name}` is declared twice"))
                .with_note(previous, "first declared here")
                .with_help(format!("rename one of them; names of constructors and named devices share one namespace, and `{name}` may be built in (run `mirage-nix catalogue`)")),
        );
    }

    fn declare(&mut self, file: FileId, f: raw::File, builtin: bool) {
        for (name, t) in f.targets {
            let t = t.into_inner();
            self.targets.insert(
                name.get_ref().clone(),
                Target {
                    name: name.into_inner(),
                    doc: t.doc.into_inner(),
                    runtime: t.runtime.into_inner(),
                    std: t.std,
                    image: t.image.into_inner(),
                    format: t.format.into_inner(),
                    rustflags: t.rustflags.into_iter().map(|f| f.into_inner()).collect(),
                },
            );
        }
        for (name, s) in f.signatures {
            let span = self.span(file, &name);
            if let Some(prev) = self.signatures.get(name.get_ref()) {
                let prev = prev.span;
                self.duplicate("signature", name.get_ref(), span, prev);
                continue;
            }
            if !valid_name(name.get_ref()) || name.get_ref() == JOB {
                self.diags.push(Diagnostic::error("bad-name", span, format!("`{}` is not a valid signature name", name.get_ref()))
                    .with_help("use lower-case letters, digits and `_`, starting with a letter; `job` is reserved for main"));
                continue;
            }
            let s = s.into_inner();
            self.signatures.insert(
                name.get_ref().clone(),
                Signature {
                    name: name.into_inner(),
                    trait_path: s.trait_path.into_inner(),
                    doc: s.doc.map(|d| d.into_inner()).unwrap_or_default(),
                    span,
                },
            );
        }
        for (name, c) in f.crates {
            let span = self.span(file, &name);
            if let Some(prev) = self.crates.get(name.get_ref()) {
                let prev = prev.span;
                self.duplicate("crate", name.get_ref(), span, prev);
                continue;
            }
            let c = c.into_inner();
            let source = match (c.path, c.version) {
                (Some(p), None) if builtin => CrateSource::Mirage(p.into_inner()),
                (Some(p), None) => {
                    let path = p.get_ref();
                    if Path::new(path).is_absolute() {
                        self.diags.push(Diagnostic::error("absolute-path", self.span(file, &p), format!("crate path `{path}` is absolute"))
                            .with_help("give the path relative to the unikernel's directory, so plans stay machine-independent"));
                        continue;
                    }
                    CrateSource::Local(p.into_inner())
                }
                (None, Some(v)) => CrateSource::Registry(v.into_inner()),
                _ => {
                    self.diags.push(Diagnostic::error("bad-crate", span, format!("crate `{}` needs exactly one of `path` or `version`", name.get_ref()))
                        .with_help("write `path = \"my_device\"` for a local crate or `version = \"1.2\"` for one on crates.io"));
                    continue;
                }
            };
            self.crates.insert(
                name.get_ref().clone(),
                Crate {
                    name: name.into_inner(),
                    source,
                    span,
                },
            );
        }
        for (name, k) in f.keys {
            self.raw_keys.push((file, name, k));
        }
        for (name, c) in f.constructors {
            let span = self.span(file, &name);
            if self.fresh_name("constructor", name.get_ref(), span) {
                self.raw_constructors.push((file, name, c));
            }
        }
        for (name, e) in f.devices {
            let span = self.span(file, &name);
            if !self.fresh_name("device", name.get_ref(), span) {
                continue;
            }
            if let Some(expr) = self.expr(file, &e) {
                self.devices.insert(
                    name.get_ref().clone(),
                    NamedDevice {
                        name: name.into_inner(),
                        expr,
                        span,
                    },
                );
            }
        }
    }

    /// Checks keys and constructors once every name is known.
    fn finish_declarations(&mut self) {
        for (file, name, k) in std::mem::take(&mut self.raw_keys) {
            self.key(file, name, k);
        }
        for (file, name, c) in std::mem::take(&mut self.raw_constructors) {
            if let Some(c) = self.constructor(file, name, c) {
                self.constructors.insert(c.name.clone(), c);
            }
        }
    }

    fn expr(&mut self, file: FileId, s: &S) -> Option<Expr> {
        let range = s.span();
        let raw = &self.sources.text(file)[range.clone()];
        let offsets = source_offsets(raw, s.get_ref());
        let base = match offsets {
            Some(_) => Span::new(file, range.start + 1..range.end - 1),
            None => Span::new(file, range),
        };
        match expr::parse(s.get_ref(), base, &offsets) {
            Ok(e) => Some(e),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn key(&mut self, file: FileId, name: S, k: toml::Spanned<raw::Key>) {
        let span = self.span(file, &name);
        let key_name = name.get_ref().clone();
        if let Some(prev) = self.keys.get(&key_name) {
            let prev = prev.span;
            self.duplicate("key", &key_name, span, prev);
            return;
        }
        if !valid_key_name(&key_name) || RESERVED_FLAGS.contains(&key_name.as_str()) {
            self.diags.push(Diagnostic::error("bad-name", span, format!("`{key_name}` cannot be a key name"))
                .with_help(format!("key names are flags: lower-case letters, digits, `_` and `-`, starting with a letter, and not one of {}", RESERVED_FLAGS.join(", "))));
            return;
        }
        let k = k.into_inner();
        let words = k
            .values
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default();
        let ty = match KeyType::from_name(k.ty.get_ref(), &words) {
            Some(ty) => ty,
            None if k.ty.get_ref() == "enum" => {
                self.diags.push(
                    Diagnostic::error(
                        "bad-key",
                        span,
                        format!("enum key `{key_name}` lists no values"),
                    )
                    .with_help("add `values = [\"a\", \"b\"]`"),
                );
                return;
            }
            None => {
                let other = k.ty.get_ref();
                let types = [
                    "bool",
                    "int",
                    "string",
                    "enum",
                    "ipv4-address",
                    "ipv4-prefix",
                ];
                self.diags.push(
                    Diagnostic::error(
                        "bad-key",
                        self.span(file, &k.ty),
                        format!("unknown key type `{other}`{}", did_you_mean(other, types)),
                    )
                    .with_help(format!("a key's type is one of {}", types.join(", "))),
                );
                return;
            }
        };
        if k.values.is_some() && !matches!(ty, KeyType::Enum(_)) {
            self.diags.push(
                Diagnostic::error(
                    "bad-key",
                    span,
                    format!("key `{key_name}` has `values` but is not an enum"),
                )
                .with_help("remove `values`, or set `type = \"enum\"`"),
            );
            return;
        }
        let stage = match k.stage.get_ref().as_str() {
            "configure" => Stage::Configure,
            "runtime" => Stage::Runtime,
            other => {
                self.diags.push(Diagnostic::error("bad-key", self.span(file, &k.stage), format!("unknown stage `{other}`"))
                    .with_help("a key's stage is `configure` (fixed in the plan) or `runtime` (parsed at boot)"));
                return;
            }
        };
        let default = match k.default {
            None => Default_::Unset,
            Some(d) => {
                let dspan = Span::new(file, d.span());
                let check = |v: &toml::Value| ty.from_toml(v);
                match d.into_inner() {
                    toml::Value::Table(t) => {
                        let mut per = BTreeMap::new();
                        for (target, v) in t {
                            if target != "_" && !self.targets.contains_key(&target) {
                                self.diags.push(Diagnostic::error("unknown-target", dspan, format!("default for unknown target `{target}`{}", did_you_mean(&target, self.targets.keys().map(String::as_str))))
                                    .with_help("per-target defaults are keyed by target name, with `_` for the others"));
                                return;
                            }
                            match check(&v) {
                                Ok(v) => {
                                    per.insert(target, v);
                                }
                                Err(e) => {
                                    self.diags.push(
                                        Diagnostic::error(
                                            "bad-default",
                                            dspan,
                                            format!(
                                            "bad default for key `{key_name}` on `{target}`: {e}"
                                        ),
                                        )
                                        .with_help(
                                            format!("give a default that is {}", ty.expected()),
                                        ),
                                    );
                                    return;
                                }
                            }
                        }
                        if !per.contains_key("_") {
                            self.diags.push(Diagnostic::error("bad-default", dspan, format!("per-target defaults of key `{key_name}` have no `_` fallback"))
                                .with_help("add `_ = ...` for the targets not listed"));
                            return;
                        }
                        Default_::PerTarget(per)
                    }
                    v => match check(&v) {
                        Ok(v) => Default_::Value(v),
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::error(
                                    "bad-default",
                                    dspan,
                                    format!("bad default for key `{key_name}`: {e}"),
                                )
                                .with_help(format!("give a default that is {}", ty.expected())),
                            );
                            return;
                        }
                    },
                }
            }
        };
        if matches!(default, Default_::Unset)
            && !matches!(ty, KeyType::Ipv4Address | KeyType::Ipv4Prefix)
        {
            self.diags.push(Diagnostic::error("bad-default", span, format!("key `{key_name}` has no default"))
                .with_help(format!("add `default = ...`: only address keys may be unset ({} keys always have a value)", ty.name())));
            return;
        }
        let short = match k.short {
            None => None,
            Some(s) => {
                let mut cs = s.get_ref().chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) if c.is_ascii_alphabetic() && c != 'h' && c != 'o' => Some(c),
                    _ => {
                        self.diags.push(
                            Diagnostic::error(
                                "bad-key",
                                self.span(file, &s),
                                "`short` must be one letter other than h and o",
                            )
                            .with_help("write e.g. `short = \"l\"`"),
                        );
                        return;
                    }
                }
            }
        };
        self.keys.insert(
            key_name.clone(),
            Key {
                name: key_name,
                ty,
                default,
                stage,
                doc: k.doc.into_inner(),
                short,
                span,
            },
        );
    }

    fn param(&mut self, file: FileId, p: &S) -> Option<Param> {
        let span = self.span(file, p);
        let Some((name, ty)) = p.get_ref().split_once(':') else {
            self.diags.push(
                Diagnostic::error(
                    "bad-param",
                    span,
                    format!("parameter `{}` has no type", p.get_ref()),
                )
                .with_help(
                    "write parameters as \"name: type\", e.g. \"dir: string\" or \"net: network\"",
                ),
            );
            return None;
        };
        let (name, ty) = (name.trim(), ty.trim());
        if !valid_name(name) {
            self.diags.push(Diagnostic::error(
                "bad-param",
                span,
                format!("`{name}` is not a valid parameter name"),
            ));
            return None;
        }
        let ty = match ty {
            "string" => ParamType::Value("string"),
            "int" => ParamType::Value("int"),
            "bool" => ParamType::Value("bool"),
            sig if self.signatures.contains_key(sig) => ParamType::Device(sig.to_string()),
            other => {
                let mut known: Vec<&str> = self.signatures.keys().map(String::as_str).collect();
                known.extend(["string", "int", "bool"]);
                self.diags.push(Diagnostic::error("unknown-signature", span, format!("unknown parameter type `{other}`{}", did_you_mean(other, known)))
                    .with_help("a parameter is a value (string, int, bool) or a device of a declared signature"));
                return None;
            }
        };
        Some(Param {
            name: name.to_string(),
            ty,
        })
    }

    /// Keeps a checked value, or records why it was rejected.
    fn keep<T>(&mut self, r: Result<T, Diagnostic>) -> Option<T> {
        r.map_err(|d| self.diags.push(d)).ok()
    }

    fn signature_name(&mut self, file: FileId, s: &S) -> Option<String> {
        let help = "use a built-in signature (run `mirage-nix catalogue`) or declare it under [signatures]";
        let r = known(
            &self.signatures,
            s.get_ref().trim(),
            "signature",
            self.span(file, s),
            help.into(),
        );
        self.keep(r)
    }

    fn known_key(&mut self, file: FileId, k: &S) -> Option<String> {
        let help = "declare it under [keys.NAME] with a type, default, stage and doc";
        let r = known(
            &self.keys,
            k.get_ref(),
            "key",
            self.span(file, k),
            help.into(),
        );
        self.keep(r)
    }

    fn crate_name(&mut self, file: FileId, c: &S) -> Option<String> {
        let help = "declare it under [crates.NAME] with `path` or `version`";
        let r = known(
            &self.crates,
            c.get_ref(),
            "crate",
            self.span(file, c),
            help.into(),
        );
        self.keep(r)
    }

    fn targets_of(&mut self, file: FileId, ts: &Option<Vec<S>>) -> Option<Option<Vec<String>>> {
        let Some(ts) = ts else { return Some(None) };
        let help = format!(
            "targets are {}",
            self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        let r: Result<Vec<String>, Diagnostic> = ts
            .iter()
            .map(|t| {
                known(
                    &self.targets,
                    t.get_ref(),
                    "target",
                    self.span(file, t),
                    help.clone(),
                )
            })
            .collect();
        self.keep(r).map(Some)
    }

    fn implementation(
        &mut self,
        file: FileId,
        span: Span,
        params: &[Param],
        keys: &[String],
        i: &raw::Impl,
    ) -> Option<Impl> {
        let raw::Impl {
            crate_name,
            features,
            connect,
            fallible,
            embed,
            targets,
            manifest,
            disk,
        } = i;
        let fallible = *fallible;
        let crate_name = self.crate_name(file, crate_name)?;
        let targets = self.targets_of(file, targets)?;
        let embed = match embed {
            None => None,
            Some(e) => {
                if !params
                    .iter()
                    .any(|p| p.name == *e.get_ref() && p.ty == ParamType::Value("string"))
                {
                    self.diags.push(Diagnostic::error("bad-embed", self.span(file, e), format!("`embed` names `{}`, which is not a string parameter", e.get_ref()))
                        .with_help("`embed` names the string parameter holding the folder to embed, e.g. `embed = \"dir\"`"));
                    return None;
                }
                Some(e.get_ref().clone())
            }
        };
        if let Err(message) =
            crate::template::check_connect(connect.get_ref(), params, keys, embed.is_some())
        {
            self.diags.push(Diagnostic::error("bad-template", self.span(file, connect), message)
                .with_help("connect code is a Rust expression with {{ param }}, {{ keys.NAME }}, {{ deps[i] }}, {{ embed }} and {{ id }} placeholders"));
            return None;
        }
        let manifest = match manifest {
            None => None,
            Some(m) => {
                let kind = match m.kind.get_ref().as_str() {
                    "net" => ManifestKind::Net,
                    "block" => ManifestKind::Block,
                    other => {
                        self.diags.push(Diagnostic::error("bad-manifest", self.span(file, &m.kind), format!("unknown Solo5 device kind `{other}`"))
                            .with_help("a manifest entry is `{ kind = \"net\" | \"block\", name = \"{{ name }}\" }`"));
                        return None;
                    }
                };
                if let Err(message) =
                    crate::template::check_connect(m.name.get_ref(), params, keys, false)
                {
                    self.diags.push(Diagnostic::error("bad-template", self.span(file, &m.name), message)
                        .with_help("the manifest name is a template over the constructor's parameters, e.g. `{{ name }}`"));
                    return None;
                }
                Some((kind, m.name.get_ref().clone()))
            }
        };
        let disk = match disk {
            None => None,
            Some(d) => {
                let format = match d.format.get_ref().as_str() {
                    "tar" => crate::plan::DiskFormat::Tar,
                    "fat" => crate::plan::DiskFormat::Fat,
                    other => {
                        self.diags.push(
                            Diagnostic::error(
                                "bad-disk",
                                self.span(file, &d.format),
                                format!("unknown disk format `{other}`"),
                            )
                            .with_help(
                                "a disk is `{ format = \"tar\" | \"fat\", dir = \"PARAM\" }`",
                            ),
                        );
                        return None;
                    }
                };
                if !params
                    .iter()
                    .any(|p| p.name == *d.dir.get_ref() && p.ty == ParamType::Value("string"))
                {
                    self.diags.push(Diagnostic::error("bad-disk", self.span(file, &d.dir), format!("`dir` names `{}`, which is not a string parameter", d.dir.get_ref()))
                        .with_help("`dir` names the string parameter holding the folder the disk is made of, e.g. `dir = \"dir\"`"));
                    return None;
                }
                Some((format, d.dir.get_ref().clone()))
            }
        };
        Some(Impl {
            targets,
            crate_name,
            manifest,
            disk,
            features: features.iter().map(|f| f.get_ref().clone()).collect(),
            connect: connect.get_ref().clone(),
            fallible,
            embed,
            span,
        })
    }

    fn constructor(
        &mut self,
        file: FileId,
        name: S,
        c: toml::Spanned<raw::Constructor>,
    ) -> Option<Constructor> {
        let span = self.span(file, &name);
        let c = c.into_inner();
        let before = self.diags.len();
        let params: Vec<Param> = c
            .params
            .iter()
            .filter_map(|p| self.param(file, p))
            .collect();
        for (i, p) in params.iter().enumerate() {
            if params[..i].iter().any(|q| q.name == p.name) {
                self.diags.push(Diagnostic::error(
                    "duplicate-name",
                    span,
                    format!(
                        "constructor `{}` has two parameters named `{}`",
                        name.get_ref(),
                        p.name
                    ),
                ));
            }
        }
        let signature = self.signature_name(file, &c.signature);
        let keys: Vec<String> = c
            .keys
            .iter()
            .filter_map(|k| self.known_key(file, k))
            .collect();
        let deps: Vec<Expr> = c.deps.iter().filter_map(|d| self.expr(file, d)).collect();
        let mut lets = BTreeMap::new();
        for (n, e) in &c.lets {
            if !valid_name(n.get_ref()) || params.iter().any(|p| p.name == *n.get_ref()) {
                self.diags.push(Diagnostic::error("bad-name", self.span(file, n), format!("`{}` cannot name a local device here", n.get_ref()))
                    .with_help("local devices need a lower-case name that no parameter of the constructor has"));
            } else if let Some(e) = self.expr(file, e) {
                lets.insert(n.get_ref().clone(), e);
            }
        }
        let inline = c.connect.is_some() || c.crate_name.is_some();
        let body = match (c.choose, inline, c.impls.is_empty()) {
            (Some(cases), false, true) => {
                let mut out = Vec::new();
                for case in cases {
                    let cspan = Span::new(file, case.span());
                    let case = case.into_inner();
                    let mut when = Vec::new();
                    if let Some(w) = &case.when {
                        let wspan = Span::new(file, w.span());
                        for (k, v) in w.get_ref() {
                            let Some(key) = self.keys.get(k) else {
                                self.diags.push(Diagnostic::error("unknown-key", wspan, format!("unknown key `{k}` in `when`{}", did_you_mean(k, self.keys.keys().map(String::as_str))))
                                    .with_help("a case tests declared keys, e.g. `when = { kv_ro = \"crunch\" }`"));
                                continue;
                            };
                            if key.stage != Stage::Configure {
                                self.diags.push(Diagnostic::error("runtime-key-choice", wspan, format!("key `{k}` is a runtime key, so it cannot choose devices"))
                                    .with_help(format!("declare `{k}` with `stage = \"configure\"`, or choose in the unikernel's code at run time")));
                                continue;
                            }
                            match key.ty.from_toml(v) {
                                Ok(v) => when.push((k.clone(), v)),
                                Err(e) => self.diags.push(Diagnostic::error(
                                    "bad-case",
                                    wspan,
                                    format!("`when` tests key `{k}`: {e}"),
                                )),
                            }
                        }
                        if w.get_ref().is_empty() {
                            self.diags.push(
                                Diagnostic::error(
                                    "bad-case",
                                    wspan,
                                    "an empty `when` always holds",
                                )
                                .with_help("remove `when` to make this the default case"),
                            );
                        }
                    }
                    if let Some(use_) = self.expr(file, &case.use_) {
                        out.push(Case {
                            when,
                            use_,
                            span: cspan,
                        });
                    }
                }
                let defaults = out.iter().filter(|c| c.when.is_empty()).count();
                if defaults != 1 || out.last().is_some_and(|c| !c.when.is_empty()) {
                    self.diags.push(Diagnostic::error("bad-choice", span, format!("the choice `{}` needs exactly one default case, last", name.get_ref()))
                        .with_help("end `choose` with a case that has no `when`, e.g. `{ use = \"crunch(dir)\" }`"));
                }
                Body::Choose(out)
            }
            (None, _, _) if inline || !c.impls.is_empty() || !c.unavailable.is_empty() => {
                let mut impls = Vec::new();
                if inline {
                    match (&c.crate_name, &c.connect) {
                        (Some(cr), Some(connect)) => {
                            let shorthand = raw::Impl {
                                crate_name: cr.clone(),
                                features: c.features.clone(),
                                connect: connect.clone(),
                                fallible: c.fallible.unwrap_or(false),
                                embed: c.embed.clone(),
                                targets: c.targets.clone(),
                                manifest: c.manifest.clone(),
                                disk: c.disk.clone(),
                            };
                            if let Some(i) = self.implementation(file, span, &params, &keys, &shorthand) {
                                impls.push(i);
                            }
                        }
                        _ => self.diags.push(Diagnostic::error("bad-constructor", span, format!("constructor `{}` needs both `crate` and `connect`", name.get_ref()))
                            .with_help("`crate` names where the code lives and `connect` is the Rust expression that builds the device")),
                    }
                }
                for i in &c.impls {
                    let ispan = Span::new(file, i.span());
                    let i = i.get_ref();
                    if let Some(i) = self.implementation(file, ispan, &params, &keys, i) {
                        impls.push(i);
                    }
                }
                let mut unavailable = BTreeMap::new();
                for (t, why) in &c.unavailable {
                    if self.targets_of(file, &Some(vec![t.clone()])).is_some() {
                        unavailable.insert(t.get_ref().clone(), why.get_ref().clone());
                    }
                }
                Body::Impls { impls, unavailable }
            }
            _ => {
                self.diags.push(Diagnostic::error("bad-constructor", span, format!("constructor `{}` must either `choose` or give implementations, not both or neither", name.get_ref()))
                    .with_help("write `crate` and `connect` (or [[constructors.NAME.impl]] tables) for a device, or `choose = [...]` for a choice"));
                return None;
            }
        };
        let signature = signature?;
        if self.diags.len() > before {
            return None;
        }
        Some(Constructor {
            name: name.into_inner(),
            doc: c.doc.map(|d| d.into_inner()).unwrap_or_default(),
            params,
            signature,
            keys,
            deps,
            lets,
            body,
            span,
        })
    }

    fn main(
        &mut self,
        file: FileId,
        span: std::ops::Range<usize>,
        m: raw::Unikernel,
    ) -> Option<Main> {
        let span = Span::new(file, span);
        let before = self.diags.len();
        let name = m.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.diags.push(
                Diagnostic::error(
                    "bad-name",
                    self.span(file, &m.name),
                    format!("`{name}` is not a valid unikernel name"),
                )
                .with_help(
                    "use letters, digits, `_` and `-`: the name becomes the image file name",
                ),
            );
        }
        let crate_name = m
            .crate_name
            .as_ref()
            .map_or(name.replace('-', "_"), |c| c.get_ref().clone());
        let path = m.path.map_or(".".to_string(), |p| p.into_inner());
        let start = m
            .start
            .map_or(format!("{}::start", crate_name.replace('-', "_")), |s| {
                s.into_inner()
            });
        let sig_text = m.signature.get_ref();
        let sig_span = self.span(file, &m.signature);
        let exact = self.sources.text(file)[sig_span.start as usize..sig_span.end as usize].len()
            == sig_text.len() + 2;
        let mut signature = Vec::new();
        let mut offset = 0;
        for part in sig_text.split("->") {
            let trimmed = part.trim();
            let lead = part.len() - part.trim_start().len();
            let part_span = if exact {
                sig_span.sub(1 + offset + lead, trimmed.len())
            } else {
                sig_span
            };
            offset += part.len() + 2;
            signature.push((trimmed.to_string(), part_span));
        }
        let (last, last_span) = signature.pop().expect("split yields at least one part");
        if last != JOB {
            self.diags.push(Diagnostic::error("bad-signature", last_span, format!("main's signature must end in `job`, found `{last}`"))
                .with_help("write it like `console -> time -> job`: the signatures of start's arguments, then `job`"));
        }
        for (s, sspan) in &signature {
            if !self.signatures.contains_key(s) {
                self.diags.push(Diagnostic::error("unknown-signature", *sspan, format!("unknown signature `{s}`{}", did_you_mean(s, self.signatures.keys().map(String::as_str))))
                    .with_help("use a built-in signature (run `mirage-nix catalogue`) or declare it under [signatures]"));
            }
        }
        let args: Vec<Expr> = m.args.iter().filter_map(|a| self.expr(file, a)).collect();
        let deps: Vec<Expr> = m.deps.iter().filter_map(|a| self.expr(file, a)).collect();
        let keys: Vec<(String, Span)> = m
            .keys
            .iter()
            .filter_map(|k| self.known_key(file, k).map(|n| (n, self.span(file, k))))
            .collect();
        let reporter = match m.reporter {
            None => expr::parse(DEFAULT_REPORTER, span, &None).ok(),
            Some(r) => {
                let rspan = Span::new(file, r.span());
                match r.into_inner() {
                    toml::Value::Boolean(false) => None,
                    toml::Value::String(s) => self.expr(
                        file,
                        &toml::Spanned::new(rspan.start as usize..rspan.end as usize, s),
                    ),
                    other => {
                        self.diags.push(Diagnostic::error("bad-reporter", rspan, format!("`reporter` must be an expression or false, found {}", key::toml_kind(&other)))
                            .with_help("write `reporter = \"logs(default_console)\"`, or `reporter = false` for no log reporter"));
                        None
                    }
                }
            }
        };
        if self.diags.len() > before {
            return None;
        }
        Some(Main {
            name,
            crate_name,
            path,
            start,
            signature,
            args,
            deps,
            keys,
            reporter,
            span,
        })
    }
}
