//! Checking `[constructors.NAME]`: parameters, implementations (crates, templates, embedded
//! folders, Solo5 manifest entries, targets) and choices (their cases and default).

use std::collections::BTreeMap;

use super::names::valid_name;
use super::{raw, Body, Case, Constructor, Expr, Impl, Loader, ManifestKind, Param, ParamType};
use crate::diag::{did_you_mean, Diagnostic, FileId, Span};
use crate::key::Stage;
use crate::template::{Place, Template};
use raw::S;

impl Loader {
    pub(super) fn param(&mut self, file: FileId, p: &S) -> Option<Param> {
        let span = self.span(file, p);
        let Some((name, ty)) = p.get_ref().split_once(':') else {
            self.diags.push(
                Diagnostic::error(
                    "bad-param",
                    span,
                    format!("parameter `{}` has no type", p.get_ref()),
                )
                .with_help(
                    "write parameters as \"name: type\", e.g. \"dir: string\" or \"net: network\"",
                ),
            );
            return None;
        };
        let (name, ty) = (name.trim(), ty.trim());
        if !valid_name(name) {
            self.diags.push(Diagnostic::error(
                "bad-param",
                span,
                format!("`{name}` is not a valid parameter name"),
            ));
            return None;
        }
        let ty = match ty {
            "string" => ParamType::Value("string"),
            "int" => ParamType::Value("int"),
            "bool" => ParamType::Value("bool"),
            sig if self.signatures.contains_key(sig) => ParamType::Device(sig.to_string()),
            other => {
                let mut known: Vec<&str> = self.signatures.keys().map(String::as_str).collect();
                known.extend(["string", "int", "bool"]);
                self.diags.push(Diagnostic::error("unknown-signature", span, format!("unknown parameter type `{other}`{}", did_you_mean(other, known)))
                    .with_help("a parameter is a value (string, int, bool) or a device of a declared signature"));
                return None;
            }
        };
        Some(Param {
            name: name.to_string(),
            ty,
        })
    }

    pub(super) fn implementation(
        &mut self,
        file: FileId,
        span: Span,
        params: &[Param],
        keys: &[String],
        i: &raw::Impl,
        deps: usize,
    ) -> Option<Impl> {
        let raw::Impl {
            crate_name,
            features,
            connect,
            fallible,
            embed,
            targets,
            manifest,
            disk,
        } = i;
        let fallible = *fallible;
        let crate_name = self.crate_name(file, crate_name)?;
        for f in features {
            if let Err(e) = crate::rust::check_feature(f.get_ref()) {
                self.diags.push(
                    Diagnostic::error("bad-name", self.span(file, f), e)
                        .with_help("features are named as the crate's Cargo.toml names them"),
                );
                return None;
            }
        }
        let targets = self.targets_of(file, targets)?;
        let embed = match embed {
            None => None,
            Some(e) => {
                if !params
                    .iter()
                    .any(|p| p.name == *e.get_ref() && p.ty == ParamType::Value("string"))
                {
                    self.diags.push(Diagnostic::error("bad-embed", self.span(file, e), format!("`embed` names `{}`, which is not a string parameter", e.get_ref()))
                        .with_help("`embed` names the string parameter holding the folder to embed, e.g. `embed = \"dir\"`"));
                    return None;
                }
                Some(e.get_ref().clone())
            }
        };
        let connect = self.template(
            file,
            connect,
            Place::Connect,
            params,
            keys,
            deps,
            embed.is_some(),
        )?;
        // The catalogue's connect code is checked by its tests, not at every load.
        if !self.is_catalogue(file) {
            self.rust_exprs
                .push((self.span(file, &i.connect), connect.with_stand_ins(params)));
        }
        let manifest = match manifest {
            None => None,
            Some(m) => {
                let kind = match m.kind.get_ref().as_str() {
                    "net" => ManifestKind::Net,
                    "block" => ManifestKind::Block,
                    other => {
                        self.diags.push(Diagnostic::error("bad-manifest", self.span(file, &m.kind), format!("unknown Solo5 device kind `{other}`"))
                            .with_help("a manifest entry is `{ kind = \"net\" | \"block\", name = \"{{ raw.name }}\" }`"));
                        return None;
                    }
                };
                let name = self.template(
                    file,
                    &m.name,
                    Place::ManifestName,
                    params,
                    keys,
                    deps,
                    false,
                )?;
                Some((kind, name))
            }
        };
        let disk = match disk {
            None => None,
            Some(d) => {
                let format = match d.format.get_ref().as_str() {
                    "tar" => crate::plan::DiskFormat::Tar,
                    "fat" => crate::plan::DiskFormat::Fat,
                    other => {
                        self.diags.push(
                            Diagnostic::error(
                                "bad-disk",
                                self.span(file, &d.format),
                                format!("unknown disk format `{other}`"),
                            )
                            .with_help(
                                "a disk is `{ format = \"tar\" | \"fat\", dir = \"PARAM\" }`",
                            ),
                        );
                        return None;
                    }
                };
                if !params
                    .iter()
                    .any(|p| p.name == *d.dir.get_ref() && p.ty == ParamType::Value("string"))
                {
                    self.diags.push(Diagnostic::error("bad-disk", self.span(file, &d.dir), format!("`dir` names `{}`, which is not a string parameter", d.dir.get_ref()))
                        .with_help("`dir` names the string parameter holding the folder the disk is made of, e.g. `dir = \"dir\"`"));
                    return None;
                }
                Some((format, d.dir.get_ref().clone()))
            }
        };
        Some(Impl {
            targets,
            crate_name,
            manifest,
            disk,
            features: features.iter().map(|f| f.get_ref().clone()).collect(),
            connect,
            fallible,
            embed,
            span,
        })
    }

