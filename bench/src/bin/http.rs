//! HTTP throughput and latency of conduit_server, side by side with nginx, printed as a
//! Markdown table (run on demand as root, not in CI):
//!
//! ```text
//! cargo run --release -p mirage-nix-bench --bin http \
//!     [-- --seconds S --connections C,C,... --runs N --mem MIB]
//! ```
//!
//! Each row is `wrk` (one thread, C keep-alive connections: 64, 1,000 and 10,000 by default,
//! S = 10 seconds, the median of N = 5 rounds in which the rows take turns) against one server
//! answering every request with "hello mirage world!\n"; a row also gives the errors wrk saw
//! over all rounds (connect, read, write, timeout, non-2xx) and the server's memory after
//! each round (a soak: it must not grow):
//!
//! - nginx with one worker process (`return 200`), on loopback;
//! - conduit_server over the socket stack (its committed unix plan), on loopback;
//! - conduit_server over the direct stack (`--net=direct`), smoltcp on a tap device in a
//!   network namespace of its own, with wrk on the host side of the tap;
//! - nginx again, in that namespace on the host side of the tap (wrk reaches it over the
//!   namespace's loopback);
//! - conduit_server for spt under `solo5-spt` (from `SOLO5_SPT`), its net device on a tap in
//!   a namespace of its own, with MIB MiB of memory (64 by default: the build's boot hint);
//! - conduit_server for hvt under `solo5-hvt` (from `SOLO5_HVT`), or, without it, under the
//!   tests' minimal hvt monitor, the same way;
//! - nginx with one worker in a namespace of its own, reached over a veth pair: a virtual
//!   Ethernet link between two kernel stacks, the same kind of path as a tap to a guest.
//!
//! Memory is the resident memory of the server process (of nginx's worker), and for the Solo5
//! images the heap in use they log (`mirage_test_support::direct`): a tender's resident
//! memory only says which guest pages were ever touched. The images are built from plans with
//! cargo under `target/bench-images/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirage_nix_bench::{build_image, work_dir};
use mirage_test_support::direct::heap_in_use;
use mirage_test_support::image::Builder;
use mirage_test_support::load::{rss_kib, wrk, Load};
use mirage_test_support::netns::Netns;
use mirage_test_support::process::{Log, Process};
use mirage_test_support::solo5::{tender, Devices, Tender};

fn fail(message: &str) -> ! {
    eprintln!("bench http: {message}");
    std::process::exit(1)
}

/// An nginx, killed when dropped: SIGTERM first, so that its master stops its worker too;
/// SIGKILL after 5 s.
struct Nginx(Child);

