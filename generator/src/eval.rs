//! Stage 3: evaluation, from the graph and key values to the devices an image connects.
//!
//! A [`Context`] holds the target and the keys given explicitly. [`evaluate`] walks the graph
//! from `main`, resolving each choice to one case, and returns the devices in the order they
//! are connected: for every device, its dependencies, then its parameters, then itself
//! (Functoria's fold order). In [`Mode::Partial`] only choices whose keys were given are
//! resolved and every other branch stays reachable: that is what decides which keys a command
//! line accepts. [`check_target`] then makes sure every device exists on the target, and says
//! which key values or targets would work when one does not.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Body, Config};
use crate::diag::{Diagnostic, Report};
use crate::graph::{Graph, NodeId, NodeKind};
use crate::key::{self, KeyValue};

/// The target and the keys given explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The target.
    pub target: String,
    /// Keys set on the command line (or recorded in a plan), the target excluded.
    pub explicit: BTreeMap<String, KeyValue>,
}

impl Context {
    /// A context for `target` with no key set.
    pub fn new(target: impl Into<String>) -> Context {
        Context {
            target: target.into(),
            explicit: BTreeMap::new(),
        }
    }

    /// The value of a key: explicit, or its default on the target.
    pub fn value(&self, config: &Config, key: &str) -> Option<KeyValue> {
        if key == key::TARGET {
            return Some(KeyValue::String(self.target.clone()));
        }
        self.explicit.get(key).cloned().or_else(|| {
            config
                .keys
                .get(key)
                .and_then(|k| k.default.for_target(&self.target))
                .cloned()
        })
    }

    /// Whether a key was given (the target always is).
    pub fn is_explicit(&self, key: &str) -> bool {
        key == key::TARGET || self.explicit.contains_key(key)
    }
}

/// How far to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Resolve every choice, with defaults for keys not given.
    Full,
    /// Resolve only the choices whose keys were given; keep every other branch.
    Partial,
}

/// The result of evaluating a graph in a context.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Device nodes in connection order.
    pub order: Vec<NodeId>,
    /// For each visited choice, the cases taken (one in full mode).
    pub chosen: BTreeMap<NodeId, Vec<usize>>,
    /// The keys the image depends on: choice keys, device keys, main's keys and the target.
    pub keys: BTreeSet<String>,
    /// For each device, the choices and cases on the first path that reached it.
    pub via: BTreeMap<NodeId, Vec<(NodeId, usize)>>,
}

impl Evaluation {
    /// The device a node stands for once its choices are resolved (full mode only).
    pub fn resolve(&self, graph: &Graph, mut id: NodeId) -> NodeId {
        while let NodeKind::Choice { cases, .. } = &graph.nodes[id].kind {
            let case = self
                .chosen
                .get(&id)
                .and_then(|c| c.first())
                .copied()
                .unwrap_or(cases.len() - 1);
            id = cases[case].1;
        }
        id
    }
}

/// Evaluates the graph from `main`.
pub fn evaluate(config: &Config, graph: &Graph, ctx: &Context, mode: Mode) -> Evaluation {
    let mut w = Walker {
        config,
        graph,
        ctx,
        mode,
        eval: Evaluation::default(),
        visited: BTreeSet::new(),
        path: Vec::new(),
    };
    w.eval.keys.insert(key::TARGET.to_string());
    w.eval
        .keys
        .extend(config.main.keys.iter().map(|(k, _)| k.clone()));
    for &id in graph.main.deps.iter().chain(&graph.main.args) {
        w.visit(id);
    }
    w.eval
}

struct Walker<'a> {
    config: &'a Config,
    graph: &'a Graph,
    ctx: &'a Context,
    mode: Mode,
    eval: Evaluation,
    visited: BTreeSet<NodeId>,
    path: Vec<(NodeId, usize)>,
}

