//! The xen target's runs under QEMU (TCG): an image as the initial domain (dom0) on the real
//! Xen 4.17, as a PVH dom0 on Xen, or through its PVH entry directly under QEMU; and the domU
//! test bed ([`testbed`]), where a Linux dom0 runs images as domUs with `xl`.
//!
//! QEMU runs one at a time in a process (tests that time guests must not share the CPU with
//! another emulator), each with a deadline, and ends by itself: dom0 shuts down with reason
//! reboot or crash, which ends QEMU under `-no-reboot`; under plain QEMU the image exits
//! through `isa-debug-exit`, so QEMU's status is `2 * code + 1`.

pub mod testbed;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::process;

/// Debian's Xen hypervisor (`scripts/setup` installs it).
pub const XEN_GZ: &str = "/boot/xen-4.17-amd64.gz";
/// The emulator.
pub const QEMU: &str = "qemu-system-x86_64";
/// Xen's log line when dom0 shuts down with reason reboot (success).
pub const REBOOTED: &str = "(XEN) Hardware Dom0 shutdown: rebooting machine";
/// Xen's log line when dom0 shuts down with reason crash (failure, panic).
pub const CRASHED: &str = "(XEN) Hardware Dom0 crashed";

/// `skip_reason()` says why Xen runs cannot happen here, if they cannot.
pub fn skip_reason() -> Option<String> {
    let qemu = Command::new(QEMU).arg("--version").output();
    if !qemu.is_ok_and(|o| o.status.success()) {
        return Some(format!("{QEMU} is not installed (run scripts/setup)"));
    }
    if !Path::new(XEN_GZ).exists() {
        return Some(format!("{XEN_GZ} is missing (run scripts/setup)"));
    }
    None
}

/// `hypervisor()` is Xen decompressed (once), which QEMU boots as a Multiboot kernel.
pub fn hypervisor() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _once = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let path = crate::tree::scratch("xen").join("xen-4.17");
    if !path.exists() {
        let gz = Command::new("zcat").arg(XEN_GZ).output().expect("zcat");
        assert!(
            gz.status.success(),
            "zcat {XEN_GZ} failed (run scripts/setup)"
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, gz.stdout).unwrap();
        std::fs::rename(tmp, &path).unwrap();
    }
    path
}

/// One QEMU run: what the serial console showed and how QEMU ended.
#[derive(Clone, Debug)]
pub struct Run {
    /// Serial output without carriage returns (Xen's serial driver and Linux's tty add them).
    pub serial: String,
    /// QEMU's exit status (`None` if it had to be killed at the deadline).
    pub status: Option<i32>,
    /// How long QEMU ran.
    pub took: Duration,
}

impl Run {
    /// `guest()` is the guest's output: the serial console without Xen's own `(XEN)` lines.
    pub fn guest(&self) -> String {
        self.serial
            .lines()
            .filter(|l| !l.starts_with("(XEN)"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// `qemu(args)` is QEMU (TCG, no display, serial on stdout, `-no-reboot`) with `args`.
pub fn qemu(args: &[&str]) -> Command {
    let mut c = Command::new(QEMU);
    c.args(["-accel", "tcg", "-display", "none", "-serial", "stdio"])
        .args(["-monitor", "none", "-no-reboot"])
        .args(args);
    c
}

/// `dom0_command(image, cmdline)` boots `image` as dom0 on Xen with `cmdline` as its command
/// line (Xen drops the first word of a module's string: the image's path).
pub fn dom0_command(image: &Path, cmdline: &str) -> Command {
    let (xen, module) = (hypervisor(), format!("{} {cmdline}", image.display()));
    let mut c = qemu(&["-m", "256", "-append", "console=com1 dom0_mem=32M"]);
    c.arg("-kernel").arg(xen).args(["-initrd", &module]);
    c
}

/// `pvh_dom0_command(image, cmdline)` boots `image` as a PVH dom0 on Xen (`dom0=pvh`): the PVH
/// entry with Xen underneath. QEMU's `-cpu max` gives Xen the nested paging it needs.
pub fn pvh_dom0_command(image: &Path, cmdline: &str) -> Command {
    let (xen, module) = (hypervisor(), format!("{} {cmdline}", image.display()));
    let mut c = qemu(&["-cpu", "max", "-m", "256"]);
    c.args([
        "-append",
        "console=com1 dom0_mem=32M dom0=pvh dom0-iommu=none",
    ])
    .arg("-kernel")
    .arg(xen)
    .args(["-initrd", &module]);
    c
}

/// `pvh_command(image, cmdline)` boots `image` through its PVH entry directly under QEMU,
/// with `isa-debug-exit` for its exit code.
pub fn pvh_command(image: &Path, cmdline: &str) -> Command {
    let mut c = qemu(&[
        "-m",
        "64",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]);
    c.arg("-kernel").arg(image).args(["-append", cmdline]);
    c
}

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static QEMU_RUNS: Mutex<()> = Mutex::new(());
    QEMU_RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// `run(cmd, deadline)` runs an emulator command (one at a time in this process), killing it
/// after `deadline`; its standard error is passed on to ours.
pub fn run(mut cmd: Command, deadline: Duration) -> Run {
    let _one = one_at_a_time();
    let done = process::run(&mut cmd, deadline);
    eprint!("{}", done.stderr);
    Run {
        serial: done.stdout.replace('\r', ""),
        status: done.status,
        took: done.took,
    }
}

/// `dom0(image, cmdline)` runs [`dom0_command`] for at most 90 s.
pub fn dom0(image: &Path, cmdline: &str) -> Run {
    run(dom0_command(image, cmdline), Duration::from_secs(90))
}

/// `pvh_dom0(image, cmdline)` runs [`pvh_dom0_command`] for at most 90 s.
pub fn pvh_dom0(image: &Path, cmdline: &str) -> Run {
    run(pvh_dom0_command(image, cmdline), Duration::from_secs(90))
}

/// `pvh(image, cmdline)` runs [`pvh_command`] for at most 60 s.
pub fn pvh(image: &Path, cmdline: &str) -> Run {
    run(pvh_command(image, cmdline), Duration::from_secs(60))
}
