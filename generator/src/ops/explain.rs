//! `explain A B` (`why-rebuild`): why two builds are different derivations, the question every
//! Nix user asks when a cache misses.
//!
//! Each side is a derivation: a `.drv` path, a flake installable (`.#hello-unix`), a plan file
//! (its image in the flake that builds it) or a git revision of the mirage-nix tree with
//! `--attr`. Their closures come from `nix show-derivation -r` (Nix 2.8; `nix derivation
//! show` later), and [`explain`] compares them: inputs are paired by name (the store path
//! without its hash), an environment variable counts as changed only if it differs after
//! the paired inputs' paths are substituted, changed sources list the files that differ,
//! and a changed input derivation is explained the same way, recursively, down to the
//! first derivations whose own inputs explain the change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Diagnostic, Report};

use super::nix::{locate_flake, nix_command, nix_config};

/// One output of a derivation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Output {
    /// Its store path.
    #[serde(default)]
    pub path: String,
    /// The expected hash of a fixed-output derivation.
    #[serde(default)]
    pub hash: Option<String>,
}

/// A derivation as `nix show-derivation` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Derivation {
    /// Output name to output.
    #[serde(default)]
    pub outputs: BTreeMap<String, Output>,
    /// Store paths (sources) it reads.
    #[serde(default)]
    pub input_srcs: Vec<String>,
    /// Derivations it needs, with the outputs it reads.
    #[serde(default)]
    pub input_drvs: BTreeMap<String, Vec<String>>,
    /// The system it builds on.
    #[serde(default)]
    pub platform: String,
    /// The builder program.
    #[serde(default)]
    pub builder: String,
    /// The builder's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The builder's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Derivations by `.drv` path (a closure).
pub type Derivations = BTreeMap<String, Derivation>;

/// Parses `nix show-derivation`'s (or `nix derivation show`'s) JSON.
pub fn parse_derivations(text: &str) -> Result<Derivations, String> {
    let mut drvs: Derivations =
        serde_json::from_str(text).map_err(|e| format!("not a derivation listing: {e}"))?;
    // `nix derivation show` (2.19+) names derivations without /nix/store/.
    if !drvs.keys().any(|k| k.starts_with('/')) {
        drvs = drvs
            .into_iter()
            .map(|(k, v)| (format!("/nix/store/{k}"), v))
            .collect();
    }
    Ok(drvs)
}

/// A store path's name: `/nix/store/<hash>-hello-unix.drv` is `hello-unix`.
pub fn store_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

/// One reason two derivations differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The derivation's name.
    Name(String, String),
    /// The system, builder or arguments.
    Builder(String, String, String),
    /// The expected hash of a fixed-output derivation.
    OutputHash(String, Option<String>, Option<String>),
    /// An environment variable (after substituting paired inputs), `None` when absent.
    Env(String, Option<String>, Option<String>),
    /// A source path: its name, both paths (`None` when absent) and the files that differ.
    Source {
        /// The source's name.
        name: String,
        /// Its path on side A.
        a: Option<String>,
        /// Its path on side B.
        b: Option<String>,
        /// Files that differ, relative to the source (empty when unknown or a single file).
        files: Vec<String>,
    },
    /// An input derivation, with why it differs (`None` when absent on one side).
    Input {
        /// The input's name.
        name: String,
        /// Its path on side A.
        a: Option<String>,
        /// Its path on side B.
        b: Option<String>,
        /// Why it differs (empty when it was explained earlier or on one side only).
        changes: Vec<Change>,
    },
}

/// Why derivation `b` differs from `a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Side A's derivation.
    pub a: String,
    /// Side B's derivation.
    pub b: String,
    /// The differences; empty when they are the same derivation.
    pub changes: Vec<Change>,
}

