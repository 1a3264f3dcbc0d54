//! The Rust side of the two entries in `arch::boot`: read what the loader passed, set up the
//! console, clocks and heap, run the image's `main!` and shut down with its exit code.

use core::ptr::read_volatile;

use super::console::Ring;
use super::shared_info::SharedInfo;
use super::{exit, fault, hypercall, pc, pv_memory};
use super::{set_cmdline, set_early_console, set_entry, set_machine, Entry, Machine};
use crate::arch::{self, cpuid, wrmsr};
use mirage_bare_metal::tsc::TscScale;
use mirage_bare_metal::{paging, trap};

extern "C" {
    // Pages of the image's bss (arch::boot) that Xen writes once mapped: mutable, and only
    // ever used through raw pointers.
    static mut mirage_xen_shared_info_page: [u8; 4096];
    static mut mirage_xen_console_page: [u8; 4096];
    /// The page below the stack, which boot code unmaps (PV) or leaves out of the page
    /// tables (PVH): mutable, as the other pages whose mapping changes, and only its address
    /// is ever taken.
    static mut mirage_xen_stack_guard: [u8; 4096];
    static _end: u8;
}

extern "Rust" {
    /// Defined by [`main!`](crate::main) in the image's crate.
    fn __mirage_xen_main() -> i32;
}

/// `start_info` flag: this is the initial domain.
const SIF_INITDOMAIN: u32 = 1 << 1;
/// `hvm_start_info.magic`.
const HVM_START_MAGIC: u32 = 0x336e_c578;
/// The most a command line holds (`MAX_GUEST_CMDLINE`).
const CMDLINE_MAX: usize = 1024;

fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// `read<T>(addr)` reads a `T` the loader left at `addr`.
///
/// # Safety
///
/// `addr` must be mapped and hold a `T`.
unsafe fn read<T: Copy>(addr: u64) -> T {
    // SAFETY: as the caller guarantees; the loader's structures need not be aligned.
    unsafe { core::ptr::read_unaligned(addr as *const T) }
}

/// `copy_cstr(addr, buf)` copies the NUL-terminated string at `addr` into `buf` and returns
/// its length.
///
/// # Safety
///
/// `addr` must be mapped up to its NUL or `buf.len()` bytes.
unsafe fn copy_cstr(addr: u64, buf: &mut [u8; CMDLINE_MAX]) -> usize {
    let mut n = 0;
    while n < CMDLINE_MAX {
        // SAFETY: as the caller guarantees.
        let b = unsafe { read_volatile((addr + n as u64) as *const u8) };
        if b == 0 {
            break;
        }
        buf[n] = b;
        n += 1;
    }
    n
}

/// `finish(cmdline)` keeps the command line, runs the image and exits with its code.
fn finish(cmdline: &[u8]) -> ! {
    let text = mirage_bare_metal::cmdline::lossy(cmdline);
    set_cmdline(text.leak());
    // SAFETY: `main!` defines `__mirage_xen_main` in every image's crate; the machine, heap and
    // command line are ready.
    let code = unsafe { __mirage_xen_main() };
    exit(code)
}

/// `check(step, rc)` stops the boot with a panic naming `step` and Xen's error if `rc` is
/// one (the one place that formats them).
#[inline(never)]
pub(super) fn check(step: &str, rc: i64) {
    if rc != 0 {
        panic!("boot: {step} failed: Xen error {rc}");
    }
}

/// `stack_guard()` is the guard page below the image's stack.
fn stack_guard() -> u64 {
    (&raw mut mirage_xen_stack_guard) as u64
}

/// The PV entry's other side: `_start` comes here, with the stack pointer, when Linux
/// executed the image instead of Xen booting it (`%rsi` was 0; see
/// `mirage_bare_metal::linux`). It says what the image is and the commands that boot it, and
/// exits 64.
#[no_mangle]
extern "C" fn mirage_xen_linux_exec(sp: u64) -> ! {
    use core::fmt::Write;
    let say = |path: &str, line: &mut mirage_bare_metal::linux::Line| {
        let _ = write!(
            line,
            "{path}: a Xen unikernel (a PV and PVH guest), not a Linux program; boot it with \
             `qemu-system-x86_64 -accel tcg -m 64 -display none -serial stdio -no-reboot \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel {path} -append \
             '[--KEY=VALUE...]'` (its PVH entry), as a domU with `xl create` of its xl config, \
             or `mirage-nix run -t xen` in its unikernel's folder"
        );
    };
    // SAFETY: Linux's `execve` left `sp` pointing at argc and argv (the entry checked that
    // Linux, not Xen, entered it).
    unsafe { mirage_bare_metal::linux::explain(sp as usize, "the image", say) }
}

