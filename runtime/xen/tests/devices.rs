//! End-to-end tests of the xen target's devices: every example that needs a network or block
//! device, built from its plan, runs as a PVH and as a PV domU created by `xl` from the config
//! `mirage-nix` generates for it, in the domU test bed's Linux dom0 (netback and blkback, the
//! bridge `xenbr0` with dom0 at 10.0.0.1, curl, socat, ping and dnsmasq). All the scenarios run
//! in one dom0 boot ([`suite`]), and each test looks at its own:
//!
//! - the cross-target equivalence matrix of the read-only stores (issue #11): kv_ro and
//!   static_website over crunch, tar and fat return every file of their folder with the same
//!   SHA-256 on unix, spt, hvt and xen. The xen rows are domUs of this boot (kv_ro over crunch
//!   (PV), tar (PVH, PV) and FAT (PVH), each printing its files' digests; static_website over
//!   crunch (PVH, PV), tar (PVH) and FAT (PV), every file fetched by curl from dom0), each disk
//!   the one the build makes; the other rows ([`equivalence::other_targets`]) are computed
//!   while dom0 boots, and the test prints the whole matrix;
//! - conduit_server answers `curl` from dom0 with the talk's body (PVH, PV), and `xl shutdown`
//!   ends it cleanly; a malformed request corpus and slow clients leave it serving;
//! - network answers ping and UDP echo (PVH, PV); the DHCP variant of conduit_server takes a
//!   lease from dnsmasq and answers on it;
//! - block writes sectors (PV), and a second boot of the same disk (PVH) finds them;
//! - kv_ro lists and reads its store as on every target, and a corrupt archive gives the same
//!   error as the unix image on the same file;
//! - a domU created without its vif or its disk names the missing device and crashes within
//!   seconds;
//! - a sleep of `u64::MAX` ns leaves the vCPU idle (issue #15).
//!
//! They are skipped, saying why, where QEMU, Xen or the test bed's packages are missing (the
//! matrix's xen rows then say "skipped" and why, and its hvt rows likewise without a usable
//! /dev/kvm).

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mirage_nix::render::xl::{self, DomainType};
use mirage_test_support::equivalence::{
    self, folder_digests, kv_ro_digests, sha256sum_digests, Matrix, Outcome as Got, Row,
};
use mirage_test_support::examples::KV_RO_OUTPUT;
use mirage_test_support::image::{Builder, Image};
use mirage_test_support::tree::{root, scratch};
use mirage_test_support::xen::testbed::{Boot, GuestEnd, Outcome, Scenario, Testbed};

// The matrix's spt rows run under the minimal spt loader, whose child is this test binary.
mirage_test_support::mini_spt_child_test!();

/// The talk's body, as conduit_server answers it.
const BODY: &str = "hello mirage world!\n";

/// `builder()` builds images with the host triple as cargo's target, as Nix does (the direct
/// stack's dependencies have build scripts, which the image's flags must not reach), in the
/// folder `boot.rs` builds its own in.
fn builder() -> Builder {
    Builder::new(scratch("xen-images")).host_target()
}

/// `config(image, ty)` is the xl config mirage-nix generates for the image's plan.
fn config(image: &Image, ty: DomainType) -> String {
    xl::config(&image.plan, ty).expect("xen plans have xl configs")
}

/// `without(config, key)` is `config` without its `key = ...` line (a domain lacking a device).
fn without(config: &str, key: &str) -> String {
    config
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} =")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `disk(image, dir)` is the one disk image the build makes for `image` (its store's tar
/// archive or FAT filesystem, from the unikernel's folder `dir`): its file name, which the xl
/// config attaches, and its bytes.
fn disk(image: &Image, dir: &str) -> (String, Vec<u8>) {
    let mut disks = mirage_nix::render::disk::disks(&image.plan, &root().join(dir))
        .unwrap_or_else(|e| panic!("the disks of {dir}: {e}"));
    assert_eq!(disks.len(), 1, "{dir}: one disk expected");
    disks.remove(0)
}

