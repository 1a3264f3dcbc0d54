//! The grammars of the places a configuration's strings take in generated code, and the
//! escaping writers for the places that take any text.
//!
//! Every string that reaches `main.rs` or `Cargo.toml` is either checked here against the
//! grammar of its place (identifiers, paths, crate and feature names, Rust expressions) or
//! written through an escaping function ([`string_literal`], [`comment`]); `Cargo.toml` is
//! written by a TOML serialiser. So no configuration and no plan can make the generator write
//! code that does not parse, or that says something other than what the configuration says.

/// Rust's keywords (2021 edition), strict and reserved: none can be an identifier.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "_",
];

/// Crates every Rust program can name, which a dependency must not shadow.
const BUILTIN_CRATES: &[&str] = &["std", "core", "alloc", "proc_macro", "test"];

/// The most bytes a crate, feature or unikernel name may have.
pub const MAX_NAME_BYTES: usize = 64;

/// Whether `s` is a Rust keyword.
pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

/// Whether `s` is a plain ASCII Rust identifier that is not a keyword.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(s)
}

/// Checks a path to an item, such as `hello::start` or `mirage_devices::KvRo`: identifiers
/// separated by `::`, at least two (a crate and an item).
pub fn check_path(s: &str) -> Result<(), String> {
    let segments: Vec<&str> = s.split("::").collect();
    if segments.len() < 2 {
        return Err(format!(
            "`{}` is not a path to an item such as `my_crate::start`",
            s.escape_debug()
        ));
    }
    match segments.iter().find(|seg| !is_identifier(seg)) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "`{}` is not a Rust path: `{}` is not an identifier (letters, digits and `_`, not a keyword)",
            s.escape_debug(),
            bad.escape_debug()
        )),
    }
}

