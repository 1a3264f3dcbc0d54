//! `query`: one fact about the plan a configuration gives, for scripts and tools.

use std::fmt::Write;
use std::path::Path;

use crate::config::CrateSource;
use crate::diag::{Diagnostic, Report};
use crate::eval::Context;
use crate::render::{self, Roots};
use crate::Unikernel;

/// What to query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryInfo {
    /// The plan, as JSON.
    Plan,
    /// The crates and features the image depends on.
    Crates,
    /// The keys and their values.
    Keys,
    /// The rendered `src/main.rs`.
    Main,
    /// The rendered `Cargo.toml`.
    CargoToml,
    /// The flake attribute building the image.
    NixAttr,
    /// The Solo5 manifest, as JSON.
    Manifest,
    /// The `xl` config running a xen image as a PVH domU.
    Xl,
    /// The `xl` config running a xen image as a PV domU.
    XlPv,
}

impl QueryInfo {
    /// Every query, with its command-line name.
    pub const ALL: [(QueryInfo, &'static str); 9] = [
        (QueryInfo::Plan, "plan"),
        (QueryInfo::Crates, "crates"),
        (QueryInfo::Keys, "keys"),
        (QueryInfo::Main, "main"),
        (QueryInfo::CargoToml, "cargo-toml"),
        (QueryInfo::NixAttr, "nix-attr"),
        (QueryInfo::Manifest, "manifest"),
        (QueryInfo::Xl, "xl"),
        (QueryInfo::XlPv, "xl-pv"),
    ];
}

/// Answers a query for a unikernel in a context. `roots` locates crates for rendering.
pub fn query(
    uk: &Unikernel,
    ctx: &Context,
    info: QueryInfo,
    roots: &Roots,
    out_dir: &Path,
) -> Result<String, Report> {
    let plan = uk.plan(ctx)?;
    let mut out = String::new();
    match info {
        QueryInfo::Plan => out = plan.to_json(),
        QueryInfo::NixAttr => out = format!("{}\n", plan.nix_attr()),
        QueryInfo::Manifest => {
            out = serde_json::to_string_pretty(&plan.manifest_json())
                .expect("JSON values serialise")
                + "\n"
        }
        QueryInfo::Xl | QueryInfo::XlPv => {
            let ty = if info == QueryInfo::Xl {
                render::xl::DomainType::Pvh
            } else {
                render::xl::DomainType::Pv
            };
            out = render::xl::config(&plan, ty).ok_or_else(|| Report {
                sources: Default::default(),
                diagnostics: vec![Diagnostic::error(
                    "no-xl-config",
                    None,
                    format!("a {} image has no xl config", plan.target),
                )
                .with_help("xl configs are for xen images: add -t xen")],
            })?;
        }
        QueryInfo::Crates => {
            for c in &plan.crates {
                let source = match &c.source {
                    CrateSource::Mirage(p) => format!("mirage-nix:{p}"),
                    CrateSource::Local(p) => format!("local:{p}"),
                    CrateSource::Registry(v) => format!("crates.io:{v}"),
                };
                let features = if c.features.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", c.features.join(", "))
                };
                let _ = writeln!(out, "{} {source}{features}", c.name);
            }
        }
        QueryInfo::Keys => {
            for k in &plan.keys {
                let value = crate::plan::json_text(&k.value);
                let _ = writeln!(
                    out,
                    "{}={value} ({}, {}{})",
                    k.name,
                    k.ty,
                    k.stage,
                    if k.explicit { ", given" } else { "" }
                );
            }
        }
        QueryInfo::Main | QueryInfo::CargoToml => {
            let files = render::crate_files(&plan, roots, out_dir).map_err(|e| Report {
                sources: Default::default(),
                diagnostics: vec![Diagnostic::error("render", None, e.to_string())],
            })?;
            let want = if info == QueryInfo::Main {
                "src/main.rs"
            } else {
                "Cargo.toml"
            };
            let file = files
                .iter()
                .find(|f| f.path == Path::new(want))
                .expect("every rendered crate has both files");
            out = String::from_utf8_lossy(&file.contents).into_owned();
        }
    }
    Ok(out)
}
