//! Boot arguments: the image's runtime keys, parsed from its argument list.
//!
//! The generator emits the keys reachable in the device graph as a `static` table of
//! [`KeySpec`]s; the target parses its argument list against it with [`BootArgs::parse`],
//! and the generated connect code reads values with the typed accessors
//! ([`BootArgs::string`], [`BootArgs::ipv4_prefix`], ...). Accepted forms are `--name=value`,
//! `--name value` and, for booleans, a bare `--name`; `-` and `_` are interchangeable in
//! names. A key given twice takes its last value. Every value is checked against its key's
//! kind, ranges included ([`KeyKind::Port`], [`KeyKind::IntIn`]), before the image connects
//! any device, so a bad value is exit status 64 naming the key, on every target.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use crate::ipv4::Ipv4Prefix;
use crate::outcome::exit;

/// A `KeySpec` declares one runtime key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The key's name, given as `--name`.
    pub name: &'static str,
    /// The key's type.
    pub kind: KeyKind,
    /// The value used when the key is not given; `None` makes the key optional.
    pub default: Option<&'static str>,
    /// One line saying what the key does, for `--help`.
    pub doc: &'static str,
}

/// A `KeyKind` is the type of a key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `true` or `false`; a bare `--name` means `true`.
    Bool,
    /// A signed 64-bit integer.
    Int,
    /// A signed 64-bit integer from the first bound to the second, inclusive.
    IntIn(i64, i64),
    /// A TCP or UDP port number, from 1 to 65535.
    Port,
    /// Any text.
    String,
    /// One of a fixed list of words.
    Enum(&'static [&'static str]),
    /// A dotted-quad IPv4 address.
    Ipv4Addr,
    /// An IPv4 address with a prefix length (see [`Ipv4Prefix`]).
    Ipv4Prefix,
}

impl KeyKind {
    /// `placeholder()` is how `--help` shows the value, such as `INT` or `error|warn`.
    pub fn placeholder(&self) -> String {
        // The fixed texts share one conversion (these are in every image).
        String::from(match self {
            Self::Bool => "true|false",
            Self::Int => "INT",
            Self::IntIn(min, max) => return alloc::format!("{min}..{max}"),
            Self::Port => "PORT",
            Self::String => "STRING",
            Self::Enum(words) => return words.join("|"),
            Self::Ipv4Addr => "IPV4",
            Self::Ipv4Prefix => "IPV4/LEN",
        })
    }

    /// `expected()` describes valid values, for error messages.
    pub fn expected(&self) -> String {
        String::from(match self {
            Self::Bool => "true or false",
            Self::Int => "an integer",
            Self::IntIn(min, max) => return alloc::format!("an integer from {min} to {max}"),
            Self::Port => "a port number from 1 to 65535",
            Self::String => "a string",
            Self::Enum(words) => return alloc::format!("one of {}", words.join(", ")),
            Self::Ipv4Addr => "an IPv4 address such as 10.0.0.1",
            Self::Ipv4Prefix => "an IPv4 address with a prefix length such as 10.0.0.2/24",
        })
    }

    /// `parse(text)` is `text` as a value of this kind.
    fn parse(&self, text: &str) -> Option<Value> {
        Some(match self {
            Self::Bool => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return None,
            },
            // One integer parse for the three integer kinds (it is in every image).
            Self::Int | Self::IntIn(..) | Self::Port => {
                let (min, max) = match *self {
                    Self::IntIn(min, max) => (min, max),
                    Self::Port => (1, 65535),
                    _ => (i64::MIN, i64::MAX),
                };
                Value::Int(text.parse().ok().filter(|n| (min..=max).contains(n))?)
            }
            Self::String => Value::String(text.to_string()),
            Self::Enum(words) => Value::Enum(words.iter().find(|w| **w == text)?),
            Self::Ipv4Addr => Value::Ipv4Addr(text.parse().ok()?),
            Self::Ipv4Prefix => Value::Ipv4Prefix(text.parse().ok()?),
        })
    }
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Int(i64),
    String(String),
    Enum(&'static str),
    Ipv4Addr(Ipv4Addr),
    Ipv4Prefix(Ipv4Prefix),
}

