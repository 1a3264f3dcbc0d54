//! The domU test bed: Xen 4.17 under QEMU (TCG) with Debian's Linux as dom0, Xen's toolstack,
//! netback and blkback, and a bridge `xenbr0` with dom0 at 10.0.0.1/24. One boot runs several
//! [`Scenario`]s in turn, each a guest created with `xl create` from its config while a dom0
//! shell script runs against it, and gives back an [`Outcome`] per scenario: the guest's
//! console, the script's output and status, xl's output and log, and how the guest ended.
//!
//! The dom0 side is `runtime/xen/tests/domu/testbed` (a command-line tool too; docs/xen.md
//! says how to run a scenario by hand) and its `dom0/` folder: `init` runs the scenarios and
//! prints their results between markers, `lib.sh` has the helpers a dom0 script can call
//! (`backend vif`, `wait_xenstore PATH VALUE`, `wait_console TEXT`, ...), `vif-bridge` and
//! `block` are xl's hotplug scripts. Debian's packages are fetched once (`apt-get download`)
//! into the target folder.
//!
//! A dom0 boot costs about 20 s under TCG, so a test file shares one boot among its tests:
//!
//! ```no_run
//! use std::sync::OnceLock;
//! use std::time::Duration;
//! use mirage_test_support::xen::testbed::{Boot, GuestEnd, Scenario, Testbed};
//!
//! fn suite() -> Result<&'static Boot, String> {
//!     static BOOT: OnceLock<Result<Boot, String>> = OnceLock::new();
//!     BOOT.get_or_init(|| {
//!         let bed = Testbed::get()?; // Err: why it cannot run here (a skip)
//!         let image = std::path::Path::new("server.xen"); // e.g. from image::Builder
//!         Ok(bed.boot(&[Scenario::new("server-pvh", image)
//!             .config("type = 'pvh'\nmemory = 32\nvif = ['bridge=xenbr0']\n")
//!             .args(&["--ipv4=10.0.0.2/24"])
//!             .script("set -e\nwait_console 'listening'\ncurl -sS http://10.0.0.2:8080/\n")
//!             .destroy_after_script()
//!             .deadline(Duration::from_secs(90))]))
//!     })
//!     .as_ref()
//!     .map_err(Clone::clone)
//! }
//!
//! #[test]
//! fn the_server_answers_curl_from_dom0() {
//!     let boot = match suite() {
//!         Ok(boot) => boot,
//!         Err(why) => return eprintln!("skipped: {why}"),
//!     };
//!     let s = boot.scenario("server-pvh");
//!     assert_eq!(s.script, Some(0), "{s}");
//!     assert!(s.dom0.contains("hello mirage world"), "{s}");
//!     assert_eq!(s.guest, GuestEnd::Destroyed, "{s}");
//! }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::tree::{root, scratch};

/// The test bed's command-line tool.
pub fn script() -> PathBuf {
    root().join("runtime/xen/tests/domu/testbed")
}

/// One guest run in the test bed's dom0.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: String,
    image: PathBuf,
    pvh: bool,
    args: Option<Vec<String>>,
    config: Option<String>,
    config_lines: String,
    script: Option<String>,
    before: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    deadline: Duration,
    destroy_after_script: bool,
}

