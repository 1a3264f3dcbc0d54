//! Everything that touches the tender: the boot info, the manifest the tender filled in, and
//! the two ABIs ([`hvt`]: hypercalls by port I/O; [`spt`]: the raw system calls spt's seccomp
//! filter allows), one of which the image's cfg selects as `abi`.
//!
//! The rest of the crate sees a small safe surface: [`console_write`], [`now_ns`],
//! [`wall_clock`], [`wait`], [`exit`], [`cmdline`], [`device`], and the net and block
//! transfers.
#![allow(unsafe_code)]

#[cfg(mirage_solo5_image)]
mod boot;
#[cfg(all(mirage_solo5_image, not(mirage_solo5_spt)))]
mod fault;
pub(crate) mod hvt;
pub(crate) mod spt;

#[cfg(not(mirage_solo5_spt))]
pub(crate) use hvt as abi;
#[cfg(mirage_solo5_spt)]
pub(crate) use spt as abi;

use alloc::string::String;
use alloc::vec::Vec;

use mirage_devices::Timestamp;
use mirage_runtime::{Interest, Readiness};
use spin::{Mutex, Once};

use crate::notes::Kind;

/// What the entry needs from the tender's boot info (`struct hvt_boot_info` or
/// `struct spt_boot_info`), read by the ABI's `read_boot_info`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BootInfo {
    /// The guest's memory size (the stack starts at its top).
    pub(crate) mem_size: u64,
    /// The command line's address (NUL-terminated).
    pub(crate) cmdline: u64,
    /// The filled-in manifest's address.
    pub(crate) mft: u64,
}

/// A device the tender attached, from its copy of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Device {
    /// Its name in the manifest.
    pub(crate) name: String,
    /// Its kind.
    pub(crate) kind: Kind,
    /// Its Solo5 handle: its index in the manifest.
    pub(crate) handle: usize,
    /// spt: the host file descriptor the tender opened for it.
    pub(crate) hostfd: i32,
    /// Block: the capacity in bytes.
    pub(crate) capacity: u64,
    /// Block: the block size in bytes.
    pub(crate) block_size: u16,
    /// Net: the MAC address.
    pub(crate) mac: [u8; 6],
    /// Net: the MTU.
    pub(crate) mtu: u16,
}

/// What the entry read from the boot info.
#[derive(Debug)]
pub(crate) struct Boot {
    /// The tender's arguments after the image, joined by spaces.
    pub(crate) cmdline: &'static str,
    /// The attached devices.
    pub(crate) devices: Vec<Device>,
}

static BOOT: Once<Boot> = Once::new();

/// The tasks waiting for a net device (by handle) to have a frame.
static WAITERS: Mutex<Option<Readiness<usize>>> = Mutex::new(None);

/// `set_boot(b)` records the boot info (the entry only, once).
pub(crate) fn set_boot(b: Boot) {
    BOOT.call_once(|| b);
}

/// `cmdline()` is the tender's arguments after the image ("" before boot).
pub(crate) fn cmdline() -> &'static str {
    BOOT.get().map_or("", |b| b.cmdline)
}

/// `device(name, kind)` is the attached device `name` of `kind`, if the manifest has it.
pub(crate) fn device(name: &str, kind: Kind) -> Option<Device> {
    BOOT.get()?
        .devices
        .iter()
        .find(|d| d.name == name && d.kind == kind)
        .cloned()
}

/// `console_write(bytes)` writes `bytes` to the tender's standard output.
pub(crate) fn console_write(bytes: &[u8]) {
    abi::console_write(bytes);
}

/// `now_ns()` is the monotonic clock.
pub(crate) fn now_ns() -> u64 {
    abi::now_ns()
}

/// `wall_clock()` is the host's POSIX time.
pub(crate) fn wall_clock() -> Timestamp {
    let ns = abi::wall_ns();
    Timestamp {
        secs: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as u32,
    }
}

/// `register(handle, waker)` wakes `waker` once net device `handle` may have a frame.
pub(crate) fn register(handle: usize, waker: &core::task::Waker) {
    WAITERS
        .lock()
        .get_or_insert_with(Readiness::default)
        .register(handle, Interest::READ, waker);
}

/// `deregister(handle, waker)` withdraws `waker`'s interest in `handle`.
pub(crate) fn deregister(handle: usize, waker: &core::task::Waker) {
    if let Some(w) = WAITERS.lock().as_mut() {
        w.deregister(handle, waker);
    }
}

