//! Stage 5: outputs derived from plans and graphs.
//!
//! [`crate_files`] turns a plan, and nothing else of the configuration, into the specialised
//! crate: `Cargo.toml`, `src/main.rs` (configure keys as constants, runtime keys parsed at boot,
//! every device connected in dependency order, then `start`) and the embedded files. It checks
//! the plan first, and writes code only through escaping writers, so any plan it accepts gives
//! a crate that parses. [`write_into`] puts the files in a folder without ever overwriting what
//! is not its own. [`disk`] makes the disk images of its stores over block devices (tar,
//! FAT), and [`dot`] draws graphs for `describe --dot`.

pub mod disk;
pub mod dot;
mod main_rs;
mod manifest;
mod output;
pub mod xl;

pub use output::{write_into, OutputError, Overwrite, MARKER};

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::plan::Plan;

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
}

/// The most bytes of embedded files one crate may hold: an image is loaded in memory whole.
pub const MAX_EMBEDDED_BYTES: u64 = 1 << 30;

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

/// The files of `dir`, sorted, with their paths relative to it (`/`-separated). Only plain
/// files and folders may be there, and at most [`MAX_EMBEDDED_BYTES`] in all (`budget` is
/// what is left of it).
pub(crate) fn embedded_files(
    dir: &Path,
    budget: &mut u64,
) -> Result<Vec<(String, PathBuf)>, RenderError> {
    let err = |reason: String| RenderError::Embed {
        dir: dir.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.is_symlink() => return Err(err("it is a symbolic link, not a folder".into())),
        Ok(_) => return Err(err("it is not a folder".into())),
        Err(e) => return Err(err(e.to_string())),
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| err(e.to_string()))?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(err(format!(
                "`{}` is not a plain file (a link, a FIFO or a device); embedded folders hold plain files and folders only",
                entry.path().display()
            )));
        }
        let size = entry.metadata().map_err(|e| err(e.to_string()))?.len();
        *budget = budget.checked_sub(size).ok_or_else(|| {
            err(format!(
                "its files hold more than {} MiB, the most an image embeds",
                MAX_EMBEDDED_BYTES >> 20
            ))
        })?;
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

/// Reads an embedded file, refusing anything but a plain file of at most `limit` bytes (it
/// may have changed since it was listed).
fn read_embedded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let data = crate::input::read_regular(path, limit)?;
    Ok(data)
}

/// Renders the specialised crate of a plan. Paths to crates are written relative to `out`, the
/// folder the crate will be written to, so a rendered tree can move with its sources.
///
/// The plan is checked first against its schema and the built-in catalogue
/// ([`Plan::check`]): a plan edited by hand or written by another version is refused with
/// the reason, never rendered into code that does not build or that says something else.
pub fn crate_files(plan: &Plan, roots: &Roots, out: &Path) -> Result<Vec<File>, RenderError> {
    let types = check(plan)?;
    let mut files = Vec::new();
    let mut embeds = Vec::new();
    let mut budget = MAX_EMBEDDED_BYTES;
    for node in &plan.nodes {
        let Some(embed) = &node.embed else { continue };
        let dir = roots.unikernel.join(&embed.dir);
        let mut module = main_rs::EmbedModule {
            dir: embed.dir.clone(),
            module: embed.module.clone(),
            files: Vec::new(),
        };
        for (name, path) in embedded_files(&dir, &mut budget)? {
            let data =
                read_embedded(&path, MAX_EMBEDDED_BYTES).map_err(|e| RenderError::Embed {
                    dir: dir.clone(),
                    reason: format!("{}: {e}", path.display()),
                })?;
            let inside = format!("embed/{}/{name}", embed.module);
            module.files.push(main_rs::EmbedFile {
                path: name,
                include: format!("../{inside}"),
                digest: Sha256::digest(&data).into(),
            });
            files.push(File {
                path: PathBuf::from(inside),
                contents: data,
            });
        }
        embeds.push(module);
    }
    files.push(File {
        path: PathBuf::from("src/main.rs"),
        contents: main_rs::main_rs(plan, &types, &embeds).into_bytes(),
    });
    files.push(File {
        path: PathBuf::from("Cargo.toml"),
        contents: manifest::cargo_toml(plan, roots, out).into_bytes(),
    });
    if !plan.image.rustflags.is_empty() {
        files.push(File {
            path: PathBuf::from(".cargo/config.toml"),
            contents: manifest::cargo_config(plan, roots).into_bytes(),
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

/// Checks a plan against its schema and the built-in catalogue ([`Plan::check`]), as
/// everything that builds from a plan does first; returns the type of each key.
pub fn check(plan: &Plan) -> Result<Vec<crate::key::KeyType>, RenderError> {
    let catalogue = catalogue();
    plan.check(catalogue.as_ref().as_ref())
        .map_err(|reason| RenderError::Plan { reason })
}

/// The built-in catalogue, read once per process, to check plans against.
fn catalogue() -> std::sync::Arc<Option<Config>> {
    static CATALOGUE: std::sync::OnceLock<std::sync::Arc<Option<Config>>> =
        std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| {
            let none = "[unikernel]\nname = \"none\"\nsignature = \"job\"\nreporter = false\n";
            std::sync::Arc::new(
                crate::config::load_str(Path::new("."), "<none>", none, &mut Default::default())
                    .ok(),
            )
        })
        .clone()
}

/// Writes rendered files under `out` whatever it holds, for tools that own the folder (the
/// cargo build of `mirage-nix build`, tests, benchmarks): files that already have the right
/// contents are left untouched so cargo does not rebuild them, and nothing is written through
/// a symbolic link. `render -o` uses [`write_into`], which refuses a foreign folder.
pub fn write(files: &[File], out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for f in files {
        output::write_file(out, &f.path, &f.contents).map_err(|e| match e {
            OutputError::Io { error, .. } => error,
            other => std::io::Error::other(other.to_string()),
        })?;
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
        let plan_of = |target: &str| {
            let text = std::fs::read_to_string(format!(
                "{}/../examples/hello/plans/{target}.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            crate::plan::Plan::from_json(&text).unwrap()
        };
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
        assert!(!has_config(&plan_of("unix")), "no flags, no config");
        let mut xen = plan_of("xen");
        assert!(has_config(&xen));
        let config = manifest::cargo_config(&xen, &roots);
        assert!(
            config.contains("\"link-arg=-Wl,-T,/m/runtime/xen/xen.ld\""),
            "{config}"
        );
        xen.image.rustflags = vec!["\"\n[evil]".into()];
        let config = manifest::cargo_config(&xen, &roots);
        let parsed: toml::Table = toml::from_str(&config).unwrap();
        assert_eq!(parsed["build"]["rustflags"][0].as_str(), Some("\"\n[evil]"));
        assert!(
            crate_files(&xen, &roots, Path::new("/o")).is_err(),
            "flags other than the catalogue's are refused"
        );
    }

    #[test]
    fn constants_have_rust_types() {
        use crate::key::KeyType;
        use main_rs::constant;
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
