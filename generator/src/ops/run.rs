//! `run`: boot a built image where it runs, stream its console, and end with the unikernel's
//! own exit status.
//!
//! [`prepare`] turns a plan, its built image and the options into a [`Launch`]: the command
//! that boots the image and whatever was made for this run. By image format:
//!
//! - **unix**: the image itself; a direct stack's tap (`--interface`) is made when missing;
//! - **Solo5** (`hvt`, `spt`): the tender from `SOLO5_HVT`/`SOLO5_SPT` or PATH, with `--mem`
//!   and every device of the image's manifest attached: a block device from `--disk NAME=FILE`,
//!   the disk the build made beside the image, or an empty disk of `--disk NAME=SIZE`; a
//!   network device on `--tap NAME=IFACE` or on a tap made for the run;
//! - **Xen**: through its PVH entry directly under QEMU (the default), as dom0 on Xen under
//!   QEMU (`--xen=dom0`, `pvh-dom0`), or as a domU through `xl create` inside a Xen dom0
//!   (`--xen=xl`, the default there).
//!
//! [`Launch::boot`] runs the command and reads the status the way each host reports it: unix
//! and the Solo5 tenders give the unikernel's own; QEMU's `isa-debug-exit` gives
//! `2 * code + 1`; Xen gives only a shutdown reason, so a domain that powers off (or reboots,
//! as dom0) is 0 and one that crashes is a failure. What the launch made (empty disks, taps)
//! is removed when it is dropped.
//!
//! What cannot be found is an error naming it and how to get it ([`Host`] holds what was
//! found, so that the rules are tested without the tools).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::config::ManifestKind;
use crate::diag::{Diagnostic, Report};
use crate::plan::Plan;

/// Xen's log line when dom0 shuts down cleanly (the runtime's reason for exit status 0).
pub const XEN_DOM0_REBOOTED: &str = "(XEN) Hardware Dom0 shutdown: rebooting machine";
/// Xen's log line when dom0 crashes (a panic, a fault, or a non-zero exit status).
pub const XEN_DOM0_CRASHED: &str = "(XEN) Hardware Dom0 crashed";

/// Memory given to a bare-metal guest when `--mem` is not, in MiB.
pub const DEFAULT_MEM_MIB: u64 = 64;

/// How a Xen image boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenMode {
    /// Through its PVH entry directly under QEMU, its console on the serial port.
    Pvh,
    /// As the initial domain on Xen under QEMU.
    Dom0,
    /// As a PVH initial domain on Xen under QEMU (`dom0=pvh`).
    PvhDom0,
    /// As a PVH domU through `xl create`, from inside a Xen dom0.
    Xl,
    /// As a PV domU through `xl create`, from inside a Xen dom0.
    XlPv,
}

impl XenMode {
    /// Every mode with its name on the command line.
    pub const ALL: [(XenMode, &'static str); 5] = [
        (XenMode::Pvh, "pvh"),
        (XenMode::Dom0, "dom0"),
        (XenMode::PvhDom0, "pvh-dom0"),
        (XenMode::Xl, "xl"),
        (XenMode::XlPv, "xl-pv"),
    ];

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<XenMode> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
    }
}

/// Where a block device's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSource {
    /// An existing file.
    File(PathBuf),
    /// A new empty disk of this many bytes, for this run only.
    Empty(u64),
}

/// `--disk NAME=FILE` or `--disk NAME=SIZE`: a block device of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOption {
    /// The device's name in the image's manifest.
    pub name: String,
    /// Its data.
    pub source: DiskSource,
}

impl std::str::FromStr for DiskOption {
    type Err = String;

    /// `NAME=FILE`, or `NAME=SIZE` where SIZE is a number with a unit (`K`, `M`, `G`, powers of
    /// 1024, optionally written `KiB`...): a value that reads as a size is one; write `./64M`
    /// for a file of that name.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "`{s}` is not NAME=FILE or NAME=SIZE (e.g. storage=disk.img or storage=64M)"
                )
            })?;
        let source = match parse_size(value) {
            Some(Ok(bytes)) => DiskSource::Empty(bytes),
            Some(Err(e)) => return Err(format!("`{value}`: {e}")),
            None => DiskSource::File(PathBuf::from(value)),
        };
        Ok(DiskOption {
            name: name.to_string(),
            source,
        })
    }
}

/// `parse_size(s)` is the size `s` states in bytes, an error if it is one but unusable, or
/// `None` if `s` is not a size.
fn parse_size(s: &str) -> Option<Result<u64, String>> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let shift = match &s[digits..] {
        "K" | "KiB" | "k" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    let n: u64 = match s[..digits].parse() {
        Ok(n) => n,
        Err(_) => return Some(Err("the size is too large".into())),
    };
    Some(match n.checked_mul(1 << shift) {
        Some(0) => Err("a disk needs at least one 512-byte sector".into()),
        Some(bytes) if bytes > 1 << 40 => Err("an empty disk for a run is at most 1 TiB".into()),
        Some(bytes) => Ok(bytes),
        None => Err("the size is too large".into()),
    })
}

/// `--tap [NAME=]IFACE`: the host interface a network device of the image is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOption {
    /// The device's name in the image's manifest; `None` for the image's only one.
    pub name: Option<String>,
    /// The host's tap interface.
    pub iface: String,
}

impl std::str::FromStr for TapOption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, iface) = match s.split_once('=') {
            Some((n, i)) => (Some(n.to_string()), i),
            None => (None, s),
        };
        if name.as_deref() == Some("") || !valid_iface(iface) {
            return Err(format!(
                "`{s}` is not [NAME=]IFACE, IFACE a host interface name (1 to 15 letters, digits, `-`, `_`, `.`)"
            ));
        }
        Ok(TapOption {
            name,
            iface: iface.to_string(),
        })
    }
}

/// Whether `s` can name a Linux network interface.
fn valid_iface(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// How to boot an image.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Guest memory in MiB (Solo5 and Xen; default [`DEFAULT_MEM_MIB`]).
    pub mem_mib: Option<u64>,
    /// Block devices given.
    pub disks: Vec<DiskOption>,
    /// Network devices given.
    pub taps: Vec<TapOption>,
    /// How a Xen image boots (default: `xl` inside a Xen dom0, else `pvh`).
    pub xen: Option<XenMode>,
    /// The image's boot arguments (`--KEY=VALUE` of runtime keys, then the words after `--`).
    pub args: Vec<String>,
    /// Show Xen's own log lines too (dom0 modes).
    pub verbose: bool,
}

