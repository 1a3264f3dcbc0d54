//! A minimal hvt monitor on /dev/kvm, so that hvt images run here without Solo5's tender.
//!
//! It sets the guest up as `solo5-hvt` does (Solo5 `tenders/hvt/hvt_kvm_x86_64.c`,
//! `hvt_cpu_x86_64.c`, as described in ../shared/reference/unikernel-abi.md §2.5): one memory
//! slot from guest-physical 0, identity page tables with 2 MiB pages (PML4 0x2000, PDPT
//! 0x3000, PD 0x4000), a GDT at 0x1000 (code 0x08, data 0x10), long mode with CR0 =
//! PE|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = LME|LMA, RIP = entry, RSP = mem_size - 8,
//! RDI = 0x10000 holding `struct hvt_boot_info`, the manifest and the command line. It serves
//! the hypercalls (WALLTIME, PUTS, POLL, BLOCK_READ/WRITE, NET_READ/WRITE, HALT) for the
//! devices it is given, and is not a tender: no seccomp, the first 64 KiB are mapped. It runs
//! in a thread of the test (no child process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::elf::{loads, manifest, manifest_entry, u16_at, u32_at, u64_at};
use super::net::GUEST_MAC;

const MINI_HVT_MEM: u64 = 32 << 20;

/// What a run under the minimal monitor gave.
#[derive(Debug)]
pub struct HvtRun {
    /// What the guest wrote to its console.
    pub console: String,
    /// Its exit status, or why it stopped otherwise (a timeout, an unhandled exit).
    pub status: Result<i32, String>,
}

fn kvm_ioctl(fd: i32, request: u64, arg: u64) -> i64 {
    // SAFETY: each caller passes a KVM request with the argument kind it takes (an integer,
    // or a pointer to a structure of the request's size that lives for the call).
    let r = unsafe { libc::ioctl(fd, request as _, arg) };
    r as i64
}

/// A device the minimal monitor attaches.
#[derive(Debug)]
pub enum HvtDevice {
    /// A file as a block device of 512-byte blocks.
    Block(std::fs::File),
    /// A datagram socket as a network device (MAC [`GUEST_MAC`], MTU 1500).
    Net(std::os::unix::net::UnixDatagram),
}

/// `run(elf, cmdline)` runs the hvt image `elf` until it halts, at most 30 s; `Err` says why
/// it cannot run here (no usable /dev/kvm) or cannot start.
pub fn run(elf: &[u8], cmdline: &str) -> Result<HvtRun, String> {
    run_with(elf, cmdline, Vec::new(), &AtomicBool::new(false))
}

