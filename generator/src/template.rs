//! Connect-code templates: the Rust expression that builds one device.
//!
//! A constructor's `connect` is Rust code with placeholders in double braces (the syntax of
//! Tera and Jinja, without their tags, filters or loops): `{{ param }}` is the Rust variable
//! holding a device parameter or the Rust literal of a value parameter, `{{ keys.NAME }}` (or
//! `{{ keys["ipv4-gateway"] }}`) the expression reading a key, `{{ deps[i] }}` a dependency,
//! `{{ embed }}` the module of embedded files and `{{ id }}` the node id. A Solo5 manifest
//! name may also use `{{ raw.NAME }}`, a value parameter as plain text.
//!
//! Placeholders only ever substitute a whole Rust token (an identifier, a path, a literal or a
//! call), so a template that is one Rust expression with stand-ins is one with real values:
//! that is checked once, when the configuration is loaded ([`Template::check`]), and every
//! rendering is a linear walk that cannot loop, recurse or fail.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::{Param, ParamType};
use crate::diag::did_you_mean;

/// Names a template always sees, so no parameter may take them.
pub const RESERVED: &[&str] = &["keys", "deps", "embed", "id", "raw"];

/// The most bytes a template may have: connect code is one expression, not a program.
pub const MAX_TEMPLATE_BYTES: usize = 4096;

/// What a template is rendered with.
#[derive(Debug, Default)]
pub struct Bindings {
    /// Parameter name to Rust code (a variable or a literal).
    pub params: BTreeMap<String, String>,
    /// Value parameter name to its value as plain text (not a Rust literal).
    pub raw: BTreeMap<String, String>,
    /// Key name to the Rust expression reading it.
    pub keys: BTreeMap<String, String>,
    /// Rust variables of the dependencies, in order.
    pub deps: Vec<String>,
    /// The module holding embedded files, when the implementation embeds a folder.
    pub embed: Option<String>,
    /// The node id.
    pub id: String,
}

/// A parsed template: text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Text copied as it is.
    Text(String),
    /// A placeholder, with its byte offset in the template.
    Hole(Hole, usize),
}

/// What a placeholder stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hole {
    Param(String),
    Key(String),
    Dep(usize),
    Raw(String),
    Embed,
    Id,
}

