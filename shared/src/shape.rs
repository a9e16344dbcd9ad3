//! Tests of the crate's shape, read from its source: no SQL outside the
//! storage modules, and no circle among the top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every Rust file under `dir` with its code lines: comments and test
/// modules left out.
fn sources(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<String>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let lines = code
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("//"))
                .map(str::to_owned)
                .collect();
            out.push((path, lines));
        }
    }
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_sql_outside_the_storage_modules() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let store = src().join("store");
    let sql = [
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "UPDATE ",
        "PRAGMA ",
    ];
    let has_sql = |l: &String| sql.iter().any(|k| l.contains(k));
    let found: Vec<_> = files
        .iter()
        .filter(|(f, _)| !f.starts_with(&store) && !f.ends_with("shape.rs"))
        .flat_map(|(f, lines)| lines.iter().filter(|l| has_sql(l)).map(move |l| (f, l)))
        .collect();
    assert!(found.is_empty(), "SQL outside shared/src/store: {found:#?}");
    assert!(
        files
            .iter()
            .any(|(f, lines)| f.starts_with(&store) && lines.iter().any(has_sql)),
        "the scan sees the storage modules' SQL"
    );
}

/// Which top-level modules each top-level module names (`crate::x`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let root = src();
    let top = |f: &Path| -> Option<String> {
        let rel = f.strip_prefix(&root).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs");
        (!["lib", "bin", "shape"].contains(&name)).then(|| name.to_owned())
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, lines) in &files {
        let Some(from) = top(f) else { continue };
        let code = lines.join("\n");
        let named = graph.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    named.insert(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                named.insert(name);
            }
        }
        named.remove(&from);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for named in graph.values_mut() {
        named.retain(|m| modules.contains(m));
    }
    graph
}

#[test]
fn the_module_graph_has_no_circle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the scan sees the modules: {graph:?}");
    // Kahn's algorithm: peel off modules that name no remaining module.
    let mut left = graph.clone();
    while let Some(leaf) = left
        .iter()
        .find(|(_, named)| named.iter().all(|m| !left.contains_key(m)))
        .map(|(m, _)| m.clone())
    {
        left.remove(&leaf);
    }
    assert!(left.is_empty(), "modules in a circle: {left:#?}");
    // The error type knows nothing of pages, mail or configuration.
    assert!(
        graph["error"].is_empty(),
        "error names {:?}",
        graph["error"]
    );
}
