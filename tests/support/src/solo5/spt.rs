//! A minimal spt loader, so that spt images run here without Solo5's tender.
//!
//! It does what `solo5-spt` does before it jumps to an image (Solo5 `include/spt_abi.h`,
//! `tenders/spt/spt_core.c`, as described in ../shared/reference/unikernel-abi.md §2.6): map
//! guest memory at 0x10000 up to `--mem` MiB (`mem << 20` bytes, as `spt_main.c` reads it),
//! load the PT_LOAD segments at their addresses with their protections, write
//! `struct spt_boot_info` at 0x11000 followed by the manifest (with the devices attached) and
//! the command line, make the epoll and (non-blocking) timer fds, and enter the image with
//! RSP = mem_size - 8 and RDI = the boot info. It applies the tender's seccomp filter (with
//! its block and network modules' rules); it is a check of the boot path, console, clocks,
//! sleeping, block transfers, frames and exit codes, not a tender.
//!
//! The image runs in a child process: the test binary itself, started again with
//! `MINI_SPT_IMAGE` set, running only its test `mini_spt_child`, which
//! [`mini_spt_child_test!`](crate::mini_spt_child_test) defines. Devices: at most one block
//! device (a file, 512-byte blocks) and one network device (a tap interface, attached inside
//! its namespace as the tender attaches it, or a datagram socket, one frame per datagram; MAC
//! [`GUEST_MAC`]), attached by their manifest names.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::elf::{loads, manifest, manifest_entry, u32_at, u64_at, PF_W, PF_X};
use super::net::GUEST_MAC;
use super::Link;
use crate::netns::Netns;
use crate::process::{Finished, Process};

/// The guest memory when none is asked for, in MiB (`solo5-spt`'s own default is 512).
const DEFAULT_MEM_MIB: u64 = 32;

/// The name of the test that runs the loader's child side.
pub const CHILD_TEST: &str = "mini_spt_child";

/// How a network device reaches the host.
#[derive(Debug)]
enum NetAttach {
    /// A tap interface in a network namespace, attached by name inside it.
    Tap { netns: String, iface: String },
    /// An inherited descriptor (the tenders' `--net:NAME=@FD`).
    Fd(OwnedFd),
}

/// What a guest is given, for any tender (the minimal spt loader and hvt monitor, and the
/// real tenders through [`super::Tender`]): its memory and its devices, by their names in the
/// image's manifest.
#[derive(Debug, Default)]
pub struct Devices {
    block: Option<String>,
    net: Option<(String, NetAttach)>,
    mem_mib: Option<u64>,
}

impl Devices {
    /// `block(name, file)` attaches `file` as the block device `name`.
    pub fn block(mut self, name: &str, file: &Path) -> Devices {
        self.block = Some(format!("{name}={}", file.display()));
        self
    }

    /// `net(name, guest_end)` attaches the datagram socket `guest_end` (see [`net_pair`]) as
    /// the network device `name`, with MTU 1500.
    pub fn net(mut self, name: &str, guest_end: OwnedFd) -> Devices {
        self.net = Some((name.to_string(), NetAttach::Fd(guest_end)));
        self
    }

    /// `tap(name, ns)` attaches `ns`'s tap device `tap0` as the network device `name`, as
    /// the tenders' `--net:NAME=tap0` does inside the namespace (the guest runs in it).
    pub fn tap(mut self, name: &str, ns: &Netns) -> Devices {
        let tap = NetAttach::Tap {
            netns: ns.name.clone(),
            iface: String::from("tap0"),
        };
        self.net = Some((name.to_string(), tap));
        self
    }

    /// `mem(mib)` gives the guest `mib` MiB of memory, as the tenders' `--mem=MIB` (32 if not
    /// given).
    pub fn mem(mut self, mib: u64) -> Devices {
        self.mem_mib = Some(mib);
        self
    }

    /// `mem_mib()` is the guest's memory in MiB.
    pub fn mem_mib(&self) -> u64 {
        self.mem_mib.unwrap_or(DEFAULT_MEM_MIB)
    }

