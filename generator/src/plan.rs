//! Stage 4: the plan, the contract between the generator and every build.
//!
//! A [`Plan`] is everything needed to render the specialised crate and build the image for one
//! target, and nothing machine-specific: no absolute paths, no timestamps, keys sorted. The
//! same configuration and keys always give the same bytes ([`Plan::to_json`]). Its schema is
//! published in `generator/schema/plan.schema.json` and versioned by [`PLAN_VERSION`]; readers
//! check the version first ([`Plan::from_json`]).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Body, Config, CrateSource, Literal, ManifestKind};
use crate::diag::{Diagnostic, Report};
use crate::eval::{Context, Evaluation};
use crate::graph::{Graph, NodeId, NodeKind};
use crate::key::{KeyType, KeyValue, Stage};
use crate::template::Bindings;

mod check;
pub use check::check_name;

/// The plan format version this generator writes and reads.
pub const PLAN_VERSION: u32 = 2;

/// A deterministic, versioned description of one image.
///
/// Here and in every type of a plan, fields are in the alphabetical order of their JSON names:
/// that order is the plan's byte order ([`Plan::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The SHA-256 (hex) of the `unikernel.toml` the plan was made from, so that a build
    /// can tell a stale plan without running the generator.
    pub config_sha256: String,
    /// The crates the specialised crate depends on, sorted by name.
    pub crates: Vec<PlanCrate>,
    /// The image file.
    pub image: Image,
    /// Every key the image depends on, sorted by name.
    pub keys: Vec<PlanKey>,
    /// The call of the unikernel's entry point.
    pub main: PlanMain,
    /// The unikernel's name.
    pub name: String,
    /// The devices, in connection order.
    pub nodes: Vec<PlanNode>,
    /// The target the image is for.
    pub target: String,
    /// The unikernel's crate and entry point.
    pub unikernel: Unikernel,
    /// The plan format version ([`PLAN_VERSION`]).
    pub version: u32,
}

/// The image a plan builds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Its file name.
    pub file: String,
    /// Its format (`elf-unix`, `xen-pv`, `solo5-hvt`, `solo5-spt`).
    pub format: String,
    /// The runtime crate providing its entry point.
    pub runtime: String,
    /// Extra rustc flags for every crate of the image; `{runtime}` stands for the runtime
    /// crate's folder on the building machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rustflags: Vec<String>,
    /// Whether it links the Rust standard library.
    pub std: bool,
}

/// The unikernel's own crate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unikernel {
    /// The crate name.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Its folder, relative to the unikernel's directory.
    pub path: String,
    /// The entry function.
    pub start: String,
}

/// A key as the image sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanKey {
    /// What it does.
    pub doc: String,
    /// Whether the value was given to `configure` rather than defaulted.
    pub explicit: bool,
    /// The key's name.
    pub name: String,
    /// The smallest and largest values of an int key declared with a `range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(i64, i64)>,
    /// When its value is fixed.
    pub stage: Stage,
    /// Its type: bool, int, port, string, enum, ipv4-address or ipv4-prefix.
    #[serde(rename = "type")]
    pub ty: String,
    /// The configured value (configure keys), or the boot-time default (runtime keys); `null` when unset.
    pub value: serde_json::Value,
    /// The words of an enum key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// One device to connect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanNode {
    /// Device parameters (node ids).
    pub args: Vec<String>,
    /// The Rust expression connecting it.
    pub connect: String,
    /// The constructor.
    pub constructor: String,
    /// The crate its code comes from.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Dependencies (node ids).
    pub deps: Vec<String>,
    /// The disk image the build makes for it from a folder (absent for most devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    /// A folder embedded into the image for it.
    pub embed: Option<Embed>,
    /// Whether `connect` returns a `Result`.
    pub fallible: bool,
    /// The node id, also the Rust variable holding the device.
    pub id: String,
    /// The entry it needs in the image's Solo5 manifest.
    pub manifest: Option<ManifestDevice>,
    /// Where in `unikernel.toml` it was asked for.
    pub origin: String,
    /// The signature it provides.
    pub signature: String,
    /// Value parameters.
    pub values: BTreeMap<String, serde_json::Value>,
    /// The choices that selected it (`generic_kv_ro: kv_ro=crunch`), outermost first: the
    /// innermost [`MAX_VIA`], after a `... N outer choices` entry when there were more.
    pub via: Vec<String>,
}

