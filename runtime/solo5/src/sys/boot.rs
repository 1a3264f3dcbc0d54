//! The Rust side of `_start`: read the boot info, set up the heap, keep the command line and
//! the attached devices, run the image's `main!` and exit with its code. Also the ABI note and
//! the panic handler, which exist only in images.

use alloc::vec::Vec;

use super::{abi, exit, parse_manifest, set_boot, Boot};
use crate::notes::{self, Abi1Note};

extern "C" {
    /// The end of the image, page-aligned (`solo5.ld`).
    static _end: u8;
    /// The image's manifest note (`solo5.ld`), as [`notes::MftNote`] lays it out.
    static mirage_solo5_manifest_note: u8;
}

extern "Rust" {
    /// Defined by [`main!`](crate::main) in the image's crate.
    fn __mirage_solo5_main() -> i32;
}

/// The ABI note: which tender runs this image.
#[cfg(not(mirage_solo5_spt))]
#[used]
#[link_section = ".note.solo5.abi"]
static ABI_NOTE: Abi1Note = Abi1Note::new(notes::ABI_TARGET_HVT);

/// The ABI note: which tender runs this image.
#[cfg(mirage_solo5_spt)]
#[used]
#[link_section = ".note.solo5.abi"]
static ABI_NOTE: Abi1Note = Abi1Note::new(notes::ABI_TARGET_SPT);

/// The size of both tenders' command-line buffers (`HVT_CMDLINE_SIZE`, `SPT_CMDLINE_SIZE`).
const CMDLINE_MAX: usize = 8192;
/// The stack the heap leaves at the top of memory (at most a quarter of it).
const STACK: u64 = 1 << 20;
/// The page between the heap's end and the stack's bottom: hvt leaves it out of the page
/// tables (a guard page: an overflow faults there), spt can only leave it unused (the
/// tender's filter forbids `mprotect`), a gap an overflow crosses before it reaches the heap.
const GUARD: u64 = 4096;

/// `copy_cstr(addr, max)` is the bytes of the NUL-terminated string at `addr`, at most `max`.
///
/// # Safety
///
/// `addr` must be readable up to its NUL or `max` bytes.
unsafe fn copy_cstr(addr: u64, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        // SAFETY: as the caller guarantees.
        let b = unsafe { core::ptr::read_volatile((addr + out.len() as u64) as *const u8) };
        if b == 0 {
            break;
        }
        out.push(b);
    }
    out
}

/// The entry's Rust side: `_start` jumps here with the tender's boot info.
#[no_mangle]
extern "C" fn mirage_solo5_start(boot_info: u64) -> ! {
    // SAFETY: `_start` passes the boot info the tender left in `%rdi`.
    let info = unsafe { abi::read_boot_info(boot_info) };
    // The stack grows down from the top of memory; below it, a guard page, then the heap
    // down to the image's end.
    let start = core::ptr::addr_of!(_end) as u64;
    let stack = (STACK.min(info.mem_size.saturating_sub(start) / 4) + GUARD - 1) & !(GUARD - 1);
    let guard = info.mem_size.saturating_sub(stack + GUARD) & !(GUARD - 1);
    #[cfg(not(mirage_solo5_spt))]
    // SAFETY: hvt, at boot, once: the tender's page tables map guest memory one-to-one and
    // run the guest in ring 0 with interrupts off; page 0 and the guard page hold nothing
    // (the boot info is at 0x10000, the image at 1 MiB).
    unsafe {
        super::fault::install(info.mem_size, guard)
    };
    // SAFETY: both tenders give the guest all memory up to `mem_size` (hvt: one memory slot
    // from 0; spt: an anonymous mapping from 0x10000); what lies past the image's end is free
    // but for the stack, which grows down from `mem_size` and is left `stack` bytes and the
    // guard page below it; this is the only call.
    unsafe { mirage_bare_metal::heap::init(start, guard) };
    // SAFETY: the tender wrote a NUL-terminated command line of at most `CMDLINE_MAX` bytes.
    let cmdline = unsafe { copy_cstr(info.cmdline, CMDLINE_MAX) };
    let count = {
        // SAFETY: the manifest copy starts with its version and entry count.
        let n = unsafe { core::ptr::read_volatile((info.mft + 4) as *const u32) };
        (n as usize).min(notes::MFT_MAX_ENTRIES)
    };
    let len = 8 + count * notes::MFT_ENTRY_SIZE;
    // SAFETY: the tender's manifest copy holds `count` entries after its 8-byte header.
    let mft = unsafe { core::slice::from_raw_parts(info.mft as *const u8, len) };
    set_boot(Boot {
        cmdline: mirage_bare_metal::cmdline::lossy(&cmdline).leak(),
        devices: parse_manifest(mft),
    });
    // SAFETY: `main!` defines `__mirage_solo5_main` in every image's crate; the heap, clock,
    // command line and devices are ready.
    let code = unsafe { __mirage_solo5_main() };
    exit(code)
}

