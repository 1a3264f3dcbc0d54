//! The storage corpus (`tests/storage`, made by `tests/storage/make-corpus`) against the tar and
//! FAT stores on unix: filesystems made by mkfs.fat and mtools read completely, and every
//! hostile archive or filesystem ends in a clean error or a correct read, in memory bounded by
//! four times its size plus a fixed amount, measured as the peak RSS of the kv_ro image that
//! reads it (GNU time).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use mirage_devices::kv::{Fat, Tar};
use mirage_devices::KvRo;
use mirage_test_support::equivalence::sha256_hex;
use mirage_unix::BlockFile;

/// Memory an image may take whatever its store: its own code, heap and stacks, measured at
/// about 2 MiB for kv_ro over the example's store.
const FIXED_KIB: u64 = 8 * 1024;

fn corpus() -> PathBuf {
    common::root().join("tests/storage")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    mirage_runtime::block_on(&mirage_unix::Unix, f)
}

/// A case of `hostile/cases.tsv`: its file and what reading it must give.
struct Case {
    file: PathBuf,
    expect: Expect,
}

enum Expect {
    /// Reading `key` gives bytes with this SHA-256.
    Read { key: String, sha256: String },
    /// Connecting fails with an error containing this text.
    Error(String),
}

fn cases() -> Vec<Case> {
    let dir = corpus().join("hostile");
    let list = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    list.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let (file, expect) = line.split_once('\t').unwrap();
            let expect = if let Some(text) = expect.strip_prefix("error:") {
                Expect::Error(text.to_string())
            } else {
                let (key, sha256) = expect
                    .strip_prefix("ok:")
                    .unwrap()
                    .rsplit_once('=')
                    .unwrap();
                Expect::Read {
                    key: key.to_string(),
                    sha256: sha256.to_string(),
                }
            };
            Case {
                file: dir.join(file),
                expect,
            }
        })
        .collect()
}

/// `read(path)` connects the store in `path` (tar or FAT by its extension) and reads `key`, or
/// says why it could not.
fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    let disk = BlockFile::connect_read_only(path.to_str().unwrap()).map_err(|e| e.to_string())?;
    if path.extension().is_some_and(|e| e == "tar") {
        let tar = block_on(Tar::connect(disk)).map_err(|e| e.to_string())?;
        block_on(tar.get(key)).map_err(|e| e.to_string())
    } else {
        let fat = block_on(Fat::connect(disk)).map_err(|e| e.to_string())?;
        block_on(fat.get(key)).map_err(|e| e.to_string())
    }
}

#[test]
fn filesystems_made_by_mkfs_fat_and_archives_made_by_python_read_completely() {
    let good = corpus().join("good");
    let expected = std::fs::read_to_string(good.join("expected.tsv")).unwrap();
    for image in ["fat12.img", "fat16.img", "fat32.img", "gnu.tar"] {
        for line in expected.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let data = read(&good.join(image), cols[0]).unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(data.len().to_string(), cols[1], "{image}: {}", cols[0]);
            assert_eq!(sha256_hex(&data), cols[2], "{image}: {}", cols[0]);
        }
    }
}

#[test]
fn every_hostile_case_is_a_clean_error_or_a_correct_read() {
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    for case in cases {
        let name = case.file.display();
        match &case.expect {
            Expect::Error(text) => {
                let e = read(&case.file, "anything").unwrap_err();
                assert!(
                    e.contains(text.as_str()),
                    "{name}: `{e}` should say `{text}`"
                );
            }
            Expect::Read { key, sha256 } => {
                let data = read(&case.file, key).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(&sha256_hex(&data), sha256, "{name}");
            }
        }
    }
}

/// `run_measured(image)` runs `image` under GNU time: its exit status, standard error, and
/// peak resident memory in KiB.
fn run_measured(image: &Path) -> (Option<i32>, String, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib=%M"])
        .arg(image)
        .output()
        .expect("GNU time (/usr/bin/time; scripts/setup installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time: {stderr}"));
    (out.status.code(), stderr, rss)
}