/// The PV entry, called by `_start` on the image's stack with Xen's `start_info` and the stack
/// pointer Xen gave (the end of the bootstrap region's stack).
///
/// Each hypercall the image depends on is checked, and a failure stops the boot with a panic
/// naming it (on the console ring if it is mapped yet, else Xen's `console_io`, which only
/// the initial domain's output reaches), then the crash shutdown.
#[no_mangle]
extern "C" fn mirage_xen_pv_start(start_info: u64, boot_rsp: u64) -> ! {
    if !hypercall::page_is_filled() {
        // No hypercalls: nothing can be printed nor the domain stopped. `ud2` without a trap
        // handler makes Xen crash the domain: the crash is all a toolstack sees.
        arch::undefined_instruction();
    }
    set_entry(Entry::Pv);
    // SAFETY: Xen maps `start_info` (struct start_info, public/xen.h) for the guest.
    let (nr_pages, shared_maddr, flags, console_mfn, console_port, pt_base, mfn_list) = unsafe {
        (
            read::<u64>(start_info + 32),
            read::<u64>(start_info + 40),
            read::<u32>(start_info + 48),
            read::<u64>(start_info + 72),
            read::<u32>(start_info + 80),
            read::<u64>(start_info + 88),
            read::<u64>(start_info + 104),
        )
    };
    // SAFETY: as above (`store_mfn` and `store_evtchn`).
    let (store_mfn, store_port) =
        unsafe { (read::<u64>(start_info + 56), read::<u32>(start_info + 64)) };
    let mut cmdline = [0u8; CMDLINE_MAX];
    // SAFETY: `cmd_line` is a 1024-byte array at offset 128 of `start_info`.
    let len = unsafe { copy_cstr(start_info + 128, &mut cmdline) };

    let initial = flags & SIF_INITDOMAIN != 0;
    // The console ring first, so that a failure after it is reported there.
    let console = (!initial).then(|| {
        let ring_va = (&raw mut mirage_xen_console_page) as u64;
        // SAFETY: the page is reserved in the bss for the console ring.
        let rc = unsafe { hypercall::map_frame(ring_va, console_mfn << 12) };
        check("mapping the console ring (update_va_mapping)", rc);
        // SAFETY: the ring is mapped for good, and only the runtime writes it.
        let ring = unsafe { Ring::new(ring_va as usize, console_port) };
        set_early_console(ring);
        ring
    });
    let shared_va = (&raw mut mirage_xen_shared_info_page) as u64;
    // SAFETY: the page is reserved in the bss for this mapping and never used otherwise.
    let rc = unsafe { hypercall::map_frame(shared_va, shared_maddr) };
    check("mapping the shared-info page (update_va_mapping)", rc);
    // SAFETY: the page now shows the domain's shared info, for good.
    let shared = unsafe { SharedInfo::new(shared_va as usize) };
    shared.mask_upcalls();
    if console.is_some() {
        shared.mask(console_port);
    }
    check(
        "registering the exception handlers (set_trap_table)",
        fault::install_pv(),
    );
    // The stack's guard page, and page 0 (Xen maps the bootstrap region from address 0),
    // so that an overflow or a null pointer faults.
    for (page, step) in [
        (
            stack_guard(),
            "unmapping the stack's guard page (update_va_mapping)",
        ),
        (0, "unmapping page 0 (update_va_mapping)"),
    ] {
        // SAFETY: the guard page is reserved in the bss below the stack and never used; page
        // 0 lies below the image, in bootstrap memory nothing uses.
        check(step, unsafe { hypercall::unmap_page(page) });
    }
    mirage_bare_metal::fault::set_stack_guard(stack_guard());
    // The xenstore page lies in the bootstrap region, mapped at its pseudo-physical address.
    let store = (!initial && store_mfn != 0).then(|| {
        // SAFETY: the machine-to-physical table covers the host's frames, `store_mfn` among
        // them.
        let pfn = unsafe { pv_memory::pfn_of_mfn(store_mfn) };
        ((pfn << 12) as usize, store_port)
    });
    set_machine(Machine::Xen {
        shared,
        console,
        initial,
        p2m: Some(mfn_list),
        store,
    });

    // The bootstrap region ends on a 4 MiB boundary at least 512 KiB past the bootstrap stack
    // (public/xen.h, "start of day memory layout"): that padding, and the domain's pages past
    // the region once mapped, are the heap.
    let start = align_up(boot_rsp, 4096);
    let mut region_end = align_up(start, 4 << 20);
    if region_end - start < 512 << 10 {
        region_end += 4 << 20;
    }
    // SAFETY: at boot, once, with start_info's values; the pages past the region are unused
    // and the scratch page is reserved for this.
    let end = unsafe { pv_memory::extend(region_end, nr_pages, mfn_list, pt_base) };
    // SAFETY: [start, end) is mapped and writable and holds nothing (ABI above, and
    // `extend`); the image's own stack is in its bss, below.
    unsafe { mirage_bare_metal::heap::init(start, end) };
    finish(&cmdline[..len])
}

