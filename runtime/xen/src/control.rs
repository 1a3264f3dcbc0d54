//! The toolstack's control of the domain: `xl shutdown` and `xl reboot` write the request to
//! the domain's `control/shutdown` node and wait for the guest to acknowledge it (by writing
//! "") and go. A task of every domU watches that node from boot, having advertised in
//! `control/feature-poweroff` and `feature-reboot` that it will, so that `xl shutdown` ends a
//! unikernel cleanly instead of timing out. (Suspend is not offered: a unikernel's devices
//! would have to be set up again in the new domain.)

use crate::sys::{self, hypercall::Reason};
use crate::xenstore::{self, Watch};

const NODE: &str = "control/shutdown";

/// What a `control/shutdown` request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Stop (`poweroff`, or the older `halt`).
    Poweroff,
    /// Restart.
    Reboot,
}

/// `parse(value)` is the request a value of `control/shutdown` holds, if one this runtime
/// honours ("" means none, and `suspend` is not offered).
pub(crate) fn parse(value: &str) -> Option<Request> {
    match value.trim_ascii() {
        "poweroff" | "halt" => Some(Request::Poweroff),
        "reboot" => Some(Request::Reboot),
        _ => None,
    }
}

/// `watch()` advertises the requests this domain honours and honours them when they come;
/// it returns only if xenstore fails.
pub(crate) async fn watch() {
    for feature in ["control/feature-poweroff", "control/feature-reboot"] {
        if xenstore::write(0, feature, "1").await.is_err() {
            return;
        }
    }
    let Ok(watch) = Watch::new(NODE).await else {
        return;
    };
    loop {
        if let Ok(Some(value)) = xenstore::read_opt(NODE).await {
            if let Some(request) = parse(&value) {
                // Acknowledge, so the toolstack stops waiting for us, then go.
                let _ = xenstore::write(0, NODE, "").await;
                log::info!(target: "xen", "the toolstack asked for {value}: shutting down");
                sys::shutdown(match request {
                    Request::Poweroff => Reason::Poweroff,
                    Request::Reboot => Reason::Reboot,
                });
            }
        }
        if watch.changed(u64::MAX).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse("poweroff"), Some(Request::Poweroff));
        assert_eq!(parse("halt"), Some(Request::Poweroff));
        assert_eq!(parse("reboot\n"), Some(Request::Reboot));
        assert_eq!(parse(""), None);
        assert_eq!(parse("suspend"), None);
        assert_eq!(parse("crash"), None);
    }
}
