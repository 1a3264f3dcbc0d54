//! Graphviz drawings of device graphs, for `describe --dot`.
//!
//! The unevaluated drawing shows choices as dashed ellipses with one dotted edge per case,
//! labelled by its condition, the default case bold; only the cases the given keys leave open
//! are drawn (so `-t xen` already prunes what cannot apply to Xen). The evaluated drawing shows
//! the devices an image connects. Parameters are solid edges labelled by name, dependencies
//! dashed edges.

use std::fmt::Write;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::config::{Config, ParamType};
use crate::eval::Evaluation;
use crate::graph::{Graph, NodeId, NodeKind};

enum Vertex {
    Main(String),
    Device {
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
}

struct Drawing<'a> {
    config: &'a Config,
    graph: &'a Graph,
    eval: &'a Evaluation,
    resolve: bool,
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
                    };
                    children.push((a, edge));
                }
                for &d in deps {
                    let edge = Edge {
                        label: String::new(),
                        style: "dashed",
                    };
                    children.push((d, edge));
                }
            }
            NodeKind::Choice { cases, .. } => {
                let shown = self.eval.chosen.get(&id).cloned().unwrap_or_default();
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
                    children.push((*case, Edge { label, style }));
                }
            }
        }
        (ix, children)
    }
}

/// Draws the graph from `main`. With `resolve`, choices are replaced by the devices chosen
/// (`eval` must then be a full evaluation); without, choices are drawn with the cases `eval`
/// left open.
pub fn draw(config: &Config, graph: &Graph, eval: &Evaluation, resolve: bool) -> String {
    let mut d = Drawing {
        config,
        graph,
        eval,
        resolve,
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
            },
        );
    }
    let mut text = format!("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n", escape(&config.main.name));
    for ix in d.out.node_indices() {
        let attrs = match &d.out[ix] {
            Vertex::Main(start) => {
                format!("label=\"main\\n{}\", shape=doubleoctagon", escape(start))
            }
            Vertex::Device {
                label,
                signature,
                detail,
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
        let _ = writeln!(text, "  n{} [{attrs}];", ix.index());
    }
    for e in d.out.edge_references() {
        let w = e.weight();
        let _ = writeln!(
            text,
            "  n{} -> n{} [label=\"{}\", style={}];",
            e.source().index(),
            e.target().index(),
            escape(&w.label),
            w.style
        );
    }
    text.push_str("}\n");
    text
}