    pub(super) fn constructor(
        &mut self,
        file: FileId,
        name: S,
        c: toml::Spanned<raw::Constructor>,
    ) -> Option<Constructor> {
        let span = self.span(file, &name);
        let c = c.into_inner();
        let before = self.diags.len();
        let params: Vec<Param> = c
            .params
            .iter()
            .filter_map(|p| self.param(file, p))
            .collect();
        for (i, p) in params.iter().enumerate() {
            if params[..i].iter().any(|q| q.name == p.name) {
                self.diags.push(Diagnostic::error(
                    "duplicate-name",
                    span,
                    format!(
                        "constructor `{}` has two parameters named `{}`",
                        name.get_ref(),
                        p.name
                    ),
                ));
            }
        }
        let signature = self.signature_name(file, &c.signature);
        let keys: Vec<String> = c
            .keys
            .iter()
            .filter_map(|k| self.known_key(file, k))
            .collect();
        let deps: Vec<Expr> = c.deps.iter().filter_map(|d| self.expr(file, d)).collect();
        let mut lets = BTreeMap::new();
        for (n, e) in &c.lets {
            if !valid_name(n.get_ref()) || params.iter().any(|p| p.name == *n.get_ref()) {
                self.diags.push(Diagnostic::error("bad-name", self.span(file, n), format!("`{}` cannot name a local device here", n.get_ref()))
                    .with_help("local devices need a lower-case name that no parameter of the constructor has"));
            } else if let Some(e) = self.expr(file, e) {
                lets.insert(n.get_ref().clone(), e);
            }
        }
        let inline = c.connect.is_some() || c.crate_name.is_some();
        let body = match (c.choose, inline, c.impls.is_empty()) {
            (Some(cases), false, true) => {
                let mut out = Vec::new();
                for case in cases {
                    let cspan = Span::new(file, case.span());
                    let case = case.into_inner();
                    let mut when = Vec::new();
                    if let Some(w) = &case.when {
                        let wspan = Span::new(file, w.span());
                        for (k, v) in w.get_ref() {
                            let Some(key) = self.keys.get(k) else {
                                self.diags.push(Diagnostic::error("unknown-key", wspan, format!("unknown key `{k}` in `when`{}", did_you_mean(k, self.keys.keys().map(String::as_str))))
                                    .with_help("a case tests declared keys, e.g. `when = { kv_ro = \"crunch\" }`"));
                                continue;
                            };
                            if key.stage != Stage::Configure {
                                self.diags.push(Diagnostic::error("runtime-key-choice", wspan, format!("key `{k}` is a runtime key, so it cannot choose devices"))
                                    .with_help(format!("declare `{k}` with `stage = \"configure\"`, or choose in the unikernel's code at run time")));
                                continue;
                            }
                            match key.ty.from_toml(v) {
                                Ok(v) => when.push((k.clone(), v)),
                                Err(e) => self.diags.push(Diagnostic::error(
                                    "bad-case",
                                    wspan,
                                    format!("`when` tests key `{k}`: {e}"),
                                )),
                            }
                        }
                        if w.get_ref().is_empty() {
                            self.diags.push(
                                Diagnostic::error(
                                    "bad-case",
                                    wspan,
                                    "an empty `when` always holds",
                                )
                                .with_help("remove `when` to make this the default case"),
                            );
                        }
                    }
                    if let Some(use_) = self.expr(file, &case.use_) {
                        out.push(Case {
                            when,
                            use_,
                            span: cspan,
                        });
                    }
                }
                let defaults = out.iter().filter(|c| c.when.is_empty()).count();
                if defaults != 1 || out.last().is_some_and(|c| !c.when.is_empty()) {
                    self.diags.push(Diagnostic::error("bad-choice", span, format!("the choice `{}` needs exactly one default case, last", name.get_ref()))
                        .with_help("end `choose` with a case that has no `when`, e.g. `{ use = \"crunch(dir)\" }`"));
                }
                Body::Choose(out)
            }
            (None, _, _) if inline || !c.impls.is_empty() || !c.unavailable.is_empty() => {
                let mut impls = Vec::new();
                if inline {
                    match (&c.crate_name, &c.connect) {
                        (Some(cr), Some(connect)) => {
                            let shorthand = raw::Impl {
                                crate_name: cr.clone(),
                                features: c.features.clone(),
                                connect: connect.clone(),
                                fallible: c.fallible.unwrap_or(false),
                                embed: c.embed.clone(),
                                targets: c.targets.clone(),
                                manifest: c.manifest.clone(),
                                disk: c.disk.clone(),
                            };
                            if let Some(i) = self.implementation(file, span, &params, &keys, &shorthand, c.deps.len()) {
                                impls.push(i);
                            }
                        }
                        _ => self.diags.push(Diagnostic::error("bad-constructor", span, format!("constructor `{}` needs both `crate` and `connect`", name.get_ref()))
                            .with_help("`crate` names where the code lives and `connect` is the Rust expression that builds the device")),
                    }
                }
                for i in &c.impls {
                    let ispan = Span::new(file, i.span());
                    let i = i.get_ref();
                    if let Some(i) =
                        self.implementation(file, ispan, &params, &keys, i, c.deps.len())
                    {
                        impls.push(i);
                    }
                }
                let mut unavailable = BTreeMap::new();
                for (t, why) in &c.unavailable {
                    if self.targets_of(file, &Some(vec![t.clone()])).is_some() {
                        unavailable.insert(t.get_ref().clone(), why.get_ref().clone());
                    }
                }
                Body::Impls { impls, unavailable }
            }
            _ => {
                self.diags.push(Diagnostic::error("bad-constructor", span, format!("constructor `{}` must either `choose` or give implementations, not both or neither", name.get_ref()))
                    .with_help("write `crate` and `connect` (or [[constructors.NAME.impl]] tables) for a device, or `choose = [...]` for a choice"));
                return None;
            }
        };
        let signature = signature?;
        if self.diags.len() > before {
            return None;
        }
        Some(Constructor {
            name: name.into_inner(),
            doc: c.doc.map(|d| d.into_inner()).unwrap_or_default(),
            params,
            signature,
            keys,
            deps,
            lets,
            body,
            span,
        })
    }