/// The kv_ro image over each store reads every good and hostile case, in bounded memory, and
/// fails cleanly (exit 1, the reason on standard error; never a panic or a signal).
#[test]
fn the_kv_ro_image_reads_every_case_in_bounded_memory() {
    let mut report = Vec::new();
    for store in ["tar", "fat"] {
        let dir = common::work_dir().join(format!("storage-{store}"));
        let image = common::image_beside_disks("kv_ro", &[&format!("--kv_ro={store}")], &dir);
        let disk = dir.join(format!("t.{store}"));
        let ext = if store == "tar" { ".tar" } else { ".img" };
        let mut files: Vec<(PathBuf, Option<String>)> = cases()
            .into_iter()
            .filter(|c| c.file.to_string_lossy().ends_with(ext))
            .map(|c| match c.expect {
                Expect::Error(text) => (c.file, Some(text)),
                Expect::Read { .. } => (c.file, None),
            })
            .collect();
        let good = corpus().join("good");
        if store == "tar" {
            files.push((good.join("gnu.tar"), None));
        } else {
            for f in ["fat12.img", "fat16.img", "fat32.img"] {
                files.push((good.join(f), None));
            }
        }
        for (file, error) in files {
            std::fs::copy(&file, &disk).unwrap();
            let size_kib = std::fs::metadata(&file).unwrap().len() / 1024;
            let (status, stderr, rss) = run_measured(&image);
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            match &error {
                None => assert_eq!(status, Some(0), "{name}: {stderr}"),
                Some(text) => {
                    assert_eq!(status, Some(1), "{name} fails cleanly: {stderr}");
                    assert!(stderr.contains(text.as_str()), "{name}: {stderr}");
                }
            }
            let bound = 4 * size_kib + FIXED_KIB;
            assert!(rss <= bound, "{name}: peak RSS {rss} KiB > {bound} KiB");
            report.push(format!("{name}: {size_kib} KiB, peak RSS {rss} KiB"));
        }
    }
    // An 8 GiB sparse archive whose member claims all of it: an error, not an allocation.
    let dir = common::work_dir().join("storage-tar");
    let image = dir.join("kv_ro");
    let disk = dir.join("t.tar");
    std::fs::copy(corpus().join("hostile/tar-8gib-member.tar"), &disk).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    file.set_len(512 + (8 << 30) + 1024).unwrap();
    let (status, stderr, rss) = run_measured(&image);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("too large to read whole"), "{stderr}");
    assert!(rss <= FIXED_KIB, "8 GiB sparse archive: peak RSS {rss} KiB");
    report.push(format!("8 GiB sparse tar: peak RSS {rss} KiB"));
    std::fs::remove_file(&disk).unwrap();
    eprintln!("{}", report.join("\n"));
}

/// static_website over a passthrough folder holding a FIFO, a socket and a device node: each is
/// refused (403) within a second, without being opened, and the other files keep being served.
#[test]
fn passthrough_refuses_special_files_and_keeps_serving() {
    /// Removes the site when the test ends, passed or not: special files left in the
    /// checkout would break copying it (a Nix path flake refuses FIFOs and sockets).
    struct Site(std::path::PathBuf);
    impl Drop for Site {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let guard = Site(
        std::env::temp_dir().join(format!("mirage-passthrough-special-{}", std::process::id())),
    );
    let site = guard.0.clone();
    let _ = std::fs::remove_dir_all(&site);
    let htdocs = site.join("htdocs");
    std::fs::create_dir_all(&htdocs).unwrap();
    std::fs::write(htdocs.join("index.html"), "<h1>still here</h1>\n").unwrap();
    assert!(Command::new("mkfifo")
        .arg(htdocs.join("fifo"))
        .status()
        .unwrap()
        .success());
    let _socket = std::os::unix::net::UnixListener::bind(htdocs.join("socket")).unwrap();
    let device = Command::new("mknod")
        .arg(htdocs.join("zero"))
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|s| s.success());
    let mut special = vec!["fifo", "socket"];
    if device {
        special.push("zero");
    } else {
        eprintln!("mknod needs root: the device node case is skipped");
    }
    let image = common::image("static_website", &["--kv_ro=passthrough"]);
    let port = common::free_port();
    let mut server = common::Process::spawn(
        Command::new(image)
            .current_dir(&site)
            .arg(format!("--port={port}")),
    );
    common::wait_for(
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
        &mut server,
    );
    for name in special {
        let start = std::time::Instant::now();
        let code = common::curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/{name}"),
        ]);
        assert_eq!(String::from_utf8_lossy(&code), "403", "{name}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{name}: {:?}",
            start.elapsed()
        );
        let body = common::curl(&[&format!("http://127.0.0.1:{port}/index.html")]);
        assert_eq!(body, b"<h1>still here</h1>\n", "served after {name}");
    }
    assert!(server.is_running());
}
