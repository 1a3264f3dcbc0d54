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
    /// As a domU through `xl create`, from inside a Xen dom0.
    Xl,
}

impl XenMode {
    /// Every mode with its name on the command line.
    pub const ALL: [(XenMode, &'static str); 4] = [
        (XenMode::Pvh, "pvh"),
        (XenMode::Dom0, "dom0"),
        (XenMode::PvhDom0, "pvh-dom0"),
        (XenMode::Xl, "xl"),
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
}

/// Something made for one run, removed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Made {
    /// A file (an empty disk).
    File(PathBuf),
    /// A tap interface, deleted with `ip`.
    Tap { ip: PathBuf, iface: String },
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
}

impl Drop for Launch {
    fn drop(&mut self) {
        for m in self.made.drain(..).rev() {
            match m {
                Made::File(p) => {
                    let _ = std::fs::remove_file(p);
                }
                Made::Tap { ip, iface } => {
                    let _ = Command::new(ip)
                        .args(["link", "del", &iface])
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
        let filtered = self.status == Status::XenDom0;
        cmd.stdout(if filtered {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
        let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ids: Vec<signal_hook::SigId> =
            [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
                .into_iter()
                .filter_map(|s| signal_hook::flag::register(s, interrupted.clone()).ok())
                .collect();
        let result = self.wait(&mut cmd, filtered);
        for id in ids {
            signal_hook::low_level::unregister(id);
        }
        result
    }

    fn wait(&self, cmd: &mut Command, filtered: bool) -> Result<u8, Report> {
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                "run",
                format!("cannot run {}: {e}", self.program.display()),
                "check that it is an executable for this machine",
            )
        })?;
        let mut ending = None;
        if let Some(out) = child.stdout.take().filter(|_| filtered) {
            let mut console = std::io::stdout();
            for line in std::io::BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\r');
                if text.starts_with(XEN_DOM0_REBOOTED) {
                    ending = Some(0);
                } else if text.starts_with(XEN_DOM0_CRASHED) {
                    ending = Some(1);
                }
                if self.verbose || !text.starts_with("(XEN)") {
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
            Status::XenDom0 => {
                match xen_ending {
                    Some(0) => Ok(0),
                    Some(_) => {
                        eprintln!("the domain crashed (Xen tells a crash, not the exit status): a failure");
                        Ok(1)
                    }
                    None => Err(fail(
                        "qemu",
                        format!("QEMU ended (exit status {code}) before Xen shut dom0 down"),
                        "run again with --verbose to see Xen's log",
                    )),
                }
            }
        }
    }
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

/// Makes a tap interface for the run (root only), with the image's gateway address when it
/// has one; `name` is the one to make, or `None` for a new `mirage<N>`.
fn make_tap(
    launch: &mut Launch,
    host: &Host,
    plan: &Plan,
    args: &[String],
    device: &str,
    name: Option<&str>,
) -> Result<String, Report> {
    let how = "give a tap you made with --tap NAME=IFACE (e.g. as root: `ip tuntap add mode tap user $USER dev tap0; ip link set tap0 up`)";
    if !host.root {
        return Err(fail(
            "not-root",
            format!(
                "the network device `{device}` needs a tap interface, and making one needs root"
            ),
            format!("run mirage-nix run as root, or {how}"),
        ));
    }
    let ip = host.ip.clone().ok_or_else(|| {
        fail(
            "no-ip",
            format!("the network device `{device}` needs a tap interface, and `ip` (iproute2) is not on PATH to make one"),
            format!("install it with `apt-get install iproute2`, or {how}"),
        )
    })?;
    if !launch.make {
        return Ok(name.unwrap_or("mirage0").to_string());
    }
    let candidates: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => (0..64).map(|i| format!("mirage{i}")).collect(),
    };
    let mut last_error = String::new();
    for iface in candidates {
        if name.is_none() && Path::new("/sys/class/net").join(&iface).exists() {
            continue;
        }
        let out = Command::new(&ip)
            .args(["tuntap", "add", "mode", "tap", "dev", &iface])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                launch.made.push(Made::Tap {
                    ip: ip.clone(),
                    iface: iface.clone(),
                });
                let address = tap_address(plan, args);
                if let Some(a) = &address {
                    run_ip(&ip, &["addr", "add", a, "dev", &iface])?;
                }
                run_ip(&ip, &["link", "set", &iface, "up"])?;
                launch.notes.push(format!(
                    "made the tap {iface}{} for the network device `{device}`; it goes when the run ends",
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
        format!("cannot make a tap for the network device `{device}`: {last_error}"),
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
            make_tap(launch, host, plan, &args, "netif", Some(&iface))?;
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
    let devices: Vec<(&str, ManifestKind, Option<&crate::plan::Disk>)> = plan
        .nodes
        .iter()
        .filter_map(|n| Some((n.manifest.as_ref()?, n.disk.as_ref())))
        .map(|(m, d)| (m.name.as_str(), m.kind, d))
        .collect();
    for d in &opts.disks {
        if !devices
            .iter()
            .any(|(n, k, _)| *n == d.name && *k == ManifestKind::Block)
        {
            return Err(unknown_device(
                "block",
                &d.name,
                &devices,
                ManifestKind::Block,
            ));
        }
    }
    let nets = devices
        .iter()
        .filter(|(_, k, _)| *k == ManifestKind::Net)
        .count();
    for t in &opts.taps {
        match &t.name {
            Some(n)
                if !devices
                    .iter()
                    .any(|(d, k, _)| d == n && *k == ManifestKind::Net) =>
            {
                return Err(unknown_device("network", n, &devices, ManifestKind::Net))
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
    let beside = image.parent().unwrap_or(Path::new("."));
    for (name, kind, disk) in &devices {
        match kind {
            ManifestKind::Block => {
                let given = opts.disks.iter().rev().find(|d| d.name == *name);
                let file = match (given.map(|d| &d.source), disk) {
                    (Some(DiskSource::File(f)), _) => {
                        if !f.is_file() {
                            return Err(fail(
                                "no-disk",
                                format!("the disk {} for block device `{name}` does not exist", f.display()),
                                format!("make it (e.g. `truncate -s 1M {}`), or give --disk {name}=SIZE for an empty disk for this run", f.display()),
                            ));
                        }
                        f.clone()
                    }
                    (Some(DiskSource::Empty(bytes)), _) => {
                        let f = std::env::temp_dir()
                            .join(format!("mirage-nix-{}-{name}.img", std::process::id()));
                        if launch.make {
                            std::fs::File::create(&f)
                                .and_then(|file| file.set_len(*bytes))
                                .map_err(|e| {
                                    fail("no-disk", format!("cannot make an empty disk {}: {e}", f.display()), "check the temporary directory ($TMPDIR)")
                                })?;
                            launch.made.push(Made::File(f.clone()));
                        }
                        launch.notes.push(format!("block device `{name}`: an empty disk of {bytes} bytes for this run"));
                        f
                    }
                    (None, Some(d)) => {
                        let f = beside.join(&d.file);
                        if launch.make && !f.is_file() {
                            return Err(fail(
                                "no-disk",
                                format!("the disk {} that the build makes for block device `{name}` is not beside the image", f.display()),
                                format!("build again, or give one with --disk {name}=FILE"),
                            ));
                        }
                        f
                    }
                    (None, None) => {
                        return Err(fail(
                            "no-disk",
                            format!("the image needs block device `{name}` and none was given"),
                            format!("give a file with --disk {name}=FILE, or an empty disk for this run with --disk {name}=SIZE (e.g. {name}=1M)"),
                        ))
                    }
                };
                let mut spec = OsString::from(format!("--block:{name}="));
                spec.push(file.as_os_str());
                launch.arg(spec);
            }
            ManifestKind::Net => {
                let given = opts
                    .taps
                    .iter()
                    .rev()
                    .find(|t| t.name.as_deref().is_none_or(|n| n == *name));
                let iface = match given {
                    Some(t) => t.iface.clone(),
                    None => make_tap(launch, host, plan, &opts.args, name, None)?,
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

fn unknown_device(
    what: &str,
    name: &str,
    devices: &[(&str, ManifestKind, Option<&crate::plan::Disk>)],
    kind: ManifestKind,
) -> Report {
    let known: Vec<&str> = devices
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

fn prepare_xen(
    plan: &Plan,
    image: &Path,
    opts: &RunOptions,
    host: &Host,
    make: bool,
) -> Result<Launch, Report> {
    no_options_for("xen", "--disk", !opts.disks.is_empty())?;
    no_options_for("xen", "--tap", !opts.taps.is_empty())?;
    let mode = opts.xen.unwrap_or(if host.dom0 && host.xl.is_some() {
        XenMode::Xl
    } else {
        XenMode::Pvh
    });
    if mode == XenMode::Xl {
        return Err(fail(
            "run",
            "booting through xl is not available yet".into(),
            "use --xen=pvh or --xen=dom0",
        ));
    }
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
        XenMode::Xl => unreachable!("handled above"),
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
    fn statuses_are_decoded_per_host() {
        use std::os::unix::process::ExitStatusExt;
        let l = Launch::new("/bin/true".into(), Status::DebugExit, false);
        let raw = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(l.decode(raw(129), None).unwrap(), 64);
        assert_eq!(l.decode(raw(1), None).unwrap(), 0);
        assert_eq!(l.decode(raw(127), None).unwrap(), 63);
        assert_eq!(l.decode(raw(0), None).unwrap(), 1);
        assert!(l.decode(raw(2), None).is_err());
        let l = Launch::new("/bin/true".into(), Status::XenDom0, false);
        assert_eq!(l.decode(raw(0), Some(0)).unwrap(), 0);
        assert_eq!(l.decode(raw(0), Some(1)).unwrap(), 1);
        assert!(l.decode(raw(0), None).is_err());
        let l = Launch::new("/bin/true".into(), Status::Direct, false);
        assert_eq!(l.decode(raw(63), None).unwrap(), 63);
        assert_eq!(l.decode(ExitStatus::from_raw(2), None).unwrap(), 130);
    }
}
