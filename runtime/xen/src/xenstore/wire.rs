//! The xenstore wire protocol (`public/io/xs_wire.h`, `docs/misc/xenstore.txt`): a 16-byte
//! header `{ type, req_id, tx_id, len }` (little-endian `u32`s) and a payload of at most
//! 4096 bytes, whose layout depends on the type.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The size of a message header.
pub(crate) const HEADER: usize = 16;
/// The largest payload xenstored accepts (`XENSTORE_PAYLOAD_MAX`); a larger one makes it
/// close the connection.
pub(crate) const MAX_PAYLOAD: usize = 4096;
/// The longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub(crate) const MAX_PATH: usize = 3072;

/// The message types this client uses (`enum xsd_sockmsg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Op {
    /// List a node's children.
    Directory = 1,
    /// Read a node.
    Read = 2,
    /// Watch a node and its descendants.
    Watch = 4,
    /// Stop watching.
    Unwatch = 5,
    /// Start a transaction.
    TransactionStart = 6,
    /// Commit or abort a transaction.
    TransactionEnd = 7,
    /// Write a node.
    Write = 11,
    /// Remove a node and its descendants.
    Rm = 13,
    /// A watch fired (from xenstored).
    WatchEvent = 15,
    /// A request failed (from xenstored).
    Error = 16,
}

impl Op {
    fn from_u32(v: u32) -> Option<Op> {
        Some(match v {
            1 => Op::Directory,
            2 => Op::Read,
            4 => Op::Watch,
            5 => Op::Unwatch,
            6 => Op::TransactionStart,
            7 => Op::TransactionEnd,
            11 => Op::Write,
            13 => Op::Rm,
            15 => Op::WatchEvent,
            16 => Op::Error,
            _ => return None,
        })
    }
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The message type, as sent (unknown types are kept to be reported).
    pub(crate) ty: u32,
    /// Matches a reply to its request.
    pub(crate) req_id: u32,
    /// The transaction (0: none).
    pub(crate) tx_id: u32,
    /// The payload's length.
    pub(crate) len: u32,
}

impl Header {
    /// `decode(bytes)` is the header in `bytes`.
    pub(crate) fn decode(bytes: &[u8; HEADER]) -> Header {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        }
    }

    /// `op()` is the message's type, if this client knows it.
    pub(crate) fn op(&self) -> Option<Op> {
        Op::from_u32(self.ty)
    }
}

/// `XsError` is why a xenstore operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered with this error (an errno name such as `ENOENT`).
    Errno(Errno),
    /// The request would exceed the protocol's limits (a payload over 4096 bytes, or a
    /// path over 3072); xenstored would drop the connection.
    TooLong,
    /// xenstored's reply did not parse, or had the wrong type.
    BadReply,
    /// The ring's indices are inconsistent: the connection is unusable.
    Broken,
    /// No reply came in time.
    Timeout,
    /// The domain has no xenstore (the initial domain, or no Xen).
    Unavailable,
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Errno(e) => write!(f, "xenstore error {e}"),
            Self::TooLong => f.write_str("xenstore request too long"),
            Self::BadReply => f.write_str("malformed xenstore reply"),
            Self::Broken => f.write_str("the xenstore ring is broken"),
            Self::Timeout => f.write_str("xenstore did not answer in time"),
            Self::Unavailable => f.write_str("this domain has no xenstore"),
        }
    }
}

impl core::error::Error for XsError {}

/// `Errno` is an error name xenstored sends (`xsd_errors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// No such node.
    Enoent,
    /// Permission denied.
    Eacces,
    /// Bad argument.
    Einval,
    /// The node exists.
    Eexist,
    /// The transaction conflicted: retry it.
    Eagain,
    /// A quota was exceeded.
    Equota,
    /// Too many transactions or watches, or the request is too big.
    E2big,
    /// Any other name.
    Other,
}

impl Errno {
    fn from_name(name: &[u8]) -> Errno {
        match name {
            b"ENOENT" => Errno::Enoent,
            b"EACCES" => Errno::Eacces,
            b"EINVAL" => Errno::Einval,
            b"EEXIST" => Errno::Eexist,
            b"EAGAIN" => Errno::Eagain,
            b"EQUOTA" => Errno::Equota,
            b"E2BIG" => Errno::E2big,
            _ => Errno::Other,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Errno::Enoent => "ENOENT (no such node)",
            Errno::Eacces => "EACCES (permission denied)",
            Errno::Einval => "EINVAL (invalid argument)",
            Errno::Eexist => "EEXIST (node exists)",
            Errno::Eagain => "EAGAIN (transaction conflict)",
            Errno::Equota => "EQUOTA (quota exceeded)",
            Errno::E2big => "E2BIG (too big)",
            Errno::Other => "(unknown errno)",
        })
    }
}

/// `encode(op, req_id, tx_id, parts)` is a request: the header, then `parts` concatenated
/// (the caller includes each NUL the payload needs), refused if over the protocol's limits.
pub(crate) fn encode(op: Op, req_id: u32, tx_id: u32, parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_PAYLOAD {
        return Err(XsError::TooLong);
    }
    let mut msg = Vec::with_capacity(HEADER + len);
    for word in [op as u32, req_id, tx_id, len as u32] {
        msg.extend_from_slice(&word.to_le_bytes());
    }
    for p in parts {
        msg.extend_from_slice(p);
    }
    Ok(msg)
}

