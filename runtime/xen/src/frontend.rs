//! The XenBus side of a device: finding the device the toolstack gave the domain, and the
//! state machine a frontend and its backend walk through xenstore (`public/io/xenbus.h`),
//! every wait bounded so that a missing or stuck backend becomes an error naming the device
//! and the state it was left in.
//!
//! The image's devices are declared by name in its `main!` (from the plan, in the order the
//! generated `xl` config lists them): the `i`-th network device is the domain's `vif` `i`, the
//! `i`-th block device its disk `xvd<a+i>` (vbd `51712 + 16 i`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::deadline::after;
use crate::events::Channel;
use crate::grants::GrantsError;
use crate::sys::page::Page;
use crate::xenstore::{self, WaitError, XsError};

/// How long a frontend waits for its backend at each step. libxl has already waited up to 10 s
/// for the backend to appear before unpausing the domain, so a few seconds suffice.
pub(crate) const STEP_TIMEOUT_NS: u64 = 10_000_000_000;

/// The kinds of device the image's `main!` declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A network interface (netfront, the domain's `vif`).
    Net,
    /// A disk (blkfront, the domain's `vbd`).
    Block,
}

impl DeviceKind {
    fn noun(self) -> &'static str {
        match self {
            DeviceKind::Net => "network device",
            DeviceKind::Block => "block device",
        }
    }
}

static DEVICES: spin::Once<&'static [(&'static str, DeviceKind)]> = spin::Once::new();

/// `declare(devices)` records the image's devices (by `run`, once).
pub(crate) fn declare(devices: &'static [(&'static str, DeviceKind)]) {
    DEVICES.call_once(|| devices);
}

/// `vbd(index)` is the virtual device number of the `index`-th disk, `xvd<a+index>`.
pub(crate) fn vbd(index: u32) -> u32 {
    (202 << 8) | (index << 4)
}

/// `disk_name(vdev)` is the Linux name of virtual device `vdev` when it is an `xvd` disk.
fn disk_name(vdev: u32) -> Option<char> {
    (vdev >> 8 == 202 && vdev & 15 == 0).then(|| (b'a' + ((vdev >> 4) & 15) as u8) as char)
}

/// `Device` is one of the image's devices: its name in the graph, kind and XenBus id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Device {
    /// Its name in the graph.
    pub(crate) name: &'static str,
    /// Its kind.
    pub(crate) kind: DeviceKind,
    /// Its id under `device/vif` or `device/vbd`.
    pub(crate) id: u32,
}

impl Device {
    /// `lookup(name, kind)` is the declared device `name`, with its XenBus id.
    pub(crate) fn lookup(name: &'static str, kind: DeviceKind) -> Result<Device, ConnectError> {
        let devices = DEVICES.get().copied().unwrap_or(&[]);
        let index = devices
            .iter()
            .filter(|(_, k)| *k == kind)
            .position(|(n, _)| *n == name);
        let device = |id| Device { name, kind, id };
        match index {
            Some(i) => Ok(device(match kind {
                DeviceKind::Net => i as u32,
                DeviceKind::Block => vbd(i as u32),
            })),
            None => Err(device(0).error(Cause::NotDeclared)),
        }
    }

    /// `vif(name, interface)` is the network device `name` on the domain's vif numbered
    /// `interface` (the `--interface` key).
    pub(crate) fn vif(name: &'static str, interface: &str) -> Result<Device, ConnectError> {
        let device = |id| Device {
            name,
            kind: DeviceKind::Net,
            id,
        };
        interface.trim().parse().map(device).map_err(|_| {
            device(0).error(Cause::BadInterface {
                interface: interface.into(),
            })
        })
    }

    fn class(&self) -> &'static str {
        match self.kind {
            DeviceKind::Net => "vif",
            DeviceKind::Block => "vbd",
        }
    }

    /// `path()` is the device's frontend directory, relative to the domain's home.
    pub(crate) fn path(&self) -> String {
        format!("device/{}/{}", self.class(), self.id)
    }

    /// `error(cause)` is a connect error of this device.
    pub(crate) fn error(&self, cause: Cause) -> ConnectError {
        ConnectError {
            device: *self,
            cause,
        }
    }
}

/// A XenBus state (`enum xenbus_state`), written to xenstore as a decimal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// 0.
    Unknown,
    /// 1: setting up.
    Initialising,
    /// 2: the backend waits for the frontend's rings.
    InitWait,
    /// 3: the frontend's rings are published.
    Initialised,
    /// 4: ready for I/O.
    Connected,
    /// 5: shutting down.
    Closing,
    /// 6: closed.
    Closed,
    /// 7 and 8, and anything else.
    Other,
}