/// `ArgError` is why the boot arguments were refused, or that help was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// `--help` was given.
    Help,
    /// A `--name` that is no key of this image.
    Unknown {
        /// The name as given, without dashes.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A value that does not parse as the key's kind.
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What was expected, from [`KeyKind::expected`].
        expected: String,
    },
    /// A non-boolean key given last with no value.
    MissingValue {
        /// The key.
        key: &'static str,
        /// What was expected, from [`KeyKind::expected`].
        expected: String,
    },
    /// An argument that is not a `--key`.
    Unexpected {
        /// The argument as given.
        arg: String,
    },
    /// A key's declared default does not parse: a bug in the generated key table.
    BadDefault {
        /// The key.
        key: &'static str,
        /// The declared default.
        value: &'static str,
    },
}

impl ArgError {
    /// `exit_code()` is the status to exit with: 63 for help, 64 for bad arguments.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Help => exit::HELP,
            _ => exit::BAD_ARGUMENTS,
        }
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help => f.write_str("help was requested"),
            Self::Unknown { key, suggestion } => {
                write!(f, "unknown key `--{key}`")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `--{s}`?"),
                    None => Ok(()),
                }
            }
            Self::BadValue {
                key,
                value,
                expected,
            } => write!(f, "invalid value `{value}` for `--{key}`: expected {expected}"),
            Self::MissingValue { key, expected } => {
                write!(f, "`--{key}` needs a value: expected {expected}")
            }
            Self::Unexpected { arg } => write!(
                f,
                "unexpected argument `{arg}`: keys are given as `--name=value`"
            ),
            Self::BadDefault { key, value } => write!(
                f,
                "the default `{value}` of `--{key}` does not parse (a bug in the generated key table)"
            ),
        }
    }
}

impl core::error::Error for ArgError {}

/// `BootArgs` is the value of every runtime key of an image, parsed or defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootArgs {
    specs: &'static [KeySpec],
    values: Vec<Option<Value>>,
}

/// `same_name(a, b)` compares key names with `-` and `_` equal.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |c: char| if c == '_' { '-' } else { c };
    a.len() == b.len() && a.chars().map(norm).eq(b.chars().map(norm))
}

/// `distance(a, b)` is the edit distance between `a` and `b`, counted in bytes: key names
/// are ASCII, and a non-ASCII character only weighs more (no decoding in every image).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = diag + usize::from(ca != *cb);
            diag = row[j + 1];
            row[j + 1] = sub.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `closest(specs, name)` is the known key nearest to `name`, if near enough to be a typo.
fn closest(specs: &[KeySpec], name: &str) -> Option<&'static str> {
    specs
        .iter()
        .map(|s| (distance(name, s.name), s.name))
        .filter(|(d, key)| *d <= 2.max(key.len() / 3) || key.starts_with(name))
        .min_by_key(|(d, _)| *d)
        .map(|(_, key)| key)
}

impl BootArgs {
    /// `parse(specs, args)` is the value of each key in `specs`, taken from `args` (the
    /// arguments after the program name) or from the key's default.
    pub fn parse<S: AsRef<str>>(
        specs: &'static [KeySpec],
        args: impl IntoIterator<Item = S>,
    ) -> Result<BootArgs, ArgError> {
        let mut given: Vec<Option<String>> = specs.iter().map(|_| None).collect();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let arg = arg.as_ref();
            if matches!(arg, "--help" | "-help" | "-h") {
                return Err(ArgError::Help);
            }
            let Some(body) = arg.strip_prefix("--").filter(|b| !b.is_empty()) else {
                return Err(ArgError::Unexpected { arg: arg.into() });
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(i) = specs.iter().position(|s| same_name(s.name, name)) else {
                return Err(ArgError::Unknown {
                    key: name.into(),
                    suggestion: closest(specs, name),
                });
            };
            let spec = &specs[i];
            let value = match inline {
                Some(v) => v.to_string(),
                None if spec.kind == KeyKind::Bool => {
                    let explicit = args
                        .next_if(|a| matches!(a.as_ref(), "true" | "false"))
                        .map(|a| a.as_ref().to_string());
                    explicit.unwrap_or_else(|| "true".into())
                }
                None => match args.next_if(|a| !a.as_ref().starts_with("--")) {
                    Some(v) => v.as_ref().to_string(),
                    None => {
                        return Err(ArgError::MissingValue {
                            key: spec.name,
                            expected: spec.kind.expected(),
                        })
                    }
                },
            };
            given[i] = Some(value);
        }
        let mut values = Vec::with_capacity(specs.len());
        for (spec, given) in specs.iter().zip(given) {
            let value = match (given, spec.default) {
                (Some(text), _) => {
                    Some(spec.kind.parse(&text).ok_or_else(|| ArgError::BadValue {
                        key: spec.name,
                        expected: spec.kind.expected(),
                        value: text,
                    })?)
                }
                (None, Some(default)) => {
                    Some(spec.kind.parse(default).ok_or(ArgError::BadDefault {
                        key: spec.name,
                        value: default,
                    })?)
                }
                (None, None) => None,
            };
            values.push(value);
        }
        Ok(BootArgs { specs, values })
    }

