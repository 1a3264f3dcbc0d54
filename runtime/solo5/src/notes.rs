//! The two ELF notes a Solo5 image carries, laid out byte for byte as Solo5's
//! `include/elf_abi.h` and `include/mft_abi.h` define them: the ABI note (`ABI1`, in section
//! `.note.solo5.abi`) saying which tender runs the image, and the manifest note (`MFT1`, in
//! `.note.solo5.manifest`) listing the devices the tender must attach.
//!
//! The runtime emits the ABI note itself; the image's crate declares its manifest with
//! [`manifest!`](crate::manifest), which the generator writes from the plan.

/// The note name, `"Solo5\0"` padded to 4 bytes (`n_namesz` is 6).
pub const NOTE_NAME: [u8; 8] = *b"Solo5\0\0\0";
/// `n_type` of the ABI note: `"ABI1"`.
pub const ABI1_TYPE: u32 = 0x3149_4241;
/// `n_type` of the manifest note: `"MFT1"`.
pub const MFT1_TYPE: u32 = 0x3154_464d;
/// The ABI version of both hvt and spt (`HVT_ABI_VERSION`, `SPT_ABI_VERSION`).
pub const ABI_VERSION: u32 = 2;
/// `abi_target` of hvt.
pub const ABI_TARGET_HVT: u32 = 1;
/// `abi_target` of spt.
pub const ABI_TARGET_SPT: u32 = 2;
/// The manifest format's version (`MFT_VERSION`).
pub const MFT_VERSION: u32 = 1;
/// The length of a manifest entry's name field, NUL included (`MFT_NAME_SIZE`).
pub const MFT_NAME_SIZE: usize = 68;
/// The most entries a manifest holds, the reserved first one included (`MFT_MAX_ENTRIES`).
pub const MFT_MAX_ENTRIES: usize = 64;
/// The size of a manifest entry.
pub const MFT_ENTRY_SIZE: usize = 104;

/// The ABI note: `Elf64_Nhdr`, the name, and `struct abi1_info`.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug)]
pub struct Abi1Note {
    namesz: u32,
    descsz: u32,
    kind: u32,
    name: [u8; 8],
    target: u32,
    version: u32,
    reserved: [u32; 2],
}

impl Abi1Note {
    /// `new(target)` is the ABI note of `target` ([`ABI_TARGET_HVT`] or [`ABI_TARGET_SPT`]) at
    /// [`ABI_VERSION`].
    pub const fn new(target: u32) -> Abi1Note {
        Abi1Note {
            namesz: 6,
            descsz: 16,
            kind: ABI1_TYPE,
            name: NOTE_NAME,
            target,
            version: ABI_VERSION,
            reserved: [0; 2],
        }
    }
}

/// A device's kind in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// `MFT_DEV_BLOCK_BASIC`.
    Block = 1,
    /// `MFT_DEV_NET_BASIC`.
    Net = 2,
    /// `MFT_RESERVED_FIRST`, the kind of the reserved entry 0.
    ReservedFirst = 1 << 30,
}

/// `struct mft_entry` as it is in the image: the name and kind; the tender fills in the rest.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct MftEntry {
    name: [u8; MFT_NAME_SIZE],
    kind: u32,
    info: [u8; 16],
    host: u64,
    attached: u8,
    pad: [u8; 7],
}

impl MftEntry {
    /// The reserved entry 0: no name, kind [`Kind::ReservedFirst`].
    pub const RESERVED: MftEntry = MftEntry::empty(Kind::ReservedFirst);

    const fn empty(kind: Kind) -> MftEntry {
        MftEntry {
            name: [0; MFT_NAME_SIZE],
            kind: kind as u32,
            info: [0; 16],
            host: 0,
            attached: 0,
            pad: [0; 7],
        }
    }

