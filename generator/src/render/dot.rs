//! Graphviz drawings of device graphs, for `describe --dot`.
//!
//! The unevaluated drawing shows choices as dashed ellipses with one dotted edge per case,
//! labelled by its condition, the default case bold. Every case is drawn; those the target
//! and the keys given close (a key rules them out, or a device they need does not exist on
//! the target: [`crate::eval::closed_cases`]) are grey, and so is whatever only they lead to,
//! each with the reason as its tooltip. The evaluated drawing shows the devices an image
//! connects. Parameters are solid edges labelled by name, dependencies dashed edges.

use std::fmt::Write;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::config::{Config, ParamType};
use crate::eval::Evaluation;
use crate::graph::{Graph, NodeId, NodeKind};

enum Vertex {
    Main(String),
    Device {
        ctor: String,
        label: String,
        signature: String,
        detail: String,
    },
    Choice {
        label: String,
        keys: String,
    },
}

struct Edge {
    label: String,
    style: &'static str,
    /// Why the edge cannot be followed on this target with these keys (drawn grey).
    closed: Option<String>,
}

struct Drawing<'a> {
    config: &'a Config,
    graph: &'a Graph,
    eval: &'a Evaluation,
    resolve: bool,
    /// Unevaluated drawings: the cases the target and keys close, with why.
    closed: &'a std::collections::BTreeMap<(NodeId, usize), String>,
    out: DiGraph<Vertex, Edge>,
    index: std::collections::HashMap<NodeId, NodeIndex>,
    /// Where each device is in the connection order (its number in generated code).
    position: std::collections::HashMap<NodeId, usize>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A vertex whose edges are being drawn: its index, its children with their edges, how many
/// are done, and the edge from its parent, added once its subtree is drawn.
struct Frame {
    ix: NodeIndex,
    children: Vec<(NodeId, Edge)>,
    next: usize,
    from_parent: Option<(NodeIndex, Edge)>,
}

impl Drawing<'_> {
    fn id(&self, id: NodeId) -> NodeId {
        if self.resolve {
            self.eval.resolve(self.graph, id)
        } else {
            id
        }
    }

    /// The vertex of `id` (resolved), drawing it and everything below it on first use, depth
    /// first with an explicit stack so that any depth draws.
    fn node(&mut self, id: NodeId) -> NodeIndex {
        let id = self.id(id);
        if let Some(&ix) = self.index.get(&id) {
            return ix;
        }
        let (ix, children) = self.vertex(id);
        let mut stack = vec![Frame {
            ix,
            children,
            next: 0,
            from_parent: None,
        }];
        while let Some(top) = stack.last_mut() {
            if top.next == top.children.len() {
                let done = stack.pop().expect("non-empty");
                if let Some((parent, edge)) = done.from_parent {
                    self.out.add_edge(parent, done.ix, edge);
                }
                continue;
            }
            let parent = top.ix;
            let (child, edge) = std::mem::replace(
                &mut top.children[top.next],
                (
                    0,
                    Edge {
                        label: String::new(),
                        style: "",
                        closed: None,
                    },
                ),
            );
            top.next += 1;
            let child = self.id(child);
            if let Some(&cix) = self.index.get(&child) {
                self.out.add_edge(parent, cix, edge);
                continue;
            }
            let (cix, children) = self.vertex(child);
            stack.push(Frame {
                ix: cix,
                children,
                next: 0,
                from_parent: Some((parent, edge)),
            });
        }
        ix
    }

    /// Adds the vertex of a (resolved) node, and lists its children with their edges.
    fn vertex(&mut self, id: NodeId) -> (NodeIndex, Vec<(NodeId, Edge)>) {
        let node = &self.graph.nodes[id];
        let label = self.graph.label(id);
        let vertex = match &node.kind {
            NodeKind::Device { ctor, .. } => {
                let detail = if self.resolve {
                    let ix = self.position.get(&id).copied().unwrap_or_default();
                    format!("{ctor}_{ix}")
                } else {
                    String::new()
                };
                Vertex::Device {
                    ctor: ctor.clone(),
                    label,
                    signature: node.signature.clone(),
                    detail,
                }
            }
            NodeKind::Choice { cases, .. } => {
                let mut keys: Vec<&str> = cases
                    .iter()
                    .flat_map(|(w, _)| w.iter().map(|(k, _)| k.as_str()))
                    .collect();
                keys.sort();
                keys.dedup();
                Vertex::Choice {
                    label,
                    keys: keys.join(", "),
                }
            }
        };
        let ix = self.out.add_node(vertex);
        self.index.insert(id, ix);
        let mut children = Vec::new();
        match &node.kind {
            NodeKind::Device {
                args, deps, ctor, ..
            } => {
                let names = self.config.constructors[ctor]
                    .params
                    .iter()
                    .filter(|p| matches!(p.ty, ParamType::Device(_)))
                    .map(|p| p.name.clone());
                for (name, &a) in names.zip(args) {
                    let edge = Edge {
                        label: name,
                        style: "solid",
                        closed: None,
                    };
                    children.push((a, edge));
                }
                for &d in deps {
                    let edge = Edge {
                        label: String::new(),
                        style: "dashed",
                        closed: None,
                    };
                    children.push((d, edge));
                }
            }
            NodeKind::Choice { cases, .. } => {
                let shown: Vec<usize> = if self.resolve {
                    self.eval.chosen.get(&id).cloned().unwrap_or_default()
                } else {
                    (0..cases.len()).collect()
                };
                for i in shown {
                    let (when, case) = &cases[i];
                    let (label, style) = if when.is_empty() {
                        ("default".to_string(), "bold")
                    } else {
                        (
                            when.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            "dotted",
                        )
                    };
                    let closed = self.closed.get(&(id, i)).cloned();
                    children.push((
                        *case,
                        Edge {
                            label,
                            style,
                            closed,
                        },
                    ));
                }
            }
        }
        (ix, children)
    }
}

