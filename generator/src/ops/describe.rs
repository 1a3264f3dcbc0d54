//! `describe`, `targets` and `catalogue`: what a unikernel, the targets and the built-in
//! devices are.

use std::fmt::Write;
use std::path::Path;

use crate::config::{Body, Config};
use crate::eval::{self, Context, Mode};
use crate::render::dot;
use crate::Unikernel;

/// How `describe` shows a unikernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescribeFormat {
    /// The summary: name, target, keys, output.
    Text,
    /// Graphviz of the evaluated graph (devices only).
    DotEvaluated,
    /// Graphviz of the graph with its choices, pruned by the keys given.
    DotUnevaluated,
}

struct Summary {
    keys: Vec<(String, String, bool, crate::key::Stage)>,
    output: Result<String, String>,
}

fn summary(uk: &Unikernel, ctx: &Context) -> Summary {
    let e = uk.evaluate(ctx);
    let keys = e
        .keys
        .iter()
        .map(|k| {
            let value = ctx
                .value(&uk.config, k)
                .map_or("none".to_string(), |v| v.to_string());
            (
                k.clone(),
                value,
                !ctx.is_explicit(k),
                uk.config.keys[k].stage,
            )
        })
        .collect();
    let output = match uk.plan(ctx) {
        Ok(plan) => Ok(format!("{} ({})", plan.image.file, plan.image.format)),
        Err(report) => Err(report
            .diagnostics
            .iter()
            .map(|d| match &d.help {
                Some(h) => format!("{} ({h})", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")),
    };
    Summary { keys, output }
}

/// `default_drawing(dir, target)` is how `describe --dot` draws the unikernel in `dir` when
/// neither `--eval` nor `--no-eval` says, as Mirage does: evaluated once it was configured
/// for the target (it has `plans/<target>.json`), else unevaluated; and a line saying which
/// and why.
pub fn default_drawing(dir: &Path, target: &str) -> (DescribeFormat, String) {
    let plan = super::plan_path(dir, target);
    if plan.is_file() {
        (
            DescribeFormat::DotEvaluated,
            format!(
                "drawing the devices the image connects ({} is configured for {target}: {}); --no-eval draws every choice",
                dir.display(),
                plan.display()
            ),
        )
    } else {
        (
            DescribeFormat::DotUnevaluated,
            format!(
                "drawing the graph with its choices ({} was never configured for {target}); --eval draws the devices the image would connect",
                dir.display()
            ),
        )
    }
}

/// Describes a unikernel in a context.
pub fn describe(uk: &Unikernel, ctx: &Context, format: DescribeFormat) -> String {
    match format {
        DescribeFormat::DotEvaluated => {
            dot::draw(&uk.config, &uk.graph, &uk.evaluate(ctx), true, None)
        }
        DescribeFormat::DotUnevaluated => dot::draw(
            &uk.config,
            &uk.graph,
            &eval::evaluate(&uk.config, &uk.graph, ctx, Mode::Partial),
            false,
            Some(dot::Closed {
                target: &ctx.target,
                cases: &eval::closed_cases(&uk.config, &uk.graph, ctx),
            }),
        ),
        DescribeFormat::Text => {
            let s = summary(uk, ctx);
            let mut out = String::new();
            let _ = writeln!(out, "{:<8}{}", "Name", uk.config.main.name);
            let _ = writeln!(out, "{:<8}{}", "Target", ctx.target);
            for (i, (k, v, default, stage)) in s.keys.iter().enumerate() {
                let mut notes = Vec::new();
                if *default {
                    notes.push("default");
                }
                if *stage == crate::key::Stage::Runtime {
                    notes.push("runtime");
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join(", "))
                };
                let _ = writeln!(out, "{:<8}{k}={v}{notes}", if i == 0 { "Keys" } else { "" });
            }
            match s.output {
                Ok(o) => {
                    let _ = writeln!(out, "{:<8}{o}", "Output");
                }
                Err(e) => {
                    let _ = writeln!(out, "{:<8}none: {e}", "Output");
                }
            }
            out
        }
    }
}

/// The summary as JSON, for tools.
pub fn describe_json(uk: &Unikernel, ctx: &Context) -> serde_json::Value {
    let s = summary(uk, ctx);
    serde_json::json!({
        "name": uk.config.main.name,
        "target": ctx.target,
        "keys": s.keys.iter().map(|(k, v, default, stage)| serde_json::json!({
            "name": k, "value": v, "default": default, "stage": stage,
        })).collect::<Vec<_>>(),
        "output": s.output.as_ref().ok(),
        "error": s.output.as_ref().err(),
    })
}

/// The targets, one per line with what they are.
pub fn targets(config: &Config) -> String {
    let mut out = String::new();
    for t in config.targets.values() {
        let _ = writeln!(out, "{:<6}{:<12}{}", t.name, t.format, t.doc);
    }
    out
}

/// The catalogue: every signature with the constructors providing it and where they exist.
pub fn catalogue(config: &Config) -> String {
    let mut out = String::new();
    for sig in config.signatures.values() {
        let _ = writeln!(out, "{} ({}): {}", sig.name, sig.trait_path, sig.doc);
        for c in config
            .constructors
            .values()
            .filter(|c| c.signature == sig.name)
        {
            let on = match &c.body {
                Body::Choose(cases) => {
                    let mut keys: Vec<&str> = cases
                        .iter()
                        .flat_map(|c| c.when.iter().map(|(k, _)| k.as_str()))
                        .collect();
                    keys.sort();
                    keys.dedup();
                    format!(
                        "chooses by {}",
                        keys.iter()
                            .map(|k| format!("--{k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
                Body::Impls { .. } => {
                    let ts: Vec<&str> = config
                        .targets
                        .keys()
                        .filter(|t| eval::unavailable_reason(config, &c.name, t).is_none())
                        .map(String::as_str)
                        .collect();
                    if ts.is_empty() {
                        "not implemented yet".to_string()
                    } else {
                        format!("on {}", ts.join(", "))
                    }
                }
            };
            let _ = writeln!(out, "  {:<48} {on}", c.describe());
            if !c.doc.is_empty() {
                let _ = writeln!(out, "      {}", c.doc);
            }
        }
    }
    let _ = writeln!(out, "\nkeys:");
    for k in config.keys.values() {
        let default = k.default.to_string();
        let _ = writeln!(
            out,
            "  --{:<14} {:<12} {:<9} default {default}\n      {}",
            k.name,
            k.ty.name(),
            k.stage.to_string(),
            k.doc
        );
    }
    out
}
