//! Network namespaces that tests make and delete, each with a tap device `tap0` at
//! 10.0.0.1/24 (a queue of 10,000 frames) for an image to attach to (the image is 10.0.0.2),
//! and what runs inside them:
//! commands ([`Netns::exec`]), code on a thread that joined one ([`in_netns`]), and raw IPv4
//! ([`raw`]: forged SYNs and the SYN-ACKs they draw). Traffic never leaves a namespace a
//! test made.

pub mod raw;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Something a test waits on that may die meanwhile: a server under test.
pub trait Alive {
    /// `is_running()` is true until the process has ended.
    fn is_running(&mut self) -> bool;
}

impl Alive for crate::process::Process {
    fn is_running(&mut self) -> bool {
        crate::process::Process::is_running(self)
    }
}

/// A `Netns` is a network namespace with a tap device `tap0` at 10.0.0.1/24, deleted (with
/// everything in it) when dropped.
#[derive(Debug)]
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
            // Room for the frames of 1,000 connections closing at once: an image reads its
            // tap a frame at a time, and the kernel drops what the queue cannot hold.
            "ip link set tap0 txqueuelen 10000",
            "ip addr add 10.0.0.1/24 dev tap0",
            "ip link set tap0 up",
        ] {
            if let Err(why) = ns.run(cmd) {
                eprintln!("SKIPPED: cannot make a tap device in a namespace ({why})");
                return None;
            }
        }
        Some(ns)
    }

    /// `run(cmd)` runs the blank-separated command `cmd` in the namespace, or says how it
    /// failed.
    pub fn run(&self, cmd: &str) -> Result<(), String> {
        let out = self
            .exec(&cmd.split(' ').collect::<Vec<_>>())
            .output()
            .map_err(|e| format!("`{cmd}`: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{cmd}`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `link_to(other)` joins this namespace to `other` by a veth pair, a virtual Ethernet
    /// link like the tap: `veth0` at 10.0.1.1/24 here, `veth1` at 10.0.1.2/24 there.
    pub fn link_to(&self, other: &Netns) -> Result<(), String> {
        self.run(&format!(
            "ip link add veth0 type veth peer name veth1 netns {}",
            other.name
        ))?;
        self.run("ip addr add 10.0.1.1/24 dev veth0")?;
        self.run("ip link set veth0 up")?;
        other.run("ip addr add 10.0.1.2/24 dev veth1")?;
        other.run("ip link set veth1 up")
    }

    /// `exec(args)` is a command running inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// `until_ok(args, within, server)` runs `args` in the namespace until it succeeds and
    /// returns its output; it fails the test if `server` dies or `within` passes first.
    pub fn until_ok(&self, args: &[&str], within: Duration, server: &mut dyn Alive) -> Vec<u8> {
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

    /// `http_code(url, seconds)` is the HTTP status `curl` gets for `url` from inside the
    /// namespace within `seconds`, or `000` if it got none.
    pub fn http_code(&self, url: &str, seconds: u32) -> String {
        let max = seconds.to_string();
        let out = self
            .exec(&[
                "curl",
                "-sS",
                "--max-time",
                &max,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `in_netns(name, f)` runs `f` on a thread inside network namespace `name` (`setns` changes
/// only the calling thread's), so that the test process stays in the host's.
pub fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{name}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace descriptor changes this thread's network
        // namespace only; the descriptor outlives the call.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the namespace thread")
}