impl State {
    /// `parse(text)` is the state a node's value holds (`None`: no node or not a number).
    pub(crate) fn parse(text: Option<&str>) -> Option<State> {
        Some(match text?.trim().parse::<u32>().ok()? {
            0 => State::Unknown,
            1 => State::Initialising,
            2 => State::InitWait,
            3 => State::Initialised,
            4 => State::Connected,
            5 => State::Closing,
            6 => State::Closed,
            _ => State::Other,
        })
    }

    fn number(self) -> u32 {
        match self {
            State::Unknown => 0,
            State::Initialising => 1,
            State::InitWait => 2,
            State::Initialised => 3,
            State::Connected => 4,
            State::Closing => 5,
            State::Closed => 6,
            State::Other => 7,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            State::Unknown => "Unknown",
            State::Initialising => "Initialising",
            State::InitWait => "InitWait",
            State::Initialised => "Initialised",
            State::Connected => "Connected",
            State::Closing => "Closing",
            State::Closed => "Closed",
            State::Other => "Reconfiguring",
        };
        write!(f, "{name} ({})", self.number())
    }
}

/// Why a device could not be connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The image's `main!` does not declare the device (the generated code and the runtime
    /// disagree).
    NotDeclared,
    /// Not running as a domU: no xenstore, so no devices.
    NotDomU,
    /// The domain has no such device; these of its kind exist.
    Missing {
        /// The ids the domain has.
        available: Vec<String>,
    },
    /// `--interface` does not name a vif by number.
    BadInterface {
        /// The key's value.
        interface: String,
    },
    /// The frontend directory names no backend.
    NoBackend,
    /// The backend did not reach the state wanted in time.
    Stuck {
        /// The backend's last state (`None`: its state node does not exist).
        last: Option<State>,
        /// The state waited for.
        wanted: State,
    },
    /// The backend lacks a feature this frontend needs.
    Unsupported {
        /// The missing feature.
        feature: &'static str,
    },
    /// A key the backend or toolstack wrote is unreadable.
    BadKey {
        /// The key.
        key: &'static str,
    },
    /// xenstore failed.
    Xenstore(XsError),
    /// The grant table failed.
    Grants(GrantsError),
    /// An event channel could not be allocated (Xen's error).
    EventChannel(i64),
}

/// `ConnectError` is why a device of the image could not be connected: which device (its
/// graph name, kind and XenBus id) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectError {
    device: Device,
    cause: Cause,
}

impl ConnectError {
    /// `cause()` is why.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        write!(f, "{} `{}`", d.kind.noun(), d.name)?;
        match (d.kind, disk_name(d.id)) {
            (_, _)
                if matches!(
                    self.cause,
                    Cause::NotDeclared | Cause::NotDomU | Cause::BadInterface { .. }
                ) => {}
            (DeviceKind::Block, Some(letter)) => write!(f, " (xvd{letter}, vbd {})", d.id)?,
            _ => write!(f, " ({} {})", d.class(), d.id)?,
        }
        f.write_str(": ")?;
        let config = "add it to the domain's xl config (`mirage-nix query xl` writes one)";
        match &self.cause {
            Cause::NotDeclared => {
                f.write_str("the image does not declare it (render the plan again)")
            }
            Cause::NotDomU => f.write_str(
                "this domain has no xenstore: devices need a domU created by a toolstack (xl)",
            ),
            Cause::Missing { available } if available.is_empty() => write!(
                f,
                "is missing: the domain has no {} at all; {config}",
                d.class()
            ),
            Cause::Missing { available } => write!(
                f,
                "is missing: the domain has {} {}; {config}",
                d.class(),
                available.join(", ")
            ),
            Cause::BadInterface { interface } => write!(
                f,
                "--interface={interface} is not a vif number (0 is the first vif of the domain)"
            ),
            Cause::NoBackend => write!(f, "{} names no backend", d.path()),
            Cause::Stuck { last, wanted } => {
                write!(
                    f,
                    "its backend did not reach {wanted} in time; its state is "
                )?;
                match last {
                    Some(s) => write!(f, "{s}"),
                    None => f.write_str("absent"),
                }
            }
            Cause::Unsupported { feature } => {
                write!(f, "its backend does not offer {feature}")
            }
            Cause::BadKey { key } => write!(f, "{}/{key} is unreadable", d.path()),
            Cause::Xenstore(e) => write!(f, "{e}"),
            Cause::Grants(e) => write!(f, "{e}"),
            Cause::EventChannel(code) => {
                write!(f, "no event channel (Xen error {code})")
            }
        }
    }
}