/// A folder whose files are embedded into the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    /// The folder, relative to the unikernel's directory.
    pub dir: String,
    /// The Rust module of the specialised crate holding the files.
    pub module: String,
}

/// A disk image the build makes from a folder of the unikernel, for a store over a block
/// device: the unix image finds it beside itself, a Solo5 tender attaches it by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// The folder, relative to the unikernel's directory.
    pub dir: String,
    /// The image's file name: the folder's, with `.tar` or `.fat`.
    pub file: String,
    /// Its format.
    pub format: DiskFormat,
}

/// The formats of disk images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// A ustar archive (`kv::Tar`).
    Tar,
    /// A FAT filesystem (`kv::Fat`).
    Fat,
}

impl DiskFormat {
    /// `extension()` is the file extension of images in this format.
    pub fn extension(self) -> &'static str {
        match self {
            DiskFormat::Tar => "tar",
            DiskFormat::Fat => "fat",
        }
    }
}

/// A device of the Solo5 manifest, attached by the tender by name (`--net:NAME=TAP`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestDevice {
    /// Its name: letters and digits, at most 67.
    pub name: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: ManifestKind,
}

/// The most choices a node's `via` names, so that plans stay linear in the graph's size
/// however deeply choices nest.
pub const MAX_VIA: usize = 8;

/// The most devices a Solo5 manifest holds besides its reserved first entry.
pub const MANIFEST_MAX_DEVICES: usize = 63;

/// The entry point's call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanMain {
    /// Devices passed to it (node ids).
    pub args: Vec<String>,
    /// The Rust call of `start`.
    pub call: String,
    /// Devices started before it (node ids).
    pub deps: Vec<String>,
    /// Keys passed to it after the devices.
    pub keys: Vec<String>,
}

/// A crate the specialised crate depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanCrate {
    /// The features enabled, sorted.
    pub features: Vec<String>,
    /// The package name.
    pub name: String,
    /// Where it comes from.
    pub source: CrateSource,
}

impl PlanKey {
    /// The key's type, checked.
    pub fn key_type(&self) -> Result<KeyType, String> {
        KeyType::from_name(&self.ty, &self.values, self.range).ok_or_else(|| {
            format!(
                "key `{}` has no type `{}` with these values and range",
                self.name, self.ty
            )
        })
    }
}

impl Plan {
    /// The plan as pretty JSON with sorted keys and a final newline: byte-identical for equal plans.
    ///
    /// The plan's types declare their fields in the alphabetical order of their JSON names
    /// (and hold maps as `BTreeMap`s), so they serialise with sorted keys directly, without
    /// building a JSON tree first (a test checks both give the same bytes).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("plans serialise");
        text.push('\n');
        text
    }

    /// Reads a plan, checking its version before anything else.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(PLAN_VERSION)) => {}
            Some(v) if v.is_u64() => {
                return Err(format!(
                    "plan format version {v}, but this mirage-nix reads version {PLAN_VERSION}"
                ))
            }
            Some(v) => {
                let shown: String = v.to_string().chars().take(40).collect();
                return Err(format!(
                    "the plan format `version` must be a whole number, found `{shown}`"
                ));
            }
            None if !value.is_object() => {
                return Err("a plan is a JSON object, with a `version` field first".to_string())
            }
            None => {
                return Err(
                    "no plan format `version` field: this is not a mirage-nix plan".to_string(),
                )
            }
        }
        serde_json::from_value(value)
            .map_err(|e| format!("not a valid version {PLAN_VERSION} plan: {e}"))
    }

    /// The Solo5 manifest of the image in its JSON form (`solo5-elftool`'s input format):
    /// the devices a tender must attach, in connection order.
    pub fn manifest_json(&self) -> serde_json::Value {
        let devices: Vec<&ManifestDevice> = self
            .nodes
            .iter()
            .filter_map(|n| n.manifest.as_ref())
            .collect();
        serde_json::json!({ "type": "solo5.manifest", "version": 1, "devices": devices })
    }

    /// The flake attribute that builds this plan's image.
    pub fn nix_attr(&self) -> String {
        format!("{}-{}", self.name, self.target)
    }

    /// The keys that were given explicitly to `configure`, as `--name=value` flags.
    pub fn explicit_flags(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| k.explicit && k.name != crate::key::TARGET)
            .map(|k| format!("--{}={}", k.name, json_text(&k.value)))
            .collect()
    }
}