/// Pairs two lists of store paths by name; unmatched paths pair with `None`.
fn pair_by_name<'a>(
    a: impl IntoIterator<Item = &'a String>,
    b: impl IntoIterator<Item = &'a String>,
) -> Vec<(String, Option<&'a String>, Option<&'a String>)> {
    let mut by: BTreeMap<&str, (Vec<&String>, Vec<&String>)> = BTreeMap::new();
    for p in a {
        by.entry(store_name(p)).or_default().0.push(p);
    }
    for p in b {
        by.entry(store_name(p)).or_default().1.push(p);
    }
    let mut out = Vec::new();
    for (name, (mut xs, mut ys)) in by {
        xs.sort();
        ys.sort();
        for i in 0..xs.len().max(ys.len()) {
            out.push((name.to_string(), xs.get(i).copied(), ys.get(i).copied()));
        }
    }
    out
}

/// Files that differ between two store paths (directories or files), at most `limit`.
pub fn differing_files(a: &Path, b: &Path, limit: usize) -> Vec<String> {
    fn list(root: &Path) -> BTreeMap<String, PathBuf> {
        walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| !e.file_type().is_dir())
            .map(|e| {
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                (rel.to_string_lossy().into_owned(), e.path().to_path_buf())
            })
            .collect()
    }
    if !a.is_dir() || !b.is_dir() {
        return Vec::new();
    }
    let (la, lb) = (list(a), list(b));
    let names: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
    let mut out = Vec::new();
    for n in names {
        let note = match (la.get(n), lb.get(n)) {
            (Some(x), Some(y)) => {
                if std::fs::read(x).ok() == std::fs::read(y).ok() {
                    continue;
                }
                n.clone()
            }
            (Some(_), None) => format!("{n} (removed)"),
            _ => format!("{n} (added)"),
        };
        out.push(note);
        if out.len() == limit {
            out.push("...".into());
            break;
        }
    }
    out
}

/// Explains why `b_root` (in `b`) differs from `a_root` (in `a`).
pub fn explain(a: &Derivations, a_root: &str, b: &Derivations, b_root: &str) -> Explanation {
    let mut seen = BTreeSet::new();
    Explanation {
        a: a_root.to_string(),
        b: b_root.to_string(),
        changes: compare(a, a_root, b, b_root, &mut seen),
    }
}

fn compare(
    a: &Derivations,
    a_path: &str,
    b: &Derivations,
    b_path: &str,
    seen: &mut BTreeSet<(String, String)>,
) -> Vec<Change> {
    if a_path == b_path {
        return Vec::new();
    }
    let empty = Derivation::default();
    let (da, db) = (
        a.get(a_path).unwrap_or(&empty),
        b.get(b_path).unwrap_or(&empty),
    );
    let mut changes = Vec::new();
    if store_name(a_path) != store_name(b_path) {
        changes.push(Change::Name(
            store_name(a_path).into(),
            store_name(b_path).into(),
        ));
    }
    // Paths of A that stand for paths of B: own outputs, paired inputs and sources.
    let mut subst: Vec<(String, String)> = Vec::new();
    for (name, o) in &da.outputs {
        if let Some(ob) = db.outputs.get(name) {
            subst.push((o.path.clone(), ob.path.clone()));
            if o.hash != ob.hash {
                changes.push(Change::OutputHash(
                    name.clone(),
                    o.hash.clone(),
                    ob.hash.clone(),
                ));
            }
        }
    }
    let mut inputs = Vec::new();
    for (name, x, y) in pair_by_name(da.input_drvs.keys(), db.input_drvs.keys()) {
        match (x, y) {
            (Some(x), Some(y)) => {
                let (ox, oy) = (a.get(x).map(|d| &d.outputs), b.get(y).map(|d| &d.outputs));
                if let (Some(ox), Some(oy)) = (ox, oy) {
                    for (n, o) in ox {
                        if let Some(p) = oy.get(n) {
                            subst.push((o.path.clone(), p.path.clone()));
                        }
                    }
                }
                if x == y {
                    continue;
                }
                let key = (x.clone(), y.clone());
                let sub = if seen.insert(key) {
                    compare(a, x, b, y, seen)
                } else {
                    Vec::new()
                };
                inputs.push(Change::Input {
                    name,
                    a: Some(x.clone()),
                    b: Some(y.clone()),
                    changes: sub,
                });
            }
            (x, y) => inputs.push(Change::Input {
                name,
                a: x.cloned(),
                b: y.cloned(),
                changes: Vec::new(),
            }),
        }
    }
    for (name, x, y) in pair_by_name(&da.input_srcs, &db.input_srcs) {
        if let (Some(x), Some(y)) = (x, y) {
            subst.push((x.clone(), y.clone()));
            if x == y {
                continue;
            }
        }
        let files = match (x, y) {
            (Some(x), Some(y)) => differing_files(Path::new(x), Path::new(y), 10),
            _ => Vec::new(),
        };
        changes.push(Change::Source {
            name,
            a: x.cloned(),
            b: y.cloned(),
            files,
        });
    }
    // Longest first, so a path is not replaced inside a longer one.
    subst.sort_by(|x, y| y.0.len().cmp(&x.0.len()).then(x.cmp(y)));
    let rewrite = |s: &str| {
        let mut s = s.to_string();
        for (from, to) in &subst {
            if s.contains(from.as_str()) {
                s = s.replace(from.as_str(), to);
            }
        }
        s
    };
    for (what, x, y) in [
        ("system", da.platform.clone(), db.platform.clone()),
        ("builder", rewrite(&da.builder), db.builder.clone()),
        (
            "args",
            rewrite(&da.args.join(" ")),
            db.args.join(" ").to_string(),
        ),
    ] {
        if x != y {
            changes.push(Change::Builder(what.into(), x, y));
        }
    }
    let keys: BTreeSet<&String> = da.env.keys().chain(db.env.keys()).collect();
    for k in keys {
        let x = da.env.get(k).map(|v| rewrite(v));
        let y = db.env.get(k).cloned();
        if x != y {
            changes.push(Change::Env(k.clone(), da.env.get(k).cloned(), y));
        }
    }
    changes.extend(inputs);
    changes
}

