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
    index: std::collections::BTreeMap<NodeId, NodeIndex>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Drawing<'_> {
    fn node(&mut self, id: NodeId) -> NodeIndex {
        let id = if self.resolve {
            self.eval.resolve(self.graph, id)
        } else {
            id
        };
        if let Some(&ix) = self.index.get(&id) {
            return ix;
        }
        let node = &self.graph.nodes[id];
        let label = self.graph.label(id);
        let vertex = match &node.kind {
            NodeKind::Device { ctor, .. } => {
                let detail = if self.resolve {
                    let ix = self
                        .eval
                        .order
                        .iter()
                        .position(|&n| n == id)
                        .unwrap_or_default();
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
                    let to = self.node(a);
                    self.out.add_edge(
                        ix,
                        to,
                        Edge {
                            label: name,
                            style: "solid",
                        },
                    );
                }
                for &d in deps {
                    let to = self.node(d);
                    self.out.add_edge(
                        ix,
                        to,
                        Edge {
                            label: String::new(),
                            style: "dashed",
                        },
                    );
                }
            }
            NodeKind::Choice { cases, .. } => {
                let shown = self.eval.chosen.get(&id).cloned().unwrap_or_default();
                for i in shown {
                    let (when, case) = &cases[i];
                    let to = self.node(*case);
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
                    self.out.add_edge(ix, to, Edge { label, style });
                }
            }
        }
        ix
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
