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

/// A parsed expression: its parts in one flat list, each argument before the call that takes
/// it and the whole expression last.
///
/// Flat rather than a tree of boxes, so that an expression nested 100,000 deep is parsed,
/// walked, cloned and dropped without recursion (and so without a stack overflow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    parts: Vec<Part>,
}

/// One part of an expression: a name (applied or not) or a literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// A name, applied to arguments when it has parentheses.
    Call {
        /// The constructor, device or parameter named.
        name: String,
        /// Where the name is.
        name_span: Span,
        /// The arguments (indices of earlier parts), or `None` for a bare name.
        args: Option<Vec<u32>>,
        /// The whole call.
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

/// A reference to one part of an [`Expr`]: what the graph stage walks.
#[derive(Clone, Copy, Debug)]
pub struct ExprRef<'a> {
    expr: &'a Expr,
    part: u32,
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

impl Part {
    /// Where the part is.
    pub fn span(&self) -> Span {
        match self {
            Part::Call { span, .. } | Part::Literal { span, .. } => *span,
        }
    }
}

impl Expr {
    /// The whole expression.
    pub fn root(&self) -> ExprRef<'_> {
        ExprRef {
            expr: self,
            part: self.parts.len() as u32 - 1,
        }
    }

    /// The span of the whole expression.
    pub fn span(&self) -> Span {
        self.root().span()
    }

    /// How many parts (names and literals) the expression has.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether the expression has no parts (never true of a parsed one).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl<'a> ExprRef<'a> {
    /// The part referred to.
    pub fn part(self) -> &'a Part {
        &self.expr.parts[self.part as usize]
    }

    /// Where the part is.
    pub fn span(self) -> Span {
        self.part().span()
    }

    /// The arguments of an applied name (none for a bare name or a literal).
    pub fn args(self) -> impl DoubleEndedIterator<Item = ExprRef<'a>> + ExactSizeIterator {
        let ids: &'a [u32] = match self.part() {
            Part::Call {
                args: Some(args), ..
            } => args,
            _ => &[],
        };
        let expr = self.expr;
        ids.iter().map(move |&part| ExprRef { expr, part })
    }
}

/// Where each byte of a parsed text is in its file, relative to the text's start.
///
/// A TOML string written with escapes (`"f(\"t\")"`) is shorter than its source: the map
/// holds, for each byte offset of the text (and one past the end), the offset in the source.
/// `None` means the text cannot be mapped, and every span is then the whole string's.
pub type OffsetMap = Option<Vec<usize>>;

/// A call whose arguments are being parsed.
struct Open {
    name: String,
    name_span: Span,
    start: usize,
    args: Vec<u32>,
}

