//! The catalogue of rules: severity, why it hurts, what to do instead. Rule
//! names are squawk's where squawk has the rule.

use super::Severity;

pub struct RuleInfo {
    pub name: &'static str,
    pub severity: Severity,
    pub why: &'static str,
    pub fix: &'static str,
}

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        name: "require-concurrent-index-creation",
        severity: E,
        why: "CREATE INDEX without CONCURRENTLY blocks every write to the table until the index is built.",
        fix: "CREATE INDEX CONCURRENTLY (in a migration of its own: it cannot run in a transaction).",
    },
    RuleInfo {
        name: "require-concurrent-index-deletion",
        severity: E,
        why: "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table.",
        fix: "DROP INDEX CONCURRENTLY (outside a transaction).",
    },
    RuleInfo {
        name: "constraint-missing-not-valid",
        severity: E,
        why: "Adding a CHECK constraint validates every row under an ACCESS EXCLUSIVE lock.",
        fix: "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE only).",
    },
    RuleInfo {
        name: "adding-foreign-key-constraint",
        severity: E,
        why: "Adding a foreign key scans the table while blocking writes on both tables.",
        fix: "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT separately.",
    },
    RuleInfo {
        name: "adding-not-nullable-field",
        severity: E,
        why: "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock.",
        fix: "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ uses the constraint and skips the scan), then drop the CHECK.",
    },
    RuleInfo {
        name: "adding-field-with-default",
        severity: E,
        why: "A column with a volatile default (or any default before PostgreSQL 11) rewrites the whole table under an ACCESS EXCLUSIVE lock.",
        fix: "Add the column without a default, set the default, backfill in batches.",
    },
    RuleInfo {
        name: "adding-required-field",
        severity: E,
        why: "A NOT NULL column without a default fails on a table with rows, and breaks inserts from code that does not know it.",
        fix: "Add it nullable (or with a constant default), backfill, then make it NOT NULL.",
    },
    RuleInfo {
        name: "changing-column-type",
        severity: E,
        why: "Changing a column's type usually rewrites the table and its indexes under an ACCESS EXCLUSIVE lock.",
        fix: "Add a new column, write to both, backfill, switch reads, drop the old column (expand–contract).",
    },
    RuleInfo {
        name: "ban-drop-column",
        severity: E,
        why: "Code still reading the column breaks the moment it is gone.",
        fix: "Stop reading and writing the column in a release first; drop it in a later migration.",
    },
    RuleInfo {
        name: "ban-drop-table",
        severity: E,
        why: "Dropping a table loses its data and breaks every reader at once.",
        fix: "Stop using the table, keep it for a while (rename it aside if needed), drop it later.",
    },
    RuleInfo {
        name: "ban-truncate",
        severity: E,
        why: "TRUNCATE deletes every row and takes an ACCESS EXCLUSIVE lock.",
        fix: "Delete in batches, or make sure the table is truly unused.",
    },
    RuleInfo {
        name: "ban-truncate-cascade",
        severity: E,
        why: "TRUNCATE ... CASCADE also empties every table that references this one.",
        fix: "Truncate the tables you mean by name.",
    },
    RuleInfo {
        name: "renaming-column",
        severity: E,
        why: "Code using the old name breaks the moment the rename commits.",
        fix: "Add the new column, write to both, backfill, switch reads, drop the old one.",
    },
    RuleInfo {
        name: "renaming-table",
        severity: E,
        why: "Code using the old name breaks the moment the rename commits.",
        fix: "Create the new table (or a view with the new name), migrate readers, then drop the old name.",
    },
    RuleInfo {
        name: "adding-serial-primary-key-field",
        severity: E,
        why: "Adding a primary key builds its index under an ACCESS EXCLUSIVE lock.",
        fix: "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX.",
    },
    RuleInfo {
        name: "disallowed-unique-constraint",
        severity: E,
        why: "Adding a UNIQUE constraint builds its index while blocking writes.",
        fix: "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX.",
    },
    RuleInfo {
        name: "ban-concurrent-index-creation-in-transaction",
        severity: E,
        why: "CREATE INDEX CONCURRENTLY cannot run inside a transaction block: the migration fails.",
        fix: "Put the CONCURRENTLY statement in a migration of its own, without BEGIN/COMMIT.",
    },
    RuleInfo {
        name: "transaction-nesting",
        severity: W,
        why: "BEGIN/COMMIT inside a migration fights the transaction the migration already runs in.",
        fix: "Leave transaction control to the panel: remove BEGIN and COMMIT.",
    },
    RuleInfo {
        name: "prefer-repack",
        severity: E,
        why: "VACUUM FULL and CLUSTER rewrite the table under an ACCESS EXCLUSIVE lock: nothing can read or write it meanwhile.",
        fix: "Use pg_repack (or pg_squeeze) to rewrite without a long lock, or schedule a maintenance window.",
    },
    RuleInfo {
        name: "require-lock-timeout",
        severity: W,
        why: "Without a lock_timeout, a statement waiting for its lock queues every later query on the table behind it.",
        fix: "SET lock_timeout = '5s'; at the top of the migration (and retry on timeout).",
    },
    RuleInfo {
        name: "require-statement-timeout",
        severity: W,
        why: "Without a statement_timeout, a slow statement can hold its locks for as long as it runs.",
        fix: "SET statement_timeout = '5min'; at the top of the migration.",
    },
    RuleInfo {
        name: "prefer-bigint-over-int",
        severity: W,
        why: "A 32-bit integer key runs out at 2.1 billion; changing the type later rewrites the table.",
        fix: "Use bigint (or bigint identity) for keys and counters.",
    },
    RuleInfo {
        name: "prefer-bigint-over-smallint",
        severity: W,
        why: "A 16-bit integer runs out at 32,767.",
        fix: "Use bigint.",
    },
    RuleInfo {
        name: "ban-drop-database",
        severity: E,
        why: "Dropping a database loses everything in it.",
        fix: "Never from a migration.",
    },
    RuleInfo {
        name: "syntax-error",
        severity: E,
        why: "The statement does not parse: it will fail when applied, and nothing else in it was checked.",
        fix: "Fix the statement.",
    },
    RuleInfo {
        name: "unused-ignore",
        severity: W,
        why: "An ignore comment names a rule that does not fire there (or no rule at all), so it disables nothing: often a typo.",
        fix: "Name the rule exactly, alone on the comment: -- squawk-ignore ban-drop-column",
    },
    // MySQL / MariaDB
    RuleInfo {
        name: "mysql-index-without-online-ddl",
        severity: W,
        why: "Without ALGORITHM=INPLACE, LOCK=NONE the server may copy the table and block writes while building the index.",
        fix: "ALTER TABLE ... ADD INDEX ..., ALGORITHM=INPLACE, LOCK=NONE (the server refuses if it cannot), or use gh-ost / pt-online-schema-change.",
    },
    RuleInfo {
        name: "mysql-changing-column-type",
        severity: E,
        why: "MODIFY/CHANGE COLUMN to another type copies the whole table and blocks writes.",
        fix: "Add a new column, backfill, switch, drop the old one; or use gh-ost / pt-online-schema-change.",
    },
    RuleInfo {
        name: "mysql-adding-foreign-key",
        severity: W,
        why: "Adding a foreign key checks every row and may copy the table.",
        fix: "SET foreign_key_checks = 0 for the ADD with ALGORITHM=INPLACE, and validate the data yourself first.",
    },
    RuleInfo {
        name: "mysql-optimize-table",
        severity: W,
        why: "OPTIMIZE TABLE rebuilds the table; on older servers it blocks writes.",
        fix: "Run it as maintenance outside migrations, in a quiet hour.",
    },
    RuleInfo {
        name: "mysql-unbalanced-quotes",
        severity: E,
        why: "The migration has an unterminated quote: it does not parse and will fail when applied.",
        fix: "Fix the statement.",
    },
];

pub fn info(name: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.name == name)
}
