//! A folder as a tar archive: ustar headers, GNU long names past 100 bytes, directories before
//! their contents, sorted, every time 0, owner 0, modes 0644 and 0755. The same folder gives
//! the same bytes, which GNU tar and the store's own reader ([`Tar`]) read alike.
//!
//! [`Tar`]: https://docs.rs/mirage-devices (mirage_devices::kv::Tar)

use super::{DiskError, Node, Tree};

/// The size of a header and the unit of data.
const RECORD: usize = 512;

/// `archive(tree)` is the tar archive of `tree`.
pub fn archive(tree: &Tree) -> Result<Vec<u8>, DiskError> {
    if let Some((name, size)) = tree.largest().filter(|&(_, size)| size >= 1 << 33) {
        return Err(DiskError::Name {
            name,
            reason: format!("{size} bytes do not fit a ustar header's size (8 GiB at most)"),
        });
    }
    let mut out = Vec::new();
    members(tree, "", &mut out);
    out.resize(out.len() + 2 * RECORD, 0);
    Ok(out)
}

fn members(tree: &Tree, prefix: &str, out: &mut Vec<u8>) {
    for (name, node) in &tree.entries {
        match node {
            Node::File(data) => {
                let path = format!("{prefix}{name}");
                member(out, &path, b'0', data);
            }
            Node::Dir(sub) => {
                let path = format!("{prefix}{name}/");
                member(out, &path, b'5', &[]);
                members(sub, &path, out);
            }
        }
    }
}

/// `member(out, path, typeflag, data)` appends one member, preceded by a GNU long-name member
/// when `path` does not fit the header's 100 bytes.
fn member(out: &mut Vec<u8>, path: &str, typeflag: u8, data: &[u8]) {
    if path.len() > 100 {
        let mut long = path.as_bytes().to_vec();
        long.push(0);
        push(out, header("././@LongLink", b'L', long.len() as u64), &long);
    }
    let mut cut = path.len().min(100);
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    let short = &path[..cut];
    push(out, header(short, typeflag, data.len() as u64), data);
}

fn push(out: &mut Vec<u8>, header: [u8; RECORD], data: &[u8]) {
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(RECORD), 0);
}

/// `header(name, typeflag, size)` is a ustar header.
fn header(name: &str, typeflag: u8, size: u64) -> [u8; RECORD] {
    let mut h = [0u8; RECORD];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if typeflag == b'5' { 0o755 } else { 0o644 };
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h
}

/// `octal(field, value)` writes `value` as zero-padded octal digits and a NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}
