//! Tests of the Solo5 images: each renders a committed plan with the generator and builds the
//! image with cargo and only the flags the plan records (as `nix build` does, with the host
//! triple as cargo's target so that build scripts are not linked as images).
//!
//! The structural tests need no tender: they check every example's hvt and spt image against
//! the ELF rules both tenders' loader applies (Solo5 `tenders/common/elf.c`) and the ABI and
//! manifest notes (`include/elf_abi.h`, `include/mft_abi.h`), and the manifest against the
//! plan's (`mirage-nix query manifest`).
//!
//! The tests that run an image take the tenders from `SOLO5_HVT` and `SOLO5_SPT` (Solo5 is not
//! packaged, and this project neither fetches nor builds it) and are skipped, saying why,
//! without them, or without a usable `/dev/kvm` for hvt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use mirage_nix::render::{self, Roots};

const HOST: &str = "x86_64-unknown-linux-gnu";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `work()` is this suite's scratch folder under the cargo target directory.
fn work() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(3).unwrap().join("solo5-images");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `examples()` is every example with committed hvt and spt plans.
fn examples() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let plans = e.path().join("plans");
            (plans.join("hvt.json").exists() && plans.join("spt.json").exists()).then_some(name)
        })
        .collect();
    out.sort();
    out
}

/// `image(example, target)` is [`image_of`] the example's folder.
fn image(example: &str, target: &str) -> (PathBuf, mirage_nix::plan::Plan) {
    image_of(&format!("examples/{example}"), target)
}

/// `image_of(dir, target)` renders `DIR/plans/TARGET.json` (DIR relative to the tree) and builds
/// its image once per test run; it returns the image's path and the plan.
fn image_of(dir: &str, target: &str) -> (PathBuf, mirage_nix::plan::Plan) {
    let plan_path = root().join(format!("{dir}/plans/{target}.json"));
    build(&plan_path, dir, &format!("{dir}/{target}"), target)
}

/// `image_configured(example, target, keys)` builds the example's image from the plan that
/// `mirage-nix query plan -t TARGET KEYS... examples/EXAMPLE` gives (the committed plan is
/// left alone).
fn image_configured(
    example: &str,
    target: &str,
    keys: &[&str],
) -> (PathBuf, mirage_nix::plan::Plan) {
    let dir = format!("examples/{example}");
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "run",
            "-q",
            "-p",
            "mirage-nix",
            "--",
            "query",
            "plan",
            "-t",
            target,
        ])
        .args(keys)
        .arg(&dir)
        .env("MIRAGE_NIX_ROOT", root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = format!("{dir}-{}/{target}", keys.join("_").replace(['-', '='], ""));
    let plan_path = work().join(format!("{}.json", key.replace('/', "_")));
    std::fs::write(&plan_path, out.stdout).unwrap();
    build(&plan_path, &dir, &key, target)
}

/// `build(plan_path, dir, key, target)` renders the plan at `plan_path` for the unikernel in
/// `dir` and builds its image, once per test run and `key`.
fn build(
    plan_path: &Path,
    dir: &str,
    key: &str,
    target: &str,
) -> (PathBuf, mirage_nix::plan::Plan) {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let root = root();
    let plan = mirage_nix::ops::read_plan(plan_path).unwrap_or_else(|e| panic!("{e:?}"));
    let key = key.to_string();
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return (path.clone(), plan);
    }
    let roots = Roots {
        mirage: root.clone(),
        unikernel: root.join(dir),
    };
    let out = work().join("crates").join(&key);
    let files = render::crate_files(&plan, &roots, &out).unwrap();
    render::write(&files, &out).unwrap();
    // One target folder per ABI: the two builds' flags differ.
    let cargo_target = work().join(format!("target-{target}"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&out)
        .args(["build", "--release", "--quiet", "--target", HOST])
        .env("CARGO_TARGET_DIR", &cargo_target)
        // Only the crate's .cargo/config.toml (the plan's flags) may set rustc flags.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of {key} failed");
    let image = work().join(&key).join(&plan.image.file);
    std::fs::create_dir_all(image.parent().unwrap()).unwrap();
    std::fs::copy(
        cargo_target.join(HOST).join("release").join(&plan.name),
        &image,
    )
    .unwrap();
    built.as_mut().unwrap().insert(key, image.clone());
    (image, plan)
}

// ------------------------------------------------------------------------------------------
// A small ELF64 reader: just what the checks need.

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

#[derive(Debug, Clone, Copy)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn phdrs(elf: &[u8]) -> Vec<Phdr> {
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

/// The first note of a PT_NOTE, which is all the tenders read: (namesz, descsz, type, name,
/// the bytes from the end of the 20-byte header on).
struct Note<'a> {
    namesz: u32,
    descsz: u32,
    kind: u32,
    name: &'a [u8],
    rest: &'a [u8],
    filesz: u64,
}

fn first_note<'a>(elf: &'a [u8], p: &Phdr) -> Note<'a> {
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

const ABI1: u32 = 0x3149_4241;
const MFT1: u32 = 0x3154_464d;

