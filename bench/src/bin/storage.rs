//! `cargo run --release -p mirage-nix-bench --bin storage`: the read-only stores over a block
//! device on unix: read throughput of one 64 MiB file, and the time to open (index) a store of
//! 10,000 entries, for tar and FAT, beside the references that read the same images.
//!
//! The disk images are the ones the build makes (`mirage-nix disks`: a deterministic tar and
//! FAT image of the folder), read through the unix `BlockFile` (a host file, page-cached after
//! the first run). References: the host's own file system for the same bytes (`std::fs::read`
//! of the plain file, and the passthrough store), GNU tar (`tar -xOf`) for the archive, mtools
//! (`mtype`) for the FAT image. Medians of several runs; each run opens the store and reads the
//! whole file, with one `get` (a 64 MiB buffer) or in pieces of 1 MiB.
//!
//! Then the kv_ro image itself, on unix (a process, the disk beside it) and on spt (the
//! project's spt loader from mirage-test-support, 32 MiB of guest memory, the disk as block
//! device `t`), `--logs=warn`, timed from start to exit and less a run over a store of one
//! empty file (booting, connecting the device): opening a store of 10,000 empty files (kv_ro
//! lists every directory and looks every file up), and reading 64 MiB held in four files of
//! 16 MiB (kv_ro's `get` and `digest` of each: two reads and one SHA-256 of every byte; a
//! 64 MiB file would not fit a 32 MiB guest whole).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirage_devices::kv::{Fat, Tar};
use mirage_devices::KvRo;
use mirage_nix::plan::DiskFormat;
use mirage_nix::render::disk::{image, Tree};
use mirage_nix_bench::{median, work_dir};
use mirage_test_support::image::Builder;
use mirage_test_support::solo5::spt::{self, Devices};
use mirage_unix::{BlockFile, Passthrough};

const BIG: usize = 64 << 20;
const ENTRIES: usize = 10_000;
const RUNS: usize = 7;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    mirage_runtime::block_on(&mirage_unix::Unix, f)
}

