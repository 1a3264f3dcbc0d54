//! HTTP throughput and latency of conduit_server, side by side with nginx, printed as a
//! Markdown table (run on demand as root, not in CI):
//!
//! ```text
//! cargo run --release -p mirage-nix-bench --bin http [-- --seconds S --connections C,C,... --runs N]
//! ```
//!
//! Each row is `wrk` (one thread, C keep-alive connections: 64, 1,000 and 10,000 by default,
//! S = 10 seconds, the median of N = 5 rounds in which the rows take turns) against one server
//! answering every request with "hello mirage world!\n"; a row also gives the errors wrk saw
//! over all rounds (connect, read, write, timeout, non-2xx) and the server's resident memory
//! after each round (a soak: it must not grow):
//!
//! - nginx with one worker process (`return 200`), on loopback;
//! - conduit_server over the socket stack (its committed unix plan), on loopback;
//! - conduit_server over the direct stack (`--net=direct`), smoltcp on a tap device in a
//!   network namespace of its own, with wrk on the host side of the tap;
//! - nginx again, in that namespace on the host side of the tap, for the same path length.
//!
//! It also reports each image's size and the server's peak resident memory (`VmHWM`). The
//! images are rendered from plans and built with cargo under `target/bench-http/`.

use mirage_nix_bench::root;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `run(cmd)` runs `cmd` and stops the benchmark with its output if it fails.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("{cmd:?}: {e}")));
    if !out.status.success() {
        fail(&format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    out.stdout
}

fn fail(message: &str) -> ! {
    eprintln!("bench http: {message}");
    std::process::exit(1)
}

/// `image(configure)` builds conduit_server for unix from its committed plan (no keys) or from
/// the plan `configure` gives, and returns its path.
fn image(work: &Path, configure: &[&str]) -> PathBuf {
    let dir = root().join("examples/conduit_server");
    let name = if configure.is_empty() {
        "socket"
    } else {
        "direct"
    };
    let plan = if configure.is_empty() {
        dir.join("plans/unix.json")
    } else {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(root())
            .args([
                "run",
                "-q",
                "-p",
                "mirage-nix",
                "--",
                "query",
                "plan",
                "-t",
                "unix",
            ])
            .args(configure)
            .arg(&dir);
        let plan = work.join(format!("{name}.json"));
        std::fs::write(&plan, run(&mut cmd)).unwrap_or_else(|e| fail(&e.to_string()));
        plan
    };
    let krate = work.join(name);
    // A fresh crate each time: a lockfile left by a build from another tree would clash.
    let _ = std::fs::remove_dir_all(&krate);
    run(Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["run", "-q", "-p", "mirage-nix", "--", "render"])
        .arg(&plan)
        .arg("-o")
        .arg(&krate)
        .arg("--unikernel-dir")
        .arg(&dir)
        .arg("--mirage-root")
        .arg(root()));
    run(Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "--manifest-path"])
        .arg(krate.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", work.join("target")));
    let built = work.join(format!("conduit_server-{name}"));
    let fresh = work.join(format!("conduit_server-{name}.new"));
    std::fs::copy(work.join("target/release/conduit_server"), &fresh)
        .and_then(|_| std::fs::rename(&fresh, &built))
        .unwrap_or_else(|e| fail(&e.to_string()));
    built
}

/// A server process, killed when dropped.
struct Server(Child);