    /// `netns()` is the namespace the guest must run in (its tap's), if any.
    pub fn netns(&self) -> Option<&str> {
        match &self.net {
            Some((_, NetAttach::Tap { netns, .. })) => Some(netns),
            _ => None,
        }
    }

    /// `tender_options()` are the real tenders' options for these devices: `--mem=MIB`,
    /// `--block:NAME=FILE`, and `--net:NAME=IFACE` (or `@FD`) with the MAC the minimal
    /// loaders give ([`GUEST_MAC`]), so that runs under either are alike. (The 0.12.1
    /// tenders refuse `@FD`: their `tap_attach` leaves the MTU unset for it; use a tap.)
    pub fn tender_options(&self) -> Vec<String> {
        let mut options = vec![format!("--mem={}", self.mem_mib())];
        if let Some(block) = &self.block {
            options.push(format!("--block:{block}"));
        }
        if let Some((name, link)) = &self.net {
            options.push(format!("--net:{name}={}", net_spec(link)));
            let mac: Vec<String> = GUEST_MAC.iter().map(|b| format!("{b:02x}")).collect();
            options.push(format!("--net-mac:{name}={}", mac.join(":")));
        }
        options
    }

    /// `describe(command)` passes these devices to a minimal loader's child side in its
    /// environment (`MINI_SOLO5_MEM`, `MINI_SPT_BLOCK`, `MINI_SOLO5_NET`).
    pub(crate) fn describe(&self, command: &mut Command) {
        command.env("MINI_SOLO5_MEM", self.mem_mib().to_string());
        if let Some(block) = &self.block {
            command.env("MINI_SPT_BLOCK", block);
        }
        if let Some((name, link)) = &self.net {
            command.env("MINI_SOLO5_NET", format!("{name}={}", net_spec(link)));
        }
    }
}

/// `net_spec(link)` is the tenders' spelling of a network device's host side.
fn net_spec(link: &NetAttach) -> String {
    match link {
        NetAttach::Tap { iface, .. } => iface.clone(),
        NetAttach::Fd(fd) => format!("@{}", fd.as_raw_fd()),
    }
}

/// `attached_net()` is the child side's network device from `MINI_SOLO5_NET` (`NAME=IFACE`,
/// a tap of the child's namespace, or `NAME=@FD`, an inherited descriptor): its name and link.
pub(crate) fn attached_net() -> Option<(String, Link)> {
    let spec = std::env::var("MINI_SOLO5_NET").ok()?;
    let (name, host) = spec.split_once('=').expect("NAME=IFACE or NAME=@FD");
    let link = match host.strip_prefix('@') {
        Some(fd) => Link {
            // SAFETY: the parent passed this descriptor to this process for the device.
            fd: unsafe { OwnedFd::from_raw_fd(fd.parse().expect("@FD")) },
            mtu: 1500,
        },
        None => super::tap::attach(host)
            .unwrap_or_else(|e| panic!("Could not attach interface: {host}: {e}")),
    };
    Some((name.to_string(), link))
}

/// `mem_bytes()` is the child side's guest memory from `MINI_SOLO5_MEM` (MiB), in bytes.
pub(crate) fn mem_bytes() -> u64 {
    let mib = std::env::var("MINI_SOLO5_MEM").map_or(DEFAULT_MEM_MIB, |m| {
        m.parse().expect("MINI_SOLO5_MEM is a number of MiB")
    });
    assert!(mib > 0, "Malformed argument to --mem");
    mib << 20
}

