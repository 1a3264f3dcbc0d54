//! Hypercalls through the hypercall page, and the few argument structures the runtime uses
//! (Xen's `public/xen.h`, `sched.h`, `event_channel.h`, `memory.h`, `hvm/hvm_op.h`).
//!
//! On x86_64 a hypercall is a `call` to `hypercall_page + 32 * number`, with arguments in
//! `%rdi`, `%rsi`, `%rdx`, `%r10`, `%r8` and the result in `%rax`. Xen fills the page: for a
//! PV guest when it loads the image (`XEN_ELFNOTE_HYPERCALL_PAGE`), for a PVH guest when the
//! guest writes the page's address to the MSR that CPUID leaf `base + 2` names.

use core::arch::asm;

extern "C" {
    /// Filled by Xen (PV: at load; PVH: through the MSR); executed, never read as data.
    static mut mirage_xen_hypercall_page: [u8; 4096];
}

/// `HYPERVISOR_set_trap_table`.
const SET_TRAP_TABLE: usize = 0;
/// `HYPERVISOR_mmu_update`.
const MMU_UPDATE: usize = 1;
/// `HYPERVISOR_update_va_mapping`.
const UPDATE_VA_MAPPING: usize = 14;
/// `HYPERVISOR_console_io`.
const CONSOLE_IO: usize = 18;
/// `HYPERVISOR_memory_op`.
const MEMORY_OP: usize = 12;
/// `HYPERVISOR_sched_op`.
const SCHED_OP: usize = 29;
/// `HYPERVISOR_event_channel_op`.
const EVENT_CHANNEL_OP: usize = 32;
/// `HYPERVISOR_hvm_op`.
const HVM_OP: usize = 34;
/// `HYPERVISOR_grant_table_op`.
const GRANT_TABLE_OP: usize = 20;

/// `SHUTDOWN_*`: why a domain stops (`public/sched.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Reason {
    /// The domain's work is done: the toolstack destroys it.
    Poweroff = 0,
    /// Restart; for the initial domain, Xen resets the machine (QEMU `-no-reboot` exits).
    Reboot = 1,
    /// The domain failed: the toolstack applies `on_crash`, and Xen logs it.
    Crash = 3,
}

/// `page()` is the address of the hypercall page (0 in host builds, which have none and
/// never make hypercalls: `sys` checks that Xen is underneath first).
pub(crate) fn page() -> u64 {
    #[cfg(mirage_xen_image)]
    let page = (&raw mut mirage_xen_hypercall_page) as u64;
    #[cfg(not(mirage_xen_image))]
    let page = 0;
    page
}

/// The hypercalls the runtime makes, whose entries [`page_is_filled`] checks.
const USED: [usize; 9] = [
    SET_TRAP_TABLE,
    MMU_UPDATE,
    MEMORY_OP,
    UPDATE_VA_MAPPING,
    CONSOLE_IO,
    GRANT_TABLE_OP,
    SCHED_OP,
    EVENT_CHANNEL_OP,
    HVM_OP,
];

/// `entry_is_filled(entry, nr)` says whether `entry` (the start of a hypercall page's entry)
/// holds Xen's stub for hypercall `nr`: Xen writes `mov $nr, %eax` (`b8` and the number) in the
/// first bytes of each entry (at offset 0 for HVM and PVH guests, after pushes for PV), and
/// leaves nothing in a page it did not fill.
pub(crate) fn entry_is_filled(entry: &[u8; 8], nr: usize) -> bool {
    let want = [0xb8, nr as u8, (nr >> 8) as u8, 0, 0];
    entry.windows(5).any(|w| w == want)
}

/// `page_is_filled()` says whether Xen filled the hypercall page: each entry the runtime uses
/// holds its stub. (An unfilled page is zeros, and a call into it runs into the next entry
/// rather than reaching Xen: the failure would only show later, as a clock stuck at 0.)
pub(crate) fn page_is_filled() -> bool {
    let base = (&raw const mirage_xen_hypercall_page).cast::<u8>();
    USED.iter().all(|&nr| {
        let entry: [u8; 8] = core::array::from_fn(|i| {
            // SAFETY: `32 * nr + i` < 4096: inside the page, which Xen writes (hence
            // volatile) but which is always mapped and readable.
            unsafe { core::ptr::read_volatile(base.add(32 * nr + i)) }
        });
        entry_is_filled(&entry, nr)
    })
}

