//! HTTP routing, mirroring Spin's `spin-http` router on top of `routefinder`:
//! exact routes beat parameters, which beat wildcards; among wildcards the
//! longest prefix wins; `/...` is a trailing wildcard; `:name` captures one
//! segment; private routes are never added.

use std::collections::BTreeMap;

use anyhow::anyhow;

/// What a route maps to.
#[derive(Debug, Clone)]
struct RouteHandler {
    component_id: String,
    /// The route with the application base (always `/` here) applied.
    based_route: String,
    /// The route as written in the manifest.
    raw_route: String,
}

/// The router for one application.
#[derive(Debug)]
pub(crate) struct Router {
    router: routefinder::Router<RouteHandler>,
}

/// The result of routing one path.
#[derive(Debug, Clone)]
pub(crate) struct RouteMatch {
    /// The component that handles the request.
    pub component_id: String,
    /// `spin-matched-route`.
    pub based_route: String,
    /// `spin-raw-component-route`.
    pub raw_route: String,
    /// `spin-path-info`.
    pub path_info: String,
    /// `spin-path-match-<name>` values.
    pub named_wildcards: BTreeMap<String, String>,
}

impl RouteMatch {
    /// Spin's synthetic match for a service-chaining request: the whole
    /// `path` as if matched by a `/...` route of `component_id` (which need
    /// not have any route).
    pub fn synthetic(component_id: &str, path: &str) -> RouteMatch {
        RouteMatch {
            component_id: component_id.to_owned(),
            based_route: "/...".to_owned(),
            raw_route: "/...".to_owned(),
            path_info: path.to_owned(),
            named_wildcards: BTreeMap::new(),
        }
    }

    /// `spin-component-route`: the raw route without a trailing `/...`.
    pub fn raw_route_or_prefix(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }
}

impl Router {
    /// Builds the router from `(component id, route)` pairs; `None` routes are
    /// private and left out. A later duplicate route replaces an earlier one,
    /// as in Spin (which logs it).
    pub fn build<'a>(
        routes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> anyhow::Result<Router> {
        let mut entries: Vec<(String, RouteHandler)> = Vec::new();
        for (component_id, route) in routes {
            let Some(raw_route) = route else { continue };
            let based_route = sanitize_with_base("/", raw_route);
            if let Some(existing) = entries.iter_mut().find(|(r, _)| r == raw_route) {
                eprintln!(
                    "spin-test-host: route {raw_route:?} of component {:?} is a duplicate of component {component_id:?}'s and will never be used",
                    existing.1.component_id
                );
                existing.1.component_id = component_id.to_owned();
                continue;
            }
            entries.push((
                raw_route.to_owned(),
                RouteHandler {
                    component_id: component_id.to_owned(),
                    based_route,
                    raw_route: raw_route.to_owned(),
                },
            ));
        }

        let mut router = routefinder::Router::new();
        for (_, handler) in entries {
            let spec = if let Some(prefix) = handler.based_route.strip_suffix("/...") {
                format!("{prefix}/*")
            } else {
                handler.based_route.clone()
            };
            let component_id = handler.component_id.clone();
            let route = handler.based_route.clone();
            router.add(spec, handler).map_err(|e| {
                anyhow!("Error parsing route {route} associated with component {component_id}: {e}")
            })?;
        }
        let router = Router { router };
        router.warn_about_shadowed_exact_routes();
        Ok(router)
    }

    /// routefinder (like Spin) orders some route pairs inconsistently, e.g. a
    /// route starting with a dot (`/.well-known/x`) against a root wildcard
    /// declared after it, so an exact route can lose to a wildcard. Spin does
    /// the same; say so loudly rather than let a request vanish.
    fn warn_about_shadowed_exact_routes(&self) {
        for (_, handler) in self.router.iter() {
            let route = handler.based_route.as_str();
            if route.contains(':') || route.contains('*') || route.ends_with("/...") {
                continue;
            }
            let path = if route.is_empty() { "/" } else { route };
            if let Some(m) = self.route(path)
                && m.raw_route != handler.raw_route
            {
                eprintln!(
                    "spin-test-host: warning: requests to {path:?} go to route {:?} (component {:?}), not to the exact route {:?} (component {:?}); \
                     Spin's router (routefinder 0.5) does the same. Declare the wildcard route before the exact one in the manifest.",
                    m.raw_route, m.component_id, handler.raw_route, handler.component_id
                );
            }
        }
    }