/// A plan's JSON value as it is written on a command line.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// The Rust expression reading a key in generated code.
pub fn key_expr(name: &str, ty: &KeyType, stage: Stage) -> String {
    match stage {
        Stage::Runtime => {
            let accessor = match ty {
                KeyType::Bool => "bool",
                KeyType::Int { .. } => "int",
                KeyType::Port => "port",
                KeyType::String => "string",
                KeyType::Enum(_) => "enum_",
                KeyType::Ipv4Address => "ipv4_addr",
                KeyType::Ipv4Prefix => "ipv4_prefix",
            };
            format!("args.{accessor}({})", crate::rust::string_literal(name))
        }
        Stage::Configure => {
            let constant = format!("keys::{}", const_name(name));
            match ty {
                KeyType::String => format!("String::from({constant})"),
                _ => constant,
            }
        }
    }
}

/// The Rust constant name of a configure key.
pub fn const_name(key: &str) -> String {
    key.to_ascii_uppercase().replace('-', "_")
}

fn literal_code(v: &Literal) -> String {
    match v {
        Literal::String(s) => format!("{s:?}"),
        Literal::Int(i) => format!("{i}"),
        Literal::Bool(b) => format!("{b}"),
    }
}

fn plain_text(v: &Literal) -> String {
    match v {
        Literal::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn literal_json(v: &Literal) -> serde_json::Value {
    match v {
        Literal::String(s) => s.clone().into(),
        Literal::Int(i) => (*i).into(),
        Literal::Bool(b) => (*b).into(),
    }
}

fn value_json(v: Option<KeyValue>) -> serde_json::Value {
    match v {
        None | Some(KeyValue::None) => serde_json::Value::Null,
        Some(v) => v.to_json(),
    }
}

/// Whether a folder named in a config stays inside the unikernel's directory.
fn confined(dir: &str) -> bool {
    let p = Path::new(dir);
    !dir.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Checks that `rel` (confined) names a real folder below `base`: every part of it a folder,
/// none a symbolic link, so that what render embeds is what the unikernel's directory holds.
fn folder_inside(base: &Path, rel: &str) -> Result<(), String> {
    let mut at = base.to_path_buf();
    for part in Path::new(rel).components() {
        at.push(part.as_os_str());
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.is_symlink() => {
                return Err(format!("`{}` is a symbolic link", at.display()))
            }
            Ok(_) => return Err(format!("`{}` is not a folder", at.display())),
            Err(_) => return Err(format!("`{}` does not exist", at.display())),
        }
    }
    Ok(())
}

/// The rules the names of a plan's devices follow, by image format: what can name a Solo5
/// device, or a xen device (whose block devices' names are the files their `xl` disk lines
/// attach).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceNames {
    Solo5,
    Xen,
}

impl DeviceNames {
    pub(crate) fn of(format: &str) -> DeviceNames {
        if format == "xen-pv" {
            DeviceNames::Xen
        } else {
            DeviceNames::Solo5
        }
    }

    /// Who reads the names, for messages.
    fn what(self) -> &'static str {
        match self {
            DeviceNames::Solo5 => "Solo5 manifest",
            DeviceNames::Xen => "xl config",
        }
    }

    /// Whose devices they are, for messages.
    pub(crate) fn platform(self) -> &'static str {
        match self {
            DeviceNames::Solo5 => "Solo5",
            DeviceNames::Xen => "xen",
        }
    }

    /// How many devices, and how many block devices, a plan may have.
    fn limits(self) -> (usize, usize) {
        match self {
            DeviceNames::Solo5 => (MANIFEST_MAX_DEVICES, usize::MAX),
            DeviceNames::Xen => (usize::MAX, crate::render::xl::MAX_DISKS),
        }
    }

    /// Whether `name` can name a device.
    pub(crate) fn valid(self, name: &str) -> bool {
        match self {
            DeviceNames::Solo5 => {
                (1..=67).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric())
            }
            // A file name or relative path an xl disk line can hold.
            DeviceNames::Xen => {
                (1..=255).contains(&name.len())
                    && !name.starts_with(['-', '/'])
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-+/".contains(c))
            }
        }
    }

    fn rule(self) -> &'static str {
        match self {
            DeviceNames::Solo5 => "Solo5 device names are 1 to 67 letters and digits",
            DeviceNames::Xen => {
                "xen device names are 1 to 255 letters, digits and `._-+/`, not starting with `-` or `/`"
            }
        }
    }
}

