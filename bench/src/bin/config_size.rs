//! Configure time against config size, printed as a Markdown table (run on demand):
//!
//! ```text
//! cargo run --release -p mirage-nix-bench --bin config_size [-- --runs N] [--shape SHAPE] [--size N]
//! ```
//!
//! For each synthetic shape of `mirage_nix::synth` and size it times, as medians over N runs
//! (fewer for the largest sizes), in process: `load` (reading the TOML with the catalogue and
//! checking every declaration), `graph` (elaboration and type checking), `plan` (evaluation,
//! checks and lowering, with the plan's JSON), `render` (`main.rs` and `Cargo.toml`), and the
//! whole of it. The last column is the whole time per device, which stays flat when the
//! generator is linear. Shapes: `devices` (N named devices in a balanced tree), `chain` (N
//! named devices, each built from the next), `nesting` (one expression N calls deep) and
//! `diamond` (N levels of constructors each using the previous level twice).

use std::path::Path;
use std::time::{Duration, Instant};

use mirage_nix::render::{self, Roots};
use mirage_nix::{graph, synth, Unikernel};
use mirage_nix_bench::median;

/// The time of each stage of one configure.
#[derive(Clone, Copy, Default)]
struct Stages {
    load: Duration,
    graph: Duration,
    plan: Duration,
    render: Duration,
}

impl Stages {
    fn total(&self) -> Duration {
        self.load + self.graph + self.plan + self.render
    }
}

fn once(text: &str) -> (Stages, usize) {
    let dir = Path::new(".");
    let t = Instant::now();
    let config = mirage_nix::config::load_str(dir, "unikernel.toml", text, &mut Default::default())
        .unwrap_or_else(|r| panic!("{}", r.render()));
    let load = t.elapsed();
    let t = Instant::now();
    let graph = graph::build(&config).unwrap_or_else(|r| panic!("{}", r.render()));
    let graph_time = t.elapsed();
    let uk = Unikernel { config, graph };
    let t = Instant::now();
    let plan = uk
        .plan(&uk.context("unix", []).unwrap())
        .unwrap_or_else(|r| panic!("{}", r.render()));
    let json = plan.to_json();
    let plan_time = t.elapsed();
    let t = Instant::now();
    let roots = Roots {
        mirage: dir.to_path_buf(),
        unikernel: dir.to_path_buf(),
    };
    let files =
        render::crate_files(&plan, &roots, Path::new("out")).unwrap_or_else(|e| panic!("{e}"));
    let render_time = t.elapsed();
    std::hint::black_box((json, files));
    (
        Stages {
            load,
            graph: graph_time,
            plan: plan_time,
            render: render_time,
        },
        plan.nodes.len(),
    )
}

fn medians(text: &str, runs: usize) -> (Stages, usize) {
    let (_, nodes) = once(text);
    let samples: Vec<Stages> = (0..runs).map(|_| once(text).0).collect();
    let pick = |f: fn(&Stages) -> Duration| median(samples.iter().map(f).collect());
    (
        Stages {
            load: pick(|s| s.load),
            graph: pick(|s| s.graph),
            plan: pick(|s| s.plan),
            render: pick(|s| s.render),
        },
        nodes,
    )
}

/// A shape: its name, how to make a config of a size, and the sizes measured.
type Shape = (&'static str, fn(usize) -> String, &'static [usize]);

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let shapes: [Shape; 4] = [
        ("devices", synth::devices, &[10, 100, 1_000, 10_000]),
        ("chain", synth::chain, &[10, 100, 1_000, 10_000]),
        ("nesting", synth::nesting, &[10, 100, 1_000, 10_000]),
        ("diamond", synth::diamond, &[10, 20, 40, 80]),
    ];
    let only = args
        .iter()
        .position(|a| a == "--shape")
        .and_then(|i| args.get(i + 1));
    let size: Option<usize> = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    println!("| shape | size | config (KiB) | devices | load (ms) | graph (ms) | plan (ms) | render (ms) | total (ms) | µs per device |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (shape, make, sizes) in shapes {
        if only.is_some_and(|s| s != shape) {
            continue;
        }
        let sizes = size.map_or(sizes.to_vec(), |s| vec![s]);
        for size in sizes {
            let text = make(size);
            let (s, nodes) = medians(&text, if size >= 10_000 { runs.min(5) } else { runs });
            println!(
                "| {shape} | {size} | {:.1} | {nodes} | {} | {} | {} | {} | {} | {:.1} |",
                text.len() as f64 / 1024.0,
                ms(s.load),
                ms(s.graph),
                ms(s.plan),
                ms(s.render),
                ms(s.total()),
                s.total().as_secs_f64() * 1e6 / nodes as f64
            );
        }
    }
}
