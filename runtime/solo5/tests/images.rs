//! Tests of the Solo5 images: each builds an image from a committed plan with
//! `mirage-test-support`'s image builder (the generator renders the crate, cargo builds it with
//! only the flags the plan records, as `nix build` does, with the host triple as cargo's target
//! so that build scripts are not linked as images).
//!
//! The structural tests need no tender: they check every example's hvt and spt image against
//! the ELF rules both tenders' loader applies (Solo5 `tenders/common/elf.c`) and the ABI and
//! manifest notes (`include/elf_abi.h`, `include/mft_abi.h`), and the manifest against the
//! plan's (`mirage-nix query manifest`).
//!
//! The tests that run an image take the tenders from `SOLO5_HVT` and `SOLO5_SPT` (Solo5 is not
//! packaged, and this project neither fetches nor builds it) and are skipped, saying why,
//! without them, or without a usable `/dev/kvm` for hvt. The minimal spt loader and hvt monitor
//! of `mirage-test-support` run the images here without them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mirage_nix::plan::Plan;
use mirage_test_support::fault::{fault_below_stack, hex_after, FAULTS, FIXTURE};
use mirage_test_support::image::Builder;
use mirage_test_support::solo5::elf::{
    first_note, phdrs, u16_at, u32_at, u64_at, Note, Phdr, ABI1, MFT1, PF_W, PF_X, PT_DYNAMIC,
    PT_INTERP, PT_LOAD, PT_NOTE,
};
use mirage_test_support::solo5::hvt::{self, HvtDevice, HvtRun};
use mirage_test_support::solo5::spt::{self, Devices};
use mirage_test_support::solo5::{net::http_get, run_tender, tender};
use mirage_test_support::tree::{root, scratch};

mirage_test_support::mini_spt_child_test!();

/// `work()` is this suite's scratch folder under the cargo target directory.
fn work() -> PathBuf {
    scratch("solo5-images")
}

/// `kv_ro_tar(name)` is a tar archive (in the scratch folder) of kv_ro's store, `t/`.
fn kv_ro_tar(name: &str) -> PathBuf {
    let tar = work().join(name);
    let status = Command::new("tar")
        .arg("-C")
        .arg(root().join("examples/kv_ro/t"))
        .arg("-cf")
        .arg(&tar)
        .args(["secret", "subdir"])
        .status()
        .unwrap();
    assert!(status.success(), "tar of examples/kv_ro/t failed");
    tar
}

/// `image(example, target)` is [`image_of`] the example's folder.
fn image(example: &str, target: &str) -> (PathBuf, Plan) {
    image_of(&format!("examples/{example}"), target)
}

/// `image_of(dir, target)` is the image of the committed `DIR/plans/TARGET.json` (DIR relative
/// to the tree), built once per test run, and its plan.
fn image_of(dir: &str, target: &str) -> (PathBuf, Plan) {
    let image = Builder::new(work()).host_target().committed(dir, target);
    (image.path, image.plan)
}

