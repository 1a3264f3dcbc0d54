//! End to end over the direct stack: images whose TCP/IP is smoltcp over a tap device, in a
//! network namespace of their own (the host side of the tap is 10.0.0.1/24), asked with curl,
//! ping and UDP from inside that namespace. No traffic leaves it. Where the kernel refuses
//! namespaces (no CAP_SYS_ADMIN, no /dev/net/tun) the tests say so and pass.

mod common;

use std::time::Duration;

use common::{image, Netns, Process};
use mirage_test_support::direct;

/// `boot(ns, image, args)` runs `image` inside `ns` on tap0.
fn boot(ns: &Netns, image: &std::path::Path, args: &[&str]) -> Process {
    let image = image.to_string_lossy().into_owned();
    let mut argv = vec![image.as_str(), "--interface=tap0"];
    argv.extend_from_slice(args);
    Process::spawn(&mut ns.exec(&argv))
}

#[test]
fn conduit_server_on_the_direct_stack_answers_curl_and_ping() {
    let image = image("conduit_server", &["--net=direct"]);
    let Some(ns) = Netns::create() else { return };
    let mut server = boot(&ns, &image, &["--ipv4=10.0.0.2/24", "--port=8080"]);
    let curl = ["curl", "-sS", "--max-time", "3", "http://10.0.0.2:8080/"];
    let body = ns.until_ok(&curl, Duration::from_secs(20), &mut server);
    assert_eq!(body, b"hello mirage world!\n");
    ns.until_ok(
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"],
        Duration::from_secs(10),
        &mut server,
    );
    // Many requests in a row, over fresh connections each.
    for _ in 0..20 {
        let out = ns.exec(&curl).output().unwrap();
        assert_eq!(out.stdout, b"hello mirage world!\n");
    }
    // A thousand requests, three hundred connections at a time.
    let out = ns
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-Z",
            "--parallel-max",
            "300",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
            "http://10.0.0.2:8080/[1-1000]",
        ])
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        codes.lines().filter(|c| *c == "200").count(),
        1000,
        "{codes}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A header too large: 431, delivered while curl is still sending, then the close.
    let big = format!("X-Big: {}", "a".repeat(64 * 1024));
    let out = ns
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &big,
            "http://10.0.0.2:8080/",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        b"431",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = server.stop();
    assert!(log.contains("direct stack on"), "{log}");
}