    /// `new(name, kind)` is the entry of device `name`; names are 1 to 67 ASCII letters and
    /// digits, which is checked when the image is compiled.
    pub const fn new(name: &str, kind: Kind) -> MftEntry {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() < MFT_NAME_SIZE,
            "a Solo5 device name has 1 to 67 characters"
        );
        let mut entry = MftEntry::empty(kind);
        let mut i = 0;
        while i < bytes.len() {
            assert!(
                bytes[i].is_ascii_alphanumeric(),
                "a Solo5 device name has only ASCII letters and digits"
            );
            entry.name[i] = bytes[i];
            i += 1;
        }
        entry
    }
}

/// The manifest note: `Elf64_Nhdr`, the name, 4 bytes of padding (the descriptor is 8-aligned,
/// `MFT1_NOTE_ALIGN`), then `struct mft` with `N` entries, the reserved one first.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct MftNote<const N: usize> {
    namesz: u32,
    descsz: u32,
    kind: u32,
    name: [u8; 8],
    pad: u32,
    version: u32,
    entries: u32,
    entry: [MftEntry; N],
}

impl<const N: usize> MftNote<N> {
    /// `new(devices)` is the manifest of `devices` (the reserved entry 0 is added): `N` must be
    /// `devices.len() + 1`, at most [`MFT_MAX_ENTRIES`], and names must be distinct, which is
    /// checked when the image is compiled.
    pub const fn new(devices: &[MftEntry]) -> MftNote<N> {
        assert!(N == devices.len() + 1, "N counts the devices and entry 0");
        assert!(
            N <= MFT_MAX_ENTRIES,
            "a Solo5 manifest holds at most 63 devices"
        );
        let mut entry = [MftEntry::RESERVED; N];
        let mut i = 0;
        while i < devices.len() {
            let mut j = 0;
            while j < i {
                assert!(
                    !same_name(&devices[i].name, &devices[j].name),
                    "two Solo5 devices have the same name"
                );
                j += 1;
            }
            entry[i + 1] = devices[i];
            i += 1;
        }
        MftNote {
            namesz: 6,
            descsz: (4 + 8 + N * MFT_ENTRY_SIZE) as u32,
            kind: MFT1_TYPE,
            name: NOTE_NAME,
            pad: 0,
            version: MFT_VERSION,
            entries: N as u32,
            entry,
        }
    }
}

const fn same_name(a: &[u8; MFT_NAME_SIZE], b: &[u8; MFT_NAME_SIZE]) -> bool {
    let mut i = 0;
    while i < MFT_NAME_SIZE {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_solo5s_headers() {
        assert_eq!(core::mem::size_of::<Abi1Note>(), 20 + 16);
        assert_eq!(core::mem::size_of::<MftEntry>(), MFT_ENTRY_SIZE);
        assert_eq!(core::mem::align_of::<MftEntry>(), 8);
        assert_eq!(core::mem::size_of::<MftNote<1>>(), 24 + 8 + 104);
        assert_eq!(core::mem::offset_of!(MftNote<1>, version), 24);
        assert_eq!(core::mem::offset_of!(MftNote<1>, entry), 32);
        assert_eq!(core::mem::offset_of!(MftEntry, kind), 68);
        assert_eq!(core::mem::offset_of!(MftEntry, host), 88);
        assert_eq!(core::mem::offset_of!(MftEntry, attached), 96);
    }

    #[test]
    fn a_manifest_of_one_net_device() {
        let note = MftNote::<2>::new(&[MftEntry::new("service", Kind::Net)]);
        assert_eq!(note.descsz, 4 + 8 + 2 * 104);
        assert_eq!(note.entries, 2);
        assert_eq!(note.entry[0].kind, 1 << 30);
        assert_eq!(&note.entry[1].name[..8], b"service\0");
        assert_eq!(note.entry[1].kind, 2);
        let hvt = Abi1Note::new(ABI_TARGET_HVT);
        assert_eq!((hvt.target, hvt.version, hvt.kind), (1, 2, 0x3149_4241));
    }
}
