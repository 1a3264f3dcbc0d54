//! Connect-code templates: the Rust expression that builds one device.
//!
//! A constructor's `connect` is a Tera template. When the plan is made, it is rendered with
//! each device parameter bound to the Rust variable holding that device, each value parameter
//! bound to a Rust literal, `keys.NAME` bound to the Rust expression reading the key,
//! `deps[i]` to the dependencies, `embed` to the module of embedded files and `id` to the node
//! id. Templates are checked when the configuration is loaded, so a typo is a located error
//! rather than a broken crate.

use std::collections::BTreeMap;

use crate::config::{Param, ParamType};

/// Names a template always sees, so no parameter may take them.
pub const RESERVED: &[&str] = &["keys", "deps", "embed", "id", "raw"];

/// What a template is rendered with.
#[derive(Debug, Default, serde::Serialize)]
pub struct Bindings {
    /// Parameter name to Rust code (a variable or a literal).
    #[serde(flatten)]
    pub params: BTreeMap<String, String>,
    /// Value parameter name to its value as plain text (not a Rust literal).
    pub raw: BTreeMap<String, String>,
    /// Key name to the Rust expression reading it.
    pub keys: BTreeMap<String, String>,
    /// Rust variables of the dependencies, in order.
    pub deps: Vec<String>,
    /// The module holding embedded files, when the implementation embeds a folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed: Option<String>,
    /// The node id.
    pub id: String,
}

/// Renders a template with its bindings.
pub fn render(template: &str, bindings: &Bindings) -> Result<String, String> {
    let context = tera::Context::from_serialize(bindings).map_err(|e| e.to_string())?;
    tera::Tera::one_off(template, &context, false).map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        message
    })
}

/// Checks a template against the parameters and keys its constructor declares, by rendering
/// it with placeholder bindings.
pub fn check_connect(
    template: &str,
    params: &[Param],
    keys: &[String],
    embed: bool,
) -> Result<(), String> {
    if let Some(p) = params.iter().find(|p| RESERVED.contains(&p.name.as_str())) {
        return Err(format!(
            "parameter `{}` would hide a name every template sees ({})",
            p.name,
            RESERVED.join(", ")
        ));
    }
    let bindings = Bindings {
        params: params
            .iter()
            .map(|p| {
                let code = match &p.ty {
                    ParamType::Value(_) => "\"value\"".to_string(),
                    ParamType::Device(_) => format!("device_{}", p.name),
                };
                (p.name.clone(), code)
            })
            .collect(),
        raw: params
            .iter()
            .filter(|p| matches!(p.ty, ParamType::Value(_)))
            .map(|p| (p.name.clone(), "value".to_string()))
            .collect(),
        keys: keys
            .iter()
            .map(|k| (k.clone(), format!("key_{k}")))
            .collect(),
        deps: (0..8).map(|i| format!("dep_{i}")).collect(),
        embed: embed.then(|| "embedded".to_string()),
        id: "node_0".to_string(),
    };
    render(template, &bindings)
        .map(|_| ())
        .map_err(|e| format!("connect template does not render: {e}"))
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

    #[test]
    fn renders_params_and_keys() {
        let mut b = Bindings::default();
        b.params.insert("net".into(), "net_0.clone()".into());
        b.keys.insert(
            "ipv4-gateway".into(),
            "args.ipv4_addr(\"ipv4-gateway\")".into(),
        );
        let out = render("X::new({{ net }}, {{ keys[\"ipv4-gateway\"] }})", &b).unwrap();
        assert_eq!(
            out,
            "X::new(net_0.clone(), args.ipv4_addr(\"ipv4-gateway\"))"
        );
    }

    #[test]
    fn checking_catches_unknown_names() {
        let params = [param("dir", ParamType::Value("string"))];
        assert!(check_connect("Crunch::new({{ dir }})", &params, &[], false).is_ok());
        let err = check_connect("Crunch::new({{ dri }})", &params, &[], false).unwrap_err();
        assert!(err.contains("dri"), "{err}");
        assert!(check_connect("X::new({{ keys.ipv4 }})", &params, &[], false).is_err());
        assert!(check_connect("X::new({{ embed }})", &params, &[], false).is_err());
        assert!(check_connect("X::new({{ dir }}", &params, &[], false).is_ok());
        assert!(check_connect("X::new({{ dir }", &params, &[], false).is_err());
    }

    #[test]
    fn reserved_names_cannot_be_params() {
        let params = [param("keys", ParamType::Value("string"))];
        assert!(check_connect("x", &params, &[], false)
            .unwrap_err()
            .contains("hide"));
    }
}
