//! The Solo5 targets' runs: under the real tenders (`solo5-hvt`, `solo5-spt`: Solo5 is not
//! packaged, and this project neither fetches nor builds it, so their paths come from
//! `SOLO5_HVT` and `SOLO5_SPT`), or under minimal tenders of the tests' own that run the
//! images here: [`spt`], a loader in a child process with Solo5's seccomp filter, and [`hvt`],
//! a monitor on /dev/kvm. Both attach block devices (files) and network devices (datagram
//! sockets, one frame a datagram); [`net`] speaks Ethernet, ARP, TCP and HTTP over those.
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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Finished};

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