/// `xen_base()` is the CPUID leaf where Xen's leaves start, if Xen is underneath.
fn xen_base() -> Option<u32> {
    (0x4000_0000..0x4001_0000).step_by(0x100).find(|&base| {
        let r = cpuid(base);
        (r.ebx, r.ecx, r.edx) == (0x566e_6558, 0x65584d4d, 0x4d4d566e) && r.eax >= base + 2
    })
}

/// What the PVH entry reads of `hvm_start_info` before it changes the page tables.
struct PvhStart {
    /// `SIF_INITDOMAIN` was set (a PVH dom0).
    initial: bool,
    /// The command line.
    cmdline: [u8; CMDLINE_MAX],
    /// Its length.
    cmdline_len: usize,
    /// The end of the RAM range holding the image's end (0 if the memory map says nothing).
    ram_end: u64,
}

/// `read_pvh_start(si)` reads `hvm_start_info` at physical address `si`, and the heap's end
/// from its memory map: the RAM entry holding `image_end`.
///
/// # Safety
///
/// `si` must be the `hvm_start_info` the loader passed, inside the identity map.
unsafe fn read_pvh_start(si: u64, image_end: u64) -> PvhStart {
    // SAFETY: the loader passes a `hvm_start_info` (public/arch-x86/hvm/start_info.h) below
    // 4 GiB, inside the identity map.
    let (magic, version, flags, cmdline_paddr, memmap_paddr, memmap_entries) = unsafe {
        (
            read::<u32>(si),
            read::<u32>(si + 4),
            read::<u32>(si + 8),
            read::<u64>(si + 24),
            read::<u64>(si + 40),
            read::<u32>(si + 48),
        )
    };
    let mut cmdline = [0u8; CMDLINE_MAX];
    let cmdline_len = if magic == HVM_START_MAGIC && cmdline_paddr != 0 {
        // SAFETY: the command line is a NUL-terminated string at a physical address below
        // 4 GiB, in loader memory under 1 MiB in practice.
        unsafe { copy_cstr(cmdline_paddr, &mut cmdline) }
    } else {
        0
    };
    let mut ram_end = 0;
    if magic == HVM_START_MAGIC && version >= 1 && memmap_paddr != 0 {
        for i in 0..u64::from(memmap_entries) {
            // SAFETY: `memmap_entries` entries of 24 bytes (addr, size, type) at
            // `memmap_paddr`, identity-mapped.
            let (addr, size, kind) = unsafe {
                let e = memmap_paddr + 24 * i;
                (read::<u64>(e), read::<u64>(e + 8), read::<u32>(e + 16))
            };
            if kind == 1 && addr <= image_end && image_end < addr.saturating_add(size) {
                ram_end = addr + size;
            }
        }
    }
    PvhStart {
        // A PVH dom0 (Xen's `dom0=pvh`) has the same flags as a PV one.
        initial: magic == HVM_START_MAGIC && flags & SIF_INITDOMAIN != 0,
        cmdline,
        cmdline_len,
        ram_end,
    }
}