    /// `specs()` is the key table the arguments were parsed against.
    pub fn specs(&self) -> &'static [KeySpec] {
        self.specs
    }

    fn index(&self, name: &str) -> usize {
        let i = self.specs.iter().position(|s| s.name == name);
        i.unwrap_or_else(|| panic!("`{name}` is not a runtime key of this image"))
    }

    fn spec(&self, name: &str) -> &KeySpec {
        &self.specs[self.index(name)]
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.values[self.index(name)].as_ref()
    }

    fn missing(name: &str, kind: &str) -> ! {
        panic!(
            "runtime key `{name}` is not a {kind} key with a default (a bug in the generated code)"
        )
    }

    /// `bool(name)` is the value of the boolean key `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not a boolean key with a default: the generated code guarantees it is.
    pub fn bool(&self, name: &str) -> bool {
        match self.value(name) {
            Some(Value::Bool(b)) => *b,
            _ => Self::missing(name, "bool"),
        }
    }

    /// `int(name)` is the value of the integer key `name` (a port key's too).
    ///
    /// # Panics
    ///
    /// If `name` is not an integer key with a default: the generated code guarantees it is.
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(Value::Int(n)) => *n,
            _ => Self::missing(name, "int"),
        }
    }

    /// `port(name)` is the value of the port key `name`, from 1 to 65535.
    ///
    /// # Panics
    ///
    /// If `name` is not a port key with a default: the generated code guarantees it is.
    pub fn port(&self, name: &str) -> u16 {
        match (self.spec(name).kind, self.value(name)) {
            (KeyKind::Port, Some(Value::Int(n))) => match u16::try_from(*n) {
                Ok(p) if p != 0 => p,
                _ => Self::missing(name, "port"),
            },
            _ => Self::missing(name, "port"),
        }
    }

    /// `string(name)` is the value of the string key `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not a string key with a default: the generated code guarantees it is.
    pub fn string(&self, name: &str) -> String {
        match self.value(name) {
            Some(Value::String(s)) => s.clone(),
            _ => Self::missing(name, "string"),
        }
    }

    /// `enum_(name)` is the value of the enumeration key `name`, one of its declared words.
    ///
    /// # Panics
    ///
    /// If `name` is not an enumeration key with a default: the generated code guarantees it
    /// is.
    pub fn enum_(&self, name: &str) -> &'static str {
        match self.value(name) {
            Some(Value::Enum(word)) => word,
            _ => Self::missing(name, "enum"),
        }
    }

    /// `ipv4_addr(name)` is the value of the IPv4 address key `name`, `None` if it was not
    /// given and has no default.
    ///
    /// # Panics
    ///
    /// If `name` is not an IPv4 address key: the generated code guarantees it is.
    pub fn ipv4_addr(&self, name: &str) -> Option<Ipv4Addr> {
        match self.value(name) {
            Some(Value::Ipv4Addr(a)) => Some(*a),
            None => None,
            _ => Self::missing(name, "IPv4 address"),
        }
    }

    /// `ipv4_prefix(name)` is the value of the IPv4 prefix key `name`, `None` if it was not
    /// given and has no default.
    ///
    /// # Panics
    ///
    /// If `name` is not an IPv4 prefix key: the generated code guarantees it is.
    pub fn ipv4_prefix(&self, name: &str) -> Option<Ipv4Prefix> {
        match self.value(name) {
            Some(Value::Ipv4Prefix(p)) => Some(*p),
            None => None,
            _ => Self::missing(name, "IPv4 prefix"),
        }
    }
}

