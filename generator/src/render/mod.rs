//! Stage 5: outputs derived from plans and graphs.
//!
//! [`crate_files`] turns a plan, and nothing else of the configuration, into the specialised
//! crate: `Cargo.toml`, `src/main.rs` (configure keys as constants, runtime keys parsed at boot,
//! every device connected in dependency order, then `start`) and the embedded files.
//! [`disk`] makes the disk images of its stores over block devices (tar, FAT), and [`dot`]
//! draws graphs for `describe --dot`.

pub mod disk;
pub mod dot;
pub mod xl;

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{CrateSource, ManifestKind};
use crate::key::{KeyType, KeyValue, Stage};
use crate::plan::{const_name, json_text, Plan};

const MAIN_TEMPLATE: &str = include_str!("../../templates/main.rs.tera");
const CARGO_TEMPLATE: &str = include_str!("../../templates/Cargo.toml.tera");

/// Where the crates a plan names are found on this machine.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The mirage-nix tree (holding `devices/`, `runtime/`).
    pub mirage: PathBuf,
    /// The unikernel's directory (holding `unikernel.toml`).
    pub unikernel: PathBuf,
}

/// One file of a rendered crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Its path inside the crate.
    pub path: PathBuf,
    /// Its contents.
    pub contents: Vec<u8>,
}