/// `wait(deadline)` yields to the tender until a net device has a frame or the monotonic clock
/// reaches `deadline` (Solo5's `solo5_yield`), then wakes the tasks waiting on ready devices.
pub(crate) fn wait(deadline: Option<u64>) {
    let now = now_ns();
    let ready = match deadline {
        // Already passed: no blocking; let every waiter check its device.
        Some(d) if d <= now => u64::MAX,
        _ => abi::yield_until(deadline, now),
    };
    if ready == 0 {
        return;
    }
    if let Some(w) = WAITERS.lock().as_mut() {
        for (handle, _) in w.sources() {
            if handle < 64 && ready & (1 << handle) != 0 {
                w.ready(handle, Interest::READ);
            }
        }
    }
}

/// `exit(code)` ends the image; the tender exits with status `code`.
pub(crate) fn exit(code: i32) -> ! {
    abi::exit(code)
}

/// Why a transfer failed: Solo5's result code, or the host's errno (spt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoError {
    /// Nothing to read now (`SOLO5_R_AGAIN`, `EAGAIN`).
    Again,
    /// Any other failure, with its code.
    Failed(i32),
}

/// `net_read(dev, buf)` reads one frame into `buf` without waiting.
pub(crate) fn net_read(dev: &Device, buf: &mut [u8]) -> Result<usize, IoError> {
    abi::net_read(dev, buf)
}

/// `net_write(dev, frame)` sends one frame.
pub(crate) fn net_write(dev: &Device, frame: &[u8]) -> Result<(), IoError> {
    abi::net_write(dev, frame)
}

/// `block_read(dev, offset, buf)` reads one block at byte `offset`.
pub(crate) fn block_read(dev: &Device, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
    abi::block_read(dev, offset, buf)
}

/// `block_write(dev, offset, data)` writes one block at byte `offset`.
pub(crate) fn block_write(dev: &Device, offset: u64, data: &[u8]) -> Result<(), IoError> {
    abi::block_write(dev, offset, data)
}

/// `parse_manifest(bytes)` is the attached devices of the tender's copy of the manifest
/// (`struct mft`: version, entry count, 104-byte entries; entry 0 is reserved).
pub(crate) fn parse_manifest(bytes: &[u8]) -> Vec<Device> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
    let mut out = Vec::new();
    if bytes.len() < 8 {
        return out;
    }
    let count = u32_at(4) as usize;
    for handle in 1..count.min(crate::notes::MFT_MAX_ENTRIES) {
        let base = 8 + handle * crate::notes::MFT_ENTRY_SIZE;
        let Some(e) = bytes.get(base..base + crate::notes::MFT_ENTRY_SIZE) else {
            break;
        };
        let kind = match u32::from_le_bytes([e[68], e[69], e[70], e[71]]) {
            1 => Kind::Block,
            2 => Kind::Net,
            _ => continue,
        };
        if e[96] == 0 {
            continue;
        }
        let name_len = e[..68].iter().position(|&b| b == 0).unwrap_or(67);
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&e[72..78]);
        out.push(Device {
            name: mirage_bare_metal::cmdline::lossy(&e[..name_len]),
            kind,
            handle,
            hostfd: i32::from_le_bytes([e[88], e[89], e[90], e[91]]),
            capacity: u64::from_le_bytes(e[72..80].try_into().unwrap_or([0; 8])),
            block_size: u16::from_le_bytes([e[80], e[81]]),
            mac,
            mtu: u16::from_le_bytes([e[78], e[79]]),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenders_manifest_copy_gives_the_attached_devices() {
        let mut m = alloc::vec![0u8; 8 + 3 * 104];
        m[0] = 1;
        m[4] = 3;
        // Entry 1: net "service", attached, MAC 02:..:06, MTU 1500, fd 7.
        let e1 = 8 + 104;
        m[e1..e1 + 7].copy_from_slice(b"service");
        m[e1 + 68] = 2;
        m[e1 + 72..e1 + 78].copy_from_slice(&[2, 2, 3, 4, 5, 6]);
        m[e1 + 78..e1 + 80].copy_from_slice(&1500u16.to_le_bytes());
        m[e1 + 88] = 7;
        m[e1 + 96] = 1;
        // Entry 2: block "t", not attached: left out.
        let e2 = 8 + 208;
        m[e2] = b't';
        m[e2 + 68] = 1;
        let devices = parse_manifest(&m);
        assert_eq!(devices.len(), 1);
        let d = &devices[0];
        assert_eq!(
            (d.name.as_str(), d.kind, d.handle),
            ("service", Kind::Net, 1)
        );
        assert_eq!((d.mac, d.mtu, d.hostfd), ([2, 2, 3, 4, 5, 6], 1500, 7));
    }
}