impl Scenario {
    /// `Scenario::new(name, image)` runs `image` as a PV domU named `name` (letters, digits,
    /// `-` and `_`; unique in a boot) with 32 MiB, no devices, no dom0 script and a 60 s
    /// deadline, its own command line as the config gives it (none by default).
    pub fn new(name: &str, image: &Path) -> Scenario {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "a scenario's name is letters, digits, - and _: {name:?}"
        );
        Scenario {
            name: name.to_string(),
            image: image.to_path_buf(),
            pvh: false,
            args: None,
            config: None,
            config_lines: String::new(),
            script: None,
            before: None,
            files: Vec::new(),
            deadline: Duration::from_secs(60),
            destroy_after_script: false,
        }
    }

    /// `pvh()` makes the default config's guest a PVH domU.
    pub fn pvh(mut self) -> Scenario {
        self.pvh = true;
        self
    }

    /// `config(xl)` replaces the default config with the xl config `xl` (such as the one
    /// `mirage-nix query xl` prints). Its `name` and `kernel` are always the scenario's; its
    /// relative paths (a disk's `target=disk.img`) are in the scenario's folder.
    pub fn config(mut self, xl: &str) -> Scenario {
        self.config = Some(xl.to_string());
        self
    }

    /// `config_line(line)` adds `line` to the end of the config (default or given), such as
    /// `vif = ['bridge=xenbr0']` or `on_poweroff = 'preserve'`.
    pub fn config_line(mut self, line: &str) -> Scenario {
        self.config_lines.push_str(line);
        self.config_lines.push('\n');
        self
    }

    /// `args(args)` is the guest's command line (its runtime keys, `--hello=Hi`), each quoted
    /// as one word; it overrides the config's `cmdline`.
    pub fn args(mut self, args: &[&str]) -> Scenario {
        self.args = Some(args.iter().map(|a| a.to_string()).collect());
        self
    }

    /// `script(sh)` is a busybox shell script that dom0 runs, in the scenario's folder, once
    /// `xl create` has started the guest; `runtime/xen/tests/domu/dom0/lib.sh` lists the
    /// helpers and variables it has (`$DOMID`, `backend vif`, `wait_console TEXT`, ...).
    /// What it leaves running is killed when the scenario ends.
    pub fn script(mut self, sh: &str) -> Scenario {
        self.script = Some(sh.to_string());
        self
    }

    /// `before(sh)` is a busybox shell script that dom0 runs before it creates the guest, to
    /// prepare for it: start a DHCP server (`dnsmasq -k ... &`) or nginx, make a disk. What it
    /// starts with `&` runs until the scenario ends; if it fails, no guest is created and
    /// [`Outcome::script`] is its status. Its output comes first in [`Outcome::dom0`].
    pub fn before(mut self, sh: &str) -> Scenario {
        self.before = Some(sh.to_string());
        self
    }

    /// `file(name, contents)` puts a file in the scenario's folder (a disk image, a tar
    /// archive, an nginx config). Folders stay for the whole boot: a later scenario reaches
    /// this one's files as `/scenarios/NAME/FILE` (a disk written, then read back).
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Scenario {
        assert!(
            !name.contains('/') && !name.starts_with('.'),
            "a scenario file's name is a plain file name: {name:?}"
        );
        self.files.push((name.to_string(), contents.into()));
        self
    }

    /// `deadline(d)` bounds the guest and its script inside dom0, from the guest's start: at
    /// `d` the script is killed and the guest destroyed ([`GuestEnd::Timeout`]). (`xl create`
    /// has its own bound, 90 s.)
    pub fn deadline(mut self, d: Duration) -> Scenario {
        self.deadline = d;
        self
    }

    /// `destroy_after_script()` destroys the guest as soon as the script ends, for guests that
    /// never end by themselves (servers); by default the bed waits for the guest to end.
    pub fn destroy_after_script(mut self) -> Scenario {
        self.destroy_after_script = true;
        self
    }

    /// `write(dir)` makes the scenario's folder `dir/NAME` with the test bed's tool.
    fn write(&self, dir: &Path) -> PathBuf {
        let folder = dir.join(&self.name);
        let mut cmd = Command::new(script());
        cmd.arg("scenario").arg(&folder).arg(&self.image);
        cmd.args(self.args.iter().flatten());
        cmd.env("DOMU_TYPE", if self.pvh { "pvh" } else { "pv" })
            .env("DEADLINE", self.deadline.as_secs().max(1).to_string());
        if self.destroy_after_script {
            cmd.env("AFTER_SCRIPT", "destroy");
        }
        let status = cmd.status().expect("the test bed's tool runs");
        assert!(status.success(), "testbed scenario {} failed", self.name);
        if let Some(xl) = &self.config {
            std::fs::write(folder.join("guest.cfg"), xl).unwrap();
        }
        if !self.config_lines.is_empty() {
            let mut cfg = std::fs::read_to_string(folder.join("guest.cfg")).unwrap();
            if !cfg.ends_with('\n') {
                cfg.push('\n');
            }
            cfg.push_str(&self.config_lines);
            std::fs::write(folder.join("guest.cfg"), cfg).unwrap();
        }
        if let Some(sh) = &self.script {
            std::fs::write(folder.join("dom0.sh"), sh).unwrap();
        }
        if let Some(sh) = &self.before {
            std::fs::write(folder.join("before.sh"), sh).unwrap();
        }
        for (name, contents) in &self.files {
            std::fs::write(folder.join(name), contents).unwrap();
        }
        folder
    }
}

