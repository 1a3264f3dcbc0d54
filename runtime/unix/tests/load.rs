//! Load, round after round: conduit_server and static_website on the socket stack (loopback)
//! and on the direct stack (a tap in a network namespace) take 10 rounds of `wrk` with 1,000
//! concurrent connections (`mirage_test_support::load::soak`). After every round a plain
//! `curl` succeeds; the image's resident memory after the last round is within 10% of after
//! the first, and its throughput, in requests per second of its own processor time (the
//! support crate's module doc says why), within 20%. The rounds are 2 s each: about a minute
//! for the four images.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::{free_port, image, wait_for, Netns, Process};
use mirage_test_support::load::{check_soak, rss_kib, soak, Soak, Target};

/// `rounds(server, ns, url, what)` runs the rounds against `url` and checks what the module
/// says.
fn rounds(server: &mut Process, ns: Option<&Netns>, url: &str, what: &str) {
    let pid = server.id();
    let target = Target {
        what,
        server,
        pid,
        ns,
        url,
    };
    let rounds = soak(target, Soak::ACCEPTANCE, &mut |_| rss_kib(pid));
    check_soak(what, &rounds);
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
        &format!("{example}, socket stack (memory: resident KiB)"),
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
        &format!("{example}, direct stack (memory: resident KiB)"),
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
