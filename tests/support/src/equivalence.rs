//! The cross-target equivalence matrix of the read-only stores: for kv_ro and static_website
//! over crunch, tar and fat, the SHA-256 of every file the unikernel returns must be the
//! SHA-256 of that file in the example's folder, on unix, spt, hvt and xen.
//!
//! A [`Row`] is one (example, store, target). kv_ro prints every file with its digest (it
//! reads its whole store), and the row reads those lines from its console ([`kv_ro_digests`]);
//! static_website is asked for every file of its folder over HTTP. This module computes the
//! rows that need no Xen ([`other_targets`]):
//!
//! - unix: the process, its disk beside it (as the build lays it out), run from elsewhere;
//!   static_website answers `curl`;
//! - spt: the minimal spt loader ([`crate::solo5::spt`], 32 MiB), the disk as its block device,
//!   HTTP over a datagram link;
//! - hvt: the minimal KVM monitor ([`crate::solo5::hvt`]); the rows say "skipped" where
//!   /dev/kvm cannot run it.
//!
//! The xen rows come from domUs in the domU test bed ([`crate::xen::testbed`]), which
//! `runtime/xen/tests/devices.rs` boots once for all its scenarios; that file holds the one
//! matrix test, and [`Matrix`] checks and prints the rows it is given. A test binary that
//! computes the spt rows defines the loader's child test with
//! [`mini_spt_child_test!`](crate::mini_spt_child_test).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::image::{Builder, Image};
use crate::process::{self, Process};
use crate::solo5::hvt::{self, HvtDevice};
use crate::solo5::net::http_get_path;
use crate::solo5::spt::{self, Devices};
use crate::tree::{root, scratch};

/// The examples of the matrix and the folder each serves from.
pub const EXAMPLES: [(&str, &str); 2] = [("kv_ro", "t"), ("static_website", "htdocs")];
/// The read-only stores the matrix crosses them with (`--kv_ro=STORE`).
pub const STORES: [&str; 3] = ["crunch", "tar", "fat"];
/// The targets, the reference one (unix) first.
pub const TARGETS: [&str; 4] = ["unix", "spt", "hvt", "xen"];

/// Files (keys `/`-separated, relative to the store's root) and their SHA-256 in hex.
pub type Digests = BTreeMap<String, String>;

/// `sha256_hex(data)` is the SHA-256 of `data` in lowercase hex, as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `folder_digests(example)` is every file of the example's store folder with its SHA-256:
/// what every row must return.
pub fn folder_digests(example: &str) -> Digests {
    let dir = example_dir(example).join(folder(example));
    let mut out = Digests::new();
    let mut todo = vec![dir.clone()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let key = path.strip_prefix(&dir).unwrap().to_string_lossy();
                out.insert(key.into_owned(), sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// `kv_ro_digests(console)` is every `KEY (N bytes, sha256 H):` line kv_ro printed, on any
/// target's console.
pub fn kv_ro_digests(console: &str) -> Digests {
    console
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("INF [kv_ro] ")?;
            let (key, tail) = rest.split_once(" (")?;
            let sha = tail.split("sha256 ").nth(1)?.strip_suffix("):")?;
            Some((key.to_string(), sha.to_string()))
        })
        .collect()
}

/// `sha256sum_digests(text)` is every `DIGEST KEY` line of `text` (as `sha256sum` prints
/// them, one or two spaces between), such as a script that fetches every file prints.
pub fn sha256sum_digests(text: &str) -> Digests {
    text.lines()
        .filter_map(|l| {
            let (sha, key) = l.split_once(' ')?;
            let hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then(|| (key.trim_start().to_string(), sha.to_string()))
        })
        .collect()
}

/// What one row gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The files the unikernel returned, with their digests.
    Read(Digests),
    /// The row cannot run here, and why (no usable /dev/kvm, no Xen): a skip, said aloud.
    Skipped(String),
    /// The row ran and gave no files: what went wrong (a crash, no answer).
    Failed(String),
}