/// Why a template was refused: what is wrong, and where (a byte offset into the template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// The byte offset of the problem in the template.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a template is used, which decides the placeholders it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Connect code: a Rust expression. `raw` is refused (it is not Rust).
    Connect,
    /// A Solo5 manifest device name: plain text.
    ManifestName,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError {
                offset: 0,
                message: format!(
                    "the template is {} bytes long; at most {MAX_TEMPLATE_BYTES} are allowed",
                    source.len()
                ),
            });
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut at = 0;
        while let Some(open) = rest.find(['{']) {
            let after = &rest[open..];
            if after.starts_with("{%") || after.starts_with("{#") {
                return Err(TemplateError {
                    offset: at + open,
                    message: "templates only substitute placeholders (`{{ name }}`): tags and comments are not supported".into(),
                });
            }
            if !after.starts_with("{{") {
                let (text, tail) = rest.split_at(open + 1);
                push_text(&mut pieces, text);
                at += text.len();
                rest = tail;
                continue;
            }
            push_text(&mut pieces, &rest[..open]);
            let start = at + open;
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError {
                    offset: start,
                    message: "this placeholder is never closed with `}}`".into(),
                });
            };
            let inner = &rest[inner_start..inner_start + close];
            let hole = parse_hole(inner).map_err(|message| TemplateError {
                offset: start,
                message,
            })?;
            pieces.push(Piece::Hole(hole, start));
            let consumed = inner_start + close + 2;
            at += consumed;
            rest = &rest[consumed..];
        }
        push_text(&mut pieces, rest);
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Checks every placeholder against what the constructor declares: its parameters, keys,
    /// number of dependencies and whether it embeds a folder.
    pub fn check(
        &self,
        place: Place,
        params: &[Param],
        keys: &[String],
        deps: usize,
        embed: bool,
    ) -> Result<(), TemplateError> {
        if let Some(p) = params.iter().find(|p| RESERVED.contains(&p.name.as_str())) {
            return Err(TemplateError {
                offset: 0,
                message: format!(
                    "parameter `{}` would hide a name every template sees ({})",
                    p.name,
                    RESERVED.join(", ")
                ),
            });
        }
        for piece in &self.pieces {
            let Piece::Hole(hole, offset) = piece else {
                continue;
            };
            let fail = |message: String| {
                Err(TemplateError {
                    offset: *offset,
                    message,
                })
            };
            match hole {
                Hole::Param(name) => {
                    if !params.iter().any(|p| p.name == *name) {
                        let known = params
                            .iter()
                            .map(|p| p.name.as_str())
                            .chain(RESERVED.iter().copied());
                        return fail(format!(
                            "`{name}` is not a parameter of this constructor{}",
                            did_you_mean(name, known)
                        ));
                    }
                }
                Hole::Key(name) => {
                    if !keys.contains(name) {
                        return fail(format!(
                            "key `{name}` is not in the constructor's `keys`{}",
                            did_you_mean(name, keys.iter().map(String::as_str))
                        ));
                    }
                }
                Hole::Dep(i) => {
                    if *i >= deps {
                        return fail(format!(
                            "`deps[{i}]`, but the constructor has {deps} dependenc{}",
                            if deps == 1 { "y" } else { "ies" }
                        ));
                    }
                }
                Hole::Raw(name) => {
                    if place == Place::Connect {
                        return fail(format!("`raw.{name}` is plain text, not Rust: connect code uses `{{{{ {name} }}}}`, the value as a Rust literal"));
                    }
                    let value = params
                        .iter()
                        .any(|p| p.name == *name && matches!(p.ty, ParamType::Value(_)));
                    if !value {
                        return fail(format!("`raw.{name}` names no value parameter"));
                    }
                }
                Hole::Embed => {
                    if !embed {
                        return fail("`embed` is only set when the implementation embeds a folder (`embed = \"PARAM\"`)".into());
                    }
                }
                Hole::Id => {}
            }
        }
        Ok(())
    }

    /// The template with stand-ins of the right kind of Rust token for every placeholder, for
    /// checking that it is a Rust expression before any value is known.
    pub fn with_stand_ins(&self, params: &[Param]) -> String {
        let mut b = Bindings {
            id: "node_0".into(),
            embed: Some("embedded".into()),
            ..Bindings::default()
        };
        for p in params {
            let code = match &p.ty {
                ParamType::Value("int") => "0".to_string(),
                ParamType::Value("bool") => "false".to_string(),
                ParamType::Value(_) => "\"value\"".to_string(),
                ParamType::Device(_) => format!("device_{}", p.name),
            };
            b.params.insert(p.name.clone(), code);
            b.raw.insert(p.name.clone(), "value".into());
        }
        self.fill(&b, |hole| match hole {
            Hole::Key(k) => Some(format!("key_{}", k.replace('-', "_"))),
            Hole::Dep(i) => Some(format!("dep_{i}")),
            _ => None,
        })
    }

    /// Renders the template. Placeholders were checked when the configuration was loaded;
    /// one that is not bound (a plan edited by hand) renders as an error naming it.
    pub fn render(&self, bindings: &Bindings) -> Result<String, String> {
        let mut missing = None;
        let out = self.fill(bindings, |hole| {
            missing.get_or_insert_with(|| format!("`{}` is not bound", hole.describe()));
            Some(String::new())
        });
        match missing {
            None => Ok(out),
            Some(m) => Err(m),
        }
    }

    fn fill(&self, b: &Bindings, mut unbound: impl FnMut(&Hole) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for piece in &self.pieces {
            let hole = match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::Hole(hole, _) => hole,
            };
            let value = match hole {
                Hole::Param(p) => b.params.get(p).cloned(),
                Hole::Key(k) => b.keys.get(k).cloned(),
                Hole::Dep(i) => b.deps.get(*i).cloned(),
                Hole::Raw(p) => b.raw.get(p).cloned(),
                Hole::Embed => b.embed.clone(),
                Hole::Id => Some(b.id.clone()),
            };
            if let Some(v) = value.or_else(|| unbound(hole)) {
                out.push_str(&v);
            }
        }
        out
    }
}