/// How a guest ended, as xl saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestEnd {
    /// Shut down with reason poweroff (success).
    Poweroff,
    /// Shut down with reason reboot.
    Reboot,
    /// Shut down with reason suspend.
    Suspend,
    /// Shut down with reason crash (failure, panic).
    Crash,
    /// Shut down by the watchdog.
    Watchdog,
    /// Shut down with reason soft_reset.
    SoftReset,
    /// Still running when its script ended; destroyed ([`Scenario::destroy_after_script`]).
    Destroyed,
    /// Still running at the deadline; destroyed.
    Timeout,
    /// `xl create` failed (its output is in [`Outcome::xl`]).
    NotCreated,
    /// Something else: the word dom0 printed.
    Other(String),
}

impl GuestEnd {
    fn parse(word: &str) -> GuestEnd {
        match word {
            "poweroff" => GuestEnd::Poweroff,
            "reboot" => GuestEnd::Reboot,
            "suspend" => GuestEnd::Suspend,
            "crash" => GuestEnd::Crash,
            "watchdog" => GuestEnd::Watchdog,
            "soft_reset" => GuestEnd::SoftReset,
            "destroyed" => GuestEnd::Destroyed,
            "timeout" => GuestEnd::Timeout,
            "not-created" => GuestEnd::NotCreated,
            other => GuestEnd::Other(other.to_string()),
        }
    }
}

/// What one scenario gave.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The scenario's name.
    pub name: String,
    /// What its dom0 scripts printed (standard output and error): the `before` script's,
    /// then the script's.
    pub dom0: String,
    /// The script's exit status (the `before` script's if that failed): `None` without a
    /// script or when it was killed at the deadline (see [`Outcome::script_killed`]).
    pub script: Option<i32>,
    /// Whether the script was still running at the deadline.
    pub script_killed: bool,
    /// What the guest wrote to its console (each line ends with a newline).
    pub console: String,
    /// `xl create`'s output, then xl's log of the domain (its shutdown reason).
    pub xl: String,
    /// The dom0 kernel's messages during the scenario (netback and blkback complain there).
    pub dmesg: String,
    /// How the guest ended.
    pub guest: Option<GuestEnd>,
    /// How long the scenario took in dom0, in whole seconds.
    pub seconds: u64,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "scenario {}: guest {:?}, script {:?}{}, {} s",
            self.name,
            self.guest,
            self.script,
            if self.script_killed { " (killed)" } else { "" },
            self.seconds
        )?;
        for (what, text) in [
            ("dom0 script", &self.dom0),
            ("console", &self.console),
            ("xl", &self.xl),
            ("dmesg", &self.dmesg),
        ] {
            writeln!(f, "--- {what}:\n{text}")?;
        }
        Ok(())
    }
}

/// One boot of the test bed.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The whole serial console, without carriage returns.
    pub serial: String,
    /// QEMU's exit status (`None` if it was killed at the boot's deadline).
    pub status: Option<i32>,
    /// How long QEMU ran.
    pub took: Duration,
    /// What dom0 complained of while setting up (its `testbed: ` lines before `dom0 ready`:
    /// a kernel module or the bridge missing); empty when all went well.
    pub setup: String,
    /// Whether dom0 came up (`dom0 ready`).
    pub ready: bool,
    /// Whether dom0 ran every scenario (`done`).
    pub done: bool,
    /// The scenarios' outcomes, in the order they ran.
    pub scenarios: Vec<Outcome>,
}