/// One row of the matrix: an example over a store on a target, how it ran, what it gave.
#[derive(Clone, Debug)]
pub struct Row {
    /// The example (`kv_ro`, `static_website`).
    pub example: &'static str,
    /// The store (`crunch`, `tar`, `fat`).
    pub store: &'static str,
    /// The target (`unix`, `spt`, `hvt`, `xen`).
    pub target: &'static str,
    /// How it ran: the tender, the domUs.
    pub how: String,
    /// What it gave.
    pub outcome: Outcome,
}

/// The matrix's rows, checked against the folders' digests.
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    rows: Vec<Row>,
}

impl Matrix {
    /// `new(rows)` is the matrix of `rows`; it must hold every (example, store, target) once.
    pub fn new(rows: impl IntoIterator<Item = Row>) -> Matrix {
        let mut rows: Vec<Row> = rows.into_iter().collect();
        let place = |r: &Row| {
            let at = |all: &[&str], x: &str| all.iter().position(|y| *y == x);
            let example = EXAMPLES.iter().position(|(e, _)| *e == r.example);
            (example, at(&STORES, r.store), at(&TARGETS, r.target))
        };
        rows.sort_by_key(place);
        let places: Vec<_> = rows.iter().map(place).collect();
        let every: Vec<_> = (0..EXAMPLES.len())
            .flat_map(|e| (0..STORES.len()).map(move |s| (e, s)))
            .flat_map(|(e, s)| (0..TARGETS.len()).map(move |t| (Some(e), Some(s), Some(t))))
            .collect();
        assert_eq!(places, every, "the matrix has every row once: {rows:#?}");
        Matrix { rows }
    }

    /// `verdicts()` is each row with what it says: `same (N files)`, `skipped: WHY`, or what
    /// differs; `true` when the row is wrong (it failed, or a file is missing, extra or
    /// changed).
    pub fn verdicts(&self) -> Vec<(&Row, String, bool)> {
        let expected: BTreeMap<&str, Digests> =
            EXAMPLES.map(|(e, _)| (e, folder_digests(e))).into();
        self.rows
            .iter()
            .map(|row| {
                let (verdict, wrong) = match &row.outcome {
                    Outcome::Read(got) => match difference(&expected[row.example], got) {
                        None => (format!("same ({} files)", got.len()), false),
                        Some(diff) => (format!("DIFFERS: {diff}"), true),
                    },
                    Outcome::Skipped(why) => (format!("skipped: {why}"), false),
                    Outcome::Failed(what) => (format!("FAILED: {what}"), true),
                };
                (row, verdict, wrong)
            })
            .collect()
    }

    /// `check()` prints the matrix and fails the test if a row is wrong (skipped rows are
    /// printed with their reason, and counted in the last line).
    pub fn check(&self) {
        eprintln!("{self}");
        let wrong: Vec<String> = self
            .verdicts()
            .iter()
            .filter(|(_, _, wrong)| *wrong)
            .map(|(r, verdict, _)| format!("{} {} {}: {verdict}", r.example, r.store, r.target))
            .collect();
        assert!(wrong.is_empty(), "rows that differ:\n{}", wrong.join("\n"));
    }
}

impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let verdicts = self.verdicts();
        let width = verdicts.iter().map(|(_, v, _)| v.len()).max().unwrap_or(0);
        writeln!(
            f,
            "{:<15} {:<7} {:<6} {:<width$} how",
            "example", "store", "target", "outcome"
        )?;
        for (r, verdict, _) in &verdicts {
            writeln!(
                f,
                "{:<15} {:<7} {:<6} {verdict:<width$} {}",
                r.example, r.store, r.target, r.how
            )?;
        }
        let skipped = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
            .count();
        let wrong = verdicts.iter().filter(|(_, _, wrong)| *wrong).count();
        let same = verdicts.len() - wrong - skipped;
        write!(
            f,
            "{} rows: {same} same, {wrong} wrong, {skipped} skipped",
            verdicts.len()
        )
    }
}