/// A `trap_info` entry of Xen's trap table (`public/arch-x86/xen.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrapInfo {
    /// The exception vector.
    pub(crate) vector: u8,
    /// Bits 0-1: the privilege level allowed to raise it with `int`; bit 2: mask events.
    pub(crate) flags: u8,
    /// The code segment (`FLAT_KERNEL_CS`).
    pub(crate) cs: u16,
    /// The handler; 0 ends the table.
    pub(crate) address: u64,
}

/// `FLAT_KERNEL_CS` of 64-bit PV guests.
pub(crate) const FLAT_KERNEL_CS: u16 = 0xe033;

/// `set_trap_table(table)` registers the PV guest's exception handlers (`set_trap_table`);
/// `table` ends with an entry whose address is 0. It returns Xen's result (0 or an error).
pub(crate) fn set_trap_table(table: &[TrapInfo]) -> i64 {
    assert!(
        table.last().is_some_and(|t| t.address == 0),
        "a trap table ends with a null entry"
    );
    // SAFETY: Xen reads `trap_info` entries up to the null one, which `table` holds.
    unsafe { call(SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0) }
}

/// `call(nr, a1, a2, a3)` makes hypercall `nr`.
///
/// # Safety
///
/// The hypercall page must be filled (by Xen for PV, by [`page`]'s MSR for PVH), and the
/// arguments must be what hypercall `nr` expects: pointers to live, correctly laid out
/// structures that Xen may read and write.
unsafe fn call(nr: usize, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: the caller upholds `call5`'s contract, which is this one; the fourth argument
    // register is passed as 0, which hypercalls of three arguments ignore.
    unsafe { call5(nr, a1, a2, a3, 0) }
}

/// `call5(nr, a1, a2, a3, a4)` is [`call`] with a fourth argument (in `%r10`).
///
/// # Safety
///
/// As [`call`].
unsafe fn call5(nr: usize, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let ret: i64;
    let entry = page() + 32 * nr as u64;
    // SAFETY: as `call`.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            lateout("rax") ret,
            out("rcx") _,
            out("r11") _,
            out("r8") _,
        );
    }
    ret
}

/// `console_write(bytes)` writes to Xen's console (`CONSOLEIO_write`), which only the
/// initial domain may do on a release build of Xen.
pub(crate) fn console_write(bytes: &[u8]) {
    // SAFETY: CONSOLEIO_write reads `len` bytes at `ptr`, which `bytes` provides.
    unsafe { call(CONSOLE_IO, 0, bytes.len() as u64, bytes.as_ptr() as u64) };
}

/// `shutdown(reason)` stops the domain; it does not return.
pub(crate) fn shutdown(reason: Reason) -> ! {
    #[repr(C)]
    struct SchedShutdown {
        reason: u32,
    }
    let arg = SchedShutdown {
        reason: reason as u32,
    };
    loop {
        // SAFETY: SCHEDOP_shutdown (2) reads one `sched_shutdown`.
        unsafe { call(SCHED_OP, 2, (&raw const arg) as u64, 0) };
    }
}

/// `poll(ports, timeout)` blocks the vCPU until an event is pending on one of `ports` (at
/// most 128) or Xen's system time reaches `timeout` (0: no timeout; see [`poll_timeout`]),
/// with event upcalls masked (`SCHEDOP_poll`).
pub(crate) fn poll(ports: &[u32], timeout: u64) -> i64 {
    #[repr(C)]
    struct SchedPoll {
        ports: u64,
        nr_ports: u32,
        _pad: u32,
        timeout: u64,
    }
    let arg = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len().min(MAX_POLL_PORTS) as u32,
        _pad: 0,
        timeout,
    };
    // SAFETY: SCHEDOP_poll (3) reads one `sched_poll` and `nr_ports` ports at `ports`.
    unsafe { call(SCHED_OP, 3, (&raw const arg) as u64, 0) }
}

/// The most ports one `SCHEDOP_poll` watches.
pub(crate) const MAX_POLL_PORTS: usize = 128;

/// `poll_timeout(deadline)` is `SCHEDOP_poll`'s timeout for a wait until `deadline` (Xen system
/// time, ns; `None`: forever). Xen reads the field as a signed `s_time_t` and takes 0 as "no
/// timeout", so a deadline past `i64::MAX` (such as `u64::MAX`, "sleep forever") is no
/// timeout rather than a negative time that would expire at once, and a deadline of 0 becomes
/// 1 (already passed) rather than "forever".
pub(crate) fn poll_timeout(deadline: Option<u64>) -> u64 {
    match deadline {
        Some(d) if d <= i64::MAX as u64 => d.max(1),
        _ => 0,
    }
}

