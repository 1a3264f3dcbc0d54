//! Checks of the direct TCP/IP stack (smoltcp in the image) that hold on every target, run
//! from inside a test's network namespace ([`Netns`]: the host side is 10.0.0.1, the image
//! 10.0.0.2) against an image the caller started there: unix over the tap, spt and hvt over
//! their net device attached to the tap. The caller starts and stops the image; these say
//! what it must do.
//!
//! Memory, for an image whose heap is fixed (spt, hvt, xen), is the heap in use: what the
//! stack logs at debug level each time its last connection goes ("no connections left; heap:
//! N of M bytes in use"). It is the image's own count, the same under the real tenders and
//! the minimal ones, where a tender's resident memory only tells which guest pages were ever
//! touched. Unix images log it too (their allocator counts).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::netns::{raw, Alive, Netns};
use crate::process::Log;

/// The image's address.
pub const IMAGE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The host side's address.
pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// `heap_in_use(log)` is every "heap: N ... bytes in use" the direct stack logged, in order.
pub fn heap_in_use(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| {
            l.split_once("heap: ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// `next_heap(log, seen, within)` waits until the server's `log` has more than `seen` heap
/// lines (its connections have all gone again) and, a moment later, is the last one and how
/// many there are; it fails the test after `within`.
pub fn next_heap(log: &Log, seen: usize, within: Duration) -> (u64, usize) {
    let start = Instant::now();
    loop {
        if heap_in_use(&log.text()).len() > seen {
            // The stack reaps every 250 ms: let a last closing connection log too.
            std::thread::sleep(Duration::from_millis(600));
            let heap = heap_in_use(&log.text());
            return (heap[heap.len() - 1], heap.len());
        }
        assert!(
            start.elapsed() < within,
            "no heap line after {seen} within {within:?}: some connection stays open:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `curl_ok(ns, server)` waits (at most 20 s) until conduit_server on 10.0.0.2:8080 answers
/// `curl` with its greeting.
pub fn curl_ok(ns: &Netns, server: &mut dyn Alive) {
    let curl = ["curl", "-sS", "--max-time", "2", "http://10.0.0.2:8080/"];
    let body = ns.until_ok(&curl, Duration::from_secs(20), server);
    assert_eq!(body, b"hello mirage world!\n");
}

/// `request_rate(ns)` is how many requests a second conduit_server on 10.0.0.2:8080 answers
/// one client at a time (wrk, one connection, one second): what tells a machine whose
/// virtualisation makes an image far slower than the hardware would.
pub fn request_rate(ns: &Netns) -> f64 {
    crate::load::wrk(Some(ns), "http://10.0.0.2:8080/", 1, 1).map_or(0.0, |l| l.rps)
}

/// How hard a SYN flood is.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    /// Forged SYNs, from addresses that never answer.
    pub syns: u32,
    /// How soon after them a normal client must be answered.
    pub answer_within: Duration,
}

impl Flood {
    /// The acceptance flood: 5,000 SYNs, a client answered within 2 s.
    pub const ACCEPTANCE: Flood = Flood {
        syns: 5000,
        answer_within: Duration::from_secs(2),
    };
}

/// `syn_flood(ns, server, flood)` checks that conduit_server on 10.0.0.2:8080 (started with
/// `--logs=debug --tcp-handshake-timeout=3`, and fewer sockets than the flood has SYNs) still
/// answers a normal `curl` within `flood.answer_within` right after the flood's SYNs from
/// spoofed addresses, and again after the handshake timeout. The caller then checks the log
/// with [`heap_returned`].
pub fn syn_flood(ns: &Netns, server: &mut dyn Alive, flood: Flood) {
    curl_ok(ns, server);
    // Let the first connection's heap line come.
    std::thread::sleep(Duration::from_millis(600));
    let sent = raw::syn_flood(&ns.name, IMAGE, 8080, flood.syns);
    assert_eq!(sent, flood.syns);
    let answer_within = flood.answer_within;
    // At once, a normal client is answered within `answer_within`.
    let max = format!("{:.1}", answer_within.as_secs_f64());
    let curl = ["curl", "-sS", "--max-time", &max, "http://10.0.0.2:8080/"];
    let started = Instant::now();
    let out = ns.exec(&curl).output().unwrap();
    assert_eq!(out.stdout, b"hello mirage world!\n", "{out:?}");
    assert!(started.elapsed() < answer_within);
    // After the handshake timeout, the half-open connections' memory is back.
    std::thread::sleep(Duration::from_secs(5));
    assert!(server.is_running());
    let out = ns.exec(&curl).output().unwrap();
    assert_eq!(out.stdout, b"hello mirage world!\n", "{out:?}");
    std::thread::sleep(Duration::from_millis(600));
}

/// `heap_returned(log)` checks the log of a [`syn_flood`] run: the stack evicted half-open
/// connections, and its heap in use once they were gone is within 10% of before the flood.
pub fn heap_returned(log: &str) {
    assert!(
        log.contains("half-open connections to admit new ones"),
        "{log}"
    );
    let heap = heap_in_use(log);
    assert!(heap.len() >= 2, "{log}");
    let (before, after) = (heap[0], heap[heap.len() - 1]);
    assert!(
        after * 10 <= before * 11,
        "heap in use: {before} bytes before the flood, {after} after: {heap:?}"
    );
}

/// `initial_sequence(ns, server)` is the initial sequence number conduit_server on
/// 10.0.0.2:8080 answers a SYN from 10.0.0.1:40000 with, once it serves.
pub fn initial_sequence(ns: &Netns, server: &mut dyn Alive) -> u32 {
    curl_ok(ns, server);
    raw::initial_sequence(&ns.name, HOST, IMAGE, 8080).expect("a SYN-ACK")
}

/// `fragments(ns, server)` checks that the network example on 10.0.0.2 (UDP echo on port 7)
/// answers `ping -s 3000` (three fragments each way) and echoes a 4,000-byte UDP datagram
/// whole.
pub fn fragments(ns: &Netns, server: &mut dyn Alive) {
    ns.until_ok(
        &["ping", "-c", "1", "-W", "2", "10.0.0.2"],
        Duration::from_secs(20),
        server,
    );
    // One at a time: an image reassembles two datagrams at once.
    let out = ns
        .exec(&[
            "ping", "-c", "3", "-i", "1", "-W", "5", "-s", "3000", "10.0.0.2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3008 bytes from 10.0.0.2"), "{text}");
    assert!(text.contains(" 0% packet loss"), "{text}");
    let echo = "head -c 4000 /dev/urandom > \"$1\"; exec 3<>/dev/udp/10.0.0.2/7; \
                cat \"$1\" >&3; timeout 3 head -c 4000 <&3 | cmp - \"$1\"";
    let sample = std::env::temp_dir().join(format!("{}.udp", ns.name));
    let sample = sample.to_string_lossy().into_owned();
    let out = ns
        .exec(&["bash", "-c", echo, "echo", &sample])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&sample);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.is_running());
}