/// What `run` found on this machine.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// The Solo5 spt tender: `SOLO5_SPT`, or `solo5-spt` on PATH (or why there is none).
    pub solo5_spt: Option<Result<PathBuf, String>>,
    /// The Solo5 hvt tender: `SOLO5_HVT`, or `solo5-hvt` on PATH (or why there is none).
    pub solo5_hvt: Option<Result<PathBuf, String>>,
    /// Why `/dev/kvm` cannot be used, if it cannot.
    pub kvm_problem: Option<String>,
    /// `qemu-system-x86_64` on PATH.
    pub qemu: Option<PathBuf>,
    /// The Xen hypervisor QEMU boots: `MIRAGE_NIX_XEN`, or Debian's `/boot/xen-*.gz`.
    pub xen: Option<PathBuf>,
    /// `xl` on PATH.
    pub xl: Option<PathBuf>,
    /// Whether this is a Xen dom0 (`/proc/xen/capabilities` says `control_d`).
    pub dom0: bool,
    /// `ip` (iproute2) on PATH.
    pub ip: Option<PathBuf>,
    /// Whether this process runs as root (needed to make taps).
    pub root: bool,
    /// QEMU's accelerator: `QEMU_ACCEL`, else `tcg` (Xen hangs under KVM on some machines).
    pub accel: String,
}

/// `on_path(name)` is the first executable `name` in PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `tender(abi)` is the Solo5 tender of `abi` (`spt`, `hvt`): `SOLO5_<ABI>` when set, else
/// `solo5-<abi>` on PATH; `None` if neither names one.
fn find_tender(abi: &str) -> Option<Result<PathBuf, String>> {
    let var = format!("SOLO5_{}", abi.to_uppercase());
    match std::env::var_os(&var) {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            Some(if is_executable(&p) {
                Ok(p)
            } else {
                Err(format!("{var}={} is not an executable file", p.display()))
            })
        }
        _ => on_path(&format!("solo5-{abi}")).map(Ok),
    }
}

/// The Xen hypervisor image: `MIRAGE_NIX_XEN`, else the newest `/boot/xen-*.gz`.
fn find_xen() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MIRAGE_NIX_XEN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("xen-") && n.ends_with(".gz"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Whether the effective user is root, from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

impl Host {
    /// What this machine has, looked up now.
    pub fn probe() -> Host {
        let kvm_problem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .err()
            .map(|e| format!("/dev/kvm cannot be opened: {e}"));
        Host {
            solo5_spt: find_tender("spt"),
            solo5_hvt: find_tender("hvt"),
            kvm_problem,
            qemu: on_path("qemu-system-x86_64"),
            xen: find_xen(),
            xl: on_path("xl"),
            dom0: std::fs::read_to_string("/proc/xen/capabilities")
                .is_ok_and(|c| c.contains("control_d")),
            ip: on_path("ip"),
            root: is_root(),
            accel: std::env::var("QEMU_ACCEL").unwrap_or_else(|_| "tcg".into()),
        }
    }
}

fn fail(code: &'static str, message: String, help: impl Into<String>) -> Report {
    Report {
        sources: Default::default(),
        diagnostics: vec![Diagnostic::error(code, None, message).with_help(help)],
    }
}

/// How the status of a launch's command is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// The process's own status (the image on unix, a Solo5 tender).
    Direct,
    /// QEMU with `isa-debug-exit`: `2 * code + 1`.
    DebugExit,
    /// QEMU running Xen with the image as dom0: Xen's log says how dom0 ended.
    XenDom0,
    /// `xl create -F`: its log says the domain's shutdown reason.
    Xl,
}

/// Something made for one run, removed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Made {
    /// A file (an empty disk).
    File(PathBuf),
    /// A tap or bridge, deleted with `ip`.
    Link { ip: PathBuf, iface: String },
    /// A Xen domain, destroyed with `xl` if it is still there.
    Domain { xl: PathBuf, name: String },
}

/// A prepared boot: the command, and what was made for it.
#[derive(Debug)]
pub struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    status: Status,
    made: Vec<Made>,
    /// Lines to tell before booting: what was attached or made, and the command.
    pub notes: Vec<String>,
    verbose: bool,
    /// Whether to make what the run needs (false in [`preflight`]).
    make: bool,
    /// The name a tap made for unix's direct stack must have (its `--interface`).
    tap_name: Option<String>,
}

