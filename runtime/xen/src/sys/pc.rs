//! The PC devices a PVH image uses when no Xen is underneath (booted by `qemu -kernel`):
//! the COM1 UART for the console, PIT channel 2 to measure the time-stamp counter's rate, PIT
//! channel 0 and the PICs to sleep halted until a deadline, the CMOS clock for the date and its
//! memory size registers, and QEMU's `isa-debug-exit` port (else ACPI S5 on port 0x604) to
//! stop.
//!
//! Every wait on this hardware is bounded and has a fallback, since a machine may lack a
//! device or a device may be stuck: the UART's transmitter (a byte is sent anyway), the PIT
//! (CPUID's advertised rate, else 1 GHz) and the CMOS clock's update cycle (the last reading,
//! or the epoch if the clock reads as nonsense). The measurements are written against
//! [`Ports`] and [`Cmos`], so that tests play the hardware, stuck devices included.

use crate::arch::{cpuid, halt_forever, inb, outb, outw, pause};
use crate::time::{civil_to_unix, from_bcd};

const COM1: u16 = 0x3f8;

/// `serial_write(bytes)` writes `bytes` to COM1, waiting for the transmitter each time (at
/// most a million polls: a stuck UART costs time, not the image).
pub(crate) fn serial_write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: COM1's line status register (base + 5) and transmit register (base) are
        // the PC's standard UART; reading the status and writing a byte have no other effect.
        unsafe {
            let mut spins = 0u32;
            while inb(COM1 + 5) & 0x20 == 0 && spins < 1_000_000 {
                spins += 1;
                pause();
            }
            outb(COM1, b);
        }
    }
}

/// The I/O ports and counter a rate measurement uses ([`Hardware`] on a PC).
pub(crate) trait Ports {
    /// Reads port `port`.
    fn inb(&mut self, port: u16) -> u8;
    /// Writes `v` to port `port`.
    fn outb(&mut self, port: u16, v: u8);
    /// The time-stamp counter.
    fn tsc(&mut self) -> u64;
}

/// The PC's own ports and counter.
pub(crate) struct Hardware;

impl Ports for Hardware {
    fn inb(&mut self, port: u16) -> u8 {
        // SAFETY: only the PIT (0x40-0x43), its gate (0x61) and the CMOS (0x70/0x71) are
        // read through this, each as the PC defines; nothing else uses them.
        unsafe { inb(port) }
    }

    fn outb(&mut self, port: u16, v: u8) {
        // SAFETY: as `inb`: the PIT's channel 2 (never the system timer) and its gate, with
        // the speaker left off, and the CMOS index register with NMIs left as they are.
        unsafe { outb(port, v) }
    }

    fn tsc(&mut self) -> u64 {
        mirage_bare_metal::rdtsc()
    }
}

impl Cmos for Hardware {
    fn read(&mut self, reg: u8) -> u8 {
        self.outb(0x70, reg & 0x7f);
        self.inb(0x71)
    }
}

/// `init_timer()` readies the PC's interrupt controllers for [`sleep_until`]: the two 8259
/// PICs remapped to vectors 32-47 (their BIOS vectors overlap the exceptions), every line
/// masked but IRQ0, PIT channel 0's. Interrupts stay disabled but while the processor halts.
pub(crate) fn init_timer() {
    let mut ports = Hardware;
    for (port, value) in [
        // ICW1: edge-triggered, cascade, ICW4 follows; ICW2: the vector base; ICW3: the
        // slave on line 2; ICW4: 8086 mode.
        (0x20, 0x11),
        (0xa0, 0x11),
        (0x21, 0x20),
        (0xa1, 0x28),
        (0x21, 0x04),
        (0xa1, 0x02),
        (0x21, 0x01),
        (0xa1, 0x01),
        // OCW1: mask all but IRQ0.
        (0x21, 0xfe),
        (0xa1, 0xff),
    ] {
        ports.outb(port, value);
    }
}

