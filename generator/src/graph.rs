//! Stage 2: the typed device graph, before any key is known.
//!
//! Expressions are elaborated into nodes: a *device* node is a constructor with
//! implementations applied to values and other nodes; a *choice* node (Functoria's `If`) holds
//! one node per case and is resolved later from key values and the target. Every application
//! is type-checked here, in every branch, so a network stack can never reach a parameter that
//! expects a kv_ro, whatever keys are given later.
//!
//! **Sharing.** Nodes are hash-consed: two structurally equal applications are one node, as
//! are all uses of a named device. The graph is therefore a DAG and one device is connected
//! once however many users it has (Functoria's invariant, here enforced by construction in
//! [`Builder::intern`], the only place nodes are created).

use std::collections::{BTreeMap, HashMap};

use crate::config::{Body, Config, Constructor, Expr, Literal, ParamType};
use crate::diag::{did_you_mean, Diagnostic, Report, Span};
use crate::key::KeyValue;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// The conditions of one case: key tests that must all hold (none for the default).
pub type Condition = Vec<(String, KeyValue)>;

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A constructor with implementations, applied.
    Device {
        /// The constructor.
        ctor: String,
        /// Value parameters, by name.
        values: Vec<(String, Literal)>,
        /// Device parameters, in order.
        args: Vec<NodeId>,
        /// Devices started first but not passed as parameters.
        deps: Vec<NodeId>,
    },
    /// A choice, applied: one node per case, the last one being the default.
    Choice {
        /// The constructor.
        ctor: String,
        /// Value parameters, by name.
        values: Vec<(String, Literal)>,
        /// Device parameters, in order (already substituted into the cases).
        args: Vec<NodeId>,
        /// The cases.
        cases: Vec<(Condition, NodeId)>,
    },
}

/// A node and what is known about it.
#[derive(Clone, Debug)]
pub struct Node {
    /// Device or choice.
    pub kind: NodeKind,
    /// The signature it provides.
    pub signature: String,
    /// The place in `unikernel.toml` that first asked for it.
    pub origin: Span,
}

impl NodeKind {
    /// The constructor of the node.
    pub fn ctor(&self) -> &str {
        match self {
            NodeKind::Device { ctor, .. } | NodeKind::Choice { ctor, .. } => ctor,
        }
    }

    /// The value parameters of the node.
    pub fn values(&self) -> &[(String, Literal)] {
        match self {
            NodeKind::Device { values, .. } | NodeKind::Choice { values, .. } => values,
        }
    }
}

/// The unikernel's entry node.
#[derive(Clone, Debug, Default)]
pub struct MainNode {
    /// The devices passed to `start`.
    pub args: Vec<NodeId>,
    /// Devices started before `start` (the reporter first, then `deps`).
    pub deps: Vec<NodeId>,
}

/// The unevaluated device graph of one configuration.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Every node, each created once.
    pub nodes: Vec<Node>,
    /// The entry point.
    pub main: MainNode,
}

impl Graph {
    /// A short label for a node: `generic_kv_ro("t")`.
    pub fn label(&self, id: NodeId) -> String {
        let kind = &self.nodes[id].kind;
        let values: Vec<String> = kind.values().iter().map(|(_, v)| v.to_string()).collect();
        if values.is_empty() {
            kind.ctor().to_string()
        } else {
            format!("{}({})", kind.ctor(), values.join(", "))
        }
    }
}

