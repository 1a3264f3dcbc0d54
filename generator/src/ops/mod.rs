//! The commands' logic, callable from tests: each function takes plain options and returns
//! what the command prints or writes. The binary only parses arguments and calls these.
//!
//! Files a unikernel's directory holds:
//! - `plans/<target>.json`: the committed plans, one per target ([`plan_path`]);
//! - `.mirage-nix/`: local state, not committed: the last configured target
//!   ([`Remembered`]) and rendered crates of `build`.

mod build;
pub mod completions;
mod configure;
mod describe;
pub mod explain;
pub mod nix;
mod query;
pub mod run;

pub use build::{build, build_image, crate_dir, write_disks, BuildOptions, Built, ImageBuild};
pub use configure::{check_plans, configure, configure_with, Outcome, Stale, Writes};
pub use describe::{catalogue, default_drawing, describe, describe_json, targets, DescribeFormat};
pub use explain::{explain_specs, ExplainOptions, Explanation};
pub use nix::{build_with_nix, find_nix, NixOptions};
pub use query::{query, QueryInfo};

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Report};
use crate::eval::Context;
use crate::plan::Plan;
use crate::Unikernel;

/// The folder of a unikernel's committed plans.
pub const PLANS_DIR: &str = "plans";

/// The folder of a unikernel's local, uncommitted state.
pub const STATE_DIR: &str = ".mirage-nix";

/// Where the plan of `target` lives.
pub fn plan_path(dir: &Path, target: &str) -> PathBuf {
    dir.join(PLANS_DIR).join(format!("{target}.json"))
}

/// What `configure` remembers for later commands: the target it was last run for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    /// The target of the last `configure`.
    pub target: String,
}

impl Remembered {
    fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_DIR).join("context.json")
    }

    /// The remembered state, if `configure` ran here.
    pub fn read(dir: &Path) -> Option<Remembered> {
        let text = crate::input::read_text(&Self::path(dir)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records the state.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join(STATE_DIR))?;
        std::fs::write(
            Self::path(dir),
            serde_json::to_string(self).expect("serialisable") + "\n",
        )
    }
}

/// The target a command works on: the one given, else the last configured, else `unix`.
pub fn default_target(dir: &Path, given: Option<&str>) -> String {
    choose_target(dir, given).target
}

/// The target of a command that was given none: `configure` remembers the target it was
/// last run for, as Mirage's context file does; else this one.
pub const DEFAULT_TARGET: &str = "unix";

/// Why a command works on the target it works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetReason {
    /// `-t` named it.
    Given,
    /// `configure` was last run for it in this unikernel's directory.
    LastConfigured,
    /// Nothing named one: [`DEFAULT_TARGET`].
    Default,
}

/// The target a command works on, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetChoice {
    /// The target.
    pub target: String,
    /// Why it is that one.
    pub reason: TargetReason,
}

impl TargetChoice {
    /// `explain(dir, targets)` is one line saying which target a command without `-t` chose
    /// for the unikernel in `dir` and why, with how to choose another of `targets`; `None`
    /// when `-t` named it.
    pub fn explain<'a>(
        &self,
        dir: &Path,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let why = match self.reason {
            TargetReason::Given => return None,
            TargetReason::LastConfigured => format!(
                "the target `mirage-nix configure` was last run for in {}",
                dir.display()
            ),
            TargetReason::Default => format!("the default: {} was never configured", dir.display()),
        };
        let others: Vec<&str> = targets.into_iter().collect();
        Some(format!(
            "target {} ({why}); choose another with -t {}",
            self.target,
            others.join("|")
        ))
    }
}

