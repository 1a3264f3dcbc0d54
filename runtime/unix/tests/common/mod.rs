//! Shared by the end-to-end tests: images built from plans, processes that clean up after
//! themselves, and an HTTP client on raw sockets. Network namespaces, raw IPv4 and load
//! rounds come from `mirage-test-support`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use mirage_test_support::netns::Netns;

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

impl mirage_test_support::netns::Alive for Process {
    fn is_running(&mut self) -> bool {
        Process::is_running(self)
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