/// Why a crate could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An embedded folder could not be read.
    #[error("cannot embed `{dir}`: {reason}")]
    Embed {
        /// The folder.
        dir: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The plan is not one this generator can render.
    #[error("the plan is malformed: {reason}; regenerate it with `mirage-nix configure`")]
    Plan {
        /// What is wrong.
        reason: String,
    },
    /// A template failed (a bug in mirage-nix).
    #[error(
        "internal error rendering {what}: {reason}; this is a bug in mirage-nix, please report it"
    )]
    Template {
        /// Which file.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Serialize)]
struct ConfigureKey {
    constant: String,
    rust_type: &'static str,
    rust_value: String,
    doc: String,
}

#[derive(Serialize)]
struct RuntimeKey {
    name: String,
    kind: String,
    default: String,
    doc: String,
}

#[derive(Serialize)]
struct EmbedFile {
    path: String,
    include: String,
    digest: String,
}

#[derive(Serialize)]
struct EmbedModule {
    dir: String,
    module: String,
    files: Vec<EmbedFile>,
}

#[derive(Serialize)]
struct NodeCode {
    id: String,
    comment: String,
    code: String,
}

#[derive(Serialize)]
struct CrateDep {
    name: String,
    source: String,
    features: String,
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

fn ipv4_code(a: std::net::Ipv4Addr) -> String {
    let [a, b, c, d] = a.octets();
    format!("core::net::Ipv4Addr::new({a}, {b}, {c}, {d})")
}

/// The Rust type and value of a configure key's constant.
fn constant(ty: &KeyType, value: &serde_json::Value) -> (&'static str, String) {
    let text = json_text(value);
    let parsed = if value.is_null() {
        Ok(KeyValue::None)
    } else {
        ty.parse(&text)
    };
    match (ty, parsed) {
        (KeyType::Bool, _) => ("bool", text),
        (KeyType::Int, _) => ("i64", text),
        (KeyType::String | KeyType::Enum(_), _) => ("&str", rust_str(&text)),
        (KeyType::Ipv4Address, Ok(KeyValue::Ipv4(a))) => (
            "Option<core::net::Ipv4Addr>",
            format!("Some({})", ipv4_code(a)),
        ),
        (KeyType::Ipv4Address, _) => ("Option<core::net::Ipv4Addr>", "None".into()),
        (KeyType::Ipv4Prefix, Ok(KeyValue::Ipv4Prefix(a, l))) => (
            "Option<mirage_runtime::Ipv4Prefix>",
            format!(
                "Some(mirage_runtime::Ipv4Prefix::new({}, {l}))",
                ipv4_code(a)
            ),
        ),
        (KeyType::Ipv4Prefix, _) => ("Option<mirage_runtime::Ipv4Prefix>", "None".into()),
    }
}

fn key_kind(ty: &KeyType) -> String {
    let kind = match ty {
        KeyType::Bool => "Bool".to_string(),
        KeyType::Int => "Int".to_string(),
        KeyType::String => "String".to_string(),
        KeyType::Enum(vs) => {
            let vs: Vec<String> = vs.iter().map(|v| rust_str(v)).collect();
            format!("Enum(&[{}])", vs.join(", "))
        }
        KeyType::Ipv4Address => "Ipv4Addr".to_string(),
        KeyType::Ipv4Prefix => "Ipv4Prefix".to_string(),
    };
    format!("mirage_runtime::KeyKind::{kind}")
}

/// `target` written relative to `base` (both made absolute from the current directory),
/// or as is when that cannot be done lexically.
fn relative(base: &Path, target: &Path) -> PathBuf {
    let (base, target) = match std::env::current_dir() {
        Ok(cwd) => (cwd.join(base), cwd.join(target)),
        Err(_) => (base.to_path_buf(), target.to_path_buf()),
    };
    let b: Vec<Component> = base
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let t: Vec<Component> = target
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    if b[common..].contains(&Component::ParentDir) {
        return target.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn render_template(
    what: &'static str,
    template: &str,
    context: &serde_json::Value,
) -> Result<String, RenderError> {
    let context =
        tera::Context::from_value(context.clone()).map_err(|e| RenderError::Template {
            what,
            reason: e.to_string(),
        })?;
    tera::Tera::one_off(template, &context, false).map_err(|e| RenderError::Template {
        what,
        reason: format!("{e:?}"),
    })
}

/// The files of `dir`, sorted, with their paths relative to it (`/`-separated).
pub(crate) fn embedded_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, RenderError> {
    let err = |reason: String| RenderError::Embed {
        dir: dir.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(err("it is not a folder".into()));
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| err(e.to_string()))?;
        if entry.file_type().is_symlink() {
            return Err(err(format!(
                "`{}` is a symbolic link; embedded folders must hold plain files",
                entry.path().display()
            )));
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir stays below its root");
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        let name = parts
            .ok_or_else(|| err(format!("`{}` is not a UTF-8 file name", rel.display())))?
            .join("/");
        files.push((name, entry.path().to_path_buf()));
    }
    Ok(files)
}

/// Renders the specialised crate of a plan. Paths to crates are written relative to `out`, the
/// folder the crate will be written to, so a rendered tree can move with its sources.
pub fn crate_files(plan: &Plan, roots: &Roots, out: &Path) -> Result<Vec<File>, RenderError> {
    let mut files = Vec::new();
    let mut types = std::collections::BTreeMap::new();
    for k in &plan.keys {
        let ty = k
            .key_type()
            .map_err(|reason| RenderError::Plan { reason })?;
        types.insert(k.name.as_str(), ty);
    }
    let configure_keys: Vec<ConfigureKey> = plan
        .keys
        .iter()
        .filter(|k| k.stage == Stage::Configure)
        .map(|k| {
            let (rust_type, rust_value) = constant(&types[k.name.as_str()], &k.value);
            ConfigureKey {
                constant: const_name(&k.name),
                rust_type,
                rust_value,
                doc: k.doc.clone(),
            }
        })
        .collect();
    let runtime_keys: Vec<RuntimeKey> = plan
        .keys
        .iter()
        .filter(|k| k.stage == Stage::Runtime)
        .map(|k| RuntimeKey {
            name: rust_str(&k.name),
            kind: key_kind(&types[k.name.as_str()]),
            default: if k.value.is_null() {
                "None".into()
            } else {
                format!("Some({})", rust_str(&json_text(&k.value)))
            },
            doc: rust_str(&k.doc),
        })
        .collect();
    let mut embeds = Vec::new();
    for node in &plan.nodes {
        let Some(embed) = &node.embed else { continue };
        let dir = roots.unikernel.join(&embed.dir);
        let mut module = EmbedModule {
            dir: embed.dir.clone(),
            module: embed.module.clone(),
            files: Vec::new(),
        };
        for (name, path) in embedded_files(&dir)? {
            let data = std::fs::read(&path).map_err(|e| RenderError::Embed {
                dir: dir.clone(),
                reason: format!("{}: {e}", path.display()),
            })?;
            let digest: Vec<String> = Sha256::digest(&data)
                .iter()
                .map(|b| format!("0x{b:02x}"))
                .collect();
            let inside = format!("embed/{}/{name}", embed.module);
            module.files.push(EmbedFile {
                path: rust_str(&name),
                include: rust_str(&format!("../{inside}")),
                digest: format!("[{}]", digest.join(", ")),
            });
            files.push(File {
                path: PathBuf::from(inside),
                contents: data,
            });
        }
        embeds.push(module);
    }
    let nodes: Vec<NodeCode> = plan
        .nodes
        .iter()
        .map(|n| {
            let via = if n.via.is_empty() {
                String::new()
            } else {
                format!("; {}", n.via.join("; "))
            };
            NodeCode {
                id: n.id.clone(),
                comment: format!("{}: {} from {}{via}", n.constructor, n.signature, n.origin),
                code: if n.fallible {
                    format!(
                        "mirage_runtime::connected({}, {})?",
                        rust_str(&n.id),
                        n.connect
                    )
                } else {
                    n.connect.clone()
                },
            }
        })
        .collect();
    let main = render_template(
        "src/main.rs",
        MAIN_TEMPLATE,
        &serde_json::json!({
            "name": plan.name,
            "image_name": rust_str(&plan.name),
            "target": plan.target,
            "std": plan.image.std,
            "runtime": plan.image.runtime.replace('-', "_"),
            "configure_keys": configure_keys,
            "runtime_keys": runtime_keys,
            "embeds": embeds,
            "nodes": nodes,
            "call": plan.main.call,
            // Solo5 images declare their manifest (`mirage_solo5::manifest!`), xen images
            // their devices (`mirage_xen::main!`'s list).
            "solo5": plan.image.format.starts_with("solo5"),
            "xen": plan.image.format == "xen-pv",
            "manifest": device_list(plan),
        }),
    )?;
    files.push(File {
        path: PathBuf::from("src/main.rs"),
        contents: main.into_bytes(),
    });

    let crates: Vec<CrateDep> = plan
        .crates
        .iter()
        .map(|c| {
            let path = |root: &Path, p: &str| {
                let rel = relative(out, &root.join(p));
                format!("path = {}", rust_str(&rel.to_string_lossy()))
            };
            let source = match &c.source {
                CrateSource::Mirage(p) => path(&roots.mirage, p),
                CrateSource::Local(p) => path(&roots.unikernel, p),
                CrateSource::Registry(v) => format!("version = {}", rust_str(v)),
            };
            let features: Vec<String> = c.features.iter().map(|f| rust_str(f)).collect();
            CrateDep {
                name: c.name.clone(),
                source,
                features: features.join(", "),
            }
        })
        .collect();
    let cargo = render_template(
        "Cargo.toml",
        CARGO_TEMPLATE,
        &serde_json::json!({
            "name": plan.name,
            "target": plan.target,
            "package": format!("{}-{}", plan.name, plan.target).replace('_', "-"),
            "crates": crates,
        }),
    )?;
    files.push(File {
        path: PathBuf::from("Cargo.toml"),
        contents: cargo.into_bytes(),
    });
    if !plan.image.rustflags.is_empty() {
        files.push(File {
            path: PathBuf::from(".cargo/config.toml"),
            contents: cargo_config(plan, roots).into_bytes(),
        });
    }
    // xen: the xl configs that run the image, which builds install beside it.
    for ty in [xl::DomainType::Pvh, xl::DomainType::Pv] {
        if let Some(config) = xl::config(plan, ty) {
            files.push(File {
                path: PathBuf::from(xl::file_name(plan, ty)),
                contents: config.into_bytes(),
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `.cargo/config.toml` of a crate whose target needs rustc flags. `{runtime}` becomes the
/// runtime crate's absolute folder: rustc runs from directories cargo chooses.
fn cargo_config(plan: &Plan, roots: &Roots) -> String {
    let runtime = plan
        .crates
        .iter()
        .find(|c| c.name == plan.image.runtime)
        .and_then(|c| match &c.source {
            CrateSource::Mirage(p) => Some(roots.mirage.join(p)),
            _ => None,
        })
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .unwrap_or_default();
    let flags: Vec<String> = plan
        .image
        .rustflags
        .iter()
        .map(|f| rust_str(&f.replace("{runtime}", &runtime.to_string_lossy())))
        .collect();
    format!(
        "# @generated by mirage-nix from the plan of `{}` for {}: the target's rustc flags.\n[build]\nrustflags = [{}]\n",
        plan.name,
        plan.target,
        flags.join(", ")
    )
}

/// `device_list(plan)` is the plan's devices for the template (the Solo5 manifest, the xen
/// device list): `name` (a Rust string) and `kind` (`Net` or `Block`, the variants of
/// `mirage_solo5::notes::Kind` and `mirage_xen::DeviceKind`), in connection order.
fn device_list(plan: &Plan) -> Vec<serde_json::Value> {
    plan.nodes
        .iter()
        .filter_map(|n| n.manifest.as_ref())
        .map(|m| {
            let kind = match m.kind {
                ManifestKind::Net => "Net",
                ManifestKind::Block => "Block",
            };
            serde_json::json!({ "name": rust_str(&m.name), "kind": kind })
        })
        .collect()
}

/// Writes rendered files under `out`, leaving files that already have the right contents
/// untouched so cargo does not rebuild them.
pub fn write(files: &[File], out: &Path) -> std::io::Result<()> {
    for f in files {
        let path = out.join(&f.path);
        if std::fs::read(&path).is_ok_and(|c| c == f.contents) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.contents)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b/out"), Path::new("/a/runtime/unix")),
            PathBuf::from("../../runtime/unix")
        );
        assert_eq!(
            relative(Path::new("out"), Path::new("examples/hello")),
            PathBuf::from("../examples/hello")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b")),
            PathBuf::from(".")
        );
        assert_eq!(
            relative(Path::new("/a/../b"), Path::new("/c")),
            PathBuf::from("/c")
        );
    }

    #[test]
    fn target_flags_go_to_the_cargo_config_with_the_runtime_folder() {
        let mut plan =
            crate::plan::Plan::from_json(include_str!("../../../examples/hello/plans/unix.json"))
                .unwrap();
        let roots = Roots {
            mirage: PathBuf::from("/m"),
            unikernel: PathBuf::from("/m/examples/hello"),
        };
        let has_config = |plan: &Plan| {
            crate_files(plan, &roots, Path::new("/o"))
                .unwrap()
                .iter()
                .any(|f| f.path.ends_with("config.toml"))
        };
        assert!(!has_config(&plan), "no flags, no config");
        plan.image.rustflags = vec!["-C".into(), "link-arg=-T{runtime}/image.ld".into()];
        let config = cargo_config(&plan, &roots);
        assert!(
            config.contains("rustflags = [\"-C\", \"link-arg=-T/m/runtime/unix/image.ld\"]"),
            "{config}"
        );
        assert!(has_config(&plan));
    }

    #[test]
    fn constants_have_rust_types() {
        let (t, v) = constant(&KeyType::Ipv4Prefix, &serde_json::json!("10.0.0.2/24"));
        assert_eq!(t, "Option<mirage_runtime::Ipv4Prefix>");
        assert_eq!(
            v,
            "Some(mirage_runtime::Ipv4Prefix::new(core::net::Ipv4Addr::new(10, 0, 0, 2), 24))"
        );
        assert_eq!(
            constant(&KeyType::Ipv4Address, &serde_json::Value::Null).1,
            "None"
        );
        assert_eq!(
            constant(&KeyType::String, &serde_json::json!("a\"b")).1,
            "\"a\\\"b\""
        );
    }
}