/// `check_image(elf, target, plan)` checks everything a tender checks before it runs an image,
/// and the manifest against the plan's; it returns a description of what it found.
fn check_image(elf: &[u8], target: &str, plan: &mirage_nix::plan::Plan) {
    // The ELF header (tenders/common/elf.c).
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "ELFCLASS64");
    assert_eq!(elf[5], 1, "little-endian");
    assert_eq!(elf[6], 1, "EV_CURRENT");
    assert_eq!(u16_at(elf, 16), 2, "ET_EXEC: not PIE");
    assert_eq!(u16_at(elf, 18), 62, "EM_X86_64");
    assert_eq!(u16_at(elf, 52), 64, "e_ehsize");
    assert_eq!(u16_at(elf, 54), 56, "e_phentsize");
    let phdrs = phdrs(elf);
    assert!(!phdrs.is_empty(), "e_phnum >= 1");
    let entry = u64_at(elf, 24);
    assert!(entry >= 0x10_0000, "entry {entry:#x} below 1 MiB");

    // Static: no interpreter, no dynamic section.
    assert!(phdrs
        .iter()
        .all(|p| p.kind != PT_INTERP && p.kind != PT_DYNAMIC));

    // The loaded segments.
    let loads: Vec<&Phdr> = phdrs
        .iter()
        .filter(|p| p.kind == PT_LOAD && p.filesz > 0)
        .collect();
    assert!(!loads.is_empty());
    let mut prev_end = 0u64;
    for p in &loads {
        assert!(
            p.vaddr >= 0x10_0000,
            "segment at {:#x} below 1 MiB",
            p.vaddr
        );
        assert!(p.align.is_power_of_two(), "p_align {:#x}", p.align);
        let start = p.vaddr & !(p.align - 1);
        let end = (p.vaddr + p.memsz).next_multiple_of(p.align);
        assert!(start >= prev_end, "segments overlap or are not ascending");
        assert_eq!(start % 4096, 0);
        assert_eq!(end % 4096, 0);
        assert!(p.memsz >= p.filesz);
        assert!(
            p.flags & (PF_W | PF_X) != PF_W | PF_X,
            "a writable and executable segment at {:#x}",
            p.vaddr
        );
        prev_end = end;
    }
    let text = loads
        .iter()
        .find(|p| p.vaddr <= entry && entry < p.vaddr + p.filesz)
        .expect("the entry is in a loaded segment");
    assert!(text.flags & PF_X != 0, "the entry's segment is executable");

    // The notes: each Solo5 note first in its own PT_NOTE.
    let notes: Vec<Note> = phdrs
        .iter()
        .filter(|p| p.kind == PT_NOTE)
        .map(|p| first_note(elf, p))
        .collect();
    let abi: Vec<&Note> = notes.iter().filter(|n| n.kind == ABI1).collect();
    let mft: Vec<&Note> = notes.iter().filter(|n| n.kind == MFT1).collect();
    assert_eq!(abi.len(), 1, "one PT_NOTE starts with the ABI1 note");
    assert_eq!(mft.len(), 1, "one PT_NOTE starts with the MFT1 note");

    // ABI1 (include/elf_abi.h): struct abi1_info { target, version, 0, 0 }.
    let abi = abi[0];
    assert_eq!((abi.namesz, abi.name), (6, &b"Solo5\0\0\0"[..]));
    assert_eq!(abi.descsz, 16);
    assert!(abi.filesz >= 20 + 16);
    let want_target = match target {
        "hvt" => 1,
        "spt" => 2,
        other => panic!("not a Solo5 target: {other}"),
    };
    let desc = abi.rest;
    assert_eq!(
        [
            u32_at(desc, 0),
            u32_at(desc, 4),
            u32_at(desc, 8),
            u32_at(desc, 12)
        ],
        [want_target, 2, 0, 0],
        "abi_target, abi_version (2), reserved"
    );

    // MFT1 (include/mft_abi.h): 4 bytes of padding to 8-align the descriptor, then
    // struct mft { version, entries, entry[entries] } with 104-byte entries.
    let mft = mft[0];
    assert_eq!((mft.namesz, mft.name), (6, &b"Solo5\0\0\0"[..]));
    let devices = plan.manifest_json()["devices"].as_array().unwrap().clone();
    let entries = devices.len() + 1;
    assert_eq!(mft.descsz as usize, 4 + 8 + entries * 104, "n_descsz");
    assert!(mft.filesz >= 20 + u64::from(mft.descsz));
    let m = &mft.rest[4..];
    assert_eq!(u32_at(m, 0), 1, "MFT_VERSION");
    assert_eq!(u32_at(m, 4) as usize, entries, "entries");
    let mut found = Vec::new();
    for i in 0..entries {
        let e = &m[8 + i * 104..8 + (i + 1) * 104];
        let name_len = e[..68]
            .iter()
            .position(|&b| b == 0)
            .expect("name[67] is NUL");
        let name = std::str::from_utf8(&e[..name_len]).unwrap();
        let kind = u32_at(e, 68);
        assert!(
            e[72..].iter().all(|&b| b == 0),
            "entry {i}: nothing attached"
        );
        if i == 0 {
            assert_eq!((name, kind), ("", 1 << 30), "entry 0 is MFT_RESERVED_FIRST");
            continue;
        }
        let kind = match kind {
            1 => "BLOCK_BASIC",
            2 => "NET_BASIC",
            k => panic!("entry {i}: kind {k}"),
        };
        found.push(serde_json::json!({ "name": name, "type": kind }));
    }
    assert_eq!(found, devices, "the manifest is the plan's");
}

fn check(target: &str) {
    let examples = examples();
    assert!(examples.len() >= 5, "{examples:?}");
    for example in examples {
        let (path, plan) = image(&example, target);
        let elf = std::fs::read(&path).unwrap();
        check_image(&elf, target, &plan);
        eprintln!("{}: {} bytes, ok", path.display(), elf.len());
    }
}

#[test]
fn every_hvt_image_follows_the_abi() {
    check("hvt");
}

#[test]
fn every_spt_image_follows_the_abi() {
    check("spt");
}

