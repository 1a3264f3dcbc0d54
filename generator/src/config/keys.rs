//! Checking `[keys.NAME]`: type, values, stage, defaults (per target) and short flag.

use std::collections::BTreeMap;

use super::names::valid_key_name;
use super::{raw, Loader, RESERVED_FLAGS};
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};
use crate::key::{Default_, Key, KeyType, Stage};
use raw::S;

impl Loader {
    pub(super) fn key(&mut self, file: FileId, name: S, k: toml::Spanned<raw::Key>) {
        let span = self.span(file, &name);
        let key_name = name.get_ref().clone();
        if let Some(prev) = self.keys.get(&key_name) {
            let prev = prev.span;
            self.duplicate("key", &key_name, span, prev);
            return;
        }
        if !valid_key_name(&key_name) || RESERVED_FLAGS.contains(&key_name.as_str()) {
            self.diags.push(Diagnostic::error("bad-name", span, format!("`{key_name}` cannot be a key name"))
                .with_help(format!("key names are flags: lower-case letters, digits, `_` and `-`, starting with a letter, and not one of {}", RESERVED_FLAGS.join(", "))));
            return;
        }
        let k = k.into_inner();
        let words = k
            .values
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default();
        let ty = match KeyType::from_name(k.ty.get_ref(), &words) {
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
                let types = [
                    "bool",
                    "int",
                    "string",
                    "enum",
                    "ipv4-address",
                    "ipv4-prefix",
                ];
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
        let short = match k.short {
            None => None,
            Some(s) => {
                let mut cs = s.get_ref().chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) if c.is_ascii_alphabetic() && c != 'h' && c != 'o' => Some(c),
                    _ => {
                        self.diags.push(
                            Diagnostic::error(
                                "bad-key",
                                self.span(file, &s),
                                "`short` must be one letter other than h and o",
                            )
                            .with_help("write e.g. `short = \"l\"`"),
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