/// `with_disk(scenario, image, dir)` puts the build's disk for `image` in the scenario's folder.
fn with_disk(scenario: Scenario, image: &Image, dir: &str) -> Scenario {
    let (file, bytes) = disk(image, dir);
    scenario.file(&file, bytes)
}

/// `corrupt(archive)` is `archive` with its first header's checksum field overwritten.
fn corrupt(mut archive: Vec<u8>) -> Vec<u8> {
    archive[148..156].copy_from_slice(b"XXXXXXXX");
    archive
}

/// Waits for a server's "listening" line, then runs `then`.
fn when_listening(then: &str) -> String {
    format!("set -e\nwait_console 'listening on TCP port 8080' 60\n{then}")
}

const CURL: &str = "curl -sS --max-time 20 http://10.0.0.2:8080/\n";

/// Fetches every file of static_website's htdocs and prints `DIGEST PATH` lines.
fn website_script() -> String {
    let mut s = when_listening("");
    for f in folder_digests("static_website").keys() {
        s.push_str(&format!(
            "echo \"$(curl -sS --max-time 20 http://10.0.0.2:8080/{f} | sha256sum | cut -d' ' -f1) {f}\"\n"
        ));
    }
    s
}

const NETWORK_SCRIPT: &str = "\
wait_console 'UDP echo on port 7' 60
ping -c 3 -W 5 10.0.0.2
printf 'echo me over UDP' | socat -t 2 - UDP:10.0.0.2:7; echo
";

/// dnsmasq on the bridge, in the foreground so that it ends with the scenario.
const DNSMASQ: &str = "\
dnsmasq -k --port=0 --interface=xenbr0 --bind-interfaces --dhcp-range=10.0.0.50,10.0.0.60,1h \
--dhcp-leasefile=/tmp/dhcp-leases --log-dhcp >dnsmasq.log 2>&1 &
";

const DHCP_SCRIPT: &str = "\
set -e
wait_console 'listening on TCP port 8080' 60
ip=$(awk '{print $3}' /tmp/dhcp-leases | head -n 1)
echo \"lease $ip\"
curl -sS --max-time 20 \"http://$ip:8080/\"
";

/// The unix tests' malformed requests (one per connection, the first line of each answer
/// printed), then slow clients trickling a request a byte a second while others are served.
const HOSTILE_SCRIPT: &str = r#"
wait_console 'listening on TCP port 8080' 60
send() { printf "$1" | socat -t 10 - TCP:10.0.0.2:8080 2>&1 | head -n 1; }
send 'garbage\r\n\r\n'
send 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'
send 'GET / HTTP/9.9\r\n\r\n'
send 'GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n'
send '\000\001\002\377\r\n\r\n'
send 'GET /\177 HTTP/1.1\r\n\r\n'
send "GET / HTTP/1.1\r\nX: $(head -c 20000 /dev/zero | tr '\0' a)\r\n\r\n"
send 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n'
send 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
send 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n'
head -c 65536 /dev/urandom | socat -t 10 - TCP:10.0.0.2:8080 2>&1 | head -n 1
for i in $(seq 1 16); do
  (for c in G E T ' ' / ' ' H T T P / 1 . 0; do printf "$c"; sleep 1; done; printf '\r\n\r\n') |
    socat -t 40 - TCP:10.0.0.2:8080 >slow.$i 2>&1 &
done
sleep 2
ok=0
for i in $(seq 1 10); do
  curl -sS --max-time 20 http://10.0.0.2:8080/ | grep -q 'hello mirage world' && ok=$((ok + 1))
done
echo "served while slow clients trickled: $ok of 10"
wait
echo "slow clients answered: $(grep -l 'hello mirage world' slow.* | wc -l) of 16"
curl -sS --max-time 20 http://10.0.0.2:8080/
"#;

