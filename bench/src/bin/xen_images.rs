//! `cargo run --release -p mirage-nix-bench --bin xen_images`: the xen target's images beside
//! the unix ones. For hello, console and kv_ro it renders each committed plan, builds the image
//! with cargo and the plan's flags only, and prints a Markdown table of
//!
//! - the image's size in bytes;
//! - the time from starting QEMU (or the unix process) to the first line of the unikernel's
//!   output, and to the end of the run (medians of a few runs).
//!
//! Xen images are booted as dom0 on Xen 4.17 under QEMU TCG and through their PVH entry
//! directly under QEMU (TCG); both need `scripts/setup`'s packages. hello and console sleep
//! four seconds in all, which the times to exit include.

use std::path::PathBuf;
use std::process::Command;

use mirage_nix_bench::{build_image as build, median, time_run};
use mirage_test_support::xen::{dom0_command, pvh_command};

const RUNS: usize = 3;

/// How one kind of image is started, and which of its output lines are the unikernel's.
struct Runner {
    what: &'static str,
    image: PathBuf,
    command: Box<dyn Fn() -> Command>,
    is_guest_line: fn(&str) -> bool,
}

fn main() {
    println!("| example | image | size (bytes) | to first line (ms) | to exit (ms) |");
    println!("|---|---|---:|---:|---:|");
    for example in ["hello", "console", "kv_ro"] {
        let unix = build(example, "unix");
        let image = build(example, "xen");
        let runners = [
            Runner {
                what: "unix process",
                image: unix.clone(),
                command: Box::new(move || Command::new(&unix)),
                is_guest_line: |_| true,
            },
            Runner {
                what: "xen: dom0 on Xen 4.17, QEMU TCG",
                image: image.clone(),
                command: Box::new({
                    let image = image.clone();
                    move || dom0_command(&image, "")
                }),
                is_guest_line: |l| !l.starts_with("(XEN)") && !l.trim().is_empty(),
            },
            Runner {
                what: "xen: PVH entry, QEMU TCG",
                image: image.clone(),
                command: Box::new({
                    let image = image.clone();
                    move || pvh_command(&image, "")
                }),
                is_guest_line: |l| !l.trim().is_empty(),
            },
        ];
        for r in &runners {
            let (firsts, ends): (Vec<_>, Vec<_>) = (0..RUNS)
                .map(|_| time_run((r.command)(), r.is_guest_line))
                .unzip();
            println!(
                "| {example} | {} | {} | {:.0} | {:.0} |",
                r.what,
                std::fs::metadata(&r.image).unwrap().len(),
                median(firsts).as_secs_f64() * 1e3,
                median(ends).as_secs_f64() * 1e3,
            );
        }
    }
}