impl Walker<'_> {
    /// Whether a case holds: `Some(true/false)` when known, `None` when it depends on a key not given.
    fn holds(&self, when: &[(String, KeyValue)]) -> Option<bool> {
        let mut all = Some(true);
        for (k, v) in when {
            let known = self.mode == Mode::Full || self.ctx.is_explicit(k);
            match (known, self.ctx.value(self.config, k)) {
                (false, _) => all = all.and(None),
                (true, Some(actual)) if actual == *v => {}
                (true, _) => return Some(false),
            }
        }
        all
    }

    fn visit(&mut self, id: NodeId) {
        if !self.visited.insert(id) {
            return;
        }
        let node = &self.graph.nodes[id];
        let ctor = &self.config.constructors[node.kind.ctor()];
        self.eval.keys.extend(ctor.keys.iter().cloned());
        match &node.kind {
            NodeKind::Choice { cases, .. } => {
                let mut taken = Vec::new();
                for (i, (when, _)) in cases.iter().enumerate() {
                    self.eval.keys.extend(when.iter().map(|(k, _)| k.clone()));
                    match self.holds(when) {
                        Some(true) => {
                            taken.push(i);
                            break;
                        }
                        Some(false) => {}
                        None => taken.push(i),
                    }
                }
                // Keys tested by later cases are part of the choice even when an earlier case holds.
                for (when, _) in cases {
                    self.eval.keys.extend(when.iter().map(|(k, _)| k.clone()));
                }
                self.eval.chosen.insert(id, taken.clone());
                for i in taken {
                    self.path.push((id, i));
                    self.visit(cases[i].1);
                    self.path.pop();
                }
            }
            NodeKind::Device { args, deps, .. } => {
                for &d in deps.iter().chain(args) {
                    self.visit(d);
                }
                self.eval.via.insert(id, self.path.clone());
                self.eval.order.push(id);
            }
        }
    }
}

/// Why each case of the graph's choices that cannot be taken in `ctx` cannot, by choice node
/// and case index: a key given (the target always is) rules it out or an earlier case holds,
/// or a device it needs does not exist on the target. Cases left open are not listed. This
/// is what `describe --dot --no-eval` greys out, the reason as its tooltip.
pub fn closed_cases(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
) -> BTreeMap<(NodeId, usize), String> {
    let mut closed = BTreeMap::new();
    let mut memo = BTreeMap::new();
    for id in 0..graph.nodes.len() {
        if let NodeKind::Choice { cases, .. } = &graph.nodes[id].kind {
            for (i, why) in case_blocks(config, graph, ctx, cases, &mut memo) {
                closed.insert((id, i), why);
            }
        }
    }
    closed
}