/// `run_with(elf, cmdline, devices, stop)` runs `elf` with `devices` attached by their
/// manifest names, until it halts, 30 s pass or `stop` is set.
pub fn run_with(
    elf: &[u8],
    cmdline: &str,
    devices: Vec<(&str, HvtDevice)>,
    stop: &AtomicBool,
) -> Result<HvtRun, String> {
    const KVM_GET_VCPU_MMAP_SIZE: u64 = 0xae04;
    const KVM_CREATE_VM: u64 = 0xae01;
    const KVM_CREATE_VCPU: u64 = 0xae41;
    const KVM_SET_USER_MEMORY_REGION: u64 = 0x4020_ae46;
    const KVM_GET_SREGS: u64 = 0x8138_ae83;
    const KVM_SET_SREGS: u64 = 0x4138_ae84;
    const KVM_SET_REGS: u64 = 0x4090_ae82;
    const KVM_RUN: u64 = 0xae80;
    const KVM_GET_TSC_KHZ: u64 = 0xaea3;
    const KVM_EXIT_IO: u32 = 2;
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    use std::os::fd::AsRawFd;
    let vm = kvm_ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0);
    if vm < 0 {
        return Err(format!(
            "KVM_CREATE_VM: {}",
            std::io::Error::last_os_error()
        ));
    }
    let vm = vm as i32;
    let mem = MINI_HVT_MEM;
    // SAFETY: an anonymous private mapping, owned by this function's caller for the run.
    let host = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mem as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(host, libc::MAP_FAILED);
    // SAFETY: the mapping above, `mem` bytes, readable and writable, used only through this.
    let guest = unsafe { std::slice::from_raw_parts_mut(host as *mut u8, mem as usize) };
    let region: [u64; 4] = [0, 0, mem, host as u64]; // slot 0, flags 0, gpa 0, size, host
    if kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, region.as_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_SET_USER_MEMORY_REGION: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB (present, writable, large).
    let put = |guest: &mut [u8], at: u64, v: u64| {
        guest[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(guest, 0x2000, 0x3000 | 3);
    put(guest, 0x3000, 0x4000 | 3);
    for i in 0..mem / (2 << 20) {
        put(guest, 0x4000 + 8 * i, (i * (2 << 20)) | 0x83);
    }
    // GDT: null, 64-bit code, data.
    put(guest, 0x1008, 0x00af_9b00_0000_ffff);
    put(guest, 0x1010, 0x00cf_9300_0000_ffff);
    // The image.
    let mut kernel_end = 0;
    for p in loads(elf) {
        let src = &elf[p.offset as usize..(p.offset + p.filesz) as usize];
        guest[p.vaddr as usize..p.vaddr as usize + src.len()].copy_from_slice(src);
        kernel_end = kernel_end.max((p.vaddr + p.memsz).next_multiple_of(4096));
    }
    let mut mft = manifest(elf).ok_or("no MFT1 note")?;
    let entries = u32_at(&mft, 4) as usize;
    let mut attached: HashMap<usize, HvtDevice> = HashMap::new();
    for (name, device) in devices {
        let i = manifest_entry(&mft, name, None).ok_or(format!("{name} is not in the manifest"))?;
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        match &device {
            HvtDevice::Block(f) => {
                e[72..80].copy_from_slice(&f.metadata().unwrap().len().to_le_bytes());
                e[80..82].copy_from_slice(&512u16.to_le_bytes());
            }
            HvtDevice::Net(sock) => {
                sock.set_nonblocking(true).unwrap();
                e[72..78].copy_from_slice(&GUEST_MAC);
                e[78..80].copy_from_slice(&1500u16.to_le_bytes());
            }
        }
        e[96] = 1;
        attached.insert(i, device);
    }
    if attached.len() + 1 != entries {
        return Err("a declared device is not attached".into());
    }
    let mft = &mft[..];
    // The vCPU.
    let vcpu = kvm_ioctl(vm, KVM_CREATE_VCPU, 0);
    if vcpu < 0 {
        return Err(format!(
            "KVM_CREATE_VCPU: {}",
            std::io::Error::last_os_error()
        ));
    }
    let vcpu = vcpu as i32;
    let tsc_khz = kvm_ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    if tsc_khz <= 0 {
        return Err(format!(
            "KVM_GET_TSC_KHZ: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Boot info, manifest, command line.
    let (bi, mft_at) = (0x10000u64, 0x10038u64);
    let cmdline_at = mft_at + mft.len() as u64;
    guest[mft_at as usize..mft_at as usize + mft.len()].copy_from_slice(mft);
    guest[cmdline_at as usize..cmdline_at as usize + cmdline.len()]
        .copy_from_slice(cmdline.as_bytes());
    put(guest, bi, mem);
    put(guest, bi + 8, kernel_end);
    put(guest, bi + 16, tsc_khz as u64 * 1000);
    put(guest, bi + 24, cmdline_at);
    put(guest, bi + 32, mft_at);
    let mut sregs = [0u8; 0x138];
    if kvm_ioctl(vcpu, KVM_GET_SREGS, sregs.as_mut_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_GET_SREGS: {}",
            std::io::Error::last_os_error()
        ));
    }
    // struct kvm_segment (24 bytes): base u64, limit u32, selector u16, type, present, dpl, db,
    // s, l, g, avl, unusable, padding.
    let segment = |sregs: &mut [u8], i: usize, selector: u16, kind: u8, code: bool| {
        let s = &mut sregs[i * 24..(i + 1) * 24];
        s[..8].copy_from_slice(&0u64.to_le_bytes());
        s[8..12].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        s[12..14].copy_from_slice(&selector.to_le_bytes());
        s[14] = kind;
        s[15] = 1; // present
        s[16] = 0; // dpl
        s[17] = u8::from(!code); // db
        s[18] = 1; // s
        s[19] = u8::from(code); // l
        s[20] = 1; // g
        s[21] = 0;
        s[22] = 0; // usable
    };
    segment(&mut sregs, 0, 0x08, 0xb, true); // cs
    for i in [1, 2, 3, 4, 5] {
        segment(&mut sregs, i, 0x10, 0x3, false); // ds es fs gs ss
    }
    // gdt at 192: base, limit.
    sregs[192..200].copy_from_slice(&0x1000u64.to_le_bytes());
    sregs[200..202].copy_from_slice(&23u16.to_le_bytes());
    let cr = |sregs: &mut [u8], i: usize, v: u64| {
        sregs[224 + 8 * i..232 + 8 * i].copy_from_slice(&v.to_le_bytes())
    };
    cr(&mut sregs, 0, 0x8001_0021); // cr0: PE | NE | WP | PG
    cr(&mut sregs, 2, 0x2000); // cr3
    cr(&mut sregs, 3, 0x620); // cr4: PAE | OSFXSR | OSXMMEXCPT
    cr(&mut sregs, 5, 0x500); // efer: LME | LMA
    if kvm_ioctl(vcpu, KVM_SET_SREGS, sregs.as_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_SET_SREGS: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut regs = [0u64; 18];
    regs[5] = bi; // rdi
    regs[6] = mem - 8; // rsp
    regs[16] = u64_at(elf, 24); // rip
    regs[17] = 2; // rflags
    if kvm_ioctl(vcpu, KVM_SET_REGS, regs.as_ptr() as u64) < 0 {
        return Err(format!("KVM_SET_REGS: {}", std::io::Error::last_os_error()));
    }
    let run_size = kvm_ioctl(kvm.as_raw_fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
    // SAFETY: the vCPU's shared `kvm_run` page(s), as KVM_GET_VCPU_MMAP_SIZE says.
    let run = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            run_size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            vcpu,
            0,
        )
    };
    assert_ne!(run, libc::MAP_FAILED);
    // SAFETY: the mapping above, read between KVM_RUN calls only.
    let run = unsafe { std::slice::from_raw_parts_mut(run as *mut u8, run_size as usize) };
    let mut console = Vec::new();
    let started = std::time::Instant::now();
    let status = loop {
        if started.elapsed() > Duration::from_secs(30) {
            break Err("timed out".to_string());
        }
        if stop.load(Ordering::SeqCst) {
            break Err("stopped".to_string());
        }
        if kvm_ioctl(vcpu, KVM_RUN, 0) < 0 {
            break Err(format!("KVM_RUN: {}", std::io::Error::last_os_error()));
        }
        let reason = u32_at(run, 8);
        if reason == 17 && u32_at(run, 32) == 1 && emulate_sse(vcpu, guest) {
            continue;
        }
        if reason != KVM_EXIT_IO {
            let mut regs = [0u64; 18];
            kvm_ioctl(vcpu, 0x8090_ae81, regs.as_mut_ptr() as u64); // KVM_GET_REGS
            break Err(format!(
                "unhandled exit {reason} (detail {:#x}) at rip {:#x}",
                u32_at(run, 32),
                regs[16]
            ));
        }
        let (size, port) = (run[33], u16_at(run, 34));
        let data_offset = u64_at(run, 40) as usize;
        let arg = u64::from(u32_at(run, data_offset));
        if run[32] != 1 || size != 4 {
            break Err(format!("port {port:#x} size {size}"));
        }
        let at = |off: u64| u64_at(guest, (arg + off) as usize);
        match port {
            0x501 => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                put(guest, arg, now);
            }
            0x502 => {
                let (data, len) = (at(0) as usize, at(8) as usize);
                console.extend_from_slice(&guest[data..data + len]);
            }
            0x503 => {
                // POLL: wait for a network device's input or the timeout.
                let nets: Vec<(usize, i32)> = attached
                    .iter()
                    .filter_map(|(h, d)| match d {
                        HvtDevice::Net(sock) => Some((*h, sock.as_raw_fd())),
                        HvtDevice::Block(_) => None,
                    })
                    .collect();
                let mut fds: Vec<libc::pollfd> = nets
                    .iter()
                    .map(|&(_, fd)| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                let ns = at(0);
                if fds.is_empty() {
                    std::thread::sleep(Duration::from_nanos(ns.min(1 << 34)));
                } else {
                    // At most 100 ms, so that `stop` is seen soon (an early return is allowed).
                    let ms = ns.div_ceil(1_000_000).min(100) as i32;
                    // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
                    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, ms) };
                }
                let mut ready = 0u64;
                let mut count = 0i32;
                for (p, (h, _)) in fds.iter().zip(&nets) {
                    if p.revents & libc::POLLIN != 0 {
                        ready |= 1 << h;
                        count += 1;
                    }
                }
                put(guest, arg + 8, ready);
                guest[(arg + 16) as usize..(arg + 20) as usize]
                    .copy_from_slice(&count.to_le_bytes());
            }
            0x504 | 0x505 => {
                // BLOCK_WRITE / BLOCK_READ: handle, offset, data, len; ret at 32.
                let Some(HvtDevice::Block(file)) = attached.get(&(at(0) as usize)) else {
                    break Err(format!("block hypercall on handle {}", at(0)));
                };
                let (offset, data, len) = (at(8), at(16) as usize, at(24) as usize);
                use std::os::unix::fs::FileExt;
                let ok = if port == 0x504 {
                    file.write_all_at(&guest[data..data + len], offset).is_ok()
                } else {
                    file.read_exact_at(&mut guest[data..data + len], offset)
                        .is_ok()
                };
                let ret: i32 = if ok && len == 512 && offset % 512 == 0 {
                    0
                } else {
                    3
                };
                guest[(arg + 32) as usize..(arg + 36) as usize].copy_from_slice(&ret.to_le_bytes());
            }
            0x506 | 0x507 => {
                // NET_WRITE / NET_READ: handle, data, len (in/out); ret at 24.
                let Some(HvtDevice::Net(sock)) = attached.get(&(at(0) as usize)) else {
                    break Err(format!("net hypercall on handle {}", at(0)));
                };
                let (data, len) = (at(8) as usize, at(16) as usize);
                let ret: i32 = if port == 0x506 {
                    if sock.send(&guest[data..data + len]).is_ok() {
                        0
                    } else {
                        3
                    }
                } else {
                    match sock.recv(&mut guest[data..data + len]) {
                        Ok(n) => {
                            put(guest, arg + 16, n as u64);
                            0
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 1,
                        Err(_) => 3,
                    }
                };
                guest[(arg + 24) as usize..(arg + 28) as usize].copy_from_slice(&ret.to_le_bytes());
            }
            0x508 => break Ok(u32_at(guest, (arg + 8) as usize) as i32),
            other => break Err(format!("hypercall port {other:#x}")),
        }
    };
    // SAFETY: the guest memory mapping is no longer used.
    unsafe { libc::munmap(host, mem as usize) };
    Ok(HvtRun {
        console: String::from_utf8_lossy(&console).into_owned(),
        status,
    })
}

/// `emulate_sse(vcpu, guest)` carries out, for the vCPU, the register-to-register SSE
/// logical instruction it stopped at (`xorps`, `xorpd`, `pxor`), which this project's
/// machines' /dev/kvm (PVM, a paravirtualised KVM) cannot execute in a guest; it returns
/// false for any other instruction.
fn emulate_sse(vcpu: i32, guest: &[u8]) -> bool {
    const KVM_GET_REGS: u64 = 0x8090_ae81;
    const KVM_SET_REGS: u64 = 0x4090_ae82;
    const KVM_GET_FPU: u64 = 0x81a0_ae8c;
    const KVM_SET_FPU: u64 = 0x41a0_ae8d;
    let mut regs = [0u64; 18];
    if kvm_ioctl(vcpu, KVM_GET_REGS, regs.as_mut_ptr() as u64) < 0 {
        return false;
    }
    let rip = regs[16] as usize;
    let code = &guest[rip..rip + 8];
    let mut i = 0;
    let op66 = code[i] == 0x66;
    if op66 {
        i += 1;
    }
    let rex = if code[i] & 0xf0 == 0x40 {
        i += 1;
        code[i - 1]
    } else {
        0
    };
    let logical_xor = code[i] == 0x0f && (code[i + 1] == 0x57 || (op66 && code[i + 1] == 0xef));
    let modrm = code[i + 2];
    if !logical_xor || modrm >> 6 != 3 {
        return false;
    }
    let reg = usize::from(((rex >> 2) & 1) << 3 | ((modrm >> 3) & 7));
    let rm = usize::from((rex & 1) << 3 | (modrm & 7));
    let mut fpu = [0u8; 416];
    if kvm_ioctl(vcpu, KVM_GET_FPU, fpu.as_mut_ptr() as u64) < 0 {
        return false;
    }
    for b in 0..16 {
        fpu[152 + reg * 16 + b] ^= fpu[152 + rm * 16 + b];
    }
    regs[16] += (i + 3) as u64;
    kvm_ioctl(vcpu, KVM_SET_FPU, fpu.as_ptr() as u64) >= 0
        && kvm_ioctl(vcpu, KVM_SET_REGS, regs.as_ptr() as u64) >= 0
}