impl Hole {
    fn describe(&self) -> String {
        match self {
            Hole::Param(p) => p.clone(),
            Hole::Key(k) => format!("keys.{k}"),
            Hole::Dep(i) => format!("deps[{i}]"),
            Hole::Raw(p) => format!("raw.{p}"),
            Hole::Embed => "embed".into(),
            Hole::Id => "id".into(),
        }
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    match pieces.last_mut() {
        Some(Piece::Text(t)) => t.push_str(text),
        _ => pieces.push(Piece::Text(text.to_string())),
    }
}

/// Parses what is between `{{` and `}}`: `name`, `keys.NAME`, `keys["NAME"]`, `deps[I]`,
/// `raw.NAME`, `raw["NAME"]`, `embed` or `id`.
fn parse_hole(inner: &str) -> Result<Hole, String> {
    let text = inner.trim();
    let help = || {
        format!("`{{{{{inner}}}}}` is not a placeholder: write `{{{{ param }}}}`, `{{{{ keys.NAME }}}}`, `{{{{ deps[0] }}}}`, `{{{{ embed }}}}` or `{{{{ id }}}}`")
    };
    let ident_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let (head, rest) = text.split_at(ident_end);
    if head.is_empty() || head.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(help());
    }
    let member = |rest: &str| -> Option<String> {
        if let Some(name) = rest.strip_prefix('.') {
            let name = name.trim();
            let ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return ok.then(|| name.to_string());
        }
        let inside = rest.strip_prefix('[')?.strip_suffix(']')?.trim();
        let name = inside
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| inside.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))?;
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        ok.then(|| name.to_string())
    };
    let rest = rest.trim();
    match head {
        "keys" => member(rest).map(Hole::Key).ok_or_else(help),
        "raw" => member(rest).map(Hole::Raw).ok_or_else(help),
        "deps" => rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.trim().parse().ok())
            .map(Hole::Dep)
            .ok_or_else(help),
        _ if !rest.is_empty() => Err(help()),
        "embed" => Ok(Hole::Embed),
        "id" => Ok(Hole::Id),
        name => Ok(Hole::Param(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, ty: ParamType) -> Param {
        Param {
            name: name.into(),
            ty,
        }
    }

    fn check(t: &str, params: &[Param], keys: &[&str]) -> Result<(), TemplateError> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Template::parse(t)?.check(Place::Connect, params, &keys, 1, false)
    }

    #[test]
    fn renders_params_keys_and_deps() {
        let mut b = Bindings::default();
        b.params.insert("net".into(), "net_0.clone()".into());
        b.keys.insert(
            "ipv4-gateway".into(),
            "args.ipv4_addr(\"ipv4-gateway\")".into(),
        );
        b.deps.push("random_1".into());
        let t = Template::parse("X::new({{ net }}, {{ keys[\"ipv4-gateway\"] }}, {{deps[0]}})")
            .unwrap();
        assert_eq!(
            t.render(&b).unwrap(),
            "X::new(net_0.clone(), args.ipv4_addr(\"ipv4-gateway\"), random_1)"
        );
        let braces = Template::parse("X { a: {{ net }} }").unwrap();
        assert_eq!(braces.render(&b).unwrap(), "X { a: net_0.clone() }");
        assert!(Template::parse("{{ nope }}")
            .unwrap()
            .render(&b)
            .unwrap_err()
            .contains("`nope` is not bound"));
    }

    #[test]
    fn checking_catches_unknown_names() {
        let params = [param("dir", ParamType::Value("string"))];
        assert!(check("Crunch::new({{ dir }})", &params, &[]).is_ok());
        let err = check("Crunch::new({{ dri }})", &params, &[]).unwrap_err();
        assert!(err.message.contains("did you mean `dir`"), "{err}");
        assert_eq!(err.offset, 12);
        assert!(check("X::new({{ keys.ipv4 }})", &params, &[]).is_err());
        assert!(check("X::new({{ keys.ipv4 }})", &params, &["ipv4"]).is_ok());
        assert!(check("X::new({{ embed }})", &params, &[]).is_err());
        assert!(check("X::new({{ deps[1] }})", &params, &[]).is_err());
        assert!(check("X::new({{ raw.dir }})", &params, &[]).is_err());
        assert!(check("X::new({{ dir }", &params, &[]).is_err());
        assert!(check("{% for x in y %}{% endfor %}", &params, &[]).is_err());
        assert!(check("{{ dir | upper }}", &params, &[]).is_err());
        let long = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(check(&long, &params, &[]).is_err());
    }

    #[test]
    fn manifest_names_may_use_raw_text() {
        let params = [param("name", ParamType::Value("string"))];
        let t = Template::parse("{{ raw.name }}").unwrap();
        assert!(t.check(Place::ManifestName, &params, &[], 0, false).is_ok());
        let mut b = Bindings::default();
        b.raw.insert("name".into(), "service".into());
        assert_eq!(t.render(&b).unwrap(), "service");
    }

    #[test]
    fn reserved_names_cannot_be_params() {
        let params = [param("keys", ParamType::Value("string"))];
        assert!(check("x", &params, &[])
            .unwrap_err()
            .message
            .contains("hide"));
    }

    #[test]
    fn stand_ins_have_the_kind_of_token_of_each_value() {
        let params = [
            param("n", ParamType::Value("int")),
            param("net", ParamType::Device("network".into())),
        ];
        let t = Template::parse("X::new({{ n }}, {{ net }}, {{ keys.a-b }})");
        assert!(t.is_err(), "`keys.a-b` needs brackets");
        let t = Template::parse("X::new({{ n }}, {{ net }}, {{ keys[\"a-b\"] }})").unwrap();
        assert_eq!(t.with_stand_ins(&params), "X::new(0, device_net, key_a_b)");
    }
}
