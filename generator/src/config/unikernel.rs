//! Checking `[unikernel]`: the image name, the crate and entry point, `start`'s signature,
//! its arguments, dependencies, keys and log reporter.

use super::{expr, raw, Expr, Loader, Main, Namespace, DEFAULT_REPORTER, JOB};
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};
use crate::key;

impl Loader {
    pub(super) fn main(
        &mut self,
        file: FileId,
        span: std::ops::Range<usize>,
        m: raw::Unikernel,
    ) -> Option<Main> {
        let span = Span::new(file, span);
        let before = self.diags.len();
        let name = m.name.get_ref().clone();
        if let Err(e) = crate::plan::check_name(&name) {
            self.diags.push(
                Diagnostic::error("bad-name", self.span(file, &m.name), e).with_help(
                    "the name becomes the image file name, a binary and a package: e.g. `name = \"my_server\"`",
                ),
            );
        }
        let crate_name = m
            .crate_name
            .as_ref()
            .map_or(name.replace('-', "_"), |c| c.get_ref().clone());
        let crate_span = m
            .crate_name
            .as_ref()
            .map_or(self.span(file, &m.name), |c| self.span(file, c));
        if let Err(e) = crate::rust::check_crate_name(&crate_name) {
            self.diags
                .push(Diagnostic::error("bad-name", crate_span, e).with_help(
                    "`crate` names the unikernel's library as its Cargo.toml names its package",
                ));
        } else if let Some((_, declared)) =
            self.claimant(Namespace::Crate, &crate_name.replace('-', "_"))
        {
            self.diags.push(
                Diagnostic::error("duplicate-name", *declared, format!("crate `{crate_name}` is the unikernel's own crate, declared by [unikernel]"))
                    .with_note(crate_span, "the unikernel's crate is named here")
                    .with_help("remove it from [crates]: [unikernel] `crate` and `path` say where the unikernel's crate is"),
            );
        }
        let path = match m.path {
            None => ".".to_string(),
            Some(p) => {
                let text = p.get_ref();
                if text.is_empty()
                    || std::path::Path::new(text).is_absolute()
                    || text.contains('\0')
                {
                    self.diags.push(
                        Diagnostic::error("absolute-path", self.span(file, &p), format!("the unikernel's crate path `{}` is not a relative path", text.escape_debug()))
                            .with_help("give the folder of the unikernel's crate relative to unikernel.toml, e.g. `path = \".\"`"),
                    );
                }
                p.into_inner()
            }
        };
        let start = match m.start {
            None => format!("{}::start", crate_name.replace('-', "_")),
            Some(s) => {
                if let Err(e) = crate::rust::check_path(s.get_ref()) {
                    self.diags.push(
                        Diagnostic::error("bad-path", self.span(file, &s), format!("`start`: {e}"))
                            .with_help("`start` is the path of the entry function, e.g. `start = \"my_crate::start\"`"),
                    );
                }
                s.into_inner()
            }
        };
        let sig_text = m.signature.get_ref();
        let sig_span = self.span(file, &m.signature);
        let exact = self.sources.text(file)[sig_span.start as usize..sig_span.end as usize].len()
            == sig_text.len() + 2;
        let mut signature = Vec::new();
        let mut offset = 0;
        for part in sig_text.split("->") {
            let trimmed = part.trim();
            let lead = part.len() - part.trim_start().len();
            let part_span = if exact {
                sig_span.sub(1 + offset + lead, trimmed.len())
            } else {
                sig_span
            };
            offset += part.len() + 2;
            signature.push((trimmed.to_string(), part_span));
        }
        let (last, last_span) = signature.pop().expect("split yields at least one part");
        if last != JOB {
            self.diags.push(Diagnostic::error("bad-signature", last_span, format!("main's signature must end in `job`, found `{last}`"))
                .with_help("write it like `console -> time -> job`: the signatures of start's arguments, then `job`"));
        }
        for (s, sspan) in &signature {
            if !self.signatures.contains_key(s) {
                self.diags.push(Diagnostic::error("unknown-signature", *sspan, format!("unknown signature `{s}`{}", did_you_mean(s, self.signatures.keys().map(String::as_str))))
                    .with_help("use a built-in signature (run `mirage-nix catalogue`) or declare it under [signatures]"));
            }
        }
        let args: Vec<Expr> = m.args.iter().filter_map(|a| self.expr(file, a)).collect();
        let deps: Vec<Expr> = m.deps.iter().filter_map(|a| self.expr(file, a)).collect();
        let keys: Vec<(String, Span)> = m
            .keys
            .iter()
            .filter_map(|k| self.known_key(file, k).map(|n| (n, self.span(file, k))))
            .collect();
        let reporter = match m.reporter {
            None => expr::parse(DEFAULT_REPORTER, span, &None).ok(),
            Some(r) => {
                let rspan = Span::new(file, r.span());
                match r.into_inner() {
                    toml::Value::Boolean(false) => None,
                    toml::Value::String(s) => self.expr(
                        file,
                        &toml::Spanned::new(rspan.start as usize..rspan.end as usize, s),
                    ),
                    other => {
                        self.diags.push(Diagnostic::error("bad-reporter", rspan, format!("`reporter` must be an expression or false, found {}", key::toml_kind(&other)))
                            .with_help("write `reporter = \"logs(default_console)\"`, or `reporter = false` for no log reporter"));
                        None
                    }
                }
            }
        };
        if self.diags.len() > before {
            return None;
        }
        Some(Main {
            name,
            crate_name,
            path,
            start,
            signature,
            args,
            deps,
            keys,
            reporter,
            span,
        })
    }
}
