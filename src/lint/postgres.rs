//! PostgreSQL lint: squawk's parser and rules, with the server's version,
//! plus plain TRUNCATE, which squawk leaves alone.

use std::str::FromStr;

use squawk_linter::{Linter, Rule, Version};
use squawk_syntax::ast::{self, AstNode};

use super::rules::info;
use super::{Finding, Severity, ignored, line_of, statement_at};

/// squawk rules that judge style rather than safety: left out.
const EXCLUDED: &[Rule] = &[
    Rule::PreferRobustStmts,
    Rule::PreferTextField,
    Rule::PreferTimestampTz,
    Rule::BanCharField,
    Rule::PreferIdentity,
    Rule::IdentifierTooLong,
];

fn finding(rule: &str, sql: &str, offset: usize, message: String, help: Option<String>) -> Finding {
    let catalogued = info(rule);
    Finding {
        rule: rule.to_string(),
        severity: catalogued.map(|r| r.severity).unwrap_or(Severity::Warning),
        line: line_of(sql, offset),
        statement: statement_at(sql, offset),
        why: catalogued
            .map(|r| r.why.to_string())
            .unwrap_or_else(|| message.clone()),
        message,
        fix: catalogued.map(|r| r.fix.to_string()).or(help).unwrap_or_default(),
    }
}

pub fn lint(sql: &str, server_version: Option<&str>) -> Vec<Finding> {
    let parse = squawk_syntax::SourceFile::parse(sql);
    let mut findings: Vec<Finding> = parse
        .errors()
        .into_iter()
        .map(|e| {
            let at = usize::from(e.range().start());
            finding(
                "syntax-error",
                sql,
                at,
                format!("does not parse: {}", e.message()),
                None,
            )
        })
        .collect();
    let mut linter = Linter::with_rules(&[Rule::RequireLockTimeout], EXCLUDED);
    if let Some(v) = server_version.and_then(|v| Version::from_str(major_minor(v)).ok()) {
        linter.settings.pg_version = v;
    }
    for v in linter.lint(&parse, sql) {
        let at = usize::from(v.text_range.start());
        findings.push(finding(
            &v.code.to_string(),
            sql,
            at,
            v.message.clone(),
            v.help.clone(),
        ));
    }
    // What squawk leaves alone: plain TRUNCATE, VACUUM FULL, CLUSTER.
    for stmt in parse.tree().stmts() {
        let at = usize::from(stmt.syntax().text_range().start());
        let text = stmt.syntax().text().to_string().to_uppercase();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        let extra = match stmt {
            ast::Stmt::Truncate(_) if !words.contains(&"CASCADE") => {
                Some(("ban-truncate", "TRUNCATE empties the table"))
            }
            ast::Stmt::Vacuum(_) if words.contains(&"FULL") => Some((
                "prefer-repack",
                "VACUUM FULL locks the table for the whole rewrite",
            )),
            ast::Stmt::Cluster(_) => Some(("prefer-repack", "CLUSTER locks the table for the whole rewrite")),
            _ => None,
        };
        if let Some((rule, message)) = extra {
            findings.push(finding(rule, sql, at, message.into(), None));
        }
    }
    findings.retain(|f| !ignored(sql, &f.rule));
    tidy(findings)
}

/// squawk reports some constraints twice (a foreign key, primary key or
/// unique constraint is also "missing NOT VALID", which a primary key cannot
/// be), flags every 32-bit column where the danger is in keys, and words
/// the index finding without the table. Keep one finding per cause.
fn tidy(findings: Vec<Finding>) -> Vec<Finding> {
    const SPECIFIC: &[&str] = &[
        "adding-foreign-key-constraint",
        "adding-serial-primary-key-field",
        "disallowed-unique-constraint",
    ];
    let specific_at: Vec<usize> = findings
        .iter()
        .filter(|f| SPECIFIC.contains(&f.rule.as_str()))
        .map(|f| f.line)
        .collect();
    findings
        .into_iter()
        .filter(|f| {
            !(f.rule == "constraint-missing-not-valid"
                && specific_at.contains(&f.line)
                && !f.statement.to_uppercase().contains(" CHECK"))
        })
        .filter(|f| !f.rule.starts_with("prefer-bigint") || is_key_column(f))
        .map(|mut f| {
            if f.rule == "require-concurrent-index-creation"
                && let Some(table) = index_table(&f.statement)
            {
                f.message = format!("CREATE INDEX without CONCURRENTLY locks writes on {table}");
            }
            f
        })
        .collect()
}

/// Is the 32-bit column in this finding a key: a primary key, a reference,
/// or named like one (`id`, `..._id`)?
fn is_key_column(f: &Finding) -> bool {
    let upper = f.statement.to_uppercase();
    let defs = upper.split([',', '(']).map(str::trim);
    defs.filter(|d| d.contains("INT") || d.contains("SERIAL"))
        .any(|d| {
            let name = d.split_whitespace().next().unwrap_or("").trim_matches('"');
            d.contains("PRIMARY KEY") || d.contains("REFERENCES") || name == "ID" || name.ends_with("_ID")
        })
}

/// `CREATE [UNIQUE] INDEX ... ON [ONLY] table ...` → `table`.
fn index_table(statement: &str) -> Option<String> {
    let mut words = statement.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("ON"))?;
    let next = words.next()?;
    let table = if next.eq_ignore_ascii_case("ONLY") {
        words.next()?
    } else {
        next
    };
    Some(
        table
            .split('(')
            .next()
            .unwrap_or(table)
            .trim_end_matches(';')
            .to_string(),
    )
}

/// "15.20 (Debian 15.20-0+deb12u1)" → "15.20".
fn major_minor(version: &str) -> &str {
    version.split_whitespace().next().unwrap_or(version)
}