impl Drop for Launch {
    fn drop(&mut self) {
        for m in self.made.drain(..).rev() {
            match m {
                Made::File(p) => {
                    let _ = std::fs::remove_file(p);
                }
                Made::Link { ip, iface } => {
                    let _ = Command::new(ip)
                        .args(["link", "del", &iface])
                        .stderr(Stdio::null())
                        .status();
                }
                Made::Domain { xl, name } => {
                    let _ = Command::new(xl)
                        .args(["destroy", &name])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// `quote_word(w)` is `w` as one word of a boot command line, as the images split it
/// (`mirage_bare_metal::cmdline`): as is when plain, else in double quotes with `\` and `"`
/// escaped.
pub fn quote_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=./:,+@%-".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `command_line(args)` is the boot command line of the words `args`.
pub fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| quote_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Launch {
    fn new(program: PathBuf, status: Status, verbose: bool) -> Launch {
        Launch {
            program,
            args: Vec::new(),
            status,
            made: Vec::new(),
            notes: Vec::new(),
            verbose,
            make: true,
            tap_name: None,
        }
    }

    fn arg(&mut self, a: impl Into<OsString>) -> &mut Launch {
        self.args.push(a.into());
        self
    }

    /// The command as a shell would read it.
    pub fn command_text(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|w| shell_word(&w.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The program and its arguments.
    pub fn argv(&self) -> (&Path, &[OsString]) {
        (&self.program, &self.args)
    }

    /// Boots: runs the command with the terminal's input and the console on our output,
    /// and returns the unikernel's exit status. Interrupts reach the guest's process (the
    /// terminal sends them to the whole group); this process waits for it to end, then
    /// removes what it made.
    pub fn boot(self) -> Result<u8, Report> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::inherit());
        // Xen's log comes with dom0's console (QEMU's serial output); xl's on its stderr.
        match self.status {
            Status::XenDom0 => cmd.stdout(Stdio::piped()),
            Status::Xl => cmd.stderr(Stdio::piped()),
            _ => &mut cmd,
        };
        let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ids: Vec<signal_hook::SigId> =
            [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
                .into_iter()
                .filter_map(|s| signal_hook::flag::register(s, interrupted.clone()).ok())
                .collect();
        let result = self.wait(&mut cmd);
        for id in ids {
            signal_hook::low_level::unregister(id);
        }
        result
    }

    fn wait(&self, cmd: &mut Command) -> Result<u8, Report> {
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                "run",
                format!("cannot run {}: {e}", self.program.display()),
                "check that it is an executable for this machine",
            )
        })?;
        let mut ending = None;
        let log: Option<Box<dyn std::io::Read>> = match self.status {
            Status::XenDom0 => child.stdout.take().map(|o| Box::new(o) as _),
            Status::Xl => child.stderr.take().map(|o| Box::new(o) as _),
            _ => None,
        };
        if let Some(log) = log {
            for line in std::io::BufReader::new(log).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\r');
                let shown = if self.status == Status::Xl {
                    if let Some(reason) = xl_shutdown_reason(text) {
                        ending = Some(reason);
                    }
                    self.verbose || !is_xl_progress(text)
                } else {
                    if text.starts_with(XEN_DOM0_REBOOTED) {
                        ending = Some(0);
                    } else if text.starts_with(XEN_DOM0_CRASHED) {
                        ending = Some(3);
                    }
                    self.verbose || !text.starts_with("(XEN)")
                };
                if shown && self.status == Status::Xl {
                    eprintln!("{text}");
                } else if shown {
                    let mut console = std::io::stdout();
                    let _ = writeln!(console, "{text}");
                    let _ = console.flush();
                }
            }
        }
        let status = child.wait().map_err(|e| {
            fail(
                "run",
                format!("cannot wait for {}: {e}", self.program.display()),
                "report this",
            )
        })?;
        self.decode(status, ending)
    }

    /// The unikernel's exit status from how its command ended.
    fn decode(&self, status: ExitStatus, xen_ending: Option<u8>) -> Result<u8, Report> {
        use std::os::unix::process::ExitStatusExt;
        let program = self.program.display();
        if let Some(signal) = status.signal() {
            eprintln!("{program} was killed by signal {signal}");
            return Ok(128u8.saturating_add(u8::try_from(signal).unwrap_or(127)));
        }
        let code = status.code().unwrap_or(1);
        match self.status {
            Status::Direct => Ok(u8::try_from(code).unwrap_or(1)),
            Status::DebugExit if code % 2 == 1 => Ok(u8::try_from(code >> 1).unwrap_or(1)),
            Status::DebugExit if code == 0 => {
                eprintln!(
                    "the guest reset the machine without an exit status (a triple fault?): a crash"
                );
                Ok(1)
            }
            Status::DebugExit => Err(fail(
                "qemu",
                format!("QEMU failed (exit status {code}) before the image ended"),
                "read QEMU's message above",
            )),
            Status::XenDom0 | Status::Xl => match xen_ending {
                // SHUTDOWN_poweroff, SHUTDOWN_reboot: the runtime's ways of ending with 0.
                Some(0 | 1) => Ok(0),
                Some(3) => {
                    eprintln!(
                        "the domain crashed (Xen tells a crash, not the exit status): a failure"
                    );
                    Ok(1)
                }
                Some(reason) => {
                    eprintln!("the domain shut down with reason {reason}: a failure");
                    Ok(1)
                }
                None if self.status == Status::Xl => Err(fail(
                    "xl",
                    format!(
                        "`xl create` ended (exit status {code}) without the domain shutting down"
                    ),
                    "read xl's message above; add --verbose for all of it",
                )),
                None => Err(fail(
                    "qemu",
                    format!("QEMU ended (exit status {code}) before Xen shut dom0 down"),
                    "run again with --verbose to see Xen's log",
                )),
            },
        }
    }
}

/// `xl_shutdown_reason(line)` is the shutdown reason code of xl's log line
/// `Domain N has shut down, reason code R 0x...`.
fn xl_shutdown_reason(line: &str) -> Option<u8> {
    let rest = line.split_once("has shut down, reason code ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// Whether `line` is one of xl's progress lines about the domain's life, shown only with
/// `--verbose`.
fn is_xl_progress(line: &str) -> bool {
    [
        "Parsing config from",
        "Waiting for domain",
        "Domain ",
        "Action for shutdown",
        "Done. Exiting",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// `shell_word(w)` is `w` quoted for a POSIX shell when it needs to be.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=./:,+@%-".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The value of runtime key `name` for this run: the last `--name=VALUE` of `args`, else
/// the plan's.
fn runtime_value(plan: &Plan, args: &[String], name: &str) -> Option<String> {
    let flag = format!("--{name}=");
    args.iter()
        .rev()
        .find_map(|a| a.strip_prefix(&flag).map(str::to_string))
        .or_else(|| {
            plan.keys
                .iter()
                .find(|k| k.name == name)
                .and_then(|k| k.value.as_str().map(str::to_string))
        })
}

/// `tap_address(plan, args)` is the address the host side of a tap made for the image gets:
/// its gateway (`--ipv4-gateway`) with the prefix length of its `--ipv4`, when it has both.
fn tap_address(plan: &Plan, args: &[String]) -> Option<String> {
    let gateway = runtime_value(plan, args, "ipv4-gateway")?;
    let prefix = runtime_value(plan, args, "ipv4")?;
    let (_, len) = prefix.split_once('/')?;
    (gateway.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32))
        .then(|| format!("{gateway}/{len}"))
}

/// A host interface a run makes for an image's network device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// A tap (Solo5's tenders, unix's direct stack): `ip tuntap add mode tap`.
    Tap,
    /// The bridge `xenbr0` that xl configs attach `vif`s to.
    XenBridge,
}

/// The bridge xl configs attach network devices to.
const XEN_BRIDGE: &str = "xenbr0";

/// Makes a host interface for the run (root only), with the image's gateway address when it
/// has one: a tap (named `name`, else a new `mirage<N>`) or the bridge xenbr0.
fn make_link(
    launch: &mut Launch,
    host: &Host,
    plan: &Plan,
    args: &[String],
    device: &str,
    link: Link,
) -> Result<String, Report> {
    let (what, how) = match link {
        Link::Tap => (
            "a tap interface",
            "give a tap you made with --tap NAME=IFACE (e.g. as root: `ip tuntap add mode tap user $USER dev tap0; ip link set tap0 up`)",
        ),
        Link::XenBridge => (
            "the bridge xenbr0",
            "make it as root: `ip link add xenbr0 type bridge; ip link set xenbr0 up` (and add the host's interface to it for the network beyond)",
        ),
    };
    if !host.root {
        return Err(fail(
            "not-root",
            format!("the network device `{device}` needs {what}, and making one needs root"),
            format!("run mirage-nix run as root, or {how}"),
        ));
    }
    let ip = host.ip.clone().ok_or_else(|| {
        fail(
            "no-ip",
            format!("the network device `{device}` needs {what}, and `ip` (iproute2) is not on PATH to make it"),
            format!("install it with `apt-get install iproute2`, or {how}"),
        )
    })?;
    let candidates: Vec<String> = match (link, launch.tap_name.take()) {
        (Link::XenBridge, _) => vec![XEN_BRIDGE.to_string()],
        (Link::Tap, Some(n)) => vec![n],
        (Link::Tap, None) => (0..64).map(|i| format!("mirage{i}")).collect(),
    };
    if !launch.make {
        return Ok(candidates[0].clone());
    }
    let mut last_error = String::new();
    for iface in candidates {
        if Path::new("/sys/class/net").join(&iface).exists() {
            last_error = format!("{iface} exists");
            continue;
        }
        let add: &[&str] = match link {
            Link::Tap => &["tuntap", "add", "mode", "tap", "dev", &iface],
            Link::XenBridge => &["link", "add", &iface, "type", "bridge"],
        };
        match Command::new(&ip).args(add).output() {
            Ok(o) if o.status.success() => {
                launch.made.push(Made::Link {
                    ip: ip.clone(),
                    iface: iface.clone(),
                });
                let address = tap_address(plan, args);
                if let Some(a) = &address {
                    run_ip(&ip, &["addr", "add", a, "dev", &iface])?;
                }
                run_ip(&ip, &["link", "set", &iface, "up"])?;
                launch.notes.push(format!(
                    "made {iface}{} for the network device `{device}`; it goes when the run ends",
                    address.map(|a| format!(" ({a})")).unwrap_or_default()
                ));
                return Ok(iface);
            }
            Ok(o) => last_error = String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(fail(
        "tap",
        format!("cannot make {what} for the network device `{device}`: {last_error}"),
        how,
    ))
}

fn run_ip(ip: &Path, args: &[&str]) -> Result<(), Report> {
    let out = Command::new(ip).args(args).output().map_err(|e| {
        fail(
            "tap",
            format!("cannot run {}: {e}", ip.display()),
            "install iproute2",
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(
            "tap",
            format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "check the interface",
        ))
    }
}

/// `split_keys(uk, given)` sorts the keys given to `run`: configure keys choose the plan (and
/// so the image), runtime keys become the image's boot arguments (`--KEY=VALUE`), so that
/// `run --hello=Hi` boots the committed plan's image with that argument.
pub fn split_keys(
    uk: &crate::Unikernel,
    given: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let (runtime, configure): (Vec<_>, Vec<_>) = given.iter().cloned().partition(|(k, _)| {
        uk.config
            .keys
            .get(k)
            .is_some_and(|key| key.stage == crate::key::Stage::Runtime)
    });
    let args = runtime
        .into_iter()
        .map(|(k, v)| format!("--{k}={v}"))
        .collect();
    (configure, args)
}

/// `preflight(plan, opts, host)` checks, before anything is built, that the image of `plan`
/// can be booted here with `opts`: the tools are found, the options name the image's
/// devices, the files given exist, and taps can be made if they must be.
pub fn preflight(plan: &Plan, opts: &RunOptions, host: &Host) -> Result<(), Report> {
    let image = PathBuf::from(&plan.image.file);
    launch(plan, &image, opts, host, false).map(|_| ())
}

/// `prepare(plan, image, opts, host)` is the launch that boots `image`, built from `plan`;
/// the empty disks and taps it needs are made now, and go when it is dropped.
pub fn prepare(
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
) -> Result<Launch, Report> {
    if !image.is_file() {
        return Err(fail(
            "no-image",
            format!("there is no image at {}", image.display()),
            "build it first with `mirage-nix build`",
        ));
    }
    launch(plan, image, opts, host, true)
}

/// The launch of `image`; with `make` false, nothing is made and the image need not exist.
fn launch(
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
    make: bool,
) -> Result<Launch, Report> {
    let mut l = match plan.image.format.as_str() {
        "elf-unix" => Launch::new(image.to_path_buf(), Status::Direct, opts.verbose),
        "solo5-spt" => Launch::new(
            solo5_tender(opts, host, "spt")?,
            Status::Direct,
            opts.verbose,
        ),
        "solo5-hvt" => Launch::new(
            solo5_tender(opts, host, "hvt")?,
            Status::Direct,
            opts.verbose,
        ),
        "xen-pv" => return prepare_xen(plan, image, opts, host, make),
        other => {
            return Err(fail(
                "run",
                format!("mirage-nix does not know how to boot images of format {other}"),
                "boot it by hand",
            ))
        }
    };
    l.make = make;
    if plan.image.std {
        unix_args(&mut l, plan, opts, host)?;
    } else {
        solo5_args(&mut l, plan, image, opts, host)?;
    }
    Ok(l)
}

fn no_options_for(target: &str, what: &str, given: bool) -> Result<(), Report> {
    if given {
        Err(fail(
            "run",
            format!("{what} does not apply to {target} images"),
            "leave it out",
        ))
    } else {
        Ok(())
    }
}

fn unix_args(
    launch: &mut Launch,
    plan: &Plan,
    opts: &RunOptions,
    host: &Host,
) -> Result<(), Report> {
    no_options_for(
        "unix",
        "--disk (a unix image opens the files its config names itself)",
        !opts.disks.is_empty(),
    )?;
    no_options_for("unix", "--mem", opts.mem_mib.is_some())?;
    no_options_for("unix", "--xen", opts.xen.is_some())?;
    let mut args = opts.args.clone();
    let taps_netif = plan.nodes.iter().any(|n| n.constructor == "netif");
    if taps_netif {
        if let [tap] = opts.taps.as_slice() {
            args.push(format!("--interface={}", tap.iface));
        } else if opts.taps.len() > 1 {
            return Err(fail(
                "run",
                "a unix image has one tap interface (--interface)".into(),
                "give one --tap IFACE",
            ));
        }
        let iface = runtime_value(plan, &args, "interface").unwrap_or_else(|| "tap0".into());
        if !Path::new("/sys/class/net").join(&iface).exists() {
            launch.tap_name = Some(iface);
            make_link(launch, host, plan, &args, "netif", Link::Tap)?;
        }
    } else {
        no_options_for(
            "this unikernel's unix",
            "--tap (it has no network device)",
            !opts.taps.is_empty(),
        )?;
    }
    launch.args = args.into_iter().map(OsString::from).collect();
    Ok(())
}

/// The Solo5 tender for `abi`, or an error naming what is missing and how to get it.
fn solo5_tender(opts: &RunOptions, host: &Host, abi: &str) -> Result<PathBuf, Report> {
    no_options_for(abi, "--xen", opts.xen.is_some())?;
    let (found, var) = match abi {
        "hvt" => (&host.solo5_hvt, "SOLO5_HVT"),
        _ => (&host.solo5_spt, "SOLO5_SPT"),
    };
    let build_it = format!(
        "Solo5 is not packaged for Debian: build its tenders from https://github.com/Solo5/solo5 \
         (`make`; the tender is tenders/{abi}/solo5-{abi}) and set {var}=/path/to/solo5-{abi} or \
         put solo5-{abi} on PATH"
    );
    let tender = match found {
        Some(Ok(p)) => p.clone(),
        Some(Err(why)) => return Err(fail("no-tender", why.clone(), build_it)),
        None => {
            return Err(fail(
                "no-tender",
                format!("no Solo5 {abi} tender: {var} is not set and solo5-{abi} is not on PATH"),
                build_it,
            ))
        }
    };
    if abi == "hvt" {
        if let Some(why) = &host.kvm_problem {
            return Err(fail(
                "no-kvm",
                format!("solo5-hvt needs KVM: {why}"),
                "run on a machine with KVM (a guest needs nested virtualisation), or build for spt: -t spt",
            ));
        }
    }
    Ok(tender)
}

fn solo5_args(
    launch: &mut Launch,
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
) -> Result<(), Report> {
    let mem = opts.mem_mib.unwrap_or(DEFAULT_MEM_MIB);
    launch.arg(format!("--mem={mem}"));
    let devices = Devices::of(plan);
    devices.check(opts, true)?;
    let beside = image.parent().unwrap_or(Path::new("."));
    for &(name, kind, disk) in &devices.0 {
        match kind {
            ManifestKind::Block => {
                let file = block_file(launch, name, disk, opts, beside)?;
                let mut spec = OsString::from(format!("--block:{name}="));
                spec.push(file.as_os_str());
                launch.arg(spec);
            }
            ManifestKind::Net => {
                let given = opts
                    .taps
                    .iter()
                    .rev()
                    .find(|t| t.name.as_deref().is_none_or(|n| n == name));
                let iface = match given {
                    Some(t) => t.iface.clone(),
                    None => make_link(launch, host, plan, &opts.args, name, Link::Tap)?,
                };
                launch.arg(format!("--net:{name}={iface}"));
            }
        }
    }
    launch.arg("--");
    launch.arg(image.as_os_str());
    // The tender joins its arguments with spaces: quote each, as the image splits them.
    launch
        .args
        .extend(opts.args.iter().map(|a| OsString::from(quote_word(a))));
    Ok(())
}

/// The devices of an image's graph that a tender or toolstack attaches (Solo5's manifest,
/// Xen's `vif`s and `disk`s), in order: name, kind, and the disk the build makes for it.
struct Devices<'a>(Vec<(&'a str, ManifestKind, Option<&'a crate::plan::Disk>)>);

impl<'a> Devices<'a> {
    fn of(plan: &'a Plan) -> Devices<'a> {
        Devices(
            plan.nodes
                .iter()
                .filter_map(|n| Some((n.manifest.as_ref()?, n.disk.as_ref())))
                .map(|(m, d)| (m.name.as_str(), m.kind, d))
                .collect(),
        )
    }

    fn count(&self, kind: ManifestKind) -> usize {
        self.0.iter().filter(|(_, k, _)| *k == kind).count()
    }

    /// Checks that `--disk` (and, with `taps`, `--tap`) name devices the image has.
    fn check(&self, opts: &RunOptions, taps: bool) -> Result<(), Report> {
        for d in &opts.disks {
            if !self
                .0
                .iter()
                .any(|(n, k, _)| *n == d.name && *k == ManifestKind::Block)
            {
                return Err(self.unknown("block", &d.name, ManifestKind::Block));
            }
        }
        if !taps {
            return no_options_for(
                "xen",
                "--tap (xl attaches network devices to the bridge xenbr0)",
                !opts.taps.is_empty(),
            );
        }
        let nets = self.count(ManifestKind::Net);
        for t in &opts.taps {
            match &t.name {
                Some(n)
                    if !self
                        .0
                        .iter()
                        .any(|(d, k, _)| d == n && *k == ManifestKind::Net) =>
                {
                    return Err(self.unknown("network", n, ManifestKind::Net))
                }
                None if nets != 1 => {
                    return Err(fail(
                        "run",
                        format!(
                            "--tap {} names no device, and the image has {nets} network devices",
                            t.iface
                        ),
                        "name the device: --tap NAME=IFACE",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn unknown(&self, what: &str, name: &str, kind: ManifestKind) -> Report {
        let known: Vec<&str> = self
            .0
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(n, _, _)| *n)
            .collect();
        fail(
            "run",
            format!("the image has no {what} device `{name}`"),
            if known.is_empty() {
                format!("it has no {what} device")
            } else {
                format!("its {what} devices: {}", known.join(", "))
            },
        )
    }
}

/// The file block device `name` is attached to: `--disk NAME=FILE`, an empty disk of
/// `--disk NAME=SIZE` made for the run, else the disk the build made in `beside`.
fn block_file(
    launch: &mut Launch,
    name: &str,
    disk: Option<&crate::plan::Disk>,
    opts: &RunOptions,
    beside: &Path,
) -> Result<PathBuf, Report> {
    let given = opts.disks.iter().rev().find(|d| d.name == name);
    match (given.map(|d| &d.source), disk) {
        (Some(DiskSource::File(f)), _) => {
            if !f.is_file() {
                return Err(fail(
                    "no-disk",
                    format!("the disk {} for block device `{name}` does not exist", f.display()),
                    format!("make it (e.g. `truncate -s 1M {}`), or give --disk {name}=SIZE for an empty disk for this run", f.display()),
                ));
            }
            Ok(std::path::absolute(f).unwrap_or_else(|_| f.clone()))
        }
        (Some(DiskSource::Empty(bytes)), _) => {
            let f = std::env::temp_dir().join(format!(
                "mirage-nix-{}-{}.img",
                std::process::id(),
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ));
            if launch.make {
                std::fs::File::create(&f)
                    .and_then(|file| file.set_len(*bytes))
                    .map_err(|e| {
                        fail(
                            "no-disk",
                            format!("cannot make an empty disk {}: {e}", f.display()),
                            "check the temporary directory ($TMPDIR)",
                        )
                    })?;
                launch.made.push(Made::File(f.clone()));
            }
            launch.notes.push(format!(
                "block device `{name}`: an empty disk of {bytes} bytes for this run"
            ));
            Ok(f)
        }
        (None, Some(d)) => {
            let f = beside.join(&d.file);
            if launch.make && !f.is_file() {
                return Err(fail(
                    "no-disk",
                    format!(
                        "the disk {} that the build makes for block device `{name}` is not beside the image",
                        f.display()
                    ),
                    format!("build again, or give one with --disk {name}=FILE"),
                ));
            }
            Ok(std::path::absolute(&f).unwrap_or(f))
        }
        (None, None) => Err(fail(
            "no-disk",
            format!("the image needs block device `{name}` and none was given"),
            format!("give a file with --disk {name}=FILE, or an empty disk for this run with --disk {name}=SIZE (e.g. {name}=1M)"),
        )),
    }
}

/// The Xen hypervisor decompressed once (QEMU boots it as a Multiboot kernel), in
/// `$XDG_CACHE_HOME/mirage-nix` (else `~/.cache/mirage-nix`).
fn decompressed_xen(gz: &Path) -> Result<PathBuf, Report> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("mirage-nix");
    let stem = gz
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "xen".into());
    let out = cache.join(stem);
    let fresh = |o: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(o), modified(gz)), (Some(a), Some(b)) if a >= b)
    };
    if fresh(&out) {
        return Ok(out);
    }
    let io = |e: std::io::Error| {
        fail(
            "xen",
            format!(
                "cannot decompress {} into {}: {e}",
                gz.display(),
                cache.display()
            ),
            "check that zcat (gzip) is installed and the cache folder is writable",
        )
    };
    std::fs::create_dir_all(&cache).map_err(io)?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let status = Command::new("zcat")
        .arg(gz)
        .stdout(file)
        .status()
        .map_err(io)?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(
            "xen",
            format!("zcat {} failed ({status})", gz.display()),
            "check the file",
        ));
    }
    std::fs::rename(&tmp, &out).map_err(io)?;
    Ok(out)
}

/// `xl_string(s)` is `s` as a single-quoted xl config string.
fn xl_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The launch of `xl create -F -c` on the image's generated xl config, made for this run:
/// the image's absolute path, `--mem`, the boot arguments, the disks, and `destroy` on every
/// shutdown (xl's log line says the reason, and the run ends when the domain does).
fn prepare_xl(
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
    mode: XenMode,
    make: bool,
) -> Result<Launch, Report> {
    let xl = host.xl.clone().ok_or_else(|| {
        fail(
            "no-xl",
            "booting through xl needs Xen's toolstack, and `xl` is not on PATH".into(),
            "run it in a Xen dom0 with the toolstack (`apt-get install xen-utils-4.17`), or boot it under QEMU: --xen=pvh or --xen=dom0",
        )
    })?;
    if !host.dom0 {
        return Err(fail(
            "not-dom0",
            "booting through xl needs a Xen dom0, and this is not one (/proc/xen/capabilities does not say control_d)".into(),
            "run it in a Xen dom0, or boot it under QEMU: --xen=pvh (directly) or --xen=dom0 (on Xen)",
        ));
    }
    let ty = if mode == XenMode::XlPv {
        crate::render::xl::DomainType::Pv
    } else {
        crate::render::xl::DomainType::Pvh
    };
    let generated = crate::render::xl::config(plan, ty).ok_or_else(|| {
        fail(
            "run",
            format!("a {} plan has no xl config", plan.target),
            "build for xen: -t xen",
        )
    })?;
    let devices = Devices::of(plan);
    devices.check(opts, false)?;
    let mut launch = Launch::new(xl.clone(), Status::Xl, opts.verbose);
    launch.make = make;
    let beside = image.parent().unwrap_or(Path::new("."));
    let mut disks = Vec::new();
    for &(name, kind, disk) in &devices.0 {
        match kind {
            ManifestKind::Block => {
                disks.push((name, block_file(&mut launch, name, disk, opts, beside)?))
            }
            ManifestKind::Net => {
                if !Path::new("/sys/class/net").join(XEN_BRIDGE).exists() {
                    make_link(&mut launch, host, plan, &opts.args, name, Link::XenBridge)?;
                }
            }
        }
    }
    // A domain named as the unikernel, unless one is running already.
    let taken = make
        && Command::new(&xl)
            .args(["domid", &plan.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let name = if taken {
        format!("{}-{}", plan.name, std::process::id())
    } else {
        plan.name.clone()
    };
    let image_abs = std::path::absolute(image).unwrap_or_else(|_| image.to_path_buf());
    let mem = opts.mem_mib.unwrap_or(DEFAULT_MEM_MIB);
    let mut config = String::new();
    for line in generated.lines() {
        let key = line.split_once(" = ").map(|(k, _)| k);
        let line = match key {
            Some("name") => format!("name = {}", xl_string(&name)),
            Some("kernel") => format!("kernel = {}", xl_string(&image_abs.to_string_lossy())),
            Some("memory") => format!("memory = {mem}"),
            Some("cmdline") => format!("cmdline = {}", xl_string(&command_line(&opts.args))),
            Some("on_poweroff" | "on_reboot" | "on_crash") => {
                format!("{} = 'destroy'", key.unwrap_or_default())
            }
            Some("disk") => {
                let mut line = line.to_string();
                for (name, file) in &disks {
                    let from = format!(
                        ", target={}'",
                        name.replace('\\', "\\\\").replace('\'', "\\'")
                    );
                    let to = format!(
                        ", target={}'",
                        file.to_string_lossy()
                            .replace('\\', "\\\\")
                            .replace('\'', "\\'")
                    );
                    line = line.replacen(&from, &to, 1);
                }
                line
            }
            _ => line.to_string(),
        };
        config.push_str(&line);
        config.push('\n');
    }
    let file = std::env::temp_dir().join(format!("mirage-nix-{}-{name}.xl", std::process::id()));
    if make {
        std::fs::write(&file, &config).map_err(|e| {
            fail(
                "run",
                format!("cannot write {}: {e}", file.display()),
                "check the temporary directory ($TMPDIR)",
            )
        })?;
        launch.made.push(Made::File(file.clone()));
        launch.made.push(Made::Domain {
            xl,
            name: name.clone(),
        });
    }
    launch.notes.push(format!(
        "the domain {name}, from the xl config {} (the image's, for this run)",
        file.display()
    ));
    launch
        .arg("create")
        .arg("-F")
        .arg("-c")
        .arg(file.as_os_str());
    Ok(launch)
}

fn prepare_xen(
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
    make: bool,
) -> Result<Launch, Report> {
    let mode = opts.xen.unwrap_or(if host.dom0 && host.xl.is_some() {
        XenMode::Xl
    } else {
        XenMode::Pvh
    });
    if matches!(mode, XenMode::Xl | XenMode::XlPv) {
        return prepare_xl(plan, image, opts, host, mode, make);
    }
    let devices = Devices::of(plan);
    if let Some((name, kind, _)) = devices.0.first() {
        let what = if *kind == ManifestKind::Net {
            "network"
        } else {
            "block"
        };
        return Err(fail(
            "xen-devices",
            format!(
                "the image has a {what} device (`{name}`), which needs a Xen dom0's backends: it cannot boot {}",
                if mode == XenMode::Pvh { "directly under QEMU" } else { "as dom0" }
            ),
            "run it in a Xen dom0 (mirage-nix run boots it through xl there), or build a variant without that device",
        ));
    }
    no_options_for("xen", "--disk", !opts.disks.is_empty())?;
    no_options_for("xen", "--tap", !opts.taps.is_empty())?;
    let qemu = host.qemu.clone().ok_or_else(|| {
        fail(
            "no-qemu",
            format!(
                "booting {} needs QEMU, and qemu-system-x86_64 is not on PATH",
                image.display()
            ),
            "install it with `apt-get install qemu-system-x86` (scripts/setup does)",
        )
    })?;
    let mem = opts.mem_mib.unwrap_or(DEFAULT_MEM_MIB);
    let cmdline = command_line(&opts.args);
    let status = if mode == XenMode::Pvh {
        Status::DebugExit
    } else {
        Status::XenDom0
    };
    let mut launch = Launch::new(qemu, status, opts.verbose);
    launch.arg("-accel").arg(host.accel.clone());
    if mode == XenMode::PvhDom0 {
        launch.arg("-cpu").arg("max");
    }
    for a in [
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ] {
        launch.arg(a);
    }
    match mode {
        XenMode::Pvh => {
            launch
                .arg("-m")
                .arg(mem.max(16).to_string())
                .arg("-device")
                .arg("isa-debug-exit,iobase=0xf4,iosize=0x04")
                .arg("-kernel")
                .arg(image.as_os_str())
                .arg("-append")
                .arg(cmdline);
        }
        XenMode::Dom0 | XenMode::PvhDom0 => {
            let gz = host.xen.clone().ok_or_else(|| {
                fail(
                    "no-xen",
                    "booting as dom0 needs the Xen hypervisor, and there is no /boot/xen-*.gz (nor MIRAGE_NIX_XEN)".into(),
                    "install it with `apt-get install xen-hypervisor-4.17-amd64` (scripts/setup does), or boot through PVH: --xen=pvh",
                )
            })?;
            // QEMU's -initrd separates Multiboot modules with commas; Xen drops the module's
            // first word (its name), and the rest is dom0's command line.
            if cmdline.contains(',') {
                return Err(fail(
                    "run",
                    "a dom0 command line cannot hold commas (QEMU's -initrd separates modules with them)".into(),
                    "boot through PVH (--xen=pvh), or leave the commas out",
                ));
            }
            let image_text = image.to_string_lossy();
            if image_text.contains([',', ' ']) {
                return Err(fail(
                    "run",
                    format!("the image's path {image_text} holds a comma or a space, which QEMU's -initrd cannot pass"),
                    "copy the image to a plain path",
                ));
            }
            let xen = if make { decompressed_xen(&gz)? } else { gz };
            let mut append = format!("console=com1 dom0_mem={mem}M");
            if mode == XenMode::PvhDom0 {
                append.push_str(" dom0=pvh dom0-iommu=none");
            }
            launch
                .arg("-m")
                .arg((mem + 224).max(256).to_string())
                .arg("-kernel")
                .arg(xen.as_os_str())
                .arg("-append")
                .arg(append)
                .arg("-initrd")
                .arg(format!("{image_text} {cmdline}").trim_end().to_string());
        }
        XenMode::Xl | XenMode::XlPv => unreachable!("handled above"),
    }
    let _ = plan;
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(example: &str, target: &str) -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example)
            .join("plans")
            .join(format!("{target}.json"));
        Plan::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn argv(l: &Launch) -> Vec<String> {
        l.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// An image file (any file: `prepare` only checks it exists).
    fn image(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, b"").unwrap();
        (dir, p)
    }

    fn host() -> Host {
        Host {
            solo5_spt: Some(Ok(PathBuf::from("/opt/solo5-spt"))),
            solo5_hvt: Some(Ok(PathBuf::from("/opt/solo5-hvt"))),
            qemu: Some(PathBuf::from("/usr/bin/qemu-system-x86_64")),
            accel: "tcg".into(),
            ..Host::default()
        }
    }

    #[test]
    fn disk_options_are_files_or_sizes() {
        let d: DiskOption = "storage=disk.img".parse().unwrap();
        assert_eq!(d.source, DiskSource::File("disk.img".into()));
        let d: DiskOption = "storage=64M".parse().unwrap();
        assert_eq!(d.source, DiskSource::Empty(64 << 20));
        let d: DiskOption = "t=512K".parse().unwrap();
        assert_eq!(d.source, DiskSource::Empty(512 << 10));
        let d: DiskOption = "t=./64M".parse().unwrap();
        assert_eq!(d.source, DiskSource::File("./64M".into()));
        assert!("storage".parse::<DiskOption>().is_err());
        assert!("=x".parse::<DiskOption>().is_err());
        assert!("s=0M".parse::<DiskOption>().unwrap_err().contains("sector"));
        assert!("s=99999999999999999999G".parse::<DiskOption>().is_err());
        assert!("s=2048G"
            .parse::<DiskOption>()
            .unwrap_err()
            .contains("1 TiB"));
    }

    #[test]
    fn tap_options_name_an_interface() {
        let t: TapOption = "service=tap3".parse().unwrap();
        assert_eq!(t.name.as_deref(), Some("service"));
        assert_eq!(t.iface, "tap3");
        let t: TapOption = "tap3".parse().unwrap();
        assert_eq!(t.name, None);
        assert!("service=".parse::<TapOption>().is_err());
        assert!("a-very-long-interface-name".parse::<TapOption>().is_err());
        assert!("tap 0".parse::<TapOption>().is_err());
    }

    #[test]
    fn words_are_quoted_as_images_split_them() {
        assert_eq!(quote_word("--hello=Hi"), "--hello=Hi");
        assert_eq!(quote_word("--hello=Hi there"), "\"--hello=Hi there\"");
        assert_eq!(quote_word("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote_word(""), "\"\"");
    }

    #[test]
    fn spt_boots_under_its_tender_with_mem_and_the_build_disk() {
        let p = plan("hello", "spt");
        let (_d, img) = image("hello.spt");
        let opts = RunOptions {
            args: vec!["--hello=Hi there".into()],
            ..Default::default()
        };
        let l = prepare(&p, &img, &opts, &host()).unwrap();
        assert_eq!(l.program, PathBuf::from("/opt/solo5-spt"));
        assert_eq!(
            argv(&l),
            [
                "--mem=64",
                "--",
                img.to_str().unwrap(),
                "\"--hello=Hi there\""
            ]
        );
    }

    #[test]
    fn a_missing_tender_is_named_with_how_to_get_it() {
        let p = plan("hello", "hvt");
        let (_d, img) = image("hello.hvt");
        let h = Host {
            solo5_hvt: None,
            ..host()
        };
        let e = prepare(&p, &img, &RunOptions::default(), &h).unwrap_err();
        let text = e.render();
        assert!(text.contains("no Solo5 hvt tender"), "{text}");
        assert!(text.contains("SOLO5_HVT"), "{text}");
        assert!(text.contains("github.com/Solo5/solo5"), "{text}");
        let h = Host {
            solo5_spt: Some(Err("SOLO5_SPT=/x is not an executable file".into())),
            ..host()
        };
        let e = prepare(&plan("hello", "spt"), &img, &RunOptions::default(), &h).unwrap_err();
        assert!(e.render().contains("SOLO5_SPT=/x"), "{}", e.render());
    }

    #[test]
    fn hvt_needs_kvm() {
        let (_d, img) = image("hello.hvt");
        let h = Host {
            kvm_problem: Some("/dev/kvm cannot be opened: gone".into()),
            ..host()
        };
        let e = prepare(&plan("hello", "hvt"), &img, &RunOptions::default(), &h).unwrap_err();
        assert!(e.render().contains("KVM"), "{}", e.render());
    }

    #[test]
    fn block_devices_come_from_options_or_beside_the_image() {
        let p = plan("block", "spt");
        let (d, img) = image("block.spt");
        // None given and none built: the error says how to give one.
        let e = prepare(&p, &img, &RunOptions::default(), &host()).unwrap_err();
        assert!(e.render().contains("--disk storage=FILE"), "{}", e.render());
        // A file that does not exist.
        let missing = RunOptions {
            disks: vec!["storage=/nonexistent/disk".parse().unwrap()],
            ..Default::default()
        };
        let e = prepare(&p, &img, &missing, &host()).unwrap_err();
        assert!(e.render().contains("does not exist"), "{}", e.render());
        // A file.
        let file = d.path().join("disk.img");
        std::fs::write(&file, vec![0u8; 4096]).unwrap();
        let given = RunOptions {
            disks: vec![format!("storage={}", file.display()).parse().unwrap()],
            ..Default::default()
        };
        let l = prepare(&p, &img, &given, &host()).unwrap();
        assert!(argv(&l).contains(&format!("--block:storage={}", file.display())));
        // An empty disk, removed with the launch.
        let empty = RunOptions {
            disks: vec!["storage=1M".parse().unwrap()],
            ..Default::default()
        };
        let l = prepare(&p, &img, &empty, &host()).unwrap();
        let made = argv(&l)
            .iter()
            .find_map(|a| a.strip_prefix("--block:storage=").map(PathBuf::from))
            .unwrap();
        assert_eq!(std::fs::metadata(&made).unwrap().len(), 1 << 20);
        drop(l);
        assert!(!made.exists());
        // A device the image does not have.
        let wrong = RunOptions {
            disks: vec!["disk=1M".parse().unwrap()],
            ..Default::default()
        };
        let e = prepare(&p, &img, &wrong, &host()).unwrap_err();
        assert!(
            e.render().contains("its block devices: storage"),
            "{}",
            e.render()
        );
    }

    #[test]
    fn network_devices_need_a_tap_given_or_root() {
        let p = plan("conduit_server", "spt");
        let (_d, img) = image("conduit_server.spt");
        let e = prepare(&p, &img, &RunOptions::default(), &host()).unwrap_err();
        let text = e.render();
        assert!(text.contains("needs root"), "{text}");
        assert!(text.contains("--tap"), "{text}");
        let given = RunOptions {
            taps: vec!["tap7".parse().unwrap()],
            ..Default::default()
        };
        let l = prepare(&p, &img, &given, &host()).unwrap();
        assert!(argv(&l).contains(&"--net:service=tap7".to_string()));
    }

    #[test]
    fn the_created_tap_gets_the_images_gateway() {
        let p = plan("conduit_server", "spt");
        assert_eq!(tap_address(&p, &[]).as_deref(), Some("10.0.0.1/24"));
        let args = [
            "--ipv4=192.168.7.2/16".to_string(),
            "--ipv4-gateway=192.168.0.1".into(),
        ];
        assert_eq!(tap_address(&p, &args).as_deref(), Some("192.168.0.1/16"));
        assert_eq!(tap_address(&plan("hello", "spt"), &[]), None);
    }

    #[test]
    fn xen_boots_through_pvh_by_default_and_as_dom0_on_request() {
        let p = plan("hello", "xen");
        let (_d, img) = image("hello.xen");
        let opts = RunOptions {
            args: vec!["--hello=Hi".into()],
            ..Default::default()
        };
        let l = prepare(&p, &img, &opts, &host()).unwrap();
        let a = argv(&l);
        assert_eq!(l.status, Status::DebugExit);
        assert!(
            a.windows(2).any(|w| w == ["-append", "--hello=Hi"]),
            "{a:?}"
        );
        assert!(a.contains(&"isa-debug-exit,iobase=0xf4,iosize=0x04".to_string()));
        let no_xen = RunOptions {
            xen: Some(XenMode::Dom0),
            ..opts.clone()
        };
        let e = prepare(&p, &img, &no_xen, &host()).unwrap_err();
        assert!(e.render().contains("xen-hypervisor"), "{}", e.render());
        let h = Host {
            qemu: None,
            ..host()
        };
        let e = prepare(&p, &img, &opts, &h).unwrap_err();
        assert!(
            e.render().contains("apt-get install qemu-system-x86"),
            "{}",
            e.render()
        );
        let commas = RunOptions {
            xen: Some(XenMode::Dom0),
            args: vec!["--hello=a,b".into()],
            ..Default::default()
        };
        let h = Host {
            xen: Some(PathBuf::from("/boot/xen.gz")),
            ..host()
        };
        let e = prepare(&p, &img, &commas, &h).unwrap_err();
        assert!(e.render().contains("commas"), "{}", e.render());
    }

    #[test]
    fn xl_boots_the_generated_config_made_for_the_run() {
        let p = plan("block", "xen");
        let (d, img) = image("block.xen");
        let opts = RunOptions {
            xen: Some(XenMode::Xl),
            mem_mib: Some(48),
            disks: vec!["disk.img=1M".parse().unwrap()],
            args: vec!["--logs=debug".into(), "--x=a b".into()],
            ..Default::default()
        };
        // Not in a dom0: said so.
        let h = Host {
            xl: Some(PathBuf::from("/nonexistent/xl")),
            ..host()
        };
        let e = prepare(&p, &img, &opts, &h).unwrap_err();
        assert!(e.render().contains("not one"), "{}", e.render());
        let h = Host { dom0: true, ..h };
        let l = prepare(&p, &img, &opts, &h).unwrap();
        let a = argv(&l);
        assert_eq!(a[..3], ["create", "-F", "-c"]);
        let config = std::fs::read_to_string(&a[3]).unwrap();
        assert!(config.contains("name = 'block'\n"), "{config}");
        assert!(
            config.contains(&format!("kernel = '{}'\n", img.display())),
            "{config}"
        );
        assert!(config.contains("memory = 48\n"), "{config}");
        assert!(
            config.contains("cmdline = '--logs=debug \"--x=a b\"'\n"),
            "{config}"
        );
        assert!(config.contains("on_crash = 'destroy'\n"), "{config}");
        let disk =
            std::env::temp_dir().join(format!("mirage-nix-{}-disk_img.img", std::process::id()));
        assert!(
            config.contains(&format!("target={}'", disk.display())),
            "{config}"
        );
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        let cfg = PathBuf::from(&a[3]);
        drop(l);
        assert!(!cfg.exists() && !disk.exists());
        drop(d);
        // Under QEMU without Xen, a device cannot connect: said before booting.
        let qemu = RunOptions {
            xen: Some(XenMode::Pvh),
            ..Default::default()
        };
        let (_d, img) = image("block.xen");
        let e = prepare(&p, &img, &qemu, &h).unwrap_err();
        assert!(
            e.render().contains("needs a Xen dom0's backends"),
            "{}",
            e.render()
        );
    }

    #[test]
    fn statuses_are_decoded_per_host() {
        use std::os::unix::process::ExitStatusExt;
        let l = Launch::new("/bin/true".into(), Status::DebugExit, false);
        let raw = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(l.decode(raw(129), None).unwrap(), 64);
        assert_eq!(l.decode(raw(1), None).unwrap(), 0);
        assert_eq!(l.decode(raw(127), None).unwrap(), 63);
        assert_eq!(l.decode(raw(0), None).unwrap(), 1);
        assert!(l.decode(raw(2), None).is_err());
        for status in [Status::XenDom0, Status::Xl] {
            let l = Launch::new("/bin/true".into(), status, false);
            assert_eq!(l.decode(raw(0), Some(0)).unwrap(), 0);
            assert_eq!(l.decode(raw(0), Some(1)).unwrap(), 0);
            assert_eq!(l.decode(raw(0), Some(3)).unwrap(), 1);
            assert_eq!(l.decode(raw(0), Some(4)).unwrap(), 1);
            assert!(l.decode(raw(0), None).is_err());
        }
        assert_eq!(
            xl_shutdown_reason("Domain 3 has shut down, reason code 3 0x0"),
            Some(3)
        );
        assert_eq!(
            xl_shutdown_reason("Waiting for domain hello (domid 3) to die"),
            None
        );
        let l = Launch::new("/bin/true".into(), Status::Direct, false);
        assert_eq!(l.decode(raw(63), None).unwrap(), 63);
        assert_eq!(l.decode(ExitStatus::from_raw(2), None).unwrap(), 130);
    }
}
