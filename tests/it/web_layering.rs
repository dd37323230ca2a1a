//! The house rule DESIGN.md draws: web → service → engine | store. Pages
//! and the API may name engine and store *types* for their view structs,
//! but import no function or module of either, never reach for a
//! connection (`.db()`) or the store's pool (`.pool()`), hold no SQL, and
//! no page or template branches on the engine kind (capabilities say what
//! differs).

use std::path::{Path, PathBuf};

/// Files allowed to break the rule for now: none.
const NOT_YET: &[&str] = &[];

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `use` item of `text` (joined across lines, comments dropped).
fn uses(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        let Some(end) = after.find(';') else { break };
        if before.is_none_or(|c| c.is_whitespace() || c == '{' || c == ';') {
            out.push(after[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        }
        rest = &after[end..];
    }
    out
}

/// What a `use crate::store…` / `use crate::engine…` item brings in: the
/// last segment of each name, `self` and `*` included.
fn leaves(item: &str) -> Vec<String> {
    item.split(['{', '}', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.ends_with("::"))
        .map(|p| {
            let p = p.split(" as ").next().unwrap().trim();
            p.rsplit("::").next().unwrap().trim().to_string()
        })
        .collect()
}

fn is_type(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// A call of a function or module of store or engine: `store::now(`,
/// `engine::dump::pitr_readiness(`, `store::jobs::get(`.
fn calls_into(line: &str) -> Option<String> {
    for layer in ["store::", "engine::"] {
        let mut rest = line;
        while let Some(at) = rest.find(layer) {
            let before = rest[..at].chars().last();
            let tail = &rest[at + layer.len()..];
            rest = tail;
            // `base64::engine::…` and other crates' modules of that name.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if before == Some(':') && !line[..line.len() - tail.len() - layer.len()].ends_with("crate::") {
                continue;
            }
            let path: String = tail
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let next = tail[path.len()..].chars().next();
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let lower_path = segments.iter().all(|s| !is_type(s));
            if !segments.is_empty() && lower_path && (next == Some('(') || next == Some('!')) {
                return Some(format!("{layer}{path}"));
            }
        }
    }
    None
}

#[test]
fn web_imports_no_store_or_engine_function() {
    let mut all = Vec::new();
    files(&root().join("src/web"), "rs", &mut all);
    assert!(all.len() > 20, "found the web files: {all:?}");
    let mut offences = Vec::new();
    for path in all {
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        if NOT_YET.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for item in uses(&text) {
            for layer in ["crate::store", "crate::engine"] {
                if let Some(rest) = item.strip_prefix(layer) {
                    for leaf in leaves(rest) {
                        if !is_type(&leaf) {
                            offences.push(format!("{rel}: `use {item}` brings in `{leaf}`"));
                        }
                    }
                }
            }
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.trim_start().starts_with("use ") {
                continue;
            }
            if let Some(call) = calls_into(code) {
                offences.push(format!("{rel}:{}: calls `{call}`", n + 1));
            }
            for reach in [".db()", ".pool()", "sqlx::", "EngineKind"] {
                if code.contains(reach) {
                    offences.push(format!("{rel}:{}: `{reach}`", n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "web/ reaches past the service layer:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_rule_catches_what_it_should() {
    let bad = "use crate::store::now;\nuse crate::engine::{self, Action};\nuse crate::store::jobs;\n";
    let found: Vec<String> = uses(bad)
        .iter()
        .flat_map(|i| {
            leaves(
                i.strip_prefix("crate::store")
                    .or(i.strip_prefix("crate::engine"))
                    .unwrap(),
            )
        })
        .filter(|l| !is_type(l))
        .collect();
    assert_eq!(found, ["now", "self", "jobs"]);
    assert!(leaves("::{Action, TableSort}").iter().all(|l| is_type(l)));
    assert_eq!(
        calls_into("let t = crate::store::now();").as_deref(),
        Some("store::now")
    );
    assert_eq!(
        calls_into("engine::dump::pitr_readiness(&url)").as_deref(),
        Some("engine::dump::pitr_readiness")
    );
    assert_eq!(calls_into("Action::parse(&v)"), None);
    assert_eq!(
        calls_into("use base64::engine::general_purpose::URL_SAFE_NO_PAD"),
        None
    );
    assert_eq!(
        calls_into("crate::engine::EngineKind::of_url(u)"),
        None,
        "a type's method: the EngineKind check holds those"
    );
}

#[test]
fn no_template_compares_the_engine() {
    let mut all = Vec::new();
    files(&root().join("templates"), "html", &mut all);
    let mut offences = Vec::new();
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let squeezed = line.replace(' ', "");
            if squeezed.contains("engine==") || squeezed.contains("engine!=") {
                offences.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "templates read capabilities (db.caps), not the engine:\n{}",
        offences.join("\n")
    );
}
