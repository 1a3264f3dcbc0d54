//! The instructions the runtime uses directly: CPUID, port I/O and halting (RDRAND and the
//! time-stamp counter are `mirage-bare-metal`'s).

use core::arch::asm;
use core::arch::x86_64::{__cpuid, CpuidResult};

/// `cpuid(leaf)` is what CPUID reports for `leaf` (sub-leaf 0).
pub(crate) fn cpuid(leaf: u32) -> CpuidResult {
    __cpuid(leaf)
}

/// `outb(port, v)` writes a byte to an I/O port.
///
/// # Safety
///
/// The caller must know what the device at `port` does with `v` (only used on PVH under a
/// plain hypervisor, where the ports are the PC's).
pub(crate) unsafe fn outb(port: u16, v: u8) {
    // SAFETY: the caller vouches for the device; OUT touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack)) }
}

/// `outw(port, v)` writes a 16-bit word to an I/O port.
///
/// # Safety
///
/// As [`outb`].
pub(crate) unsafe fn outw(port: u16, v: u16) {
    // SAFETY: the caller vouches for the device; OUT touches no memory.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack)) }
}

/// `inb(port)` reads a byte from an I/O port.
///
/// # Safety
///
/// As [`outb`]: reading some ports has side effects.
pub(crate) unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: the caller vouches for the device; IN touches no memory.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack)) }
    v
}

/// `wrmsr(msr, value)` writes a model-specific register.
///
/// # Safety
///
/// Only in ring 0 (PVH), with an MSR whose effect the caller knows.
pub(crate) unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: as the caller vouches; WRMSR writes no memory the compiler knows of, but the
    // hypercall-page MSR makes Xen write a page, hence no `nomem`.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack));
    }
}

/// `halt_forever()` stops the processor with interrupts off (ring 0 only).
pub(crate) fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this processor; it is the end of the program.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

/// `halt_until_interrupt()` halts the processor with interrupts enabled until one comes,
/// then disables them again (ring 0 only). `sti` takes effect after the next instruction, so
/// an interrupt already pending wakes the `hlt` rather than slipping in before it.
pub(crate) fn halt_until_interrupt() {
    // SAFETY: interrupts are enabled only while halted; their handlers (the PICs' vectors,
    // `mirage-bare-metal`'s IDT) run on a stack of their own and return.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) }
}

/// `undefined_instruction()` raises #UD (`ud2`): with no handler registered yet, Xen crashes
/// the PV domain that does it (`domain_crash` in its log).
pub(crate) fn undefined_instruction() -> ! {
    // SAFETY: UD2 only raises an exception; it does not return.
    unsafe { asm!("ud2", options(nomem, nostack, noreturn)) }
}

/// `pause()` hints a spin-wait loop.
pub(crate) fn pause() {
    core::hint::spin_loop();
}