    /// Parses and checks a template in its place, reporting where in the string it is wrong.
    #[allow(clippy::too_many_arguments)]
    fn template(
        &mut self,
        file: FileId,
        s: &S,
        place: Place,
        params: &[Param],
        keys: &[String],
        deps: usize,
        embed: bool,
    ) -> Option<Template> {
        let checked = Template::parse(s.get_ref())
            .and_then(|t| t.check(place, params, keys, deps, embed).map(|()| t));
        match checked {
            Ok(t) => Some(t),
            Err(e) => {
                let (what, help) = match place {
                    Place::Connect => ("connect template", "connect code is a Rust expression with {{ param }}, {{ keys.NAME }}, {{ deps[i] }}, {{ embed }} and {{ id }} placeholders"),
                    Place::ManifestName => ("manifest name template", "the manifest name is a template over the constructor's parameters, e.g. `{{ raw.name }}`"),
                };
                self.diags.push(
                    Diagnostic::error(
                        "bad-template",
                        self.span_in(file, s, e.offset, 2),
                        format!("bad {what}: {}", e.message),
                    )
                    .with_help(help),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Body;

    /// Loading skips the syntax check of the catalogue's own connect code (every command
    /// would pay for it); this test is that check.
    #[test]
    fn the_catalogues_connect_code_is_one_rust_expression_each() {
        let none = "[unikernel]\nname = \"none\"\nsignature = \"job\"\nreporter = false\n";
        let config = super::super::load_str(
            std::path::Path::new("."),
            "none.toml",
            none,
            &mut Default::default(),
        )
        .unwrap();
        let mut codes = Vec::new();
        for c in config.constructors.values() {
            if let Body::Impls { impls, .. } = &c.body {
                codes.extend(impls.iter().map(|i| i.connect.with_stand_ins(&c.params)));
            }
        }
        assert!(codes.len() > 30, "{} templates", codes.len());
        for (code, result) in codes
            .clone()
            .iter()
            .zip(crate::rust::check_expressions(codes))
        {
            assert!(result.is_ok(), "{code}: {result:?}");
        }
    }
}
