//! Shared by the end-to-end tests: images built from plans, processes and network namespaces
//! that clean up after themselves, and an HTTP client on raw sockets.
#![allow(dead_code)]

pub mod raw;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `root()` is the mirage-nix tree.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `work_dir()` is where the tests render and build images: `<target>/e2e`, beside the test
/// binaries, so that every image shares one dependency build.
pub fn work_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    target.join("e2e")
}

/// `run(cmd)` runs `cmd` to completion and fails the test with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `mirage_nix(args)` runs the generator from this tree.
pub fn mirage_nix(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["run", "-q", "-p", "mirage-nix", "--"])
        .args(args)
        .env("MIRAGE_NIX_ROOT", root()))
}

/// `image(example, configure)` is the unix image of `example`: built from its committed
/// `plans/unix.json` when `configure` is empty, otherwise from the plan that
/// `mirage-nix query plan -t unix CONFIGURE...` gives (without touching the committed one).
/// Each image is built once per test process.
pub fn image(example: &str, configure: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let variant = if configure.is_empty() {
        String::from("plan")
    } else {
        configure.join("_").replace(['-', '=', '/'], "")
    };
    let name = format!("{example}-{variant}");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(&name) {
        return path.clone();
    }
    let dir = root().join("examples").join(example);
    let work = work_dir();
    std::fs::create_dir_all(&work).unwrap();
    let plan = if configure.is_empty() {
        dir.join("plans/unix.json")
    } else {
        let mut args = vec!["query", "plan", "-t", "unix"];
        args.extend_from_slice(configure);
        let dir_arg = dir.to_string_lossy().into_owned();
        args.push(&dir_arg);
        let out = mirage_nix(&args);
        let plan = work.join(format!("{name}.json"));
        std::fs::write(&plan, out.stdout).unwrap();
        plan
    };
    let krate = work.join("crates").join(&name);
    // A fresh crate each time: a lockfile left by a build from another tree would clash.
    let _ = std::fs::remove_dir_all(&krate);
    let (plan_arg, krate_arg, dir_arg) = (
        plan.to_string_lossy().into_owned(),
        krate.to_string_lossy().into_owned(),
        dir.to_string_lossy().into_owned(),
    );
    let root_arg = root().to_string_lossy().into_owned();
    mirage_nix(&[
        "render",
        &plan_arg,
        "-o",
        &krate_arg,
        "--unikernel-dir",
        &dir_arg,
        "--mirage-root",
        &root_arg,
    ]);
    run(Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "--manifest-path"])
        .arg(krate.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", work.join("target")));
    let path = work.join("target/release").join(example);
    let kept = work.join(&name);
    // Copy, then rename: the old image may still be running (renaming over it is allowed).
    let fresh = work.join(format!("{name}.new"));
    std::fs::copy(&path, &fresh).unwrap();
    std::fs::rename(&fresh, &kept).unwrap();
    built.insert(name, kept.clone());
    kept
}

