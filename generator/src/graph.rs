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
//! `Builder::intern`, the only place nodes are created). Applications are memoised too: a
//! constructor applied to the same arguments is elaborated once, so a body that uses the
//! previous level twice (a diamond of constructors) costs one elaboration per level, not
//! two to the power of the depth.
//!
//! **Depth.** Elaboration is a loop over an explicit stack of tasks, never a recursion, so a
//! chain of 100,000 named devices or an expression nested 100,000 deep elaborates in time and
//! memory linear in its size, whatever the thread's stack.
//!
//! **Every declaration is checked.** Named devices that `main` does not use are elaborated
//! too, and constructors of the unikernel that nothing applies are elaborated once with
//! stand-ins for their parameters, so an unknown name, a type error or a cycle is reported
//! wherever it is declared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::config::{Body, Config, Constructor, Expr, ExprRef, Literal, ParamType, Part};
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
    let mut b = Builder::new(config);
    let main = &config.main;
    let origin = main.span;
    let mut deps = Vec::new();
    if let Some(r) = &main.reporter {
        if let Some(id) = b.device(r, origin, What::Reporter) {
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
        if let Some(id) = b.device(d, origin, What::MainDep) {
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
        if let Some(id) = b.device(a, origin, What::MainArg(i)) {
            if let Some((sig, _)) = main.signature.get(i) {
                b.expect_signature(
                    id,
                    sig,
                    a.span(),
                    &What::MainArg(i).to_string(),
                    &format!("main's signature says argument {} is a `{sig}`", i + 1),
                );
            }
            args.push(id);
        }
    }
    b.graph.main = MainNode { args, deps };
    b.check_unused();
    if b.diags.is_empty() {
        Ok(b.graph)
    } else {
        Err(Report {
            sources: config.sources.clone(),
            diagnostics: b.diags,
        })
    }
}

/// What an elaborated name is bound to: a device node or a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Bound {
    Device(NodeId),
    Value(Literal),
}

/// What an expression that must be a device is, for messages.
#[derive(Clone, Copy, Debug)]
enum What<'c> {
    Reporter,
    MainDep,
    MainArg(usize),
    Local(&'c str),
    Named(&'c str),
    CtorDep(&'c str),
    Case(usize, &'c str),
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Reporter => f.write_str("the log reporter"),
            What::MainDep => f.write_str("a dependency of main"),
            What::MainArg(i) => write!(f, "argument {} of main", i + 1),
            What::Local(name) => write!(f, "local device `{name}`"),
            What::Named(name) => write!(f, "device `{name}`"),
            What::CtorDep(ctor) => write!(f, "a dependency of `{ctor}`"),
            What::Case(i, ctor) => write!(f, "case {} of `{ctor}`", i + 1),
        }
    }
}

/// The names visible inside one constructor application.
struct Scope<'c> {
    ctor: &'c Constructor,
    params: BTreeMap<&'c str, Bound>,
    /// Local devices elaborated so far (`None` when one failed, already reported).
    lets: BTreeMap<&'c str, Option<NodeId>>,
    /// Local devices being elaborated, innermost last, for cycles.
    let_stack: Vec<&'c str>,
    /// The same names, to find a cycle in constant time.
    let_active: HashSet<&'c str>,
}

/// Index of a [`Scope`] on the builder's scope stack; `None` is the top level.
type ScopeId = Option<usize>;

