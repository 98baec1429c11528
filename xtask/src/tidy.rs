//! The dependency rule: internal crates depend only on the crates below them, exactly as the
//! table in ARCHITECTURE.md lists; every source module opens with its doc; and no source file
//! grows past the size a reader takes in at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const START: &str = "<!-- tidy:deps -->";
const END: &str = "<!-- /tidy:deps -->";

/// Internal crate → the internal crates it may depend on, read from ARCHITECTURE.md's table
/// between `<!-- tidy:deps -->` markers (rows `| crate | dep, dep |`), in table order.
pub fn allowed_edges(architecture_md: &str) -> Result<Vec<(String, BTreeSet<String>)>, String> {
    let start = architecture_md.find(START).ok_or("ARCHITECTURE.md has no <!-- tidy:deps --> table")?;
    let end = architecture_md.find(END).ok_or("ARCHITECTURE.md: the tidy:deps table is not closed")?;
    let mut res = Vec::new();
    for line in architecture_md[start + START.len()..end].lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 2 || cells[0] == "crate" || cells[0].starts_with("---") {
            continue;
        }
        let name = cells[0].trim_matches('`').to_string();
        let deps = cells[1]
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_string())
            .filter(|d| !d.is_empty() && d != "-")
            .collect();
        res.push((name, deps));
    }
    if res.is_empty() {
        return Err("ARCHITECTURE.md: the tidy:deps table has no rows".into());
    }
    Ok(res)
}

/// Every internal edge `(from, to, kind)` of the workspace, from `cargo metadata`.
pub fn workspace_edges(root: &Path) -> Result<Vec<(String, String, String)>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut res = Vec::new();
    for p in packages {
        let from = p["name"].as_str().unwrap_or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let to = d["name"].as_str().unwrap_or_default();
            if names.contains(to) {
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                res.push((from.to_string(), to.to_string(), kind));
            }
        }
    }
    Ok(res)
}

/// Checks the workspace's edges against the table, and the table against the layer order.
/// Returns one line per problem.
pub fn check(architecture_md: &str, edges: &[(String, String, String)]) -> Vec<String> {
    let table = match allowed_edges(architecture_md) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let position: BTreeMap<&str, usize> = table.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    for (i, (name, deps)) in table.iter().enumerate() {
        for d in deps {
            match position.get(d.as_str()) {
                Some(&j) if j < i => {}
                Some(_) => problems.push(format!("ARCHITECTURE.md: {name} may depend on {d}, which is not below it")),
                None => problems.push(format!("ARCHITECTURE.md: {name} lists {d}, which is not in the table")),
            }
        }
    }
    for (from, to, kind) in edges {
        match table.iter().find(|(n, _)| n == from) {
            None => problems.push(format!("{from} is a workspace crate missing from ARCHITECTURE.md's table")),
            Some((_, deps)) if !deps.contains(to) => {
                problems.push(format!("{from} depends on {to} ({kind}), an edge ARCHITECTURE.md does not allow"))
            }
            Some(_) => {}
        }
    }
    problems
}

/// The source files tidy reads: Rust under `crates/*/src` and `xtask/src`, Python under
/// `crates/python/python`, as (path relative to `root`, text).
pub fn source_files(root: &Path) -> Result<Vec<(String, String)>, String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs" || e == "py") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut dirs: Vec<std::path::PathBuf> = vec![root.join("xtask/src"), root.join("crates/python/python")];
    let crates = std::fs::read_dir(root.join("crates")).map_err(|e| format!("crates/: {e}"))?;
    for entry in crates {
        let dir = entry.map_err(|e| e.to_string())?.path().join("src");
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    let mut paths = Vec::new();
    for dir in dirs {
        walk(&dir, &mut paths).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            Ok((rel, text))
        })
        .collect()
}

/// One line per module that does not open with its doc: a Rust file whose first line is not
/// `//!`, a Python file whose first line does not open a docstring.
pub fn undocumented(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(path, text)| {
            let first = text.lines().next().unwrap_or("");
            if path.ends_with(".rs") { !first.starts_with("//!") } else { !first.starts_with("\"\"\"") }
        })
        .map(|(path, _)| format!("{path}: the module does not open with its doc (//! or a docstring)"))
        .collect()
}

/// The most lines a source file (tests aside) may have: past it, a file holds more than one
/// concept to a reader.
pub const MAX_LINES: usize = 500;

/// The files over `limit` lines, longest first: rooms to split.
pub fn long_files(files: &[(String, String)], limit: usize) -> Vec<(String, usize)> {
    let mut long: Vec<(String, usize)> =
        files.iter().map(|(p, t)| (p.clone(), t.lines().count())).filter(|&(_, n)| n > limit).collect();
    long.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    long
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = "x\n<!-- tidy:deps -->\n| crate | may depend on |\n|---|---|\n| `a` | |\n| `b` | `a` |\n| `c` | a, b |\n<!-- /tidy:deps -->\n";

    fn e(f: &str, t: &str) -> (String, String, String) {
        (f.into(), t.into(), "normal".into())
    }

    #[test]
    fn listed_downward_edges_pass() {
        assert_eq!(check(MD, &[e("b", "a"), e("c", "a"), e("c", "b")]), Vec::<String>::new());
    }

    #[test]
    fn an_upward_or_unlisted_edge_fails() {
        let p = check(MD, &[e("a", "b")]);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("a depends on b"), "{p:?}");
        let p = check(MD, &[e("d", "a")]);
        assert!(p[0].contains("missing from"), "{p:?}");
    }

    #[test]
    fn a_table_pointing_up_fails() {
        let md = MD.replace("| `a` | |", "| `a` | b |");
        assert!(check(&md, &[]).iter().any(|p| p.contains("not below it")));
    }

    #[test]
    fn a_module_without_its_doc_is_named() {
        let files = [
            ("a/src/lib.rs".to_string(), "//! A.\nfn f() {}\n".to_string()),
            ("a/src/b.rs".to_string(), "// not a doc\nfn f() {}\n".to_string()),
            ("p/m.py".to_string(), "\"\"\"M.\"\"\"\n".to_string()),
            ("p/n.py".to_string(), "import os\n".to_string()),
            ("p/e.py".to_string(), String::new()),
        ];
        let found = undocumented(&files);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("a/src/b.rs") && found[1].starts_with("p/n.py") && found[2].starts_with("p/e.py"));
        let long = long_files(&files, 1);
        assert_eq!(long, [("a/src/b.rs".to_string(), 2), ("a/src/lib.rs".to_string(), 2)]);
    }

    #[test]
    fn every_module_of_this_workspace_opens_with_its_doc() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let files = source_files(root).unwrap();
        assert!(files.iter().any(|(p, _)| p.ends_with("crates/graph/src/lib.rs")), "files were read");
        assert!(files.iter().any(|(p, _)| p.ends_with("omendex/__init__.py")), "files were read");
        assert_eq!(undocumented(&files), Vec::<String>::new());
        assert_eq!(long_files(&files, MAX_LINES), Vec::<(String, usize)>::new());
    }

    #[test]
    fn this_workspace_follows_its_architecture() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let md = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
        let edges = workspace_edges(root).unwrap();
        assert!(edges.iter().any(|(f, t, _)| f == "omendex-search" && t == "omendex-graph"), "edges were read");
        assert_eq!(check(&md, &edges), Vec::<String>::new());
    }
}