/// Builds and type-checks the graph of a configuration.
pub fn build(config: &Config) -> Result<Graph, Report> {
    let mut b = Builder {
        config,
        graph: Graph::default(),
        index: HashMap::new(),
        named: HashMap::new(),
        named_stack: Vec::new(),
        ctor_stack: Vec::new(),
        diags: Vec::new(),
    };
    let main = &config.main;
    let origin = main.span;
    let mut deps = Vec::new();
    if let Some(r) = &main.reporter {
        if let Some(id) = b.device(r, &mut None, origin, "the log reporter") {
            b.expect_signature(
                id,
                "reporter",
                r.span(),
                "the log reporter",
                "`reporter = \"logs(default_console)\"`",
            );
            deps.push(id);
        }
    }
    for d in &main.deps {
        if let Some(id) = b.device(d, &mut None, origin, "a dependency of main") {
            deps.push(id);
        }
    }
    if main.args.len() != main.signature.len() {
        let sig: Vec<&str> = main
            .signature
            .iter()
            .map(|(s, _)| s.as_str())
            .chain(["job"])
            .collect();
        b.diags.push(
            Diagnostic::error(
                "arity",
                main.signature.first().map_or(main.span, |(_, s)| *s),
                format!(
                    "main's signature `{}` takes {} device{}, but `args` gives {}",
                    sig.join(" -> "),
                    main.signature.len(),
                    if main.signature.len() == 1 { "" } else { "s" },
                    main.args.len()
                ),
            )
            .with_help("give one device expression in `args` per signature before `job`"),
        );
    }
    let mut args = Vec::new();
    for (i, a) in main.args.iter().enumerate() {
        let what = format!("argument {} of main", i + 1);
        if let Some(id) = b.device(a, &mut None, origin, &what) {
            if let Some((sig, _)) = main.signature.get(i) {
                b.expect_signature(
                    id,
                    sig,
                    a.span(),
                    &what,
                    &format!("main's signature says argument {} is a `{sig}`", i + 1),
                );
            }
            args.push(id);
        }
    }
    b.graph.main = MainNode { args, deps };
    if b.diags.is_empty() {
        Ok(b.graph)
    } else {
        Err(Report {
            sources: config.sources.clone(),
            diagnostics: b.diags,
        })
    }
}

/// A name bound in a constructor's body.
#[derive(Clone, Debug)]
enum Bound {
    Device(NodeId),
    Value(Literal),
}

/// The names visible inside one constructor application.
struct Scope<'c> {
    ctor: &'c Constructor,
    params: BTreeMap<String, Bound>,
    lets: BTreeMap<String, NodeId>,
    let_stack: Vec<String>,
}

struct Builder<'c> {
    config: &'c Config,
    graph: Graph,
    index: HashMap<NodeKind, NodeId>,
    named: HashMap<String, NodeId>,
    named_stack: Vec<(String, Span)>,
    ctor_stack: Vec<String>,
    diags: Vec<Diagnostic>,
}

impl<'c> Builder<'c> {
    /// Returns the node for `kind`, creating it on first use: the one place sharing is kept.
    fn intern(&mut self, kind: NodeKind, signature: &str, origin: Span) -> NodeId {
        if let Some(&id) = self.index.get(&kind) {
            return id;
        }
        let id = self.graph.nodes.len();
        self.graph.nodes.push(Node {
            kind: kind.clone(),
            signature: signature.to_string(),
            origin,
        });
        self.index.insert(kind, id);
        id
    }

    fn expect_signature(&mut self, id: NodeId, expected: &str, span: Span, what: &str, why: &str) {
        let found = &self.graph.nodes[id].signature;
        if found != expected {
            let label = self.graph.label(id);
            self.diags.push(
                Diagnostic::error("type-mismatch", span, format!("{what} must be a `{expected}`, but `{label}` is a `{found}`"))
                    .with_help(format!("{why}; pass a device that provides `{expected}` (run `mirage-nix catalogue` to list constructors by signature)")),
            );
        }
    }

    /// Elaborates an expression that must denote a device.
    fn device(
        &mut self,
        e: &Expr,
        scope: &mut Option<Scope<'c>>,
        origin: Span,
        what: &str,
    ) -> Option<NodeId> {
        match self.expr(e, scope, origin)? {
            Bound::Device(id) => Some(id),
            Bound::Value(v) => {
                self.diags.push(
                    Diagnostic::error("type-mismatch", e.span(), format!("{what} must be a device, but `{v}` is a {}", v.type_name()))
                        .with_help("pass a device expression such as `default_console` or `generic_kv_ro(\"t\")`"),
                );
                None
            }
        }
    }

    fn user_visible(&self, scope: &Option<Scope<'c>>) -> bool {
        scope
            .as_ref()
            .is_none_or(|s| s.ctor.span.file == self.config.file)
    }