/// `sleep_until(deadline, now)` halts the processor until the clock `now` reads `deadline`:
/// PIT channel 0 counts down at most 55 ms at a time (mode 0: IRQ0 at terminal count), and
/// the processor sleeps in `hlt` until its interrupt, rather than spinning.
pub(crate) fn sleep_until(deadline: u64, now: impl Fn() -> u64) {
    let mut ports = Hardware;
    loop {
        let left = deadline.saturating_sub(now());
        if left == 0 {
            return;
        }
        let ticks = (u128::from(left) * u128::from(PIT_HZ) / 1_000_000_000).clamp(1, 0xffff);
        // Channel 0, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
        ports.outb(0x43, 0b0011_0000);
        ports.outb(0x40, ticks as u8);
        ports.outb(0x40, (ticks >> 8) as u8);
        crate::arch::halt_until_interrupt();
    }
}

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// The count that takes 50 ms.
const PIT_COUNT: u16 = 59_659;
/// The most reads of the PIT's output while it counts: about 250,000 take the 50 ms at QEMU's
/// speed and fewer on hardware; the bound ends a measurement on a PIT that never finishes in
/// at most a few seconds.
const PIT_MAX_READS: u32 = 4_000_000;
/// Rates outside this are a broken measurement, not a counter (10 MHz to 100 GHz).
const SANE_HZ: core::ops::RangeInclusive<u64> = 10_000_000..=100_000_000_000;
/// The rate assumed when neither the PIT nor CPUID gives one.
pub(crate) const FALLBACK_HZ: u64 = 1_000_000_000;

/// `measure_tsc_hz(ports)` is the counter's rate measured against 50 ms of PIT channel 2 in
/// mode 0, whose output (port 0x61, bit 5) rises at terminal count; `None` if the PIT does not
/// behave (its output already high, never rising within [`PIT_MAX_READS`], or a rate outside
/// [`SANE_HZ`]).
pub(crate) fn measure_tsc_hz(ports: &mut impl Ports) -> Option<u64> {
    let gate = ports.inb(0x61);
    // Gate channel 2 on, speaker off; channel 2, lobyte/hibyte, mode 0, binary.
    ports.outb(0x61, (gate & !0x02) | 0x01);
    ports.outb(0x43, 0b1011_0000);
    ports.outb(0x42, PIT_COUNT as u8);
    ports.outb(0x42, (PIT_COUNT >> 8) as u8);
    let start = ports.tsc();
    let mut result = None;
    if ports.inb(0x61) & 0x20 == 0 {
        for _ in 0..PIT_MAX_READS {
            if ports.inb(0x61) & 0x20 != 0 {
                let ticks = ports.tsc().saturating_sub(start);
                let hz = u128::from(ticks) * u128::from(PIT_HZ) / u128::from(PIT_COUNT);
                result = u64::try_from(hz).ok().filter(|hz| SANE_HZ.contains(hz));
                break;
            }
        }
    }
    ports.outb(0x61, gate);
    result
}

/// `cpuid_tsc_hz()` is the counter's rate as CPUID advertises it: leaf 0x15 (crystal clock
/// times the counter's ratio), else leaf 0x16 (the base frequency), else `None`.
fn cpuid_tsc_hz() -> Option<u64> {
    let max = cpuid(0).eax;
    if max >= 0x15 {
        let r = cpuid(0x15);
        if r.eax != 0 && r.ebx != 0 && r.ecx != 0 {
            return Some(u64::from(r.ecx) * u64::from(r.ebx) / u64::from(r.eax));
        }
    }
    if max >= 0x16 {
        let mhz = cpuid(0x16).eax & 0xffff;
        if mhz != 0 {
            return Some(u64::from(mhz) * 1_000_000);
        }
    }
    None
}

/// `tsc_hz()` is the time-stamp counter's rate: measured against the PIT, else CPUID's, else
/// [`FALLBACK_HZ`].
pub(crate) fn tsc_hz() -> u64 {
    measure_tsc_hz(&mut Hardware)
        .or_else(cpuid_tsc_hz)
        .unwrap_or(FALLBACK_HZ)
}

/// The CMOS registers (index port 0x70, data port 0x71; [`Hardware`] on a PC).
pub(crate) trait Cmos {
    /// Reads register `reg`.
    fn read(&mut self, reg: u8) -> u8;
}

/// The most reads of status register A waiting for an update cycle to end (one lasts under
/// 2 ms; a clock stuck updating costs at most this many reads).
const CMOS_MAX_UIP_READS: u32 = 100_000;
/// The most times the clock is read looking for two identical readings in a row.
const CMOS_MAX_READINGS: u32 = 5;