fn shorten(s: &str, max: usize) -> String {
    let one = s.replace('\n', "\\n");
    if one.chars().count() <= max {
        one
    } else {
        format!("{}...", one.chars().take(max).collect::<String>())
    }
}

/// Where two texts first differ: the line number and both lines, cut to show the
/// difference.
fn first_difference(x: &str, y: &str) -> (usize, String, String) {
    let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split('\n').collect(), y.split('\n').collect());
    let line = (0..xs.len().max(ys.len()))
        .find(|&i| xs.get(i) != ys.get(i))
        .unwrap_or(0);
    let (a, b) = (
        xs.get(line).copied().unwrap_or(""),
        ys.get(line).copied().unwrap_or(""),
    );
    let common = a.chars().zip(b.chars()).take_while(|(p, q)| p == q).count();
    let from = common.saturating_sub(20);
    let cut = |s: &str| {
        let rest: String = s.chars().skip(from).collect();
        let rest = shorten(&rest, 70);
        if from > 0 {
            format!("...{rest}")
        } else {
            rest
        }
    };
    (line, cut(a), cut(b))
}

fn render_changes(out: &mut String, changes: &[Change], depth: usize) {
    let pad = "  ".repeat(depth);
    let opt = |p: &Option<String>| p.clone().unwrap_or_else(|| "(absent)".into());
    for c in changes {
        match c {
            Change::Name(x, y) => {
                let _ = writeln!(out, "{pad}name: {x} -> {y}");
            }
            Change::Builder(what, x, y) => {
                let _ = writeln!(out, "{pad}{what}: {} -> {}", shorten(x, 60), shorten(y, 60));
            }
            Change::OutputHash(name, x, y) => {
                let _ = writeln!(out, "{pad}fixed output {name}: {} -> {}", opt(x), opt(y));
            }
            Change::Env(k, Some(x), Some(y)) => {
                let (line, a, b) = first_difference(x, y);
                let at = if x.contains('\n') || y.contains('\n') {
                    format!(" (line {})", line + 1)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "{pad}env {k}{at}: {a} -> {b}");
            }
            Change::Env(k, x, y) => {
                let _ = writeln!(
                    out,
                    "{pad}env {k}: {} -> {}",
                    shorten(&opt(x), 60),
                    shorten(&opt(y), 60)
                );
            }
            Change::Source { name, a, b, files } => {
                let what = match (a, b) {
                    (Some(_), Some(_)) => "changed",
                    (None, _) => "added",
                    _ => "removed",
                };
                let _ = writeln!(out, "{pad}source {name} {what}: {} -> {}", opt(a), opt(b));
                for f in files {
                    let _ = writeln!(out, "{pad}  differs: {f}");
                }
            }
            Change::Input {
                name,
                a,
                b,
                changes,
            } => {
                let what = match (a, b) {
                    (Some(_), Some(_)) if changes.is_empty() => "changed (explained above)",
                    (Some(_), Some(_)) => "changed, because:",
                    (None, _) => "added",
                    _ => "removed",
                };
                let _ = writeln!(out, "{pad}input {name} {what}");
                render_changes(out, changes, depth + 1);
            }
        }
    }
}