impl Nginx {
    /// `start(work, tag, addr, ns)` is nginx with one worker on `addr` answering like
    /// conduit_server.
    fn start(tag: &str, addr: &str, ns: Option<&Netns>) -> Nginx {
        let dir = work_dir().join(format!("nginx-{tag}"));
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
        let mut cmd = match ns {
            Some(ns) => ns.exec(&args),
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("{cmd:?}: {e}")));
        Nginx(child)
    }

    /// `worker()` is the pid of the worker, the process that serves.
    fn worker(&self) -> Option<u32> {
        let pid = self.0.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Nginx {
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

/// A server under test, and how its memory is read.
enum Server {
    Nginx(Nginx),
    Process(Process),
    /// A Solo5 guest: its tender, and its console, where it logs its heap use.
    Guest(Process, Log),
}

impl Server {
    /// `memory_kib()` is the server's memory now: resident memory, or a guest's heap in use
    /// (the last it logged).
    fn memory_kib(&self) -> Option<u64> {
        match self {
            Server::Nginx(n) => n.worker().map(rss_kib),
            Server::Process(p) => Some(rss_kib(p.id())),
            Server::Guest(_, log) => heap_in_use(&log.text()).last().map(|b| b / 1024),
        }
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

/// `median(samples)` is the sample with the median throughput.
fn median(mut samples: Vec<Load>) -> Load {
    samples.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    samples[samples.len() / 2]
}

/// One server under test.
struct Row<'a> {
    name: String,
    path: &'static str,
    url: String,
    /// The namespace wrk runs in, if not the host's.
    ns: Option<&'a Netns>,
    server: Server,
    /// The image's size, or `-` for nginx.
    size: String,
    /// The most connections the row is measured at, if fewer than asked, and why.
    limit: Option<(u32, String)>,
}

struct Options {
    seconds: u32,
    connections: Vec<u32>,
    runs: usize,
    mem: u64,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        connections: vec![64, 1000, 10_000],
        runs: 5,
        mem: 64,
    };
    let usage = "usage: http [--seconds S] [--connections C,C,...] [--runs N] [--mem MIB]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let text = pair.get(1).map_or("", String::as_str);
        let value = text.parse::<u32>().ok().filter(|&v| v > 0);
        match (pair[0].as_str(), value) {
            ("--seconds", Some(v)) => o.seconds = v,
            ("--connections", _) => {
                o.connections = text
                    .split(',')
                    .map(|c| c.parse().ok().filter(|&c| c > 0))
                    .collect::<Option<Vec<u32>>>()
                    .unwrap_or_else(|| fail(usage));
            }
            ("--runs", Some(v)) => o.runs = v as usize,
            ("--mem", Some(v)) => o.mem = u64::from(v),
            _ => fail(usage),
        }
    }
    o
}

fn size_kib(path: &Path) -> String {
    std::fs::metadata(path).map_or_else(|_| String::from("?"), |m| (m.len() / 1024).to_string())
}

fn row(r: &Row<'_>, connections: u32, samples: &[Load], memory: &[Option<u64>]) {
    let errors: u64 = samples.iter().map(|s| s.errors).sum();
    let s = median(samples.to_vec());
    let memory: Vec<String> = memory
        .iter()
        .map(|m| m.map_or_else(|| String::from("?"), |m| m.to_string()))
        .collect();
    println!(
        "| {} | {} | {connections} | {:.0} | {:.2} | {errors} | {} |",
        r.name,
        r.path,
        s.rps,
        s.p99_ms,
        memory.join(" ")
    );
}

/// `guest(target, tender, ns, mem)` starts conduit_server for `target` under `tender` on
/// `ns`'s tap, logging its heap use.
fn guest(target: &str, tender: &Tender, ns: &Netns, mem: u64) -> (Server, PathBuf) {
    let image = build_image("conduit_server", target);
    let devices = Devices::default().mem(mem).tap("service", ns);
    let process = tender.spawn(&image, &["--ipv4=10.0.0.2/24", "--logs=debug"], devices);
    let log = process.stdout_log();
    (Server::Guest(process, log), image)
}

/// `slow_limit(ns)` keeps a guest that answers fewer than 1,000 requests a second to one
/// client (an hvt guest on a paravirtualised KVM, about 30) to 64 connections: more would
/// keep it busy for minutes after each round, its tender's processor time taken from the
/// rows measured meanwhile.
fn slow_limit(ns: &Netns) -> Option<(u32, String)> {
    wait_http("http://10.0.0.2:8080/", Some(ns));
    let rate = mirage_test_support::direct::request_rate(ns);
    (rate < 1000.0).then(|| {
        (
            64,
            format!("{rate:.0} requests/s to one client on this machine's KVM"),
        )
    })
}

fn main() {
    // The minimal hvt monitor's child side, when this program runs itself as one.
    mirage_test_support::solo5::hvt::child();
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
    eprintln!("building conduit_server (unix socket and direct stacks, spt, hvt)...");
    let socket = build_image("conduit_server", "unix");
    let direct = Builder::new(work_dir())
        .configured("examples/conduit_server", "unix", &["--net=direct"])
        .path;
    let namespace = || Netns::create().unwrap_or_else(|| fail("cannot make a network namespace"));
    let (direct_ns, spt_ns, hvt_ns) = (namespace(), namespace(), namespace());
    let (veth_wrk, veth_nginx) = (namespace(), namespace());
    veth_wrk
        .link_to(&veth_nginx)
        .unwrap_or_else(|e| fail(&format!("cannot link two namespaces: {e}")));
    let spt = tender("spt").map(Tender::Real);
    let hvt = match tender("hvt") {
        Ok(path) => Ok((Tender::Real(path), "")),
        Err(why) => mirage_test_support::solo5::hvt::usable().map(|()| {
            eprintln!("hvt under the tests' minimal monitor: {why}");
            (Tender::MiniHvt, ", minimal monitor")
        }),
    };
    let direct_arg = direct.to_string_lossy().into_owned();
    let unix_process = |cmd: &mut Command| Server::Process(Process::spawn(cmd));
    // Every server runs for the whole benchmark, and the rows take turns run after run, so
    // that a change in the machine's load affects them alike.
    let mut rows = vec![
        Row {
            name: String::from("nginx, 1 worker"),
            path: "loopback",
            url: String::from("http://127.0.0.1:18081/"),
            ns: None,
            server: Server::Nginx(Nginx::start("loopback", "127.0.0.1:18081", None)),
            size: String::from("-"),
            limit: None,
        },
        Row {
            name: String::from("conduit_server, socket stack"),
            path: "loopback",
            url: String::from("http://127.0.0.1:18080/"),
            ns: None,
            server: unix_process(Command::new(&socket).arg("--port=18080")),
            size: size_kib(&socket),
            limit: None,
        },
        Row {
            name: String::from("conduit_server, direct stack"),
            path: "tap in a netns",
            url: String::from("http://10.0.0.2:8080/"),
            ns: Some(&direct_ns),
            server: unix_process(&mut direct_ns.exec(&[
                &direct_arg,
                "--interface=tap0",
                "--ipv4=10.0.0.2/24",
                "--port=8080",
            ])),
            size: size_kib(&direct),
            limit: None,
        },
        Row {
            name: String::from("nginx, 1 worker"),
            path: "netns, host side of the tap",
            url: String::from("http://10.0.0.1:8081/"),
            ns: Some(&direct_ns),
            server: Server::Nginx(Nginx::start("netns", "10.0.0.1:8081", Some(&direct_ns))),
            size: String::from("-"),
            limit: None,
        },
    ];
    let spt = spt.map(|t| (t, ""));
    for (target, tender, ns) in [("spt", &spt, &spt_ns), ("hvt", &hvt, &hvt_ns)] {
        let (t, note) = match tender {
            Ok(t) => t,
            Err(why) => {
                eprintln!("no {target} row: {why}");
                continue;
            }
        };
        let (server, image) = guest(target, t, ns, options.mem);
        rows.push(Row {
            name: format!("conduit_server, {target} (--mem={}{note})", options.mem),
            path: "Solo5 net device, tap in a netns",
            url: String::from("http://10.0.0.2:8080/"),
            ns: Some(ns),
            server,
            size: size_kib(&image),
            limit: slow_limit(ns),
        });
    }
    rows.push(Row {
        name: String::from("nginx, 1 worker"),
        path: "veth into a netns of its own",
        url: String::from("http://10.0.1.2:8082/"),
        ns: Some(&veth_wrk),
        server: Server::Nginx(Nginx::start("veth", "10.0.1.2:8082", Some(&veth_nginx))),
        size: String::from("-"),
        limit: None,
    });
    for row in &rows {
        wait_http(&row.url, row.ns);
    }
    eprintln!(
        "wrk -t1 -c{:?} -d{}s, median of {} runs each",
        options.connections, options.seconds, options.runs
    );
    println!(
        "| server | path | connections | requests/s | p99 latency (ms) | errors | memory after each round (KiB) |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for &connections in &options.connections {
        let mut samples: Vec<Vec<Load>> = vec![Vec::new(); rows.len()];
        let mut memory: Vec<Vec<Option<u64>>> = vec![Vec::new(); rows.len()];
        for run in 0..options.runs {
            eprintln!(
                "{connections} connections: run {} of {}",
                run + 1,
                options.runs
            );
            for (i, row) in rows.iter().enumerate() {
                if row
                    .limit
                    .as_ref()
                    .is_some_and(|(max, _)| connections > *max)
                {
                    continue;
                }
                let load = wrk(row.ns, &row.url, connections, options.seconds)
                    .unwrap_or_else(|e| fail(&format!("{} ({}): {e}", row.name, row.path)));
                samples[i].push(load);
                std::thread::sleep(Duration::from_millis(1000));
                memory[i].push(row.server.memory_kib());
            }
        }
        for (i, r) in rows.iter().enumerate() {
            match &r.limit {
                Some((max, why)) if connections > *max => println!(
                    "| {} | {} | {connections} | - | - | - | not measured: {why} |",
                    r.name, r.path
                ),
                _ => row(r, connections, &samples[i], &memory[i]),
            }
        }
    }
    for r in &mut rows {
        eprintln!("{} ({}): image {} KiB", r.name, r.path, r.size);
        if let Server::Guest(p, _) | Server::Process(p) = &mut r.server {
            if !p.is_running() {
                eprintln!("  it is no longer running");
            }
        }
    }
    eprintln!("memory: resident KiB; for spt and hvt, KiB of heap in use (the image's own count)");
}
