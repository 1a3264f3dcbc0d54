//! End to end over the socket stack: conduit_server and static_website built from their
//! committed plans, run as processes on loopback, and asked with curl and raw sockets.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{curl, exchange, free_port, image, read_response, root, wait_for, Process};
use mirage_test_support::equivalence::sha256_hex;

/// `serve(example)` starts `example` from its committed plan on a free loopback port.
fn serve(example: &str) -> (Process, u16) {
    let image = image(example, &[]);
    let port = free_port();
    let mut server = Process::spawn(Command::new(image).arg(format!("--port={port}")));
    wait_for(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &mut server);
    (server, port)
}

#[test]
fn conduit_server_says_hello_over_the_socket_stack() {
    let (server, port) = serve("conduit_server");
    let body = curl(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(body, b"hello mirage world!\n");
    let log = server.stop();
    assert!(log.contains("listening on TCP port"), "{log}");
}

#[test]
fn static_website_serves_htdocs_byte_identically_with_content_types() {
    let (_server, port) = serve("static_website");
    let htdocs = root().join("examples/static_website/htdocs");
    let expected: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("/", ("index.html", "text/html; charset=utf-8")),
        ("/index.html", ("index.html", "text/html; charset=utf-8")),
        ("/style.css", ("style.css", "text/css; charset=utf-8")),
        ("/about/", ("about/index.html", "text/html; charset=utf-8")),
        ("/about", ("about/index.html", "text/html; charset=utf-8")),
        ("/logo.png", ("logo.png", "image/png")),
        ("/notes.txt", ("notes.txt", "text/plain; charset=utf-8")),
    ]);
    for (path, (file, ctype)) in expected {
        let url = format!("http://127.0.0.1:{port}{path}");
        let body = curl(&[&url]);
        let want = std::fs::read(htdocs.join(file)).unwrap();
        assert_eq!(sha256_hex(&body), sha256_hex(&want), "{path}");
        let got_type = curl(&["-o", "/dev/null", "-w", "%{content_type}", &url]);
        assert_eq!(String::from_utf8_lossy(&got_type), ctype, "{path}");
    }
    for missing in [
        "/nope",
        "/about/nope.html",
        "/%2e%2e/Cargo.toml",
        "/a/../index.html",
    ] {
        let url = format!("http://127.0.0.1:{port}{missing}");
        let code = curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]);
        assert_eq!(code, b"404", "{missing}");
    }
}

#[test]
fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let (mut server, port) = serve("conduit_server");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let bad: [&[u8]; 6] = [
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        b"\x00\x01\x02\xff\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
    ];
    for request in bad {
        let mut s = TcpStream::connect(addr).unwrap();
        let (status, text) = exchange(&mut s, request);
        assert_eq!(status, 400, "{request:?} -> {text}");
        assert!(text.contains("Connection: close"), "{text}");
    }
    let mut s = TcpStream::connect(addr).unwrap();
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let (status, _) = exchange(&mut s, huge.as_bytes());
    assert_eq!(status, 431);
    let mut s = TcpStream::connect(addr).unwrap();
    let (status, _) = exchange(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    );
    assert_eq!(status, 413);
    let mut s = TcpStream::connect(addr).unwrap();
    let request = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(exchange(&mut s, request).0, 501);
    let mut s = TcpStream::connect(addr).unwrap();
    let request =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
    assert_eq!(exchange(&mut s, request).0, 200);
    // Keep-alive and pipelining: two requests in one write, two responses in order.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for _ in 0..2 {
        let (status, text) = read_response(&mut s);
        assert_eq!(status, 200);
        assert!(text.ends_with("hello mirage world!\n"), "{text}");
    }
    assert!(server.is_running());
    let body = curl(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(body, b"hello mirage world!\n");
}

#[test]
fn a_thousand_concurrent_connections_are_all_served() {
    let (mut server, port) = serve("conduit_server");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut streams: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for s in &mut streams {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    for s in &mut streams {
        let (status, text) = read_response(s);
        assert_eq!(status, 200);
        assert!(text.ends_with("hello mirage world!\n"));
    }
    assert!(server.is_running());
}

#[test]
fn a_slow_client_sending_a_byte_a_second_is_served_and_blocks_no_one() {
    let (mut server, port) = serve("conduit_server");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        for &b in request {
            s.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    });
    // Meanwhile, everyone else is answered at once.
    let start = Instant::now();
    for _ in 0..20 {
        let body = curl(&[&format!("http://127.0.0.1:{port}/")]);
        assert_eq!(body, b"hello mirage world!\n");
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let got = slow.join().unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("Connection: close"), "{got}");
    assert!(got.ends_with("hello mirage world!\n"), "{got}");
    assert!(server.is_running());
}

/// Requests that must each get one 400 (or the status given) and a close, over real sockets:
/// the unit tests' smuggling corpus, in brief.
const SMUGGLING: &[(&[u8], u16)] = &[
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
];

#[test]
fn the_smuggling_corpus_gets_one_response_and_a_close() {
    let (mut server, port) = serve("conduit_server");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for (request, status) in SMUGGLING {
        let mut s = TcpStream::connect(addr).unwrap();
        // A well-formed request right behind: it must not be answered.
        s.write_all(request).unwrap();
        let _ = s.write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?}: {text}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
        assert!(text.contains("Connection: close"), "{text}");
    }
    assert!(server.is_running());
}

#[test]
fn a_client_rejected_with_431_gets_the_response_and_the_close_without_stalling() {
    let (mut server, port) = serve("conduit_server");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A 256 KiB header, sent whole before reading, as a naive client does: more than the
    // server reads before it decides, and more than the kernel buffers alone would take.
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    s.write_all(head.as_bytes())
        .expect("the server kept reading");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("a close, not a reset");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(server.is_running());
}