#[test]
fn the_manifest_json_is_solo5s() {
    let plan = mirage_nix::ops::read_plan(&root().join("examples/conduit_server/plans/hvt.json"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        plan.manifest_json(),
        serde_json::json!({"type": "solo5.manifest", "version": 1,
                           "devices": [{"name": "service", "type": "NET_BASIC"}]})
    );
}

// ------------------------------------------------------------------------------------------
// Running images under a real tender.

/// `tender(target)` is the tender to run `target` images with, or why there is none.
fn tender(target: &str) -> Result<PathBuf, String> {
    let var = format!("SOLO5_{}", target.to_uppercase());
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{var} is not set (the path of solo5-{target})"))?;
    if !path.exists() {
        return Err(format!("{var}={} does not exist", path.display()));
    }
    if target == "hvt" {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(|e| format!("/dev/kvm is not usable: {e}"))?;
    }
    Ok(path)
}

macro_rules! require_tender {
    ($target:expr) => {
        match tender($target) {
            Ok(t) => t,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `run(tender, image, args)` runs `tender --mem=32 -- image args...` for at most 60 s.
fn run(tender: &Path, image: &Path, args: &[&str]) -> Run {
    let child = Command::new(tender)
        .arg("--mem=32")
        .arg("--")
        .arg(image)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

fn hello_runs(target: &str) {
    let tender = require_tender!(target);
    let (image, _) = image("hello", target);
    // The tender joins its arguments with spaces: quote the message (`cmdline::split`).
    let r = run(&tender, &image, &["--hello='Hi from Solo5'"]);
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("[hello]")).collect();
    assert_eq!(
        lines, ["INF [hello] Hi from Solo5"; 4],
        "{}{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    let bad = run(&tender, &image, &["--nope=1"]);
    assert_eq!(bad.status, Some(64), "{}{}", bad.stdout, bad.stderr);
}

#[test]
fn hello_runs_under_solo5_spt() {
    hello_runs("spt");
}

#[test]
fn hello_runs_under_solo5_hvt() {
    hello_runs("hvt");
}

// ------------------------------------------------------------------------------------------
// A minimal spt loader, so that images run here without Solo5's tender.
//
// It does what `solo5-spt` does before it jumps to an image (Solo5 `include/spt_abi.h`,
// `tenders/spt/spt_core.c`, as described in ../shared/reference/unikernel-abi.md §2.6): map
// guest memory at 0x10000, load the PT_LOAD segments at their addresses with their
// protections, write `struct spt_boot_info` at 0x11000 followed by the manifest (with a block
// device attached if asked) and the command line, make the epoll and timer fds, and enter the
// image with RSP = mem_size - 8 and RDI = the boot info. It applies the tender's seccomp
// filter (the network module's rules aside: it attaches no network device); it is a check of the boot path, console, clocks, sleeping,
// block transfers and exit codes, not a tender. It runs in a child process: the test binary itself, started
// again with `MINI_SPT_IMAGE` set, running only `mini_spt_child`.

const MINI_SPT_MEM: u64 = 32 << 20;

/// `mini_spt(image, cmdline)` runs `image` with the minimal loader in a child process.
fn mini_spt(image: &Path, cmdline: &str) -> Run {
    mini_spt_with(image, cmdline, None)
}

/// `mini_spt_with(image, cmdline, block)` runs `image`, attaching `block` (`NAME=FILE`).
fn mini_spt_with(image: &Path, cmdline: &str, block: Option<&str>) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(b) = block {
        command.env("MINI_SPT_BLOCK", b);
    }
    let child = mini_spt_spawn(command, image, cmdline);
    finish(child)
}

/// `mini_spt_spawn(command, image, cmdline)` starts the child side of the loader.
fn mini_spt_spawn(mut command: Command, image: &Path, cmdline: &str) -> std::process::Child {
    command
        .args([
            "--exact",
            "mini_spt_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MINI_SPT_IMAGE", image)
        .env("MINI_SPT_CMDLINE", cmdline)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `finish(child)` waits at most 60 s for a tender or the loader's child, kills it if it is
/// still running, and collects its output.
fn finish(mut child: std::process::Child) -> Run {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The child side: load and enter the image named by `MINI_SPT_IMAGE` (the process ends with
/// the image's `exit_group`). Without the variable, as in ordinary test runs, it does nothing.
#[test]
fn mini_spt_child() {
    let Some(image) = std::env::var_os("MINI_SPT_IMAGE") else {
        return;
    };
    let cmdline = std::env::var("MINI_SPT_CMDLINE").unwrap_or_default();
    let elf = std::fs::read(image).unwrap();
    // End the harness's "test mini_spt_child ... " line: the image's output starts afresh.
    println!();
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    mini_spt_enter(&elf, &cmdline);
}

fn check_errno(what: &str, r: i64) -> i64 {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

fn mini_spt_enter(elf: &[u8], cmdline: &str) -> ! {
    const BASE: u64 = 0x10000;
    const BOOT_INFO: u64 = 0x11000;
    let mem = MINI_SPT_MEM;
    // SAFETY: a fixed anonymous mapping of the guest's range; MAP_FIXED_NOREPLACE fails rather
    // than replace anything this process has mapped there.
    let at = unsafe {
        libc::mmap(
            BASE as *mut libc::c_void,
            (mem - BASE) as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    assert_eq!(at as u64, BASE, "{}", std::io::Error::last_os_error());
    // SAFETY: the mapping above is ours, readable and writable, `mem - BASE` bytes long.
    let guest = unsafe { std::slice::from_raw_parts_mut(BASE as *mut u8, (mem - BASE) as usize) };
    let g = |addr: u64| (addr - BASE) as usize;
    let mut kernel_end = 0;
    let loads: Vec<Phdr> = phdrs(elf)
        .into_iter()
        .filter(|p| p.kind == PT_LOAD && p.filesz > 0)
        .collect();
    for p in &loads {
        let src = &elf[p.offset as usize..(p.offset + p.filesz) as usize];
        guest[g(p.vaddr)..g(p.vaddr) + src.len()].copy_from_slice(src);
        kernel_end = kernel_end.max((p.vaddr + p.memsz).next_multiple_of(4096));
    }
    // The manifest: the image's, copied; no devices may be declared.
    let mft_phdr = phdrs(elf)
        .into_iter()
        .filter(|p| p.kind == PT_NOTE)
        .find(|p| first_note(elf, p).kind == MFT1)
        .expect("an MFT1 note");
    let note = first_note(elf, &mft_phdr);
    let mft = &note.rest[4..4 + note.descsz as usize - 4];
    let mut mft = mft.to_vec();
    let mut block_fd = -1;
    // Block devices: `MINI_SPT_BLOCK=NAME=FILE` attaches FILE as NAME, 512-byte blocks.
    if let Ok(spec) = std::env::var("MINI_SPT_BLOCK") {
        let (name, path) = spec.split_once('=').expect("NAME=FILE");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let capacity = file.metadata().unwrap().len();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
        block_fd = fd;
        let entries = u32_at(&mft, 4) as usize;
        let i = (1..entries)
            .find(|i| {
                let e = &mft[8 + i * 104..];
                &e[..name.len()] == name.as_bytes() && e[name.len()] == 0 && u32_at(e, 68) == 1
            })
            .expect("the block device is in the manifest");
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        e[72..80].copy_from_slice(&capacity.to_le_bytes());
        e[80..82].copy_from_slice(&512u16.to_le_bytes());
        e[88..92].copy_from_slice(&fd.to_le_bytes());
        e[96] = 1;
    }
    // A network device: `MINI_SPT_NET=NAME=FD` attaches the inherited datagram socket FD
    // (one frame per datagram, as a tap gives them) as NAME, MAC 02:00:00:00:00:02, MTU 1500.
    let mut net = None;
    if let Ok(spec) = std::env::var("MINI_SPT_NET") {
        let (name, fd) = spec.split_once('=').expect("NAME=FD");
        let fd: i32 = fd.parse().unwrap();
        let entries = u32_at(&mft, 4) as usize;
        let i = (1..entries)
            .find(|i| {
                let e = &mft[8 + i * 104..];
                &e[..name.len()] == name.as_bytes() && e[name.len()] == 0 && u32_at(e, 68) == 2
            })
            .expect("the network device is in the manifest");
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        e[72..78].copy_from_slice(&GUEST_MAC);
        e[78..80].copy_from_slice(&1500u16.to_le_bytes());
        e[88..92].copy_from_slice(&fd.to_le_bytes());
        e[96] = 1;
        net = Some((i as u64, fd));
    }
    // As the tenders do: every declared device must be attached.
    for i in 1..u32_at(&mft, 4) as usize {
        assert_eq!(
            mft[8 + i * 104 + 96],
            1,
            "device {i} is declared but not attached"
        );
    }
    let mft_at = BOOT_INFO + 40;
    let cmdline_at = mft_at + mft.len() as u64;
    guest[g(mft_at)..g(mft_at) + mft.len()].copy_from_slice(&mft);
    guest[g(cmdline_at)..g(cmdline_at) + cmdline.len()].copy_from_slice(cmdline.as_bytes());
    guest[g(cmdline_at) + cmdline.len()] = 0;
    // SAFETY: plain system calls on fds this process creates.
    let (epoll, timer) = unsafe {
        let epoll = check_errno("epoll_create1", libc::epoll_create1(0).into());
        let timer = check_errno(
            "timerfd_create",
            libc::timerfd_create(libc::CLOCK_MONOTONIC, 0).into(),
        );
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0xffff_fffe,
        };
        check_errno(
            "epoll_ctl",
            libc::epoll_ctl(epoll as i32, libc::EPOLL_CTL_ADD, timer as i32, &mut ev).into(),
        );
        if let Some((handle, fd)) = net {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            check_errno(
                "fcntl",
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK).into(),
            );
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: handle,
            };
            check_errno(
                "epoll_ctl",
                libc::epoll_ctl(epoll as i32, libc::EPOLL_CTL_ADD, fd, &mut ev).into(),
            );
        }
        (epoll as i32, timer as i32)
    };
    let bi = g(BOOT_INFO);
    guest[bi..bi + 8].copy_from_slice(&mem.to_le_bytes());
    guest[bi + 8..bi + 16].copy_from_slice(&kernel_end.to_le_bytes());
    guest[bi + 16..bi + 24].copy_from_slice(&cmdline_at.to_le_bytes());
    guest[bi + 24..bi + 32].copy_from_slice(&mft_at.to_le_bytes());
    guest[bi + 32..bi + 36].copy_from_slice(&epoll.to_le_bytes());
    guest[bi + 36..bi + 40].copy_from_slice(&timer.to_le_bytes());
    for p in &loads {
        let start = p.vaddr & !4095;
        let end = (p.vaddr + p.memsz).next_multiple_of(4096);
        let mut prot = libc::PROT_READ;
        if p.flags & PF_W != 0 {
            prot |= libc::PROT_WRITE;
        }
        if p.flags & PF_X != 0 {
            prot |= libc::PROT_EXEC;
        }
        // SAFETY: the range lies inside the guest mapping.
        let r = unsafe { libc::mprotect(start as *mut libc::c_void, (end - start) as usize, prot) };
        check_errno("mprotect", r.into());
    }
    let entry = u64_at(elf, 24);
    mini_spt_seccomp(epoll, timer, block_fd, net.map_or(-1, |n| n.1));
    // SAFETY: the image is loaded as its program headers say and the boot info is in place;
    // control passes to it for good, on its own stack at the top of guest memory, as
    // `spt_launch` does.
    unsafe {
        std::arch::asm!(
            "mov rsp, {sp}",
            "jmp {entry}",
            sp = in(reg) mem - 8,
            entry = in(reg) entry,
            in("rdi") BOOT_INFO,
            options(noreturn)
        )
    }
}

/// `mini_spt_seccomp(epoll, timer, block)` confines this thread, as `solo5-spt` confines the
/// guest, to the system calls its seccomp filter allows (`tenders/spt/spt_core.c`,
/// `spt_module_block.c`, `spt_module_net.c`): `write` to fd 1, `read` and `write` on the
/// network fd, `pread64`/`pwrite64` of 512 bytes on the block fd,
/// `clock_gettime` of `CLOCK_REALTIME` or `CLOCK_MONOTONIC`, `epoll_pwait` on the epoll fd,
/// `timerfd_settime` on the timer fd, and `exit_group`. Anything else kills the process.
fn mini_spt_seccomp(epoll: i32, timer: i32, block: i32, net: i32) {
    const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000;
    const KILL: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
    const ARG2: u32 = 32;
    let op = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let mut f = vec![
        op(LD_ABS, ARCH, 0, 0),
        op(JEQ, 0xc000_003e, 1, 0), // AUDIT_ARCH_X86_64
        op(RET, KILL, 0, 0),
        op(LD_ABS, NR, 0, 0),
        op(JEQ, 231, 0, 1), // exit_group
        op(RET, ALLOW, 0, 0),
    ];
    // `nr` is allowed when its first argument is `fd`. Each rule leaves A holding nr for the
    // next; the last instruction kills.
    let mut fd_is = |nr: u32, fd: i32| {
        f.extend([
            op(JEQ, nr, 0, 4),
            op(LD_ABS, ARG0, 0, 0),
            op(JEQ, fd as u32, 0, 1),
            op(RET, ALLOW, 0, 0),
            op(LD_ABS, NR, 0, 0),
        ]);
    };
    fd_is(1, 1); // write(1, ...)
    if net >= 0 {
        fd_is(0, net); // read(net, ...)
        fd_is(1, net); // write(net, ...)
    }
    fd_is(281, epoll); // epoll_pwait
    fd_is(286, timer); // timerfd_settime
    for nr in [17, 18] {
        // pread64 / pwrite64 of one 512-byte block on the block fd
        f.extend([
            op(JEQ, nr, 0, 6),
            op(LD_ABS, ARG0, 0, 0),
            op(JEQ, block as u32, 0, 3),
            op(LD_ABS, ARG2, 0, 0),
            op(JEQ, 512, 0, 1),
            op(RET, ALLOW, 0, 0),
            op(LD_ABS, NR, 0, 0),
        ]);
    }
    f.extend([
        op(JEQ, 228, 0, 4), // clock_gettime(0 | 1, ...)
        op(LD_ABS, ARG0, 0, 0),
        op(JGT, 1, 1, 0),
        op(RET, ALLOW, 0, 0),
        op(LD_ABS, NR, 0, 0),
        op(RET, KILL, 0, 0),
    ]);
    let prog = libc::sock_fprog {
        len: f.len() as u16,
        filter: f.as_mut_ptr(),
    };
    // SAFETY: `prctl` with a valid filter program that outlives the call (the kernel copies
    // it); it confines this thread only.
    unsafe {
        check_errno(
            "no_new_privs",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into(),
        );
        check_errno(
            "seccomp",
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _,
            )
            .into(),
        );
    }
}

/// `guest(run)` is what the image wrote: the child's output after the harness's first line.
fn guest(run: &Run) -> &str {
    let marker = "test mini_spt_child ... \n";
    match run.stdout.find(marker) {
        Some(i) => &run.stdout[i + marker.len()..],
        None => "",
    }
}

#[test]
fn hello_runs_under_the_minimal_spt_loader() {
    let (image, _) = image("hello", "spt");
    let started = std::time::Instant::now();
    let r = mini_spt(&image, "--hello='Hi from spt'");
    let took = started.elapsed();
    assert_eq!(
        guest(&r),
        "INF [hello] Hi from spt\n".repeat(4),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    // Four one-second sleeps, through the timer fd and epoll.
    assert!(took >= Duration::from_secs(4), "took {took:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn bad_keys_print_the_usage_and_exit_64_under_the_minimal_spt_loader() {
    let (image, _) = image("hello", "spt");
    let r = mini_spt(&image, "--nope=1");
    assert_eq!(r.status, Some(64), "{}{}", r.stdout, r.stderr);
    assert!(guest(&r).starts_with("hello: "), "{}", r.stdout);
    assert!(guest(&r).contains("--nope"), "{}", r.stdout);
    let help = mini_spt(&image, "--help");
    assert_eq!(help.status, Some(63), "{}{}", help.stdout, help.stderr);
    assert!(help.stdout.contains("--hello"), "{}", help.stdout);
}

#[test]
fn console_runs_under_the_minimal_spt_loader() {
    let (image, _) = image("console", "spt");
    let r = mini_spt(&image, "");
    assert_eq!(
        guest(&r),
        "hello\nworld\n".repeat(4),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
}

#[test]
fn kv_ro_reads_its_crunched_files_under_the_minimal_spt_loader() {
    let (image, _) = image("kv_ro", "spt");
    let r = mini_spt(&image, "");
    let expected = "\
INF [kv_ro] store has secret
INF [kv_ro] store has subdir/
INF [kv_ro] secret (7 bytes, sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f):
INF [kv_ro] foobar
INF [kv_ro] subdir/hello.txt (40 bytes, sha256 252874e9638df218c92d49b0a53330e94f8b3ba1394bf559cf638671b70f30ae):
INF [kv_ro] Hello from a subdirectory of the store.
";
    assert_eq!(guest(&r), expected, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
}

#[test]
fn a_panic_prints_its_message_and_aborts_with_255_under_the_minimal_spt_loader() {
    // The xen runtime's panicking fixture, planned for spt too.
    let (image, _) = image_of("runtime/xen/tests/fixtures/crash", "spt");
    let r = mini_spt(&image, "--why=testing");
    assert!(
        guest(&r).starts_with("panicked at ") && guest(&r).contains("deliberate panic: testing\n"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status, Some(255), "{}{}", r.stdout, r.stderr);
}

#[test]
fn block_writes_reads_back_and_checks_sectors_under_the_minimal_spt_loader() {
    let (image, _) = image("block", "spt");
    let disk = work().join("block-storage.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let spec = format!("storage={}", disk.display());
    let r = mini_spt_with(&image, "", Some(&spec));
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    let data = std::fs::read(&disk).unwrap();
    assert!(data[..512].iter().any(|&b| b != 0), "sector 0 was written");
}

#[test]
fn kv_ro_reads_a_tar_archive_over_a_block_device_under_the_minimal_spt_loader() {
    let (crunch, _) = image("kv_ro", "spt");
    let expected = mini_spt(&crunch, "");
    let (image, plan) = image_configured("kv_ro", "spt", &["--kv_ro=tar"]);
    assert_eq!(
        plan.manifest_json()["devices"],
        serde_json::json!([{"name": "t", "type": "BLOCK_BASIC"}])
    );
    check_image(&std::fs::read(&image).unwrap(), "spt", &plan);
    let tar = work().join("kv_ro-t.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(root().join("examples/kv_ro/t"))
        .arg("-cf")
        .arg(&tar)
        .args(["secret", "subdir"])
        .status()
        .unwrap();
    assert!(status.success());
    let r = mini_spt_with(&image, "", Some(&format!("t={}", tar.display())));
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        guest(&r),
        guest(&expected),
        "tar reads what crunch embedded"
    );
}

// ------------------------------------------------------------------------------------------
// Frames to and from conduit_server's network device, over a datagram socket pair.

/// The MAC address the minimal loader gives the guest's network device.
const GUEST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The test's side of the link.
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const HOST_IP: [u8; 4] = [10, 0, 0, 1];
const GUEST_IP: [u8; 4] = [10, 0, 0, 2];

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `arp(op, target_mac, target_ip)` is an ARP frame from the host side.
fn arp(op: u16, dst: [u8; 6], target_mac: [u8; 6], target_ip: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&HOST_MAC);
    a.extend_from_slice(&HOST_IP);
    a.extend_from_slice(&target_mac);
    a.extend_from_slice(&target_ip);
    ethernet(dst, 0x0806, &a)
}

/// The test's TCP port.
const HOST_PORT: u16 = 40000;

/// `tcp(port, flags, seq, ack, payload)` is a TCP segment from 10.0.0.1:40000 to the guest's
/// `port`, in an IPv4 packet in an Ethernet frame.
fn tcp(port: u16, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&HOST_PORT.to_be_bytes());
    tcp.extend_from_slice(&port.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags]); // 5 words of header
    tcp.extend_from_slice(&8192u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(payload);
    let len = (tcp.len() as u16).to_be_bytes();
    let pseudo = [&HOST_IP[..], &GUEST_IP[..], &[0, 6], &len[..]].concat();
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + tcp.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&HOST_IP);
    ip.extend_from_slice(&GUEST_IP);
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ethernet(GUEST_MAC, 0x0800, &ip)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// A TCP segment from the guest: flags, sequence and acknowledgement numbers, payload.
struct Segment {
    flags: u8,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
}

/// `segment(frame, port)` is the TCP segment in `frame` from the guest's `port` to ours.
fn segment(f: &[u8], port: u16) -> Option<Segment> {
    if f.len() < 54 || f[12..14] != [8, 0] || f[23] != 6 {
        return None;
    }
    let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let ip = &f[14..(14 + ip_len).min(f.len())];
    let t = &ip[usize::from(ip[0] & 0xf) * 4..];
    let from = u16::from_be_bytes([t[0], t[1]]);
    let to = u16::from_be_bytes([t[2], t[3]]);
    if from != port || to != HOST_PORT {
        return None;
    }
    let data = usize::from(t[12] >> 4) * 4;
    Some(Segment {
        flags: t[13],
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        payload: t[data..].to_vec(),
    })
}

/// `http_get(host)` is the response to `GET /` from the guest at 10.0.0.2:8080, reached
/// through `host`, the test's end of the guest's link: the test answers and sends ARP, opens
/// the TCP connection, sends the request, acknowledges the response and closes. It returns
/// whether ARP and the handshake succeeded, and the response's bytes.
fn http_get(host: &std::os::unix::net::UnixDatagram) -> (bool, bool, Vec<u8>) {
    host.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // ARP, then a TCP handshake, GET / and the response until the server's FIN.
    let request = b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: close\r\n\r\n";
    let iss = 1000u32;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut arp_reply = false;
    let mut syn_ack = false;
    let mut rcv_nxt = 0u32; // the next byte expected from the server
    let mut response = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 2048];
    while !closed && std::time::Instant::now() < deadline {
        let frame = if !arp_reply {
            arp(1, [0xff; 6], [0; 6], GUEST_IP)
        } else if !syn_ack {
            tcp(8080, SYN, iss, 0, &[])
        } else {
            // (Re)send the request with the acknowledgement of what we have.
            tcp(8080, ACK | PSH, iss + 1, rcv_nxt, request)
        };
        if host.send(&frame).is_err() {
            break; // the guest is gone
        }
        while let Ok(n) = host.recv(&mut buf) {
            let f = &buf[..n];
            if n >= 42 && f[12..14] == [8, 6] {
                let op = u16::from_be_bytes([f[20], f[21]]);
                if op == 2 && f[22..28] == GUEST_MAC && f[28..32] == GUEST_IP {
                    arp_reply = true;
                } else if op == 1 && f[38..42] == HOST_IP {
                    // The guest asks for us.
                    let _ = host.send(&arp(2, GUEST_MAC, GUEST_MAC, GUEST_IP));
                }
                continue;
            }
            let Some(seg) = segment(f, 8080) else {
                continue;
            };
            if seg.flags & (SYN | ACK) == SYN | ACK && !syn_ack {
                syn_ack = true;
                rcv_nxt = seg.seq.wrapping_add(1);
                let _ = host.send(&tcp(8080, ACK | PSH, iss + 1, rcv_nxt, request));
                continue;
            }
            if !syn_ack {
                continue;
            }
            let acked_request = seg.ack == iss + 1 + request.len() as u32;
            if seg.seq == rcv_nxt && !seg.payload.is_empty() {
                response.extend_from_slice(&seg.payload);
                rcv_nxt = rcv_nxt.wrapping_add(seg.payload.len() as u32);
            }
            let fin =
                seg.flags & FIN != 0 && seg.seq.wrapping_add(seg.payload.len() as u32) == rcv_nxt;
            if fin {
                rcv_nxt = rcv_nxt.wrapping_add(1);
            }
            let seq = if acked_request {
                iss + 1 + request.len() as u32
            } else {
                iss + 1
            };
            let _ = host.send(&tcp(
                8080,
                ACK | if fin { FIN } else { 0 },
                seq,
                rcv_nxt,
                &[],
            ));
            if fin {
                closed = true;
                break;
            }
        }
    }
    (arp_reply, syn_ack, response)
}

#[test]
fn conduit_server_answers_an_http_get_under_the_minimal_spt_loader() {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::net::UnixDatagram;
    let (image, plan) = image("conduit_server", "spt");
    assert_eq!(
        plan.manifest_json()["devices"],
        serde_json::json!([{"name": "service", "type": "NET_BASIC"}])
    );
    let mut fds = [0i32; 2];
    // SAFETY: `socketpair` writes two descriptors into `fds`; the guest's end is inherited by
    // the child (no close-on-exec), the test's is owned by `host` below.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fds[0]` is a fresh descriptor nothing else owns.
    let host = unsafe { UnixDatagram::from_raw_fd(fds[0]) };
    // SAFETY: as above; the parent keeps the child's end open only until the child started.
    let guest_end = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) };
    // SAFETY: close-on-exec on our end, so only the guest's end reaches the child.
    unsafe { libc::fcntl(host.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env("MINI_SPT_NET", format!("service={}", guest_end.as_raw_fd()));
    let child = mini_spt_spawn(command, &image, "");
    drop(guest_end);
    let (arp_reply, syn_ack, response) = http_get(&host);
    let mut child = child;
    let _ = child.kill();
    let run = finish(child);
    let text = String::from_utf8_lossy(&response);
    assert!(
        arp_reply && syn_ack,
        "no ARP reply or SYN-ACK from 10.0.0.2 (status {:?}): {}{}",
        run.status,
        run.stdout,
        run.stderr
    );
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nhello mirage world!\n"),
        "response {text:?}; guest: {}{}",
        run.stdout,
        run.stderr
    );
}

// ------------------------------------------------------------------------------------------
// A minimal hvt monitor on /dev/kvm, so that hvt images run here without Solo5's tender.
//
// It sets the guest up as `solo5-hvt` does (Solo5 `tenders/hvt/hvt_kvm_x86_64.c`,
// `hvt_cpu_x86_64.c`, as described in ../shared/reference/unikernel-abi.md §2.5): one memory
// slot from guest-physical 0, identity page tables with 2 MiB pages (PML4 0x2000, PDPT
// 0x3000, PD 0x4000), a GDT at 0x1000 (code 0x08, data 0x10), long mode with CR0 =
// PE|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = LME|LMA, RIP = entry, RSP = mem_size - 8,
// RDI = 0x10000 holding `struct hvt_boot_info`, the manifest and the command line. It serves
// the hypercalls an image without devices makes (WALLTIME, PUTS, POLL, HALT) and is not a
// tender: no devices, no seccomp, the first 64 KiB are mapped.

const MINI_HVT_MEM: u64 = 32 << 20;

/// What a run under the minimal monitor gave: the guest's console and its exit status (None
/// if it stopped otherwise: the reason's text).
struct HvtRun {
    console: String,
    status: Result<i32, String>,
}

fn kvm_ioctl(fd: i32, request: u64, arg: u64) -> i64 {
    // SAFETY: each caller passes a KVM request with the argument kind it takes (an integer,
    // or a pointer to a structure of the request's size that lives for the call).
    let r = unsafe { libc::ioctl(fd, request as _, arg) };
    r as i64
}

/// A device the minimal monitor attaches.
enum HvtDevice {
    /// A file as a block device of 512-byte blocks.
    Block(std::fs::File),
    /// A datagram socket as a network device (MAC [`GUEST_MAC`], MTU 1500).
    Net(std::os::unix::net::UnixDatagram),
}

/// `mini_hvt(elf, cmdline)` runs the hvt image `elf` until it halts, at most 30 s.
fn mini_hvt(elf: &[u8], cmdline: &str) -> Result<HvtRun, String> {
    mini_hvt_with(elf, cmdline, Vec::new(), &AtomicBool::new(false))
}

/// `mini_hvt_with(elf, cmdline, devices, stop)` runs `elf` with `devices` attached by name,
/// until it halts, 30 s pass or `stop` is set.
fn mini_hvt_with(
    elf: &[u8],
    cmdline: &str,
    devices: Vec<(&str, HvtDevice)>,
    stop: &AtomicBool,
) -> Result<HvtRun, String> {
    const KVM_GET_VCPU_MMAP_SIZE: u64 = 0xae04;
    const KVM_CREATE_VM: u64 = 0xae01;
    const KVM_CREATE_VCPU: u64 = 0xae41;
    const KVM_SET_USER_MEMORY_REGION: u64 = 0x4020_ae46;
    const KVM_GET_SREGS: u64 = 0x8138_ae83;
    const KVM_SET_SREGS: u64 = 0x4138_ae84;
    const KVM_SET_REGS: u64 = 0x4090_ae82;
    const KVM_RUN: u64 = 0xae80;
    const KVM_GET_TSC_KHZ: u64 = 0xaea3;
    const KVM_EXIT_IO: u32 = 2;
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    use std::os::fd::AsRawFd;
    let vm = kvm_ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0);
    if vm < 0 {
        return Err(format!(
            "KVM_CREATE_VM: {}",
            std::io::Error::last_os_error()
        ));
    }
    let vm = vm as i32;
    let mem = MINI_HVT_MEM;
    // SAFETY: an anonymous private mapping, owned by this function's caller for the run.
    let host = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mem as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(host, libc::MAP_FAILED);
    // SAFETY: the mapping above, `mem` bytes, readable and writable, used only through this.
    let guest = unsafe { std::slice::from_raw_parts_mut(host as *mut u8, mem as usize) };
    let region: [u64; 4] = [0, 0, mem, host as u64]; // slot 0, flags 0, gpa 0, size, host
    if kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, region.as_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_SET_USER_MEMORY_REGION: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB (present, writable, large).
    let put = |guest: &mut [u8], at: u64, v: u64| {
        guest[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(guest, 0x2000, 0x3000 | 3);
    put(guest, 0x3000, 0x4000 | 3);
    for i in 0..mem / (2 << 20) {
        put(guest, 0x4000 + 8 * i, (i * (2 << 20)) | 0x83);
    }
    // GDT: null, 64-bit code, data.
    put(guest, 0x1008, 0x00af_9b00_0000_ffff);
    put(guest, 0x1010, 0x00cf_9300_0000_ffff);
    // The image.
    let mut kernel_end = 0;
    for p in phdrs(elf)
        .iter()
        .filter(|p| p.kind == PT_LOAD && p.filesz > 0)
    {
        let src = &elf[p.offset as usize..(p.offset + p.filesz) as usize];
        guest[p.vaddr as usize..p.vaddr as usize + src.len()].copy_from_slice(src);
        kernel_end = kernel_end.max((p.vaddr + p.memsz).next_multiple_of(4096));
    }
    let mft_phdr = phdrs(elf)
        .into_iter()
        .filter(|p| p.kind == PT_NOTE)
        .find(|p| first_note(elf, p).kind == MFT1)
        .ok_or("no MFT1 note")?;
    let note = first_note(elf, &mft_phdr);
    let mut mft = note.rest[4..4 + note.descsz as usize - 4].to_vec();
    let entries = u32_at(&mft, 4) as usize;
    let mut attached: HashMap<usize, HvtDevice> = HashMap::new();
    for (name, device) in devices {
        let i = (1..entries)
            .find(|i| {
                let e = &mft[8 + i * 104..];
                &e[..name.len()] == name.as_bytes() && e[name.len()] == 0
            })
            .ok_or(format!("{name} is not in the manifest"))?;
        let e = &mut mft[8 + i * 104..8 + (i + 1) * 104];
        match &device {
            HvtDevice::Block(f) => {
                e[72..80].copy_from_slice(&f.metadata().unwrap().len().to_le_bytes());
                e[80..82].copy_from_slice(&512u16.to_le_bytes());
            }
            HvtDevice::Net(sock) => {
                sock.set_nonblocking(true).unwrap();
                e[72..78].copy_from_slice(&GUEST_MAC);
                e[78..80].copy_from_slice(&1500u16.to_le_bytes());
            }
        }
        e[96] = 1;
        attached.insert(i, device);
    }
    if attached.len() + 1 != entries {
        return Err("a declared device is not attached".into());
    }
    let mft = &mft[..];
    // The vCPU.
    let vcpu = kvm_ioctl(vm, KVM_CREATE_VCPU, 0);
    if vcpu < 0 {
        return Err(format!(
            "KVM_CREATE_VCPU: {}",
            std::io::Error::last_os_error()
        ));
    }
    let vcpu = vcpu as i32;
    let tsc_khz = kvm_ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    if tsc_khz <= 0 {
        return Err(format!(
            "KVM_GET_TSC_KHZ: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Boot info, manifest, command line.
    let (bi, mft_at) = (0x10000u64, 0x10038u64);
    let cmdline_at = mft_at + mft.len() as u64;
    guest[mft_at as usize..mft_at as usize + mft.len()].copy_from_slice(mft);
    guest[cmdline_at as usize..cmdline_at as usize + cmdline.len()]
        .copy_from_slice(cmdline.as_bytes());
    put(guest, bi, mem);
    put(guest, bi + 8, kernel_end);
    put(guest, bi + 16, tsc_khz as u64 * 1000);
    put(guest, bi + 24, cmdline_at);
    put(guest, bi + 32, mft_at);
    let mut sregs = [0u8; 0x138];
    if kvm_ioctl(vcpu, KVM_GET_SREGS, sregs.as_mut_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_GET_SREGS: {}",
            std::io::Error::last_os_error()
        ));
    }
    // struct kvm_segment (24 bytes): base u64, limit u32, selector u16, type, present, dpl, db,
    // s, l, g, avl, unusable, padding.
    let segment = |sregs: &mut [u8], i: usize, selector: u16, kind: u8, code: bool| {
        let s = &mut sregs[i * 24..(i + 1) * 24];
        s[..8].copy_from_slice(&0u64.to_le_bytes());
        s[8..12].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        s[12..14].copy_from_slice(&selector.to_le_bytes());
        s[14] = kind;
        s[15] = 1; // present
        s[16] = 0; // dpl
        s[17] = u8::from(!code); // db
        s[18] = 1; // s
        s[19] = u8::from(code); // l
        s[20] = 1; // g
        s[21] = 0;
        s[22] = 0; // usable
    };
    segment(&mut sregs, 0, 0x08, 0xb, true); // cs
    for i in [1, 2, 3, 4, 5] {
        segment(&mut sregs, i, 0x10, 0x3, false); // ds es fs gs ss
    }
    // gdt at 192: base, limit.
    sregs[192..200].copy_from_slice(&0x1000u64.to_le_bytes());
    sregs[200..202].copy_from_slice(&23u16.to_le_bytes());
    let cr = |sregs: &mut [u8], i: usize, v: u64| {
        sregs[224 + 8 * i..232 + 8 * i].copy_from_slice(&v.to_le_bytes())
    };
    cr(&mut sregs, 0, 0x8001_0021); // cr0: PE | NE | WP | PG
    cr(&mut sregs, 2, 0x2000); // cr3
    cr(&mut sregs, 3, 0x620); // cr4: PAE | OSFXSR | OSXMMEXCPT
    cr(&mut sregs, 5, 0x500); // efer: LME | LMA
    if kvm_ioctl(vcpu, KVM_SET_SREGS, sregs.as_ptr() as u64) < 0 {
        return Err(format!(
            "KVM_SET_SREGS: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut regs = [0u64; 18];
    regs[5] = bi; // rdi
    regs[6] = mem - 8; // rsp
    regs[16] = u64_at(elf, 24); // rip
    regs[17] = 2; // rflags
    if kvm_ioctl(vcpu, KVM_SET_REGS, regs.as_ptr() as u64) < 0 {
        return Err(format!("KVM_SET_REGS: {}", std::io::Error::last_os_error()));
    }
    let run_size = kvm_ioctl(kvm.as_raw_fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
    // SAFETY: the vCPU's shared `kvm_run` page(s), as KVM_GET_VCPU_MMAP_SIZE says.
    let run = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            run_size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            vcpu,
            0,
        )
    };
    assert_ne!(run, libc::MAP_FAILED);
    // SAFETY: the mapping above, read between KVM_RUN calls only.
    let run = unsafe { std::slice::from_raw_parts_mut(run as *mut u8, run_size as usize) };
    let mut console = Vec::new();
    let started = std::time::Instant::now();
    let status = loop {
        if started.elapsed() > Duration::from_secs(30) {
            break Err("timed out".to_string());
        }
        if stop.load(Ordering::SeqCst) {
            break Err("stopped".to_string());
        }
        if kvm_ioctl(vcpu, KVM_RUN, 0) < 0 {
            break Err(format!("KVM_RUN: {}", std::io::Error::last_os_error()));
        }
        let reason = u32_at(run, 8);
        if reason == 17 && u32_at(run, 32) == 1 && emulate_sse(vcpu, guest) {
            continue;
        }
        if reason != KVM_EXIT_IO {
            let mut regs = [0u64; 18];
            kvm_ioctl(vcpu, 0x8090_ae81, regs.as_mut_ptr() as u64); // KVM_GET_REGS
            break Err(format!(
                "unhandled exit {reason} (detail {:#x}) at rip {:#x}",
                u32_at(run, 32),
                regs[16]
            ));
        }
        let (size, port) = (run[33], u16_at(run, 34));
        let data_offset = u64_at(run, 40) as usize;
        let arg = u64::from(u32_at(run, data_offset));
        if run[32] != 1 || size != 4 {
            break Err(format!("port {port:#x} size {size}"));
        }
        let at = |off: u64| u64_at(guest, (arg + off) as usize);
        match port {
            0x501 => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                put(guest, arg, now);
            }
            0x502 => {
                let (data, len) = (at(0) as usize, at(8) as usize);
                console.extend_from_slice(&guest[data..data + len]);
            }
            0x503 => {
                // POLL: wait for a network device's input or the timeout.
                let nets: Vec<(usize, i32)> = attached
                    .iter()
                    .filter_map(|(h, d)| match d {
                        HvtDevice::Net(sock) => Some((*h, sock.as_raw_fd())),
                        HvtDevice::Block(_) => None,
                    })
                    .collect();
                let mut fds: Vec<libc::pollfd> = nets
                    .iter()
                    .map(|&(_, fd)| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                let ns = at(0);
                if fds.is_empty() {
                    std::thread::sleep(Duration::from_nanos(ns.min(1 << 34)));
                } else {
                    // At most 100 ms, so that `stop` is seen soon (an early return is allowed).
                    let ms = ns.div_ceil(1_000_000).min(100) as i32;
                    // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
                    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, ms) };
                }
                let mut ready = 0u64;
                let mut count = 0i32;
                for (p, (h, _)) in fds.iter().zip(&nets) {
                    if p.revents & libc::POLLIN != 0 {
                        ready |= 1 << h;
                        count += 1;
                    }
                }
                put(guest, arg + 8, ready);
                guest[(arg + 16) as usize..(arg + 20) as usize]
                    .copy_from_slice(&count.to_le_bytes());
            }
            0x504 | 0x505 => {
                // BLOCK_WRITE / BLOCK_READ: handle, offset, data, len; ret at 32.
                let Some(HvtDevice::Block(file)) = attached.get(&(at(0) as usize)) else {
                    break Err(format!("block hypercall on handle {}", at(0)));
                };
                let (offset, data, len) = (at(8), at(16) as usize, at(24) as usize);
                use std::os::unix::fs::FileExt;
                let ok = if port == 0x504 {
                    file.write_all_at(&guest[data..data + len], offset).is_ok()
                } else {
                    file.read_exact_at(&mut guest[data..data + len], offset)
                        .is_ok()
                };
                let ret: i32 = if ok && len == 512 && offset % 512 == 0 {
                    0
                } else {
                    3
                };
                guest[(arg + 32) as usize..(arg + 36) as usize].copy_from_slice(&ret.to_le_bytes());
            }
            0x506 | 0x507 => {
                // NET_WRITE / NET_READ: handle, data, len (in/out); ret at 24.
                let Some(HvtDevice::Net(sock)) = attached.get(&(at(0) as usize)) else {
                    break Err(format!("net hypercall on handle {}", at(0)));
                };
                let (data, len) = (at(8) as usize, at(16) as usize);
                let ret: i32 = if port == 0x506 {
                    if sock.send(&guest[data..data + len]).is_ok() {
                        0
                    } else {
                        3
                    }
                } else {
                    match sock.recv(&mut guest[data..data + len]) {
                        Ok(n) => {
                            put(guest, arg + 16, n as u64);
                            0
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 1,
                        Err(_) => 3,
                    }
                };
                guest[(arg + 24) as usize..(arg + 28) as usize].copy_from_slice(&ret.to_le_bytes());
            }
            0x508 => break Ok(u32_at(guest, (arg + 8) as usize) as i32),
            other => break Err(format!("hypercall port {other:#x}")),
        }
    };
    // SAFETY: the guest memory mapping is no longer used.
    unsafe { libc::munmap(host, mem as usize) };
    Ok(HvtRun {
        console: String::from_utf8_lossy(&console).into_owned(),
        status,
    })
}

/// `emulate_sse(vcpu, guest)` carries out, for the vCPU, the register-to-register SSE
/// logical instruction it stopped at (`xorps`, `xorpd`, `pxor`), which this project's
/// machines' /dev/kvm (PVM, a paravirtualised KVM) cannot execute in a guest; it returns
/// false for any other instruction.
fn emulate_sse(vcpu: i32, guest: &[u8]) -> bool {
    const KVM_GET_REGS: u64 = 0x8090_ae81;
    const KVM_SET_REGS: u64 = 0x4090_ae82;
    const KVM_GET_FPU: u64 = 0x81a0_ae8c;
    const KVM_SET_FPU: u64 = 0x41a0_ae8d;
    let mut regs = [0u64; 18];
    if kvm_ioctl(vcpu, KVM_GET_REGS, regs.as_mut_ptr() as u64) < 0 {
        return false;
    }
    let rip = regs[16] as usize;
    let code = &guest[rip..rip + 8];
    let mut i = 0;
    let op66 = code[i] == 0x66;
    if op66 {
        i += 1;
    }
    let rex = if code[i] & 0xf0 == 0x40 {
        i += 1;
        code[i - 1]
    } else {
        0
    };
    let logical_xor = code[i] == 0x0f && (code[i + 1] == 0x57 || (op66 && code[i + 1] == 0xef));
    let modrm = code[i + 2];
    if !logical_xor || modrm >> 6 != 3 {
        return false;
    }
    let reg = usize::from(((rex >> 2) & 1) << 3 | ((modrm >> 3) & 7));
    let rm = usize::from((rex & 1) << 3 | (modrm & 7));
    let mut fpu = [0u8; 416];
    if kvm_ioctl(vcpu, KVM_GET_FPU, fpu.as_mut_ptr() as u64) < 0 {
        return false;
    }
    for b in 0..16 {
        fpu[152 + reg * 16 + b] ^= fpu[152 + rm * 16 + b];
    }
    regs[16] += (i + 3) as u64;
    kvm_ioctl(vcpu, KVM_SET_FPU, fpu.as_ptr() as u64) >= 0
        && kvm_ioctl(vcpu, KVM_SET_REGS, regs.as_ptr() as u64) >= 0
}

/// `hvt_run(dir, cmdline)` runs the hvt image of the unikernel in `dir` under the minimal
/// monitor, or says why it cannot run here (no usable /dev/kvm).
fn hvt_run(dir: &str, cmdline: &str) -> Option<HvtRun> {
    let (image, _) = image_of(dir, "hvt");
    let elf = std::fs::read(&image).unwrap();
    match mini_hvt(&elf, cmdline) {
        Ok(run) => Some(run),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn hello_runs_under_the_minimal_hvt_monitor() {
    // Build the image first, so that the clock times the run alone.
    image_of("examples/hello", "hvt");
    let started = std::time::Instant::now();
    let Some(run) = hvt_run("examples/hello", "--hello='Hi from hvt'") else {
        return;
    };
    assert_eq!(run.status, Ok(0), "{}", run.console);
    assert_eq!(run.console, "INF [hello] Hi from hvt\n".repeat(4));
    // Four one-second sleeps through POLL, timed by the TSC at the boot info's rate.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

#[test]
fn console_kv_ro_keys_and_panics_under_the_minimal_hvt_monitor() {
    let Some(console) = hvt_run("examples/console", "") else {
        return;
    };
    assert_eq!(console.status, Ok(0), "{}", console.console);
    assert_eq!(console.console, "hello\nworld\n".repeat(4));
    let kv_ro = hvt_run("examples/kv_ro", "").unwrap();
    assert_eq!(kv_ro.status, Ok(0), "{}", kv_ro.console);
    // The same files from a tar archive over a block device.
    let (tar_image, _) = image_configured("kv_ro", "hvt", &["--kv_ro=tar"]);
    let tar = work().join("kv_ro-t-hvt.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(root().join("examples/kv_ro/t"))
        .arg("-cf")
        .arg(&tar)
        .args(["secret", "subdir"])
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tar)
        .unwrap();
    let from_tar = mini_hvt_with(
        &std::fs::read(&tar_image).unwrap(),
        "",
        vec![("t", HvtDevice::Block(file))],
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(from_tar.status, Ok(0), "{}", from_tar.console);
    assert_eq!(
        from_tar.console, kv_ro.console,
        "tar reads what crunch embedded"
    );
    assert!(
        kv_ro.console.contains("INF [kv_ro] foobar\n"),
        "{}",
        kv_ro.console
    );
    assert!(
        kv_ro.console.contains("Hello from a subdirectory"),
        "{}",
        kv_ro.console
    );
    let bad = hvt_run("examples/hello", "--nope=1").unwrap();
    assert_eq!(bad.status, Ok(64), "{}", bad.console);
    let crash = hvt_run("runtime/xen/tests/fixtures/crash", "--why=testing").unwrap();
    assert_eq!(crash.status, Ok(255), "{}", crash.console);
    assert!(
        crash.console.starts_with("panicked at "),
        "{}",
        crash.console
    );
    assert!(
        crash.console.contains("deliberate panic: testing\n"),
        "{}",
        crash.console
    );
}

#[test]
fn conduit_server_answers_an_http_get_under_the_minimal_hvt_monitor() {
    use std::os::unix::net::UnixDatagram;
    let (image, _) = image("conduit_server", "hvt");
    let elf = std::fs::read(&image).unwrap();
    let (host, guest_end) = UnixDatagram::pair().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop_monitor = stop.clone();
    let monitor = std::thread::spawn(move || {
        let devices = vec![("service", HvtDevice::Net(guest_end))];
        mini_hvt_with(&elf, "", devices, &stop_monitor)
    });
    let (arp_reply, syn_ack, response) = http_get(&host);
    // The server runs until stopped.
    stop.store(true, Ordering::SeqCst);
    let run = match monitor.join().unwrap() {
        Ok(run) => run,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&response);
    assert!(
        arp_reply && syn_ack,
        "no ARP reply or SYN-ACK: {}",
        run.console
    );
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nhello mirage world!\n"),
        "response {text:?}; guest: {}",
        run.console
    );
}