/// What an unevaluated drawing greys out: the target, and the cases it and the keys close
/// ([`crate::eval::closed_cases`]).
pub struct Closed<'a> {
    /// The target the drawing is for.
    pub target: &'a str,
    /// The closed cases, with why.
    pub cases: &'a std::collections::BTreeMap<(NodeId, usize), String>,
}

/// Draws the graph from `main`. With `resolve`, choices are replaced by the devices chosen
/// (`eval` must then be a full evaluation); without, every case of every choice is drawn,
/// those `closed` names (and what only they lead to) grey with the reason as a tooltip.
pub fn draw(
    config: &Config,
    graph: &Graph,
    eval: &Evaluation,
    resolve: bool,
    closed: Option<Closed<'_>>,
) -> String {
    let no_cases = Default::default();
    let mut d = Drawing {
        config,
        graph,
        eval,
        resolve,
        closed: closed.as_ref().map_or(&no_cases, |c| c.cases),
        out: DiGraph::new(),
        index: Default::default(),
        position: eval
            .order
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i))
            .collect(),
    };
    let main = d.out.add_node(Vertex::Main(config.main.start.clone()));
    for (i, &a) in graph.main.args.iter().enumerate() {
        let to = d.node(a);
        let sig = config
            .main
            .signature
            .get(i)
            .map(|(s, _)| s.clone())
            .unwrap_or_default();
        d.out.add_edge(
            main,
            to,
            Edge {
                label: sig,
                style: "solid",
                closed: None,
            },
        );
    }
    for &dep in &graph.main.deps {
        let to = d.node(dep);
        d.out.add_edge(
            main,
            to,
            Edge {
                label: String::new(),
                style: "dashed",
                closed: None,
            },
        );
    }
    // What cannot be reached from main but through a closed case is grey, with the reason of
    // the closed case that leads to it (a device missing on the target says its own).
    let mut live = vec![false; d.out.node_count()];
    let mut todo = vec![main];
    while let Some(v) = todo.pop() {
        if std::mem::replace(&mut live[v.index()], true) {
            continue;
        }
        todo.extend(
            d.out
                .edges(v)
                .filter(|e| e.weight().closed.is_none())
                .map(|e| e.target()),
        );
    }
    let mut why: Vec<Option<String>> = vec![None; d.out.node_count()];
    let mut todo: Vec<(NodeIndex, String)> = d
        .out
        .edge_references()
        .filter_map(|e| Some((e.target(), e.weight().closed.clone()?)))
        .collect();
    todo.reverse();
    while let Some((v, reason)) = todo.pop() {
        if live[v.index()] || why[v.index()].is_some() {
            continue;
        }
        why[v.index()] = Some(reason.clone());
        todo.extend(d.out.edges(v).map(|e| (e.target(), reason.clone())));
    }
    const GREY: &str = "color=\"grey60\", fontcolor=\"grey60\"";
    let mut text = format!("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n", escape(&config.main.name));
    for ix in d.out.node_indices() {
        let mut attrs = match &d.out[ix] {
            Vertex::Main(start) => {
                format!("label=\"main\\n{}\", shape=doubleoctagon", escape(start))
            }
            Vertex::Device {
                label,
                signature,
                detail,
                ..
            } => {
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("\\n{}", escape(detail))
                };
                format!(
                    "label=\"{}\\n: {}{detail}\", shape=box",
                    escape(label),
                    escape(signature)
                )
            }
            Vertex::Choice { label, keys } => {
                format!(
                    "label=\"choose {}\\nkeys: {}\", shape=ellipse, style=dashed",
                    escape(label),
                    escape(keys)
                )
            }
        };
        if !live[ix.index()] {
            let own = match (&d.out[ix], &closed) {
                (Vertex::Device { ctor, .. }, Some(c)) => {
                    crate::eval::unavailable_reason(config, ctor, c.target)
                        .map(|r| format!("`{ctor}` is not available on {}: {r}", c.target))
                }
                _ => None,
            };
            let reason = own.or_else(|| why[ix.index()].clone()).unwrap_or_default();
            let _ = write!(attrs, ", {GREY}, tooltip=\"{}\"", escape(&reason));
        }
        let _ = writeln!(text, "  n{} [{attrs}];", ix.index());
    }
    for e in d.out.edge_references() {
        let w = e.weight();
        let grey = match (&w.closed, live[e.source().index()]) {
            (Some(reason), _) => format!(", {GREY}, tooltip=\"{}\"", escape(reason)),
            (None, false) => format!(", {GREY}"),
            (None, true) => String::new(),
        };
        let _ = writeln!(
            text,
            "  n{} -> n{} [label=\"{}\", style={}{grey}];",
            e.source().index(),
            e.target().index(),
            escape(&w.label),
            w.style
        );
    }
    text.push_str("}\n");
    text
}
