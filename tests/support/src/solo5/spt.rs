//! A minimal spt loader, so that spt images run here without Solo5's tender.
//!
//! It does what `solo5-spt` does before it jumps to an image (Solo5 `include/spt_abi.h`,
//! `tenders/spt/spt_core.c`, as described in ../shared/reference/unikernel-abi.md §2.6): map
//! guest memory at 0x10000, load the PT_LOAD segments at their addresses with their
//! protections, write `struct spt_boot_info` at 0x11000 followed by the manifest (with the
//! devices attached) and the command line, make the epoll and timer fds, and enter the image
//! with RSP = mem_size - 8 and RDI = the boot info. It applies the tender's seccomp filter
//! (with its block and network modules' rules); it is a check of the boot path, console,
//! clocks, sleeping, block transfers, frames and exit codes, not a tender.
//!
//! The image runs in a child process: the test binary itself, started again with
//! `MINI_SPT_IMAGE` set, running only its test `mini_spt_child`, which
//! [`mini_spt_child_test!`](crate::mini_spt_child_test) defines. Devices: at most one block
//! device (a file, 512-byte blocks) and one network device (a datagram socket, one frame per
//! datagram, MAC [`GUEST_MAC`](super::net::GUEST_MAC), MTU 1500), attached by their manifest
//! names.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::elf::{loads, manifest, manifest_entry, u32_at, u64_at, PF_W, PF_X};
use super::net::GUEST_MAC;
use crate::process::{Finished, Process};

const MINI_SPT_MEM: u64 = 32 << 20;

/// The name of the test that runs the loader's child side.
pub const CHILD_TEST: &str = "mini_spt_child";

/// The devices to attach, by their names in the image's manifest.
#[derive(Debug, Default)]
pub struct Devices {
    block: Option<String>,
    net: Option<(String, OwnedFd)>,
}

impl Devices {
    /// `block(name, file)` attaches `file` as the block device `name`.
    pub fn block(mut self, name: &str, file: &Path) -> Devices {
        self.block = Some(format!("{name}={}", file.display()));
        self
    }

    /// `net(name, guest_end)` attaches the datagram socket `guest_end` (see [`net_pair`]) as
    /// the network device `name`.
    pub fn net(mut self, name: &str, guest_end: OwnedFd) -> Devices {
        self.net = Some((name.to_string(), guest_end));
        self
    }
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
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env("MINI_SPT_IMAGE", image)
        .env("MINI_SPT_CMDLINE", cmdline);
    if let Some(block) = &devices.block {
        command.env("MINI_SPT_BLOCK", block);
    }
    if let Some((name, fd)) = &devices.net {
        command.env("MINI_SPT_NET", format!("{name}={}", fd.as_raw_fd()));
    }
    // The guest's socket end (if any) is closed here once the child has it.
    Process::spawn(&mut command)
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
    let Some(image) = std::env::var_os("MINI_SPT_IMAGE") else {
        return;
    };
    let cmdline = std::env::var("MINI_SPT_CMDLINE").unwrap_or_default();
    let elf = std::fs::read(image).unwrap();
    // End the harness's "test mini_spt_child ... " line: the image's output starts afresh.
    println!();
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
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
    let mem = MINI_SPT_MEM;
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
    // A network device: `MINI_SPT_NET=NAME=FD` attaches the inherited datagram socket FD
    // (one frame per datagram, as a tap gives them) as NAME, MAC 02:00:00:00:00:02, MTU 1500.
    let mut net = None;
    if let Ok(spec) = std::env::var("MINI_SPT_NET") {
        let (name, fd) = spec.split_once('=').expect("NAME=FD");
        let fd: i32 = fd.parse().unwrap();
        let i = manifest_entry(&mft, name, Some(2))
            .unwrap_or_else(|| panic!("the network device {name} is not in the manifest"));
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        e[72..78].copy_from_slice(&GUEST_MAC);
        e[78..80].copy_from_slice(&1500u16.to_le_bytes());
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
            libc::timerfd_create(libc::CLOCK_MONOTONIC, 0).into(),
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
