//! The processor's random number generator, RDRAND.

use core::arch::asm;

/// `has_rdrand()` says whether the processor has RDRAND (CPUID.1:ECX bit 30).
fn has_rdrand() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0
}

/// `random_u64()` is a random word from RDRAND, or `None` if the processor has none or it
/// failed ten times in a row.
pub fn random_u64() -> Option<u64> {
    if !has_rdrand() {
        return None;
    }
    for _ in 0..10 {
        let (value, ok): (u64, u8);
        // SAFETY: RDRAND writes only its output register and the carry flag; the processor
        // has it (checked above).
        unsafe {
            asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok,
                 options(nomem, nostack));
        }
        if ok == 1 {
            return Some(value);
        }
    }
    None
}
