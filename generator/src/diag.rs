//! Diagnostics: located, explained errors about a configuration.
//!
//! Every error the generator reports about a `unikernel.toml` (or the built-in catalogue, or a
//! key given on the command line) is a [`Diagnostic`]: a stable code, a one-line message, the
//! place it comes from ([`Span`], rendered as `file:line:column` with the offending source line),
//! optional notes pointing at related places, and a `help` line saying how to fix it.
//! Stages collect several diagnostics per run rather than stopping at the first.

use std::fmt;
use std::ops::Range;

/// Identifies one loaded source file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// The file the range belongs to.
    pub file: FileId,
    /// First byte of the range.
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// `Span::new(file, range)` is the span covering `range` in `file`.
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span {
            file,
            start: range.start as u32,
            end: range.end.max(range.start) as u32,
        }
    }

    /// The span of `len` bytes starting `offset` bytes into this one.
    pub fn sub(self, offset: usize, len: usize) -> Span {
        let start = self.start + offset as u32;
        Span {
            file: self.file,
            start,
            end: start + len as u32,
        }
    }
}

/// The text of every file a run has read, so that spans can be shown as `file:line:col`.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

#[derive(Clone, Debug)]
struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
    /// `(byte offset, characters before it)` about every [`CHECKPOINT_BYTES`], so that a
    /// column is found in constant time however long its line is.
    checkpoints: Vec<(usize, usize)>,
}

/// How far apart [`SourceFile::checkpoints`] are.
const CHECKPOINT_BYTES: usize = 4096;

impl SourceFile {
    /// How many characters come before the byte `offset` (a character boundary).
    fn chars_before(&self, offset: usize) -> usize {
        let i = self.checkpoints.partition_point(|&(at, _)| at <= offset) - 1;
        let (at, before) = self.checkpoints[i];
        before + self.text[at..offset].chars().count()
    }
}

/// A resolved position: the file name and 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file name as given when it was added (relative, never machine-specific).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl SourceMap {
    /// Adds a file under a display `name` and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut checkpoints = vec![(0, 0)];
        for (chars, (at, _)) in text.char_indices().enumerate() {
            if at >= checkpoints.last().map_or(0, |c| c.0) + CHECKPOINT_BYTES {
                checkpoints.push((at, chars));
            }
        }
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
            checkpoints,
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// The text of a file.
    pub fn text(&self, file: FileId) -> &str {
        &self.files[file.0 as usize].text
    }

    /// The display name of a file.
    pub fn name(&self, file: FileId) -> &str {
        &self.files[file.0 as usize].name
    }

    /// The `file:line:column` of the start of a span.
    pub fn location(&self, span: Span) -> Location {
        let file = &self.files[span.file.0 as usize];
        let mut offset = (span.start as usize).min(file.text.len());
        while !file.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = file.line_starts.partition_point(|&s| s <= offset) - 1;
        let line_start = file.line_starts[line];
        let column = file.chars_before(offset) - file.chars_before(line_start) + 1;
        Location {
            file: file.name.clone(),
            line: line + 1,
            column,
        }
    }

    fn line_text(&self, span: Span) -> (usize, &str) {
        let file = &self.files[span.file.0 as usize];
        let offset = (span.start as usize).min(file.text.len());
        let line = file.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = file.line_starts[line];
        let end = file.text[start..]
            .find('\n')
            .map_or(file.text.len(), |e| start + e);
        (line + 1, file.text[start..end].trim_end_matches('\r'))
    }
}

