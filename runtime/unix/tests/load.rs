//! Load, round after round: conduit_server and static_website on the socket stack (loopback)
//! and on the direct stack (a tap in a network namespace) take 10 rounds of `wrk` with 1,000
//! concurrent connections. After every round a plain `curl` succeeds; the image's memory
//! after the last round is within 10% of after the first, and its throughput within 20%. The
//! rounds are 2 s each: about a minute for the four images.
//!
//! Throughput is compared as requests per second of the image's own processor time, the best
//! of the first three rounds against the best of the last three: on a shared machine, requests
//! per wall-clock second swing by a factor of two from round to round with the other work
//! running (both are printed), and that work only ever slows a round down, while the processor
//! time a request costs the image is what grows if the image degrades (a slower allocator, a
//! longer socket scan, more copying). A later round faster than the first is no failure.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::{cpu_ticks, curl, free_port, image, rss_kib, wait_for, wrk, Netns, Process};

const ROUNDS: usize = 10;
const CONNECTIONS: u32 = 1000;
const SECONDS: u32 = 2;

/// `rounds(server, ns, url)` runs the rounds against `url` and checks what the module says.
fn rounds(server: &mut Process, ns: Option<&Netns>, url: &str, what: &str) {
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let ticks = cpu_ticks(server.id());
        let load = wrk(ns, url, CONNECTIONS, SECONDS);
        let busy = (cpu_ticks(server.id()) - ticks).max(1);
        // Requests per processor second (the kernel counts 100 ticks a second).
        let per_cpu_second = load.requests as f64 * 100.0 / busy as f64;
        // Let the last connections close before measuring.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            server.is_running(),
            "{what}: the image died in round {round}"
        );
        let args = [
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ];
        let code = match ns {
            Some(ns) => ns.exec(&args).output().unwrap().stdout,
            None => curl(&args[1..]),
        };
        assert_eq!(code, b"200", "{what}: curl after round {round}");
        let rss = rss_kib(server.id());
        eprintln!(
            "{what}: round {round}: {:.0} requests/s, {per_cpu_second:.0} per CPU second, {} errors, {rss} KiB",
            load.rps, load.errors
        );
        samples.push((per_cpu_second, rss));
    }
    let (first, last) = (samples[0], samples[ROUNDS - 1]);
    assert!(
        last.1 * 10 <= first.1 * 11,
        "{what}: memory grew from {} KiB after the first round to {} KiB after the last",
        first.1,
        last.1
    );
    // Other work on the machine only ever slows a round down: the best of a few rounds is the
    // image's own rate.
    let best = |rounds: &[(f64, u64)]| rounds.iter().map(|r| r.0).fold(0.0, f64::max);
    let (early, late) = (best(&samples[..3]), best(&samples[ROUNDS - 3..]));
    assert!(
        late * 10.0 >= early * 8.0,
        "{what}: {early:.0} requests per CPU second at best in the first rounds, {late:.0} in the last"
    );
}

fn on_the_socket_stack(example: &str) {
    let image = image(example, &[]);
    let port = free_port();
    let mut server = Process::spawn(Command::new(image).arg(format!("--port={port}")));
    wait_for(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &mut server);
    rounds(
        &mut server,
        None,
        &format!("http://127.0.0.1:{port}/"),
        &format!("{example}, socket stack"),
    );
}

fn on_the_direct_stack(example: &str) {
    let image = image(example, &["--net=direct"]);
    let Some(ns) = Netns::create() else { return };
    let image = image.to_string_lossy().into_owned();
    let mut server = Process::spawn(&mut ns.exec(&[
        &image,
        "--interface=tap0",
        "--ipv4=10.0.0.2/24",
        "--port=8080",
    ]));
    let url = "http://10.0.0.2:8080/";
    ns.until_ok(
        &["curl", "-sS", "--max-time", "2", url],
        Duration::from_secs(20),
        &mut server,
    );
    rounds(
        &mut server,
        Some(&ns),
        url,
        &format!("{example}, direct stack"),
    );
}

#[test]
fn conduit_server_on_the_socket_stack_takes_ten_rounds_of_a_thousand_connections() {
    on_the_socket_stack("conduit_server");
}

#[test]
fn static_website_on_the_socket_stack_takes_ten_rounds_of_a_thousand_connections() {
    on_the_socket_stack("static_website");
}

#[test]
fn conduit_server_on_the_direct_stack_takes_ten_rounds_of_a_thousand_connections() {
    on_the_direct_stack("conduit_server");
}

#[test]
fn static_website_on_the_direct_stack_takes_ten_rounds_of_a_thousand_connections() {
    on_the_direct_stack("static_website");
}