/// `difference(expected, got)` says which files are missing, extra or changed, if any.
fn difference(expected: &Digests, got: &Digests) -> Option<String> {
    let missing: Vec<&str> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = got
        .iter()
        .filter(|(k, sha)| expected.get(*k).is_some_and(|e| e != *sha))
        .map(|(k, _)| k.as_str())
        .collect();
    let parts: Vec<String> = [("missing", missing), ("extra", extra), ("changed", changed)]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(what, keys)| format!("{what} {}", keys.join(", ")))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `other_targets()` is the matrix's unix, spt and hvt rows, computed once per process (a
/// test may start them early, in a thread, to overlap a dom0 boot).
pub fn other_targets() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let mut rows = Vec::new();
        for (example, _) in EXAMPLES {
            let keys: Vec<String> = folder_digests(example).into_keys().collect();
            for store in STORES {
                for target in ["unix", "spt", "hvt"] {
                    let (how, outcome) = match target {
                        "unix" => ("the process", unix_row(example, store, &keys)),
                        "spt" => ("the minimal spt loader", spt_row(example, store, &keys)),
                        _ => ("the minimal hvt monitor", hvt_row(example, store, &keys)),
                    };
                    rows.push(Row {
                        example,
                        store,
                        target,
                        how: how.into(),
                        outcome,
                    });
                }
            }
        }
        rows
    })
}

/// `example_dir(example)` is the example's folder in the tree.
fn example_dir(example: &str) -> PathBuf {
    root().join("examples").join(example)
}

/// `folder(example)` is the store folder the example serves from.
fn folder(example: &str) -> &'static str {
    EXAMPLES
        .iter()
        .find(|(e, _)| *e == example)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("{example} is not in the matrix"))
}

/// `image(example, store, target)` is the example's image over `store`, built where the
/// target's other tests build theirs (so that a test run builds the dependencies once).
fn image(example: &str, store: &str, target: &str) -> Image {
    let builder = match target {
        "unix" => Builder::new(scratch("xen-images")),
        _ => Builder::new(scratch("solo5-images")).host_target(),
    };
    let dir = format!("examples/{example}");
    builder.configured(&dir, target, &[&format!("--kv_ro={store}")])
}

/// `disk(image, example, at)` writes the disk the build makes for `image` (none for crunch)
/// into the folder `at`, which exists; it returns its block device's name (its folder's) and its path.
fn disk(image: &Image, example: &str, at: &Path) -> Option<(String, PathBuf)> {
    let disks = mirage_nix::render::disk::disks(&image.plan, &example_dir(example))
        .unwrap_or_else(|e| panic!("the disks of {example}: {e}"));
    assert!(disks.len() <= 1, "{example}: at most one disk expected");
    let (file, bytes) = disks.into_iter().next()?;
    let path = at.join(&file);
    std::fs::write(&path, bytes).unwrap();
    let name = file.rsplit_once('.').map_or(&*file, |(name, _)| name);
    Some((name.to_string(), path))
}

