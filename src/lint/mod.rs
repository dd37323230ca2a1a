//! Migration lint: what in a migration locks or breaks production, with why
//! and the safe alternative (expand–contract). PostgreSQL builds on the
//! squawk linter (its parser and rules, told the server's real version);
//! MySQL/MariaDB has its own small rule set. A statement that does not parse
//! is a finding, never skipped. `-- squawk-ignore rule-name` (or
//! `-- custodian-ignore rule-name` for MySQL) in a file disables a rule there.

mod mysql;
mod postgres;
pub mod rules;

use serde::Serialize;

use crate::sqltext::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding in one migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    /// 1-based line of the statement.
    pub line: usize,
    pub message: String,
    /// The statement, as written.
    pub statement: String,
    /// Why it is dangerous.
    pub why: String,
    /// The safe way (expand–contract).
    pub fix: String,
}

/// Lint one migration in `dialect` (an engine's, see its capabilities);
/// `server_version` like "15.4" (the managed server's, so version-dependent
/// rules judge correctly).
pub fn lint(dialect: impl Into<Dialect>, sql: &str, server_version: Option<&str>) -> Vec<Finding> {
    let mut findings = match dialect.into() {
        Dialect::Postgres => postgres::lint(sql, server_version),
        Dialect::Mysql => mysql::lint(sql),
        // SQLite's DDL is transactional and mostly cheap: the
        // PostgreSQL rules would mislead. Only parse problems matter.
        Dialect::Sqlite => Vec::new(),
    };
    findings.sort_by(|a, b| {
        a.line
            .cmp(&b.line)
            .then(a.severity.cmp(&b.severity))
            .then(a.rule.cmp(&b.rule))
    });
    findings.dedup_by(|a, b| a.line == b.line && a.rule == b.rule);
    findings
}

/// Line (1-based) of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The statement around `offset`: from the previous `;` to the next.
pub(crate) fn statement_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind(';').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find(';')
        .map(|i| offset + i + 1)
        .unwrap_or(text.len());
    let stmt: String = text[start..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    stmt.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Is `rule` disabled in this migration by a `-- squawk-ignore rule` or
/// `-- custodian-ignore rule` comment (names separated by spaces or commas)?
pub(crate) fn ignored(sql: &str, rule: &str) -> bool {
    sql.lines().any(|l| {
        (l.contains("custodian-ignore") || l.contains("squawk-ignore"))
            && l.split([' ', ',', '\t']).any(|w| w == rule)
    })
}

/// Does any finding stop a CI gate?
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
