//! The checked model of a configuration: what every later stage reads.
//!
//! [`Config`] holds the catalogue and one unikernel after every declaration was checked:
//! targets, signatures, keys, crates, constructors (devices and choices), named devices and
//! the unikernel's `main`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Expr, CONFIG_FILE};
use crate::diag::{FileId, SourceMap, Span};
use crate::key::{Key, KeyValue};
use crate::template::Template;

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
    /// The connect code template (placeholders for parameters, `keys`, `deps`, `embed`, `id`).
    pub connect: Template,
    /// Whether the connect code returns a `Result`.
    pub fallible: bool,
    /// The string parameter naming a folder to embed into the image.
    pub embed: Option<String>,
    /// The Solo5 manifest entry it needs: its kind and a template of its name.
    pub manifest: Option<(ManifestKind, Template)>,
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
