//! The Solo5 targets' runs: under the real tenders (`solo5-hvt`, `solo5-spt`: Solo5 is not
//! packaged, and this project neither fetches nor builds it, so their paths come from
//! `SOLO5_HVT` and `SOLO5_SPT`), or under minimal tenders of the tests' own that run the
//! images here: [`spt`], a loader in a child process with Solo5's seccomp filter, and [`hvt`],
//! a monitor on /dev/kvm (in a thread of the test, or in a child process as a tender runs).
//! Both take the guest's memory as the tenders' `--mem` does and attach block devices
//! (files) and network devices: tap interfaces ([`tap`], attached as the tenders attach them)
//! or datagram sockets (one frame a datagram); [`net`] speaks Ethernet, ARP, TCP and HTTP
//! over a socket. [`Tender`] runs an image alike under any of the four.
//!
//! # A Solo5 test with a block and a network device
//!
//! ```no_run
//! use mirage_test_support::image::Builder;
//! use mirage_test_support::solo5::{net, spt};
//! use mirage_test_support::tree::scratch;
//!
//! // The loader's child side: the test binary runs itself again for each image.
//! mirage_test_support::mini_spt_child_test!();
//!
//! fn images() -> Builder {
//!     // Solo5 images build with the host triple as cargo's target, as Nix builds them.
//!     Builder::new(scratch("solo5-images")).host_target()
//! }
//!
//! #[test]
//! fn block_keeps_what_it_wrote() {
//!     let image = images().committed("examples/block", "spt");
//!     let disk = scratch("solo5-images").join("storage.img");
//!     std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
//!     let run = spt::run(&image.path, "", spt::Devices::default().block("storage", &disk));
//!     assert_eq!(run.status, Some(0), "{}{}", run.stdout, run.stderr);
//! }
//!
//! #[test]
//! fn the_server_answers() {
//!     let image = images().committed("examples/conduit_server", "spt");
//!     let (host, guest_end) = spt::net_pair();
//!     let server = spt::spawn(&image.path, "", spt::Devices::default().net("service", guest_end));
//!     let (arp_reply, syn_ack, response) = net::http_get(&host);
//!     let run = server.kill();
//!     assert!(arp_reply && syn_ack, "{}", spt::guest(&run));
//!     assert!(response.ends_with(b"hello mirage world!\n"));
//! }
//! ```
//!
//! A server on a tap in a network namespace, under every tender there is for spt (the minimal
//! loader, and `solo5-spt` where `SOLO5_SPT` names it), with 64 MiB of memory:
//!
//! ```no_run
//! # use mirage_test_support::image::Builder;
//! # use mirage_test_support::netns::Netns;
//! # use mirage_test_support::solo5::{Devices, Tender};
//! # use mirage_test_support::tree::scratch;
//! mirage_test_support::mini_spt_child_test!();
//! mirage_test_support::mini_hvt_child_test!();
//!
//! #[test]
//! fn the_server_answers_curl() {
//!     let image = Builder::new(scratch("solo5-images")).host_target()
//!         .committed("examples/conduit_server", "spt");
//!     for tender in Tender::all("spt") {
//!         let Some(ns) = Netns::create() else { return };
//!         let devices = Devices::default().mem(64).tap("service", &ns);
//!         let mut server = tender.spawn(&image.path, &["--ipv4=10.0.0.2/24"], devices);
//!         let curl = ["curl", "-sS", "--max-time", "2", "http://10.0.0.2:8080/"];
//!         let body = ns.until_ok(&curl, std::time::Duration::from_secs(20), &mut server);
//!         assert_eq!(body, b"hello mirage world!\n");
//!     }
//! }
//! ```
//!
//! The same under the minimal hvt monitor: [`hvt::run_with`] with
//! [`hvt::HvtDevice::Block`]`(file)` or [`hvt::HvtDevice::Net`]`(socket)` by manifest name,
//! in a thread, stopped with its `stop` flag. Under the real tenders: [`tender`], then
//! [`run_tender`] with the tender's own device options (`--block:NAME=FILE`, `--net:NAME=TAP`;
//! taps only inside a network namespace the test makes).

