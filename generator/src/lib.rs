//! # mirage-nix: Functoria for Rust
//!
//! A unikernel is plain Rust generic over device traits (`start<C: Console, T: Time>`), plus a
//! declarative `unikernel.toml` saying which devices `start` needs and how they are built. This
//! crate turns that into a specialised program for one target, in five stages that read top
//! to bottom:
//!
//! 1. [`config`]: read `unikernel.toml` with the built-in [catalogue](config::CATALOGUE) of
//!    targets, signatures, keys and constructors, and check every declaration.
//! 2. [`graph`]: elaborate device expressions into a typed DAG (devices and choices), sharing
//!    equal devices and type-checking every application in every branch.
//! 3. [`eval`]: resolve choices from the target and key values, order devices for connection,
//!    and check that each exists on the target.
//! 4. [`plan`]: lower the evaluation to a deterministic, versioned JSON [`Plan`](plan::Plan),
//!    the contract with Nix and every build.
//! 5. [`render`]: turn a plan alone into the specialised crate, and graphs into Graphviz.
//!
//! [`synth`] makes configurations of a chosen shape and size for tests and benchmarks, and
//! [`oracle`] holds the invariants the fuzzers check.
//!
//! [`ops`] holds the commands' logic (configure, describe, query, render, build, clean);
//! the `mirage-nix` binary only parses arguments and calls it. Errors about a configuration
//! are [`diag::Diagnostic`]s located at `file:line:column`, with a fix.

#![forbid(unsafe_code)]

pub mod config;
pub mod diag;
pub mod eval;
pub mod graph;
pub mod input;
pub mod key;
pub mod ops;
pub mod oracle;
pub mod plan;
pub mod render;
pub mod rust;
pub mod synth;
pub mod template;

use std::collections::BTreeSet;
use std::path::Path;

use diag::{Diagnostic, Report};
use eval::{Context, Mode};

/// A loaded and type-checked unikernel: its configuration and device graph.
#[derive(Clone, Debug)]
pub struct Unikernel {
    /// The configuration, with the catalogue.
    pub config: config::Config,
    /// The device graph, before evaluation.
    pub graph: graph::Graph,
}

impl Unikernel {
    /// Loads `DIR/unikernel.toml` and builds its graph.
    pub fn load(dir: &Path) -> Result<Unikernel, Report> {
        let config = config::load(dir)?;
        let graph = graph::build(&config)?;
        Ok(Unikernel { config, graph })
    }

    /// Loads a configuration given as text (for tests and tools).
    pub fn from_str(dir: &Path, name: &str, text: &str) -> Result<Unikernel, Report> {
        let config = config::load_str(dir, name, text, &mut diag::SourceMap::default())?;
        let graph = graph::build(&config)?;
        Ok(Unikernel { config, graph })
    }

    /// A context from a target and `(key, value)` texts, checking each against its key's type.
    pub fn context<'a>(
        &self,
        target: &str,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Context, Report> {
        let mut diags = Vec::new();
        if !self.config.targets.contains_key(target) {
            let names: Vec<&str> = self.config.targets.keys().map(String::as_str).collect();
            diags.push(
                Diagnostic::error(
                    "unknown-target",
                    None,
                    format!(
                        "unknown target `{target}`{}",
                        diag::did_you_mean(target, names.iter().copied())
                    ),
                )
                .with_help(format!("choose one of {} with -t", names.join(", "))),
            );
        }
        let mut ctx = Context::new(target);
        for (name, text) in keys {
            if name == key::TARGET {
                continue;
            }
            let Some(k) = self.config.keys.get(name) else {
                diags.push(
                    Diagnostic::error("unknown-key", None, format!("unknown key --{name}{}", diag::did_you_mean(name, self.config.keys.keys().map(String::as_str))))
                        .with_help("run `mirage-nix describe --help` in the unikernel's directory to list its keys"),
                );
                continue;
            };
            match k.ty.parse(text) {
                Ok(v) => {
                    ctx.explicit.insert(name.to_string(), v);
                }
                Err(e) => diags.push(
                    Diagnostic::error(
                        "bad-key-value",
                        None,
                        format!("invalid value for --{name}: {e}"),
                    )
                    .with_note(k.span, format!("--{name} is declared here: {}", k.doc))
                    .with_help(format!("give --{name}={}", example(&k.ty))),
                ),
            }
        }
        if diags.is_empty() {
            Ok(ctx)
        } else {
            Err(Report {
                sources: self.config.sources.clone(),
                diagnostics: diags,
            })
        }
    }

    /// The keys a command line may set for this context: those reachable once the choices
    /// decided by the keys already given (and the target) are resolved.
    pub fn reachable_keys(&self, ctx: &Context) -> BTreeSet<String> {
        eval::evaluate(&self.config, &self.graph, ctx, Mode::Partial).keys
    }

    /// Fully evaluates the graph in `ctx`, without checking the target.
    pub fn evaluate(&self, ctx: &Context) -> eval::Evaluation {
        eval::evaluate(&self.config, &self.graph, ctx, Mode::Full)
    }

    /// The plan for `ctx`: evaluate, check every device exists on the target, lower.
    pub fn plan(&self, ctx: &Context) -> Result<plan::Plan, Report> {
        let reachable = self.reachable_keys(ctx);
        let unreachable: Vec<&String> = ctx
            .explicit
            .keys()
            .filter(|k| !reachable.contains(*k))
            .collect();
        if let Some(k) = unreachable.first() {
            return Err(Report {
                sources: self.config.sources.clone(),
                diagnostics: vec![Diagnostic::error("unreachable-key", None, format!("key --{k} does not apply to `{}` on {}", self.config.main.name, ctx.target))
                    .with_help("no device that reads it is in the graph for this target and these keys; remove it")],
            });
        }
        let e = self.evaluate(ctx);
        eval::check_target(&self.config, &self.graph, ctx, &e)?;
        plan::lower(&self.config, &self.graph, ctx, &e)
    }

    /// The context a plan was made in: its target and the keys it records as given.
    pub fn context_of(&self, plan: &plan::Plan) -> Result<Context, Report> {
        let texts: Vec<(String, String)> = plan
            .keys
            .iter()
            .filter(|k| k.explicit && k.name != key::TARGET)
            .map(|k| (k.name.clone(), plan::json_text(&k.value)))
            .collect();
        self.context(
            &plan.target,
            texts.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// An example value of a key type, for help messages.
fn example(ty: &key::KeyType) -> String {
    match ty {
        key::KeyType::Bool => "true".into(),
        key::KeyType::Int { min, max } => 42i64.clamp(*min, *max).to_string(),
        key::KeyType::Port => "8080".into(),
        key::KeyType::String => "text".into(),
        key::KeyType::Enum(vs) => vs.join("|"),
        key::KeyType::Ipv4Address => "10.0.0.1".into(),
        key::KeyType::Ipv4Prefix => "10.0.0.2/24".into(),
    }
}
