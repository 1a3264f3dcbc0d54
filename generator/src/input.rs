//! Reading user input, bounded: only regular files, and never more than a limit.
//!
//! A configuration, a plan or an embedded file given to mirage-nix could be a FIFO (reading
//! it would wait forever), a device such as `/dev/zero` behind a symbolic link (it never
//! ends), or a huge file. Every read of user input goes through [`read_regular`], which
//! opens without blocking, refuses anything but a regular file, and reads at most a limit,
//! so each of those fails at once with an error naming the file.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most bytes a configuration or a plan may have.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// The most bytes a plan may have: a plan is larger than its config (about 400 bytes per
/// device), so a 16 MiB config of small devices may make one of a few hundred MiB.
pub const MAX_PLAN_BYTES: u64 = 512 << 20;

/// `O_NONBLOCK` on Linux: opening a FIFO with it returns at once instead of waiting for a
/// writer (the file type is then refused before any read).
const O_NONBLOCK: i32 = 0o4000;

/// Reads the regular file at `path` (following symbolic links), refusing other kinds of
/// files and files larger than `limit` bytes with an error that says which.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a folder"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    if meta.len() > limit {
        return Err(too_big(meta.len(), limit));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(too_big(data.len() as u64, limit));
    }
    Ok(data)
}

fn too_big(size: u64, limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("it holds {size} bytes or more, over the limit of {limit}"),
    )
}

/// Reads the regular text file at `path` of at most [`MAX_INPUT_BYTES`], as UTF-8.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    read_text_up_to(path, MAX_INPUT_BYTES)
}

/// Reads the regular text file at `path` of at most `limit` bytes, as UTF-8.
pub fn read_text_up_to(path: &Path, limit: u64) -> std::io::Result<String> {
    let data = read_regular(path, limit)?;
    String::from_utf8(data).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (byte {} is not)",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "abc").unwrap();
        assert_eq!(read_regular(&ok, 3).unwrap(), b"abc");
        assert!(read_regular(&ok, 2)
            .unwrap_err()
            .to_string()
            .contains("limit of 2"));
        let err = read_regular(dir.path(), 10).unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_regular(&zero, 10)
            .unwrap_err()
            .to_string()
            .contains("a device"));
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(read_text(&dir.path().join("bin"))
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
    }
}