/// `notify(port)` signals the other end of event channel `port` (`EVTCHNOP_send`).
pub(crate) fn notify(port: u32) {
    #[repr(C)]
    struct EvtchnSend {
        port: u32,
    }
    let arg = EvtchnSend { port };
    // SAFETY: EVTCHNOP_send (4) reads one `evtchn_send`.
    unsafe { call(EVENT_CHANNEL_OP, 4, (&raw const arg) as u64, 0) };
}

/// `alloc_unbound(remote)` is a new event channel port of ours that domain `remote` may bind
/// (`EVTCHNOP_alloc_unbound`), or Xen's (negative) error.
pub(crate) fn alloc_unbound(remote: u16) -> Result<u32, i64> {
    #[repr(C)]
    struct AllocUnbound {
        dom: u16,
        remote_dom: u16,
        port: u32,
    }
    let mut arg = AllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    // SAFETY: EVTCHNOP_alloc_unbound (6) reads and writes one `evtchn_alloc_unbound`.
    let rc = unsafe { call(EVENT_CHANNEL_OP, 6, (&raw mut arg) as u64, 0) };
    if rc == 0 {
        Ok(arg.port)
    } else {
        Err(rc)
    }
}

/// `close(port)` closes event channel `port` (`EVTCHNOP_close`).
pub(crate) fn close(port: u32) -> i64 {
    #[repr(C)]
    struct EvtchnClose {
        port: u32,
    }
    let arg = EvtchnClose { port };
    // SAFETY: EVTCHNOP_close (3) reads one `evtchn_close`.
    unsafe { call(EVENT_CHANNEL_OP, 3, (&raw const arg) as u64, 0) }
}

/// `grant_table_setup(frames)` asks Xen for a grant table of `frames.len()` frames and
/// fills `frames` with their machine frame numbers (PV: `GNTTABOP_setup_table`); it returns
/// the hypercall's or the operation's (negative) error.
pub(crate) fn grant_table_setup(frames: &mut [u64]) -> Result<(), i64> {
    #[repr(C)]
    struct SetupTable {
        dom: u16,
        _pad: u16,
        nr_frames: u32,
        status: i16,
        _pad2: [u8; 6],
        frame_list: u64,
    }
    const _: () = assert!(core::mem::size_of::<SetupTable>() == 24);
    let mut arg = SetupTable {
        dom: DOMID_SELF,
        _pad: 0,
        nr_frames: frames.len() as u32,
        status: 0,
        _pad2: [0; 6],
        frame_list: frames.as_mut_ptr() as u64,
    };
    // SAFETY: GNTTABOP_setup_table (2), one operation: Xen reads the `gnttab_setup_table` and
    // writes `nr_frames` frame numbers at `frame_list`, which `frames` holds.
    let rc = unsafe { call(GRANT_TABLE_OP, 2, (&raw mut arg) as u64, 1) };
    match (rc, arg.status) {
        (0, 0) => Ok(()),
        (0, status) => Err(i64::from(status)),
        (rc, _) => Err(rc),
    }
}

/// `map_frame(va, maddr)` makes the page at virtual address `va` show the machine page at
/// `maddr` (PV only: `update_va_mapping` with a present, writable, user, accessed, dirty
/// entry, flushing that address).
///
/// # Safety
///
/// `va` must be a page of the image that nothing else uses (its old frame is abandoned) and
/// `maddr` a frame the domain may map: its shared-info page or its console ring.
pub(crate) unsafe fn map_frame(va: u64, maddr: u64) -> i64 {
    const PTE: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x40;
    const UVMF_INVLPG: u64 = 2;
    // SAFETY: the caller vouches for `va` and `maddr`.
    unsafe { call(UPDATE_VA_MAPPING, va, (maddr & !0xfff) | PTE, UVMF_INVLPG) }
}

/// `unmap_page(va)` removes the mapping of the page at `va` (PV only).
///
/// # Safety
///
/// Nothing may use the page at `va` afterwards.
pub(crate) unsafe fn unmap_page(va: u64) -> i64 {
    const UVMF_INVLPG: u64 = 2;
    // SAFETY: the caller vouches that `va` is unused from now on.
    unsafe { call(UPDATE_VA_MAPPING, va, 0, UVMF_INVLPG) }
}

