//! Keys: typed, documented parameters that specialise a unikernel.
//!
//! A key is Functoria's `Key.t`: a name, a [`KeyType`], a default, a doc line and a
//! [`Stage`]. Configure keys are fixed when the plan is made: they choose graph branches and
//! are compiled in as constants. Runtime keys are declared in the plan and parsed from the
//! image's boot arguments. The target (`-t/--target`) is a configure key like any other.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// When a key's value is fixed.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// At `mirage-nix configure`: baked into the plan, may choose graph branches.
    Configure,
    /// At boot: parsed from the image's arguments.
    Runtime,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Configure => "configure",
            Stage::Runtime => "runtime",
        })
    }
}

/// The type of a key's values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `true` or `false`; a bare `--flag` means true.
    Bool,
    /// A signed 64-bit integer between `min` and `max` (inclusive), `i64::MIN` and `i64::MAX`
    /// when the declaration gives no `range`.
    Int {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// A TCP or UDP port number: an integer from 1 to 65535 (`u16` in Rust).
    Port,
    /// Any UTF-8 text.
    String,
    /// One of a fixed list of words.
    Enum(Vec<String>),
    /// An IPv4 address such as `10.0.0.1`.
    Ipv4Address,
    /// An IPv4 address with a prefix length such as `10.0.0.2/24`.
    Ipv4Prefix,
}