#[test]
fn conduit_server_gets_its_address_from_dnsmasq() {
    let image = image("conduit_server", &["--net=direct", "--dhcp=true"]);
    let Some(ns) = Netns::create() else { return };
    let leases = std::env::temp_dir().join(format!("{}.leases", ns.name));
    let mut dnsmasq = Process::spawn(&mut ns.exec(&[
        "dnsmasq",
        "--no-daemon",
        "--port=0",
        "--no-resolv",
        "--no-hosts",
        "--interface=tap0",
        "--bind-interfaces",
        "--dhcp-range=10.0.0.50,10.0.0.50,255.255.255.0,1h",
        "--dhcp-option=option:router,10.0.0.1",
        &format!("--dhcp-leasefile={}", leases.display()),
        "--pid-file",
    ]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(dnsmasq.is_running(), "dnsmasq exited: {}", dnsmasq.stop());
    let mut server = boot(&ns, &image, &["--port=8080"]);
    let curl = ["curl", "-sS", "--max-time", "3", "http://10.0.0.50:8080/"];
    let body = ns.until_ok(&curl, Duration::from_secs(30), &mut server);
    assert_eq!(body, b"hello mirage world!\n");
    let log = server.stop();
    assert!(log.contains("leased 10.0.0.50/24"), "{log}");
    drop(dnsmasq);
    let _ = std::fs::remove_file(leases);
}

#[test]
fn network_echoes_udp_answers_ping_and_shows_its_device() {
    let image = image("network", &[]);
    let Some(ns) = Netns::create() else { return };
    let mut server = boot(&ns, &image, &["--ipv4=10.0.0.2/24", "--port=7"]);
    ns.until_ok(
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"],
        Duration::from_secs(20),
        &mut server,
    );
    let echo = "exec 3<>/dev/udp/10.0.0.2/7; printf 'mirage echo' >&3; timeout 3 head -c 11 <&3";
    let got = ns.until_ok(&["bash", "-c", echo], Duration::from_secs(10), &mut server);
    assert_eq!(got, b"mirage echo");
    let log = server.stop();
    assert!(log.contains("network device: MTU 1500, MAC "), "{log}");
    assert!(log.contains("UDP echo on port 7"), "{log}");
}

/// An out-of-range `--port` is refused where the boot arguments are parsed, before any device
/// connects: while a first server holds tap0, a second one given a bad port exits 64 naming
/// `--port`. Had it opened the tap first it would have found it busy and exited 1 naming the
/// tap, as the control run with a good port shows.
#[test]
fn a_bad_port_exits_64_before_the_tap_is_opened() {
    let image = image("conduit_server", &["--net=direct"]);
    let Some(ns) = Netns::create() else { return };
    let mut holder = boot(&ns, &image, &["--ipv4=10.0.0.2/24", "--port=8080"]);
    let curl = ["curl", "-sS", "--max-time", "3", "http://10.0.0.2:8080/"];
    ns.until_ok(&curl, Duration::from_secs(20), &mut holder);
    let run = |port: &str| {
        let image = image.to_string_lossy().into_owned();
        let port = format!("--port={port}");
        let argv = [
            image.as_str(),
            "--interface=tap0",
            "--ipv4=10.0.0.3/24",
            &port,
        ];
        let out = ns.exec(&argv).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for port in ["99999999", "-1", "0"] {
        let (code, err) = run(port);
        assert_eq!(code, Some(64), "--port={port}: {err}");
        assert!(
            err.contains(&format!("invalid value `{port}` for `--port`"))
                && err.contains("from 1 to 65535"),
            "--port={port}: {err}"
        );
        assert!(
            !err.contains("tap0"),
            "--port={port} reached the tap: {err}"
        );
    }
    let (code, err) = run("8081");
    assert_eq!(
        code,
        Some(1),
        "a good port connects the tap, busy here: {err}"
    );
    assert!(err.contains("tap0"), "{err}");
    assert!(holder.is_running(), "{}", holder.stop());
}

#[test]
fn a_syn_flood_leaves_conduit_server_answering_and_gives_its_memory_back() {
    let image = image("conduit_server", &["--net=direct"]);
    let Some(ns) = Netns::create() else { return };
    let mut server = boot(
        &ns,
        &image,
        &[
            "--ipv4=10.0.0.2/24",
            "--port=8080",
            "--logs=debug",
            "--tcp-handshake-timeout=3",
            // Fewer sockets than SYNs, as a fixed heap gives: the flood must evict.
            "--tcp-connections=1000",
        ],
    );
    direct::syn_flood(&ns, &mut server, direct::Flood::ACCEPTANCE);
    direct::heap_returned(&server.stop());
}

#[test]
fn two_images_started_alike_choose_different_initial_sequence_numbers() {
    let image = image("conduit_server", &["--net=direct"]);
    let Some(ns) = Netns::create() else { return };
    let mut isns = Vec::new();
    for _ in 0..2 {
        let mut server = boot(&ns, &image, &["--ipv4=10.0.0.2/24", "--port=8080"]);
        isns.push(direct::initial_sequence(&ns, &mut server));
        server.stop();
    }
    assert_ne!(
        isns[0], isns[1],
        "the same 4-tuple, the same sequence number"
    );
}

#[test]
fn network_reassembles_fragments_for_ping_and_udp() {
    let image = image("network", &[]);
    let Some(ns) = Netns::create() else { return };
    let mut server = boot(&ns, &image, &["--ipv4=10.0.0.2/24", "--port=7"]);
    direct::fragments(&ns, &mut server);
}
