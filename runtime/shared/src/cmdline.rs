//! Splitting a boot command line (the Xen domain's, the Solo5 tender's arguments) into words.
//!
//! Xen, QEMU and the Solo5 tenders hand the image one string. Words are separated by blanks; a word may hold
//! blanks inside single quotes (taken literally), inside double quotes (where `\"` and `\\`
//! escape), or after a backslash, so that `--hello="Hello from Xen"` and
//! `--hello=Hello\ from\ Xen` (what `printf %q` writes) both give one argument.

use alloc::string::String;
use alloc::vec::Vec;

/// `split(line)` is the words of `line`, quotes and escapes removed.
pub fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => word.push('\\'),
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
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
}
