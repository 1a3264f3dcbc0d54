//! The two Linux system calls an image makes when it was executed as a Linux process rather
//! than booted ([`crate::linux`]), and the process's first argument, read from the stack
//! Linux's `execve` built.

use core::arch::asm;

/// Linux x86-64 `write`.
const SYS_WRITE: u64 = 1;
/// Linux x86-64 `exit_group`.
const SYS_EXIT_GROUP: u64 = 231;

/// `write_stderr(bytes)` writes `bytes` to file descriptor 2, as far as `write` takes them.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n: i64;
        // SAFETY: `write(2, bytes, len)` reads `len` bytes of a live slice; `syscall`
        // clobbers rcx and r11 only.
        unsafe {
            asm!("syscall",
                 inlateout("rax") SYS_WRITE as i64 => n,
                 in("rdi") 2u64, in("rsi") bytes.as_ptr(), in("rdx") bytes.len(),
                 lateout("rcx") _, lateout("r11") _,
                 options(nostack, readonly));
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[(n as usize).min(bytes.len())..];
    }
}

/// `exit_group(code)` ends the process with status `code`.
pub(crate) fn exit_group(code: i32) -> ! {
    // SAFETY: `exit_group` takes an integer and does not return.
    unsafe {
        asm!("syscall", in("rax") SYS_EXIT_GROUP, in("rdi") code as i64 as u64,
             options(noreturn, nostack));
    }
}

/// `argv0(sp)` is the process's first argument (the path it was executed by), at most 256
/// bytes of it, or `None` if it has none.
///
/// # Safety
///
/// `sp` must be the stack pointer Linux's `execve` gave the ELF entry: `argc` at `sp`, then
/// `argc` pointers to NUL-terminated strings.
pub(crate) unsafe fn argv0(sp: usize) -> Option<&'static [u8]> {
    // SAFETY: as the caller guarantees, `sp` holds argc and `sp + 8` argv[0] when argc > 0.
    let (argc, arg) = unsafe {
        (
            core::ptr::read(sp as *const u64),
            core::ptr::read((sp + 8) as *const *const u8),
        )
    };
    if argc == 0 || arg.is_null() {
        return None;
    }
    let mut len = 0;
    // SAFETY: argv[0] is NUL-terminated; the scan stops at the NUL or at 256 bytes.
    while len < 256 && unsafe { *arg.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read; the process's strings live as long as it does.
    Some(unsafe { core::slice::from_raw_parts(arg, len) })
}
