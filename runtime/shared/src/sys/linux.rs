//! An image executed as a Linux process instead of booted: it says what it is and how to boot
//! it, on one line of standard error, and exits with status 64 (a usage error) rather than
//! crash.
//!
//! Telling the two apart, at the ELF entry, before anything else runs: Linux's `execve`
//! (binfmt_elf's `ELF_PLAT_INIT` on x86-64) clears every general register but `%rsp`, which
//! points at `argc`, `argv` and the environment; the hypervisors and tenders always pass
//! their start structure in a register: the Solo5 tenders the boot info's address in `%rdi`
//! (0x10000 under hvt, 0x11000 under spt), Xen a PV guest's `start_info` (a virtual address
//! inside the guest, never 0) in `%rsi`, and a PVH guest enters at the 32-bit
//! `XEN_ELFNOTE_PHYS32_ENTRY`, which Linux never uses (the ELF entry is the 64-bit PV one).
//! So `%rdi == 0` at a Solo5 entry, or `%rsi == 0` at the Xen PV entry, is a Linux exec; the
//! entry then calls into its runtime with `%rsp`, and the runtime calls [`explain`].

use core::fmt::Write;

use crate::arch::linux as sys;

/// The exit status of an image executed as a Linux process: a usage error (`EX_USAGE`, as
/// for bad boot arguments).
pub const NOT_BOOTED: i32 = 64;

/// One line of text, written without the heap (which is not set up yet): at most 2 KiB, the
/// rest cut.
pub struct Line {
    buf: [u8; 2048],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Line {
        Line {
            buf: [0; 2048],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `explain(sp, say)` writes the line `say` makes, given the path the image was executed by
/// (`argv[0]`, or the image's name if it has none), to standard error, a newline after it,
/// and exits with [`NOT_BOOTED`].
///
/// # Safety
///
/// `sp` must be the stack pointer Linux's `execve` gave the ELF entry (the entry checked that
/// it was executed, not booted).
pub unsafe fn explain(sp: usize, fallback: &str, say: impl FnOnce(&str, &mut Line)) -> ! {
    // SAFETY: as the caller guarantees.
    let argv0 = unsafe { sys::argv0(sp) };
    let path = argv0
        .and_then(|a| core::str::from_utf8(a).ok())
        .unwrap_or(fallback);
    let mut line = Line::new();
    say(path, &mut line);
    let _ = line.write_str("\n");
    sys::write_stderr(line.as_bytes());
    sys::exit_group(NOT_BOOTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_at_its_size() {
        let mut l = Line::new();
        write!(l, "{}", "x".repeat(3000)).unwrap();
        assert_eq!(l.as_bytes().len(), 2048);
        let mut l = Line::new();
        write!(l, "a {} b", 1).unwrap();
        assert_eq!(l.as_bytes(), b"a 1 b");
    }
}
