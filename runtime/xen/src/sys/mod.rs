//! Everything that touches the machine or the hypervisor: boot, hypercalls, the shared-info
//! page, the console ring, the PC devices of a bare PVH boot, the heap and the panic handler.
//!
//! The rest of the crate sees a small safe surface: [`console_write`], [`now_ns`],
//! [`wall_clock`], [`wait`], [`cmdline`] and [`exit`], all reading the
//! [`Machine`] that boot code records once.
#![allow(unsafe_code)]

#[cfg(mirage_xen_image)]
mod boot;
pub(crate) mod hypercall;
#[cfg(mirage_xen_image)]
mod panic;
pub(crate) mod pc;
#[cfg(mirage_xen_image)]
mod pv_memory;
pub(crate) mod ring;
pub(crate) mod shared_info;

use mirage_devices::Timestamp;
use spin::Once;

use crate::arch;
use hypercall::Reason;
use mirage_bare_metal::tsc::TscScale;
use ring::Ring;
use shared_info::SharedInfo;

/// How the image was booted, and what it talks to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Machine {
    /// A guest of Xen (PV, or PVH with Xen detected).
    Xen {
        /// The shared-info page: clocks and event bits.
        shared: SharedInfo,
        /// The console: Xen's own for the initial domain, else the PV ring.
        console: Option<Ring>,
        /// Whether this is the initial domain (dom0), which has no toolstack to report to.
        initial: bool,
    },
    /// A PVH boot on a PC without Xen (`qemu -kernel`).
    Pc {
        /// The time-stamp counter at boot.
        boot_tsc: u64,
        /// Its rate.
        scale: TscScale,
        /// The CMOS clock's date at boot, in POSIX seconds.
        boot_wall: i64,
    },
}

static MACHINE: Once<Machine> = Once::new();
static CMDLINE: Once<&'static str> = Once::new();

/// `set_machine(m)` records how the image booted (boot code only, once).
pub(crate) fn set_machine(m: Machine) {
    MACHINE.call_once(|| m);
}

/// `set_cmdline(c)` records the command line (boot code only, once).
pub(crate) fn set_cmdline(c: &'static str) {
    CMDLINE.call_once(|| c);
}

/// `cmdline()` is the domain's command line ("" before boot code set it).
pub(crate) fn cmdline() -> &'static str {
    CMDLINE.get().copied().unwrap_or("")
}

/// `console_write(bytes)` writes `bytes` to the console, waiting until it took them all.
pub(crate) fn console_write(bytes: &[u8]) {
    match MACHINE.get() {
        Some(Machine::Xen {
            shared,
            console: Some(ring),
            ..
        }) => ring.write(bytes, shared),
        Some(Machine::Xen { console: None, .. }) => hypercall::console_write(bytes),
        Some(Machine::Pc { .. }) | None => pc::serial_write(bytes),
    }
}

/// `now_ns()` is the monotonic clock: Xen's system time, or the time since boot on a PC.
pub(crate) fn now_ns() -> u64 {
    match MACHINE.get() {
        Some(Machine::Xen { shared, .. }) => shared.system_time_ns(),
        Some(Machine::Pc {
            boot_tsc, scale, ..
        }) => scale.ns(arch::rdtsc().wrapping_sub(*boot_tsc)),
        None => 0,
    }
}

/// `wall_clock()` is the current POSIX time.
pub(crate) fn wall_clock() -> Timestamp {
    let (secs, nanos) = match MACHINE.get() {
        Some(Machine::Xen { shared, .. }) => {
            let (secs, nsec) = shared.wall_clock_base();
            let ns = u128::from(secs) * 1_000_000_000 + u128::from(nsec) + u128::from(now_ns());
            (ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
        }
        Some(Machine::Pc { boot_wall, .. }) => {
            let ns = now_ns();
            (
                *boot_wall as u128 + u128::from(ns / 1_000_000_000),
                (ns % 1_000_000_000) as u32,
            )
        }
        None => (0, 0),
    };
    Timestamp {
        secs: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos,
    }
}

/// `wait(deadline)` blocks until the monotonic clock reaches `deadline` (forever if `None`):
/// `SCHEDOP_poll` with a timeout on Xen, so the vCPU sleeps; a spin on a PC, which has no
/// interrupts enabled to wake a halted processor.
pub(crate) fn wait(deadline: Option<u64>) {
    if deadline.is_some_and(|d| d <= now_ns()) {
        return;
    }
    match MACHINE.get() {
        Some(Machine::Xen { .. }) => hypercall::poll(&[], deadline.map_or(0, |d| d.max(1))),
        Some(Machine::Pc { .. }) | None => match deadline {
            Some(d) => {
                while now_ns() < d {
                    arch::pause();
                }
            }
            None => arch::halt_forever(),
        },
    }
}

/// `exit(code)` ends the image: on Xen, `code` 0 shuts the domain down with reason poweroff
/// (reboot for the initial domain, whose poweroff would only halt the machine) and any other
/// code with reason crash, so that the toolstack's `on_crash` and Xen's log tell the failure;
/// on a PC, QEMU exits with status `(code << 1) | 1` through `isa-debug-exit`.
pub(crate) fn exit(code: i32) -> ! {
    match MACHINE.get() {
        Some(Machine::Xen { initial, .. }) => hypercall::shutdown(shutdown_reason(code, *initial)),
        Some(Machine::Pc { .. }) | None => pc::exit(u8::try_from(code).unwrap_or(1)),
    }
}

/// `shutdown_reason(code, initial)` is the reason a Xen domain that ends with `code` gives.
pub(crate) fn shutdown_reason(code: i32, initial: bool) -> Reason {
    match (code, initial) {
        (0, false) => Reason::Poweroff,
        (0, true) => Reason::Reboot,
        _ => Reason::Crash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_powers_off_and_failure_crashes() {
        assert_eq!(shutdown_reason(0, false), Reason::Poweroff);
        assert_eq!(shutdown_reason(0, true), Reason::Reboot);
        assert_eq!(shutdown_reason(64, false), Reason::Crash);
        assert_eq!(shutdown_reason(1, true), Reason::Crash);
    }
}