impl KeyType {
    /// The name used in `unikernel.toml` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            KeyType::Bool => "bool",
            KeyType::Int { .. } => "int",
            KeyType::Port => "port",
            KeyType::String => "string",
            KeyType::Enum(_) => "enum",
            KeyType::Ipv4Address => "ipv4-address",
            KeyType::Ipv4Prefix => "ipv4-prefix",
        }
    }

    /// Every type name, as written in configs and plans.
    pub const NAMES: [&'static str; 7] = [
        "bool",
        "int",
        "port",
        "string",
        "enum",
        "ipv4-address",
        "ipv4-prefix",
    ];

    /// An integer type with no bounds but its 64 bits.
    pub const INT: KeyType = KeyType::Int {
        min: i64::MIN,
        max: i64::MAX,
    };

    /// The range of an integer type narrower than 64 bits, as declared (`range = [MIN, MAX]`).
    pub fn range(&self) -> Option<(i64, i64)> {
        match self {
            KeyType::Int { min, max } if (*min, *max) != (i64::MIN, i64::MAX) => Some((*min, *max)),
            _ => None,
        }
    }

    /// The type of a name as written in configs and plans (enums take their words, integers
    /// their range).
    pub fn from_name(name: &str, values: &[String], range: Option<(i64, i64)>) -> Option<KeyType> {
        if range.is_some() && name != "int" {
            return None;
        }
        Some(match name {
            "bool" => KeyType::Bool,
            "int" => match range {
                None => KeyType::INT,
                Some((min, max)) if min <= max => KeyType::Int { min, max },
                Some(_) => return None,
            },
            "port" => KeyType::Port,
            "string" => KeyType::String,
            "enum" if !values.is_empty() => KeyType::Enum(values.to_vec()),
            "ipv4-address" => KeyType::Ipv4Address,
            "ipv4-prefix" => KeyType::Ipv4Prefix,
            _ => return None,
        })
    }

    /// What a valid value looks like, for error messages and `--help`.
    pub fn expected(&self) -> String {
        match self {
            KeyType::Bool => "true or false".into(),
            KeyType::Int { .. } => match self.range() {
                None => "an integer".into(),
                Some((min, max)) => format!("an integer from {min} to {max}"),
            },
            KeyType::Port => "a port number from 1 to 65535".into(),
            KeyType::String => "a string".into(),
            KeyType::Enum(vs) => format!("one of {}", vs.join(", ")),
            KeyType::Ipv4Address => "an IPv4 address like 10.0.0.1".into(),
            KeyType::Ipv4Prefix => "an IPv4 address with a prefix length like 10.0.0.2/24".into(),
        }
    }

    /// The value placeholder shown in `--help`.
    pub fn placeholder(&self) -> String {
        match self {
            KeyType::Bool => "BOOL".into(),
            KeyType::Int { .. } => match self.range() {
                None => "INT".into(),
                Some((min, max)) => format!("{min}..{max}"),
            },
            KeyType::Port => "PORT".into(),
            KeyType::String => "STRING".into(),
            KeyType::Enum(vs) => vs.join("|"),
            KeyType::Ipv4Address => "IPV4".into(),
            KeyType::Ipv4Prefix => "IPV4/LEN".into(),
        }
    }

    /// Parses a value written as text (on the command line or in a config) into its canonical form.
    ///
    /// `none` is accepted for address types, meaning "no address".
    pub fn parse(&self, text: &str) -> Result<KeyValue, String> {
        let bad = || format!("`{text}` is not {}", self.expected());
        match self {
            KeyType::Bool => match text {
                "true" => Ok(KeyValue::Bool(true)),
                "false" => Ok(KeyValue::Bool(false)),
                _ => Err(bad()),
            },
            KeyType::Int { min, max } => text
                .parse()
                .ok()
                .filter(|i| (*min..=*max).contains(i))
                .map(KeyValue::Int)
                .ok_or_else(bad),
            KeyType::Port => text
                .parse()
                .ok()
                .filter(|i| (1..=65535).contains(i))
                .map(KeyValue::Int)
                .ok_or_else(bad),
            KeyType::String => Ok(KeyValue::String(text.to_string())),
            KeyType::Enum(vs) => {
                if vs.iter().any(|v| v == text) {
                    Ok(KeyValue::String(text.to_string()))
                } else {
                    Err(format!(
                        "`{text}` is not {}{}",
                        self.expected(),
                        crate::diag::did_you_mean(text, vs.iter().map(String::as_str))
                    ))
                }
            }
            KeyType::Ipv4Address | KeyType::Ipv4Prefix if text == "none" => Ok(KeyValue::None),
            KeyType::Ipv4Address => parse_ipv4(text).map(KeyValue::Ipv4).ok_or_else(bad),
            KeyType::Ipv4Prefix => {
                let (addr, len) = text.split_once('/').ok_or_else(|| {
                    format!(
                        "`{text}` has no prefix length: expected {}",
                        self.expected()
                    )
                })?;
                let addr = parse_ipv4(addr).ok_or_else(bad)?;
                let len: u8 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
                    format!("`{len}` is not a prefix length between 0 and 32 in `{text}`")
                })?;
                Ok(KeyValue::Ipv4Prefix(addr, len))
            }
        }
    }

    /// Checks that a value read from TOML has this type, converting it to canonical form.
    pub fn from_toml(&self, value: &toml::Value) -> Result<KeyValue, String> {
        match (self, value) {
            (KeyType::Bool, toml::Value::Boolean(b)) => Ok(KeyValue::Bool(*b)),
            (KeyType::Int { .. } | KeyType::Port, toml::Value::Integer(i)) => {
                self.parse(&i.to_string())
            }
            (_, toml::Value::String(s))
                if !matches!(self, KeyType::Bool | KeyType::Int { .. } | KeyType::Port) =>
            {
                self.parse(s)
            }
            _ => Err(format!(
                "expected {} for a {} key, found {}",
                self.expected(),
                self.name(),
                toml_kind(value)
            )),
        }
    }
}

/// How a TOML value is described in messages.
pub fn toml_kind(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    // Ipv4Addr's parser accepts only the dotted-quad form, which is what we want.
    text.parse().ok()
}

/// A key's value in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string or an enum word.
    String(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv4 address and prefix length.
    Ipv4Prefix(Ipv4Addr, u8),
    /// No value (an address key set to `none`).
    None,
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Bool(b) => write!(f, "{b}"),
            KeyValue::Int(i) => write!(f, "{i}"),
            KeyValue::String(s) => f.write_str(s),
            KeyValue::Ipv4(a) => write!(f, "{a}"),
            KeyValue::Ipv4Prefix(a, l) => write!(f, "{a}/{l}"),
            KeyValue::None => f.write_str("none"),
        }
    }
}

