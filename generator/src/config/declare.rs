//! The first pass: every declaration of a file is recorded under its name, so that keys,
//! constructors and devices can refer to names declared later or in the catalogue.

use std::path::Path;

use super::names::valid_name;
use super::{raw, Crate, CrateSource, Loader, NamedDevice, Namespace, Signature, Target, JOB};
use crate::diag::{Diagnostic, FileId, Span};

impl Loader {
    pub(super) fn declare(&mut self, file: FileId, f: raw::File, builtin: bool) {
        for (name, t) in f.targets {
            let t = t.into_inner();
            self.targets.insert(
                name.get_ref().clone(),
                Target {
                    name: name.into_inner(),
                    doc: t.doc.into_inner(),
                    runtime: t.runtime.into_inner(),
                    std: t.std,
                    image: t.image.into_inner(),
                    format: t.format.into_inner(),
                    rustflags: t.rustflags.into_iter().map(|f| f.into_inner()).collect(),
                },
            );
        }
        for (name, s) in f.signatures {
            let span = self.span(file, &name);
            if let Some(prev) = self.signatures.get(name.get_ref()) {
                let prev = prev.span;
                self.duplicate("signature", name.get_ref(), span, prev);
                continue;
            }
            if !valid_name(name.get_ref()) || name.get_ref() == JOB {
                self.diags.push(Diagnostic::error("bad-name", span, format!("`{}` is not a valid signature name", name.get_ref()))
                    .with_help("use lower-case letters, digits and `_`, starting with a letter; `job` is reserved for main"));
                continue;
            }
            let s = s.into_inner();
            if let Err(e) = crate::rust::check_path(s.trait_path.get_ref()) {
                self.diags.push(
                    Diagnostic::error(
                        "bad-path",
                        self.span(file, &s.trait_path),
                        format!("`trait`: {e}"),
                    )
                    .with_help(
                        "name the Rust trait by its path, e.g. `trait = \"my_crate::Greet\"`",
                    ),
                );
                continue;
            }
            self.signatures.insert(
                name.get_ref().clone(),
                Signature {
                    name: name.into_inner(),
                    trait_path: s.trait_path.into_inner(),
                    doc: s.doc.map(|d| d.into_inner()).unwrap_or_default(),
                    span,
                },
            );
        }
        for (name, c) in f.crates {
            let span = self.span(file, &name);
            let rust_name = name.get_ref().replace('-', "_");
            if let Some((_, prev)) = self.claim(Namespace::Crate, rust_name, name.get_ref(), span) {
                self.duplicate("crate", name.get_ref(), span, prev);
                continue;
            }
            if let Err(e) = crate::rust::check_crate_name(name.get_ref()) {
                self.diags.push(
                    Diagnostic::error("bad-name", span, e)
                        .with_help("a crate is named as its Cargo.toml names its package"),
                );
                continue;
            }
            let c = c.into_inner();
            let source = match (c.path, c.version) {
                (Some(p), None) if builtin => CrateSource::Mirage(p.into_inner()),
                (Some(p), None) => {
                    let path = p.get_ref();
                    if Path::new(path).is_absolute() {
                        self.diags.push(Diagnostic::error("absolute-path", self.span(file, &p), format!("crate path `{path}` is absolute"))
                            .with_help("give the path relative to the unikernel's directory, so plans stay machine-independent"));
                        continue;
                    }
                    CrateSource::Local(p.into_inner())
                }
                (None, Some(v)) => {
                    if let Err(e) = crate::rust::check_version_req(v.get_ref()) {
                        self.diags.push(
                            Diagnostic::error("bad-crate", self.span(file, &v), e)
                                .with_help("write a version requirement as cargo reads it, e.g. `version = \"1.2\"`"),
                        );
                        continue;
                    }
                    CrateSource::Registry(v.into_inner())
                }
                _ => {
                    self.diags.push(Diagnostic::error("bad-crate", span, format!("crate `{}` needs exactly one of `path` or `version`", name.get_ref()))
                        .with_help("write `path = \"my_device\"` for a local crate or `version = \"1.2\"` for one on crates.io"));
                    continue;
                }
            };
            self.crates.insert(
                name.get_ref().clone(),
                Crate {
                    name: name.into_inner(),
                    source,
                    span,
                },
            );
        }
        for (name, k) in f.keys {
            self.raw_keys.push((file, name, k));
        }
        for (name, c) in f.constructors {
            let span = self.span(file, &name);
            if self.fresh_name("constructor", name.get_ref(), span) {
                self.raw_constructors.push((file, name, c));
            }
        }
        for (name, e) in f.devices {
            let span = self.span(file, &name);
            if !self.fresh_name("device", name.get_ref(), span) {
                continue;
            }
            if let Some(expr) = self.expr(file, &e) {
                self.devices.insert(
                    name.get_ref().clone(),
                    NamedDevice {
                        name: name.into_inner(),
                        expr,
                        span,
                    },
                );
            }
        }
    }

    /// Checks keys and constructors once every name is known.
    pub(super) fn finish_declarations(&mut self) {
        for (file, name, k) in std::mem::take(&mut self.raw_keys) {
            self.key(file, name, k);
        }
        for (file, name, c) in std::mem::take(&mut self.raw_constructors) {
            if let Some(c) = self.constructor(file, name, c) {
                self.constructors.insert(c.name.clone(), c);
            }
        }
        let (spans, codes): (Vec<Span>, Vec<String>) =
            std::mem::take(&mut self.rust_exprs).into_iter().unzip();
        for (span, result) in spans.into_iter().zip(crate::rust::check_expressions(codes)) {
            if let Err(message) = result {
                self.diags.push(
                    Diagnostic::error("bad-connect", span, format!("connect code {message}"))
                        .with_help("connect code is one Rust expression (it may be a block `{ ... }`): the generated main.rs binds it with `let`"),
                );
            }
        }
    }
}
