//! Spin variables: application `[variables]`, component variable templates,
//! and the environment provider (`SPIN_VARIABLE_<NAME>`).
//!
//! Follows Spin's `spin-expressions` rules: names are lower-case ASCII letters,
//! digits and single underscores, starting with a letter; component values are
//! templates whose `{{ name }}` parts name application variables; a provider
//! value beats the default; a required variable that no provider resolves
//! stops the app from starting.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, anyhow, bail};

use crate::manifest::VariableDecl;

/// Checks a variable name against Spin's rules. The error text is Spin's
/// (`"aX": invalid character 'X'. ...`).
pub(crate) fn check_name(key: &str) -> Result<(), String> {
    let reason = if key.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        )
    } else if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_owned()
    } else if !key.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_owned()
    } else if key.contains("__") {
        "must not contain multiple consecutive underscores".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{key:?}: {reason}"))
}

/// [`check_name`] as an `anyhow` error.
pub(crate) fn validate_name(key: &str) -> anyhow::Result<()> {
    check_name(key).map_err(|e| anyhow!("invalid variable name: {e}"))
}

/// A parsed `{{ }}` template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses `text`: `{{ name }}` is an expression, everything else literal.
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("invalid template {text:?}: unclosed '{{{{'"))?;
            let name = after[..end].trim();
            validate_name(name).with_context(|| format!("invalid template {text:?}"))?;
            parts.push(Part::Expr(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The variable names the template refers to.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(name) => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }
}

/// Application variables, fully resolved at startup.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    values: HashMap<String, String>,
}

impl Resolver {
    /// Resolves every application variable: the environment provider first
    /// (`extra_env` before the process environment), then the default.
    pub fn new(
        decls: &BTreeMap<String, VariableDecl>,
        extra_env: &HashMap<String, String>,
    ) -> anyhow::Result<Resolver> {
        let mut values = HashMap::new();
        for (name, decl) in decls {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            let from_env = extra_env
                .get(&env_name)
                .cloned()
                .or_else(|| std::env::var(&env_name).ok());
            let value = match (from_env, &decl.default) {
                (Some(v), _) => v,
                (None, Some(default)) => default.clone(),
                (None, None) => bail!(
                    "no provider resolved required variable {name:?} (set {env_name} in the environment)"
                ),
            };
            values.insert(name.clone(), value);
        }
        Ok(Resolver { values })
    }

    /// Checks that every name in `template` is an application variable.
    pub fn check(&self, template: &Template) -> anyhow::Result<()> {
        for name in template.names() {
            if !self.values.contains_key(name) {
                bail!("invalid variable template: unknown variable {name:?}");
            }
        }
        Ok(())
    }

    /// Expands `template` with the resolved application variables.
    pub fn expand(&self, template: &Template) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &template.parts {
            match part {
                Part::Lit(lit) => out.push_str(lit),
                Part::Expr(name) => out.push_str(
                    self.values
                        .get(name)
                        .ok_or_else(|| anyhow!("unknown variable {name:?}"))?,
                ),
            }
        }
        Ok(out)
    }
}

/// Resolves a component's `[component.<id>.variables]` into final values.
pub(crate) fn resolve_component(
    component_id: &str,
    templates: &BTreeMap<String, String>,
    resolver: &Resolver,
) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (key, text) in templates {
        let template = Template::parse(text)
            .with_context(|| format!("component {component_id:?} variable {key:?}"))?;
        resolver
            .check(&template)
            .with_context(|| format!("component {component_id:?} variable {key:?}"))?;
        out.insert(key.clone(), resolver.expand(&template)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates() {
        let decls: BTreeMap<String, VariableDecl> = toml::from_str(
            r#"
            issuer = { default = "http://x" }
            name = { default = "n" }
            "#,
        )
        .unwrap();
        let env = HashMap::from([("SPIN_VARIABLE_NAME".to_owned(), "env".to_owned())]);
        let r = Resolver::new(&decls, &env).unwrap();
        let t = Template::parse("a-{{ issuer }}-{{name}}-b").unwrap();
        assert_eq!(r.expand(&t).unwrap(), "a-http://x-env-b");
        assert_eq!(
            r.expand(&Template::parse("plain").unwrap()).unwrap(),
            "plain"
        );
        assert!(Template::parse("{{ unclosed").is_err());
        assert!(r.check(&Template::parse("{{ nope }}").unwrap()).is_err());
    }
}
