//! `cargo run --release -p mirage-nix-bench --bin unix_images`: the size and peak memory of
//! every example's unix image, built from its committed plan the way Nix builds it.
//!
//! Peak memory is the maximum resident set size GNU `time` reports (`/usr/bin/time`, Debian's
//! `time` package) over a bounded run: hello and console run to their end; kv_ro reads its
//! store; block works on a fresh 1 MiB disk.img; conduit_server and static_website serve 200
//! requests from `curl` and are then stopped. network needs a tap device in a namespace; its
//! memory is measured by `runtime/unix/tests/direct.rs`, so only its size is printed here.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mirage_nix_bench::{build_image, work_dir};

/// How an example is run for the measurement.
enum Workload {
    /// Runs to its end with these arguments.
    ToEnd(&'static [&'static str]),
    /// Serves HTTP on a port until stopped.
    Server,
    /// Not run here.
    NotRun(&'static str),
}

fn timed(image: &Path, args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.current_dir(dir)
        .args(["-f", "maxrss-kib=%M"])
        .arg(image)
        .args(args);
    c
}

/// The peak RSS in KiB from GNU time's last line on stderr.
fn peak(stderr: impl BufRead) -> Option<u64> {
    stderr
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            l.strip_prefix("maxrss-kib=")
                .and_then(|v| v.trim().parse().ok())
        })
        .last()
}

fn serve(image: &Path, dir: &Path, port: u16, path: &str) -> Option<u64> {
    let port_arg = format!("--port={port}");
    let mut child: Child = timed(image, &[&port_arg], dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let ready = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &url])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ready {
        for _ in 0..200 {
            let _ = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &url])
                .status();
        }
    }
    // SIGTERM to the image; GNU time then reports and exits.
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &child.id().to_string()])
        .status();
    let stderr = child.stderr.take()?;
    let rss = peak(BufReader::new(stderr));
    let _ = child.wait();
    rss.filter(|_| ready)
}

fn main() {
    let examples: [(&str, Workload); 7] = [
        ("hello", Workload::ToEnd(&[])),
        ("console", Workload::ToEnd(&[])),
        ("kv_ro", Workload::ToEnd(&[])),
        ("block", Workload::ToEnd(&[])),
        ("conduit_server", Workload::Server),
        ("static_website", Workload::Server),
        ("network", Workload::NotRun("needs a tap in a namespace")),
    ];
    let scratch = work_dir().join("unix-images-run");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("disk.img"), vec![0u8; 1 << 20]).unwrap();
    println!("| example | image size (KiB) | peak memory (KiB) |");
    println!("|---|---:|---:|");
    for (i, (example, workload)) in examples.iter().enumerate() {
        let image = build_image(example, "unix");
        let size = std::fs::metadata(&image).unwrap().len() / 1024;
        let peak_kib = match workload {
            Workload::ToEnd(args) => {
                let dir = mirage_nix_bench::root().join("examples").join(example);
                let run_dir = if *example == "block" {
                    scratch.as_path()
                } else {
                    dir.as_path()
                };
                timed(&image, args, run_dir)
                    .stdout(Stdio::null())
                    .output()
                    .ok()
                    .and_then(|o| peak(&o.stderr[..]))
                    .map(|k| k.to_string())
            }
            Workload::Server => {
                serve(&image, &scratch, 18080 + i as u16, "/").map(|k| k.to_string())
            }
            Workload::NotRun(why) => Some(format!("({why})")),
        };
        println!(
            "| {example} | {size} | {} |",
            peak_kib.unwrap_or_else(|| "(run failed)".into())
        );
    }
}
