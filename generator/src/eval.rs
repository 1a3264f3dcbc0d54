//! Stage 3: evaluation, from the graph and key values to the devices an image connects.
//!
//! A [`Context`] holds the target and the keys given explicitly. [`evaluate`] walks the graph
//! from `main`, resolving each choice to one case, and returns the devices in the order they
//! are connected: for every device, its dependencies, then its parameters, then itself
//! (Functoria's fold order). In [`Mode::Partial`] only choices whose keys were given are
//! resolved and every other branch stays reachable: that is what decides which keys a command
//! line accepts. [`check_target`] then makes sure every device exists on the target, and says
//! which key values or targets would work when one does not.
//!
//! The walk is a loop over an explicit stack, and the choices on the path to each device are
//! kept as links into one shared list ([`Paths`]), so any depth evaluates in linear time and
//! memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{Body, Config};
use crate::diag::{Diagnostic, Report};
use crate::graph::{Graph, NodeId, NodeKind};
use crate::key::{self, KeyValue};

/// The target and the keys given explicitly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// The choices on the way from `main` to a device: each visited choice and case is one link
/// to the link of the choice around it, so paths that share a beginning share its links.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    links: Vec<Link>,
}

/// One choice and case on a path, with the rest of the path towards `main`.
#[derive(Clone, Copy, Debug)]
struct Link {
    outer: Option<usize>,
    choice: NodeId,
    case: usize,
    depth: usize,
}

/// A path in [`Paths`]: `None` is the empty path (no choice on the way).
pub type PathId = Option<usize>;

impl Paths {
    fn push(&mut self, outer: PathId, choice: NodeId, case: usize) -> PathId {
        let depth = outer.map_or(0, |o| self.links[o].depth) + 1;
        self.links.push(Link {
            outer,
            choice,
            case,
            depth,
        });
        Some(self.links.len() - 1)
    }

    /// How many choices a path has.
    pub fn len(&self, path: PathId) -> usize {
        path.map_or(0, |p| self.links[p].depth)
    }

    /// The innermost `n` choices of a path (with their cases), outermost first.
    pub fn innermost(&self, path: PathId, n: usize) -> Vec<(NodeId, usize)> {
        let mut out = Vec::new();
        let mut at = path;
        while let Some(p) = at {
            if out.len() == n {
                break;
            }
            let l = self.links[p];
            out.push((l.choice, l.case));
            at = l.outer;
        }
        out.reverse();
        out
    }

    /// Every choice of a path (with its case), outermost first.
    pub fn all(&self, path: PathId) -> Vec<(NodeId, usize)> {
        self.innermost(path, usize::MAX)
    }
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
    pub via: BTreeMap<NodeId, PathId>,
    /// The paths `via` points into.
    pub paths: Paths,
    /// For each visited choice, the device it stands for (full mode only).
    resolved: HashMap<NodeId, NodeId>,
}

impl Evaluation {
    /// The device a node stands for once its choices are resolved (full mode only).
    pub fn resolve(&self, graph: &Graph, id: NodeId) -> NodeId {
        match self.resolved.get(&id) {
            Some(&device) => device,
            None => follow(graph, &self.chosen, id),
        }
    }

    /// Remembers what every visited choice resolves to, so [`Evaluation::resolve`] is a
    /// lookup however long a chain of choices is.
    fn resolve_all(&mut self, graph: &Graph) {
        let choices: Vec<NodeId> = self.chosen.keys().copied().collect();
        let mut chain = Vec::new();
        for start in choices {
            let mut id = start;
            let device = loop {
                if let Some(&d) = self.resolved.get(&id) {
                    break d;
                }
                let NodeKind::Choice { cases, .. } = &graph.nodes[id].kind else {
                    break id;
                };
                chain.push(id);
                id = cases[self.case_taken(id, cases.len())].1;
            };
            for c in chain.drain(..) {
                self.resolved.insert(c, device);
            }
        }
    }

    fn case_taken(&self, choice: NodeId, cases: usize) -> usize {
        self.chosen
            .get(&choice)
            .and_then(|c| c.first())
            .copied()
            .unwrap_or(cases - 1)
    }
}

/// The device `id` stands for, following choices one case at a time.
fn follow(graph: &Graph, chosen: &BTreeMap<NodeId, Vec<usize>>, mut id: NodeId) -> NodeId {
    while let NodeKind::Choice { cases, .. } = &graph.nodes[id].kind {
        let case = chosen
            .get(&id)
            .and_then(|c| c.first())
            .copied()
            .unwrap_or(cases.len() - 1);
        id = cases[case].1;
    }
    id
}

/// One step of the walk.
enum Step {
    /// Visit a node (once).
    Visit(NodeId),
    /// Every dependency and parameter of a device is connected: connect it.
    Connect(NodeId),
    /// Enter a case of a choice.
    Enter(NodeId, usize),
    /// Leave the innermost case.
    Leave,
}

/// Evaluates the graph from `main`.
pub fn evaluate(config: &Config, graph: &Graph, ctx: &Context, mode: Mode) -> Evaluation {
    let mut w = Walker {
        config,
        graph,
        ctx,
        mode,
        eval: Evaluation::default(),
        visited: vec![false; graph.nodes.len()],
        path: None,
    };
    w.eval.keys.insert(key::TARGET.to_string());
    w.eval
        .keys
        .extend(config.main.keys.iter().map(|(k, _)| k.clone()));
    let roots: Vec<NodeId> = graph
        .main
        .deps
        .iter()
        .chain(&graph.main.args)
        .copied()
        .collect();
    w.walk(&roots);
    if mode == Mode::Full {
        w.eval.resolve_all(graph);
    }
    w.eval
}