impl Explanation {
    /// The explanation as an indented tree, one difference per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.changes.is_empty() {
            let _ = writeln!(
                out,
                "same derivation: {} (a build of one is a build of the other)",
                self.a
            );
            return out;
        }
        let _ = writeln!(out, "{} differs from {}:", self.b, self.a);
        render_changes(&mut out, &self.changes, 1);
        out
    }

    /// The names of the derivations whose own inputs (not only input derivations) differ:
    /// where the change starts.
    pub fn roots(&self) -> Vec<String> {
        fn walk(name: &str, changes: &[Change], out: &mut Vec<String>) {
            if changes.iter().any(|c| !matches!(c, Change::Input { .. })) {
                out.push(name.to_string());
            }
            for c in changes {
                if let Change::Input { name, changes, .. } = c {
                    walk(name, changes, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(store_name(&self.b), &self.changes, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

fn fail(message: String, help: impl Into<String>) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error("explain", None, message).with_help(help)],
    }
}

/// How to find the derivations to compare.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// The mirage-nix tree (revisions are its git revisions; plans inside it build there).
    pub mirage_root: PathBuf,
    /// The package to compare when a side is a git revision (e.g. `hello-unix`).
    pub attr: Option<String>,
    /// The `nix` program.
    pub nix: PathBuf,
}

/// What a side names, before Nix is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// A `.drv` file.
    Drv(String),
    /// A flake installable.
    Installable(String),
}

/// Works out what `spec` names: a `.drv`, an installable (`flake#attr`), a plan file (its
/// image in the flake that builds it), or, with `attr`, a git revision of the mirage-nix tree
/// (`.` or `WORKTREE` for the working tree).
pub fn side(spec: &str, opts: &ExplainOptions) -> Result<Side, Report> {
    if spec.ends_with(".drv") {
        return Ok(Side::Drv(spec.to_string()));
    }
    if spec.contains('#') {
        return Ok(Side::Installable(spec.to_string()));
    }
    let path = Path::new(spec);
    if spec.ends_with(".json") && path.is_file() {
        let plan = super::read_plan(path)?;
        let dir = path
            .parent()
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let flake = locate_flake(&opts.mirage_root, dir)?;
        return Ok(Side::Installable(format!(
            "{}#{}",
            flake.display(),
            plan.nix_attr()
        )));
    }
    let attr = opts.attr.as_deref().ok_or_else(|| {
        fail(
            format!("`{spec}` is not a .drv, an installable (FLAKE#ATTR) nor a plan file"),
            "to compare git revisions, name the package: `mirage-nix explain HEAD~1 HEAD --attr hello-unix`",
        )
    })?;
    let root = std::fs::canonicalize(&opts.mirage_root).unwrap_or(opts.mirage_root.clone());
    if spec == "." || spec == "WORKTREE" {
        return Ok(Side::Installable(format!("{}#{attr}", root.display())));
    }
    let rev = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{spec}^{{commit}}"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok_or_else(|| {
            fail(
                format!("`{spec}` is not a git revision of {}", root.display()),
                "give a commit (HEAD~1, a hash, a branch), `.` for the working tree, a .drv, \
                 FLAKE#ATTR or a plan file",
            )
        })?;
    Ok(Side::Installable(format!(
        "git+file://{}?rev={rev}&allRefs=1#{attr}",
        root.display()
    )))
}

