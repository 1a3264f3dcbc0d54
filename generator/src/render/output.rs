//! Writing a rendered crate into a folder, safely.
//!
//! `render -o DIR` writes only into a folder that is missing, empty, or holds a previous
//! render of the same unikernel, which it knows by the marker file [`MARKER`] it leaves
//! there (with the list of files it wrote). Anything else is refused, naming the file it
//! would overwrite, unless the caller forces it. Files are written to a temporary name and
//! renamed into place, never through a symbolic link, and only below the folder: nothing is
//! ever written outside it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use super::File;

/// The marker file a render leaves in its folder.
pub const MARKER: &str = ".mirage-nix-render";

/// What to do with a folder that holds files a render of this unikernel did not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse, naming the first such file.
    Refuse,
    /// Overwrite them (`render --force`).
    Force,
}

/// Why a crate was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder holds something a render of this unikernel did not write.
    #[error("refusing to write into `{dir}`: {reason}")]
    Refused {
        /// The output folder.
        dir: PathBuf,
        /// What is in the way.
        reason: String,
    },
    /// The file system failed.
    #[error("cannot write `{path}`: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// What the marker records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    /// The unikernel rendered.
    unikernel: String,
    /// The files written, relative to the folder.
    files: BTreeSet<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |error| OutputError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn read_marker(out: &Path) -> Option<Marker> {
    let text = crate::input::read_text(&out.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The path of a rendered file, as text, if it stays below the folder.
fn inside(file: &Path) -> Option<String> {
    let ok = file.components().all(|c| matches!(c, Component::Normal(_)));
    if ok && file.components().next().is_some() {
        file.to_str().map(str::to_string)
    } else {
        None
    }
}

/// Writes the files of a render of `unikernel` under `out`, as the module doc says.
pub fn write_into(
    files: &[File],
    out: &Path,
    unikernel: &str,
    overwrite: Overwrite,
) -> Result<(), OutputError> {
    let refuse = |reason: String| OutputError::Refused {
        dir: out.to_path_buf(),
        reason,
    };
    let mut names = BTreeSet::new();
    for f in files {
        let name = inside(&f.path).ok_or_else(|| {
            refuse(format!(
                "`{}` is not a path inside the folder",
                f.path.display()
            ))
        })?;
        names.insert(name);
    }
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse("it is not a folder".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(io(out))?;
        }
        Err(e) => return Err(io(out)(e)),
    }
    let marker = read_marker(out);
    let previous = match &marker {
        Some(m) if m.unikernel == unikernel => m.files.clone(),
        _ => BTreeSet::new(),
    };
    if overwrite == Overwrite::Refuse {
        match &marker {
            Some(m) if m.unikernel == unikernel => {}
            Some(m) => {
                return Err(refuse(format!(
                    "it holds a render of another unikernel, `{}`; choose another folder, or pass --force",
                    m.unikernel.escape_debug()
                )))
            }
            None => {
                let mut entries = std::fs::read_dir(out).map_err(io(out))?;
                if let Some(entry) = entries.next() {
                    let entry = entry.map_err(io(out))?;
                    let clash = names.iter().find(|n| {
                        std::fs::symlink_metadata(out.join(n)).is_ok()
                    });
                    let reason = match clash {
                        Some(n) => format!(
                            "it would overwrite `{}`, which no render of `{unikernel}` wrote; choose an empty folder, or pass --force to overwrite it",
                            out.join(n).display()
                        ),
                        None => format!(
                            "it is not empty (it holds `{}`) and holds no render of `{unikernel}`; choose an empty folder, or pass --force",
                            entry.file_name().to_string_lossy()
                        ),
                    };
                    return Err(refuse(reason));
                }
            }
        }
    }
    for f in files {
        write_file(out, &f.path, &f.contents)?;
    }
    for stale in previous.difference(&names) {
        let path = out.join(stale);
        let safe = inside(Path::new(stale)).is_some()
            && parents_are_folders(out, Path::new(stale)).unwrap_or(false);
        if safe && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    let marker = Marker {
        unikernel: unikernel.to_string(),
        files: names,
    };
    let text = serde_json::to_string_pretty(&marker).expect("markers serialise") + "\n";
    write_file(out, Path::new(MARKER), text.as_bytes())
}

/// Whether every folder between `out` and `rel`'s file is a real folder (no link), creating
/// none.
fn parents_are_folders(out: &Path, rel: &Path) -> std::io::Result<bool> {
    let mut at = out.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c.as_os_str());
        if !std::fs::symlink_metadata(&at)?.is_dir() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes one file under `out` (its folders created as needed, none of them through a
/// symbolic link), leaving it untouched when it already has these contents.
pub(super) fn write_file(out: &Path, rel: &Path, contents: &[u8]) -> Result<(), OutputError> {
    let mut dir = out.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    let Some((file_name, folders)) = parts.split_last() else {
        return Ok(());
    };
    for c in folders {
        dir.push(c.as_os_str());
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(OutputError::Refused {
                    dir: out.to_path_buf(),
                    reason: format!(
                        "`{}` is in the way: it is not a folder (rendering never writes through a symbolic link)",
                        dir.display()
                    ),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).map_err(io(&dir))?;
            }
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    let path = dir.join(file_name.as_os_str());
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if m.is_file()
            && m.len() == contents.len() as u64
            && crate::input::read_regular(&path, m.len()).is_ok_and(|c| c == contents)
        {
            return Ok(());
        }
        if m.is_dir() {
            return Err(OutputError::Refused {
                dir: out.to_path_buf(),
                reason: format!("`{}` is a folder, where a file goes", path.display()),
            });
        }
    }
    // Write to a fresh name, then rename over the file: a reader never sees half a file, and
    // a symbolic link in the file's place is replaced, not followed.
    let tmp = dir.join(format!(
        ".{}.mirage-nix-tmp",
        file_name.as_os_str().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents).map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<File> {
        vec![
            File {
                path: "Cargo.toml".into(),
                contents: b"[package]\n".to_vec(),
            },
            File {
                path: "src/main.rs".into(),
                contents: b"fn main() {}\n".to_vec(),
            },
        ]
    }

    #[test]
    fn a_foreign_folder_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "mine").unwrap();
        let err = write_into(&files(), dir.path(), "hello", Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap(),
            "mine"
        );
        assert!(!dir.path().join("src").exists());
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();
        std::fs::write(dir.path().join("notes"), "x").unwrap();
        let err = write_into(&files(), dir.path(), "hello", Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        write_into(&files(), dir.path(), "hello", Overwrite::Force).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes")).unwrap(),
            "x"
        );
    }

    #[test]
    fn a_previous_render_is_updated_and_its_stale_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut fs = files();
        fs.push(File {
            path: "embed/m/old".into(),
            contents: b"old".to_vec(),
        });
        write_into(&fs, &out, "hello", Overwrite::Refuse).unwrap();
        write_into(&files(), &out, "hello", Overwrite::Refuse).unwrap();
        assert!(!out.join("embed/m/old").exists());
        let err = write_into(&files(), &out, "other", Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("another unikernel"), "{err}");
    }

    #[test]
    fn nothing_is_written_through_links_or_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("src")).unwrap();
        let err = write_into(&files(), &out, "hello", Overwrite::Force).unwrap_err();
        assert!(err.to_string().contains("in the way"), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let escape = vec![File {
            path: "../x".into(),
            contents: vec![],
        }];
        assert!(write_into(&escape, &out, "hello", Overwrite::Force).is_err());
        assert!(!dir.path().join("x").exists());
    }
}
