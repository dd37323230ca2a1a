//! Migration lint: a corpus of dangerous statements, each with its safe
//! rewrite, and the findings each must (and must not) produce; parse errors
//! reported; rules disabled by a comment; the CLI's output and exit codes.

use std::process::Command;

use custodian::engine::EngineKind;
use custodian::lint::{self, Severity};

/// Every migration in the corpus starts with the timeouts a careful author
/// sets, so each case shows only the rule it is about.
const TIMEOUTS: &str = "SET lock_timeout = '5s';\nSET statement_timeout = '5min';\n";

/// (dangerous statement, the rule it must trigger, its safe rewrite).
#[rustfmt::skip]
const POSTGRES: &[(&str, &str, &str)] = &[
    ("CREATE INDEX orders_customer_idx ON orders (customer_id);", "require-concurrent-index-creation",
     "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);"),
    ("DROP INDEX orders_customer_idx;", "require-concurrent-index-deletion",
     "DROP INDEX CONCURRENTLY orders_customer_idx;"),
    ("ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);", "adding-foreign-key-constraint",
     "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;"),
    ("ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);", "constraint-missing-not-valid",
     "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;"),
    ("ALTER TABLE orders ALTER COLUMN total SET NOT NULL;", "adding-not-nullable-field",
     "ALTER TABLE orders ADD CONSTRAINT orders_total_not_null CHECK (total IS NOT NULL) NOT VALID;"),
    ("ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();", "adding-field-with-default",
     "ALTER TABLE orders ADD COLUMN token uuid;"),
    ("ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);", "changing-column-type",
     "ALTER TABLE orders ADD COLUMN total_v2 numeric(14, 2);"),
    ("ALTER TABLE orders DROP COLUMN note;", "ban-drop-column",
     "-- readers stopped in release 41\n-- squawk-ignore ban-drop-column\nALTER TABLE orders DROP COLUMN note;"),
    ("DROP TABLE old_orders;", "ban-drop-table",
     "ALTER TABLE old_orders SET (autovacuum_enabled = false);"),
    ("TRUNCATE orders;", "ban-truncate",
     "DELETE FROM orders WHERE id < 1000;"),
    ("ALTER TABLE orders RENAME COLUMN note TO remark;", "renaming-column",
     "ALTER TABLE orders ADD COLUMN remark text;"),
    ("ALTER TABLE orders RENAME TO purchases;", "renaming-table",
     "CREATE VIEW purchases AS SELECT * FROM orders;"),
    ("ALTER TABLE orders ADD PRIMARY KEY (id);", "adding-serial-primary-key-field",
     "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_idx;"),
    ("ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE (email);", "disallowed-unique-constraint",
     "ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE USING INDEX customers_email_idx;"),
    ("BEGIN;\nCREATE INDEX CONCURRENTLY orders_created_idx ON orders (created_at);\nCOMMIT;", "ban-concurrent-index-creation-in-transaction",
     "CREATE INDEX CONCURRENTLY orders_created_idx ON orders (created_at);"),
    ("VACUUM FULL orders;", "prefer-repack",
     "VACUUM (ANALYZE) orders;"),
    ("CLUSTER orders USING orders_pkey;", "prefer-repack",
     "ANALYZE orders;"),
    ("CREATE TABLE events (id int PRIMARY KEY, body text);", "prefer-bigint-over-int",
     "CREATE TABLE events (id bigint PRIMARY KEY, body text);"),
    ("CREATE TABLE events (id serial PRIMARY KEY, body text);", "prefer-bigint-over-int",
     "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);"),
    ("ALTER TABLE orders ADD COLUMN quantity bigint NOT NULL;", "adding-required-field",
     "ALTER TABLE orders ADD COLUMN quantity bigint NOT NULL DEFAULT 1;"),
    ("DROP DATABASE shop;", "ban-drop-database",
     "CREATE SCHEMA IF NOT EXISTS archive;"),
];

#[rustfmt::skip]
const MYSQL: &[(&str, &str, &str)] = &[
    ("ALTER TABLE orders ADD INDEX orders_customer_idx (customer_id);", "mysql-index-without-online-ddl",
     "ALTER TABLE orders ADD INDEX orders_customer_idx (customer_id), ALGORITHM=INPLACE, LOCK=NONE;"),
    ("ALTER TABLE orders MODIFY COLUMN total DECIMAL(14,2);", "mysql-changing-column-type",
     "ALTER TABLE orders ADD COLUMN total_v2 DECIMAL(14,2) NULL;"),
    ("ALTER TABLE orders RENAME COLUMN note TO remark;", "renaming-column",
     "ALTER TABLE orders ADD COLUMN remark TEXT NULL;"),
    ("TRUNCATE orders;", "ban-truncate",
     "DELETE FROM orders WHERE id < 1000 LIMIT 1000;"),
    ("DROP TABLE old_orders;", "ban-drop-table",
     "-- custodian-ignore ban-drop-table (unused since 2025)\nDROP TABLE old_orders;"),
];

fn errors(findings: &[lint::Finding]) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.rule.as_str())
        .collect()
}