impl core::error::Error for ConnectError {}

/// `Frontend` is a device's XenBus frontend: its directory and its backend's.
pub(crate) struct Frontend {
    /// The device.
    pub(crate) device: Device,
    /// The backend's directory (absolute).
    pub(crate) backend: String,
    /// The backend's domain.
    pub(crate) backend_id: u16,
}

impl Frontend {
    /// `find(device)` is the frontend of `device`, once the toolstack has written its
    /// backend (it can come late after hotplug: waited for, within [`STEP_TIMEOUT_NS`]).
    pub(crate) async fn find(device: Device) -> Result<Frontend, ConnectError> {
        let xs = |e: XsError| {
            device.error(match e {
                XsError::Unavailable => Cause::NotDomU,
                e => Cause::Xenstore(e),
            })
        };
        let ids = xenstore::directory(&format!("device/{}", device.class()))
            .await
            .map_err(xs)?;
        let id = format!("{}", device.id);
        if !ids.contains(&id) {
            return Err(device.error(Cause::Missing { available: ids }));
        }
        let path = device.path();
        let backend = xenstore::wait_for(&format!("{path}/backend"), after(STEP_TIMEOUT_NS), |v| {
            v.is_some_and(|p| p.starts_with('/'))
        })
        .await
        .map_err(|e| match e {
            WaitError::TimedOut { .. } => device.error(Cause::NoBackend),
            WaitError::Xenstore(e) => xs(e),
        })?
        .unwrap_or_default();
        let backend_id = xenstore::read(0, &format!("{path}/backend-id"))
            .await
            .map_err(xs)?
            .trim()
            .parse()
            .map_err(|_| device.error(Cause::BadKey { key: "backend-id" }))?;
        Ok(Frontend {
            device,
            backend,
            backend_id,
        })
    }

    /// `xs_error(e)` is xenstore error `e` as this device's connect error.
    pub(crate) fn xs_error(&self, e: XsError) -> ConnectError {
        self.device.error(Cause::Xenstore(e))
    }

    /// `grant(page)` lets the backend map `page` (a ring) and is the reference to publish.
    pub(crate) fn grant(&self, page: &Page) -> Result<u32, ConnectError> {
        crate::grants::with(|g| g.grant(page, self.backend_id, false))
            .and_then(|r| r)
            .map_err(|e| self.device.error(Cause::Grants(e)))
    }

    /// `channel()` is a new event channel for the backend to bind.
    pub(crate) fn channel(&self) -> Result<Channel, ConnectError> {
        Channel::alloc(self.backend_id).map_err(|code| self.device.error(Cause::EventChannel(code)))
    }

    /// `publish(entries)` writes `(key, value)` pairs into the frontend's directory, in one
    /// transaction, for the backend to read when it connects.
    pub(crate) async fn publish(&self, entries: &[(&str, &str)]) -> Result<(), ConnectError> {
        let path = self.device.path();
        let paths: Vec<String> = entries.iter().map(|(k, _)| format!("{path}/{k}")).collect();
        let pairs: Vec<(&str, &str)> = paths
            .iter()
            .zip(entries)
            .map(|(p, (_, v))| (p.as_str(), *v))
            .collect();
        xenstore::write_all(&pairs)
            .await
            .map_err(|e| self.xs_error(e))
    }

    /// `set_state(state)` writes the frontend's state.
    pub(crate) async fn set_state(&self, state: State) -> Result<(), ConnectError> {
        xenstore::write(
            0,
            &format!("{}/state", self.device.path()),
            &format!("{}", state.number()),
        )
        .await
        .map_err(|e| self.xs_error(e))
    }

    /// `backend_key(key)` is the value of the backend's `key`, if it has one.
    pub(crate) async fn backend_key(&self, key: &str) -> Result<Option<String>, ConnectError> {
        xenstore::read_opt(&format!("{}/{key}", self.backend))
            .await
            .map_err(|e| self.xs_error(e))
    }

    /// `backend_flag(key)` is whether the backend set `key` to 1 (features are optional and
    /// off unless written).
    pub(crate) async fn backend_flag(&self, key: &str) -> Result<bool, ConnectError> {
        Ok(self
            .backend_key(key)
            .await?
            .is_some_and(|v| v.trim() == "1"))
    }