    /// Finds the component for `path`, or `None` (a 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let best = self.router.best_match(path)?;
        let handler = best.handler();
        let captures = best.captures();
        let named_wildcards = captures
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Spin has always kept trailing slashes in the path info, which
        // routefinder drops.
        let path_info = captures
            .wildcard()
            .map(|s| match (s.is_empty(), path.ends_with('/')) {
                (true, false) => s.to_owned(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            })
            .unwrap_or_default();
        Some(RouteMatch {
            component_id: handler.component_id.clone(),
            based_route: handler.based_route.clone(),
            raw_route: handler.raw_route.clone(),
            path_info,
            named_wildcards,
        })
    }
}

fn sanitize_with_base(base: &str, path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{}{}", strip_one_slash(base), strip_one_slash(&path))
}

fn strip_one_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&'static str, &'static str)]) -> Router {
        Router::build(routes.iter().map(|(c, r)| (*c, Some(*r)))).unwrap()
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("all", "/..."),
            ("one", "/one/..."),
            ("onetwo", "/one/two/..."),
            ("exact", "/one/two"),
        ]);
        assert_eq!(r.route("/one/two").unwrap().component_id, "exact");
        assert_eq!(r.route("/one/two/three").unwrap().component_id, "onetwo");
        assert_eq!(r.route("/one/x").unwrap().component_id, "one");
        assert_eq!(r.route("/").unwrap().component_id, "all");
        assert_eq!(r.route("/zzz").unwrap().component_id, "all");
    }

    #[test]
    fn path_info_and_captures() {
        let r = router(&[("c", "/foo/:userid/..."), ("root", "/")]);
        let m = r.route("/foo/42/bar").unwrap();
        assert_eq!(m.path_info, "/bar");
        assert_eq!(
            m.named_wildcards.get("userid").map(String::as_str),
            Some("42")
        );
        assert_eq!(m.raw_route_or_prefix(), "/foo/:userid");
        assert_eq!(r.route("/foo/42/bar/").unwrap().path_info, "/bar/");
        assert_eq!(r.route("/foo/42").unwrap().path_info, "");
        assert_eq!(r.route("/").unwrap().component_id, "root");
        assert!(r.route("/nope").is_none());
    }

    #[test]
    fn a_synthetic_match_covers_the_whole_path() {
        let m = RouteMatch::synthetic("backend", "/a/b/");
        assert_eq!(m.component_id, "backend");
        assert_eq!(m.path_info, "/a/b/");
        assert_eq!(m.based_route, "/...");
        assert_eq!(m.raw_route, "/...");
        assert_eq!(m.raw_route_or_prefix(), "");
        assert!(m.named_wildcards.is_empty());
    }

    #[test]
    fn dotted_exact_routes() {
        let r = router(&[
            ("token", "/jwks.json"),
            ("login", "/..."),
            ("token", "/.well-known/openid-configuration"),
        ]);
        assert_eq!(
            r.route("/.well-known/openid-configuration")
                .unwrap()
                .component_id,
            "token"
        );
        assert_eq!(r.route("/jwks.json").unwrap().component_id, "token");
        assert_eq!(r.route("/jwks.jsonx").unwrap().component_id, "login");
    }

    /// Spin's quirk, reproduced: routefinder (0.5.4, as in Spin) orders a
    /// route whose first segment starts with a dot inconsistently against a
    /// root wildcard, so which one wins depends on manifest order. Declared
    /// after `/...`, `/.well-known/x` wins; declared before, `/...` does.
    #[test]
    fn a_leading_dot_route_declared_before_a_root_wildcard_loses_to_it() {
        let before = router(&[
            ("token", "/.well-known/openid-configuration"),
            ("token", "/jwks.json"),
            ("login", "/..."),
            ("social", "/social/..."),
        ]);
        assert_eq!(
            before
                .route("/.well-known/openid-configuration")
                .unwrap()
                .component_id,
            "login"
        );
        let after = router(&[
            ("login", "/..."),
            ("token", "/.well-known/openid-configuration"),
            ("token", "/jwks.json"),
            ("social", "/social/..."),
        ]);
        assert_eq!(
            after
                .route("/.well-known/openid-configuration")
                .unwrap()
                .component_id,
            "token"
        );
    }
}