impl Boot {
    /// `scenario(name)` is the outcome of the scenario `name`; it fails the test, showing the
    /// serial console, if dom0 did not run it to its end.
    pub fn scenario(&self, name: &str) -> &Outcome {
        self.scenarios
            .iter()
            .find(|s| s.name == name && s.guest.is_some())
            .unwrap_or_else(|| {
                panic!(
                    "the test bed did not run scenario {name} to its end:\n{}",
                    self.serial
                )
            })
    }

    /// `parse(serial)` splits dom0's console into the scenarios' outcomes (`dom0/init`'s
    /// markers); Xen's own `(XEN)` lines are left out of them.
    fn parse(serial: &str) -> (String, bool, bool, Vec<Outcome>) {
        const MARK: &str = "=== testbed: ";
        let (mut setup, mut ready, mut done) = (String::new(), false, false);
        let mut scenarios: Vec<Outcome> = Vec::new();
        let mut section: Option<&str> = None;
        for line in serial.lines() {
            if line.starts_with("(XEN)") {
                continue;
            }
            let Some(marker) = line.strip_prefix(MARK).and_then(|l| l.strip_suffix(" ===")) else {
                match (section, scenarios.last_mut()) {
                    (None, _) if !ready && line.starts_with("testbed: ") => {
                        setup.push_str(&format!("{line}\n"))
                    }
                    (Some(what), Some(s)) => {
                        let text = match what {
                            "dom0" => &mut s.dom0,
                            "console" => &mut s.console,
                            "xl" => &mut s.xl,
                            _ => &mut s.dmesg,
                        };
                        text.push_str(line);
                        text.push('\n');
                    }
                    _ => {}
                }
                continue;
            };
            section = None;
            if marker == "dom0 ready" {
                ready = true;
            } else if marker == "done" {
                done = true;
            } else if let Some(name) = marker.strip_prefix("scenario ") {
                scenarios.push(Outcome {
                    name: name.to_string(),
                    ..Outcome::default()
                });
            } else if let Some(s) = scenarios.last_mut() {
                let Some(rest) = marker.strip_prefix(&format!("{} ", s.name)) else {
                    continue;
                };
                if let Some(end) = rest.strip_prefix("end ") {
                    for field in end.split(' ') {
                        match field.split_once('=') {
                            Some(("script", "killed")) => s.script_killed = true,
                            Some(("script", n)) => s.script = n.parse().ok(),
                            Some(("guest", g)) => s.guest = Some(GuestEnd::parse(g)),
                            Some(("seconds", n)) => s.seconds = n.parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                } else {
                    section = ["dom0", "console", "xl", "dmesg"]
                        .into_iter()
                        .find(|w| *w == rest);
                }
            }
        }
        (setup, ready, done, scenarios)
    }
}

/// The test bed's Debian packages, unpacked.
#[derive(Clone, Debug)]
pub struct Testbed {
    dir: PathBuf,
}

impl Testbed {
    /// `Testbed::get()` is the test bed, its packages fetched once (`testbed fetch`), or why
    /// it cannot run here: no QEMU or Xen (`scripts/setup`), or no Debian archive.
    pub fn get() -> Result<Testbed, String> {
        static FETCH: Mutex<()> = Mutex::new(());
        if let Some(why) = super::skip_reason() {
            return Err(why);
        }
        let _once = FETCH.lock().unwrap_or_else(|e| e.into_inner());
        let dir = scratch("xen").join("domu");
        let status = Command::new(script())
            .arg("fetch")
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run the domU test bed's tool: {e}"))?;
        if !status.success() {
            return Err("cannot download the domU test bed's Debian packages \
                        (apt-get download: no network or no Debian archive?)"
                .into());
        }
        Ok(Testbed { dir })
    }

    /// `boot(scenarios)` boots dom0 once and runs `scenarios` in order. The boot's deadline
    /// is two and a half minutes, plus every scenario's deadline and half a minute for its
    /// creation.
    pub fn boot(&self, scenarios: &[Scenario]) -> Boot {
        static BOOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BOOTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let work = scratch("xen").join(format!("boot-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let folders: Vec<PathBuf> = scenarios.iter().map(|s| s.write(&work)).collect();
        let initrd = work.join("initrd.gz");
        let status = Command::new(script())
            .arg("initrd")
            .arg(&self.dir)
            .arg(&initrd)
            .args(&folders)
            .status()
            .expect("the test bed's tool runs");
        assert!(status.success(), "testbed initrd failed");
        let deadline = Duration::from_secs(150)
            + scenarios
                .iter()
                .map(|s| s.deadline + Duration::from_secs(30))
                .sum();
        let mut cmd = Command::new(script());
        cmd.arg("boot").arg(&self.dir).arg(&initrd);
        let run = super::run(cmd, deadline);
        let _ = std::fs::remove_dir_all(&work);
        let (setup, ready, done, scenarios) = Boot::parse(&run.serial);
        Boot {
            serial: run.serial,
            status: run.status,
            took: run.took,
            setup,
            ready,
            done,
            scenarios,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dom0's console as `dom0/init` prints it, with Xen's lines and the kernel's interleaved.
    const SERIAL: &str = "\
(XEN) Xen version 4.17
mapping kernel into physical memory
testbed: cannot load the kernel module loop
=== testbed: dom0 ready ===
=== testbed: scenario first ===
=== testbed: first dom0 ===
vif state 2
(XEN) a line of Xen's own
=== testbed: first console ===
hello
=== testbed: first xl ===
Domain 1 has shut down, reason code 3 0x0
=== testbed: first dmesg ===
[ 1.0] xenbr0: port 1(vif1.0) entered blocking state
=== testbed: first end script=0 guest=crash seconds=7 ===
=== testbed: scenario hung ===
=== testbed: hung dom0 ===
=== testbed: hung console ===
=== testbed: hung xl ===
=== testbed: hung dmesg ===
=== testbed: hung end script=killed guest=timeout seconds=3 ===
=== testbed: scenario cut ===
=== testbed: cut dom0 ===
half
";

    #[test]
    fn dom0s_console_splits_into_the_scenarios_outcomes() {
        let (setup, ready, done, scenarios) = Boot::parse(SERIAL);
        assert_eq!(setup, "testbed: cannot load the kernel module loop\n");
        assert!(ready && !done);
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["first", "hung", "cut"]);
        let first = &scenarios[0];
        assert_eq!(first.dom0, "vif state 2\n");
        assert_eq!(first.console, "hello\n");
        assert_eq!(first.xl, "Domain 1 has shut down, reason code 3 0x0\n");
        assert!(first.dmesg.contains("entered blocking state"));
        assert_eq!(
            (first.script, first.guest.clone(), first.seconds),
            (Some(0), Some(GuestEnd::Crash), 7)
        );
        let hung = &scenarios[1];
        assert!(hung.script_killed && hung.script.is_none());
        assert_eq!(hung.guest, Some(GuestEnd::Timeout));
        // A scenario dom0 did not finish (the boot's deadline) has no end.
        assert_eq!(scenarios[2].guest, None);
        assert_eq!(scenarios[2].dom0, "half\n");
    }

    #[test]
    fn an_unfinished_scenario_fails_the_test_with_the_serial_console() {
        let (setup, ready, done, scenarios) = Boot::parse(SERIAL);
        let boot = Boot {
            serial: SERIAL.into(),
            status: None,
            took: Duration::ZERO,
            setup,
            ready,
            done,
            scenarios,
        };
        assert_eq!(boot.scenario("first").console, "hello\n");
        let missing = std::panic::catch_unwind(|| boot.scenario("cut").name.clone());
        assert!(missing.is_err());
    }
}