/// `set_pte(pte_maddr, value)` writes one page-table entry, at machine address `pte_maddr`,
/// through Xen, which checks it (`mmu_update`, `MMU_NORMAL_PT_UPDATE`).
///
/// # Safety
///
/// `pte_maddr` must be an entry of one of the domain's page tables, and `value` must map
/// memory nothing else relies on being unmapped.
pub(crate) unsafe fn set_pte(pte_maddr: u64, value: u64) -> i64 {
    #[repr(C)]
    struct MmuUpdate {
        ptr: u64,
        val: u64,
    }
    let req = MmuUpdate {
        ptr: pte_maddr & !7,
        val: value,
    };
    // SAFETY: one `mmu_update` request; no success count; DOMID_SELF.
    unsafe {
        call5(
            MMU_UPDATE,
            (&raw const req) as u64,
            1,
            0,
            u64::from(DOMID_SELF),
        )
    }
}

/// `XENMAPSPACE_shared_info`: [`add_to_physmap`] places the shared-info page.
pub(crate) const MAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: [`add_to_physmap`] places a frame of the grant table.
pub(crate) const MAPSPACE_GRANT_TABLE: u32 = 1;

/// `add_to_physmap(space, idx, gpfn)` asks Xen to put page `idx` of `space` (the shared-info
/// page, a grant-table frame) at guest frame `gpfn` (PVH: `XENMEM_add_to_physmap`); it
/// returns Xen's result (0, or a negative error).
///
/// # Safety
///
/// Frame `gpfn` must be a page of the image that nothing else uses: Xen frees the RAM that
/// was there.
pub(crate) unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> i64 {
    #[repr(C)]
    struct AddToPhysmap {
        domid: u16,
        size: u16,
        space: u32,
        idx: u64,
        gpfn: u64,
    }
    let arg = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: XENMEM_add_to_physmap (7) reads one `xen_add_to_physmap`; the caller vouches
    // for the frame it replaces.
    unsafe { call(MEMORY_OP, 7, (&raw const arg) as u64, 0) }
}

/// `DOMID_SELF`: the calling domain.
const DOMID_SELF: u16 = 0x7ff0;

/// `hvm_param(index)` is the value of HVM parameter `index` (`HVMOP_get_param`), or `None`.
pub(crate) fn hvm_param(index: u32) -> Option<u64> {
    #[repr(C)]
    struct HvmParam {
        domid: u16,
        _pad: u16,
        index: u32,
        value: u64,
    }
    let mut arg = HvmParam {
        domid: DOMID_SELF,
        _pad: 0,
        index,
        value: 0,
    };
    // SAFETY: HVMOP_get_param (1) reads and writes one `xen_hvm_param`.
    let rc = unsafe { call(HVM_OP, 1, (&raw mut arg) as u64, 0) };
    (rc == 0).then_some(arg.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_hypercall_entries_are_recognised() {
        // Xen's 64-bit PV stub: push %rcx; push %r11; mov $nr,%eax; syscall; ...
        let pv = [0x51, 0x41, 0x53, 0xb8, 29, 0, 0, 0];
        assert!(entry_is_filled(&pv, SCHED_OP));
        assert!(!entry_is_filled(&pv, EVENT_CHANNEL_OP));
        // HVM and PVH: mov $nr,%eax; vmcall (Intel) or vmmcall (AMD); ret.
        assert!(entry_is_filled(&[0xb8, 32, 0, 0, 0, 0x0f, 0x01, 0xc1], 32));
        assert!(entry_is_filled(&[0xb8, 34, 0, 0, 0, 0x0f, 0x01, 0xd9], 34));
        // A page Xen did not fill: zeros.
        assert!(!entry_is_filled(&[0; 8], 0));
        assert!(!entry_is_filled(&[0; 8], SCHED_OP));
        assert_eq!(core::mem::size_of::<TrapInfo>(), 16);
    }

    #[test]
    fn poll_timeouts_are_signed_absolute_times_with_zero_for_none() {
        assert_eq!(poll_timeout(None), 0);
        // "Sleep forever" (a deadline of u64::MAX) is -1 as Xen's s_time_t: it must mean
        // no timeout, not a time long past.
        assert_eq!(poll_timeout(Some(u64::MAX)), 0);
        assert_eq!(poll_timeout(Some(i64::MAX as u64 + 1)), 0);
        assert_eq!(poll_timeout(Some(i64::MAX as u64)), i64::MAX as u64);
        assert_eq!(poll_timeout(Some(5_000_000_000)), 5_000_000_000);
        // 0 would be "no timeout": an expired deadline stays expired.
        assert_eq!(poll_timeout(Some(0)), 1);
    }
}