/// `path_arg(path)` is `path` NUL-terminated, checked: no NUL inside, within the length limit.
pub(crate) fn path_arg(path: &str) -> Result<Vec<u8>, XsError> {
    if path.is_empty() || path.len() > MAX_PATH || path.contains('\0') {
        return Err(XsError::TooLong);
    }
    let mut v = Vec::with_capacity(path.len() + 1);
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    Ok(v)
}

/// `reply(header, payload, op)` is the payload of the reply to a request of type `op`, or the
/// error xenstored answered.
pub(crate) fn reply(header: &Header, payload: &[u8], op: Op) -> Result<Vec<u8>, XsError> {
    match header.op() {
        Some(Op::Error) => {
            let name = payload.split(|&b| b == 0).next().unwrap_or_default();
            Err(XsError::Errno(Errno::from_name(name)))
        }
        Some(got) if got == op => Ok(payload.to_vec()),
        _ => Err(XsError::BadReply),
    }
}

/// `text(payload)` is a READ reply's value as text.
pub(crate) fn text(payload: Vec<u8>) -> Result<String, XsError> {
    String::from_utf8(payload).map_err(|_| XsError::BadReply)
}

/// `children(payload)` is a DIRECTORY reply's child names.
pub(crate) fn children(payload: &[u8]) -> Result<Vec<String>, XsError> {
    payload
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8(name.to_vec()).map_err(|_| XsError::BadReply))
        .collect()
}

/// `watch_event(payload)` is a WATCH_EVENT's path and token.
pub(crate) fn watch_event(payload: &[u8]) -> Option<(String, String)> {
    let mut parts = payload.split(|&b| b == 0);
    let path = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let token = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((path, token))
}

/// `transaction_id(payload)` is a TRANSACTION_START reply's id.
pub(crate) fn transaction_id(payload: &[u8]) -> Result<u32, XsError> {
    let digits = payload.split(|&b| b == 0).next().unwrap_or_default();
    core::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&id| id != 0)
        .ok_or(XsError::BadReply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_xs_wire_says() {
        let path = path_arg("device/vif/0/state").unwrap();
        let msg = encode(Op::Write, 7, 3, &[&path, b"4"]).unwrap();
        assert_eq!(&msg[..4], &11u32.to_le_bytes());
        assert_eq!(&msg[4..8], &7u32.to_le_bytes());
        assert_eq!(&msg[8..12], &3u32.to_le_bytes());
        assert_eq!(&msg[12..16], &20u32.to_le_bytes());
        assert_eq!(&msg[16..], b"device/vif/0/state\x004");
        let header = Header::decode(msg[..16].try_into().unwrap());
        assert_eq!(
            header,
            Header {
                ty: 11,
                req_id: 7,
                tx_id: 3,
                len: 20
            }
        );
    }

    #[test]
    fn limits_are_enforced_before_sending() {
        let big = alloc::vec![b'a'; 4097];
        assert_eq!(encode(Op::Write, 1, 0, &[&big]), Err(XsError::TooLong));
        assert!(encode(Op::Write, 1, 0, &[&big[..4096]]).is_ok());
        assert_eq!(path_arg(""), Err(XsError::TooLong));
        assert_eq!(path_arg("a\0b"), Err(XsError::TooLong));
        assert_eq!(path_arg(&"p".repeat(3073)), Err(XsError::TooLong));
    }

    #[test]
    fn replies_and_errors_parse() {
        let h = |ty| Header {
            ty,
            req_id: 1,
            tx_id: 0,
            len: 0,
        };
        assert_eq!(
            reply(&h(2), b"00:16:3e:00:00:01", Op::Read).unwrap(),
            b"00:16:3e:00:00:01"
        );
        assert_eq!(
            reply(&h(16), b"ENOENT\0", Op::Read),
            Err(XsError::Errno(Errno::Enoent))
        );
        assert_eq!(
            reply(&h(16), b"EWHATEVER\0", Op::Read),
            Err(XsError::Errno(Errno::Other))
        );
        assert_eq!(reply(&h(11), b"OK\0", Op::Read), Err(XsError::BadReply));
        assert_eq!(children(b"0\x001\x0051712\0").unwrap(), ["0", "1", "51712"]);
        assert!(children(b"").unwrap().is_empty());
        assert_eq!(
            watch_event(b"backend/vif/1/0/state\0t3\0"),
            Some(("backend/vif/1/0/state".into(), "t3".into()))
        );
        assert_eq!(watch_event(b"nonul"), None);
        assert_eq!(transaction_id(b"42\0"), Ok(42));
        assert_eq!(transaction_id(b"0\0"), Err(XsError::BadReply));
        assert_eq!(transaction_id(b"x\0"), Err(XsError::BadReply));
        assert_eq!(text(alloc::vec![0xff]), Err(XsError::BadReply));
    }
}