fn time(mut f: impl FnMut()) -> Duration {
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn mib_per_s(d: Duration) -> String {
    format!("{:.0}", BIG as f64 / (1 << 20) as f64 / d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// How a value is read.
#[derive(Clone, Copy)]
enum Read {
    /// With one `get`.
    Whole,
    /// With `get_partial` in pieces of 1 MiB, as a server streams a file.
    Pieces,
}

/// `read_all(kv, key, how)` reads the value of `key` and returns its length.
fn read_all<K: KvRo>(kv: &K, key: &str, how: Read) -> usize {
    match how {
        Read::Whole => block_on(kv.get(key)).unwrap().len(),
        Read::Pieces => {
            let mut done = 0;
            loop {
                let n = block_on(kv.get_partial(key, done as u64, 1 << 20))
                    .unwrap()
                    .len();
                if n == 0 {
                    return done;
                }
                done += n;
            }
        }
    }
}

/// `open_and(path, format, f)` connects the store in the image at `path` and gives `f` a
/// reader of its values.
fn open_and<T>(
    path: &Path,
    format: DiskFormat,
    f: impl Fn(&dyn Fn(&str, Read) -> usize) -> T,
) -> T {
    let disk = BlockFile::connect_read_only(path.to_str().unwrap()).unwrap();
    match format {
        DiskFormat::Tar => {
            let kv = block_on(Tar::connect(disk)).unwrap();
            f(&|key, how| read_all(&kv, key, how))
        }
        DiskFormat::Fat => {
            let kv = block_on(Fat::connect(disk)).unwrap();
            f(&|key, how| read_all(&kv, key, how))
        }
    }
}

fn command(cmd: &mut Command) -> Duration {
    time(|| {
        let status = cmd.stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "{cmd:?}");
    })
}

/// `end_to_end(dir)` prints the rows of the kv_ro image on unix and spt.
fn end_to_end(dir: &Path) {
    let mut empty = Tree::default();
    empty.insert("empty", Vec::new());
    let mut many = Tree::default();
    for i in 0..ENTRIES {
        many.insert(&format!("d{:03}/file {i:05}.txt", i / 100), Vec::new());
    }
    let mut four = Tree::default();
    for i in 0..4 {
        four.insert(
            &format!("part{i}.bin"),
            (0..BIG / 4).map(|j| (j * 7 % 251) as u8).collect(),
        );
    }
    println!();
    println!("| kv_ro image | open {ENTRIES} entries (ms) | read 64 MiB: get + digest (MiB/s) |");
    println!("|---|---:|---:|");
    let work = dir.join("images");
    for format in [DiskFormat::Tar, DiskFormat::Fat] {
        let ext = format.extension();
        let key = format!("--kv_ro={ext}");
        let unix = Builder::new(&work).configured("examples/kv_ro", "unix", &[&key]);
        let solo5 = Builder::new(&work)
            .host_target()
            .configured("examples/kv_ro", "spt", &[&key]);
        let beside = dir.join(format!("beside-{ext}"));
        std::fs::create_dir_all(&beside).unwrap();
        let image = beside.join("kv_ro");
        std::fs::copy(&unix.path, &image).unwrap();
        let disk = beside.join(format!("t.{ext}"));
        let mut rows = [
            (String::from("unix"), Vec::new()),
            (String::from("spt, 32 MiB"), Vec::new()),
        ];
        for tree in [&empty, &many, &four] {
            std::fs::write(
                &disk,
                mirage_nix::render::disk::image(tree, format).unwrap(),
            )
            .unwrap();
            rows[0].1.push(time(|| {
                let out = Command::new(&image).arg("--logs=warn").output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }));
            rows[1].1.push(time(|| {
                let run = spt::run(
                    &solo5.path,
                    "--logs=warn",
                    Devices::default().block("t", &disk),
                );
                assert_eq!(run.status, Some(0), "{}{}", run.stdout, run.stderr);
            }));
        }
        for (target, t) in rows {
            let open = t[1].saturating_sub(t[0]);
            let read = t[2].saturating_sub(t[0]);
            println!("| {ext}, {target} | {} | {} |", ms(open), mib_per_s(read));
        }
    }
}

fn main() {
    // The spt loader runs guests in a child: this same program, started again.
    spt::child();
    let dir = work_dir().join("storage");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("big")).unwrap();
    let data: Vec<u8> = (0..BIG).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join("big/file.bin"), &data).unwrap();
    let mut big = Tree::default();
    big.insert("file.bin", data);
    let mut many = Tree::default();
    for i in 0..ENTRIES {
        many.insert(
            &format!("d{:03}/file {i:05}.txt", i / 100),
            format!("{i}").into_bytes(),
        );
    }
    println!(
        "| store | {} MiB file: read (MiB/s) | open a store of {ENTRIES} entries (ms) |",
        BIG >> 20
    );
    println!("|---|---:|---:|");
    for format in [DiskFormat::Tar, DiskFormat::Fat] {
        let ext = format.extension();
        let big_img = dir.join(format!("big.{ext}"));
        let many_img = dir.join(format!("many.{ext}"));
        std::fs::write(&big_img, image(&big, format).unwrap()).unwrap();
        std::fs::write(&many_img, image(&many, format).unwrap()).unwrap();
        let name = if ext == "tar" { "Tar" } else { "Fat" };
        let opened = time(|| open_and(&many_img, format, |_| ()));
        for (how, label) in [
            (Read::Whole, "get"),
            (Read::Pieces, "get_partial, 1 MiB pieces"),
        ] {
            let read = time(|| {
                open_and(&big_img, format, |get| {
                    assert_eq!(get("file.bin", how), BIG)
                });
            });
            println!(
                "| {ext} (kv::{name} over BlockFile, {label}) | {} | {} |",
                mib_per_s(read),
                ms(opened)
            );
        }
        let (tool, read, listed) = match format {
            DiskFormat::Tar => (
                "GNU tar -xOf / -tf",
                command(
                    Command::new("tar")
                        .arg("-xOf")
                        .arg(&big_img)
                        .arg("file.bin"),
                ),
                command(Command::new("tar").arg("-tf").arg(&many_img)),
            ),
            DiskFormat::Fat => (
                "mtools mtype / mdir -/",
                command(
                    Command::new("mtype")
                        .env("MTOOLS_SKIP_CHECK", "1")
                        .arg("-i")
                        .arg(&big_img)
                        .arg("::/file.bin"),
                ),
                command(
                    Command::new("mdir")
                        .env("MTOOLS_SKIP_CHECK", "1")
                        .args(["-/", "-b", "-i"])
                        .arg(&many_img)
                        .arg("::/"),
                ),
            ),
        };
        println!(
            "| reference: {tool} (a process) | {} | {} |",
            mib_per_s(read),
            ms(listed)
        );
    }
    let host = time(|| assert_eq!(std::fs::read(dir.join("big/file.bin")).unwrap().len(), BIG));
    let pass = Passthrough::connect(dir.join("big").to_str().unwrap()).unwrap();
    let passthrough = time(|| assert_eq!(block_on(pass.get("file.bin")).unwrap().len(), BIG));
    println!(
        "| reference: host file system, std::fs::read | {} | - |",
        mib_per_s(host)
    );
    println!(
        "| reference: passthrough store | {} | - |",
        mib_per_s(passthrough)
    );
    end_to_end(&dir);
}
