//! Reading the time-stamp counter.

use core::arch::asm;

/// `rdtsc()` is the time-stamp counter, read after every earlier load has completed (`lfence;
/// rdtsc`): a clock that reads a calibration point (Xen's `vcpu_time_info`, a boot-time
/// reading) and then the counter must not get a counter value from before that point, which a
/// bare `rdtsc`, executed out of order, can give.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: LFENCE and RDTSC only order execution and read the counter, which the tenders and
    // Xen let guests read (CR4.TSD clear). No `nomem`: the compiler must not move the caller's
    // loads of the calibration point past the counter read either.
    unsafe {
        asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, preserves_flags))
    };
    u64::from(hi) << 32 | u64::from(lo)
}