/// `unix_row(example, store, keys)` runs the unix image from another folder than its own, its
/// disk beside it where the image looks for it.
fn unix_row(example: &str, store: &str, keys: &[String]) -> Outcome {
    let image = image(example, store, "unix");
    let dir = scratch("equivalence").join(format!("{example}-{store}-unix"));
    std::fs::create_dir_all(&dir).unwrap();
    disk(&image, example, &dir);
    let copy = dir.join(example);
    std::fs::copy(&image.path, &copy).unwrap();
    let mut cmd = Command::new(&copy);
    cmd.current_dir(std::env::temp_dir());
    if example == "kv_ro" {
        let run = process::run(&mut cmd, Duration::from_secs(60));
        return match run.status {
            Some(0) => Outcome::Read(kv_ro_digests(&run.stdout)),
            status => Outcome::Failed(format!("exit {status:?}: {}", run.stderr)),
        };
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut server = Process::spawn(cmd.arg(format!("--port={port}")));
    if let Err(why) = wait_listening(port, &mut server) {
        return Outcome::Failed(format!("{why}: {}", server.kill().stderr));
    }
    let mut got = Digests::new();
    for key in keys {
        let url = format!("http://127.0.0.1:{port}/{key}");
        // Its output is the body's bytes (not text); `--max-time` bounds it.
        let curl = Command::new("curl")
            .args(["-fsS", "--max-time", "20", &url])
            .output()
            .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
        if !curl.status.success() {
            let why = String::from_utf8_lossy(&curl.stderr);
            return Outcome::Failed(format!("curl {url}: {}", why.trim()));
        }
        got.insert(key.clone(), sha256_hex(&curl.stdout));
    }
    Outcome::Read(got)
}

/// `wait_listening(port, server)` waits until the server accepts connections on the loopback
/// `port`, at most 20 s.
fn wait_listening(port: u16, server: &mut Process) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !server.is_running() {
            return Err("the server exited before listening".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on {addr} after 20 s"))
}

/// `solo5_disk(image, example, target)` is the disk of a Solo5 row, in a folder of its own.
fn solo5_disk(
    image: &Image,
    example: &str,
    store: &str,
    target: &str,
) -> Option<(String, PathBuf)> {
    let dir = scratch("equivalence").join(format!("{example}-{store}-{target}"));
    std::fs::create_dir_all(&dir).unwrap();
    disk(image, example, &dir)
}

/// `body(response)` is an HTTP response's body, if its status is 200.
fn body(response: &[u8]) -> Option<Vec<u8>> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    response
        .starts_with(b"HTTP/1.1 200")
        .then(|| response[end + 4..].to_vec())
}

/// `website_digests(keys, get)` asks for every key with `get` (a fresh guest's response to
/// `GET /KEY`) and digests each 200 answer's body.
fn website_digests(
    keys: &[String],
    mut get: impl FnMut(&str) -> Result<Vec<u8>, Outcome>,
) -> Outcome {
    let mut got = Digests::new();
    for key in keys {
        let response = match get(key) {
            Ok(response) => response,
            Err(outcome) => return outcome,
        };
        let Some(data) = body(&response) else {
            let answer = String::from_utf8_lossy(&response);
            return Outcome::Failed(format!("no 200 for /{key}: {answer:?}"));
        };
        got.insert(key.clone(), sha256_hex(&data));
    }
    Outcome::Read(got)
}

/// `spt_row(example, store, keys)` runs the spt image under the minimal spt loader.
fn spt_row(example: &str, store: &str, keys: &[String]) -> Outcome {
    let image = image(example, store, "spt");
    let disk = solo5_disk(&image, example, store, "spt");
    let devices = || match &disk {
        Some((name, path)) => Devices::default().block(name, path),
        None => Devices::default(),
    };
    if example == "kv_ro" {
        let run = spt::run(&image.path, "", devices());
        return match run.status {
            Some(0) => Outcome::Read(kv_ro_digests(spt::guest(&run))),
            status => Outcome::Failed(format!("exit {status:?}: {}{}", run.stdout, run.stderr)),
        };
    }
    website_digests(keys, |key| {
        let (host, guest_end) = spt::net_pair();
        let child = spt::spawn(&image.path, "", devices().net("service", guest_end));
        let (_, _, response) = http_get_path(&host, &format!("/{key}"));
        child.kill();
        Ok(response)
    })
}

/// `hvt_row(example, store, keys)` runs the hvt image under the minimal hvt monitor.
fn hvt_row(example: &str, store: &str, keys: &[String]) -> Outcome {
    if let Err(why) = hvt::usable() {
        return Outcome::Skipped(why);
    }
    let image = image(example, store, "hvt");
    let elf = std::fs::read(&image.path).unwrap();
    let disk = solo5_disk(&image, example, store, "hvt");
    // The block device's name, and its file opened afresh for each guest.
    let name = disk.as_ref().map(|(name, _)| name.clone());
    let block = || {
        let (_, path) = disk.as_ref()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path);
        Some(HvtDevice::Block(file.unwrap()))
    };
    if example == "kv_ro" {
        let devices = name.as_deref().zip(block()).into_iter().collect();
        return match hvt::run_with(&elf, "", devices, &AtomicBool::new(false)) {
            Ok(run) if run.status == Ok(0) => Outcome::Read(kv_ro_digests(&run.console)),
            Ok(run) => Outcome::Failed(format!("{:?}: {}", run.status, run.console)),
            Err(why) => Outcome::Skipped(why),
        };
    }
    website_digests(keys, |key| {
        let (host, guest_end) = spt::net_pair();
        let guest = std::os::unix::net::UnixDatagram::from(guest_end);
        let (elf, name, block) = (elf.clone(), name.clone(), block());
        let stop = Arc::new(AtomicBool::new(false));
        let stop_monitor = stop.clone();
        let monitor = std::thread::spawn(move || {
            let mut devices = vec![("service", HvtDevice::Net(guest.into()))];
            devices.extend(name.as_deref().zip(block));
            hvt::run_with(&elf, "", devices, &stop_monitor)
        });
        let (_, _, response) = http_get_path(&host, &format!("/{key}"));
        stop.store(true, Ordering::SeqCst);
        match monitor.join().unwrap() {
            Ok(_) => Ok(response),
            Err(why) => Err(Outcome::Skipped(why)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix where every row read `digests`, but kv_ro over fat on spt read `odd`.
    fn matrix(odd: Outcome) -> Matrix {
        let rows = EXAMPLES.iter().flat_map(|&(example, _)| {
            let digests = folder_digests(example);
            let odd = odd.clone();
            STORES.iter().flat_map(move |&store| {
                let (digests, odd) = (digests.clone(), odd.clone());
                TARGETS.iter().map(move |&target| Row {
                    example,
                    store,
                    target,
                    how: String::new(),
                    outcome: match (example, store, target) {
                        ("kv_ro", "fat", "spt") => odd.clone(),
                        _ => Outcome::Read(digests.clone()),
                    },
                })
            })
        });
        Matrix::new(rows)
    }

    fn verdict(m: &Matrix) -> (String, bool) {
        let verdicts = m.verdicts();
        let (_, verdict, wrong) = verdicts
            .iter()
            .find(|(r, _, _)| (r.example, r.store, r.target) == ("kv_ro", "fat", "spt"))
            .unwrap();
        (verdict.clone(), *wrong)
    }

    #[test]
    fn a_row_with_a_file_changed_missing_or_extra_is_wrong_and_says_which() {
        let mut got = folder_digests("kv_ro");
        got.insert("secret".into(), sha256_hex(b"not the secret\n"));
        got.remove("subdir/hello.txt");
        got.insert("stray".into(), sha256_hex(b""));
        let m = matrix(Outcome::Read(got));
        assert_eq!(
            verdict(&m),
            (
                "DIFFERS: missing subdir/hello.txt; extra stray; changed secret".into(),
                true
            )
        );
        assert!(m
            .to_string()
            .ends_with("24 rows: 23 same, 1 wrong, 0 skipped"));
        let empty = matrix(Outcome::Read(Digests::new()));
        assert!(verdict(&empty).1, "a row that read nothing is wrong");
    }

    #[test]
    fn a_skipped_row_says_why_and_is_not_wrong() {
        let m = matrix(Outcome::Skipped("no /dev/kvm".into()));
        assert_eq!(verdict(&m), ("skipped: no /dev/kvm".into(), false));
        assert!(m
            .to_string()
            .ends_with("24 rows: 23 same, 0 wrong, 1 skipped"));
        m.check();
    }

    #[test]
    #[should_panic(expected = "every row once")]
    fn a_matrix_missing_a_row_is_refused() {
        let rows = matrix(Outcome::Skipped(String::new())).rows;
        Matrix::new(rows.into_iter().skip(1));
    }

    #[test]
    fn digests_are_read_from_kv_ros_console_and_from_sha256sum_lines() {
        let sha = sha256_hex(b"foobar\n");
        let console = format!(
            "INF [kv_ro] store has secret\nINF [kv_ro] secret (7 bytes, sha256 {sha}):\n\
             INF [kv_ro] foobar\n"
        );
        let want = Digests::from([("secret".to_string(), sha.clone())]);
        assert_eq!(kv_ro_digests(&console), want);
        let dom0 = format!("curl: (7) refused\n{sha} secret\nnot a digest line\n");
        assert_eq!(sha256sum_digests(&dom0), want);
        assert_eq!(sha256sum_digests(&format!("{sha}  secret\n")), want);
    }
}