/// Checks a package name as cargo accepts it for a dependency: ASCII letters, digits, `-`
/// and `_`, starting with a letter, at most [`MAX_NAME_BYTES`], and naming as a Rust crate
/// (with `-` as `_`) neither a keyword nor a built-in crate.
pub fn check_crate_name(s: &str) -> Result<(), String> {
    let shown = s.escape_debug();
    if s.is_empty() || s.len() > MAX_NAME_BYTES {
        return Err(format!(
            "`{shown}` is not a crate name: it must have 1 to {MAX_NAME_BYTES} characters"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic())
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{shown}` is not a crate name: use ASCII letters, digits, `-` and `_`, starting with a letter"
        ));
    }
    let ident = s.replace('-', "_");
    if is_keyword(&ident) || BUILTIN_CRATES.contains(&ident.as_str()) {
        return Err(format!(
            "`{shown}` cannot name a crate: `{ident}` is a Rust keyword or a built-in crate"
        ));
    }
    Ok(())
}

/// Checks a cargo feature name: ASCII letters, digits, `_`, `-`, `+` and `.`, starting with
/// a letter, digit or `_`.
pub fn check_feature(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a feature name: use ASCII letters, digits, `_`, `-`, `+` and `.`",
            s.escape_debug()
        ))
    }
}

/// Checks a crates.io version requirement (`1.2`, `^0.3`, `>=1, <2`), as cargo reads it.
pub fn check_version_req(s: &str) -> Result<(), String> {
    semver::VersionReq::parse(s)
        .map(|_| ())
        .map_err(|e| format!("`{}` is not a version requirement: {e}", s.escape_debug()))
}

/// `string_literal(s)` is `s` as a Rust string literal, every character that needs it
/// escaped.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `comment(s)` is `s` made safe for the rest of a `//` or `///` comment line (or a `#` line
/// of TOML): control characters, line and paragraph separators are shown escaped, so no text
/// can end the comment and start code.
pub fn comment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most stack the thread that checks Rust syntax gets: `syn` parses nested expressions
/// recursively, and a template is at most 4 KiB, which bounds the depth.
const CHECKER_STACK: usize = 256 << 20;

/// Checks that each of `codes` is one Rust expression where generated code puts it, the
/// initialiser of a `let` (so that no comment or brace in it can swallow or add code), in one
/// thread with a stack large enough for any nesting a 4 KiB template can hold. Returns, in
/// order, why each is not.
pub fn check_expressions(codes: Vec<String>) -> Vec<Result<(), String>> {
    // Expressions found good before (the catalogue's, at every load) are not parsed again.
    static GOOD: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    const MAX_REMEMBERED: usize = 4096;
    let mut good = GOOD.lock().unwrap_or_else(|e| e.into_inner());
    let good = good.get_or_insert_with(Default::default);
    let unknown: Vec<String> = codes
        .iter()
        .filter(|c| !good.contains(c.as_str()))
        .cloned()
        .collect();
    let mut results = parse_expressions(unknown.clone()).into_iter();
    let mut checked: std::collections::HashMap<String, Result<(), String>> =
        std::collections::HashMap::new();
    for code in unknown {
        let r = results.next().expect("one result per expression");
        if r.is_ok() && good.len() < MAX_REMEMBERED {
            good.insert(code.clone());
        }
        checked.insert(code, r);
    }
    codes
        .iter()
        .map(|c| checked.get(c).cloned().unwrap_or(Ok(())))
        .collect()
}

/// Parses each of `codes` as the initialiser of a `let`, in a thread with a big stack.
fn parse_expressions(codes: Vec<String>) -> Vec<Result<(), String>> {
    if codes.is_empty() {
        return Vec::new();
    }
    let check = move || {
        codes
            .iter()
            .map(|code| {
                let block = format!("{{ let value = {code}; }}");
                let one_let = syn::parse_str::<syn::Block>(&block)
                    .map_err(|e| e.to_string())
                    .and_then(|b| match b.stmts.as_slice() {
                        [syn::Stmt::Local(syn::Local { init: Some(_), .. })] => Ok(()),
                        _ => Err("it holds more than one expression".to_string()),
                    });
                one_let.map_err(|e| {
                    format!("`{}` is not one Rust expression: {e}", code.escape_debug())
                })
            })
            .collect::<Vec<_>>()
    };
    with_big_stack(check)
}

/// Runs `f` in a thread whose stack is large enough for `syn` to parse any code the
/// generator can write (each template at most 4 KiB), and returns what it returns.
///
/// # Panics
///
/// If the thread cannot be started, or if `f` panics (the panic is passed on).
pub fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .name("rust-syntax".into())
        .stack_size(CHECKER_STACK)
        .spawn(f)
        .expect("a thread can be started");
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_identifiers() {
        assert!(check_path("hello::start").is_ok());
        assert!(check_path("a::b::c").is_ok());
        assert!(check_path("start").is_err());
        assert!(check_path("a::fn").is_err());
        assert!(check_path("a::b()").is_err());
        assert!(check_path("a::b\n}").is_err());
        assert!(check_path("::a::b").is_err());
        assert!(is_identifier("_x") && !is_identifier("_") && !is_identifier("9x"));
    }

    #[test]
    fn crate_and_feature_names_follow_cargo() {
        assert!(check_crate_name("mirage-devices").is_ok());
        assert!(check_crate_name("my_crate2").is_ok());
        for bad in ["", "2x", "-x", "a b", "a\"b", "std", "crate", "self", "a.b"] {
            assert!(check_crate_name(bad).is_err(), "{bad}");
        }
        assert!(check_crate_name(&"x".repeat(65)).is_err());
        assert!(check_feature("net").is_ok() && check_feature("a+b.c").is_ok());
        assert!(check_feature("a\"b").is_err() && check_feature("").is_err());
        assert!(check_version_req("1.2").is_ok() && check_version_req(">=1, <2").is_ok());
        assert!(check_version_req("one").is_err());
    }

    #[test]
    fn escaping_keeps_text_inside_its_place() {
        let s = "a\"b\\c\nd\u{1b}\u{2028}";
        let lit = string_literal(s);
        let parsed: syn::LitStr = syn::parse_str(&lit).unwrap();
        assert_eq!(parsed.value(), s);
        let c = comment("doc\nfn evil() {}\r\u{2028}x");
        assert!(!c.contains('\n') && !c.contains('\r') && !c.contains('\u{2028}'));
        assert!(c.starts_with("doc\\nfn evil() {}"), "{c}");
    }

    #[test]
    fn expressions_are_checked_at_any_depth() {
        let deep = format!("{}x{}", "(".repeat(2000), ")".repeat(2000));
        let unary = format!("{}x", "-".repeat(4000));
        let results = check_expressions(vec![
            "X::new(a, b).await".into(),
            "x; fn evil() {}".into(),
            "a b".into(),
            deep,
            unary,
            "x // swallows the semicolon".into(),
            "x; let y = evil()".into(),
            "{ let y = 1; y }".into(),
            "x /* ".into(),
        ]);
        assert!(results[0].is_ok());
        assert!(results[1].is_err() && results[2].is_err());
        assert!(results[3].is_ok() && results[4].is_ok());
        assert!(results[5].is_err() && results[6].is_err());
        assert!(results[7].is_ok() && results[8].is_err());
    }
}