impl Server {
    fn start(cmd: &mut Command) -> Server {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("{cmd:?}: {e}")));
        Server(child)
    }

    /// `rss_kib()` is the resident memory of the process (or, for nginx, of its worker, the
    /// process that serves), in KiB.
    fn rss_kib(&self, worker: bool) -> Option<u64> {
        let mut pid = self.0.id();
        if worker {
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            pid = children.split_whitespace().next()?.parse().ok()?;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Server {
    /// SIGTERM first, so that nginx's master stops its worker too; SIGKILL after 5 s.
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).output();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace with a tap `tap0` at 10.0.0.1/24, deleted when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("mirage-bench-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        for cmd in [
            "ip link set lo up",
            "ip tuntap add mode tap tap0",
            "ip addr add 10.0.0.1/24 dev tap0",
            "ip link set tap0 up",
        ] {
            run(&mut ns.exec(&cmd.split(' ').collect::<Vec<_>>()));
        }
        ns
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// `nginx(work, tag, addr)` is nginx with one worker on `addr` answering like conduit_server.
fn nginx(work: &Path, tag: &str, addr: &str, ns: Option<&Netns>) -> Server {
    let dir = work.join(format!("nginx-{tag}"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         worker_rlimit_nofile 65536;\nevents {{ worker_connections 16384; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n\
         fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
         server {{\n    listen {addr};\n    location / {{\n      default_type \"text/plain; charset=utf-8\";\n\
         return 200 \"hello mirage world!\\n\";\n    }}\n  }}\n}}\n",
        d = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap_or_else(|e| fail(&e.to_string()));
    let path = path.to_string_lossy().into_owned();
    let args = ["nginx", "-c", path.as_str()];
    match ns {
        Some(ns) => Server::start(&mut ns.exec(&args)),
        None => Server::start(Command::new(args[0]).args(&args[1..])),
    }
}

/// `wait_http(url, ns)` waits until `url` answers (at most 20 s).
fn wait_http(url: &str, ns: Option<&Netns>) {
    let start = Instant::now();
    let args = ["curl", "-sf", "--max-time", "2", "-o", "/dev/null", url];
    while start.elapsed() < Duration::from_secs(20) {
        let ok = match ns {
            Some(ns) => ns.exec(&args).output(),
            None => Command::new(args[0]).args(&args[1..]).output(),
        };
        if ok.is_ok_and(|o| o.status.success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    fail(&format!("{url} does not answer"));
}

/// One wrk measurement: requests per second, the 99th percentile latency in ms, errors.
#[derive(Clone, Copy)]
struct Sample {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

/// `parse_duration_ms(text)` is wrk's `1.23ms` / `456.00us` / `1.01s` in milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `wrk(url, options, ns)` runs wrk once and reads its report.
fn wrk(url: &str, options: &Options, connections: u64, ns: Option<&Netns>) -> Sample {
    // 10,000 connections need as many descriptors.
    let script = format!(
        "ulimit -n 65536; exec wrk -t1 -c{connections} -d{}s --timeout 10s --latency {url}",
        options.seconds
    );
    let args = ["sh", "-c", script.as_str()];
    let out = match ns {
        Some(ns) => run(&mut ns.exec(&args)),
        None => run(Command::new(args[0]).args(&args[1..])),
    };
    let text = String::from_utf8_lossy(&out);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok());
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_duration_ms(v.trim()));
    let errors = mirage_test_support::process::wrk_errors(&text);
    match (rps, p99) {
        (Some(rps), Some(p99_ms)) => Sample {
            rps,
            p99_ms,
            errors,
        },
        _ => fail(&format!("cannot read wrk's report:\n{text}")),
    }
}

/// `median(samples)` is the sample with the median throughput.
fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    samples[samples.len() / 2]
}

/// One server under test.
struct Row<'a> {
    name: &'static str,
    path: &'static str,
    url: String,
    /// The namespace wrk runs in, if not the host's.
    ns: Option<&'a Netns>,
    server: Server,
    /// The image's size, or `-` for nginx.
    size: String,
    /// Whether the server is nginx, whose worker is the process that serves.
    nginx: bool,
}

struct Options {
    seconds: u64,
    connections: Vec<u64>,
    runs: usize,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        connections: vec![64, 1000, 10_000],
        runs: 5,
    };
    let usage = "usage: http [--seconds S] [--connections C,C,...] [--runs N]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let text = pair.get(1).map_or("", String::as_str);
        let value = text.parse::<u64>().ok();
        match (pair[0].as_str(), value) {
            ("--seconds", Some(v)) if v > 0 => o.seconds = v,
            ("--connections", _) => {
                o.connections = text
                    .split(',')
                    .map(|c| c.parse().ok().filter(|&c| c > 0))
                    .collect::<Option<Vec<u64>>>()
                    .unwrap_or_else(|| fail(usage));
            }
            ("--runs", Some(v)) if v > 0 => o.runs = usize::try_from(v).unwrap_or(1),
            _ => fail(usage),
        }
    }
    o
}

fn size_kib(path: &Path) -> String {
    std::fs::metadata(path).map_or_else(|_| String::from("?"), |m| (m.len() / 1024).to_string())
}

fn row(server: &str, path: &str, connections: u64, samples: &[Sample], memory: &[Option<u64>]) {
    let errors: u64 = samples.iter().map(|s| s.errors).sum();
    let s = median(samples.to_vec());
    let memory: Vec<String> = memory
        .iter()
        .map(|m| m.map_or_else(|| String::from("?"), |m| m.to_string()))
        .collect();
    println!(
        "| {server} | {path} | {connections} | {:.0} | {:.2} | {errors} | {} |",
        s.rps,
        s.p99_ms,
        memory.join(" ")
    );
}

fn main() {
    let options = options();
    for tool in ["wrk", "nginx", "curl", "ip"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            fail(&format!("`{tool}` is missing: run scripts/setup"));
        }
    }
    let work = root().join("target/bench-http");
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!("building conduit_server (socket and direct stacks)...");
    let socket = image(&work, &[]);
    let direct = image(&work, &["--net=direct"]);
    eprintln!(
        "wrk -t1 -c{:?} -d{}s, median of {} runs each",
        options.connections, options.seconds, options.runs
    );
    let ns = Netns::create();
    let direct_arg = direct.to_string_lossy().into_owned();
    // Every server runs for the whole benchmark, and the rows take turns run after run, so
    // that a change in the machine's load affects them alike.
    let rows = [
        Row {
            name: "nginx, 1 worker",
            path: "loopback",
            url: String::from("http://127.0.0.1:18081/"),
            ns: None,
            server: nginx(&work, "loopback", "127.0.0.1:18081", None),
            size: String::from("-"),
            nginx: true,
        },
        Row {
            name: "conduit_server, socket stack",
            path: "loopback",
            url: String::from("http://127.0.0.1:18080/"),
            ns: None,
            server: Server::start(Command::new(&socket).arg("--port=18080")),
            size: size_kib(&socket),
            nginx: false,
        },
        Row {
            name: "conduit_server, direct stack",
            path: "tap in a netns",
            url: String::from("http://10.0.0.2:8080/"),
            ns: Some(&ns),
            server: Server::start(&mut ns.exec(&[
                &direct_arg,
                "--interface=tap0",
                "--ipv4=10.0.0.2/24",
                "--port=8080",
            ])),
            size: size_kib(&direct),
            nginx: false,
        },
        Row {
            name: "nginx, 1 worker",
            path: "netns, host side of the tap",
            url: String::from("http://10.0.0.1:8081/"),
            ns: Some(&ns),
            server: nginx(&work, "netns", "10.0.0.1:8081", Some(&ns)),
            size: String::from("-"),
            nginx: true,
        },
    ];
    for row in &rows {
        wait_http(&row.url, row.ns);
    }
    println!(
        "| server | path | connections | requests/s | p99 latency (ms) | errors | memory after each round (KiB) |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for &connections in &options.connections {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); rows.len()];
        let mut memory: Vec<Vec<Option<u64>>> = vec![Vec::new(); rows.len()];
        for run in 0..options.runs {
            eprintln!(
                "{connections} connections: run {} of {}",
                run + 1,
                options.runs
            );
            for (i, row) in rows.iter().enumerate() {
                samples[i].push(wrk(&row.url, &options, connections, row.ns));
                std::thread::sleep(Duration::from_millis(500));
                memory[i].push(row.server.rss_kib(row.nginx));
            }
        }
        for (i, r) in rows.iter().enumerate() {
            row(r.name, r.path, connections, &samples[i], &memory[i]);
        }
    }
    for r in &rows {
        eprintln!("{} ({}): image {} KiB", r.name, r.path, r.size);
    }
    eprintln!(
        "Solo5 rows (spt, hvt over a tap): not measured by this harness yet; see the README."
    );
}
