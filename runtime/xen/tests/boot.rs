//! End-to-end tests of the xen target: each test renders a committed plan with the generator,
//! builds the image with cargo and only the flags the plan records (as `nix build` does), and
//! boots it
//!
//! - as the initial domain (dom0) on the real Xen 4.17 under QEMU TCG, where the console is
//!   Xen's and the domain's shutdown reason shows in Xen's log; and
//! - through its PVH entry directly under `qemu-system-x86_64 -kernel`, where the console is
//!   COM1 and the exit code comes back through `isa-debug-exit` as `2 * code + 1`; and
//! - through its PVH entry as a PVH dom0 on Xen (`dom0=pvh`); and
//! - as a PV and a PVH domU, created with `xl` from a Linux dom0 with Xen's toolstack
//!   (`tests/domu/testbed`: Debian's packages, fetched once with `apt-get download`), where
//!   the console is the PV console ring.
//!
//! Runs end by themselves (dom0 shuts down with reason reboot or crash, which ends QEMU under
//! `-no-reboot`); a timeout guards against hangs. QEMU runs one at a time, so that the timing
//! checks are not disturbed by the other tests. Tests are skipped, saying so, where QEMU or
//! the Xen hypervisor are not installed (`scripts/setup` installs them).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mirage_nix::render::{self, Roots};

const XEN_GZ: &str = "/boot/xen-4.17-amd64.gz";
const QEMU: &str = "qemu-system-x86_64";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The cargo target directory this test was built in (target/<profile>/deps/<test>).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// `work()` is this suite's scratch folder under the target directory.
fn work() -> PathBuf {
    let dir = target_dir().join("xen-images");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `skip_reason()` says why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    let qemu = Command::new(QEMU).arg("--version").output();
    if !qemu.is_ok_and(|o| o.status.success()) {
        return Some(format!("{QEMU} is not installed (run scripts/setup)"));
    }
    if !Path::new(XEN_GZ).exists() {
        return Some(format!("{XEN_GZ} is missing (run scripts/setup)"));
    }
    None
}

macro_rules! require_qemu {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// `image(plan)` renders the plan at `plan` (relative to the tree) and builds its image once
/// per test run; it returns the image's path.
fn image(plan: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(plan) {
        return path.clone();
    }
    let root = root();
    let plan_path = root.join(plan);
    let plan_data = mirage_nix::ops::read_plan(&plan_path).unwrap_or_else(|e| panic!("{e:?}"));
    let roots = Roots {
        mirage: root.clone(),
        unikernel: plan_path.parent().unwrap().parent().unwrap().to_path_buf(),
    };
    let out = work().join("crates").join(&plan_data.name);
    let files = render::crate_files(&plan_data, &roots, &out).unwrap();
    render::write(&files, &out).unwrap();
    let target = work().join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&out)
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        // Only the crate's .cargo/config.toml (the plan's flags) may set rustc flags.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of {plan} failed");
    let image = work().join(&plan_data.image.file);
    std::fs::copy(target.join("release").join(&plan_data.name), &image).unwrap();
    built
        .as_mut()
        .unwrap()
        .insert(plan.to_string(), image.clone());
    image
}

/// `xen()` is the decompressed hypervisor, which QEMU boots as a Multiboot kernel.
fn xen() -> PathBuf {
    let path = work().join("xen-4.17");
    if !path.exists() {
        let gz = Command::new("zcat").arg(XEN_GZ).output().unwrap();
        assert!(gz.status.success());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, gz.stdout).unwrap();
        std::fs::rename(tmp, &path).unwrap();
    }
    path
}

/// One QEMU run: what the serial console showed and how QEMU ended.
struct Run {
    /// Serial output without carriage returns (Xen's serial driver and Linux's tty add them).
    serial: String,
    /// QEMU's exit status (`None` if it had to be killed).
    status: Option<i32>,
    took: Duration,
}