/// `choose_target(dir, given)` is the target a command on the unikernel in `dir` works on:
/// the one given with `-t`, else the last configured, else [`DEFAULT_TARGET`].
pub fn choose_target(dir: &Path, given: Option<&str>) -> TargetChoice {
    let (target, reason) = match (given, Remembered::read(dir)) {
        (Some(t), _) => (t.to_string(), TargetReason::Given),
        (None, Some(r)) => (r.target, TargetReason::LastConfigured),
        (None, None) => (DEFAULT_TARGET.to_string(), TargetReason::Default),
    };
    TargetChoice { target, reason }
}

/// Reads a plan file, with errors that name it and say how to regenerate it.
pub fn read_plan(path: &Path) -> Result<Plan, Report> {
    let fail = |message: String, help: String| Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error("bad-plan", None, message).with_help(help)],
    };
    let text = crate::input::read_text_up_to(path, crate::input::MAX_PLAN_BYTES).map_err(|e| {
        fail(
            format!("cannot read plan `{}`: {e}", path.display()),
            regenerate(path, None),
        )
    })?;
    Plan::from_json(&text).map_err(|e| {
        fail(
            format!("plan `{}`: {e}", path.display()),
            regenerate(path, Some(&text)),
        )
    })
}

/// The command that regenerates a plan read from `path`, as a help line.
pub fn regenerate_hint(path: &Path, plan: Option<&Plan>) -> String {
    let text = plan.map(|p| format!("{{\"target\": {:?}}}", p.target));
    regenerate(path, text.as_deref())
}

/// The command that regenerates the plan at `path`: its target is the one the plan names (or
/// the file's name, when that is a target), its unikernel the folder above `plans/`.
fn regenerate(path: &Path, text: Option<&str>) -> String {
    const TARGETS: &[&str] = &["unix", "xen", "hvt", "spt"];
    let named = text
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("target")?.as_str().map(str::to_string));
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let target = named
        .into_iter()
        .chain(stem)
        .find(|t| TARGETS.contains(&t.as_str()))
        .unwrap_or_else(|| "TARGET".to_string());
    let parent = path
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == PLANS_DIR));
    let dir = match parent.and_then(Path::parent) {
        Some(d) if d.as_os_str().is_empty() => ".".to_string(),
        Some(d) => d.display().to_string(),
        None => "DIR".to_string(),
    };
    format!("regenerate it with `mirage-nix configure -t {target} {dir}`")
}

/// The context for a command on a unikernel: the committed plan's explicit keys for the
/// target, if there is a plan, overridden by the keys given.
pub fn context_with_plan<'a>(
    uk: &Unikernel,
    dir: &Path,
    target: &str,
    given: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Context, Report> {
    let mut ctx = match read_plan(&plan_path(dir, target)) {
        Ok(plan) if plan.target == target => uk
            .context_of(&plan)
            .unwrap_or_else(|_| Context::new(target)),
        _ => Context::new(target),
    };
    let given = uk.context(target, given)?;
    ctx.explicit.extend(given.explicit);
    Ok(ctx)
}

/// The mirage-nix tree holding `devices/` and `runtime/`: the one given, else
/// `$MIRAGE_NIX_ROOT`, else the tree this binary was built from.
pub fn mirage_root(given: Option<&Path>) -> Result<PathBuf, Report> {
    let candidate = given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("MIRAGE_NIX_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if candidate.join("devices").is_dir() && candidate.join("runtime").is_dir() {
        Ok(std::fs::canonicalize(&candidate).unwrap_or(candidate))
    } else {
        Err(Report {
            sources: Default::default(),
            diagnostics: vec![Diagnostic::error(
                "no-mirage-root",
                None,
                format!(
                    "`{}` is not a mirage-nix tree (no devices/ and runtime/)",
                    candidate.display()
                ),
            )
            .with_help("pass --mirage-root DIR or set MIRAGE_NIX_ROOT to the mirage-nix checkout")],
        })
    }
}

/// Removes a unikernel's local state and built images (`.mirage-nix/`, `dist/`), keeping the
/// committed plans. Returns what was removed.
pub fn clean(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for sub in [STATE_DIR, "dist"] {
        let path = dir.join(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}
