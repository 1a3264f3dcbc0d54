//! Splitting a boot command line (the Xen domain's, the Solo5 tender's arguments) into words.
//!
//! Xen, QEMU and the Solo5 tenders hand the image one string. Words are separated by blanks; a word may hold
//! blanks inside single quotes (taken literally), inside double quotes (where `\"` and `\\`
//! escape), or after a backslash, so that `--hello="Hello from Xen"` and
//! `--hello=Hello\ from\ Xen` (what `printf %q` writes) both give one argument.

use alloc::string::String;
use alloc::vec::Vec;

/// `lossy(bytes)` is `bytes` (a command line, a manifest's device name) as text, each
/// invalid UTF-8 sequence replaced by U+FFFD as `String::from_utf8_lossy` does, but with the
/// validator every image has anyway instead of a decoder of its own (a kilobyte of each).
pub fn lossy(mut bytes: &[u8]) -> String {
    let mut text = Vec::with_capacity(bytes.len());
    while let Err(e) = core::str::from_utf8(bytes) {
        let (valid, rest) = bytes.split_at(e.valid_up_to());
        text.extend_from_slice(valid);
        text.extend_from_slice("\u{fffd}".as_bytes());
        bytes = rest
            .get(e.error_len().unwrap_or(rest.len())..)
            .unwrap_or(&[]);
    }
    text.extend_from_slice(bytes);
    // Valid UTF-8 pieces and replacement characters: valid UTF-8.
    String::from_utf8(text).unwrap_or_default()
}

/// `split(line)` is the words of `line`, quotes and escapes removed.
///
/// It works on bytes: every byte it removes or looks for is ASCII, which never occurs inside
/// a multi-byte UTF-8 sequence, so each word stays valid UTF-8 (and no character encoder is
/// inlined at each place a byte is kept: this is in every image).
pub fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = Vec::new();
    let mut in_word = false;
    let mut bytes = line.bytes();
    let finish = |word: &mut Vec<u8>| String::from_utf8(core::mem::take(word)).unwrap_or_default();
    while let Some(b) = bytes.next() {
        match b {
            b if b.is_ascii_whitespace() => {
                if in_word {
                    words.push(finish(&mut word));
                    in_word = false;
                }
            }
            b'\'' => {
                in_word = true;
                for b in bytes.by_ref() {
                    if b == b'\'' {
                        break;
                    }
                    word.push(b);
                }
            }
            b'"' => {
                in_word = true;
                while let Some(b) = bytes.next() {
                    match b {
                        b'"' => break,
                        b'\\' => match bytes.next() {
                            Some(e @ (b'"' | b'\\')) => word.push(e),
                            Some(other) => word.extend_from_slice(&[b'\\', other]),
                            None => word.push(b'\\'),
                        },
                        b => word.push(b),
                    }
                }
            }
            b'\\' => {
                in_word = true;
                if let Some(b) = bytes.next() {
                    word.push(b);
                }
            }
            b => {
                in_word = true;
                word.push(b);
            }
        }
    }
    if in_word {
        words.push(finish(&mut word));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split("  --a=1   --b "), ["--a=1", "--b"]);
        assert_eq!(
            split("--hello=\"Hello from Xen\" x"),
            ["--hello=Hello from Xen", "x"]
        );
        assert_eq!(split("--hello='it is \"so\"'"), ["--hello=it is \"so\""]);
        assert_eq!(
            split(r"--hello=Hello\ from\ the\ xen\ image"),
            ["--hello=Hello from the xen image"]
        );
        assert_eq!(split(r#"--q="a\"b\\c\d""#), [r#"--q=a"b\c\d"#]);
        assert_eq!(split("''"), [""]);
    }

    #[test]
    fn words_keep_their_non_ascii_characters() {
        assert_eq!(
            split("--hello=Grüße 'né  ✓' \"\\é\" \\€x"),
            ["--hello=Grüße", "né  ✓", "\\é", "€x"]
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_as_from_utf8_lossy_does() {
        for bytes in [
            &b"--hello=Hi"[..],
            b"",
            b"a\xffb",
            b"\xf0\x9f\x98",
            b"x\xe2\x82y\xc3\xa9\xed\xa0\x80z",
            b"\xc3",
            b"ok \xf0\x9f\x98\x80 \xff\xfe",
        ] {
            assert_eq!(lossy(bytes), String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }
}
