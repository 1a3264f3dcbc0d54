//! HTTP load, round after round (a soak), as the unix and Solo5 load tests and the HTTP
//! benchmark apply it: [`wrk`] runs one round and reads its report; [`soak`] runs rounds of
//! the same load against a server, with a plain `curl` after each and the server's memory and
//! processor time sampled; [`check_soak`] says whether the server held up.
//!
//! Throughput is compared as requests per second of the server's own processor time, the best
//! of the first three rounds against the best of the last three: on a shared machine, requests
//! per wall-clock second swing by a factor of two or three from round to round with the other
//! work running (both are printed), and that work only ever slows a round down, while the
//! processor time a request costs the server is what grows if it degrades (a slower allocator,
//! a longer socket scan, more copying). A later round faster than the first is no failure.

use std::process::Command;
use std::time::Duration;

use crate::netns::{Alive, Netns};
use crate::process::wrk_errors;

/// What one `wrk` run measured.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Requests per second (wall clock).
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Connect, read, write and timeout errors, and non-2xx responses.
    pub errors: u64,
    /// The 99th percentile of latency, in milliseconds.
    pub p99_ms: f64,
}

/// `parse_duration_ms(text)` is wrk's `1.23ms` / `456.00us` / `1.01s` / `2.00m` in
/// milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `parse_wrk(report)` reads a `wrk --latency` report, or says what it lacks.
pub fn parse_wrk(report: &str) -> Result<Load, String> {
    let line = |prefix: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let rps = line("Requests/sec:").and_then(|v| v.parse().ok());
    let requests = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok());
    // Without a completed request, wrk prints no latency distribution.
    let p99 = line("99%").map_or(Some(0.0), parse_duration_ms);
    match (rps, requests, p99) {
        (Some(rps), Some(requests), Some(p99_ms)) => Ok(Load {
            rps,
            requests,
            errors: wrk_errors(report),
            p99_ms,
        }),
        _ => Err(format!("cannot read wrk's report:\n{report}")),
    }
}

/// `wrk(ns, url, connections, seconds)` runs `wrk` (one thread, `connections` keep-alive
/// connections, `seconds` long, requests timing out after 10 s) against `url`, inside `ns` if
/// given, with descriptors enough for 10,000 connections, and reads its report.
pub fn wrk(ns: Option<&Netns>, url: &str, connections: u32, seconds: u32) -> Result<Load, String> {
    let script = format!(
        "ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec wrk -t1 -c{connections} -d{seconds}s --timeout 10s --latency {url}"
    );
    let args = ["sh", "-c", script.as_str()];
    let out = match ns {
        Some(ns) => ns.exec(&args).output(),
        None => Command::new(args[0]).args(&args[1..]).output(),
    }
    .map_err(|e| format!("cannot run wrk: {e}"))?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}):\n{report}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&report)
}

/// `cpu_ticks(pid)` is the processor time process `pid` has used (user and system, all its
/// threads), in clock ticks (100 a second).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// `rss_kib(pid)` is the resident memory of process `pid`, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The shape of a soak: how many rounds of how many connections for how long.
#[derive(Clone, Copy, Debug)]
pub struct Soak {
    /// Rounds.
    pub rounds: usize,
    /// Concurrent connections in each.
    pub connections: u32,
    /// Seconds each round lasts.
    pub seconds: u32,
}

impl Soak {
    /// The acceptance load: 10 rounds of 1,000 concurrent connections, 2 s each.
    pub const ACCEPTANCE: Soak = Soak {
        rounds: 10,
        connections: 1000,
        seconds: 2,
    };
}

/// What one round of a soak measured.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    /// What wrk saw.
    pub load: Load,
    /// Requests per second of the server's processor time.
    pub per_cpu_second: f64,
    /// The server's memory after the round, in the unit the caller's probe gives.
    pub memory: u64,
}

/// The server a soak loads: the process whose processor time is counted, and where it is.
pub struct Target<'a> {
    /// What the rounds are printed as (`conduit_server on spt`).
    pub what: &'a str,
    /// The server, which must keep running.
    pub server: &'a mut dyn Alive,
    /// The process that does the server's work (the image, or its tender).
    pub pid: u32,
    /// The namespace wrk and curl run in, if not the host's.
    pub ns: Option<&'a Netns>,
    /// The URL to load.
    pub url: &'a str,
}

/// `soak(target, shape, memory)` runs `shape`'s rounds against `target`; after each round,
/// once its connections have closed, a plain `curl` must get `200` and `memory(round)` gives
/// the server's memory. It fails the test if the server dies or curl fails.
pub fn soak(target: Target<'_>, shape: Soak, memory: &mut dyn FnMut(usize) -> u64) -> Vec<Round> {
    let Target {
        what,
        server,
        pid,
        ns,
        url,
    } = target;
    let mut rounds = Vec::new();
    for round in 0..shape.rounds {
        let ticks = cpu_ticks(pid);
        let load = wrk(ns, url, shape.connections, shape.seconds)
            .unwrap_or_else(|e| panic!("{what}: round {round}: {e}"));
        let busy = cpu_ticks(pid).saturating_sub(ticks).max(1);
        let per_cpu_second = load.requests as f64 * 100.0 / busy as f64;
        // Let the last connections close.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            server.is_running(),
            "{what}: the image died in round {round}"
        );
        let code = match ns {
            Some(ns) => ns.http_code(url, 5),
            None => {
                let out = Command::new("curl")
                    .args(["-sS", "--max-time", "5", "-o", "/dev/null", "-w"])
                    .args(["%{http_code}", url])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        assert_eq!(code, "200", "{what}: curl after round {round}");
        let memory = memory(round);
        eprintln!(
            "{what}: round {round}: {:.0} requests/s, {per_cpu_second:.0} per CPU second, {} errors, memory {memory}",
            load.rps, load.errors
        );
        rounds.push(Round {
            load,
            per_cpu_second,
            memory,
        });
    }
    rounds
}

/// `check_soak(what, rounds)` fails the test unless every round completed requests, memory
/// after the last round is within 10% of after the first, and the best requests per
/// processor second of the last three rounds within 20% of the best of the first three (see
/// the module's doc).
pub fn check_soak(what: &str, rounds: &[Round]) {
    if let Some(i) = rounds.iter().position(|r| r.load.requests == 0) {
        panic!("{what}: round {i} completed no request");
    }
    let (first, last) = (rounds[0].memory, rounds[rounds.len() - 1].memory);
    assert!(
        last * 10 <= first * 11,
        "{what}: memory grew from {first} after the first round to {last} after the last"
    );
    let best = |rounds: &[Round]| rounds.iter().map(|r| r.per_cpu_second).fold(0.0, f64::max);
    let n = rounds.len().min(3);
    let (early, late) = (best(&rounds[..n]), best(&rounds[rounds.len() - n..]));
    assert!(
        late * 10.0 >= early * 8.0,
        "{what}: {early:.0} requests per CPU second at best in the first rounds, {late:.0} in the last"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrk_report_gives_its_rate_requests_errors_and_p99() {
        let report = "\
Running 2s test @ http://10.0.0.2:8080/
  1 threads and 1000 connections
  Latency Distribution
     50%    5.10ms
     99%    1.20s
  43210 requests in 2.00s, 5.11MB read
  Socket errors: connect 12, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  21605.00
";
        let load = parse_wrk(report).unwrap();
        assert_eq!((load.requests, load.errors), (43210, 20));
        assert_eq!((load.rps, load.p99_ms), (21605.0, 1200.0));
        assert!(parse_wrk("garbage").is_err());
    }
}