/// `usage(name, specs)` is the `--help` text of image `name`: every key with its type,
/// default and doc line, and the exit codes.
pub fn usage(name: &str, specs: &[KeySpec]) -> String {
    // Pieces of text joined once, not `writeln!`s nor a push each: this is in every image.
    let placeholders: Vec<String> = specs.iter().map(|s| s.kind.placeholder()).collect();
    let mut pieces = alloc::vec!["usage: ", name, " [--KEY=VALUE]...\n\n"];
    pieces.push(if specs.is_empty() {
        "This image has no runtime keys.\n"
    } else {
        "Runtime keys:\n"
    });
    for (spec, placeholder) in specs.iter().zip(&placeholders) {
        let (open, close) = match spec.kind {
            KeyKind::Bool => ("[=", "]"),
            _ => ("=", ""),
        };
        pieces.extend([
            "  --",
            spec.name,
            open,
            placeholder,
            close,
            "\n      ",
            spec.doc,
        ]);
        match spec.default {
            Some(d) => pieces.extend([" (default: ", d, ")\n"]),
            None => pieces.push(" (optional)\n"),
        }
    }
    pieces.extend([
        "  --help\n      Show this help and exit.\n\n",
        EXIT_STATUSES,
    ]);
    pieces.concat()
}

/// The usage's last line: [`exit`]'s codes (a test checks them), written out so that every
/// image need not format `i32`s for it.
const EXIT_STATUSES: &str =
    "Exit status: 0 on success, 1 on failure, 63 after --help, 64 on bad arguments.\n";

#[cfg(test)]
mod tests {
    use super::*;

    static LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
    static SPECS: &[KeySpec] = &[
        KeySpec {
            name: "hello",
            kind: KeyKind::String,
            default: Some("Hello World!"),
            doc: "The message to log.",
        },
        KeySpec {
            name: "logs",
            kind: KeyKind::Enum(LEVELS),
            default: Some("info"),
            doc: "The log level.",
        },
        KeySpec {
            name: "dhcp",
            kind: KeyKind::Bool,
            default: Some("false"),
            doc: "Use DHCP.",
        },
        KeySpec {
            name: "n",
            kind: KeyKind::Int,
            default: Some("4"),
            doc: "Count.",
        },
        KeySpec {
            name: "ipv4",
            kind: KeyKind::Ipv4Prefix,
            default: Some("10.0.0.2/24"),
            doc: "Address.",
        },
        KeySpec {
            name: "ipv4-gateway",
            kind: KeyKind::Ipv4Addr,
            default: None,
            doc: "Gateway.",
        },
        KeySpec {
            name: "port",
            kind: KeyKind::Port,
            default: Some("8080"),
            doc: "Port.",
        },
        KeySpec {
            name: "workers",
            kind: KeyKind::IntIn(1, 64),
            default: Some("4"),
            doc: "Workers.",
        },
    ];

