//! x86_64: `_start`, `outl` and raw Linux system calls (RDRAND and the time-stamp counter are
//! `mirage-bare-metal`'s).

use core::arch::asm;
#[cfg(mirage_solo5_image)]
use core::arch::global_asm;

// The entry, for both tenders: RIP = e_entry, RSP = the top of guest memory minus 8 (so the
// stack is aligned as just after a call), RDI = the boot info (hvt 0x10000, spt 0x11000). The
// frame pointer is cleared so that backtraces end here, the direction flag cleared as the
// System V ABI requires, and control passes to the Rust side, which never returns. RDI = 0
// means Linux executed the image (its `execve` clears every register but RSP, which points at
// argc: `mirage_bare_metal::linux`): `mirage_solo5_linux_exec` gets RSP, says so and exits.
#[cfg(mirage_solo5_image)]
// SAFETY: `_start` only clears two registers and jumps to `mirage_solo5_start`, an
// `extern "C" fn(u64) -> !`, with the tender's arguments and stack untouched; or, under Linux,
// calls `mirage_solo5_linux_exec`, an `extern "C" fn(u64) -> !`, on Linux's 16-byte aligned
// stack.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    cld
    test %rdi, %rdi
    jz 1f
    jmp mirage_solo5_start
1:  mov %rsp, %rdi
    call mirage_solo5_linux_exec
    "#,
    options(att_syntax)
);

/// `outl(port, value)` writes a 32-bit word to an I/O port: an hvt hypercall.
///
/// # Safety
///
/// Under hvt, `port` must be a hypercall port and `value` the 32-bit address of that
/// hypercall's argument structure, valid for the tender to read and write for the duration.
pub(crate) unsafe fn outl(port: u16, value: u32) {
    // SAFETY: as the caller guarantees; the tender may write the structure back, hence no
    // `nomem`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack)) }
}

/// `syscall6(nr, args)` makes Linux system call `nr` and returns its raw result (a negative
/// errno on failure).
///
/// # Safety
///
/// The call and its arguments must be valid: pointers point to memory of the sizes the call
/// reads or writes.
pub(crate) unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: as the caller guarantees; `syscall` clobbers rcx and r11.
    unsafe {
        asm!("syscall",
             inlateout("rax") nr as i64 => ret,
             in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
             in("r10") a[3], in("r8") a[4], in("r9") a[5],
             lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret
}
