//! `cargo run --release -p mirage-nix-bench --bin solo5_images`: the Solo5 targets' images
//! beside the unix and xen ones. For every example it renders each committed plan, builds the
//! image with cargo and the plan's flags only (hvt and spt with the host triple as cargo's
//! target, as Nix builds them, so that build scripts are not linked as images), and prints a
//! Markdown table of image sizes in bytes.
//!
//! With `SOLO5_HVT` and/or `SOLO5_SPT` naming the tenders (Solo5 is not packaged; this project
//! neither fetches nor builds it), it also prints the time from starting the tender, or the
//! unix process, to hello's first line and to its end (medians of three runs; hello sleeps four
//! seconds in all, which "to exit" includes).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mirage_nix_bench::{build_image, median, root, time_run};

fn size(path: &PathBuf) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    let mut examples: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|e| {
            root()
                .join("examples")
                .join(e)
                .join("plans/hvt.json")
                .exists()
        })
        .collect();
    examples.sort();
    println!("| example | unix | xen | hvt | spt |");
    println!("|---|---:|---:|---:|---:|");
    for example in &examples {
        let unix = size(&build_image(example, "unix"));
        let xen = if root()
            .join("examples")
            .join(example)
            .join("plans/xen.json")
            .exists()
        {
            size(&build_image(example, "xen")).to_string()
        } else {
            "unavailable".into()
        };
        let hvt = size(&build_image(example, "hvt"));
        let spt = size(&build_image(example, "spt"));
        println!("| {example} | {unix} | {xen} | {hvt} | {spt} |");
    }

    let mut runners: Vec<(String, Box<dyn Fn() -> Command>)> = Vec::new();
    let unix = build_image("hello", "unix");
    runners.push(("unix process".into(), Box::new(move || Command::new(&unix))));
    for target in ["hvt", "spt"] {
        let Some(tender) = std::env::var_os(format!("SOLO5_{}", target.to_uppercase())) else {
            eprintln!(
                "SOLO5_{} is not set: no {target} times",
                target.to_uppercase()
            );
            continue;
        };
        let image = build_image("hello", target);
        runners.push((
            format!("{target}: solo5-{target} --mem=32"),
            Box::new(move || {
                let mut c = Command::new(&tender);
                c.arg("--mem=32").arg("--").arg(&image);
                c
            }),
        ));
    }
    if runners.len() == 1 {
        return;
    }
    println!();
    println!("| hello | start to first line (ms) | to exit (ms) |");
    println!("|---|---:|---:|");
    for (what, command) in &runners {
        let runs: Vec<(Duration, Duration)> = (0..3)
            .map(|_| time_run(command(), |l| l.contains("[hello]")))
            .collect();
        let first = median(runs.iter().map(|r| r.0).collect());
        let end = median(runs.iter().map(|r| r.1).collect());
        println!("| {what} | {} | {} |", first.as_millis(), end.as_millis());
    }
}
