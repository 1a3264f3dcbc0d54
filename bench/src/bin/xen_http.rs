//! `cargo run --release -p mirage-nix-bench --bin xen_http`: HTTP requests per second of
//! conduit_server as a Xen domU, beside nginx answering the same bytes, in one run.
//!
//! One boot of the domU test bed (Xen 4.17 and a Linux dom0 under QEMU TCG; see docs/xen.md)
//! creates conduit_server as a PVH domU with `xl` from its generated config; dom0 fetches its
//! page, serves the same bytes with nginx (one worker, loopback), and runs
//! `wrk -t1 -c64 -d10s --latency` against each in turn, three rounds. The table gives the
//! medians, and the CPU seconds each domain used during the runs, from `xl list`: with one
//! emulated CPU shared by dom0 (wrk, netback, the bridge, nginx) and the guest, they say which
//! side is the limit. Absolute numbers are TCG's; the ratio is the point.

use std::time::Duration;

use mirage_nix::render::xl::{self, DomainType};
use mirage_nix_bench::{builder, median};
use mirage_test_support::xen::testbed::{Scenario, Testbed};

const ROUNDS: usize = 3;

const NGINX: &str = "\
daemon off; master_process off; worker_processes 1; error_log stderr; pid /tmp/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off; default_type text/plain;
  client_body_temp_path /tmp/ngx-body; proxy_temp_path /tmp/ngx-proxy;
  fastcgi_temp_path /tmp/ngx-fcgi; uwsgi_temp_path /tmp/ngx-uwsgi; scgi_temp_path /tmp/ngx-scgi;
  server { listen 127.0.0.1:8081; root /tmp/www; }
}
";

/// The dom0 script: the same bytes for nginx, then the rounds. Each run prints
/// `run WHO RPS P99 DOM0_CPU GUEST_CPU`.
fn script() -> String {
    format!(
        r#"set -e
wait_console 'listening on TCP port 8080' 60
mkdir -p /tmp/www
curl -sS --max-time 20 http://10.0.0.2:8080/ >/tmp/www/index.html
nginx -c "$PWD/nginx.conf" &
wait_until 10 curl -sS http://127.0.0.1:8081/
curl -sS http://127.0.0.1:8081/ | cmp /tmp/www/index.html - || {{ echo "nginx answers other bytes"; exit 1; }}
cpu() {{ xl list | awk -v n="$1" '$1 == n {{ print $6 }}'; }}
run() {{
  d0=$(cpu Domain-0); g0=$(cpu "$DOMU")
  wrk -t1 -c64 -d10s --latency "$2" >wrk.out 2>&1
  d1=$(cpu Domain-0); g1=$(cpu "$DOMU")
  rps=$(awk '/^Requests\/sec/ {{ print $2 }}' wrk.out)
  p99=$(awk '$1 == "99%" {{ print $2 }}' wrk.out)
  errors=$(awk '/Non-2xx|Socket errors/' wrk.out | tr '\n' ' ')
  echo "run $1 $rps $p99 $(awk "BEGIN {{ print $d1 - $d0 }}") $(awk "BEGIN {{ print $g1 - $g0 }}") $errors"
}}
for i in $(seq 1 {ROUNDS}); do
  run conduit_server-xen http://10.0.0.2:8080/
  run nginx http://127.0.0.1:8081/
done
"#
    )
}

/// One wrk run, parsed from the script's output.
struct Sample {
    rps: u64,
    p99_us: u64,
    dom0_cpu_ms: u64,
    guest_cpu_ms: u64,
}

/// `micros(text)` is a wrk latency (`49.11ms`, `812.00us`, `1.02s`) in microseconds.
fn micros(text: &str) -> u64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let v: f64 = number.parse().unwrap_or(0.0);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => 0.0,
    };
    (v * scale) as u64
}

fn parse(line: &str) -> Option<(String, Sample)> {
    let mut w = line.strip_prefix("run ")?.split_whitespace();
    let who = w.next()?.to_string();
    let rps = w.next()?.parse::<f64>().ok()? as u64;
    let p99_us = micros(w.next()?);
    let secs = |t: Option<&str>| {
        t.and_then(|t| t.parse::<f64>().ok())
            .map(|s| (s * 1e3) as u64)
    };
    let dom0_cpu_ms = secs(w.next())?;
    let guest_cpu_ms = secs(w.next())?;
    Some((
        who,
        Sample {
            rps,
            p99_us,
            dom0_cpu_ms,
            guest_cpu_ms,
        },
    ))
}

fn main() {
    let bed = Testbed::get().unwrap_or_else(|why| panic!("the test bed cannot run: {why}"));
    let image = builder("xen").committed("examples/conduit_server", "xen");
    let config = xl::config(&image.plan, DomainType::Pvh).expect("a xen plan");
    let boot = bed.boot(&[Scenario::new("bench", &image.path)
        .config(&config)
        .file("nginx.conf", NGINX)
        .script(&script())
        .destroy_after_script()
        .deadline(Duration::from_secs(60 + 25 * 2 * ROUNDS as u64))]);
    let run = boot.scenario("bench");
    assert_eq!(run.script, Some(0), "the benchmark's script failed: {run}");
    let samples: Vec<(String, Sample)> = run.dom0.lines().filter_map(parse).collect();
    println!(
        "| server | path | requests/s | p99 latency (ms) | dom0 CPU (s of 10) | domU CPU (s of 10) |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    let mut rates = Vec::new();
    for (who, path) in [
        (
            "conduit_server-xen",
            "dom0 to a PVH domU over xenbr0 (netfront/netback)",
        ),
        ("nginx", "dom0 loopback, 1 worker"),
    ] {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|(w, _)| w == who)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(mine.len(), ROUNDS, "missing runs of {who}: {run}");
        let rps = median(mine.iter().map(|s| s.rps).collect());
        let p99 = median(mine.iter().map(|s| s.p99_us).collect());
        let dom0 = median(mine.iter().map(|s| s.dom0_cpu_ms).collect());
        let guest = median(mine.iter().map(|s| s.guest_cpu_ms).collect());
        rates.push(rps);
        println!(
            "| {who} | {path} | {rps} | {:.1} | {:.1} | {} |",
            p99 as f64 / 1e3,
            dom0 as f64 / 1e3,
            if who == "nginx" {
                "-".to_string()
            } else {
                format!("{:.1}", guest as f64 / 1e3)
            }
        );
    }
    println!(
        "\nconduit_server-xen serves {:.2} times nginx's rate ({ROUNDS} rounds of 10 s, medians)",
        rates[0] as f64 / rates[1].max(1) as f64
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_latencies_and_run_lines_parse() {
        assert_eq!(micros("49.11ms"), 49_110);
        assert_eq!(micros("812.00us"), 812);
        assert_eq!(micros("1.02s"), 1_020_000);
        let (who, s) = parse("run nginx 389.45 106.56ms 9.5 0 ").unwrap();
        assert_eq!(
            (who.as_str(), s.rps, s.p99_us, s.dom0_cpu_ms, s.guest_cpu_ms),
            ("nginx", 389, 106_560, 9_500, 0)
        );
        assert!(parse("curl: failed").is_none());
    }
}