/// `image_beside_disks(example, configure, dir)` is the unix image of `example` (as
/// [`image`] builds it) copied into `dir`, with the disk images its plan reads made beside it
/// by `mirage-nix disks`, as the build lays them out.
pub fn image_beside_disks(example: &str, configure: &[&str], dir: &Path) -> PathBuf {
    let built = image(example, configure);
    std::fs::create_dir_all(dir).unwrap();
    let plan = work_dir().join(format!(
        "{}.disks.json",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let mut args = vec!["query", "plan", "-t", "unix"];
    args.extend_from_slice(configure);
    let unikernel = root().join("examples").join(example);
    let unikernel_arg = unikernel.to_string_lossy().into_owned();
    args.push(&unikernel_arg);
    std::fs::write(&plan, mirage_nix(&args).stdout).unwrap();
    let (plan_arg, dir_arg) = (
        plan.to_string_lossy().into_owned(),
        dir.to_string_lossy().into_owned(),
    );
    mirage_nix(&[
        "disks",
        &plan_arg,
        "-o",
        &dir_arg,
        "--unikernel-dir",
        &unikernel_arg,
    ]);
    let copy = dir.join(example);
    std::fs::copy(&built, &copy).unwrap();
    copy
}

/// A `Process` is a child killed and reaped when the guard is dropped, whatever happens.
pub struct Process {
    child: Child,
}

impl Process {
    /// `spawn(cmd)` starts `cmd` with its output captured.
    pub fn spawn(cmd: &mut Command) -> Process {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Process { child }
    }

    /// `id()` is the process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `is_running()` is true until the process exits.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `stop()` kills the process and returns what it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut text = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        let _ = self.child.wait();
        text
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `free_port()` is a loopback TCP port no one listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `wait_for(addr)` waits until something accepts connections on `addr` (at most 20 s).
pub fn wait_for(addr: SocketAddr, server: &mut Process) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        assert!(server.is_running(), "the server exited before listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 20 s");
}

/// `exchange(stream, request)` writes `request` and reads one response whose body length is
/// in `Content-Length`; it returns the status and the whole response text.
pub fn exchange(stream: &mut TcpStream, request: &[u8]) -> (u16, String) {
    stream.write_all(request).unwrap();
    read_response(stream)
}

/// `read_response(stream)` reads one response (head and `Content-Length` body), a byte at a
/// time so that a pipelined response after it stays unread.
pub fn read_response(stream: &mut TcpStream) -> (u16, String) {
    // A server that stops answering fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                let status = text[9..12].parse().unwrap_or(0);
                return (status, text);
            }
        }
        let n = stream.read(&mut byte).unwrap();
        assert!(n > 0, "connection closed mid-response: {got:?}");
        got.extend_from_slice(&byte[..n]);
    }
}

/// `curl(args)` runs curl with a 20-second ceiling and returns its standard output.
pub fn curl(args: &[&str]) -> Vec<u8> {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args))
    .stdout
}

/// A `Netns` is a network namespace with a tap device `tap0` at 10.0.0.1/24, deleted (with
/// everything in it) when dropped.
pub struct Netns {
    /// The namespace's name, as `ip netns` knows it.
    pub name: String,
}

impl Netns {
    /// `create()` is a fresh namespace, or `None` (after saying why) where they are refused.
    pub fn create() -> Option<Netns> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "mirage-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let added = Command::new("ip").args(["netns", "add", &name]).output();
        match added {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED: network namespaces are refused here (`ip netns add`: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run `ip` ({e}); install iproute2");
                return None;
            }
        }
        let ns = Netns { name };
        for cmd in [
            "ip link set lo up",
            "ip tuntap add mode tap tap0",
            "ip addr add 10.0.0.1/24 dev tap0",
            "ip link set tap0 up",
        ] {
            let out = ns
                .exec(&cmd.split(' ').collect::<Vec<_>>())
                .output()
                .unwrap();
            if !out.status.success() {
                eprintln!(
                    "SKIPPED: cannot make a tap device in a namespace (`{cmd}`: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
        }
        Some(ns)
    }

    /// `exec(args)` is a command running inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// `until_ok(args, within)` runs `args` in the namespace until it succeeds; its output.
    pub fn until_ok(&self, args: &[&str], within: Duration, server: &mut Process) -> Vec<u8> {
        let start = Instant::now();
        loop {
            let out = self.exec(args).output().unwrap();
            if out.status.success() {
                return out.stdout;
            }
            assert!(server.is_running(), "the unikernel exited");
            assert!(
                start.elapsed() < within,
                "{args:?} kept failing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `rss_kib(pid)` is the resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `cpu_ticks(pid)` is the processor time process `pid` has used (user and system), in clock
/// ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// What one `wrk` run measured.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Connect, read, write and timeout errors, and non-2xx responses.
    pub errors: u64,
}

/// `wrk(cmd_prefix, url, connections, seconds)` runs `wrk` (one thread) against `url`, inside
/// `ns` if given, and reads its report.
pub fn wrk(ns: Option<&Netns>, url: &str, connections: u32, seconds: u32) -> Load {
    let (c, d, t) = (
        connections.to_string(),
        format!("{seconds}s"),
        format!("{}s", seconds + 5),
    );
    let args = ["wrk", "-t1", "-c", &c, "-d", &d, "--timeout", &t, url];
    let out = match ns {
        Some(ns) => run(&mut ns.exec(&args)),
        None => run(Command::new(args[0]).args(&args[1..])),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's report:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's report:\n{text}"));
    let errors = mirage_test_support::process::wrk_errors(&text);
    Load {
        rps,
        requests,
        errors,
    }
}
