//! Names: their grammar, their one shared namespace, and looking declared names up.

use std::collections::BTreeMap;

use super::{raw, Loader, Namespace};
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};
use raw::S;

/// `name` if `map` declares it, else an `unknown-<what>` diagnostic suggesting the closest name.
pub(super) fn known<T>(
    map: &BTreeMap<String, T>,
    name: &str,
    what: &str,
    span: Span,
    help: String,
) -> Result<String, Diagnostic> {
    if map.contains_key(name) {
        return Ok(name.to_string());
    }
    let code = match what {
        "signature" => "unknown-signature",
        "key" => "unknown-key",
        "crate" => "unknown-crate",
        "target" => "unknown-target",
        other => unreachable!("no diagnostic code for an unknown {other}"),
    };
    let hint = did_you_mean(name, map.keys().map(String::as_str));
    Err(Diagnostic::error(code, span, format!("unknown {what} `{name}`{hint}")).with_help(help))
}

pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= crate::rust::MAX_NAME_BYTES
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn valid_key_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= crate::rust::MAX_NAME_BYTES
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Loader {
    /// Whether `name` can name a new constructor or device (`what`): well formed and not yet
    /// taken in their shared namespace; reports why not.
    pub(super) fn fresh_name(&mut self, what: &str, name: &str, span: Span) -> bool {
        if let Some((_, prev)) = self.claim(Namespace::Device, name.to_string(), name, span) {
            self.duplicate(what, name, span, prev);
            return false;
        }
        if !valid_name(name) {
            self.diags.push(
                Diagnostic::error(
                    "bad-name",
                    span,
                    format!("`{name}` is not a valid {what} name"),
                )
                .with_help("use lower-case letters, digits and `_`, starting with a letter"),
            );
            return false;
        }
        true
    }

    pub(super) fn duplicate(&mut self, what: &str, name: &str, span: Span, previous: Span) {
        self.diags.push(
            Diagnostic::error("duplicate-name", span, format!("{what} `{name}` is declared twice"))
                .with_note(previous, "first declared here")
                .with_help(format!("rename one of them; names of constructors and named devices share one namespace, and `{name}` may be built in (run `mirage-nix catalogue`)")),
        );
    }

    pub(super) fn signature_name(&mut self, file: FileId, s: &S) -> Option<String> {
        let help = "use a built-in signature (run `mirage-nix catalogue`) or declare it under [signatures]";
        let r = known(
            &self.signatures,
            s.get_ref().trim(),
            "signature",
            self.span(file, s),
            help.into(),
        );
        self.keep(r)
    }

    pub(super) fn known_key(&mut self, file: FileId, k: &S) -> Option<String> {
        let help = "declare it under [keys.NAME] with a type, default, stage and doc";
        let r = known(
            &self.keys,
            k.get_ref(),
            "key",
            self.span(file, k),
            help.into(),
        );
        self.keep(r)
    }

    pub(super) fn crate_name(&mut self, file: FileId, c: &S) -> Option<String> {
        let help = "declare it under [crates.NAME] with `path` or `version`";
        let r = known(
            &self.crates,
            c.get_ref(),
            "crate",
            self.span(file, c),
            help.into(),
        );
        self.keep(r)
    }

    pub(super) fn targets_of(
        &mut self,
        file: FileId,
        ts: &Option<Vec<S>>,
    ) -> Option<Option<Vec<String>>> {
        let Some(ts) = ts else { return Some(None) };
        let help = format!(
            "targets are {}",
            self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        let r: Result<Vec<String>, Diagnostic> = ts
            .iter()
            .map(|t| {
                known(
                    &self.targets,
                    t.get_ref(),
                    "target",
                    self.span(file, t),
                    help.clone(),
                )
            })
            .collect();
        self.keep(r).map(Some)
    }
}