/// Rejects device lists with two devices of one name, or more devices than the target allows.
fn check_manifest(
    nodes: &[PlanNode],
    graph: &Graph,
    order: &[NodeId],
    names: DeviceNames,
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut blocks = 0;
    for (i, node) in nodes.iter().enumerate() {
        let Some(m) = &node.manifest else { continue };
        if m.kind == ManifestKind::Block {
            blocks += 1;
        }
        if let Some(&first) = seen.get(m.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    "duplicate-device",
                    graph.nodes[order[i]].origin,
                    format!("two devices are named `{}` in the {}", m.name, names.what()),
                )
                .with_note(graph.nodes[order[first]].origin, "the first is here")
                .with_help("give each network and block device its own name"),
            );
        }
        seen.insert(&m.name, i);
    }
    let (max, max_blocks) = names.limits();
    if seen.len() > max {
        diags.push(
            Diagnostic::error(
                "too-many-devices",
                None,
                format!(
                    "{} Solo5 devices, but a manifest holds at most {max}",
                    seen.len()
                ),
            )
            .with_help("use fewer network and block devices"),
        );
    }
    if blocks > max_blocks {
        diags.push(
            Diagnostic::error(
                "too-many-devices",
                None,
                format!(
                    "{blocks} block devices, but an xl config names at most {max_blocks} (xvda to xvdp)"
                ),
            )
            .with_help("use fewer block devices"),
        );
    }
}

