//! The subset of the Spin application manifest (`spin_manifest_version = 2`)
//! that the test host understands.
//!
//! Anything the host cannot honour faithfully (remote sources, `files`,
//! non-HTTP triggers with components, inline components) is rejected with an
//! error rather than silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

/// A parsed `spin.toml`.
#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    pub spin_manifest_version: toml::Value,
    #[serde(default)]
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

/// `[application]`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Application {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// One entry of `[variables]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    #[allow(dead_code)]
    pub secret: bool,
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// `[trigger]`: only the HTTP trigger is served.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Deserialize)]
pub(crate) struct HttpTrigger {
    pub route: RouteDecl,
    pub component: Option<toml::Value>,
    #[allow(dead_code)]
    pub id: Option<String>,
    pub executor: Option<toml::Value>,
    pub static_response: Option<toml::Value>,
}

/// `route = "/path"` or `route = { private = true }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RouteDecl {
    Path(String),
    Private { private: bool },
}

/// One `[component.<id>]`.
#[derive(Debug, Deserialize)]
pub(crate) struct ComponentDecl {
    pub source: toml::Value,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(flatten)]
    #[allow(dead_code)]
    pub other: BTreeMap<String, toml::Value>,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read manifest {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .with_context(|| format!("failed to parse manifest {}", path.display()))?;
        manifest
            .validate()
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        Ok(manifest)
    }

    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.spin_manifest_version.as_integer() == Some(2)
                || self.spin_manifest_version.as_str() == Some("2"),
            "only spin_manifest_version = 2 is supported, found {}",
            self.spin_manifest_version
        );
        for (name, var) in &self.variables {
            crate::variables::validate_name(name)
                .with_context(|| format!("invalid variable name {name:?}"))?;
            if var.required && var.default.is_some() {
                bail!("variable {name:?} cannot both be required and have a default");
            }
            if !var.required && var.default.is_none() {
                bail!("variable {name:?} must either be required or have a default");
            }
        }
        if let Some(kind) = self.trigger.other.keys().next() {
            bail!("trigger type {kind:?} is not supported by the test host (only http)");
        }
        for trigger in &self.trigger.http {
            if trigger.executor.is_some() {
                bail!("`executor` on an http trigger is not supported by the test host");
            }
            if trigger.static_response.is_some() {
                bail!("`static_response` is not supported by the test host");
            }
            match &trigger.component {
                Some(toml::Value::String(id)) => {
                    ensure!(
                        self.component.contains_key(id),
                        "http trigger refers to unknown component {id:?}"
                    );
                }
                Some(_) => bail!("inline trigger components are not supported by the test host"),
                None => bail!("an http trigger has no `component`"),
            }
            if let RouteDecl::Private { private: false } = trigger.route {
                bail!("route must be a string pattern or '{{ private = true }}'");
            }
        }
        for (id, component) in &self.component {
            if !component.files.is_empty() {
                bail!("component {id:?}: `files` is not supported by the test host");
            }
            if !component.allowed_http_hosts.is_empty() {
                bail!(
                    "component {id:?}: `allowed_http_hosts` is deprecated; use `allowed_outbound_hosts`"
                );
            }
            if component.source.as_str().is_none() {
                bail!("component {id:?}: only a local file `source` is supported");
            }
            for key in component.variables.keys() {
                crate::variables::validate_name(key)
                    .with_context(|| format!("component {id:?}: invalid variable name {key:?}"))?;
            }
        }
        Ok(())
    }
}

impl ComponentDecl {
    /// The `source` path as written in the manifest.
    pub fn source_path(&self) -> &str {
        self.source.as_str().unwrap_or_default()
    }
}