    fn expr(&mut self, e: &Expr, scope: &mut Option<Scope<'c>>, origin: Span) -> Option<Bound> {
        let origin = if e.span().file == self.config.file {
            e.span()
        } else {
            origin
        };
        match e {
            Expr::Literal { value, .. } => Some(Bound::Value(value.clone())),
            Expr::Call {
                name,
                name_span,
                args: None,
                ..
            } => {
                if let Some(s) = scope.as_mut() {
                    if let Some(b) = s.params.get(name) {
                        return Some(b.clone());
                    }
                    if let Some(&id) = s.lets.get(name) {
                        return Some(Bound::Device(id));
                    }
                    if let Some(let_expr) = s.ctor.lets.get(name) {
                        if s.let_stack.contains(name) {
                            let chain = s.let_stack.join(" -> ");
                            self.diags.push(
                                Diagnostic::error("cycle", *name_span, format!("local device `{name}` of `{}` depends on itself ({chain} -> {name})", s.ctor.name))
                                    .with_help("a device cannot be built from itself; break the cycle"),
                            );
                            return None;
                        }
                        s.let_stack.push(name.clone());
                        let r =
                            self.device(let_expr, scope, origin, &format!("local device `{name}`"));
                        let s = scope.as_mut().expect("scope is still there");
                        s.let_stack.pop();
                        let id = r?;
                        s.lets.insert(name.clone(), id);
                        return Some(Bound::Device(id));
                    }
                }
                if self.user_visible(scope) {
                    if let Some(id) = self.named_device(name, *name_span) {
                        return id.map(Bound::Device);
                    }
                }
                if let Some(ctor) = self.config.constructors.get(name) {
                    return self
                        .apply(ctor, &[], e.span(), scope, origin)
                        .map(Bound::Device);
                }
                self.unknown(name, *name_span, scope);
                None
            }
            Expr::Call {
                name,
                name_span,
                args: Some(args),
                span,
            } => {
                if let Some(ctor) = self.config.constructors.get(name) {
                    return self
                        .apply(ctor, args, *span, scope, origin)
                        .map(Bound::Device);
                }
                let is_device = scope
                    .as_ref()
                    .is_some_and(|s| s.params.contains_key(name) || s.ctor.lets.contains_key(name))
                    || self.config.devices.contains_key(name);
                if is_device {
                    self.diags.push(
                        Diagnostic::error(
                            "not-a-constructor",
                            *name_span,
                            format!(
                                "`{name}` is a device, not a constructor, so it takes no arguments"
                            ),
                        )
                        .with_help(format!("write `{name}` without parentheses")),
                    );
                } else {
                    self.unknown(name, *name_span, scope);
                }
                None
            }
        }
    }

    fn unknown(&mut self, name: &str, span: Span, scope: &Option<Scope<'c>>) {
        let mut known: Vec<&str> = self
            .config
            .constructors
            .keys()
            .map(String::as_str)
            .collect();
        if self.user_visible(scope) {
            known.extend(self.config.devices.keys().map(String::as_str));
        }
        if let Some(s) = scope {
            known.extend(s.params.keys().map(String::as_str));
            known.extend(s.ctor.lets.keys().map(String::as_str));
        }
        self.diags.push(
            Diagnostic::error("unknown-name", span, format!("unknown constructor or device `{name}`{}", did_you_mean(name, known)))
                .with_help("use a built-in constructor (run `mirage-nix catalogue`), declare one under [constructors], or name a device under [devices]"),
        );
    }

    /// The node of a named device: `None` if there is no such name, `Some(None)` on error.
    fn named_device(&mut self, name: &str, use_span: Span) -> Option<Option<NodeId>> {
        let dev = self.config.devices.get(name)?;
        if let Some(&id) = self.named.get(name) {
            return Some(Some(id));
        }
        if let Some(pos) = self.named_stack.iter().position(|(n, _)| n == name) {
            let mut chain: Vec<&str> = self.named_stack[pos..]
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            chain.push(name);
            let mut d = Diagnostic::error(
                "cycle",
                use_span,
                format!("device `{name}` depends on itself: {}", chain.join(" -> ")),
            )
            .with_help("a device cannot be built from itself; break the cycle in [devices]");
            for (n, s) in &self.named_stack[pos..] {
                d = d.with_note(*s, format!("`{n}` is used here"));
            }
            self.diags.push(d);
            return Some(None);
        }
        self.named_stack.push((name.to_string(), use_span));
        let r = self.device(
            &dev.expr,
            &mut None,
            dev.expr.span(),
            &format!("device `{name}`"),
        );
        self.named_stack.pop();
        if let Some(id) = r {
            self.named.insert(name.to_string(), id);
        }
        Some(r)
    }