#[test]
fn every_dangerous_statement_is_caught_and_every_safe_rewrite_passes() {
    assert!(
        POSTGRES.len() * 2 + MYSQL.len() * 2 >= 40,
        "the corpus has at least 40 statements"
    );
    for (engine, corpus) in [(EngineKind::Postgres, POSTGRES), (EngineKind::Mysql, MYSQL)] {
        for (dangerous, rule, safe) in corpus {
            let found = lint::lint(engine, &format!("{TIMEOUTS}{dangerous}"), Some("15.4"));
            assert!(
                found.iter().any(|f| f.rule == *rule),
                "{engine:?}: {dangerous:?} should trigger {rule}, got {found:?}"
            );
            let f = found.iter().find(|f| f.rule == *rule).unwrap();
            assert!(f.line >= 3, "{rule}: line {} points into the preamble", f.line);
            assert!(
                !f.why.is_empty() && !f.fix.is_empty(),
                "{rule} explains why and what instead"
            );
            assert!(!f.statement.is_empty(), "{rule} quotes the statement");
            // One cause, one finding: no second error for the same thing.
            let errs = errors(&found);
            assert!(errs.len() <= 1, "{dangerous:?}: expected one error, got {errs:?}");

            let clean = lint::lint(engine, &format!("{TIMEOUTS}{safe}"), Some("15.4"));
            assert!(
                clean.is_empty(),
                "{engine:?}: safe rewrite {safe:?} should pass, got {clean:?}"
            );
        }
    }
}

#[test]
fn the_index_finding_names_the_table_it_locks() {
    let found = lint::lint(
        EngineKind::Postgres,
        "CREATE INDEX orders_customer_idx ON orders (customer_id);",
        None,
    );
    let f = found
        .iter()
        .find(|f| f.rule == "require-concurrent-index-creation")
        .expect("caught");
    assert_eq!(
        f.message,
        "CREATE INDEX without CONCURRENTLY locks writes on orders"
    );
    assert_eq!(
        f.statement,
        "CREATE INDEX orders_customer_idx ON orders (customer_id);"
    );
}

#[test]
fn a_lock_taking_statement_without_lock_timeout_is_flagged() {
    let sql = "ALTER TABLE orders ADD COLUMN note text;";
    let rules: Vec<String> = lint::lint(EngineKind::Postgres, sql, None)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert!(rules.contains(&"require-lock-timeout".to_string()), "{rules:?}");
    assert!(lint::lint(EngineKind::Postgres, &format!("{TIMEOUTS}{sql}"), None).is_empty());
}

#[test]
fn a_statement_that_does_not_parse_is_reported_with_its_line() {
    let sql = "CREATE TABLE a (id bigint PRIMARY KEY);\n\nSELECT 1 FROM;\n";
    let found = lint::lint(EngineKind::Postgres, sql, None);
    let f = found
        .iter()
        .find(|f| f.rule == "syntax-error")
        .expect("reported, not ignored");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.line, 3);
    let found = lint::lint(EngineKind::Mysql, "UPDATE t SET a = 'never closed;", None);
    assert!(
        lint::has_errors(&found),
        "MySQL: an unterminated quote is an error: {found:?}"
    );
}

#[test]
fn a_comment_disables_only_the_rule_it_names() {
    let sql = format!("{TIMEOUTS}-- squawk-ignore ban-drop-table\nDROP TABLE a;\nTRUNCATE b;\n");
    let rules: Vec<String> = lint::lint(EngineKind::Postgres, &sql, None)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec!["ban-truncate".to_string()]);
}

fn lint_cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .args(["migrate", "lint"])
        .args(args)
        .env_remove("CUSTODIAN_CONFIG")
        .output()
        .expect("run custodian");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_cli_gates_ci_on_error_findings() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("V2__index.sql");
    std::fs::write(
        &bad,
        "CREATE INDEX orders_customer_idx ON orders (customer_id);\n",
    )
    .unwrap();
    let good = dir.path().join("V3__index.sql");
    std::fs::write(
        &good,
        format!("{TIMEOUTS}CREATE INDEX CONCURRENTLY i ON orders (customer_id);\n"),
    )
    .unwrap();
    let warn = dir.path().join("V4__events.sql");
    std::fs::write(
        &warn,
        format!("{TIMEOUTS}CREATE TABLE events (id int PRIMARY KEY);\n"),
    )
    .unwrap();
    let (bad, good, warn) = (
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        warn.to_str().unwrap(),
    );

    let (code, out) = lint_cli(&[bad, good]);
    assert_eq!(code, 1, "an error-level finding fails the gate:\n{out}");
    assert!(
        out.contains(&format!("{bad}:1: error[require-concurrent-index-creation]")),
        "{out}"
    );
    assert!(out.contains("locks writes on orders"), "{out}");

    let (code, out) = lint_cli(&[good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s), 0 warning(s)"), "{out}");

    let (code, out) = lint_cli(&[warn]);
    assert_eq!(code, 0, "warnings alone pass:\n{out}");
    assert!(out.contains("warning[prefer-bigint-over-int]"), "{out}");

    let (code, out) = lint_cli(&["--format", "json", bad, good]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(json["errors"].as_u64(), Some(1), "{json}");
    assert_eq!(
        json["files"][0]["findings"][0]["rule"],
        "require-concurrent-index-creation"
    );
    assert_eq!(json["files"][0]["findings"][0]["severity"], "error");
    assert_eq!(json["files"][0]["findings"][0]["line"], 1);
    assert_eq!(json["files"][1]["findings"].as_array().map(Vec::len), Some(0));

    let (code, _) = lint_cli(&["--engine", "mysql", "/nonexistent/V9__x.sql"]);
    assert_eq!(code, 2, "an unreadable file is a usage error, not a pass");
}
