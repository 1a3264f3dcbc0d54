//! The PC devices a PVH image uses when no Xen is underneath (booted by `qemu -kernel`):
//! the COM1 UART for the console, PIT channel 2 to measure the time-stamp counter's rate, the
//! CMOS clock for the date and its memory size registers, and QEMU's `isa-debug-exit` port
//! (else ACPI S5 on port 0x604) to stop.

use crate::arch::{halt_forever, inb, outb, outw, pause, rdtsc};
use crate::time::{civil_to_unix, from_bcd};

const COM1: u16 = 0x3f8;

/// `serial_write(bytes)` writes `bytes` to COM1, waiting for the transmitter each time.
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

/// `tsc_hz()` is the time-stamp counter's rate, measured against 50 ms of PIT channel 2
/// (1.193182 MHz), or 1 GHz if the PIT does not answer.
pub(crate) fn tsc_hz() -> u64 {
    const PIT_HZ: u64 = 1_193_182;
    const COUNT: u16 = 59_659; // 50 ms
                               // SAFETY: port 0x61 gates PIT channel 2 (bit 0) and the speaker (bit 1, left off); 0x43
                               // and 0x42 program channel 2 in mode 0, whose output (0x61 bit 5) rises at terminal
                               // count. Nothing else uses channel 2.
    unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) | 0x01);
        outb(0x43, 0b1011_0000);
        outb(0x42, COUNT as u8);
        outb(0x42, (COUNT >> 8) as u8);
        let start = rdtsc();
        let mut spins = 0u64;
        while inb(0x61) & 0x20 == 0 {
            spins += 1;
            if spins > 500_000_000 {
                return 1_000_000_000;
            }
        }
        let ticks = rdtsc().wrapping_sub(start);
        outb(0x61, gate);
        ticks * PIT_HZ / u64::from(COUNT)
    }
}

fn cmos(reg: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 select and read a CMOS register; bit 7 of the index is left
    // clear (NMIs stay as they are, and interrupts are off anyway).
    unsafe {
        outb(0x70, reg & 0x7f);
        inb(0x71)
    }
}

/// `rtc_unix_secs()` is the CMOS clock's date and time as POSIX seconds (the clock holds UTC
/// under QEMU), read twice until both reads agree.
pub(crate) fn rtc_unix_secs() -> i64 {
    let read = || {
        while cmos(0x0a) & 0x80 != 0 {
            pause();
        }
        [
            cmos(0x00),
            cmos(0x02),
            cmos(0x04),
            cmos(0x07),
            cmos(0x08),
            cmos(0x09),
            cmos(0x32),
        ]
    };
    let mut t = read();
    loop {
        let again = read();
        if again == t {
            break;
        }
        t = again;
    }
    let status_b = cmos(0x0b);
    let bin = |v: u8| if status_b & 0x04 != 0 { v } else { from_bcd(v) };
    let hour = if status_b & 0x02 == 0 && t[2] & 0x80 != 0 {
        (bin(t[2] & 0x7f) % 12) + 12
    } else {
        bin(t[2] & 0x7f)
    };
    let century = match bin(t[6]) {
        c @ 19..=21 => i64::from(c),
        _ => 20,
    };
    let year = century * 100 + i64::from(bin(t[5]));
    civil_to_unix(year, bin(t[4]), bin(t[3]), hour, bin(t[1]), bin(t[0]))
}

/// `memory_top()` is the end of RAM above 1 MiB that the CMOS registers report (QEMU fills
/// them): a fallback when the PVH start info has no memory map.
pub(crate) fn memory_top() -> u64 {
    let above_16m = u64::from(cmos(0x34)) | u64::from(cmos(0x35)) << 8;
    if above_16m != 0 {
        return (16 << 20) + (above_16m << 16);
    }
    let above_1m = u64::from(cmos(0x30)) | u64::from(cmos(0x31)) << 8;
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