/// `read_rtc(cmos)` is the clock's registers (seconds, minutes, hours, day, month, year,
/// century), read after any update cycle and until two readings agree, both bounded: a clock
/// that never settles gives its last reading.
fn read_rtc(cmos: &mut impl Cmos) -> [u8; 7] {
    let mut read = || {
        let mut reads = 0;
        while cmos.read(0x0a) & 0x80 != 0 && reads < CMOS_MAX_UIP_READS {
            reads += 1;
            pause();
        }
        [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map(|reg| cmos.read(reg))
    };
    let mut last = read();
    for _ in 1..CMOS_MAX_READINGS {
        let again = read();
        if again == last {
            break;
        }
        last = again;
    }
    last
}

/// `rtc_to_unix(t, status_b)` is the POSIX time of the clock's registers `t` (as
/// [`read_rtc`] orders them) in the format status register B gives (BCD or binary, 12 or 24
/// hours), or `None` if they are no date (a machine without a CMOS clock reads 0xff).
pub(crate) fn rtc_to_unix(t: [u8; 7], status_b: u8) -> Option<i64> {
    let bin = |v: u8| {
        if status_b & 0x04 != 0 {
            Some(v)
        } else if v >> 4 < 10 && v & 0x0f < 10 {
            Some(from_bcd(v))
        } else {
            None
        }
    };
    let pm = status_b & 0x02 == 0 && t[2] & 0x80 != 0;
    let hour12 = bin(t[2] & 0x7f)?;
    let hour = match (status_b & 0x02 == 0, pm) {
        (true, true) => hour12 % 12 + 12,
        (true, false) => hour12 % 12,
        (false, _) => hour12,
    };
    let (second, minute, day, month, year) =
        (bin(t[0])?, bin(t[1])?, bin(t[3])?, bin(t[4])?, bin(t[5])?);
    let century = match bin(t[6]) {
        Some(c @ 19..=21) => i64::from(c),
        _ => 20,
    };
    let valid = second < 60
        && minute < 60
        && hour < 24
        && (1..=31).contains(&day)
        && (1..=12).contains(&month)
        && year < 100;
    valid.then(|| {
        civil_to_unix(
            century * 100 + i64::from(year),
            month,
            day,
            hour,
            minute,
            second,
        )
    })
}

/// `rtc_unix_secs(cmos)` is the CMOS clock's date and time as POSIX seconds (the clock holds
/// UTC under QEMU), or 0 (the epoch) if the clock reads as no date.
pub(crate) fn rtc_unix_secs(cmos: &mut impl Cmos) -> i64 {
    let t = read_rtc(cmos);
    rtc_to_unix(t, cmos.read(0x0b)).unwrap_or(0)
}

/// `memory_top()` is the end of RAM above 1 MiB that the CMOS registers report (QEMU fills
/// them): a fallback when the PVH start info has no memory map.
pub(crate) fn memory_top() -> u64 {
    let mut cmos = Hardware;
    let mut reg = |r| u64::from(cmos.read(r));
    let above_16m = reg(0x34) | reg(0x35) << 8;
    if above_16m != 0 {
        return (16 << 20) + (above_16m << 16);
    }
    let above_1m = reg(0x30) | reg(0x31) << 8;
    (1 << 20) + (above_1m << 10)
}

/// `exit(code)` ends QEMU with status `(code << 1) | 1` through `isa-debug-exit` at port
/// 0xf4 if the machine has one, else powers off through ACPI (QEMU's PIIX4 PM block at
/// 0x600), else halts.
pub(crate) fn exit(code: u8) -> ! {
    // SAFETY: writing to 0xf4 ends QEMU when `-device isa-debug-exit,iobase=0xf4` is present
    // and is ignored otherwise; 0x2000 to PM1a_CNT (0x604) is S5 (soft off) on QEMU's PC.
    unsafe {
        outb(0xf4, code);
        outw(0x604, 0x2000);
    }
    halt_forever()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PIT whose output rises after `rises_after` reads of port 0x61 (never if `None`, at
    /// once if 0), with a counter that advances `per_read` ticks a read.
    struct FakePit {
        rises_after: Option<u32>,
        per_read: u64,
        reads: u32,
        tsc: u64,
        gate: Option<u8>,
    }

    impl Ports for FakePit {
        fn inb(&mut self, port: u16) -> u8 {
            assert_eq!(port, 0x61);
            self.tsc += self.per_read;
            let first = self.reads == 0;
            self.reads += 1;
            match self.rises_after {
                _ if first => 0x10,
                Some(n) if self.reads > n => 0x30,
                _ => 0x10,
            }
        }
        fn outb(&mut self, port: u16, v: u8) {
            if port == 0x61 {
                self.gate = Some(v);
            }
        }
        fn tsc(&mut self) -> u64 {
            self.tsc
        }
    }

    fn pit(rises_after: Option<u32>, per_read: u64) -> FakePit {
        FakePit {
            rises_after,
            per_read,
            reads: 0,
            tsc: 1 << 40,
            gate: None,
        }
    }

    #[test]
    fn the_pit_measures_the_counter() {
        // 100,000 reads of 1,000 ticks each in 50 ms: 2 GHz.
        let mut p = pit(Some(100_001), 1000);
        let hz = measure_tsc_hz(&mut p).unwrap();
        assert!((1_999_000_000..=2_001_000_000).contains(&hz), "{hz}");
        assert_eq!(p.gate, Some(0x10), "the gate is put back");
    }

    #[test]
    fn a_pit_that_never_finishes_costs_a_bounded_wait_and_falls_back() {
        // The defect: the wait spun up to 5 x 10^8 port reads (minutes under emulation).
        let mut p = pit(None, 10);
        assert_eq!(measure_tsc_hz(&mut p), None);
        assert_eq!(p.reads, PIT_MAX_READS + 2);
        assert_eq!(p.gate, Some(0x10));
    }

    #[test]
    fn a_missing_or_nonsensical_pit_is_no_measurement() {
        // No PIT: the port reads 0xff, the output is "high" from the start.
        struct Absent;
        impl Ports for Absent {
            fn inb(&mut self, _: u16) -> u8 {
                0xff
            }
            fn outb(&mut self, _: u16, _: u8) {}
            fn tsc(&mut self) -> u64 {
                0
            }
        }
        assert_eq!(measure_tsc_hz(&mut Absent), None);
        // A rate of 2 MHz (the counter barely moved) is not believed.
        assert_eq!(measure_tsc_hz(&mut pit(Some(1000), 100)), None);
    }

    /// A CMOS clock at 2026-11-27 12:30:05 in BCD, 24 hours, with a stuck update flag or
    /// readings that change each time if asked.
    struct FakeCmos {
        stuck_updating: bool,
        ticking: bool,
        reads: u32,
        seconds: u8,
    }

    impl Cmos for FakeCmos {
        fn read(&mut self, reg: u8) -> u8 {
            self.reads += 1;
            match reg {
                0x0a => u8::from(self.stuck_updating) << 7,
                0x0b => 0x02,
                0x00 => {
                    if self.ticking {
                        self.seconds = (self.seconds + 1) % 60;
                    }
                    ((self.seconds / 10) << 4) | (self.seconds % 10)
                }
                0x02 => 0x30,
                0x04 => 0x12,
                0x07 => 0x27,
                0x08 => 0x11,
                0x09 => 0x26,
                0x32 => 0x20,
                _ => 0,
            }
        }
    }

    fn cmos(stuck_updating: bool, ticking: bool) -> FakeCmos {
        FakeCmos {
            stuck_updating,
            ticking,
            reads: 0,
            seconds: 5,
        }
    }

    #[test]
    fn the_cmos_clock_gives_the_date() {
        assert_eq!(rtc_unix_secs(&mut cmos(false, false)), 1_795_782_605);
    }

    #[test]
    fn a_cmos_clock_stuck_updating_or_never_settling_costs_bounded_reads() {
        // The defect: the update-in-progress wait and the "read until two readings agree"
        // loop were unbounded.
        let mut stuck = cmos(true, false);
        assert_eq!(rtc_unix_secs(&mut stuck), 1_795_782_605);
        assert!(stuck.reads <= 2 * (CMOS_MAX_UIP_READS + 8) + 1);
        let mut ticking = cmos(false, true);
        let t = rtc_unix_secs(&mut ticking);
        assert!((1_795_782_600..1_795_782_660).contains(&t), "{t}");
        assert!(ticking.reads <= CMOS_MAX_READINGS * 9 + 1);
    }

    #[test]
    fn a_clock_that_reads_as_nonsense_is_the_epoch() {
        // No CMOS: every register reads 0xff.
        struct Absent;
        impl Cmos for Absent {
            fn read(&mut self, reg: u8) -> u8 {
                if reg == 0x0a {
                    0
                } else {
                    0xff
                }
            }
        }
        assert_eq!(rtc_unix_secs(&mut Absent), 0);
        assert_eq!(rtc_to_unix([0x61, 0, 0, 1, 1, 0, 0x20], 0x02), None);
        assert_eq!(rtc_to_unix([0, 0, 0, 1, 0x13, 0, 0x20], 0x02), None);
        // Binary mode and a 12-hour clock at 12:30 PM and 12:30 AM.
        assert_eq!(
            rtc_to_unix([5, 30, 0x80 | 12, 27, 11, 26, 20], 0x04),
            Some(1_795_782_605)
        );
        assert_eq!(
            rtc_to_unix([5, 30, 12, 27, 11, 26, 20], 0x04),
            Some(1_795_782_605 - 12 * 3600)
        );
    }
}
