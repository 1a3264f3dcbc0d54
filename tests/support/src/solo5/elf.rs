//! A small ELF64 reader: just what the image checks and the minimal loaders need (program
//! headers, and the first note of a `PT_NOTE`, which is all Solo5's tenders read).

/// `u16_at(b, o)` is the little-endian `u16` at offset `o` of `b`.
pub fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
/// `u32_at(b, o)` is the little-endian `u32` at offset `o` of `b`.
pub fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
/// `u64_at(b, o)` is the little-endian `u64` at offset `o` of `b`.
pub fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A loadable segment.
pub const PT_LOAD: u32 = 1;
/// Dynamic linking information.
pub const PT_DYNAMIC: u32 = 2;
/// An interpreter's path.
pub const PT_INTERP: u32 = 3;
/// Notes.
pub const PT_NOTE: u32 = 4;
/// An executable segment.
pub const PF_X: u32 = 1;
/// A writable segment.
pub const PF_W: u32 = 2;
/// Solo5's ABI note type (`include/elf_abi.h`).
pub const ABI1: u32 = 0x3149_4241;
/// Solo5's manifest note type (`include/mft_abi.h`).
pub const MFT1: u32 = 0x3154_464d;

/// A program header.
#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// `phdrs(elf)` is the image's program headers.
pub fn phdrs(elf: &[u8]) -> Vec<Phdr> {
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 32) as usize,
        u16_at(elf, 54) as usize,
        u16_at(elf, 56) as usize,
    );
    (0..phnum)
        .map(|i| {
            let p = phoff + i * phentsize;
            Phdr {
                kind: u32_at(elf, p),
                flags: u32_at(elf, p + 4),
                offset: u64_at(elf, p + 8),
                vaddr: u64_at(elf, p + 16),
                filesz: u64_at(elf, p + 32),
                memsz: u64_at(elf, p + 40),
                align: u64_at(elf, p + 48),
            }
        })
        .collect()
}

/// The first note of a `PT_NOTE`, which is all the tenders read.
pub struct Note<'a> {
    /// `n_namesz`.
    pub namesz: u32,
    /// `n_descsz`.
    pub descsz: u32,
    /// `n_type`.
    pub kind: u32,
    /// The 8 bytes of the name field.
    pub name: &'a [u8],
    /// The bytes from the end of the 20-byte header on.
    pub rest: &'a [u8],
    /// The segment's `p_filesz`.
    pub filesz: u64,
}

/// `first_note(elf, p)` is the first note of the `PT_NOTE` `p`.
pub fn first_note<'a>(elf: &'a [u8], p: &Phdr) -> Note<'a> {
    let o = p.offset as usize;
    let bytes = &elf[o..o + p.filesz as usize];
    Note {
        namesz: u32_at(bytes, 0),
        descsz: u32_at(bytes, 4),
        kind: u32_at(bytes, 8),
        name: &bytes[12..20],
        rest: &bytes[20..],
        filesz: p.filesz,
    }
}

/// `loads(elf)` is the image's `PT_LOAD` segments with bytes in the file.
pub fn loads(elf: &[u8]) -> Vec<Phdr> {
    phdrs(elf)
        .into_iter()
        .filter(|p| p.kind == PT_LOAD && p.filesz > 0)
        .collect()
}

/// `manifest(elf)` is a copy of the image's Solo5 manifest (`struct mft`: version, entries,
/// then 104-byte entries), which a tender fills in as it attaches devices.
pub fn manifest(elf: &[u8]) -> Option<Vec<u8>> {
    let p = phdrs(elf)
        .into_iter()
        .filter(|p| p.kind == PT_NOTE)
        .find(|p| first_note(elf, p).kind == MFT1)?;
    let note = first_note(elf, &p);
    // 4 bytes of padding align the descriptor to 8.
    Some(note.rest[4..4 + note.descsz as usize - 4].to_vec())
}

/// `manifest_entry(mft, name, kind)` is the index of the manifest's entry `name` of type
/// `kind` (1 block, 2 network; any with `None`).
pub fn manifest_entry(mft: &[u8], name: &str, kind: Option<u32>) -> Option<usize> {
    let entries = u32_at(mft, 4) as usize;
    (1..entries).find(|i| {
        let e = &mft[8 + i * 104..8 + (i + 1) * 104];
        &e[..name.len()] == name.as_bytes()
            && e[name.len()] == 0
            && kind.is_none_or(|k| u32_at(e, 68) == k)
    })
}