impl KeyValue {
    /// The value as a plan's JSON value: booleans and integers stay typed, the rest is text.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KeyValue::Bool(b) => (*b).into(),
            KeyValue::Int(i) => (*i).into(),
            other => other.to_string().into(),
        }
    }
}

/// A key's default: one value, or one per target with a fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Default_ {
    /// No default: the key is unset unless given (address keys only).
    Unset,
    /// The same default on every target.
    Value(KeyValue),
    /// A default per target, with `_` as the fallback.
    PerTarget(BTreeMap<String, KeyValue>),
}

impl fmt::Display for Default_ {
    /// `10.0.0.1`, `unset`, or `socket on unix, direct elsewhere`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Default_::Unset => f.write_str("unset"),
            Default_::Value(v) => write!(f, "{v}"),
            Default_::PerTarget(m) => {
                let named = m
                    .iter()
                    .filter(|(t, _)| *t != "_")
                    .map(|(t, v)| format!("{v} on {t}"));
                let rest = m.get("_").map(|v| format!("{v} elsewhere"));
                f.write_str(&named.chain(rest).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

impl Default_ {
    /// The default that applies on `target`.
    pub fn for_target(&self, target: &str) -> Option<&KeyValue> {
        match self {
            Default_::Unset => None,
            Default_::Value(v) => Some(v),
            Default_::PerTarget(m) => m.get(target).or_else(|| m.get("_")),
        }
    }
}

/// A declared key.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's name, which is also its command-line flag (`--name`).
    pub name: String,
    /// The type of its values.
    pub ty: KeyType,
    /// Its default value.
    pub default: Default_,
    /// When its value is fixed.
    pub stage: Stage,
    /// One line saying what it does.
    pub doc: String,
    /// A short alias flag, such as `t` for `target`.
    pub short: Option<char>,
    /// Where it was declared.
    pub span: crate::diag::Span,
}

/// The name of the built-in key that selects the target.
pub const TARGET: &str = "target";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_reject_bad_lengths() {
        let t = KeyType::Ipv4Prefix;
        assert_eq!(t.parse("10.0.0.2/24").unwrap().to_string(), "10.0.0.2/24");
        assert!(t
            .parse("10.0.0.2/33")
            .unwrap_err()
            .contains("prefix length"));
        assert!(t
            .parse("10.0.0.2")
            .unwrap_err()
            .contains("no prefix length"));
        assert!(t.parse("10.0.0/24").is_err());
        assert_eq!(t.parse("none").unwrap(), KeyValue::None);
    }

    #[test]
    fn ports_and_ranges_bound_integers() {
        for bad in ["0", "-1", "65536", "99999999", "8080x", ""] {
            assert!(KeyType::Port.parse(bad).is_err(), "{bad}");
        }
        assert_eq!(KeyType::Port.parse("65535"), Ok(KeyValue::Int(65535)));
        let workers = KeyType::from_name("int", &[], Some((1, 64))).unwrap();
        assert_eq!(workers.range(), Some((1, 64)));
        assert!(workers.parse("0").unwrap_err().contains("from 1 to 64"));
        assert_eq!(workers.parse("64"), Ok(KeyValue::Int(64)));
        assert_eq!(KeyType::INT.range(), None);
        assert!(KeyType::from_name("int", &[], Some((2, 1))).is_none());
        assert!(KeyType::from_name("port", &[], Some((1, 2))).is_none());
    }

    #[test]
    fn enums_suggest_the_closest_word() {
        let t = KeyType::Enum(vec!["crunch".into(), "passthrough".into()]);
        let err = t.parse("crunh").unwrap_err();
        assert!(err.contains("did you mean `crunch`"), "{err}");
    }

    #[test]
    fn toml_values_are_type_checked() {
        assert_eq!(
            KeyType::INT.from_toml(&toml::Value::Integer(3)),
            Ok(KeyValue::Int(3))
        );
        assert!(KeyType::INT
            .from_toml(&toml::Value::String("3".into()))
            .is_err());
        assert!(KeyType::Port
            .from_toml(&toml::Value::Integer(65536))
            .is_err());
        assert!(KeyType::Bool
            .from_toml(&toml::Value::String("true".into()))
            .is_err());
    }
}
