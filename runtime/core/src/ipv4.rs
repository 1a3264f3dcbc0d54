//! `Ipv4Prefix`: an IPv4 address with a prefix length, the value of keys such as
//! `--ipv4=10.0.0.2/24`.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// An `Ipv4Prefix` is an interface address and the length of its network prefix, as
/// Mirage's `Ipaddr.V4.Prefix` for `--ipv4`: `10.0.0.2/24` is host `10.0.0.2` on network
/// `10.0.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    address: Ipv4Addr,
    len: u8,
}

/// `PrefixError` is why text is not an IPv4 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// There is no `/` between the address and the length.
    MissingLength,
    /// The address part is not a dotted-quad IPv4 address.
    BadAddress,
    /// The length is not a number from 0 to 32.
    BadLength,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingLength => "missing `/length`",
            Self::BadAddress => "not an IPv4 address",
            Self::BadLength => "the prefix length is not 0 to 32",
        })
    }
}

impl core::error::Error for PrefixError {}

impl Ipv4Prefix {
    /// `new(address, len)` is `address/len`, or `None` if `len` exceeds 32.
    pub const fn new(address: Ipv4Addr, len: u8) -> Option<Ipv4Prefix> {
        if len > 32 {
            None
        } else {
            Some(Ipv4Prefix { address, len })
        }
    }

    /// `address()` is the interface address.
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// `prefix_len()` is the number of leading network bits.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// `netmask()` is the mask of the network bits, such as `255.255.255.0` for `/24`.
    pub const fn netmask(&self) -> Ipv4Addr {
        let bits = match self.len {
            0 => 0,
            n => u32::MAX << (32 - n),
        };
        Ipv4Addr::from_bits(bits)
    }

    /// `network()` is the network address, such as `10.0.0.0` for `10.0.0.2/24`.
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() & self.netmask().to_bits())
    }

    /// `broadcast()` is the network's broadcast address, such as `10.0.0.255` for `/24`.
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() | !self.netmask().to_bits())
    }

    /// `contains(ip)` is true if `ip` is on this network.
    pub const fn contains(&self, ip: Ipv4Addr) -> bool {
        ip.to_bits() & self.netmask().to_bits() == self.network().to_bits()
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (addr, len) = s.split_once('/').ok_or(PrefixError::MissingLength)?;
        let address = addr.parse().map_err(|_| PrefixError::BadAddress)?;
        let digits = !len.is_empty() && len.len() <= 2 && len.bytes().all(|b| b.is_ascii_digit());
        let len: u8 = digits
            .then(|| len.parse().ok())
            .flatten()
            .ok_or(PrefixError::BadLength)?;
        Ipv4Prefix::new(address, len).ok_or(PrefixError::BadLength)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes() {
        let p: Ipv4Prefix = "10.0.0.2/24".parse().unwrap();
        assert_eq!(p.address(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.prefix_len(), 24);
        assert_eq!(p.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(p.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(p.broadcast(), Ipv4Addr::new(10, 0, 0, 255));
        assert!(p.contains(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!p.contains(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(p.to_string(), "10.0.0.2/24");
        let all: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(
            "10.0.0.2".parse::<Ipv4Prefix>(),
            Err(PrefixError::MissingLength)
        );
        assert_eq!(
            "10.0.0/24".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress)
        );
        assert_eq!(
            "10.0.0.2/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "10.0.0.2/+4".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
        assert_eq!(
            "10.0.0.2/".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength)
        );
    }
}
