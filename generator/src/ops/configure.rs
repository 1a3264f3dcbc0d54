//! `configure`: write the plans of a unikernel, and check committed plans are fresh.

use std::path::{Path, PathBuf};

use crate::diag::Report;
use crate::plan::Plan;
use crate::Unikernel;

use super::{plan_path, read_plan, Remembered, PLANS_DIR};

/// What `configure` did for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The plan was written (it was new or different).
    Written(PathBuf),
    /// The plan on disk already had these bytes.
    Unchanged(PathBuf),
    /// `--dry-run`: the plan would be written; `diff` holds the lines that would change
    /// (a unified diff against the file on disk, every line for a new file).
    WouldWrite {
        /// The plan file.
        path: PathBuf,
        /// What would change in it.
        diff: String,
    },
    /// `--dry-run`: the plan on disk already has these bytes.
    WouldKeep(PathBuf),
    /// `--dry-run`: the target later commands would use (`configure` remembers it).
    WouldRemember(String),
    /// The target cannot build this unikernel (only with `--all-targets`).
    Skipped {
        /// The target.
        target: String,
        /// Why, in one line.
        reason: String,
    },
}

/// Whether `configure` writes, or only says what it would write (`--dry-run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Write the plans and remember the target.
    Files,
    /// Write nothing: report [`Outcome::WouldWrite`], [`Outcome::WouldKeep`] and
    /// [`Outcome::WouldRemember`] instead.
    DryRun,
}

/// Writes `plans/<target>.json` for each target. With several targets (`--all-targets`), a
/// target lacking a device is skipped with its reason and keys that do not apply to it are
/// ignored; with one, both are errors.
pub fn configure(
    uk: &Unikernel,
    dir: &Path,
    targets: &[String],
    keys: &[(String, String)],
) -> Result<Vec<Outcome>, Report> {
    configure_with(uk, dir, targets, keys, Writes::Files)
}

/// [`configure`], or with [`Writes::DryRun`] what it would do, touching nothing.
pub fn configure_with(
    uk: &Unikernel,
    dir: &Path,
    targets: &[String],
    keys: &[(String, String)],
    writes: Writes,
) -> Result<Vec<Outcome>, Report> {
    let all = targets.len() > 1;
    let mut outcomes = Vec::new();
    for target in targets {
        let reachable = uk.reachable_keys(&uk.context(target, std::iter::empty())?);
        let given = keys
            .iter()
            .filter(|(k, _)| !all || reachable.contains(k) || !uk.config.keys.contains_key(k))
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let ctx = uk.context(target, given)?;
        let plan = match uk.plan(&ctx) {
            Ok(plan) => plan,
            Err(report) if all && report.codes().iter().all(|c| *c == "unavailable") => {
                let reason = report.diagnostics[0].message.clone();
                outcomes.push(Outcome::Skipped {
                    target: target.clone(),
                    reason,
                });
                continue;
            }
            Err(report) => return Err(report),
        };
        if writes == Writes::DryRun {
            outcomes.push(would_write(dir, &plan));
            continue;
        }
        outcomes.push(write_plan(dir, &plan).map_err(|e| io_report(&plan_path(dir, target), e))?);
    }
    if let ([single], Writes::DryRun) = (targets, writes) {
        outcomes.push(Outcome::WouldRemember(single.clone()));
    } else if let [single] = targets {
        Remembered {
            target: single.clone(),
        }
        .write(dir)
        .map_err(|e| io_report(&dir.join(super::STATE_DIR), e))?;
    }
    Ok(outcomes)
}

fn io_report(path: &Path, e: std::io::Error) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![crate::diag::Diagnostic::error(
            "io",
            None,
            format!("cannot write `{}`: {e}", path.display()),
        )
        .with_help("check that the unikernel's directory is writable")],
    }
}

fn write_plan(dir: &Path, plan: &Plan) -> std::io::Result<Outcome> {
    let path = plan_path(dir, &plan.target);
    let text = plan.to_json();
    if crate::input::read_text_up_to(&path, crate::input::MAX_PLAN_BYTES)
        .is_ok_and(|old| old == text)
    {
        return Ok(Outcome::Unchanged(path));
    }
    std::fs::create_dir_all(dir.join(PLANS_DIR))?;
    // Write then rename, so an interrupted configure never leaves half a plan.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Outcome::Written(path))
}

/// What writing `plan` would do to the file on disk.
fn would_write(dir: &Path, plan: &Plan) -> Outcome {
    let path = plan_path(dir, &plan.target);
    let text = plan.to_json();
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if old == text {
        return Outcome::WouldKeep(path);
    }
    let shown = path.display().to_string();
    let diff = similar::TextDiff::from_lines(&old, &text)
        .unified_diff()
        .context_radius(2)
        .header(&shown, &shown)
        .to_string();
    Outcome::WouldWrite { path, diff }
}

/// A committed plan that no longer matches what the configuration gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    /// The plan file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
    /// The command that regenerates it.
    pub fix: String,
}

/// Regenerates every committed plan of a unikernel in memory, with the keys it records, and
/// lists those whose bytes differ. A unikernel with no plans at all is stale too.
pub fn check_plans(uk: &Unikernel, dir: &Path) -> Vec<Stale> {
    let plans_dir = dir.join(PLANS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&plans_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let shown = dir.display().to_string();
    if files.is_empty() {
        return vec![Stale {
            path: plans_dir,
            reason: "no plans are committed".into(),
            fix: format!("mirage-nix configure --all-targets {shown}"),
        }];
    }
    let mut stale = Vec::new();
    for path in files {
        let target = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let committed = match read_plan(&path) {
            Ok(p) => p,
            Err(report) => {
                stale.push(Stale {
                    path,
                    reason: report.diagnostics[0].message.clone(),
                    fix: format!("mirage-nix configure -t {target} {shown}"),
                });
                continue;
            }
        };
        let flags = committed.explicit_flags().join(" ");
        let fix = format!(
            "mirage-nix configure -t {target} {flags}{}{shown}",
            if flags.is_empty() { "" } else { " " }
        );
        let fresh = uk.context_of(&committed).and_then(|ctx| uk.plan(&ctx));
        match fresh {
            Err(report) => stale.push(Stale {
                path,
                reason: report.diagnostics[0].message.clone(),
                fix,
            }),
            Ok(plan) if plan.target != target => stale.push(Stale {
                path,
                reason: format!(
                    "the file is named for {target} but holds a plan for {}",
                    plan.target
                ),
                fix,
            }),
            Ok(plan) => {
                let on_disk = crate::input::read_text_up_to(&path, crate::input::MAX_PLAN_BYTES)
                    .unwrap_or_default();
                if on_disk != plan.to_json() {
                    stale.push(Stale {
                        path,
                        reason: "it differs from what the configuration gives now".into(),
                        fix,
                    });
                }
            }
        }
    }
    stale
}
