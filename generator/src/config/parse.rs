//! Reading TOML and device expressions with their spans, so errors point into the file.

use super::{expr, raw, Expr, Loader};
use crate::diag::{Diagnostic, FileId, Span};
use raw::S;

/// Maps each byte of a TOML string's value to its offset inside the quotes of its source
/// `raw`, following escapes; `None` for multi-line strings or anything unexpected.
pub(super) fn source_offsets(raw: &str, value: &str) -> expr::OffsetMap {
    let literal = raw.starts_with('\'') && !raw.starts_with("'''");
    let basic = raw.starts_with('"') && !raw.starts_with("\"\"\"");
    if !(literal || basic) || raw.len() < 2 {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    if literal {
        return (inner == value).then(|| (0..=value.len()).collect());
    }
    let mut map = Vec::with_capacity(value.len() + 1);
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let (len, decoded) = if bytes[i] == b'\\' {
            let esc = *bytes.get(i + 1)?;
            let (len, c) = match esc {
                b'"' => (2, '"'),
                b'\\' => (2, '\\'),
                b'n' => (2, '\n'),
                b't' => (2, '\t'),
                b'r' => (2, '\r'),
                b'b' => (2, '\u{8}'),
                b'f' => (2, '\u{c}'),
                b'e' => (2, '\u{1b}'),
                b'u' | b'U' => {
                    let n = if esc == b'u' { 4 } else { 8 };
                    let hex = inner.get(i + 2..i + 2 + n)?;
                    (2 + n, char::from_u32(u32::from_str_radix(hex, 16).ok()?)?)
                }
                _ => return None,
            };
            (len, c.len_utf8())
        } else {
            let c = inner[i..].chars().next()?;
            (c.len_utf8(), c.len_utf8())
        };
        for _ in 0..decoded {
            map.push(i);
        }
        i += len;
    }
    map.push(inner.len());
    (map.len() == value.len() + 1).then_some(map)
}

impl Loader {
    pub(super) fn parse(&mut self, file: FileId) -> Option<raw::File> {
        match toml::from_str::<raw::File>(self.sources.text(file)) {
            Ok(f) => Some(f),
            Err(e) => {
                let span = e.span().map(|r| Span::new(file, r));
                let message = e.message().trim().to_string();
                let help = if message.contains("recursion limit")
                    || message.contains("max recursion depth")
                {
                    "arrays, inline tables and dotted keys nest at most about 100 deep; flatten the structure"
                } else if message.contains("unknown field") {
                    "remove or rename the field; docs/config.md lists every field of every table"
                } else if message.contains("missing field") {
                    "add the field; docs/config.md lists what each table needs"
                } else {
                    "fix the TOML syntax; see docs/config.md for the shape of unikernel.toml"
                };
                self.diags
                    .push(Diagnostic::error("toml", span, message).with_help(help));
                None
            }
        }
    }

    /// The span of `len` bytes at `offset` in the value of the string `s`, when the string's
    /// source can be mapped byte for byte (no line continuations); else the whole string's.
    pub(super) fn span_in(&self, file: FileId, s: &S, offset: usize, len: usize) -> Span {
        let range = s.span();
        let raw = &self.sources.text(file)[range.clone()];
        match source_offsets(raw, s.get_ref()) {
            Some(map) if offset + len < map.len() => {
                let (start, end) = (map[offset], map[offset + len]);
                Span::new(file, range.start + 1 + start..range.start + 1 + end)
            }
            _ => Span::new(file, range),
        }
    }

    pub(super) fn expr(&mut self, file: FileId, s: &S) -> Option<Expr> {
        let range = s.span();
        let raw = &self.sources.text(file)[range.clone()];
        let offsets = source_offsets(raw, s.get_ref());
        let base = match offsets {
            Some(_) => Span::new(file, range.start + 1..range.end - 1),
            None => Span::new(file, range),
        };
        match expr::parse(s.get_ref(), base, &offsets) {
            Ok(e) => Some(e),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }
}
