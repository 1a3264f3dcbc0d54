//! Reading the shared-info page: the vCPU's `vcpu_time_info` (system time) and the wall
//! clock (`public/xen.h`, x86_64 layout), and clearing pending event bits.

use core::ptr::read_volatile;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use mirage_bare_metal::rdtsc;

use crate::time::TimeInfo;

/// Offset of vCPU 0's `vcpu_info.evtchn_upcall_mask`.
const UPCALL_MASK: usize = 1;
/// Offset of vCPU 0's `vcpu_info.arch.cr2`: a PV guest's last page-fault address.
const CR2: usize = 16;
/// Offset of vCPU 0's `vcpu_info.time` (a `vcpu_time_info`).
const TIME: usize = 32;
/// Offset of `evtchn_pending[]` (after 32 `vcpu_info`s of 64 bytes).
const EVTCHN_PENDING: usize = 2048;
/// Offset of `evtchn_mask[]`.
const EVTCHN_MASK: usize = 2560;
/// The event channel ports of the 2-level ABI: 64 words of 64 bits.
const PORTS: u32 = 4096;
/// Offsets of `wc_version`, `wc_sec`, `wc_nsec`, `wc_sec_hi`.
const WC_VERSION: usize = 3072;
const WC_SEC: usize = 3076;
const WC_NSEC: usize = 3080;
const WC_SEC_HI: usize = 3084;

/// `SharedInfo` is the mapped shared-info page of a Xen guest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedInfo {
    base: usize,
}

impl SharedInfo {
    /// `new(base)` is the page mapped at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be where this domain's shared-info page is mapped, for the rest of the
    /// program.
    pub(crate) unsafe fn new(base: usize) -> SharedInfo {
        SharedInfo { base }
    }

    fn read<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: `new`'s contract: the page stays mapped; offsets are within it and aligned
        // for their types; Xen updates the fields concurrently, hence volatile.
        unsafe { read_volatile((self.base + offset) as *const T) }
    }

    /// `mask_upcalls()` sets vCPU 0's upcall mask: events are never delivered as callbacks,
    /// only observed by polling.
    pub(crate) fn mask_upcalls(&self) {
        // SAFETY: as `read`; the guest owns this byte of its `vcpu_info`.
        unsafe { core::ptr::write_volatile((self.base + UPCALL_MASK) as *mut u8, 1) };
    }

    /// `cr2()` is the address of the vCPU's last page fault, which Xen writes for PV guests
    /// (they cannot read CR2).
    pub(crate) fn cr2(&self) -> u64 {
        self.read(CR2)
    }

    /// `system_time_ns()` is Xen's system time (ns since the host booted), extrapolated from
    /// the last update with the time-stamp counter under the version seqlock (not clamped:
    /// `sys::now_ns` keeps the clock monotonic).
    pub(crate) fn system_time_ns(&self) -> u64 {
        loop {
            let version: u32 = self.read(TIME);
            if version & 1 == 1 {
                continue;
            }
            fence(Ordering::Acquire);
            let info = TimeInfo {
                tsc_timestamp: self.read(TIME + 8),
                system_time: self.read(TIME + 16),
                tsc_to_system_mul: self.read(TIME + 24),
                tsc_shift: self.read(TIME + 28),
            };
            // After the sample's loads (`rdtsc` is `lfence; rdtsc`).
            let tsc = rdtsc();
            fence(Ordering::Acquire);
            if self.read::<u32>(TIME) == version {
                return info.system_time_at(tsc);
            }
        }
    }

    /// `wall_clock_base()` is the wall-clock time (seconds, nanoseconds since 1970) at system
    /// time 0.
    pub(crate) fn wall_clock_base(&self) -> (u64, u32) {
        loop {
            let version: u32 = self.read(WC_VERSION);
            if version & 1 == 1 {
                continue;
            }
            fence(Ordering::Acquire);
            let secs =
                u64::from(self.read::<u32>(WC_SEC)) | u64::from(self.read::<u32>(WC_SEC_HI)) << 32;
            let nsec: u32 = self.read(WC_NSEC);
            fence(Ordering::Acquire);
            if self.read::<u32>(WC_VERSION) == version {
                return (secs, nsec);
            }
        }
    }

    /// `event_word(array, port)` is the word of `array` (pending or mask bits) holding
    /// `port`'s bit, as an atomic: Xen sets and clears bits of these words atomically.
    fn event_word(&self, array: usize, port: u32) -> &AtomicU64 {
        assert!(port < PORTS, "event channel port {port} out of range");
        let word = self.base + array + (port as usize / 64) * 8;
        // SAFETY: `new`'s contract: the page stays mapped; the word is inside it (port <
        // 4096) and 8-byte aligned; all our accesses to it are atomic.
        unsafe { AtomicU64::from_ptr(word as *mut u64) }
    }

    /// `clear_pending(port)` clears the pending bit of event channel `port`, so that a poll on
    /// it waits for the next event.
    pub(crate) fn clear_pending(&self, port: u32) {
        self.take_pending(port);
    }

    /// `take_pending(port)` clears the pending bit of `port` and says whether it was set: an
    /// atomic AND, so an event Xen signals at the same time is either taken now or left
    /// pending for the next poll, never lost.
    pub(crate) fn take_pending(&self, port: u32) -> bool {
        let bit = 1u64 << (port % 64);
        self.event_word(EVTCHN_PENDING, port)
            .fetch_and(!bit, Ordering::SeqCst)
            & bit
            != 0
    }

    /// `mask(port)` masks event channel `port`: Xen still sets its pending bit and wakes a
    /// poll on it, but raises no upcall (which this runtime never takes).
    pub(crate) fn mask(&self, port: u32) {
        let bit = 1u64 << (port % 64);
        self.event_word(EVTCHN_MASK, port)
            .fetch_or(bit, Ordering::SeqCst);
    }
}