/// Lowers a full evaluation into a plan.
pub fn lower(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
    eval: &Evaluation,
) -> Result<Plan, Report> {
    let target = &config.targets[&ctx.target];
    let names = DeviceNames::of(&target.format);
    let mut diags = Vec::new();
    let ids: BTreeMap<NodeId, String> = eval
        .order
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, format!("{}_{i}", graph.nodes[n].kind.ctor())))
        .collect();
    let resolved = |n: NodeId| ids[&eval.resolve(graph, n)].clone();

    // Each device is moved into its last user and cloned for the others.
    let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
    for &n in &eval.order {
        if let NodeKind::Device { args, deps, .. } = &graph.nodes[n].kind {
            for &a in args.iter().chain(deps) {
                *remaining.entry(resolved(a)).or_default() += 1;
            }
        }
    }
    for &a in &graph.main.args {
        *remaining.entry(resolved(a)).or_default() += 1;
    }
    let mut take = |id: String| {
        let left = remaining.get_mut(&id).expect("every use was counted");
        *left -= 1;
        if *left > 0 {
            format!("{id}.clone()")
        } else {
            id
        }
    };

    let key_code = |k: &str| {
        let key = &config.keys[k];
        key_expr(k, &key.ty, key.stage)
    };

    let mut nodes = Vec::new();
    let mut crates: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &n in &eval.order {
        let node = &graph.nodes[n];
        let NodeKind::Device {
            ctor,
            values,
            args,
            deps,
        } = &node.kind
        else {
            unreachable!("evaluation orders devices only")
        };
        let c = &config.constructors[ctor];
        let Body::Impls { impls, .. } = &c.body else {
            unreachable!("device nodes come from constructors with implementations")
        };
        let Some(imp) = impls.iter().find(|i| i.supports(&ctx.target)) else {
            unreachable!("check_target ran before lowering")
        };
        let id = ids[&n].clone();
        let mut bindings = Bindings {
            id: id.clone(),
            ..Bindings::default()
        };
        for (p, v) in values {
            bindings.params.insert(p.clone(), literal_code(v));
            bindings.raw.insert(p.clone(), plain_text(v));
        }
        let dev_params = c
            .params
            .iter()
            .filter(|p| matches!(p.ty, crate::config::ParamType::Device(_)));
        for (p, &a) in dev_params.zip(args) {
            bindings.params.insert(p.name.clone(), take(resolved(a)));
        }
        bindings.deps = deps.iter().map(|&d| take(resolved(d))).collect();
        bindings.keys = c.keys.iter().map(|k| (k.clone(), key_code(k))).collect();
        // The folder a string parameter names, refused unless inside the unikernel's directory.
        let mut folder = |param: &String, what: &str| {
            let dir = match values.iter().find(|(p, _)| p == param) {
                Some((_, Literal::String(s))) => s.clone(),
                _ => unreachable!("{what} names a string parameter (checked when loading)"),
            };
            if !confined(&dir) {
                diags.push(
                    Diagnostic::error("bad-path", node.origin, format!("`{}` is not a folder inside the unikernel's directory", dir.escape_debug()))
                        .with_help(format!("{what} folders are given relative to unikernel.toml, without `..` or a leading `/`")),
                );
                return None;
            }
            if let Err(why) = folder_inside(&config.dir, &dir) {
                diags.push(
                    Diagnostic::error("missing-folder", node.origin, format!("`{ctor}` needs the {what} folder `{}`, but {why}", dir.escape_debug()))
                        .with_help(format!("create the folder `{}` beside unikernel.toml (the build reads its files), or name another", dir.escape_debug())),
                );
                return None;
            }
            Some(dir)
        };
        let embed = imp
            .embed
            .as_ref()
            .and_then(|param| folder(param, "embedded"))
            .map(|dir| Embed {
                dir,
                module: format!("embed_{id}"),
            });
        bindings.embed = embed.as_ref().map(|e| e.module.clone());
        let disk = imp.disk.as_ref().and_then(|(format, param)| {
            let dir = folder(param, "disk")?;
            let file = format!("{dir}.{}", format.extension());
            Some(Disk {
                format: *format,
                dir,
                file,
            })
        });
        let manifest =
            imp.manifest
                .as_ref()
                .and_then(|(kind, name)| match name.render(&bindings) {
                    Ok(name) if names.valid(&name) => Some(ManifestDevice { name, kind: *kind }),
                    Ok(name) => {
                        diags.push(
                            Diagnostic::error(
                                "bad-device-name",
                                node.origin,
                                format!("`{name}` cannot name a {} device", names.platform()),
                            )
                            .with_help(format!(
                                "{}: rename the device in unikernel.toml",
                                names.rule()
                            )),
                        );
                        None
                    }
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "bad-template",
                            imp.span,
                            format!("the manifest name of `{ctor}` does not render: {e}"),
                        ));
                        None
                    }
                });
        let connect = match imp.connect.render(&bindings) {
            Ok(code) => code,
            // The folder to embed was refused above: that is the error to report.
            Err(_) if imp.embed.is_some() && embed.is_none() => String::new(),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "bad-template",
                    imp.span,
                    format!("connect code of `{ctor}` does not render: {e}"),
                ));
                String::new()
            }
        };
        crates
            .entry(imp.crate_name.clone())
            .or_default()
            .extend(imp.features.iter().cloned());
        let path = eval.via[&n];
        let outer = eval.paths.len(path).saturating_sub(MAX_VIA);
        let innermost = eval.paths.innermost(path, MAX_VIA);
        let via = (outer > 0)
            .then(|| format!("... {outer} outer choices"))
            .into_iter()
            .chain(innermost.iter().map(|&(choice, case)| {
                let NodeKind::Choice { cases, ctor, .. } = &graph.nodes[choice].kind else {
                    unreachable!("paths hold choices")
                };
                let when: Vec<String> = cases[case]
                    .0
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "{ctor}: {}",
                    if when.is_empty() {
                        "default".to_string()
                    } else {
                        when.join(", ")
                    }
                )
            }))
            .collect();
        nodes.push(PlanNode {
            id,
            constructor: ctor.clone(),
            signature: node.signature.clone(),
            values: values
                .iter()
                .map(|(p, v)| (p.clone(), literal_json(v)))
                .collect(),
            args: args.iter().map(|&a| resolved(a)).collect(),
            deps: deps.iter().map(|&d| resolved(d)).collect(),
            crate_name: imp.crate_name.clone(),
            connect,
            fallible: imp.fallible,
            embed,
            manifest,
            disk,
            origin: config.origin(node.origin),
            via,
        });
    }

    check_manifest(&nodes, graph, &eval.order, names, &mut diags);

    let main = &config.main;
    let mut call_args: Vec<String> = graph.main.args.iter().map(|&a| take(resolved(a))).collect();
    call_args.extend(main.keys.iter().map(|(k, _)| key_code(k)));
    let plan_main = PlanMain {
        call: format!("{}({})", main.start, call_args.join(", ")),
        args: graph.main.args.iter().map(|&a| resolved(a)).collect(),
        deps: graph.main.deps.iter().map(|&d| resolved(d)).collect(),
        keys: main.keys.iter().map(|(k, _)| k.clone()).collect(),
    };

    crates.entry("mirage-runtime".to_string()).or_default();
    crates.entry(target.runtime.clone()).or_default();
    let mut plan_crates: Vec<PlanCrate> = crates
        .into_iter()
        .map(|(name, mut features)| {
            features.sort();
            features.dedup();
            let source = config.crates[&name].source.clone();
            PlanCrate {
                name,
                source,
                features,
            }
        })
        .collect();
    plan_crates.push(PlanCrate {
        name: main.crate_name.clone(),
        source: CrateSource::Local(main.path.clone()),
        features: Vec::new(),
    });
    plan_crates.sort_by(|a, b| a.name.cmp(&b.name));

    let keys = eval
        .keys
        .iter()
        .map(|k| {
            let key = &config.keys[k];
            PlanKey {
                name: k.clone(),
                ty: key.ty.name().to_string(),
                values: match &key.ty {
                    KeyType::Enum(vs) => vs.clone(),
                    _ => Vec::new(),
                },
                range: key.ty.range(),
                stage: key.stage,
                doc: key.doc.clone(),
                value: value_json(ctx.value(config, k)),
                explicit: ctx.is_explicit(k),
            }
        })
        .collect();

    if !diags.is_empty() {
        return Err(Report {
            sources: config.sources.clone(),
            diagnostics: diags,
        });
    }
    let digest = Sha256::digest(config.sources.text(config.file).as_bytes());
    Ok(Plan {
        version: PLAN_VERSION,
        name: main.name.clone(),
        config_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        target: ctx.target.clone(),
        image: Image {
            file: target.image.replace("{name}", &main.name),
            format: target.format.clone(),
            std: target.std,
            runtime: target.runtime.clone(),
            rustflags: target.rustflags.clone(),
        },
        unikernel: Unikernel {
            crate_name: main.crate_name.clone(),
            path: main.path.clone(),
            start: main.start.clone(),
        },
        keys,
        nodes,
        main: plan_main,
        crates: plan_crates,
    })
}