/// The PVH entry, called by `_start32` once in long mode, with the physical address of
/// `hvm_start_info` (identity-mapped). As the PV entry, it checks what it depends on and
/// panics naming what failed.
#[no_mangle]
extern "C" fn mirage_xen_pvh_start(start_info: u32) -> ! {
    let image_end = align_up((&raw const _end) as u64, 4096);
    // SAFETY: the loader's `hvm_start_info`, read before the page tables change.
    let boot = unsafe { read_pvh_start(u64::from(start_info), image_end) };
    let xen = xen_base();
    match xen {
        Some(base) => {
            let msr = cpuid(base + 2).ebx;
            // SAFETY: ring 0; Xen's MSR (CPUID base + 2, EBX) fills the page at the written
            // physical address, a page of the bss reserved for it.
            unsafe { wrmsr(msr, hypercall::page()) };
            if !hypercall::page_is_filled() {
                set_entry(Entry::Pc);
                panic!("boot: Xen did not fill the hypercall page through its MSR");
            }
            set_entry(Entry::PvhXen);
        }
        None => set_entry(Entry::Pc),
    }
    // Page tables without page 0 (null pointers fault) nor the stack's guard page, and
    // exceptions on stacks of their own.
    // SAFETY: ring 0, at boot; the new tables map the first 4 GiB one-to-one as the boot
    // tables do, and the two pages left out hold nothing.
    if let Err(e) = unsafe { trap::load_identity_map(paging::MAX_TOP, &[0, stack_guard()]) } {
        panic!("boot: the page tables: {e}");
    }
    mirage_bare_metal::fault::set_stack_guard(stack_guard());
    // SAFETY: ring 0, once, at boot, interrupts off.
    unsafe { fault::install_ring0() };

    let machine = match xen {
        Some(_) => {
            let shared_pa = (&raw mut mirage_xen_shared_info_page) as u64;
            // SAFETY: the page is reserved in the bss for the shared info.
            let rc = unsafe {
                hypercall::add_to_physmap(hypercall::MAPSPACE_SHARED_INFO, 0, shared_pa >> 12)
            };
            check("placing the shared-info page (XENMEM_add_to_physmap)", rc);
            // SAFETY: Xen now shows the shared info there (identity-mapped), for good.
            let shared = unsafe { SharedInfo::new(shared_pa as usize) };
            shared.mask_upcalls();
            // HVM_PARAM_CONSOLE_PFN (17) and HVM_PARAM_CONSOLE_EVTCHN (18).
            let console = match (hypercall::hvm_param(17), hypercall::hvm_param(18)) {
                (Some(pfn), Some(port)) if pfn != 0 && pfn < (1 << 20) => {
                    shared.mask(port as u32);
                    // SAFETY: the console page is guest memory, identity-mapped below 4 GiB,
                    // and only the runtime writes it.
                    Some(unsafe { Ring::new((pfn << 12) as usize, port as u32) })
                }
                _ => None,
            };
            // HVM_PARAM_STORE_PFN (1) and HVM_PARAM_STORE_EVTCHN (2): a guest frame below
            // 4 GiB (xl puts it at 0xfeffc, past RAM), inside the identity map.
            let store = match (hypercall::hvm_param(1), hypercall::hvm_param(2)) {
                (Some(pfn), Some(port)) if !boot.initial && pfn != 0 && pfn < (1 << 20) => {
                    Some(((pfn << 12) as usize, port as u32))
                }
                _ => None,
            };
            Machine::Xen {
                shared,
                console,
                initial: boot.initial,
                p2m: None,
                store,
            }
        }
        None => {
            let boot_wall = pc::rtc_unix_secs(&mut pc::Hardware);
            let scale = TscScale::new(pc::tsc_hz());
            pc::init_timer();
            Machine::Pc {
                boot_tsc: mirage_bare_metal::rdtsc(),
                scale,
                boot_wall,
            }
        }
    };
    set_machine(machine);

    // The heap: the RAM range holding the image's end, capped by the 4 GiB identity map.
    let end = match boot.ram_end {
        0 => pc::memory_top(),
        end => end,
    };
    let end = end.min(paging::MAX_TOP) & !0xfff;
    // SAFETY: [image_end, end) is RAM past the image, identity-mapped, used by nothing else
    // (`init` leaves an empty or tiny range alone).
    unsafe { mirage_bare_metal::heap::init(image_end, end) };
    finish(&boot.cmdline[..boot.cmdline_len])
}