pub mod elf;
#[allow(unsafe_code)]
pub mod hvt;
pub mod net;
#[allow(unsafe_code)]
pub mod spt;
#[allow(unsafe_code)]
pub mod tap;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Finished, Process};

pub use spt::Devices;

/// A network device's host side as a tender holds it: a descriptor that reads and writes one
/// frame at a time (a tap, or one end of a datagram socket pair), and the MTU the guest is
/// told.
#[derive(Debug)]
pub struct Link {
    /// The descriptor.
    pub fd: OwnedFd,
    /// The MTU.
    pub mtu: u16,
}

impl From<UnixDatagram> for Link {
    /// One end of a socket pair, with MTU 1500.
    fn from(socket: UnixDatagram) -> Link {
        Link {
            fd: socket.into(),
            mtu: 1500,
        }
    }
}

/// A program that runs Solo5 images: the minimal ones of these tests, or a real tender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tender {
    /// The minimal spt loader ([`spt`]), in a child process.
    MiniSpt,
    /// The minimal hvt monitor ([`hvt`]), in a child process.
    MiniHvt,
    /// A real tender (`solo5-spt` or `solo5-hvt`) at a path.
    Real(PathBuf),
}

impl Tender {
    /// `all(target)` is every tender for `target` (`spt`, `hvt`) that can run here: the
    /// minimal one (for hvt, where /dev/kvm is usable), and the real one where
    /// `SOLO5_SPT`/`SOLO5_HVT` names it. It says which are skipped and why.
    pub fn all(target: &str) -> Vec<Tender> {
        let mut all = Vec::new();
        match target {
            "spt" => all.push(Tender::MiniSpt),
            "hvt" => match hvt::usable() {
                Ok(()) => all.push(Tender::MiniHvt),
                Err(why) => eprintln!("skipped under the minimal hvt monitor: {why}"),
            },
            other => panic!("not a Solo5 target: {other}"),
        }
        match tender(target) {
            Ok(path) => all.push(Tender::Real(path)),
            Err(why) => eprintln!("skipped under solo5-{target}: {why}"),
        }
        all
    }

    /// `name()` says which tender this is, for messages.
    pub fn name(&self) -> String {
        match self {
            Tender::MiniSpt => String::from("the minimal spt loader"),
            Tender::MiniHvt => String::from("the minimal hvt monitor"),
            Tender::Real(path) => path.display().to_string(),
        }
    }

    /// `spawn(image, args, devices)` starts `image` with the boot arguments `args` (the
    /// tenders join them with spaces) and `devices`, inside the namespace of their tap if
    /// they have one. The guest's console is the process's standard output; its exit status
    /// the guest's.
    pub fn spawn(&self, image: &Path, args: &[&str], devices: Devices) -> Process {
        match self {
            Tender::MiniSpt => spt::spawn(image, &args.join(" "), devices),
            Tender::MiniHvt => hvt::spawn(image, &args.join(" "), devices),
            Tender::Real(tender) => {
                let mut command = match devices.netns() {
                    Some(ns) => {
                        let mut c = Command::new("ip");
                        c.args(["netns", "exec", ns]).arg(tender);
                        c
                    }
                    None => Command::new(tender),
                };
                command
                    .args(devices.tender_options())
                    .arg("--")
                    .arg(image)
                    .args(args);
                Process::spawn(&mut command)
            }
        }
    }
}

/// `tender(target)` is the real tender for `target` (`hvt`, `spt`) from `SOLO5_HVT` or
/// `SOLO5_SPT`, or why there is none here (for hvt, also a usable `/dev/kvm`).
pub fn tender(target: &str) -> Result<PathBuf, String> {
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

/// `run_tender(tender, options, image, args)` runs `tender --mem=32 OPTIONS... -- image
/// args...` for at most 60 s.
pub fn run_tender(tender: &Path, options: &[&str], image: &Path, args: &[&str]) -> Finished {
    let mut cmd = Command::new(tender);
    cmd.arg("--mem=32")
        .args(options)
        .arg("--")
        .arg(image)
        .args(args);
    process::run(&mut cmd, Duration::from_secs(60))
}