    /// `own_key(key)` is the value of the frontend directory's `key` (written by the
    /// toolstack), if any.
    pub(crate) async fn own_key(&self, key: &str) -> Result<Option<String>, ConnectError> {
        xenstore::read_opt(&format!("{}/{key}", self.device.path()))
            .await
            .map_err(|e| self.xs_error(e))
    }

    /// `wait_backend(wanted)` waits (within [`STEP_TIMEOUT_NS`]) until the backend's state is
    /// `wanted`, and fails naming its last state otherwise, or at once if the backend is
    /// closing.
    pub(crate) async fn wait_backend(&self, wanted: State) -> Result<(), ConnectError> {
        let path = format!("{}/state", self.backend);
        let done = |v: Option<&str>| {
            let s = State::parse(v);
            s == Some(wanted) || (wanted < State::Closing && s >= Some(State::Closing))
        };
        match xenstore::wait_for(&path, after(STEP_TIMEOUT_NS), done).await {
            Ok(v) if State::parse(v.as_deref()) == Some(wanted) => Ok(()),
            Ok(v) => Err(self.device.error(Cause::Stuck {
                last: State::parse(v.as_deref()),
                wanted,
            })),
            Err(WaitError::TimedOut { last }) => Err(self.device.error(Cause::Stuck {
                last: State::parse(last.as_deref()),
                wanted,
            })),
            Err(WaitError::Xenstore(e)) => Err(self.xs_error(e)),
        }
    }

    /// `start()` brings the backend to InitWait, ready for our rings: at once after a fresh
    /// `xl create`; after a reset (Closing, Closed, Initialising) if the backend is left
    /// connected or closed from an earlier frontend.
    pub(crate) async fn start(&self) -> Result<(), ConnectError> {
        let state = State::parse(self.backend_key("state").await?.as_deref());
        if matches!(
            state,
            Some(State::Initialised | State::Connected | State::Closing | State::Closed)
        ) {
            log::info!(target: "xen", "{}: backend left in {:?}: resetting", self.device.path(), state);
            self.set_state(State::Closing).await?;
            if state < Some(State::Closing) {
                self.wait_backend(State::Closing).await.ok();
            }
            self.set_state(State::Closed).await?;
            self.wait_backend(State::Closed).await?;
            self.set_state(State::Initialising).await?;
        }
        self.wait_backend(State::InitWait).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn disks_are_numbered_as_xl_names_them() {
        assert_eq!(vbd(0), 51712);
        assert_eq!(vbd(1), 51728);
        assert_eq!(disk_name(51712), Some('a'));
        assert_eq!(disk_name(51728), Some('b'));
        assert_eq!(disk_name(768), None);
    }

    #[test]
    fn states_parse_and_order() {
        assert_eq!(State::parse(Some("4")), Some(State::Connected));
        assert_eq!(State::parse(Some(" 2\n")), Some(State::InitWait));
        assert_eq!(State::parse(Some("8")), Some(State::Other));
        assert_eq!(State::parse(Some("x")), None);
        assert_eq!(State::parse(None), None);
        assert!(State::Closing > State::Connected);
        assert_eq!(State::InitWait.to_string(), "InitWait (2)");
    }

    #[test]
    fn errors_name_the_device_and_what_to_do() {
        let net = Device {
            name: "service",
            kind: DeviceKind::Net,
            id: 0,
        };
        assert_eq!(
            net.error(Cause::Missing {
                available: Vec::new()
            })
            .to_string(),
            "network device `service` (vif 0): is missing: the domain has no vif at all; \
             add it to the domain's xl config (`mirage-nix query xl` writes one)"
        );
        let disk = Device {
            name: "disk.img",
            kind: DeviceKind::Block,
            id: 51728,
        };
        assert_eq!(
            disk.error(Cause::Missing {
                available: alloc::vec!["51712".into()]
            })
            .to_string(),
            "block device `disk.img` (xvdb, vbd 51728): is missing: the domain has vbd 51712; \
             add it to the domain's xl config (`mirage-nix query xl` writes one)"
        );
        assert_eq!(
            disk.error(Cause::Stuck {
                last: Some(State::InitWait),
                wanted: State::Connected
            })
            .to_string(),
            "block device `disk.img` (xvdb, vbd 51728): its backend did not reach Connected (4) \
             in time; its state is InitWait (2)"
        );
        assert_eq!(
            net.error(Cause::NotDomU).to_string(),
            "network device `service`: this domain has no xenstore: devices need a domU \
             created by a toolstack (xl)"
        );
    }
}