/// One reported problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// A stable identifier for the kind of problem (e.g. `type-mismatch`), for tests and tools.
    pub code: &'static str,
    /// What is wrong, in one line.
    pub message: String,
    /// Where it is, when it comes from a file.
    pub primary: Option<Span>,
    /// Related places, each with a short remark.
    pub notes: Vec<(Option<Span>, String)>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a code and message, located at `span`.
    pub fn error(
        code: &'static str,
        span: impl Into<Option<Span>>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            primary: span.into(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds a help line saying how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note, optionally pointing at another place.
    pub fn with_note(mut self, span: impl Into<Option<Span>>, note: impl Into<String>) -> Self {
        self.notes.push((span.into(), note.into()));
        self
    }

    /// Renders the diagnostic for a terminal, with the source line and a caret under the span.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!("error[{}]: {}\n", self.code, self.message);
        if let Some(span) = self.primary {
            render_snippet(&mut out, sources, span);
        }
        for (span, note) in &self.notes {
            match span {
                Some(span) => {
                    out.push_str(&format!("note: {note}\n"));
                    render_snippet(&mut out, sources, *span);
                }
                None => out.push_str(&format!("  = note: {note}\n")),
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }

    /// The diagnostic as a JSON value (`{"reason": "diagnostic", ...}`), for `--json` output.
    pub fn to_json(&self, sources: &SourceMap) -> serde_json::Value {
        let loc = |span: &Option<Span>| {
            span.map(|s| {
                let l = sources.location(s);
                serde_json::json!({"file": l.file, "line": l.line, "column": l.column})
            })
        };
        serde_json::json!({
            "reason": "diagnostic",
            "code": self.code,
            "message": self.message,
            "location": loc(&self.primary),
            "notes": self.notes.iter().map(|(s, n)| serde_json::json!({"message": n, "location": loc(s)})).collect::<Vec<_>>(),
            "help": self.help,
        })
    }
}

fn render_snippet(out: &mut String, sources: &SourceMap, span: Span) {
    let loc = sources.location(span);
    let (line_no, line) = sources.line_text(span);
    let gutter = " ".repeat(line_no.to_string().len());
    let width = (span.end - span.start) as usize;
    let rest = line.chars().count().saturating_sub(loc.column - 1);
    let carets = "^".repeat(width.clamp(1, rest.max(1)));
    out.push_str(&format!("{gutter}--> {loc}\n"));
    out.push_str(&format!("{gutter} |\n"));
    out.push_str(&format!("{line_no} | {line}\n"));
    out.push_str(&format!(
        "{gutter} | {}{carets}\n",
        " ".repeat(loc.column - 1)
    ));
}

/// A set of diagnostics together with the sources they point into.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The files the diagnostics point into.
    pub sources: SourceMap,
    /// The problems found, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Renders every diagnostic for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(&self.sources));
            out.push('\n');
        }
        let n = self.diagnostics.len();
        out.push_str(&format!(
            "error: aborting because of {n} error{}\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }

    /// The codes of every diagnostic, in order (handy in tests).
    pub fn codes(&self) -> Vec<&'static str> {
        self.diagnostics.iter().map(|d| d.code).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Report {}

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// A "did you mean" suffix for a message, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_lines_and_columns() {
        let mut sm = SourceMap::default();
        let f = sm.add("u.toml", "a = 1\nbb = \"x\"\n");
        let loc = sm.location(Span::new(f, 11..14));
        assert_eq!(loc.to_string(), "u.toml:2:6");
        // Columns count characters, on lines of any length, in constant time.
        let long = format!("x = \"{}é{}\"\ny", "a".repeat(10_000), "b".repeat(10_000));
        let g = sm.add("long.toml", long.clone());
        let at = long.find('b').unwrap();
        assert_eq!(sm.location(Span::new(g, at..at)).column, 10_007);
        let end = long.len() - 1;
        assert_eq!(
            sm.location(Span::new(g, end..end)).to_string(),
            "long.toml:2:1"
        );
        let e = long.find('é').unwrap() + 1;
        assert_eq!(
            sm.location(Span::new(g, e..e)).column,
            10_006,
            "not a char boundary"
        );
    }

    #[test]
    fn render_shows_the_line_and_a_caret() {
        let mut sm = SourceMap::default();
        let f = sm.add("u.toml", "args = [\"nope\"]\n");
        let d = Diagnostic::error("unknown-name", Span::new(f, 9..13), "unknown name `nope`")
            .with_help("declare it");
        let text = d.render(&sm);
        assert!(text.contains("--> u.toml:1:10"), "{text}");
        assert!(text.contains("^^^^"), "{text}");
        assert!(text.contains("help: declare it"), "{text}");
    }

    #[test]
    fn closest_finds_typos_but_not_strangers() {
        let names = ["default_console", "default_time", "kv_ro"];
        assert_eq!(closest("defualt_console", names), Some("default_console"));
        assert_eq!(closest("kvro", names), Some("kv_ro"));
        assert_eq!(closest("zebra", names), None);
    }
}