/// The domain's CPU time at the start and after five idle seconds.
const IDLE_SCRIPT: &str = "\
set -e
wait_console 'sleeping forever' 60
cpu() { xl list \"$DOMU\" | awk 'NR == 2 { print $6 }'; }
echo \"cpu before $(cpu)\"
sleep 5
echo \"cpu after $(cpu)\"
";

/// `suite()` is the one boot of the test bed that runs every scenario of this file, or why it
/// cannot run here. While dom0 boots (QEMU takes one core), the equivalence matrix's other
/// rows are computed beside it, so that the matrix test does not wait for them afterwards.
fn suite() -> Result<&'static Boot, String> {
    static BOOT: OnceLock<Result<Boot, String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        let bed = Testbed::get()?;
        let b = builder();
        let conduit = b.committed("examples/conduit_server", "xen");
        let website = b.committed("examples/static_website", "xen");
        let network = b.committed("examples/network", "xen");
        let block = b.committed("examples/block", "xen");
        let dhcp = b.configured("examples/conduit_server", "xen", &["--dhcp=true"]);
        let kv_crunch = b.committed("examples/kv_ro", "xen");
        let kv_tar = b.configured("examples/kv_ro", "xen", &["--kv_ro=tar"]);
        let kv_fat = b.configured("examples/kv_ro", "xen", &["--kv_ro=fat"]);
        let website_tar = b.configured("examples/static_website", "xen", &["--kv_ro=tar"]);
        let website_fat = b.configured("examples/static_website", "xen", &["--kv_ro=fat"]);
        let clock = b.committed("runtime/xen/tests/fixtures/clock", "xen");
        let (_, archive) = disk(&kv_tar, "examples/kv_ro");
        let long = Duration::from_secs(90);
        let server = |name: &str, image: &Image, ty: DomainType, script: String| {
            Scenario::new(name, &image.path)
                .config(&config(image, ty))
                .script(&script)
                .destroy_after_script()
                .deadline(long)
        };
        let scenarios = [
            server(
                "conduit-pvh",
                &conduit,
                DomainType::Pvh,
                when_listening(CURL),
            ),
            server("conduit-pv", &conduit, DomainType::Pv, when_listening(CURL)),
            server("website-pvh", &website, DomainType::Pvh, website_script()),
            server("website-pv", &website, DomainType::Pv, website_script()),
            with_disk(
                server(
                    "website-tar-pvh",
                    &website_tar,
                    DomainType::Pvh,
                    website_script(),
                ),
                &website_tar,
                "examples/static_website",
            ),
            with_disk(
                server(
                    "website-fat-pv",
                    &website_fat,
                    DomainType::Pv,
                    website_script(),
                ),
                &website_fat,
                "examples/static_website",
            ),
            server(
                "network-pvh",
                &network,
                DomainType::Pvh,
                NETWORK_SCRIPT.into(),
            ),
            server(
                "network-pv",
                &network,
                DomainType::Pv,
                NETWORK_SCRIPT.into(),
            ),
            server("dhcp-pv", &dhcp, DomainType::Pv, DHCP_SCRIPT.into()).before(DNSMASQ),
            server(
                "hostile-pvh",
                &conduit,
                DomainType::Pvh,
                HOSTILE_SCRIPT.into(),
            )
            .deadline(Duration::from_secs(180)),
            // Not destroyed: the guest ends by itself, acknowledging xl's request.
            Scenario::new("shutdown-pvh", &conduit.path)
                .config(&config(&conduit, DomainType::Pvh))
                .script(&when_listening("xl shutdown -w \"$DOMU\"\n"))
                .deadline(long),
            Scenario::new("block-pv", &block.path)
                .config(&config(&block, DomainType::Pv))
                .file("disk.img", vec![0u8; 1 << 20]),
            // A second boot of the same disk: the scenarios' folders stay for the whole boot.
            Scenario::new("block-again-pvh", &block.path).config(
                &config(&block, DomainType::Pvh)
                    .replace("target=disk.img", "target=/scenarios/block-pv/disk.img"),
            ),
            Scenario::new("kv-crunch-pv", &kv_crunch.path)
                .config(&config(&kv_crunch, DomainType::Pv)),
            Scenario::new("kv-tar-pvh", &kv_tar.path)
                .config(&config(&kv_tar, DomainType::Pvh))
                .file("t.tar", archive.clone()),
            Scenario::new("kv-tar-pv", &kv_tar.path)
                .config(&config(&kv_tar, DomainType::Pv))
                .file("t.tar", archive.clone()),
            with_disk(
                Scenario::new("kv-fat-pvh", &kv_fat.path).config(&config(&kv_fat, DomainType::Pvh)),
                &kv_fat,
                "examples/kv_ro",
            ),
            Scenario::new("kv-bad-tar-pv", &kv_tar.path)
                .config(&config(&kv_tar, DomainType::Pv))
                .file("t.tar", corrupt(archive)),
            Scenario::new("no-vif-pvh", &conduit.path)
                .config(&without(&config(&conduit, DomainType::Pvh), "vif")),
            Scenario::new("no-disk-pv", &block.path)
                .config(&without(&config(&block, DomainType::Pv), "disk")),
            Scenario::new("idle-pvh", &clock.path)
                .config(&config(&clock, DomainType::Pvh))
                .args(&["--forever=true"])
                .script(IDLE_SCRIPT)
                .destroy_after_script(),
            Scenario::new("idle-pv", &clock.path)
                .config(&config(&clock, DomainType::Pv))
                .args(&["--forever=true"])
                .script(IDLE_SCRIPT)
                .destroy_after_script(),
        ];
        // The matrix's other rows need no dom0: they are computed while it boots.
        let other_rows = std::thread::spawn(equivalence::other_targets);
        let boot = bed.boot(&scenarios);
        // (Should they have panicked, the matrix test computes them again and shows why.)
        let _ = other_rows.join();
        Ok(boot)
    })
    .as_ref()
    .map_err(Clone::clone)
}