    fn parse(args: &[&str]) -> Result<BootArgs, ArgError> {
        BootArgs::parse(SPECS, args.iter())
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.string("hello"), "Hello World!");
        assert_eq!(a.enum_("logs"), "info");
        assert!(!a.bool("dhcp"));
        assert_eq!(a.int("n"), 4);
        assert_eq!(a.ipv4_prefix("ipv4"), "10.0.0.2/24".parse().ok());
        assert_eq!(a.ipv4_addr("ipv4-gateway"), None);
    }

    #[test]
    fn all_forms() {
        let a = parse(&[
            "--hello=hi there",
            "--logs",
            "debug",
            "--dhcp",
            "--n=-3",
            "--ipv4_gateway",
            "10.0.0.1",
            "--ipv4=192.168.1.5/16",
        ])
        .unwrap();
        assert_eq!(a.string("hello"), "hi there");
        assert_eq!(a.enum_("logs"), "debug");
        assert!(a.bool("dhcp"));
        assert_eq!(a.int("n"), -3);
        assert_eq!(
            a.ipv4_addr("ipv4-gateway"),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(a.ipv4_prefix("ipv4").unwrap().prefix_len(), 16);
        assert!(!parse(&["--dhcp", "false"]).unwrap().bool("dhcp"));
        assert!(!parse(&["--dhcp=false"]).unwrap().bool("dhcp"));
        assert_eq!(parse(&["--n=1", "--n=2"]).unwrap().int("n"), 2);
        assert_eq!(parse(&["--hello="]).unwrap().string("hello"), "");
    }

    #[test]
    fn help_and_exit_codes() {
        assert_eq!(parse(&["--n=1", "--help"]), Err(ArgError::Help));
        assert_eq!(ArgError::Help.exit_code(), 63);
        assert_eq!(parse(&["-h"]), Err(ArgError::Help));
        assert_eq!(parse(&["--nope"]).unwrap_err().exit_code(), 64);
    }

    #[test]
    fn errors_name_the_key_value_and_form() {
        let e = parse(&["--logs=loud"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value `loud` for `--logs`: expected one of error, warn, info, debug, trace"
        );
        let e = parse(&["--ipv4=10.0.0.2"]).unwrap_err();
        assert!(e.to_string().contains("`10.0.0.2` for `--ipv4`"), "{e}");
        assert!(e.to_string().contains("10.0.0.2/24"), "{e}");
        let e = parse(&["--n", "many"]).unwrap_err();
        assert!(e
            .to_string()
            .contains("`many` for `--n`: expected an integer"));
        assert_eq!(
            parse(&["--dhcp=yes"]).unwrap_err().to_string(),
            "invalid value `yes` for `--dhcp`: expected true or false"
        );
        assert_eq!(
            parse(&["--helo=x"]).unwrap_err().to_string(),
            "unknown key `--helo`; did you mean `--hello`?"
        );
        assert_eq!(
            parse(&["--ipv4-gatway=1.2.3.4"]).unwrap_err(),
            ArgError::Unknown {
                key: "ipv4-gatway".into(),
                suggestion: Some("ipv4-gateway")
            }
        );
        assert_eq!(
            parse(&["--zzzzzzzz"]).unwrap_err().to_string(),
            "unknown key `--zzzzzzzz`"
        );
        assert_eq!(
            parse(&["--hello"]).unwrap_err().to_string(),
            "`--hello` needs a value: expected a string"
        );
        assert!(matches!(
            parse(&["--hello", "--dhcp"]),
            Err(ArgError::MissingValue { key: "hello", .. })
        ));
        assert_eq!(
            parse(&["hello"]).unwrap_err(),
            ArgError::Unexpected {
                arg: "hello".into()
            }
        );
        assert!(matches!(parse(&["--"]), Err(ArgError::Unexpected { .. })));
    }

    #[test]
    fn ports_and_ranges_are_checked_when_parsing() {
        let a = parse(&["--port=443", "--workers", "64"]).unwrap();
        assert_eq!(a.port("port"), 443);
        assert_eq!(a.int("port"), 443);
        assert_eq!(a.int("workers"), 64);
        assert_eq!(parse(&[]).unwrap().port("port"), 8080);
        for bad in [
            "--port=99999999",
            "--port=-1",
            "--port=0",
            "--port=65536",
            "--port=http",
        ] {
            let e = parse(&[bad]).unwrap_err();
            assert_eq!(e.exit_code(), 64, "{bad}");
            assert!(
                e.to_string()
                    .contains("for `--port`: expected a port number from 1 to 65535"),
                "{bad}: {e}"
            );
        }
        let e = parse(&["--workers=0"]).unwrap_err();
        assert!(e.to_string().contains("an integer from 1 to 64"), "{e}");
        assert!(usage("x", SPECS).contains("--workers=1..64"));
    }

    #[test]
    fn bad_default_is_reported() {
        static BAD: &[KeySpec] = &[KeySpec {
            name: "n",
            kind: KeyKind::Int,
            default: Some("four"),
            doc: "",
        }];
        assert_eq!(
            BootArgs::parse(BAD, [""; 0]),
            Err(ArgError::BadDefault {
                key: "n",
                value: "four"
            })
        );
    }

    #[test]
    fn usage_gives_the_exit_statuses_of_the_exit_module() {
        let line = alloc::format!(
            "Exit status: {} on success, {} on failure, {} after --help, {} on bad arguments.\n",
            exit::SUCCESS,
            exit::FAILURE,
            exit::HELP,
            exit::BAD_ARGUMENTS
        );
        assert_eq!(EXIT_STATUSES, line);
        assert!(usage("hello", SPECS).ends_with(&line));
    }

    #[test]
    fn usage_lists_every_key() {
        let text = usage("hello", SPECS);
        assert!(text.starts_with("usage: hello [--KEY=VALUE]...\n"));
        assert!(text.contains(
            "  --logs=error|warn|info|debug|trace\n      The log level. (default: info)\n"
        ));
        assert!(text.contains("  --dhcp[=true|false]\n      Use DHCP. (default: false)\n"));
        assert!(text.contains("  --ipv4-gateway=IPV4\n      Gateway. (optional)\n"));
        assert!(text.contains("63 after --help, 64 on bad arguments"));
    }

    #[test]
    #[should_panic(expected = "not a runtime key")]
    fn accessor_on_unknown_key_is_a_bug() {
        parse(&[]).unwrap().int("missing");
    }
}
