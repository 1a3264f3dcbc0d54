//! Device expressions: the `$`-application language of Functoria, written as calls.
//!
//! `conduit_direct(generic_stackv4(default_network))` applies constructors to devices;
//! `generic_kv_ro("t")` passes a value; a bare name refers to a constructor with no
//! parameters, a named device, or (inside a constructor's body) one of its parameters.
//!
//! ```text
//! expr  := name [ "(" [ expr { "," expr } [","] ] ")" ] | string | int | "true" | "false"
//! name  := [A-Za-z_][A-Za-z0-9_]*
//! ```

use crate::diag::{Diagnostic, Span};

/// A parsed expression, with the span of every part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A name, applied to arguments when it has parentheses.
    Call {
        /// The constructor, device or parameter named.
        name: String,
        /// Where the name is.
        name_span: Span,
        /// The arguments, or `None` for a bare name.
        args: Option<Vec<Expr>>,
        /// The whole expression.
        span: Span,
    },
    /// A value literal.
    Literal {
        /// The value.
        value: Literal,
        /// Where it is.
        span: Span,
    },
}

/// A value written in an expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Literal {
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl Literal {
    /// The type name of this literal, as written in parameter declarations.
    pub fn type_name(&self) -> &'static str {
        match self {
            Literal::String(_) => "string",
            Literal::Int(_) => "int",
            Literal::Bool(_) => "bool",
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::String(s) => write!(f, "{s:?}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Expr {
    /// The span of the whole expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::Call { span, .. } | Expr::Literal { span, .. } => *span,
        }
    }
}

/// Where each byte of a parsed text is in its file, relative to the text's start.
///
/// A TOML string written with escapes (`"f(\"t\")"`) is shorter than its source: the map
/// holds, for each byte offset of the text (and one past the end), the offset in the source.
/// `None` means the text cannot be mapped, and every span is then the whole string's.
pub type OffsetMap = Option<Vec<usize>>;

/// Parses `text`, whose first byte is at `base` in its file.
pub fn parse(text: &str, base: Span, offsets: &OffsetMap) -> Result<Expr, Diagnostic> {
    let mut p = Parser {
        text,
        pos: 0,
        base,
        offsets,
    };
    p.skip_ws();
    let e = p.expr()?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.error(p.pos, 1, "unexpected text after the expression"));
    }
    Ok(e)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    base: Span,
    offsets: &'a OffsetMap,
}

impl Parser<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        match self.offsets {
            Some(map) => {
                let (s, e) = (map[start], map[end]);
                self.base.sub(s, e - s)
            }
            None => self.base,
        }
    }

    fn error(&self, at: usize, len: usize, message: &str) -> Diagnostic {
        let at = at.min(self.text.len());
        let len = len.min(self.text.len() - at);
        let found = match self.text[at..].chars().next() {
            Some(c) => format!("found `{c}`"),
            None => "found the end of the expression".to_string(),
        };
        Diagnostic::error(
            "syntax",
            self.span(at, at + len),
            format!("{message}: {found}"),
        )
        .with_help("an expression is a constructor or device name, applied to arguments in parentheses: `conduit_direct(generic_stackv4(default_network))`, `generic_kv_ro(\"t\")`")
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.pos;
        match self.peek() {
            Some('"') => self.string(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.int(),
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let name = self.ident();
                let name_span = self.span(start, self.pos);
                match name.as_str() {
                    "true" | "false" => {
                        return Ok(Expr::Literal {
                            value: Literal::Bool(name == "true"),
                            span: name_span,
                        })
                    }
                    _ => {}
                }
                self.skip_ws();
                let args = if self.peek() == Some('(') {
                    self.pos += 1;
                    Some(self.args()?)
                } else {
                    None
                };
                Ok(Expr::Call {
                    name,
                    name_span,
                    args,
                    span: self.span(start, self.pos),
                })
            }
            _ => Err(self.error(
                self.pos,
                1,
                "expected a constructor, a device name or a value",
            )),
        }
    }

    fn args(&mut self) -> Result<Vec<Expr>, Diagnostic> {
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(')') {
                self.pos += 1;
                return Ok(args);
            }
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.error(self.pos, 1, "expected `,` or `)` after an argument")),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !(c == '_' || c.is_ascii_alphanumeric()) {
                break;
            }
            self.pos += 1;
        }
        self.text[start..self.pos].to_string()
    }

    fn int(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        let value = text.parse().map_err(|_| {
            self.error(
                start,
                self.pos - start,
                "expected an integer that fits in 64 bits",
            )
        })?;
        Ok(Expr::Literal {
            value: Literal::Int(value),
            span: self.span(start, self.pos),
        })
    }

    fn string(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error(start, 1, "this string is never closed")),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.error(self.pos, 1, "unfinished escape"))?;
                    value.push(match c {
                        '"' => '"',
                        '\\' => '\\',
                        'n' => '\n',
                        't' => '\t',
                        _ => {
                            return Err(self.error(
                                self.pos,
                                1,
                                "unknown escape (use \\\", \\\\, \\n or \\t)",
                            ))
                        }
                    });
                    self.pos += c.len_utf8();
                }
                Some(c) => {
                    value.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        Ok(Expr::Literal {
            value: Literal::String(value),
            span: self.span(start, self.pos),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::FileId;

    fn base() -> Span {
        Span::new(FileId(0), 10..10)
    }

    fn p(text: &str) -> Result<Expr, Diagnostic> {
        parse(text, base(), &Some((0..=text.len()).collect()))
    }

    #[test]
    fn nested_calls_parse_with_spans() {
        let e = p("conduit_direct(generic_stackv4(default_network))").unwrap();
        let Expr::Call {
            name,
            args: Some(args),
            span,
            ..
        } = e
        else {
            panic!()
        };
        assert_eq!(name, "conduit_direct");
        assert_eq!((span.start, span.end), (10, 58));
        let Expr::Call {
            name, name_span, ..
        } = &args[0]
        else {
            panic!()
        };
        assert_eq!(name, "generic_stackv4");
        assert_eq!(name_span.start, 25);
    }

    #[test]
    fn literals_and_trailing_commas() {
        let e = p(r#"f("a\"b", -3, true,)"#).unwrap();
        let Expr::Call {
            args: Some(args), ..
        } = e
        else {
            panic!()
        };
        let values: Vec<_> = args
            .iter()
            .map(|a| match a {
                Expr::Literal { value, .. } => value.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            values,
            vec![
                Literal::String("a\"b".into()),
                Literal::Int(-3),
                Literal::Bool(true)
            ]
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = p("f(a b)").unwrap_err();
        assert_eq!(err.primary.unwrap().start, 14);
        assert!(
            err.message.contains("expected `,` or `)`"),
            "{}",
            err.message
        );
        assert!(p("f(\"x)").unwrap_err().message.contains("never closed"));
        assert!(p("f(a))")
            .unwrap_err()
            .message
            .contains("after the expression"));
        assert!(p("").unwrap_err().message.contains("end of the expression"));
    }
}