/// One step of elaboration. Every `Eval` pushes exactly one value on the value stack (`None`
/// when it failed, with the reason already reported); the other steps consume the values of
/// the steps they were scheduled after.
enum Task<'c> {
    /// Elaborates an expression in a scope.
    Eval {
        e: ExprRef<'c>,
        scope: ScopeId,
        origin: Span,
    },
    /// Keeps the value on top if it is a device, else reports that `what` must be one.
    ExpectDevice { span: Span, what: What<'c> },
    /// A local device of the scope was elaborated.
    LetDone { scope: usize, name: &'c str },
    /// A named device was elaborated.
    NamedDone { name: &'c str },
    /// The arguments of an application are on the value stack.
    Applied {
        ctor: &'c Constructor,
        call: ExprRef<'c>,
        origin: Span,
    },
    /// The body of an application (its dependencies or cases) is on the value stack.
    BodyDone {
        ctor: &'c Constructor,
        values: Vec<(String, Literal)>,
        devs: Vec<NodeId>,
        origin: Span,
        memo: (&'c str, Vec<Bound>),
    },
}

#[derive(Clone)]
struct Builder<'c> {
    config: &'c Config,
    graph: Graph,
    index: HashMap<NodeKind, NodeId>,
    /// Named devices elaborated (`None` when one failed, already reported).
    named: HashMap<&'c str, Option<NodeId>>,
    /// Named devices being elaborated, with where each was used, innermost last.
    named_stack: Vec<(&'c str, Span)>,
    named_active: HashMap<&'c str, usize>,
    /// Constructors whose bodies are being elaborated, innermost last.
    ctor_stack: Vec<&'c str>,
    ctor_active: HashSet<&'c str>,
    /// Applications elaborated, by constructor and arguments.
    applied: HashMap<(&'c str, Vec<Bound>), Option<NodeId>>,
    /// Constructors whose bodies were elaborated at least once.
    elaborated: HashSet<&'c str>,
    diags: Vec<Diagnostic>,
}

/// The mutable state of one run of the elaboration loop.
#[derive(Default)]
struct Run<'c> {
    tasks: Vec<Task<'c>>,
    values: Vec<Option<Bound>>,
    scopes: Vec<Scope<'c>>,
}

impl<'c> Run<'c> {
    /// Schedules the elaboration of `e` in `scope`, which must give a device (`what` says
    /// which, for the message when it does not).
    fn device(&mut self, e: &'c Expr, scope: ScopeId, origin: Span, what: What<'c>) {
        self.tasks.push(Task::ExpectDevice {
            span: e.span(),
            what,
        });
        self.tasks.push(Task::Eval {
            e: e.root(),
            scope,
            origin,
        });
    }
}

impl<'c> Builder<'c> {
    fn new(config: &'c Config) -> Builder<'c> {
        Builder {
            config,
            graph: Graph::default(),
            index: HashMap::new(),
            named: HashMap::new(),
            named_stack: Vec::new(),
            named_active: HashMap::new(),
            ctor_stack: Vec::new(),
            ctor_active: HashSet::new(),
            applied: HashMap::new(),
            elaborated: HashSet::new(),
            diags: Vec::new(),
        }
    }

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

    /// Elaborates a top-level expression that must denote a device.
    fn device(&mut self, e: &'c Expr, origin: Span, what: What<'c>) -> Option<NodeId> {
        let mut run = Run::default();
        run.device(e, None, origin, what);
        self.run(run)
    }

    /// Runs the elaboration loop until its tasks are done, and returns the one value left.
    fn run(&mut self, mut run: Run<'c>) -> Option<NodeId> {
        while let Some(task) = run.tasks.pop() {
            self.step(task, &mut run);
        }
        debug_assert!(run.values.len() == 1 && run.scopes.is_empty());
        match run.values.pop().flatten() {
            Some(Bound::Device(id)) => Some(id),
            _ => None,
        }
    }

    fn user_visible(&self, scope: ScopeId, run: &Run<'c>) -> bool {
        scope.is_none_or(|s| run.scopes[s].ctor.span.file == self.config.file)
    }

    fn step(&mut self, task: Task<'c>, run: &mut Run<'c>) {
        match task {
            Task::Eval { e, scope, origin } => self.eval(e, scope, origin, run),
            Task::ExpectDevice { span, what } => {
                if let Some(Some(Bound::Value(v))) = run.values.last() {
                    self.diags.push(
                        Diagnostic::error("type-mismatch", span, format!("{what} must be a device, but `{v}` is a {}", v.type_name()))
                            .with_help("pass a device expression such as `default_console` or `generic_kv_ro(\"t\")`"),
                    );
                    *run.values.last_mut().expect("checked") = None;
                }
            }
            Task::LetDone { scope, name } => {
                let value = run.values.last().cloned().flatten();
                let s = &mut run.scopes[scope];
                s.let_stack.pop();
                s.let_active.remove(name);
                let id = match value {
                    Some(Bound::Device(id)) => Some(id),
                    _ => None,
                };
                s.lets.insert(name, id);
            }
            Task::NamedDone { name } => {
                let value = run.values.last().cloned().flatten();
                self.named_stack.pop();
                self.named_active.remove(name);
                let id = match value {
                    Some(Bound::Device(id)) => Some(id),
                    _ => None,
                };
                self.named.insert(name, id);
            }
            Task::Applied { ctor, call, origin } => self.applied(ctor, call, origin, run),
            Task::BodyDone {
                ctor,
                values,
                devs,
                origin,
                memo,
            } => {
                let n = match &ctor.body {
                    Body::Impls { .. } => ctor.deps.len(),
                    Body::Choose(cases) => cases.len(),
                };
                let results = run.values.split_off(run.values.len() - n);
                let kind = match &ctor.body {
                    Body::Impls { .. } => {
                        let deps: Option<Vec<NodeId>> = results
                            .into_iter()
                            .map(|r| match r {
                                Some(Bound::Device(id)) => Some(id),
                                _ => None,
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
                        for (i, (case, r)) in cases.iter().zip(results).enumerate() {
                            let Some(Bound::Device(id)) = r else { continue };
                            let found = &self.graph.nodes[id].signature;
                            if *found != ctor.signature {
                                let label = self.graph.label(id);
                                self.diags.push(
                                    Diagnostic::error("type-mismatch", case.use_.span(), format!("{} builds `{label}`, a `{found}`, but `{}` builds a `{}`", What::Case(i, &ctor.name), ctor.name, ctor.signature))
                                        .with_help("every case of a choice must build a device of the choice's signature"),
                                );
                            } else {
                                out.push((case.when.clone(), id));
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
                self.ctor_active.remove(ctor.name.as_str());
                run.scopes.pop();
                let id = kind.map(|k| self.intern(k, &ctor.signature, origin));
                self.applied.insert(memo, id);
                run.values.push(id.map(Bound::Device));
            }
        }
    }

    fn eval(&mut self, e: ExprRef<'c>, scope: ScopeId, origin: Span, run: &mut Run<'c>) {
        let origin = if e.span().file == self.config.file {
            e.span()
        } else {
            origin
        };
        let (name, name_span, bare) = match e.part() {
            Part::Literal { value, .. } => {
                run.values.push(Some(Bound::Value(value.clone())));
                return;
            }
            Part::Call {
                name,
                name_span,
                args,
                ..
            } => (name.as_str(), *name_span, args.is_none()),
        };
        if !bare {
            if let Some(ctor) = self.config.constructors.get(name) {
                return self.apply(ctor, e, origin, scope, run);
            }
            let is_device = scope.is_some_and(|s| {
                let s = &run.scopes[s];
                s.params.contains_key(name) || s.ctor.lets.contains_key(name)
            }) || self.config.devices.contains_key(name);
            if is_device {
                self.diags.push(
                    Diagnostic::error(
                        "not-a-constructor",
                        name_span,
                        format!(
                            "`{name}` is a device, not a constructor, so it takes no arguments"
                        ),
                    )
                    .with_help(format!("write `{name}` without parentheses")),
                );
            } else {
                self.unknown(name, name_span, scope, run);
            }
            run.values.push(None);
            return;
        }
        if let Some(s) = scope {
            let sc = &mut run.scopes[s];
            if let Some(b) = sc.params.get(name) {
                run.values.push(Some(b.clone()));
                return;
            }
            if let Some(id) = sc.lets.get(name) {
                run.values.push(id.map(Bound::Device));
                return;
            }
            if let Some((let_name, let_expr)) = sc.ctor.lets.get_key_value(name) {
                if sc.let_active.contains(name) {
                    let chain = sc.let_stack.join(" -> ");
                    let ctor = &sc.ctor.name;
                    self.diags.push(
                        Diagnostic::error("cycle", name_span, format!("local device `{name}` of `{ctor}` depends on itself ({chain} -> {name})"))
                            .with_help("a device cannot be built from itself; break the cycle"),
                    );
                    run.values.push(None);
                    return;
                }
                sc.let_stack.push(let_name);
                sc.let_active.insert(let_name);
                run.tasks.push(Task::LetDone {
                    scope: s,
                    name: let_name,
                });
                run.device(let_expr, scope, origin, What::Local(let_name));
                return;
            }
        }
        if self.user_visible(scope, run) {
            if let Some((dev_name, dev)) = self.config.devices.get_key_value(name) {
                if let Some(id) = self.named.get(name) {
                    run.values.push(id.map(Bound::Device));
                    return;
                }
                if let Some(&pos) = self.named_active.get(name) {
                    self.named_cycle(pos, name, name_span);
                    run.values.push(None);
                    return;
                }
                self.begin_named(dev_name, &dev.expr, name_span, run);
                return;
            }
        }
        if let Some(ctor) = self.config.constructors.get(name) {
            return self.apply(ctor, e, origin, scope, run);
        }
        self.unknown(name, name_span, scope, run);
        run.values.push(None);
    }

    /// Schedules the elaboration of the named device `name`, used at `use_span`.
    fn begin_named(&mut self, name: &'c str, expr: &'c Expr, use_span: Span, run: &mut Run<'c>) {
        self.named_active.insert(name, self.named_stack.len());
        self.named_stack.push((name, use_span));
        run.tasks.push(Task::NamedDone { name });
        run.device(expr, None, expr.span(), What::Named(name));
    }

    fn named_cycle(&mut self, pos: usize, name: &str, use_span: Span) {
        let mut chain: Vec<&str> = self.named_stack[pos..].iter().map(|(n, _)| *n).collect();
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
    }

    fn unknown(&mut self, name: &str, span: Span, scope: ScopeId, run: &Run<'c>) {
        let mut known: Vec<&str> = self
            .config
            .constructors
            .keys()
            .map(String::as_str)
            .collect();
        if self.user_visible(scope, run) {
            known.extend(self.config.devices.keys().map(String::as_str));
        }
        if let Some(s) = scope {
            let s = &run.scopes[s];
            known.extend(s.params.keys().copied());
            known.extend(s.ctor.lets.keys().map(String::as_str));
        }
        self.diags.push(
            Diagnostic::error("unknown-name", span, format!("unknown constructor or device `{name}`{}", did_you_mean(name, known)))
                .with_help("use a built-in constructor (run `mirage-nix catalogue`), declare one under [constructors], or name a device under [devices]"),
        );
    }

    /// Schedules an application of `ctor` to the arguments of `call` (none for a bare name).
    fn apply(
        &mut self,
        ctor: &'c Constructor,
        call: ExprRef<'c>,
        origin: Span,
        scope: ScopeId,
        run: &mut Run<'c>,
    ) {
        let span = call.span();
        if self.ctor_active.contains(ctor.name.as_str()) {
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
            run.values.push(None);
            return;
        }
        let args = call.args();
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
            run.values.push(None);
            return;
        }
        run.tasks.push(Task::Applied { ctor, call, origin });
        for a in args.rev() {
            run.tasks.push(Task::Eval {
                e: a,
                scope,
                origin,
            });
        }
    }

    /// Type-checks the arguments of an application and schedules its body, unless the same
    /// application was elaborated before.
    fn applied(
        &mut self,
        ctor: &'c Constructor,
        call: ExprRef<'c>,
        origin: Span,
        run: &mut Run<'c>,
    ) {
        let bound = run.values.split_off(run.values.len() - ctor.params.len());
        let mut params = BTreeMap::new();
        let mut values = Vec::new();
        let mut devs = Vec::new();
        let mut key = Vec::with_capacity(bound.len());
        let mut ok = true;
        for (i, ((p, a), b)) in ctor.params.iter().zip(call.args()).zip(bound).enumerate() {
            let Some(b) = b else {
                ok = false;
                continue;
            };
            match (&p.ty, &b) {
                (ParamType::Value(t), Bound::Value(v)) if *t == v.type_name() => {
                    values.push((p.name.clone(), v.clone()))
                }
                (ParamType::Device(sig), Bound::Device(id)) => {
                    let before = self.diags.len();
                    let what = format!("argument {} (`{}`) of `{}`", i + 1, p.name, ctor.name);
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
                                "argument {} (`{}`) of `{}` must be a {}, but {found}",
                                i + 1,
                                p.name,
                                ctor.name,
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
            key.push(b.clone());
            params.insert(p.name.as_str(), b);
        }
        if !ok {
            run.values.push(None);
            return;
        }
        let memo = (ctor.name.as_str(), key);
        if let Some(id) = self.applied.get(&memo) {
            run.values.push(id.map(Bound::Device));
            return;
        }
        self.begin_body(ctor, params, values, devs, origin, memo, run);
    }

    /// Schedules the body of an application whose parameters are bound.
    #[allow(clippy::too_many_arguments)]
    fn begin_body(
        &mut self,
        ctor: &'c Constructor,
        params: BTreeMap<&'c str, Bound>,
        values: Vec<(String, Literal)>,
        devs: Vec<NodeId>,
        origin: Span,
        memo: (&'c str, Vec<Bound>),
        run: &mut Run<'c>,
    ) {
        self.elaborated.insert(&ctor.name);
        self.ctor_stack.push(&ctor.name);
        self.ctor_active.insert(&ctor.name);
        run.scopes.push(Scope {
            ctor,
            params,
            lets: BTreeMap::new(),
            let_stack: Vec::new(),
            let_active: HashSet::new(),
        });
        let inner = Some(run.scopes.len() - 1);
        run.tasks.push(Task::BodyDone {
            ctor,
            values,
            devs,
            origin,
            memo,
        });
        let body: Vec<(&'c Expr, What<'c>)> = match &ctor.body {
            Body::Impls { .. } => ctor
                .deps
                .iter()
                .map(|d| (d, What::CtorDep(&ctor.name)))
                .collect(),
            Body::Choose(cases) => cases
                .iter()
                .enumerate()
                .map(|(i, c)| (&c.use_, What::Case(i, &ctor.name)))
                .collect(),
        };
        for (e, what) in body.into_iter().rev() {
            run.device(e, inner, origin, what);
        }
    }

    /// Checks what `main` does not use: every named device of the unikernel, and each of its
    /// constructors that was never elaborated, applied to stand-ins for its parameters (on a
    /// copy of the builder, so that the stand-ins never reach the graph).
    fn check_unused(&mut self) {
        let config = self.config;
        for (name, dev) in &config.devices {
            if !self.named.contains_key(name.as_str()) {
                let mut run = Run::default();
                self.begin_named(name, &dev.expr, dev.span, &mut run);
                self.run(run);
            }
        }
        let unused: Vec<&'c Constructor> = config
            .constructors
            .values()
            .filter(|c| c.span.file == config.file && !self.elaborated.contains(c.name.as_str()))
            .collect();
        if unused.is_empty() {
            return;
        }
        let mut check = self.clone();
        check.diags.clear();
        for ctor in unused {
            if check.elaborated.contains(ctor.name.as_str()) {
                continue;
            }
            let mut params = BTreeMap::new();
            let mut values = Vec::new();
            let mut devs = Vec::new();
            for p in &ctor.params {
                let b = match &p.ty {
                    ParamType::Device(sig) => {
                        // A stand-in: a node of the parameter's signature, labelled by its name.
                        let id = check.graph.nodes.len();
                        check.graph.nodes.push(Node {
                            kind: NodeKind::Device {
                                ctor: p.name.clone(),
                                values: Vec::new(),
                                args: Vec::new(),
                                deps: Vec::new(),
                            },
                            signature: sig.clone(),
                            origin: ctor.span,
                        });
                        devs.push(id);
                        Bound::Device(id)
                    }
                    ParamType::Value(t) => {
                        let v = match *t {
                            "int" => Literal::Int(0),
                            "bool" => Literal::Bool(false),
                            _ => Literal::String(String::new()),
                        };
                        values.push((p.name.clone(), v.clone()));
                        Bound::Value(v)
                    }
                };
                params.insert(p.name.as_str(), b);
            }
            let memo = (ctor.name.as_str(), params.values().cloned().collect());
            let mut run = Run::default();
            check.begin_body(ctor, params, values, devs, ctor.span, memo, &mut run);
            check.run(run);
        }
        self.diags.append(&mut check.diags);
    }
}