macro_rules! require_suite {
    () => {
        match suite() {
            Ok(boot) => boot,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// `served(run)` checks that a server's script ran to its end and the guest was still
/// serving (destroyed by the bed after the script, not crashed).
fn served(run: &Outcome) {
    assert_eq!(run.script, Some(0), "{run}");
    assert_eq!(run.guest, Some(GuestEnd::Destroyed), "{run}");
}

#[test]
fn conduit_server_answers_curl_from_dom0_across_the_bridge() {
    let boot = require_suite!();
    for name in ["conduit-pvh", "conduit-pv"] {
        let run = boot.scenario(name);
        served(run);
        assert_eq!(run.dom0, BODY, "{run}");
        assert!(
            run.console
                .contains("INF [netfront] service: vif 0 connected"),
            "{run}"
        );
        assert!(
            run.console.contains("INF [ipv4] address 10.0.0.2/24"),
            "{run}"
        );
    }
}

#[test]
fn network_answers_ping_and_udp_echo() {
    let boot = require_suite!();
    for name in ["network-pvh", "network-pv"] {
        let run = boot.scenario(name);
        served(run);
        assert!(
            run.dom0
                .contains("3 packets transmitted, 3 packets received"),
            "{run}"
        );
        assert!(run.dom0.contains("echo me over UDP\n"), "{run}");
        assert!(
            run.console
                .contains("INF [network] IPv4 10.0.0.2/24, answering ping"),
            "{run}"
        );
    }
}

#[test]
fn the_dhcp_variant_takes_a_lease_from_dnsmasq_and_serves_on_it() {
    let run = require_suite!().scenario("dhcp-pv");
    served(run);
    let lease = run
        .dom0
        .lines()
        .find_map(|l| l.strip_prefix("lease "))
        .unwrap_or_else(|| panic!("no lease: {run}"));
    assert!(lease.starts_with("10.0.0.5"), "{run}");
    assert!(
        run.console
            .contains(&format!("INF [dhcp] leased {lease}/24, gateway 10.0.0.1")),
        "{run}"
    );
    assert!(run.dom0.ends_with(BODY), "{run}");
}

#[test]
fn hostile_clients_leave_conduit_server_serving() {
    let run = require_suite!().scenario("hostile-pvh");
    served(run);
    let statuses: Vec<&str> = run
        .dom0
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 431 Request Header Fields Too Large",
            "HTTP/1.1 413 Content Too Large",
            "HTTP/1.1 501 Not Implemented",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 400 Bad Request",
        ],
        "{run}"
    );
    assert!(
        run.dom0
            .contains("served while slow clients trickled: 10 of 10"),
        "{run}"
    );
    assert!(
        run.dom0.contains("slow clients answered: 16 of 16"),
        "{run}"
    );
    assert!(run.dom0.ends_with(BODY), "{run}");
}

#[test]
fn xl_shutdown_ends_a_unikernel_cleanly() {
    let run = require_suite!().scenario("shutdown-pvh");
    assert_eq!(run.script, Some(0), "{run}");
    assert_eq!(run.guest, Some(GuestEnd::Poweroff), "{run}");
    assert!(
        run.console
            .contains("INF [xen] the toolstack asked for poweroff: shutting down"),
        "{run}"
    );
}

#[test]
fn block_writes_sectors_and_a_second_boot_of_the_disk_reads_them_back() {
    let boot = require_suite!();
    let first = boot.scenario("block-pv");
    assert_eq!(first.guest, Some(GuestEnd::Poweroff), "{first}");
    for line in [
        "INF [blkfront] disk.img: vbd 51712 connected, 2048 sectors of 512 bytes, read-write",
        "INF [block] the disk holds no previous run's sectors",
        "INF [block] wrote 16 sectors one by one and read them back: all match",
        "INF [block] wrote 16 sectors in one transfer and read them back: all match",
        "INF [block] reading past the end fails as it must",
    ] {
        assert!(first.console.contains(line), "{line}: {first}");
    }
    let second = boot.scenario("block-again-pvh");
    assert_eq!(second.guest, Some(GuestEnd::Poweroff), "{second}");
    assert!(
        second
            .console
            .contains("INF [block] the disk holds what a previous run wrote: 16 sectors read back"),
        "{second}"
    );
}

#[test]
fn kv_ro_lists_and_reads_its_crunched_files_tar_archive_or_fat_filesystem() {
    let boot = require_suite!();
    for name in ["kv-crunch-pv", "kv-tar-pvh", "kv-tar-pv", "kv-fat-pvh"] {
        let run = boot.scenario(name);
        assert_eq!(run.guest, Some(GuestEnd::Poweroff), "{run}");
        let store: String = run
            .console
            .lines()
            .filter(|l| l.starts_with("INF [kv_ro]"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(store, KV_RO_OUTPUT, "{run}");
    }
}

#[test]
fn a_corrupt_archive_gives_the_same_error_as_on_unix() {
    let run = require_suite!().scenario("kv-bad-tar-pv");
    assert_eq!(run.guest, Some(GuestEnd::Crash), "{run}");
    // The unix image, on the same archive, beside it where it reads it.
    let unix =
        Builder::new(scratch("xen-images")).configured("examples/kv_ro", "unix", &["--kv_ro=tar"]);
    let dir = scratch("xen-images").join("bad-tar-unix");
    std::fs::create_dir_all(&dir).unwrap();
    let (file, archive) = disk(&unix, "examples/kv_ro");
    std::fs::write(dir.join(file), corrupt(archive)).unwrap();
    std::fs::copy(&unix.path, dir.join("kv_ro")).unwrap();
    let out = Command::new(dir.join("kv_ro")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error from unix: {stderr}"));
    assert!(error.contains("bad checksum"), "{error}");
    assert!(
        run.console.lines().any(|l| l == error),
        "xen's error differs from unix's `{error}`: {run}"
    );
}

#[test]
fn a_domu_without_its_vif_or_disk_names_the_device_and_fails_within_seconds() {
    let boot = require_suite!();
    for (name, message) in [
        (
            "no-vif-pvh",
            "error: cannot connect device `netif_2`: network device `service` (vif 0): \
             is missing: the domain has no vif at all",
        ),
        (
            "no-disk-pv",
            "error: cannot connect device `block_of_file_2`: block device `disk.img` \
             (xvda, vbd 51712): is missing: the domain has no vbd at all",
        ),
    ] {
        let run = boot.scenario(name);
        assert_eq!(run.guest, Some(GuestEnd::Crash), "{run}");
        assert!(run.console.contains(message), "{run}");
        assert!(run.seconds <= 30, "took {} s: {run}", run.seconds);
    }
}

/// `cpu(run, which)` is the domain's CPU seconds the idle script printed.
fn cpu(run: &Outcome, which: &str) -> f64 {
    run.dom0
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cpu {which} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `cpu {which}` line: {run}"))
}

#[test]
fn sleeping_forever_leaves_the_vcpu_idle() {
    let boot = require_suite!();
    for name in ["idle-pvh", "idle-pv"] {
        let run = boot.scenario(name);
        served(run);
        let used = cpu(run, "after") - cpu(run, "before");
        assert!(used < 0.5, "{used} CPU seconds in 5 idle seconds: {run}");
    }
}

/// The scenarios that give each xen row of the equivalence matrix: (example, store, domUs).
const XEN_ROWS: [(&str, &str, &[&str]); 6] = [
    ("kv_ro", "crunch", &["kv-crunch-pv"]),
    ("kv_ro", "tar", &["kv-tar-pvh", "kv-tar-pv"]),
    ("kv_ro", "fat", &["kv-fat-pvh"]),
    ("static_website", "crunch", &["website-pvh", "website-pv"]),
    ("static_website", "tar", &["website-tar-pvh"]),
    ("static_website", "fat", &["website-fat-pv"]),
];

/// `xen_row(boot, example, scenarios)` is what the domUs `scenarios` returned: kv_ro's
/// printed digests once it powered off, or the digests of what dom0 fetched from
/// static_website while it kept serving; every domU must return the same files.
fn xen_row(boot: &Boot, example: &str, scenarios: &[&str]) -> Got {
    let mut first: Option<(&str, equivalence::Digests)> = None;
    for name in scenarios {
        let run = boot.scenario(name);
        let got = match example {
            "kv_ro" if run.guest == Some(GuestEnd::Poweroff) => kv_ro_digests(&run.console),
            "static_website" if run.script == Some(0) && run.guest == Some(GuestEnd::Destroyed) => {
                sha256sum_digests(&run.dom0)
            }
            _ => {
                eprintln!("{run}");
                let (guest, script) = (&run.guest, run.script);
                return Got::Failed(format!("{name}: guest {guest:?}, script {script:?}"));
            }
        };
        match &first {
            Some((other, digests)) if *digests != got => {
                return Got::Failed(format!("{other} and {name} return different files"));
            }
            Some(_) => {}
            None => first = Some((name, got)),
        }
    }
    Got::Read(first.expect("a xen row has a domU").1)
}

/// The cross-target equivalence matrix (issue #11): kv_ro and static_website over crunch, tar
/// and fat return every file of their folder with its digest on unix, spt, hvt and xen. The
/// xen rows are this file's domUs; the other rows were computed while dom0 booted.
#[test]
fn every_file_has_the_same_digest_on_every_target() {
    let xen = suite();
    let xen_rows = XEN_ROWS.iter().map(|&(example, store, scenarios)| {
        let (how, outcome) = match &xen {
            Ok(boot) => (
                format!("domU {}", scenarios.join(", ")),
                xen_row(boot, example, scenarios),
            ),
            Err(why) => (String::from("the domU test bed"), Got::Skipped(why.clone())),
        };
        Row {
            example,
            store,
            target: "xen",
            how,
            outcome,
        }
    });
    let matrix = Matrix::new(equivalence::other_targets().iter().cloned().chain(xen_rows));
    matrix.check();
}