/// The JSON Schema of plans, as published in `generator/schema/plan.schema.json`.
pub fn schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_first() {
        assert!(Plan::from_json("{\"version\": 99}")
            .unwrap_err()
            .contains("version 99"));
        assert!(Plan::from_json("{}")
            .unwrap_err()
            .contains("not a mirage-nix plan"));
        assert!(Plan::from_json("nope")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(Plan::from_json("{\"version\": 2}")
            .unwrap_err()
            .contains("not a valid version 2 plan"));
        assert!(Plan::from_json("{\"version\": 1}")
            .unwrap_err()
            .contains("version 1, but this mirage-nix reads version 2"));
        assert!(Plan::from_json("{\"version\": \"2\"}")
            .unwrap_err()
            .contains("must be a whole number, found `\"2\"`"));
        assert!(Plan::from_json("{\"version\": 2.0}")
            .unwrap_err()
            .contains("whole number"));
        assert!(Plan::from_json("[1]").unwrap_err().contains("JSON object"));
    }

    #[test]
    fn plans_serialise_with_sorted_keys() {
        for ex in [
            "hello",
            "kv_ro",
            "conduit_server",
            "static_website",
            "network",
            "block",
        ] {
            for target in ["unix", "hvt"] {
                let path = format!(
                    "{}/../examples/{ex}/plans/{target}.json",
                    env!("CARGO_MANIFEST_DIR")
                );
                let plan = Plan::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
                let value = serde_json::to_value(&plan).unwrap();
                let sorted = serde_json::to_string_pretty(&value).unwrap() + "\n";
                assert_eq!(plan.to_json(), sorted, "{ex} {target}");
            }
        }
    }

    #[test]
    fn device_names_follow_the_target() {
        let solo5 = DeviceNames::of("solo5-hvt");
        let xen = DeviceNames::of("xen-pv");
        assert!(solo5.valid("storage") && xen.valid("storage"));
        assert!(!solo5.valid("disk.img") && xen.valid("disk.img"));
        assert!(xen.valid("disks/t.tar"));
        for bad in ["", "-x", "/etc/passwd", "a b", "a,b", "a'b", "a=b"] {
            assert!(!xen.valid(bad), "{bad:?} is accepted");
        }
        assert!(!xen.valid(&"d".repeat(256)));
        assert_eq!(xen.limits().1, 16);
    }

    #[test]
    fn folders_must_stay_inside() {
        assert!(confined("t"));
        assert!(confined("htdocs/site"));
        assert!(!confined("../t"));
        assert!(!confined("/etc"));
        assert!(!confined("a/../../b"));
        assert!(!confined(""));
    }

    #[test]
    fn key_expressions_follow_the_stage() {
        assert_eq!(
            key_expr("ipv4-gateway", &KeyType::Ipv4Address, Stage::Runtime),
            "args.ipv4_addr(\"ipv4-gateway\")"
        );
        assert_eq!(
            key_expr("hello", &KeyType::String, Stage::Configure),
            "String::from(keys::HELLO)"
        );
        assert_eq!(
            key_expr("dhcp", &KeyType::Bool, Stage::Configure),
            "keys::DHCP"
        );
        assert_eq!(
            key_expr("port", &KeyType::Port, Stage::Runtime),
            "args.port(\"port\")"
        );
    }
}