/// `spawn_child(test, prefix, image, cmdline, devices)` starts the test binary again to run
/// only `test`, a loader's child side, on `image` (`{prefix}_IMAGE`) with `cmdline`
/// (`{prefix}_CMDLINE`) and `devices`, inside the devices' namespace if they have one. A
/// guest socket end among the devices is closed here once the child has it.
pub(crate) fn spawn_child(
    test: &str,
    prefix: &str,
    image: &Path,
    cmdline: &str,
    devices: Devices,
) -> Process {
    let exe = std::env::current_exe().unwrap();
    let mut command = match devices.netns() {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(format!("{prefix}_IMAGE"), image)
        .env(format!("{prefix}_CMDLINE"), cmdline);
    devices.describe(&mut command);
    Process::spawn(&mut command)
}

/// `net_pair()` is a connected pair of datagram sockets: the test's end, and the guest's
/// (inherited by the loader's child), to attach with [`Devices::net`].
pub fn net_pair() -> (UnixDatagram, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: `socketpair` writes two descriptors into `fds`.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fds[0]` and `fds[1]` are fresh descriptors nothing else owns.
    let (host, guest) = unsafe {
        (
            UnixDatagram::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: `fcntl` on a descriptor we own: close-on-exec on the test's end, so that only
    // the guest's end reaches the child.
    unsafe { libc::fcntl(host.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    (host, guest)
}

/// `spawn(image, cmdline, devices)` starts the loader's child on `image`.
pub fn spawn(image: &Path, cmdline: &str, devices: Devices) -> Process {
    spawn_child(CHILD_TEST, "MINI_SPT", image, cmdline, devices)
}

/// `run(image, cmdline, devices)` runs `image` to its end, at most 60 s.
pub fn run(image: &Path, cmdline: &str, devices: Devices) -> Finished {
    spawn(image, cmdline, devices).wait(Duration::from_secs(60))
}

/// `guest(run)` is what the image wrote: the child's output after the harness's first line.
pub fn guest(run: &Finished) -> &str {
    let marker = format!("test {CHILD_TEST} ... \n");
    match run.stdout.find(&marker) {
        Some(i) => &run.stdout[i + marker.len()..],
        None => "",
    }
}

/// `child()` is the child side: load and enter the image named by `MINI_SPT_IMAGE` (the
/// process ends with the image's `exit_group`). Without the variable, as in ordinary test
/// runs, it does nothing.
pub fn child() {
    if std::env::var_os("MINI_SPT_IMAGE").is_none() {
        return;
    }
    // End the harness's "test mini_spt_child ... " line: the image's output starts afresh.
    println!();
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    enter_from_env();
}

/// `enter_from_env()` loads and enters the image `MINI_SPT_IMAGE` names, with the command line
/// `MINI_SPT_CMDLINE` and the devices the other `MINI_SPT_*` variables attach: the loader's
/// child side without a test harness around it (the `mini-solo5-spt` tender uses it).
pub fn enter_from_env() -> ! {
    let image = std::env::var_os("MINI_SPT_IMAGE").expect("MINI_SPT_IMAGE names the image");
    let cmdline = std::env::var("MINI_SPT_CMDLINE").unwrap_or_default();
    let elf = std::fs::read(image).unwrap();
    enter(&elf, &cmdline);
}

/// `mini_spt_child_test!()` defines the test `mini_spt_child`, the minimal spt loader's child
/// side ([`solo5::spt::child`](crate::solo5::spt::child)), in a test binary that runs spt
/// images with [`solo5::spt::run`](crate::solo5::spt::run).
#[macro_export]
macro_rules! mini_spt_child_test {
    () => {
        /// The minimal spt loader's child side; it does nothing in an ordinary test run.
        #[test]
        fn mini_spt_child() {
            $crate::solo5::spt::child();
        }
    };
}

fn check_errno(what: &str, r: i64) -> i64 {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

fn enter(elf: &[u8], cmdline: &str) -> ! {
    const BASE: u64 = 0x10000;
    const BOOT_INFO: u64 = 0x11000;
    let mem = mem_bytes();
    // SAFETY: a fixed anonymous mapping of the guest's range; MAP_FIXED_NOREPLACE fails rather
    // than replace anything this process has mapped there.
    let at = unsafe {
        libc::mmap(
            BASE as *mut libc::c_void,
            (mem - BASE) as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    assert_eq!(at as u64, BASE, "{}", std::io::Error::last_os_error());
    // SAFETY: the mapping above is ours, readable and writable, `mem - BASE` bytes long.
    let guest = unsafe { std::slice::from_raw_parts_mut(BASE as *mut u8, (mem - BASE) as usize) };
    let g = |addr: u64| (addr - BASE) as usize;
    let mut kernel_end = 0;
    let loads = loads(elf);
    for p in &loads {
        let src = &elf[p.offset as usize..(p.offset + p.filesz) as usize];
        guest[g(p.vaddr)..g(p.vaddr) + src.len()].copy_from_slice(src);
        kernel_end = kernel_end.max((p.vaddr + p.memsz).next_multiple_of(4096));
    }
    // The manifest: the image's, copied, with the devices attached.
    let mut mft = manifest(elf).expect("an MFT1 note");
    let mut block_fd = -1;
    // Block devices: `MINI_SPT_BLOCK=NAME=FILE` attaches FILE as NAME, 512-byte blocks.
    if let Ok(spec) = std::env::var("MINI_SPT_BLOCK") {
        let (name, path) = spec.split_once('=').expect("NAME=FILE");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let capacity = file.metadata().unwrap().len();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
        block_fd = fd;
        let i = manifest_entry(&mft, name, Some(1))
            .unwrap_or_else(|| panic!("the block device {name} is not in the manifest"));
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        e[72..80].copy_from_slice(&capacity.to_le_bytes());
        e[80..82].copy_from_slice(&512u16.to_le_bytes());
        e[88..92].copy_from_slice(&fd.to_le_bytes());
        e[96] = 1;
    }
    // A network device (`MINI_SOLO5_NET`): a tap or an inherited socket, MAC
    // 02:00:00:00:00:02.
    let mut net = None;
    if let Some((name, link)) = attached_net() {
        let i = manifest_entry(&mft, &name, Some(2))
            .unwrap_or_else(|| panic!("the network device {name} is not in the manifest"));
        let fd = std::os::fd::IntoRawFd::into_raw_fd(link.fd);
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        e[72..78].copy_from_slice(&GUEST_MAC);
        e[78..80].copy_from_slice(&link.mtu.to_le_bytes());
        e[88..92].copy_from_slice(&fd.to_le_bytes());
        e[96] = 1;
        net = Some((i as u64, fd));
    }
    // As the tenders do: every declared device must be attached.
    for i in 1..u32_at(&mft, 4) as usize {
        assert_eq!(
            mft[8 + i * 104 + 96],
            1,
            "device {i} is declared but not attached"
        );
    }
    let mft_at = BOOT_INFO + 40;
    let cmdline_at = mft_at + mft.len() as u64;
    guest[g(mft_at)..g(mft_at) + mft.len()].copy_from_slice(&mft);
    guest[g(cmdline_at)..g(cmdline_at) + cmdline.len()].copy_from_slice(cmdline.as_bytes());
    guest[g(cmdline_at) + cmdline.len()] = 0;
    // SAFETY: plain system calls on fds this process creates.
    let (epoll, timer) = unsafe {
        let epoll = check_errno("epoll_create1", libc::epoll_create1(0).into());
        let timer = check_errno(
            "timerfd_create",
            libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK).into(),
        );
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0xffff_fffe,
        };
        check_errno(
            "epoll_ctl",
            libc::epoll_ctl(epoll as i32, libc::EPOLL_CTL_ADD, timer as i32, &mut ev).into(),
        );
        if let Some((handle, fd)) = net {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            check_errno(
                "fcntl",
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK).into(),
            );
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: handle,
            };
            check_errno(
                "epoll_ctl",
                libc::epoll_ctl(epoll as i32, libc::EPOLL_CTL_ADD, fd, &mut ev).into(),
            );
        }
        (epoll as i32, timer as i32)
    };
    let bi = g(BOOT_INFO);
    guest[bi..bi + 8].copy_from_slice(&mem.to_le_bytes());
    guest[bi + 8..bi + 16].copy_from_slice(&kernel_end.to_le_bytes());
    guest[bi + 16..bi + 24].copy_from_slice(&cmdline_at.to_le_bytes());
    guest[bi + 24..bi + 32].copy_from_slice(&mft_at.to_le_bytes());
    guest[bi + 32..bi + 36].copy_from_slice(&epoll.to_le_bytes());
    guest[bi + 36..bi + 40].copy_from_slice(&timer.to_le_bytes());
    for p in &loads {
        let start = p.vaddr & !4095;
        let end = (p.vaddr + p.memsz).next_multiple_of(4096);
        let mut prot = libc::PROT_READ;
        if p.flags & PF_W != 0 {
            prot |= libc::PROT_WRITE;
        }
        if p.flags & PF_X != 0 {
            prot |= libc::PROT_EXEC;
        }
        // SAFETY: the range lies inside the guest mapping.
        let r = unsafe { libc::mprotect(start as *mut libc::c_void, (end - start) as usize, prot) };
        check_errno("mprotect", r.into());
    }
    let entry = u64_at(elf, 24);
    seccomp(epoll, timer, block_fd, net.map_or(-1, |n| n.1));
    // SAFETY: the image is loaded as its program headers say and the boot info is in place;
    // control passes to it for good, on its own stack at the top of guest memory, as
    // `spt_launch` does.
    unsafe {
        std::arch::asm!(
            "mov rsp, {sp}",
            "jmp {entry}",
            sp = in(reg) mem - 8,
            entry = in(reg) entry,
            in("rdi") BOOT_INFO,
            options(noreturn)
        )
    }
}

/// `seccomp(epoll, timer, block)` confines this thread, as `solo5-spt` confines the
/// guest, to the system calls its seccomp filter allows (`tenders/spt/spt_core.c`,
/// `spt_module_block.c`, `spt_module_net.c`): `write` to fd 1, `read` and `write` on the
/// network fd, `pread64`/`pwrite64` of 512 bytes on the block fd,
/// `clock_gettime` of `CLOCK_REALTIME` or `CLOCK_MONOTONIC`, `epoll_pwait` on the epoll fd,
/// `timerfd_settime` on the timer fd, and `exit_group`. Anything else kills the process.
fn seccomp(epoll: i32, timer: i32, block: i32, net: i32) {
    const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000;
    const KILL: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
    const ARG2: u32 = 32;
    let op = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let mut f = vec![
        op(LD_ABS, ARCH, 0, 0),
        op(JEQ, 0xc000_003e, 1, 0), // AUDIT_ARCH_X86_64
        op(RET, KILL, 0, 0),
        op(LD_ABS, NR, 0, 0),
        op(JEQ, 231, 0, 1), // exit_group
        op(RET, ALLOW, 0, 0),
    ];
    // `nr` is allowed when its first argument is `fd`. Each rule leaves A holding nr for the
    // next; the last instruction kills.
    let mut fd_is = |nr: u32, fd: i32| {
        f.extend([
            op(JEQ, nr, 0, 4),
            op(LD_ABS, ARG0, 0, 0),
            op(JEQ, fd as u32, 0, 1),
            op(RET, ALLOW, 0, 0),
            op(LD_ABS, NR, 0, 0),
        ]);
    };
    fd_is(1, 1); // write(1, ...)
    if net >= 0 {
        fd_is(0, net); // read(net, ...)
        fd_is(1, net); // write(net, ...)
    }
    fd_is(281, epoll); // epoll_pwait
    fd_is(286, timer); // timerfd_settime
    for nr in [17, 18] {
        // pread64 / pwrite64 of one 512-byte block on the block fd
        f.extend([
            op(JEQ, nr, 0, 6),
            op(LD_ABS, ARG0, 0, 0),
            op(JEQ, block as u32, 0, 3),
            op(LD_ABS, ARG2, 0, 0),
            op(JEQ, 512, 0, 1),
            op(RET, ALLOW, 0, 0),
            op(LD_ABS, NR, 0, 0),
        ]);
    }
    f.extend([
        op(JEQ, 228, 0, 4), // clock_gettime(0 | 1, ...)
        op(LD_ABS, ARG0, 0, 0),
        op(JGT, 1, 1, 0),
        op(RET, ALLOW, 0, 0),
        op(LD_ABS, NR, 0, 0),
        op(RET, KILL, 0, 0),
    ]);
    let prog = libc::sock_fprog {
        len: f.len() as u16,
        filter: f.as_mut_ptr(),
    };
    // SAFETY: `prctl` with a valid filter program that outlives the call (the kernel copies
    // it); it confines this thread only.
    unsafe {
        check_errno(
            "no_new_privs",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into(),
        );
        check_errno(
            "seccomp",
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _,
            )
            .into(),
        );
    }
}