    fn apply(
        &mut self,
        ctor: &'c Constructor,
        args: &[Expr],
        span: Span,
        scope: &mut Option<Scope<'c>>,
        origin: Span,
    ) -> Option<NodeId> {
        if self.ctor_stack.iter().any(|c| c == &ctor.name) {
            self.diags.push(
                Diagnostic::error(
                    "cycle",
                    span,
                    format!(
                        "constructor `{}` is built from itself ({} -> {})",
                        ctor.name,
                        self.ctor_stack.join(" -> "),
                        ctor.name
                    ),
                )
                .with_note(ctor.span, "declared here")
                .with_help("a constructor's body cannot apply the constructor again"),
            );
            return None;
        }
        if args.len() != ctor.params.len() {
            self.diags.push(
                Diagnostic::error(
                    "arity",
                    span,
                    format!(
                        "`{}` takes {} argument{}, but {} {} given",
                        ctor.name,
                        ctor.params.len(),
                        if ctor.params.len() == 1 { "" } else { "s" },
                        args.len(),
                        if args.len() == 1 { "is" } else { "are" }
                    ),
                )
                .with_help(format!("its type is `{}`", ctor.describe())),
            );
            return None;
        }
        let mut params = BTreeMap::new();
        let mut values = Vec::new();
        let mut devs = Vec::new();
        let mut ok = true;
        for (i, (p, a)) in ctor.params.iter().zip(args).enumerate() {
            let Some(b) = self.expr(a, scope, origin) else {
                ok = false;
                continue;
            };
            let what = format!("argument {} (`{}`) of `{}`", i + 1, p.name, ctor.name);
            match (&p.ty, &b) {
                (ParamType::Value(t), Bound::Value(v)) if *t == v.type_name() => {
                    values.push((p.name.clone(), v.clone()))
                }
                (ParamType::Device(sig), Bound::Device(id)) => {
                    let before = self.diags.len();
                    self.expect_signature(
                        *id,
                        sig,
                        a.span(),
                        &what,
                        &format!("its type is `{}`", ctor.describe()),
                    );
                    ok &= self.diags.len() == before;
                    devs.push(*id);
                }
                (expected, found) => {
                    let found = match found {
                        Bound::Value(v) => format!("`{v}` is a {}", v.type_name()),
                        Bound::Device(id) => format!(
                            "`{}` is a `{}` device",
                            self.graph.label(*id),
                            self.graph.nodes[*id].signature
                        ),
                    };
                    self.diags.push(
                        Diagnostic::error(
                            "type-mismatch",
                            a.span(),
                            format!(
                                "{what} must be a {}, but {found}",
                                match expected {
                                    ParamType::Value(t) => format!("{t} value"),
                                    ParamType::Device(s) => format!("`{s}` device"),
                                }
                            ),
                        )
                        .with_help(format!("its type is `{}`", ctor.describe())),
                    );
                    ok = false;
                }
            }
            params.insert(p.name.clone(), b);
        }
        if !ok {
            return None;
        }
        self.ctor_stack.push(ctor.name.clone());
        let mut inner = Some(Scope {
            ctor,
            params,
            lets: BTreeMap::new(),
            let_stack: Vec::new(),
        });
        let kind = match &ctor.body {
            Body::Impls { .. } => {
                let deps: Option<Vec<NodeId>> = ctor
                    .deps
                    .iter()
                    .map(|d| {
                        self.device(
                            d,
                            &mut inner,
                            origin,
                            &format!("a dependency of `{}`", ctor.name),
                        )
                    })
                    .collect();
                deps.map(|deps| NodeKind::Device {
                    ctor: ctor.name.clone(),
                    values,
                    args: devs,
                    deps,
                })
            }
            Body::Choose(cases) => {
                let mut out = Vec::new();
                for (i, case) in cases.iter().enumerate() {
                    let what = format!("case {} of `{}`", i + 1, ctor.name);
                    if let Some(id) = self.device(&case.use_, &mut inner, origin, &what) {
                        let found = &self.graph.nodes[id].signature;
                        if *found != ctor.signature {
                            let label = self.graph.label(id);
                            self.diags.push(
                                Diagnostic::error("type-mismatch", case.use_.span(), format!("{what} builds `{label}`, a `{found}`, but `{}` builds a `{}`", ctor.name, ctor.signature))
                                    .with_help("every case of a choice must build a device of the choice's signature"),
                            );
                        } else {
                            out.push((case.when.clone(), id));
                        }
                    }
                }
                (out.len() == cases.len()).then(|| NodeKind::Choice {
                    ctor: ctor.name.clone(),
                    values,
                    args: devs,
                    cases: out,
                })
            }
        };
        self.ctor_stack.pop();
        kind.map(|k| self.intern(k, &ctor.signature, origin))
    }
}
