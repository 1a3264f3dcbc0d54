//! Checking a plan before rendering it: against its schema (names, ids, references, key
//! values) and against the built-in catalogue (its target and image), so that `render` never
//! turns a plan edited by hand, or written by another version, into a crate that does not
//! build or that does something else than the plan says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use super::{DeviceNames, Plan, MAX_VIA, PLAN_VERSION};
use crate::config::{Config, CrateSource};
use crate::key::{KeyType, Stage};
use crate::rust;

/// Whether `p` is a relative path that stays inside the folder it is relative to.
fn confined(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether `p` is a relative path (it may go up with `..`).
fn relative(p: &str) -> bool {
    !p.is_empty() && !p.contains('\0') && Path::new(p).is_relative()
}

impl Plan {
    /// Checks the plan against its schema and, when given, the catalogue's targets. Returns the
    /// type of each key, in order, for rendering; or the first problem found.
    pub fn check(&self, catalogue: Option<&Config>) -> Result<Vec<KeyType>, String> {
        if self.version != PLAN_VERSION {
            return Err(format!(
                "plan format version {}, but this mirage-nix renders version {PLAN_VERSION}",
                self.version
            ));
        }
        check_name(&self.name)?;
        if let Some(config) = catalogue {
            let Some(target) = config.targets.get(&self.target) else {
                let known: Vec<&str> = config.targets.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown target `{}`: targets are {}",
                    self.target.escape_debug(),
                    known.join(", ")
                ));
            };
            let expected = (
                target.image.replace("{name}", &self.name),
                &target.format,
                target.std,
                &target.runtime,
                &target.rustflags,
            );
            let image = &self.image;
            if expected
                != (
                    image.file.clone(),
                    &image.format,
                    image.std,
                    &image.runtime,
                    &image.rustflags,
                )
            {
                return Err(format!(
                    "its image for {} (file, format, runtime or rustc flags) is not what this mirage-nix builds for {}",
                    self.target, self.target
                ));
            }
        }
        rust::check_crate_name(&self.image.runtime)?;

        rust::check_crate_name(&self.unikernel.crate_name)?;
        if !relative(&self.unikernel.path) {
            return Err(format!(
                "the unikernel's crate path `{}` is not relative",
                self.unikernel.path.escape_debug()
            ));
        }
        rust::check_path(&self.unikernel.start)?;

        let mut crates = BTreeSet::new();
        for c in &self.crates {
            rust::check_crate_name(&c.name)?;
            if !crates.insert(c.name.as_str()) {
                return Err(format!("crate `{}` is listed twice", c.name));
            }
            for f in &c.features {
                rust::check_feature(f)?;
            }
            match &c.source {
                CrateSource::Mirage(p) if !confined(p) => {
                    return Err(format!(
                        "crate `{}` is not inside the mirage-nix tree (`{}`)",
                        c.name,
                        p.escape_debug()
                    ))
                }
                CrateSource::Local(p) if !relative(p) => {
                    return Err(format!(
                        "crate `{}` has a path that is not relative (`{}`)",
                        c.name,
                        p.escape_debug()
                    ))
                }
                CrateSource::Registry(v) => rust::check_version_req(v)?,
                _ => {}
            }
        }
        for needed in [
            self.unikernel.crate_name.as_str(),
            self.image.runtime.as_str(),
        ] {
            if !crates.contains(needed) {
                return Err(format!(
                    "crate `{needed}` is used but not listed in `crates`"
                ));
            }
        }

        let mut types = Vec::with_capacity(self.keys.len());
        let mut keys = BTreeMap::new();
        for k in &self.keys {
            let name_ok = !k.name.is_empty()
                && k.name.len() <= rust::MAX_NAME_BYTES
                && k.name.starts_with(|c: char| c.is_ascii_lowercase())
                && k.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !name_ok {
                return Err(format!("`{}` is not a key name", k.name.escape_debug()));
            }
            if keys.insert(k.name.replace('_', "-"), k).is_some() {
                return Err(format!("key `{}` is listed twice", k.name));
            }
            let ty = k.key_type()?;
            if let Some(text) = match &k.value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)) => {
                    Some(v.to_string())
                }
                _ => return Err(format!("key `{}` has a value of no key type", k.name)),
            } {
                ty.parse(&text)
                    .map_err(|e| format!("key `{}`: {e}", k.name))?;
            } else if !matches!(ty, KeyType::Ipv4Address | KeyType::Ipv4Prefix)
                && k.stage == Stage::Configure
            {
                return Err(format!("configure key `{}` has no value", k.name));
            }
            types.push(ty);
        }

        let mut ids = BTreeMap::new();
        let mut modules = BTreeSet::new();
        let mut connects = Vec::with_capacity(self.nodes.len() + 1);
        for n in &self.nodes {
            if !rust::is_identifier(&n.id) {
                return Err(format!(
                    "node id `{}` is not a Rust identifier",
                    n.id.escape_debug()
                ));
            }
            for r in n.args.iter().chain(&n.deps) {
                if !ids.contains_key(r.as_str()) {
                    return Err(format!(
                        "node `{}` uses `{}`, which is not a node connected before it",
                        n.id,
                        r.escape_debug()
                    ));
                }
            }
            if ids.insert(n.id.as_str(), n).is_some() || n.id == "args" {
                return Err(format!("node id `{}` is used twice", n.id));
            }
            if !crates.contains(n.crate_name.as_str()) {
                return Err(format!(
                    "node `{}` uses crate `{}`, which is not listed in `crates`",
                    n.id,
                    n.crate_name.escape_debug()
                ));
            }
            if let Some(e) = &n.embed {
                if !confined(&e.dir) {
                    return Err(format!(
                        "node `{}` embeds `{}`, which is not a folder inside the unikernel's directory",
                        n.id,
                        e.dir.escape_debug()
                    ));
                }
                if !rust::is_identifier(&e.module) || !modules.insert(e.module.as_str()) {
                    return Err(format!(
                        "node `{}` embeds into module `{}`, which is not a fresh Rust identifier",
                        n.id,
                        e.module.escape_debug()
                    ));
                }
            }
            if let Some(d) = &n.disk {
                if !confined(&d.dir) || d.file != format!("{}.{}", d.dir, d.format.extension()) {
                    return Err(format!(
                        "node `{}` makes the disk `{}` of `{}`, which is not a folder inside the unikernel's directory and its image",
                        n.id,
                        d.file.escape_debug(),
                        d.dir.escape_debug()
                    ));
                }
            }
            if let Some(m) = &n.manifest {
                let names = DeviceNames::of(&self.image.format);
                if !names.valid(&m.name) {
                    return Err(format!(
                        "`{}` cannot name a {} device",
                        m.name.escape_debug(),
                        names.platform()
                    ));
                }
            }
            if n.via.len() > MAX_VIA + 1 {
                return Err(format!(
                    "node `{}` has more than {MAX_VIA} choices in `via`",
                    n.id
                ));
            }
            connects.push(n.connect.clone());
        }
        for r in self.main.args.iter().chain(&self.main.deps) {
            if !ids.contains_key(r.as_str()) {
                return Err(format!(
                    "main uses `{}`, which is not a node of the plan",
                    r.escape_debug()
                ));
            }
        }
        for k in &self.main.keys {
            if !keys.contains_key(&k.replace('_', "-")) {
                return Err(format!(
                    "main reads key `{}`, which is not a key of the plan",
                    k.escape_debug()
                ));
            }
        }
        let call_ok = self
            .main
            .call
            .strip_prefix(&self.unikernel.start)
            .is_some_and(|rest| rest.starts_with('('));
        if !call_ok {
            return Err(format!(
                "main's call `{}` does not call `{}`",
                self.main.call.escape_debug(),
                self.unikernel.start
            ));
        }
        connects.push(self.main.call.clone());
        let too_long = connects
            .iter()
            .any(|c| c.len() > crate::template::MAX_TEMPLATE_BYTES * 4);
        if too_long {
            return Err("a node's connect code is longer than any template can make it".into());
        }
        let results = rust::check_expressions(connects);
        for (i, r) in results.into_iter().enumerate() {
            if let Err(e) = r {
                let what = self.nodes.get(i).map_or("main's call".to_string(), |n| {
                    format!("the connect code of node `{}`", n.id)
                });
                return Err(format!("{what}: {e}"));
            }
        }
        Ok(types)
    }
}

/// Checks a unikernel's name: it names the image file, a binary and a package.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= rust::MAX_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "`{}` is not a unikernel name: use 1 to {} ASCII letters, digits, `_` and `-`, starting with a letter",
            name.escape_debug(),
            rust::MAX_NAME_BYTES
        ));
    }
    let ident = name.replace('-', "_");
    if rust::is_keyword(&ident) || ["build", "deps", "examples", "incremental"].contains(&name) {
        return Err(format!(
            "`{name}` cannot name a unikernel: it is a Rust keyword or a folder name cargo reserves"
        ));
    }
    Ok(())
}