/// Parses `text`, whose first byte is at `base` in its file.
///
/// The parser keeps open calls on a stack of its own rather than recursing, so any nesting
/// that fits in memory parses.
pub fn parse(text: &str, base: Span, offsets: &OffsetMap) -> Result<Expr, Diagnostic> {
    let mut p = Parser {
        text,
        pos: 0,
        base,
        offsets,
    };
    let mut parts: Vec<Part> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    loop {
        p.skip_ws();
        let start = p.pos;
        // One item: a literal or a bare name (complete), or a name and `(` (an open call).
        let mut done = match p.peek() {
            Some('"') => p.string()?,
            Some(c) if c == '-' || c.is_ascii_digit() => p.int()?,
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let name = p.ident();
                let name_span = p.span(start, p.pos);
                if name == "true" || name == "false" {
                    Part::Literal {
                        value: Literal::Bool(name == "true"),
                        span: name_span,
                    }
                } else {
                    p.skip_ws();
                    if p.peek() == Some('(') {
                        p.pos += 1;
                        open.push(Open {
                            name,
                            name_span,
                            start,
                            args: Vec::new(),
                        });
                        p.skip_ws();
                        if p.peek() != Some(')') {
                            continue;
                        }
                        p.pos += 1;
                        p.close(open.pop().expect("just pushed"))
                    } else {
                        Part::Call {
                            name,
                            name_span,
                            args: None,
                            span: name_span,
                        }
                    }
                }
            }
            _ => return Err(p.error(p.pos, 1, "expected a constructor, a device name or a value")),
        };
        // Attach the finished item to the call it is an argument of, closing calls as `)`s come.
        loop {
            parts.push(done);
            let id = parts.len() as u32 - 1;
            let Some(call) = open.last_mut() else {
                p.skip_ws();
                if p.pos < text.len() {
                    return Err(p.error(p.pos, 1, "unexpected text after the expression"));
                }
                return Ok(Expr { parts });
            };
            call.args.push(id);
            p.skip_ws();
            match p.peek() {
                Some(',') => {
                    p.pos += 1;
                    p.skip_ws();
                    if p.peek() != Some(')') {
                        break;
                    }
                    p.pos += 1;
                }
                Some(')') => p.pos += 1,
                _ => return Err(p.error(p.pos, 1, "expected `,` or `)` after an argument")),
            }
            done = p.close(open.pop().expect("an open call"));
        }
    }
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
            Some(c) => format!("found `{}`", c.escape_debug()),
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

    /// The part of a call whose `)` was just read.
    fn close(&self, call: Open) -> Part {
        Part::Call {
            name: call.name,
            name_span: call.name_span,
            args: Some(call.args),
            span: self.span(call.start, self.pos),
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

    fn int(&mut self) -> Result<Part, Diagnostic> {
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
                (self.pos - start).max(1),
                "expected an integer that fits in 64 bits",
            )
        })?;
        Ok(Part::Literal {
            value: Literal::Int(value),
            span: self.span(start, self.pos),
        })
    }

    fn string(&mut self) -> Result<Part, Diagnostic> {
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
        Ok(Part::Literal {
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

    fn call(e: ExprRef<'_>) -> (&str, Span, Vec<ExprRef<'_>>) {
        match e.part() {
            Part::Call {
                name, name_span, ..
            } => (name, *name_span, e.args().collect()),
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn nested_calls_parse_with_spans() {
        let e = p("conduit_direct(generic_stackv4(default_network))").unwrap();
        let (name, _, args) = call(e.root());
        assert_eq!(name, "conduit_direct");
        assert_eq!((e.span().start, e.span().end), (10, 58));
        let (name, name_span, args) = call(args[0]);
        assert_eq!(name, "generic_stackv4");
        assert_eq!(name_span.start, 25);
        let (name, name_span, args) = call(args[0]);
        assert_eq!(
            (name, name_span.start, name_span.end),
            ("default_network", 41, 56)
        );
        assert!(args.is_empty());
        assert_eq!(e.len(), 3);
    }

    #[test]
    fn literals_and_trailing_commas() {
        let e = p(r#"f("a\"b", -3, true,)"#).unwrap();
        let values: Vec<_> = e
            .root()
            .args()
            .map(|a| match a.part() {
                Part::Literal { value, .. } => value.clone(),
                other => panic!("not a literal: {other:?}"),
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
        assert_eq!(p("f( )").unwrap().root().args().len(), 0);
        assert!(p("f(,)").is_err());
    }

    #[test]
    fn any_nesting_parses_without_recursion() {
        let depth = 200_000;
        let text = format!("{}x{}", "f(".repeat(depth), ")".repeat(depth));
        let e = p(&text).unwrap();
        assert_eq!(e.len(), depth + 1);
        let (mut at, mut levels) = (e.root(), 0);
        while let Some(inner) = at.args().next() {
            at = inner;
            levels += 1;
        }
        assert_eq!(levels, depth);
        let unclosed = format!("{}x", "f(".repeat(depth));
        assert!(p(&unclosed)
            .unwrap_err()
            .message
            .contains("expected `,` or `)`"));
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
