//! The TOML shape of `unikernel.toml` and of the built-in catalogue, as serde reads it.
//!
//! These types only mirror the file; [`super::load`] turns them into the checked model.
//! Every field that can be wrong keeps its span so errors point at it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A spanned string.
pub type S = Spanned<String>;

/// One configuration file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The unikernel's entry point (`main` in Functoria); absent in the catalogue.
    pub unikernel: Option<Spanned<Unikernel>>,
    /// The targets an image can be built for (catalogue only).
    #[serde(default)]
    pub targets: BTreeMap<S, Spanned<Target>>,
    /// Device signatures.
    #[serde(default)]
    pub signatures: BTreeMap<S, Spanned<Signature>>,
    /// Keys.
    #[serde(default)]
    pub keys: BTreeMap<S, Spanned<Key>>,
    /// Crates that implementations come from.
    #[serde(default)]
    pub crates: BTreeMap<S, Spanned<Crate>>,
    /// Constructors (Functoria's `impl`).
    #[serde(default)]
    pub constructors: BTreeMap<S, Spanned<Constructor>>,
    /// Named devices: one node however many times they are used.
    #[serde(default)]
    pub devices: BTreeMap<S, S>,
}

/// `[unikernel]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unikernel {
    /// The image name.
    pub name: S,
    /// The unikernel's library crate; defaults to the name.
    #[serde(rename = "crate")]
    pub crate_name: Option<S>,
    /// The crate's folder, relative to the config; defaults to `.`.
    pub path: Option<S>,
    /// The entry function; defaults to `<crate>::start`.
    pub start: Option<S>,
    /// `start`'s signature: device signatures ending in `job`.
    pub signature: S,
    /// The devices passed to `start`.
    #[serde(default)]
    pub args: Vec<S>,
    /// Devices started before `start` but not passed to it.
    #[serde(default)]
    pub deps: Vec<S>,
    /// Keys whose values are passed to `start` after the devices.
    #[serde(default)]
    pub keys: Vec<S>,
    /// The log reporter: an expression, or `false` for none.
    pub reporter: Option<Spanned<toml::Value>>,
}

/// `[targets.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// What the target is.
    pub doc: S,
    /// The runtime crate that provides `main!` and the base devices.
    pub runtime: S,
    /// Whether images link the Rust standard library.
    pub std: bool,
    /// The image file name, with `{name}` for the unikernel name.
    pub image: S,
    /// The image format, for tools.
    pub format: S,
    /// Extra rustc flags images of the target are compiled with; `{runtime}` stands for the
    /// runtime crate's folder (for a linker script, say).
    #[serde(default)]
    pub rustflags: Vec<S>,
}

/// `[signatures.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The Rust trait devices of this signature implement.
    #[serde(rename = "trait")]
    pub trait_path: S,
    /// What the signature stands for.
    #[serde(default)]
    pub doc: Option<S>,
}

/// `[keys.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// bool, int, port, string, enum, ipv4-address or ipv4-prefix.
    #[serde(rename = "type")]
    pub ty: S,
    /// The words of an enum.
    pub values: Option<Spanned<Vec<String>>>,
    /// The smallest and largest values of an int key: `[MIN, MAX]`.
    pub range: Option<Spanned<Vec<i64>>>,
    /// The default value, or a table of defaults per target with `_` as fallback.
    pub default: Option<Spanned<toml::Value>>,
    /// configure or runtime.
    pub stage: S,
    /// One line saying what the key does.
    pub doc: S,
    /// A one-letter alias flag.
    pub short: Option<S>,
}

/// `[crates.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crate {
    /// A folder, relative to the file declaring it.
    pub path: Option<S>,
    /// A version requirement on crates.io.
    pub version: Option<S>,
}

/// `[constructors.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constructor {
    /// What the constructor builds.
    pub doc: Option<S>,
    /// Parameters, `"name: type"`, where the type is a value type or a signature.
    #[serde(default)]
    pub params: Vec<S>,
    /// The signature of what it builds.
    pub signature: S,
    /// Keys its connect code or choice reads.
    #[serde(default)]
    pub keys: Vec<S>,
    /// Devices it needs started first, not passed as parameters.
    #[serde(default)]
    pub deps: Vec<S>,
    /// Devices local to the constructor's body, usable by name in `choose` and `deps`.
    #[serde(rename = "let", default)]
    pub lets: BTreeMap<S, S>,
    /// A choice between expressions (Functoria's `match_impl` / `if_impl`).
    pub choose: Option<Vec<Spanned<Case>>>,
    /// Implementations, per target.
    #[serde(rename = "impl", default)]
    pub impls: Vec<Spanned<Impl>>,
    /// Shorthand for a single implementation: the crate the code comes from.
    #[serde(rename = "crate")]
    pub crate_name: Option<S>,
    /// Shorthand: crate features the implementation needs.
    #[serde(default)]
    pub features: Vec<S>,
    /// Shorthand: the connect code, a Rust expression template.
    pub connect: Option<S>,
    /// Shorthand: whether the connect code returns a `Result`.
    pub fallible: Option<bool>,
    /// Shorthand: a string parameter naming a folder whose files are embedded into the image.
    pub embed: Option<S>,
    /// Shorthand: the targets it exists on; all when absent.
    pub targets: Option<Vec<S>>,
    /// Shorthand: the Solo5 manifest entry the device needs.
    pub manifest: Option<Manifest>,
    /// Shorthand: the disk image the build makes for the device.
    pub disk: Option<Disk>,
    /// Why the constructor is missing on a target, and what to use instead.
    #[serde(default)]
    pub unavailable: BTreeMap<S, S>,
}

/// A device the image declares in its Solo5 manifest.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `net` or `block`.
    pub kind: S,
    /// The device's name: a template over the constructor's parameters.
    pub name: S,
}

/// A disk image made from a folder at build time.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// `tar` or `fat`.
    pub format: S,
    /// The string parameter naming the folder.
    pub dir: S,
}

/// One `[[constructors.NAME.impl]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impl {
    /// The crate the code comes from.
    #[serde(rename = "crate")]
    pub crate_name: S,
    /// Crate features the implementation needs.
    #[serde(default)]
    pub features: Vec<S>,
    /// The connect code template.
    pub connect: S,
    /// Whether the connect code returns a `Result`.
    #[serde(default)]
    pub fallible: bool,
    /// A string parameter naming a folder to embed.
    pub embed: Option<S>,
    /// The targets it exists on; all when absent.
    pub targets: Option<Vec<S>>,
    /// The Solo5 manifest entry the device needs.
    pub manifest: Option<Manifest>,
    /// The disk image the build makes for the device.
    pub disk: Option<Disk>,
}

/// One case of a choice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Key values that must all hold; absent for the default case.
    pub when: Option<Spanned<BTreeMap<String, toml::Value>>>,
    /// The expression chosen.
    #[serde(rename = "use")]
    pub use_: S,
}
