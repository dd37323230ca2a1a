//! MySQL/MariaDB lint: no parser here, so statements are split on `;`
//! outside quotes and comments and matched on their keywords. Unbalanced
//! quotes are reported as a statement that does not parse.

use super::rules::info;
use super::{Finding, Severity, ignored, line_of};
use crate::sqltext::mysql::split;

/// The statement without comments, upper-cased, spaces collapsed.
fn words(stmt: &str) -> String {
    stmt.lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

pub fn lint(sql: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |rule: &'static str, text: &str, at: usize, message: String| {
        if ignored(sql, rule) {
            return;
        }
        let r = info(rule);
        findings.push(Finding {
            rule: rule.to_string(),
            severity: r.map(|r| r.severity).unwrap_or(Severity::Warning),
            line: line_of(sql, at + (text.len() - text.trim_start().len())),
            message,
            statement: text.split_whitespace().collect::<Vec<_>>().join(" "),
            why: r.map(|r| r.why.to_string()).unwrap_or_default(),
            fix: r.map(|r| r.fix.to_string()).unwrap_or_default(),
        });
    };
    let statements = match split(sql) {
        Ok(s) => s,
        Err(at) => {
            push(
                "mysql-unbalanced-quotes",
                &sql[at..],
                at,
                "a quote is never closed".into(),
            );
            return findings;
        }
    };
    for (text, at) in statements {
        let w = words(&text);
        if w.is_empty() {
            continue;
        }
        let alter = w.starts_with("ALTER TABLE");
        let online = w.contains("ALGORITHM=INPLACE") && w.contains("LOCK=NONE")
            || w.contains("ALGORITHM = INPLACE") && w.contains("LOCK = NONE");
        if (w.starts_with("CREATE INDEX")
            || w.starts_with("CREATE UNIQUE INDEX")
            || alter && (w.contains(" ADD INDEX") || w.contains(" ADD KEY") || w.contains(" ADD UNIQUE")))
            && !online
        {
            push(
                "mysql-index-without-online-ddl",
                &text,
                at,
                "index built without online DDL".into(),
            );
        }
        if alter && (w.contains(" MODIFY ") || w.contains(" MODIFY COLUMN ") || w.contains(" CHANGE ")) {
            push(
                "mysql-changing-column-type",
                &text,
                at,
                "MODIFY/CHANGE COLUMN copies the table".into(),
            );
        }
        if alter && w.contains(" CHANGE ")
            || w.starts_with("RENAME TABLE")
            || alter
                && (w.contains(" RENAME COLUMN ") || w.contains(" RENAME TO ") || w.contains(" RENAME AS "))
        {
            let rule = if w.contains(" RENAME COLUMN ") || w.contains(" CHANGE ") {
                "renaming-column"
            } else {
                "renaming-table"
            };
            push(rule, &text, at, "renames break code using the old name".into());
        }
        if alter && w.contains(" DROP COLUMN ")
            || alter
                && w.contains(" DROP ")
                && !w.contains(" DROP INDEX")
                && !w.contains(" DROP KEY")
                && !w.contains(" DROP FOREIGN KEY")
                && !w.contains(" DROP CONSTRAINT")
                && !w.contains(" DROP PRIMARY")
                && !w.contains(" DROP DEFAULT")
        {
            push(
                "ban-drop-column",
                &text,
                at,
                "a dropped column breaks its readers".into(),
            );
        }
        if w.starts_with("DROP TABLE") {
            push(
                "ban-drop-table",
                &text,
                at,
                "a dropped table loses its data".into(),
            );
        }
        if w.starts_with("TRUNCATE") {
            push("ban-truncate", &text, at, "TRUNCATE empties the table".into());
        }
        if alter && w.contains("FOREIGN KEY") {
            push(
                "mysql-adding-foreign-key",
                &text,
                at,
                "adding a foreign key checks every row".into(),
            );
        }
        if alter
            && w.contains(" ADD ")
            && w.contains(" NOT NULL")
            && !w.contains(" DEFAULT ")
            && !w.contains("PRIMARY KEY")
            && !w.contains(" INDEX")
        {
            push(
                "adding-required-field",
                &text,
                at,
                "a NOT NULL column without a default".into(),
            );
        }
        if w.starts_with("OPTIMIZE TABLE") {
            push(
                "mysql-optimize-table",
                &text,
                at,
                "OPTIMIZE TABLE rebuilds the table".into(),
            );
        }
        if (w.starts_with("CREATE TABLE") || alter)
            && (w.contains(" INT PRIMARY KEY")
                || w.contains(" INT NOT NULL AUTO_INCREMENT")
                || w.contains(" INT AUTO_INCREMENT")
                || w.contains(" INTEGER PRIMARY KEY"))
        {
            push(
                "prefer-bigint-over-int",
                &text,
                at,
                "a 32-bit key runs out".into(),
            );
        }
    }
    findings
}
