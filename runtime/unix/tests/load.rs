//! Load, round after round: conduit_server and static_website on the socket stack (loopback)
//! and on the direct stack (a tap in a network namespace) take 10 rounds of `wrk` with 1,000
//! concurrent connections. After every round a plain `curl` succeeds; the image's memory
//! after the last round is within 10% of after the first, and its throughput within 20%. The
//! rounds are 2 s each: about a minute for the four images.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::{curl, free_port, image, rss_kib, wait_for, wrk, Netns, Process};

const ROUNDS: usize = 10;
const CONNECTIONS: u32 = 1000;
const SECONDS: u32 = 2;

/// `rounds(server, ns, url)` runs the rounds against `url` and checks what the module says.
fn rounds(server: &mut Process, ns: Option<&Netns>, url: &str, what: &str) {
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let load = wrk(ns, url, CONNECTIONS, SECONDS);
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
            "{what}: round {round}: {:.0} requests/s, {} errors, {rss} KiB",
            load.rps, load.errors
        );
        samples.push((load, rss));
    }
    let (first, last) = (samples[0], samples[ROUNDS - 1]);
    assert!(
        last.1 * 10 <= first.1 * 11,
        "{what}: memory grew from {} KiB after the first round to {} KiB after the last",
        first.1,
        last.1
    );
    assert!(
        last.0.rps * 10.0 >= first.0.rps * 8.0 && last.0.rps * 10.0 <= first.0.rps * 12.0,
        "{what}: {:.0} requests/s in the first round, {:.0} in the last",
        first.0.rps,
        last.0.rps
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