/// The image's devices, from its manifest note: the name and kind of each entry but the
/// reserved first one.
fn manifest_devices() -> impl Iterator<Item = (&'static str, u32)> {
    let note = core::ptr::addr_of!(mirage_solo5_manifest_note) as usize;
    // The note: `Elf64_Nhdr` (12 bytes), the name (8), padding (4), then `struct mft`: its
    // version, its entry count, the entries, the reserved one first.
    let mft = note + 24;
    // SAFETY: the note is in the image's read-only segment, mapped whether a tender or Linux
    // loaded the image; its `struct mft` header is two `u32`s.
    let count = unsafe { core::ptr::read((mft + 4) as *const u32) } as usize;
    (1..count.min(notes::MFT_MAX_ENTRIES)).map(move |i| {
        let entry = mft + 8 + i * notes::MFT_ENTRY_SIZE;
        // SAFETY: entry `i < count` of the note: a NUL-padded name of `MFT_NAME_SIZE` bytes,
        // then its kind; the note lives as long as the image.
        let (name, kind) = unsafe {
            (
                core::slice::from_raw_parts(entry as *const u8, notes::MFT_NAME_SIZE),
                core::ptr::read((entry + notes::MFT_NAME_SIZE) as *const u32),
            )
        };
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        (core::str::from_utf8(name).unwrap_or("?"), kind)
    })
}

/// The entry's other side: `_start` comes here, with the stack pointer, when Linux executed
/// the image instead of a tender booting it (`%rdi` was 0; see `mirage_bare_metal::linux`).
/// It says what the image is and the tender command that boots it, with its devices from the
/// manifest, and exits 64.
#[no_mangle]
extern "C" fn mirage_solo5_linux_exec(sp: u64) -> ! {
    use core::fmt::Write;
    let abi = if cfg!(mirage_solo5_spt) { "spt" } else { "hvt" };
    let say = |path: &str, line: &mut mirage_bare_metal::linux::Line| {
        let _ = write!(
            line,
            "{path}: a Solo5 {abi} unikernel, not a Linux program; boot it with `solo5-{abi} --mem=64"
        );
        for (name, kind) in manifest_devices() {
            let _ = if kind == notes::Kind::Net as u32 {
                write!(line, " --net:{name}=TAP")
            } else {
                write!(line, " --block:{name}=FILE")
            };
        }
        let _ = write!(
            line,
            " -- {path} [--KEY=VALUE...]` (Solo5's tender), or `mirage-nix run -t {abi}` in its \
             unikernel's folder"
        );
    };
    // SAFETY: Linux's `execve` left `sp` pointing at argc and argv (the entry checked that
    // Linux, not a tender, entered it).
    unsafe { mirage_bare_metal::linux::explain(sp as usize, "the image", say) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    mirage_bare_metal::panic::report(info, super::console_write);
    // SOLO5_EXIT_ABORT.
    exit(255)
}