/// `image_configured(example, target, keys)` builds the example's image from the plan that
/// `mirage-nix query plan -t TARGET KEYS... examples/EXAMPLE` gives (the committed plan is
/// left alone).
fn image_configured(example: &str, target: &str, keys: &[&str]) -> (PathBuf, Plan) {
    let image =
        Builder::new(work())
            .host_target()
            .configured(&format!("examples/{example}"), target, keys);
    (image.path, image.plan)
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

fn hello_runs(target: &str) {
    let tender = require_tender!(target);
    let (image, _) = image("hello", target);
    // The tender joins its arguments with spaces: quote the message (`cmdline::split`).
    let r = run_tender(&tender, &[], &image, &["--hello='Hi from Solo5'"]);
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("[hello]")).collect();
    assert_eq!(
        lines, ["INF [hello] Hi from Solo5"; 4],
        "{}{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    let bad = run_tender(&tender, &[], &image, &["--nope=1"]);
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
// Under the minimal spt loader (mirage-test-support's `solo5::spt`).

/// `mini_spt(image, cmdline)` runs `image` under the minimal spt loader without devices.
fn mini_spt(image: &std::path::Path, cmdline: &str) -> mirage_test_support::process::Finished {
    spt::run(image, cmdline, Devices::default())
}

/// `guest(run)` is what the image wrote.
fn guest(run: &mirage_test_support::process::Finished) -> &str {
    spt::guest(run)
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
    let expected = mirage_test_support::examples::KV_RO_OUTPUT;
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
    let r = spt::run(&image, "", Devices::default().block("storage", &disk));
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
    let tar = kv_ro_tar("kv_ro-t.tar");
    let r = spt::run(&image, "", Devices::default().block("t", &tar));
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        guest(&r),
        guest(&expected),
        "tar reads what crunch embedded"
    );
}

/// `bad_ports_exit_64_before_any_device(run, served)` checks that an out-of-range `--port`
/// makes conduit_server exit 64 naming it, where the boot arguments are parsed and before
/// its network device `service` is connected: `run(cmdline)` gives the status and console
/// of a run with the device attached, and the console never shows the direct stack, which
/// `served()` (the console of a run with a good port that answered an HTTP GET) does.
fn bad_ports_exit_64_before_any_device(
    mut run: impl FnMut(&str) -> (Option<i32>, String),
    served: impl FnOnce() -> String,
) {
    const CONNECTED: &str = "direct stack on";
    for port in ["99999999", "-1", "0"] {
        let (status, console) = run(&format!("--port={port}"));
        assert_eq!(status, Some(64), "--port={port}: {console}");
        assert!(
            console.contains(&format!("invalid value `{port}` for `--port`"))
                && console.contains("from 1 to 65535"),
            "--port={port}: {console}"
        );
        assert!(!console.contains(CONNECTED), "--port={port}: {console}");
    }
    let console = served();
    assert!(console.contains(CONNECTED), "{console}");
}

#[test]
fn a_bad_port_exits_64_before_any_device_under_the_minimal_spt_loader() {
    let (image, _) = image("conduit_server", "spt");
    let with_device = |cmdline: &str| {
        let (host, guest_end) = spt::net_pair();
        let child = spt::spawn(
            &image,
            cmdline,
            Devices::default().net("service", guest_end),
        );
        (host, child)
    };
    bad_ports_exit_64_before_any_device(
        |cmdline| {
            let (_host, child) = with_device(cmdline);
            let r = child.wait(Duration::from_secs(30));
            (r.status, format!("{}{}", guest(&r), r.stderr))
        },
        || {
            let (host, child) = with_device("--port=8080");
            let (arp_reply, syn_ack, _) = http_get(&host);
            let r = child.kill();
            assert!(arp_reply && syn_ack, "{}{}", r.stdout, r.stderr);
            format!("{}{}", guest(&r), r.stderr)
        },
    );
}

// ------------------------------------------------------------------------------------------
// Frames to and from conduit_server's network device (mirage-test-support's `solo5::net`).

#[test]
fn conduit_server_answers_an_http_get_under_the_minimal_spt_loader() {
    let (image, plan) = image("conduit_server", "spt");
    assert_eq!(
        plan.manifest_json()["devices"],
        serde_json::json!([{"name": "service", "type": "NET_BASIC"}])
    );
    let (host, guest_end) = spt::net_pair();
    let child = spt::spawn(&image, "", Devices::default().net("service", guest_end));
    let (arp_reply, syn_ack, response) = http_get(&host);
    let run = child.kill();
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
// Under the minimal hvt monitor (mirage-test-support's `solo5::hvt`).

/// `hvt_run(dir, cmdline)` runs the hvt image of the unikernel in `dir` under the minimal
/// monitor, or says why it cannot run here (no usable /dev/kvm).
fn hvt_run(dir: &str, cmdline: &str) -> Option<HvtRun> {
    let (image, _) = image_of(dir, "hvt");
    let elf = std::fs::read(&image).unwrap();
    match hvt::run(&elf, cmdline) {
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
    let tar = kv_ro_tar("kv_ro-t-hvt.tar");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tar)
        .unwrap();
    let from_tar = hvt::run_with(
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
fn a_bad_port_exits_64_before_any_device_under_the_minimal_hvt_monitor() {
    use std::os::unix::net::UnixDatagram;
    if hvt_run("examples/hello", "--nope").is_none() {
        return;
    }
    let (image, _) = image("conduit_server", "hvt");
    let elf = std::fs::read(&image).unwrap();
    bad_ports_exit_64_before_any_device(
        |cmdline| {
            let (_host, guest_end) = UnixDatagram::pair().unwrap();
            let devices = vec![("service", HvtDevice::Net(guest_end.into()))];
            let run = hvt::run_with(&elf, cmdline, devices, &AtomicBool::new(false)).unwrap();
            (run.status.ok(), run.console)
        },
        || {
            let (host, guest_end) = UnixDatagram::pair().unwrap();
            let stop = std::sync::Arc::new(AtomicBool::new(false));
            let stop_monitor = stop.clone();
            let elf = elf.clone();
            let monitor = std::thread::spawn(move || {
                let devices = vec![("service", HvtDevice::Net(guest_end.into()))];
                hvt::run_with(&elf, "--port=8080", devices, &stop_monitor)
            });
            let (arp_reply, syn_ack, _) = http_get(&host);
            stop.store(true, Ordering::SeqCst);
            let run = monitor.join().unwrap().unwrap();
            assert!(arp_reply && syn_ack, "{}", run.console);
            run.console
        },
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
        let devices = vec![("service", HvtDevice::Net(guest_end.into()))];
        hvt::run_with(&elf, "", devices, &stop_monitor)
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

#[test]
fn faults_are_reported_and_abort_with_255_under_the_minimal_hvt_monitor() {
    // Without exception handlers each of these triple-faulted, and solo5-hvt exited 1, the
    // status of an orderly failure; the stack ran into the heap unchecked.
    for (fault, report) in FAULTS {
        let started = std::time::Instant::now();
        let Some(run) = hvt_run(FIXTURE, &format!("--fault={fault}")) else {
            return;
        };
        assert_eq!(run.status, Ok(255), "{fault}: {run:?}");
        assert_eq!(run.tender_error, None, "{fault}: {run:?}");
        assert!(run.console.contains(report), "{fault}: {}", run.console);
        assert!(!run.console.contains("panicked"), "{}", run.console);
        assert!(started.elapsed() < Duration::from_secs(10), "{fault}");
        if fault == "stack-overflow" {
            // From the guard page right below the stack (1 MiB here).
            let address = hex_after(&run.console, "at address ").unwrap();
            fault_below_stack(&run.console, address, 1 << 20).unwrap();
        }
    }
}

/// An hvt or spt image executed as a Linux process says, on one line, what it is and the
/// tender command that boots it (with its manifest's devices), and exits 64 rather than
/// crash: the entry tells Linux's `execve` (every register cleared) from a tender (the boot
/// info in `%rdi`).
#[test]
fn an_image_executed_by_linux_explains_itself() {
    for target in ["hvt", "spt"] {
        for (example, devices) in [
            ("hello", ""),
            ("block", " --block:storage=FILE"),
            ("conduit_server", " --net:service=TAP"),
        ] {
            let (path, _) = image(example, target);
            let run = mirage_test_support::process::run(
                Command::new(&path).arg("--hello=Hi"),
                std::time::Duration::from_secs(10),
            );
            let p = path.display();
            assert_eq!(run.status, Some(64), "{p}: {}{}", run.stdout, run.stderr);
            assert_eq!(run.stdout, "", "{p}");
            assert_eq!(
                run.stderr,
                format!(
                    "{p}: a Solo5 {target} unikernel, not a Linux program; boot it with \
                     `solo5-{target} --mem=64{devices} -- {p} [--KEY=VALUE...]` (Solo5's \
                     tender), or `mirage-nix run -t {target}` in its unikernel's folder\n"
                ),
                "{p}"
            );
        }
    }
}