impl Run {
    /// `guest()` is the guest's output: the serial console without Xen's own `(XEN)` lines.
    fn guest(&self) -> String {
        self.serial
            .lines()
            .filter(|l| !l.starts_with("(XEN)"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

fn qemu_lock() -> MutexGuard<'static, ()> {
    static QEMU_RUNS: Mutex<()> = Mutex::new(());
    QEMU_RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// `qemu(args, timeout)` runs QEMU (TCG, no display, serial on stdout, `-no-reboot`) with
/// `args`, killing it after `timeout`.
fn qemu(args: &[&str], timeout: Duration) -> Run {
    let _one_at_a_time = qemu_lock();
    let start = Instant::now();
    let mut child = Command::new(QEMU)
        .args(["-accel", "tcg", "-display", "none", "-serial", "stdio"])
        .args(["-monitor", "none", "-no-reboot"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let serial = String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "");
    Run {
        serial,
        status,
        took,
    }
}

/// `dom0(image, cmdline)` boots `image` as dom0 on Xen with `cmdline` as its command line.
fn dom0(image: &Path, cmdline: &str) -> Run {
    let xen = xen();
    let module = format!("{} {cmdline}", image.display());
    qemu(
        &[
            "-m",
            "256",
            "-kernel",
            xen.to_str().unwrap(),
            "-append",
            "console=com1 dom0_mem=32M",
            "-initrd",
            &module,
        ],
        Duration::from_secs(90),
    )
}

/// `pvh_dom0(image, cmdline)` boots `image` as a PVH dom0 on Xen (`dom0=pvh`): the PVH entry
/// with Xen underneath (hypercall page through the MSR, shared info placed with
/// `XENMEM_add_to_physmap`). QEMU's `-cpu max` gives Xen the nested paging it needs.
fn pvh_dom0(image: &Path, cmdline: &str) -> Run {
    let xen = xen();
    let module = format!("{} {cmdline}", image.display());
    qemu(
        &[
            "-cpu",
            "max",
            "-m",
            "256",
            "-kernel",
            xen.to_str().unwrap(),
            "-append",
            "console=com1 dom0_mem=32M dom0=pvh dom0-iommu=none",
            "-initrd",
            &module,
        ],
        Duration::from_secs(90),
    )
}

/// `pvh(image, cmdline)` boots `image` through its PVH entry directly under QEMU.
fn pvh(image: &Path, cmdline: &str) -> Run {
    qemu(
        &[
            "-m",
            "64",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel",
            image.to_str().unwrap(),
            "-append",
            cmdline,
        ],
        Duration::from_secs(60),
    )
}

/// `domu_testbed()` is the folder holding Debian's Linux kernel, Xen toolstack and busybox,
/// unpacked by `tests/domu/testbed fetch` (once), or why it cannot be had.
fn domu_testbed() -> Result<PathBuf, String> {
    static FETCH: Mutex<()> = Mutex::new(());
    let _once = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = work().join("domu");
    if !dir.join("root/boot").exists() {
        let status = Command::new(testbed_script())
            .arg("fetch")
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run the domU test bed script: {e}"))?;
        if !status.success() {
            return Err("cannot download the domU test bed's Debian packages \
                        (apt-get download: no network or no Debian archive?)"
                .into());
        }
    }
    Ok(dir)
}

fn testbed_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/domu/testbed")
}

/// `domu(image, kind, args)` boots `image` as a `kind` (`pv` or `pvh`) domU with `xl create`
/// from a Linux dom0 with Xen's toolstack, on Xen under QEMU; the run's serial output holds
/// the domU's console log between markers, then `xl`'s report of its shutdown reason.
fn domu(image: &Path, kind: &str, args: &[&str]) -> Result<Run, String> {
    let bed = domu_testbed()?;
    let name = image.file_stem().unwrap().to_string_lossy();
    let initrd = work().join(format!("domu-{name}-{kind}.cpio.gz"));
    let status = Command::new(testbed_script())
        .arg("initrd")
        .arg(&bed)
        .arg(image)
        .arg(&initrd)
        .args(args)
        .env("DOMU_TYPE", kind)
        .status()
        .unwrap();
    assert!(status.success(), "testbed initrd failed");
    let kernel = std::fs::read_dir(bed.join("root/boot"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz-")
        })
        .ok_or("no vmlinuz in the test bed")?;
    let modules = format!(
        "{} console=hvc0 quiet,{}",
        kernel.display(),
        initrd.display()
    );
    let xen = xen();
    Ok(qemu(
        &[
            // Nested paging for Xen's PVH guests.
            "-cpu",
            "qemu64,+svm,+npt",
            "-m",
            "1024",
            "-kernel",
            xen.to_str().unwrap(),
            "-append",
            "console=com1 dom0_mem=512M",
            "-initrd",
            &modules,
        ],
        Duration::from_secs(240),
    ))
}

/// `domu_console(run)` is what the domU wrote to its console ring.
fn domu_console(run: &Run) -> String {
    let start = run.serial.find("=== domU console ===\n").map(|i| i + 21);
    let end = run.serial.find("=== domU end ===");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => run.serial[s..e].to_string(),
        _ => panic!("no domU console in:\n{}", run.serial),
    }
}

macro_rules! require_domu {
    ($run:expr) => {
        match $run {
            Ok(run) => run,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

const REBOOTED: &str = "(XEN) Hardware Dom0 shutdown: rebooting machine";
const CRASHED: &str = "(XEN) Hardware Dom0 crashed";

fn hello_lines(message: &str) -> String {
    format!("INF [hello] {message}\n").repeat(4)
}

#[test]
fn hello_boots_as_dom0_and_shuts_down_cleanly() {
    require_qemu!();
    let run = dom0(&image("examples/hello/plans/xen.json"), "");
    assert_eq!(run.guest(), hello_lines("Hello World!"), "{}", run.serial);
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    assert_eq!(run.status, Some(0), "QEMU did not end by itself");
    assert!(run.took >= Duration::from_secs(4), "took {:?}", run.took);
}

#[test]
fn hello_takes_its_keys_from_the_xen_command_line() {
    require_qemu!();
    let image = image("examples/hello/plans/xen.json");
    let run = dom0(&image, "--hello='Bonjour tout le monde'");
    assert_eq!(
        run.guest(),
        hello_lines("Bonjour tout le monde"),
        "{}",
        run.serial
    );
    let quiet = dom0(&image, "--hello=Bonjour --logs=warn");
    assert_eq!(quiet.guest(), "", "{}", quiet.serial);
    assert!(quiet.serial.contains(REBOOTED));
}

#[test]
fn hello_boots_through_pvh_directly_under_qemu() {
    require_qemu!();
    let image = image("examples/hello/plans/xen.json");
    let run = pvh(&image, "");
    assert_eq!(run.serial, hello_lines("Hello World!"));
    assert_eq!(run.status, Some(1), "exit code 0 is QEMU status 1");
    let run = pvh(&image, r"--hello=Hallo\ Welt");
    assert_eq!(run.serial, hello_lines("Hallo Welt"));
}

#[test]
fn hello_boots_as_a_pvh_dom0_on_xen() {
    require_qemu!();
    let run = pvh_dom0(&image("examples/hello/plans/xen.json"), "--hello=Hej");
    assert_eq!(run.guest(), hello_lines("Hej"), "{}", run.serial);
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    assert_eq!(run.status, Some(0));
}

#[test]
fn console_prints_the_talks_output_as_dom0() {
    require_qemu!();
    let run = dom0(&image("examples/console/plans/xen.json"), "");
    assert_eq!(run.guest(), "hello\nworld\n".repeat(4), "{}", run.serial);
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    assert_eq!(run.status, Some(0));
}

#[test]
fn kv_ro_reads_its_crunched_files_as_dom0() {
    require_qemu!();
    let run = dom0(&image("examples/kv_ro/plans/xen.json"), "");
    let expected = "\
INF [kv_ro] store has secret
INF [kv_ro] store has subdir/
INF [kv_ro] secret (7 bytes, sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f):
INF [kv_ro] foobar
INF [kv_ro] subdir/hello.txt (40 bytes, sha256 252874e9638df218c92d49b0a53330e94f8b3ba1394bf559cf638671b70f30ae):
INF [kv_ro] Hello from a subdirectory of the store.
";
    assert_eq!(run.guest(), expected, "{}", run.serial);
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    let pvh = pvh(&image("examples/kv_ro/plans/xen.json"), "");
    assert_eq!(pvh.serial, expected);
}

#[test]
fn bad_keys_print_the_usage_and_shut_down_with_a_failure() {
    require_qemu!();
    let image = image("examples/hello/plans/xen.json");
    let run = pvh(&image, "--logs=loud");
    assert!(
        run.serial.starts_with(
            "hello: invalid value `loud` for `--logs`: expected one of error, warn, info, debug, trace\n\
             usage: hello [--KEY=VALUE]..."
        ),
        "{}",
        run.serial
    );
    assert!(run.serial.contains("--hello=STRING"), "{}", run.serial);
    assert_eq!(run.status, Some(2 * 64 + 1));
    let help = pvh(&image, "--help");
    assert!(help.serial.starts_with("usage: hello"), "{}", help.serial);
    assert_eq!(help.status, Some(2 * 63 + 1));
    let run = dom0(&image, "--lgos=debug");
    let guest = run.guest();
    assert!(
        guest.starts_with("hello: unknown key `--lgos`; did you mean `--logs`?\nusage: hello"),
        "{}",
        run.serial
    );
    assert!(run.serial.contains(CRASHED), "{}", run.serial);
}

#[test]
fn a_panic_prints_its_message_and_crashes_the_domain() {
    require_qemu!();
    let image = image("runtime/xen/tests/fixtures/crash/plans/xen.json");
    let run = dom0(&image, "--why=out_of_coffee");
    let guest = run.guest();
    assert!(
        guest.contains("panicked at ") && guest.contains("src/lib.rs"),
        "{}",
        run.serial
    );
    assert!(
        guest.contains("deliberate panic: out_of_coffee"),
        "{}",
        run.serial
    );
    assert!(run.serial.contains(CRASHED), "{}", run.serial);
    assert_eq!(run.status, Some(0), "Xen reboots after a dom0 crash");
    let run = pvh(&image, "");
    assert!(
        run.serial.contains("deliberate panic: on purpose"),
        "{}",
        run.serial
    );
    assert_eq!(run.status, Some(2 * 101 + 1));
}

/// `clock_values(out)` is the fixture's `elapsed_ns` and `wall_secs`.
fn clock_values(out: &str) -> (u64, i64) {
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("INF [clock] {key}=")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .trim()
            .to_string()
    };
    (
        value("elapsed_ns").parse().unwrap(),
        value("wall_secs").parse().unwrap(),
    )
}

fn host_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn check_clocks(run: &Run) {
    let (elapsed, wall) = clock_values(&run.serial);
    assert!(
        (1_800_000_000..=2_200_000_000).contains(&elapsed),
        "two one-second sleeps took {elapsed} ns"
    );
    assert!(
        (wall - host_secs()).abs() <= 60,
        "wall clock {wall}, host {}",
        host_secs()
    );
}

#[test]
fn clocks_are_right_on_xen_and_under_plain_qemu() {
    require_qemu!();
    let image = image("runtime/xen/tests/fixtures/clock/plans/xen.json");
    let run = dom0(&image, "");
    check_clocks(&run);
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    check_clocks(&pvh(&image, ""));
    check_clocks(&pvh_dom0(&image, ""));
}

#[test]
fn hello_boots_as_a_pv_and_a_pvh_domu_with_the_console_ring() {
    require_qemu!();
    let image = image("examples/hello/plans/xen.json");
    for kind in ["pv", "pvh"] {
        let run = require_domu!(domu(&image, kind, &["--hello=Hello domU"]));
        assert_eq!(
            domu_console(&run),
            hello_lines("Hello domU"),
            "{kind}: {}",
            run.serial
        );
        assert!(
            run.serial.contains("has shut down, reason code 0 "),
            "{kind}: poweroff expected: {}",
            run.serial
        );
    }
}

#[test]
fn a_panicking_domu_crashes_with_its_message_on_the_console_ring() {
    require_qemu!();
    let image = image("runtime/xen/tests/fixtures/crash/plans/xen.json");
    let run = require_domu!(domu(&image, "pv", &["--why=domU"]));
    assert!(
        domu_console(&run).contains("deliberate panic: domU"),
        "{}",
        run.serial
    );
    assert!(
        run.serial.contains("has shut down, reason code 3 "),
        "crash expected: {}",
        run.serial
    );
}

#[test]
fn the_heap_spans_the_domains_memory() {
    require_qemu!();
    let image = image("runtime/xen/tests/fixtures/heap/plans/xen.json");
    // A 32 MiB dom0: its bootstrap region is 4 MiB, the rest is mapped at boot.
    let run = dom0(&image, "--mib=24");
    assert!(
        run.guest()
            .starts_with("INF [heap] allocated 25165824 bytes, checksum "),
        "{}",
        run.serial
    );
    assert!(run.serial.contains(REBOOTED), "{}", run.serial);
    let run = pvh(&image, "--mib=48");
    assert!(
        run.serial
            .starts_with("INF [heap] allocated 50331648 bytes"),
        "{}",
        run.serial
    );
    let run = require_domu!(domu(&image, "pv", &["--mib=24"]));
    assert!(
        domu_console(&run).starts_with("INF [heap] allocated 25165824 bytes"),
        "{}",
        run.serial
    );
}