struct Walker<'a> {
    config: &'a Config,
    graph: &'a Graph,
    ctx: &'a Context,
    mode: Mode,
    eval: Evaluation,
    visited: Vec<bool>,
    path: PathId,
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

    /// Visits the nodes from `roots`: for every device, its dependencies, then its parameters,
    /// then itself (Functoria's fold order), each node once.
    fn walk(&mut self, roots: &[NodeId]) {
        let mut stack: Vec<Step> = roots.iter().rev().map(|&r| Step::Visit(r)).collect();
        while let Some(step) = stack.pop() {
            match step {
                Step::Visit(id) => {
                    if std::mem::replace(&mut self.visited[id], true) {
                        continue;
                    }
                    let node = &self.graph.nodes[id];
                    let ctor = &self.config.constructors[node.kind.ctor()];
                    self.eval.keys.extend(ctor.keys.iter().cloned());
                    match &node.kind {
                        NodeKind::Choice { cases, .. } => {
                            let taken = self.choose(cases);
                            for &i in taken.iter().rev() {
                                stack.push(Step::Leave);
                                stack.push(Step::Visit(cases[i].1));
                                stack.push(Step::Enter(id, i));
                            }
                            self.eval.chosen.insert(id, taken);
                        }
                        NodeKind::Device { args, deps, .. } => {
                            stack.push(Step::Connect(id));
                            stack.extend(deps.iter().chain(args).rev().map(|&d| Step::Visit(d)));
                        }
                    }
                }
                Step::Connect(id) => {
                    self.eval.via.insert(id, self.path);
                    self.eval.order.push(id);
                }
                Step::Enter(choice, case) => {
                    self.path = self.eval.paths.push(self.path, choice, case);
                }
                Step::Leave => {
                    let p = self.path.expect("a case was entered");
                    self.path = self.eval.paths.links[p].outer;
                }
            }
        }
    }

    /// The cases of a choice taken in this context (one in full mode), recording its keys.
    fn choose(&mut self, cases: &[(Vec<(String, KeyValue)>, NodeId)]) -> Vec<usize> {
        let mut taken = Vec::new();
        for (i, (when, _)) in cases.iter().enumerate() {
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
        taken
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

/// The most devices [`check_target`] explains one by one; the rest are counted.
pub const MAX_UNAVAILABLE_REPORTED: usize = 20;

/// The most choices (innermost first) whose keys [`check_target`] tries when suggesting a fix.
const MAX_CHOICES_TRIED: usize = 16;

/// Checks that every device of a full evaluation exists on the target.
pub fn check_target(
    config: &Config,
    graph: &Graph,
    ctx: &Context,
    eval: &Evaluation,
) -> Result<(), Report> {
    let mut diags = Vec::new();
    let missing = missing(config, graph, ctx, eval);
    let mut fixes = Fixes::new(config, graph);
    for &id in missing.iter().take(MAX_UNAVAILABLE_REPORTED) {
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
        if let Some(&(choice, case)) = eval.paths.innermost(eval.via[&id], 1).last() {
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
        d = d.with_help(fixes.fix(ctx, eval, id));
        diags.push(d);
    }
    if missing.len() > MAX_UNAVAILABLE_REPORTED {
        let more = missing.len() - MAX_UNAVAILABLE_REPORTED;
        diags.push(
            Diagnostic::error(
                "unavailable",
                None,
                format!("{more} more devices are not available on {}", ctx.target),
            )
            .with_help("fix the devices above first; `mirage-nix describe` lists the rest"),
        );
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

/// Suggestions of key values or targets, each alternative context evaluated once.
struct Fixes<'a> {
    config: &'a Config,
    graph: &'a Graph,
    works: HashMap<Context, bool>,
}

impl<'a> Fixes<'a> {
    fn new(config: &'a Config, graph: &'a Graph) -> Self {
        Fixes {
            config,
            graph,
            works: HashMap::new(),
        }
    }

    /// Whether every device exists in `ctx`.
    fn works(&mut self, ctx: Context) -> bool {
        let (config, graph) = (self.config, self.graph);
        *self.works.entry(ctx).or_insert_with_key(|ctx| {
            let e = evaluate(config, graph, ctx, Mode::Full);
            missing(config, graph, ctx, &e).is_empty()
        })
    }

    /// Suggests key values (for the choices that led to `id`) or targets under which
    /// everything exists.
    fn fix(&mut self, ctx: &Context, eval: &Evaluation, id: NodeId) -> String {
        let (config, graph) = (self.config, self.graph);
        let path = eval.paths.innermost(eval.via[&id], MAX_CHOICES_TRIED);
        for &(choice, _) in path.iter().rev() {
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
                    key::KeyType::Enum(vs) => {
                        vs.iter().map(|v| KeyValue::String(v.clone())).collect()
                    }
                    key::KeyType::Bool => vec![KeyValue::Bool(false), KeyValue::Bool(true)],
                    _ => cases
                        .iter()
                        .flat_map(|(w, _)| {
                            w.iter().filter(|(wk, _)| wk == k).map(|(_, v)| v.clone())
                        })
                        .collect(),
                };
                let current = ctx.value(config, k);
                let good: Vec<String> = candidates
                    .into_iter()
                    .filter(|v| Some(v) != current.as_ref())
                    .filter(|v| {
                        let mut alt = ctx.clone();
                        alt.explicit.insert(k.clone(), v.clone());
                        self.works(alt)
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
                self.works(alt)
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
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