/// The `.drv` path of a side (evaluating an installable with `nix eval`).
pub fn drv_path(side: &Side, opts: &ExplainOptions) -> Result<String, Report> {
    let installable = match side {
        Side::Drv(p) => return Ok(p.clone()),
        Side::Installable(i) => i,
    };
    let config = nix_config(&opts.mirage_root);
    let out = nix_command(&opts.nix, config.as_deref())
        .args(["eval", "--raw"])
        .arg(format!("{installable}.drvPath"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            fail(
                format!("cannot run nix: {e}"),
                "install Nix (scripts/setup-nix)",
            )
        })?;
    if !out.status.success() {
        return Err(fail(
            format!("cannot evaluate {installable}"),
            "read nix's error above; check the attribute with `nix flake show`",
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The closure of `drv`, from `nix show-derivation -r` (or `nix derivation show -r`).
pub fn closure(drv: &str, opts: &ExplainOptions) -> Result<Derivations, Report> {
    let config = nix_config(&opts.mirage_root);
    let mut last = String::new();
    for sub in [&["show-derivation"][..], &["derivation", "show"][..]] {
        let out = nix_command(&opts.nix, config.as_deref())
            .args(sub)
            .args(["--recursive", drv])
            .output()
            .map_err(|e| {
                fail(
                    format!("cannot run nix: {e}"),
                    "install Nix (scripts/setup-nix)",
                )
            })?;
        if out.status.success() {
            return parse_derivations(&String::from_utf8_lossy(&out.stdout))
                .map_err(|e| fail(format!("{drv}: {e}"), "report this"));
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    Err(fail(
        format!("cannot show derivation {drv}: {}", last.trim()),
        "check that the .drv exists (`nix eval .#<package>.drvPath` writes it)",
    ))
}

/// Resolves both sides and explains their difference.
pub fn explain_specs(a: &str, b: &str, opts: &ExplainOptions) -> Result<Explanation, Report> {
    let (sa, sb) = (side(a, opts)?, side(b, opts)?);
    let (da, db) = (drv_path(&sa, opts)?, drv_path(&sb, opts)?);
    let (ca, cb) = (closure(&da, opts)?, closure(&db, opts)?);
    Ok(explain(&ca, &da, &cb, &db))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const K: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn drv(out: &str, srcs: &[&str], inputs: &[&str], env: &[(&str, &str)]) -> Derivation {
        Derivation {
            outputs: [(
                "out".to_string(),
                Output {
                    path: out.into(),
                    hash: None,
                },
            )]
            .into(),
            input_srcs: srcs.iter().map(|s| s.to_string()).collect(),
            input_drvs: inputs
                .iter()
                .map(|s| (s.to_string(), vec!["out".to_string()]))
                .collect(),
            platform: "x86_64-linux".into(),
            builder: "/bin/bash".into(),
            args: vec![],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("out".to_string(), out.to_string())])
                .collect(),
        }
    }

    /// hello-unix <- deps layer, with sources; side B changes only the hello source.
    fn sides(b_src: &str, b_flags: &str) -> (Derivations, Derivations) {
        let deps = drv(&format!("{H}-mirage-unix-deps"), &[], &[], &[]);
        let a: Derivations = [
            (format!("{H}-mirage-unix-deps.drv"), deps.clone()),
            (
                format!("{H}-hello-unix.drv"),
                drv(
                    &format!("{H}-hello-unix"),
                    &[&format!("{H}-examples-hello-src")],
                    &[&format!("{H}-mirage-unix-deps.drv")],
                    &[
                        ("cargoArtifacts", &format!("{H}-mirage-unix-deps")),
                        ("extraRustflags", ""),
                    ],
                ),
            ),
        ]
        .into();
        let b: Derivations = [
            (format!("{H}-mirage-unix-deps.drv"), deps),
            (
                format!("{K}-hello-unix.drv"),
                drv(
                    &format!("{K}-hello-unix"),
                    &[b_src],
                    &[&format!("{H}-mirage-unix-deps.drv")],
                    &[
                        ("cargoArtifacts", &format!("{H}-mirage-unix-deps")),
                        ("extraRustflags", b_flags),
                    ],
                ),
            ),
        ]
        .into();
        (a, b)
    }

    #[test]
    fn store_names() {
        assert_eq!(store_name(&format!("{H}-hello-unix.drv")), "hello-unix");
        assert_eq!(store_name(&format!("{H}-log-0.4.tar.gz")), "log-0.4.tar.gz");
        assert_eq!(store_name("plain"), "plain");
    }

    #[test]
    fn the_same_derivation_has_no_changes() {
        let (a, _) = sides("", "");
        let e = explain(
            &a,
            &format!("{H}-hello-unix.drv"),
            &a,
            &format!("{H}-hello-unix.drv"),
        );
        assert!(e.changes.is_empty());
        assert!(e.render().starts_with("same derivation"));
    }

    #[test]
    fn a_changed_source_is_named_and_its_consequences_are_not() {
        let (a, b) = sides(&format!("{K}-examples-hello-src"), "");
        let e = explain(
            &a,
            &format!("{H}-hello-unix.drv"),
            &b,
            &format!("{K}-hello-unix.drv"),
        );
        // The `out` variable differs only because of the change: not reported.
        assert_eq!(
            e.changes,
            [Change::Source {
                name: "examples-hello-src".into(),
                a: Some(format!("{H}-examples-hello-src")),
                b: Some(format!("{K}-examples-hello-src")),
                files: vec![],
            }]
        );
        assert_eq!(e.roots(), ["hello-unix"]);
        assert!(e.render().contains("source examples-hello-src changed"));
    }

    #[test]
    fn environment_changes_are_named() {
        let (a, b) = sides(&format!("{H}-examples-hello-src"), "-C opt-level=s");
        let e = explain(
            &a,
            &format!("{H}-hello-unix.drv"),
            &b,
            &format!("{K}-hello-unix.drv"),
        );
        assert_eq!(
            e.changes,
            [Change::Env(
                "extraRustflags".into(),
                Some(String::new()),
                Some("-C opt-level=s".into())
            )]
        );
    }

    #[test]
    fn changed_inputs_are_explained_recursively() {
        let leaf_a = drv(
            &format!("{H}-mirage-unix-deps"),
            &[&format!("{H}-runtime-unix-manifest")],
            &[],
            &[],
        );
        let leaf_b = drv(
            &format!("{K}-mirage-unix-deps"),
            &[&format!("{K}-runtime-unix-manifest")],
            &[],
            &[],
        );
        let top = |x: &str, dep: &str| {
            drv(
                &format!("{x}-hello-unix"),
                &[],
                &[&format!("{dep}-mirage-unix-deps.drv")],
                &[("cargoArtifacts", &format!("{dep}-mirage-unix-deps"))],
            )
        };
        let a: Derivations = [
            (format!("{H}-mirage-unix-deps.drv"), leaf_a),
            (format!("{H}-hello-unix.drv"), top(H, H)),
        ]
        .into();
        let b: Derivations = [
            (format!("{K}-mirage-unix-deps.drv"), leaf_b),
            (format!("{K}-hello-unix.drv"), top(K, K)),
        ]
        .into();
        let e = explain(
            &a,
            &format!("{H}-hello-unix.drv"),
            &b,
            &format!("{K}-hello-unix.drv"),
        );
        assert_eq!(e.changes.len(), 1, "{:?}", e.changes);
        let Change::Input { name, changes, .. } = &e.changes[0] else {
            panic!("{:?}", e.changes)
        };
        assert_eq!(name, "mirage-unix-deps");
        assert!(
            matches!(&changes[0], Change::Source { name, .. } if name == "runtime-unix-manifest")
        );
        assert_eq!(e.roots(), ["mirage-unix-deps"]);
        let text = e.render();
        assert!(
            text.contains("input mirage-unix-deps changed, because:"),
            "{text}"
        );
        assert!(
            text.contains("    source runtime-unix-manifest changed"),
            "{text}"
        );
    }

    #[test]
    fn long_values_show_where_they_differ() {
        let x = format!("devices keep {H}-devices-src \nexamples/hello fresh {H}-hello-src ");
        let y = format!("devices keep {H}-devices-src \nexamples/hello fresh {K}-hello-src ");
        let (line, a, b) = first_difference(&x, &y);
        assert_eq!(line, 1);
        assert!(a.starts_with("...") && a.contains("aaaa"), "{a}");
        assert!(b.contains("bbbb"), "{b}");
    }

    #[test]
    fn added_and_removed_inputs() {
        let a: Derivations = [(
            format!("{H}-x.drv"),
            drv(&format!("{H}-x"), &[&format!("{H}-old")], &[], &[]),
        )]
        .into();
        let b: Derivations = [(
            format!("{K}-x.drv"),
            drv(&format!("{K}-x"), &[&format!("{K}-new")], &[], &[]),
        )]
        .into();
        let e = explain(&a, &format!("{H}-x.drv"), &b, &format!("{K}-x.drv"));
        let text = e.render();
        assert!(text.contains("source new added"), "{text}");
        assert!(text.contains("source old removed"), "{text}");
    }

    #[test]
    fn differing_files_of_two_trees() {
        let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for d in [x.path(), y.path()] {
            std::fs::create_dir_all(d.join("src")).unwrap();
            std::fs::write(d.join("Cargo.toml"), "same").unwrap();
        }
        std::fs::write(x.path().join("src/lib.rs"), "a").unwrap();
        std::fs::write(y.path().join("src/lib.rs"), "b").unwrap();
        std::fs::write(y.path().join("src/new.rs"), "b").unwrap();
        assert_eq!(
            differing_files(x.path(), y.path(), 10),
            ["src/lib.rs", "src/new.rs (added)"]
        );
    }

    #[test]
    fn parses_show_derivation_json() {
        let text = format!(
            r#"{{"{H}-x.drv":{{"outputs":{{"out":{{"path":"{H}-x"}}}},"inputSrcs":["{H}-s"],"inputDrvs":{{}},"platform":"x86_64-linux","builder":"/bin/bash","args":["-e"],"env":{{"out":"{H}-x"}}}}}}"#
        );
        let d = parse_derivations(&text).unwrap();
        assert_eq!(d[&format!("{H}-x.drv")].input_srcs, [format!("{H}-s")]);
        // `nix derivation show` leaves out the store directory.
        let short = text.replace("/nix/store/", "");
        let d = parse_derivations(&short).unwrap();
        assert!(d.contains_key(&format!("{H}-x.drv")));
    }

    #[test]
    fn sides_are_drvs_installables_plans_or_revisions() {
        let root = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap();
        let opts = ExplainOptions {
            mirage_root: root.clone(),
            attr: None,
            nix: "nix".into(),
        };
        assert_eq!(
            side("/nix/store/x.drv", &opts).unwrap(),
            Side::Drv("/nix/store/x.drv".into())
        );
        assert_eq!(
            side(".#hello-unix", &opts).unwrap(),
            Side::Installable(".#hello-unix".into())
        );
        let plan = root.join("examples/hello/plans/unix.json");
        assert_eq!(
            side(plan.to_str().unwrap(), &opts).unwrap(),
            Side::Installable(format!("{}#hello-unix", root.display()))
        );
        assert!(side("HEAD", &opts).unwrap_err().render().contains("--attr"));
        let opts = ExplainOptions {
            attr: Some("hello-unix".into()),
            ..opts
        };
        assert_eq!(
            side(".", &opts).unwrap(),
            Side::Installable(format!("{}#hello-unix", root.display()))
        );
        assert!(side("no-such-revision-xyz", &opts).is_err());
    }
}