/// The cases of a choice that `ctx` closes, with why (see [`closed_cases`]).
fn case_blocks(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
    cases: &[(Vec<(String, KeyValue)>, NodeId)],
    memo: &mut BTreeMap<NodeId, Option<String>>,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut taken_by: Option<String> = None;
    for (i, (when, case)) in cases.iter().enumerate() {
        if let Some(earlier) = &taken_by {
            out.push((i, format!("not taken: {earlier} holds first")));
            continue;
        }
        let mut ruled_out = None;
        let mut all_known = true;
        for (k, v) in when {
            if !ctx.is_explicit(k) {
                all_known = false;
                continue;
            }
            let actual = ctx.value(config, k);
            if actual.as_ref() != Some(v) {
                let given = actual.map_or("none".to_string(), |a| a.to_string());
                ruled_out.get_or_insert(if k == key::TARGET {
                    format!("ruled out: needs target {v}, and the target is {given}")
                } else {
                    format!("ruled out: needs --{k}={v}, and --{k}={given} was given")
                });
            }
        }
        if let Some(why) = ruled_out {
            out.push((i, why));
            continue;
        }
        if let Some(why) = unavailable_under(config, graph, ctx, *case, memo) {
            out.push((i, why));
            continue;
        }
        if all_known {
            taken_by = Some(if when.is_empty() {
                "the default".to_string()
            } else {
                when.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        }
    }
    out
}

/// Why the device `id` stands for cannot exist on `ctx`'s target, if it cannot: it or a
/// device under it has no implementation there (a choice: none of its open cases can).
fn unavailable_under(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
    id: NodeId,
    memo: &mut BTreeMap<NodeId, Option<String>>,
) -> Option<String> {
    if let Some(known) = memo.get(&id) {
        return known.clone();
    }
    // A cycle cannot occur (the graph is a DAG); mark the node while it is looked at anyway.
    memo.insert(id, None);
    let why = match &graph.nodes[id].kind {
        NodeKind::Device {
            ctor, args, deps, ..
        } => unavailable_reason(config, ctor, &ctx.target)
            .map(|r| format!("`{ctor}` is not available on {}: {r}", ctx.target))
            .or_else(|| {
                deps.iter()
                    .chain(args)
                    .find_map(|&d| unavailable_under(config, graph, ctx, d, memo))
            }),
        NodeKind::Choice { cases, .. } => {
            let blocked = case_blocks(config, graph, ctx, cases, memo);
            if blocked.len() == cases.len() {
                let whys: Vec<String> = blocked.into_iter().map(|(_, why)| why).collect();
                whys.iter()
                    .find(|w| w.contains("is not available"))
                    .or(whys.first())
                    .cloned()
            } else {
                None
            }
        }
    };
    memo.insert(id, why.clone());
    why
}

/// Why a constructor has no implementation on a target, if it has none.
pub fn unavailable_reason(config: &Config, ctor: &str, target: &str) -> Option<String> {
    match &config.constructors[ctor].body {
        Body::Impls { impls, unavailable } => {
            if impls.iter().any(|i| i.supports(target)) {
                None
            } else {
                Some(unavailable.get(target).cloned().unwrap_or_else(|| {
                    format!("no implementation of `{ctor}` exists for {target}")
                }))
            }
        }
        Body::Choose(_) => None,
    }
}

/// The devices of an evaluation that do not exist on the context's target.
fn missing(config: &Config, graph: &Graph, ctx: &Context, eval: &Evaluation) -> Vec<NodeId> {
    eval.order
        .iter()
        .copied()
        .filter(|&id| {
            unavailable_reason(config, graph.nodes[id].kind.ctor(), &ctx.target).is_some()
        })
        .collect()
}

/// Checks that every device of a full evaluation exists on the target.
pub fn check_target(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
    eval: &Evaluation,
) -> Result<(), Report> {
    let mut diags = Vec::new();
    for id in missing(config, graph, ctx, eval) {
        let node = &graph.nodes[id];
        let ctor = node.kind.ctor();
        let why = unavailable_reason(config, ctor, &ctx.target).unwrap_or_default();
        let mut d = Diagnostic::error(
            "unavailable",
            node.origin,
            format!(
                "{ctor} {} is not available on {}: {why}",
                node.signature, ctx.target
            ),
        );
        if let Some(&(choice, case)) = eval.via[&id].last() {
            let choice_ctor = graph.nodes[choice].kind.ctor();
            if let NodeKind::Choice { cases, .. } = &graph.nodes[choice].kind {
                let chosen_by: Vec<String> = cases[case]
                    .0
                    .iter()
                    .map(|(k, v)| format!("--{k}={v}"))
                    .collect();
                if !chosen_by.is_empty() {
                    d = d.with_note(
                        None,
                        format!(
                            "`{}` chose {ctor} because of {}",
                            choice_ctor,
                            chosen_by.join(" ")
                        ),
                    );
                }
            }
        }
        d = d.with_help(fix(config, graph, ctx, eval, id));
        diags.push(d);
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Report {
            sources: config.sources.clone(),
            diagnostics: diags,
        })
    }
}

/// Suggests key values (for the choice that led to `id`) or targets under which everything exists.
fn fix(config: &Config, graph: &Graph, ctx: &Context, eval: &Evaluation, id: NodeId) -> String {
    let works = |ctx: &Context| {
        let e = evaluate(config, graph, ctx, Mode::Full);
        missing(config, graph, ctx, &e).is_empty()
    };
    for &(choice, _) in eval.via[&id].iter().rev() {
        let NodeKind::Choice { cases, .. } = &graph.nodes[choice].kind else {
            continue;
        };
        let keys: BTreeSet<&String> = cases
            .iter()
            .flat_map(|(w, _)| w.iter().map(|(k, _)| k))
            .filter(|k| *k != key::TARGET)
            .collect();
        for k in keys {
            let candidates: Vec<KeyValue> = match &config.keys[k].ty {
                key::KeyType::Enum(vs) => vs.iter().map(|v| KeyValue::String(v.clone())).collect(),
                key::KeyType::Bool => vec![KeyValue::Bool(false), KeyValue::Bool(true)],
                _ => cases
                    .iter()
                    .flat_map(|(w, _)| w.iter().filter(|(wk, _)| wk == k).map(|(_, v)| v.clone()))
                    .collect(),
            };
            let current = ctx.value(config, k);
            let good: Vec<String> = candidates
                .into_iter()
                .filter(|v| Some(v) != current.as_ref())
                .filter(|v| {
                    let mut alt = ctx.clone();
                    alt.explicit.insert(k.clone(), v.clone());
                    works(&alt)
                })
                .map(|v| v.to_string())
                .collect();
            if !good.is_empty() {
                return format!("use --{k}={}", join_or(&good));
            }
        }
    }
    let targets: Vec<String> = config
        .targets
        .keys()
        .filter(|t| **t != ctx.target)
        .filter(|t| {
            let mut alt = ctx.clone();
            alt.target = (*t).clone();
            works(&alt)
        })
        .cloned()
        .collect();
    if targets.is_empty() {
        "no target or key value provides it yet; choose another device in unikernel.toml"
            .to_string()
    } else {
        format!("build for another target: -t {}", join_or(&targets))
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
