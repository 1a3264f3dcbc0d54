//! Checking `[keys.NAME]`: type, values, stage, defaults (per target) and short flag.

use std::collections::BTreeMap;

use super::names::valid_key_name;
use super::{raw, Loader, Namespace, RESERVED_FLAGS, RESERVED_SHORTS};
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};
use crate::key::{Default_, Key, KeyType, Stage};
use raw::S;

impl Loader {
    pub(super) fn key(&mut self, file: FileId, name: S, k: toml::Spanned<raw::Key>) {
        let span = self.span(file, &name);
        let key_name = name.get_ref().clone();
        // Images read `--a-b` and `--a_b` as one key, and both are the constant `A_B`.
        let flag = key_name.replace('_', "-");
        if let Some((prev_name, prev_span)) = self.claim(Namespace::Flag, flag, &key_name, span) {
            if prev_name == key_name {
                self.duplicate("key", &key_name, span, prev_span);
            } else {
                self.diags.push(
                    Diagnostic::error(
                        "duplicate-name",
                        span,
                        format!("key `{key_name}` is the same flag as key `{prev_name}`"),
                    )
                    .with_note(prev_span, "declared here")
                    .with_help("`-` and `_` are the same in flags; rename one of the keys"),
                );
            }
            return;
        }
        if !valid_key_name(&key_name) || RESERVED_FLAGS.contains(&key_name.as_str()) {
            self.diags.push(Diagnostic::error("bad-name", span, format!("`{key_name}` cannot be a key name"))
                .with_help(format!("key names are flags: lower-case letters, digits, `_` and `-`, starting with a letter, at most 64, and not one of {}", RESERVED_FLAGS.join(", "))));
            return;
        }
        let k = k.into_inner();
        let words = k
            .values
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default();
        if let Some(values) = &k.values {
            if let Some(message) = bad_words(values.get_ref()) {
                self.diags.push(
                    Diagnostic::error("bad-key", Span::new(file, values.span()), message)
                        .with_help(
                        "an enum's values are distinct words of letters, digits, `_`, `-` and `.`",
                    ),
                );
                return;
            }
        }
        let range = match &k.range {
            None => None,
            Some(r) => match (r.get_ref().as_slice(), k.ty.get_ref().as_str()) {
                (&[min, max], "int") if min <= max => Some((min, max)),
                _ => {
                    self.diags.push(
                        Diagnostic::error("bad-key", Span::new(file, r.span()), format!("bad `range` for key `{key_name}`"))
                            .with_help("`range = [MIN, MAX]` bounds an int key, with MIN <= MAX; for a port, write `type = \"port\"`"),
                    );
                    return;
                }
            },
        };
        let ty = match KeyType::from_name(k.ty.get_ref(), &words, range) {
            Some(ty) => ty,
            None if k.ty.get_ref() == "enum" => {
                self.diags.push(
                    Diagnostic::error(
                        "bad-key",
                        span,
                        format!("enum key `{key_name}` lists no values"),
                    )
                    .with_help("add `values = [\"a\", \"b\"]`"),
                );
                return;
            }
            None => {
                let other = k.ty.get_ref();
                let types = KeyType::NAMES;
                self.diags.push(
                    Diagnostic::error(
                        "bad-key",
                        self.span(file, &k.ty),
                        format!("unknown key type `{other}`{}", did_you_mean(other, types)),
                    )
                    .with_help(format!("a key's type is one of {}", types.join(", "))),
                );
                return;
            }
        };
        if k.values.is_some() && !matches!(ty, KeyType::Enum(_)) {
            self.diags.push(
                Diagnostic::error(
                    "bad-key",
                    span,
                    format!("key `{key_name}` has `values` but is not an enum"),
                )
                .with_help("remove `values`, or set `type = \"enum\"`"),
            );
            return;
        }
        let stage = match k.stage.get_ref().as_str() {
            "configure" => Stage::Configure,
            "runtime" => Stage::Runtime,
            other => {
                self.diags.push(Diagnostic::error("bad-key", self.span(file, &k.stage), format!("unknown stage `{other}`"))
                    .with_help("a key's stage is `configure` (fixed in the plan) or `runtime` (parsed at boot)"));
                return;
            }
        };
        let default = match k.default {
            None => Default_::Unset,
            Some(d) => {
                let dspan = Span::new(file, d.span());
                let check = |v: &toml::Value| ty.from_toml(v);
                match d.into_inner() {
                    toml::Value::Table(t) => {
                        let mut per = BTreeMap::new();
                        for (target, v) in t {
                            if target != "_" && !self.targets.contains_key(&target) {
                                self.diags.push(Diagnostic::error("unknown-target", dspan, format!("default for unknown target `{target}`{}", did_you_mean(&target, self.targets.keys().map(String::as_str))))
                                    .with_help("per-target defaults are keyed by target name, with `_` for the others"));
                                return;
                            }
                            match check(&v) {
                                Ok(v) => {
                                    per.insert(target, v);
                                }
                                Err(e) => {
                                    self.diags.push(
                                        Diagnostic::error(
                                            "bad-default",
                                            dspan,
                                            format!(
                                            "bad default for key `{key_name}` on `{target}`: {e}"
                                        ),
                                        )
                                        .with_help(
                                            format!("give a default that is {}", ty.expected()),
                                        ),
                                    );
                                    return;
                                }
                            }
                        }
                        if !per.contains_key("_") {
                            self.diags.push(Diagnostic::error("bad-default", dspan, format!("per-target defaults of key `{key_name}` have no `_` fallback"))
                                .with_help("add `_ = ...` for the targets not listed"));
                            return;
                        }
                        Default_::PerTarget(per)
                    }
                    v => match check(&v) {
                        Ok(v) => Default_::Value(v),
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::error(
                                    "bad-default",
                                    dspan,
                                    format!("bad default for key `{key_name}`: {e}"),
                                )
                                .with_help(format!("give a default that is {}", ty.expected())),
                            );
                            return;
                        }
                    },
                }
            }
        };
        if matches!(default, Default_::Unset)
            && !matches!(ty, KeyType::Ipv4Address | KeyType::Ipv4Prefix)
        {
            self.diags.push(Diagnostic::error("bad-default", span, format!("key `{key_name}` has no default"))
                .with_help(format!("add `default = ...`: only address keys may be unset ({} keys always have a value)", ty.name())));
            return;
        }
        let doc = k.doc.get_ref();
        if doc.chars().any(char::is_control) || doc.len() > 1024 {
            self.diags.push(
                Diagnostic::error("bad-key", self.span(file, &k.doc), format!("the doc of key `{key_name}` is not one line"))
                    .with_help("a key's doc is one line of at most 1024 bytes, without line breaks or control characters: it is shown in `--help` and in generated code"),
            );
            return;
        }
        let short = match k.short {
            None => None,
            Some(s) => {
                let mut cs = s.get_ref().chars();
                let mut taken =
                    |c: char| self.claim(Namespace::Short, c.to_string(), &key_name, span);
                match (cs.next(), cs.next()) {
                    (Some(c), None) if RESERVED_SHORTS.contains(&c) => {
                        self.diags.push(
                            Diagnostic::error("bad-key", self.span(file, &s), format!("`-{c}` is already an option of mirage-nix"))
                                .with_help(format!("choose another letter: mirage-nix's own short options are -{} and the keys' -t and -l", RESERVED_SHORTS.iter().map(char::to_string).collect::<Vec<_>>().join(", -"))),
                        );
                        return;
                    }
                    (Some(c), None) if c.is_ascii_alphabetic() => match taken(c) {
                        None => Some(c),
                        Some((other, other_span)) => {
                            self.diags.push(
                                Diagnostic::error(
                                    "bad-key",
                                    self.span(file, &s),
                                    format!("`-{c}` is already the short flag of key `{other}`"),
                                )
                                .with_note(other_span, format!("`{other}` is declared here"))
                                .with_help("choose another letter, or no `short`"),
                            );
                            return;
                        }
                    },
                    _ => {
                        self.diags.push(
                            Diagnostic::error(
                                "bad-key",
                                self.span(file, &s),
                                "`short` must be one ASCII letter",
                            )
                            .with_help("write e.g. `short = \"g\"`"),
                        );
                        return;
                    }
                }
            }
        };
        self.keys.insert(
            key_name.clone(),
            Key {
                name: key_name,
                ty,
                default,
                stage,
                doc: k.doc.into_inner(),
                short,
                span,
            },
        );
    }
}

/// Why the words of an enum are not usable as flag values, if they are not.
fn bad_words(words: &[String]) -> Option<String> {
    for (i, w) in words.iter().enumerate() {
        let ok = !w.is_empty()
            && w.len() <= 64
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Some(format!("`{}` is not a word", w.escape_debug()));
        }
        if words[..i].contains(w) {
            return Some(format!("`{w}` is listed twice"));
        }
    }
    None
}
