//! The lock a PostgreSQL statement takes, and on what: what the live gate
//! checks the database against before a migration is applied. From the
//! statement's words (PostgreSQL's documented lock for each command), not
//! a full parse: an unknown statement takes no table lock the gate knows.

/// A table-level lock mode, as pg_locks names it.
pub type Mode = &'static str;

pub const ACCESS_EXCLUSIVE: Mode = "AccessExclusiveLock";
pub const EXCLUSIVE: Mode = "ExclusiveLock";
pub const SHARE_ROW_EXCLUSIVE: Mode = "ShareRowExclusiveLock";
pub const SHARE: Mode = "ShareLock";
pub const SHARE_UPDATE_EXCLUSIVE: Mode = "ShareUpdateExclusiveLock";
pub const ROW_EXCLUSIVE: Mode = "RowExclusiveLock";
pub const ROW_SHARE: Mode = "RowShareLock";
pub const ACCESS_SHARE: Mode = "AccessShareLock";

/// A mode as the documentation names it: "ACCESS EXCLUSIVE".
pub fn named(mode: Mode) -> &'static str {
    match mode {
        ACCESS_EXCLUSIVE => "ACCESS EXCLUSIVE",
        EXCLUSIVE => "EXCLUSIVE",
        SHARE_ROW_EXCLUSIVE => "SHARE ROW EXCLUSIVE",
        SHARE => "SHARE",
        SHARE_UPDATE_EXCLUSIVE => "SHARE UPDATE EXCLUSIVE",
        ROW_EXCLUSIVE => "ROW EXCLUSIVE",
        ROW_SHARE => "ROW SHARE",
        ACCESS_SHARE => "ACCESS SHARE",
        _ => "unknown",
    }
}

/// The modes that conflict with `mode` (PostgreSQL's table, "Conflicting
/// Lock Modes"): a session holding one of these makes `mode` wait.
pub fn conflicts(mode: Mode) -> &'static [Mode] {
    match mode {
        ACCESS_EXCLUSIVE => &[
            ACCESS_SHARE,
            ROW_SHARE,
            ROW_EXCLUSIVE,
            SHARE_UPDATE_EXCLUSIVE,
            SHARE,
            SHARE_ROW_EXCLUSIVE,
            EXCLUSIVE,
            ACCESS_EXCLUSIVE,
        ],
        EXCLUSIVE => &[
            ROW_SHARE,
            ROW_EXCLUSIVE,
            SHARE_UPDATE_EXCLUSIVE,
            SHARE,
            SHARE_ROW_EXCLUSIVE,
            EXCLUSIVE,
            ACCESS_EXCLUSIVE,
        ],
        SHARE_ROW_EXCLUSIVE => &[
            ROW_EXCLUSIVE,
            SHARE_UPDATE_EXCLUSIVE,
            SHARE,
            SHARE_ROW_EXCLUSIVE,
            EXCLUSIVE,
            ACCESS_EXCLUSIVE,
        ],
        SHARE => &[
            ROW_EXCLUSIVE,
            SHARE_UPDATE_EXCLUSIVE,
            SHARE_ROW_EXCLUSIVE,
            EXCLUSIVE,
            ACCESS_EXCLUSIVE,
        ],
        SHARE_UPDATE_EXCLUSIVE => &[
            SHARE_UPDATE_EXCLUSIVE,
            SHARE,
            SHARE_ROW_EXCLUSIVE,
            EXCLUSIVE,
            ACCESS_EXCLUSIVE,
        ],
        ROW_EXCLUSIVE => &[SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE],
        ROW_SHARE => &[EXCLUSIVE, ACCESS_EXCLUSIVE],
        ACCESS_SHARE => &[ACCESS_EXCLUSIVE],
        _ => &[],
    }
}

/// What a statement locks: a table by name, or an index (whose table the
/// catalog names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum On {
    Table(String),
    Index(String),
}

/// The lock one statement takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub mode: Mode,
    pub on: On,
}

/// The statement's words: keywords upper-cased, a double-quoted identifier
/// kept whole (with its quotes), punctuation that ends a name dropped.
fn words(stmt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in stmt.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if quoted => word.push(c),
            c if c.is_whitespace() || c == '(' || c == ')' || c == ',' || c == ';' => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                if c == '(' {
                    out.push("(".into());
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn upper(w: &str) -> String {
    if w.starts_with('"') {
        w.to_string()
    } else {
        w.to_uppercase()
    }
}

/// The name after optional keywords at `at`: skips IF [NOT] EXISTS, ONLY,
/// CONCURRENTLY, TABLE.
fn name_at(words: &[String], mut at: usize) -> Option<String> {
    while let Some(w) = words.get(at) {
        match upper(w).as_str() {
            "IF" | "NOT" | "EXISTS" | "ONLY" | "CONCURRENTLY" | "TABLE" => at += 1,
            "(" => return None,
            _ => return Some(w.trim_end_matches('*').to_string()),
        }
    }
    None
}

/// The lock `stmt` takes on an existing relation, if the gate knows it.
pub fn lock_of(stmt: &str) -> Option<Lock> {
    let words = words(stmt);
    let up: Vec<String> = words.iter().map(|w| upper(w)).collect();
    let has = |w: &str| up.iter().any(|u| u == w);
    let pos = |w: &str| up.iter().position(|u| u == w);
    let table = |at: usize| name_at(&words, at).map(On::Table);
    let first: Vec<&str> = up.iter().take(3).map(String::as_str).collect();
    let (mode, on) = match first.as_slice() {
        ["ALTER", "TABLE", ..] => {
            let rest = &up[3.min(up.len())..];
            let later = |w: &str| rest.iter().any(|u| u == w);
            let mode = if has("VALIDATE") && !later("ADD") && !later("DROP") && !later("ALTER") {
                SHARE_UPDATE_EXCLUSIVE
            } else if has("FOREIGN") && has("ADD") && !has("COLUMN") {
                SHARE_ROW_EXCLUSIVE
            } else {
                ACCESS_EXCLUSIVE
            };
            (mode, table(2)?)
        }
        ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", "INDEX"] => {
            let on = pos("ON")?;
            let mode = if has("CONCURRENTLY") {
                SHARE_UPDATE_EXCLUSIVE
            } else {
                SHARE
            };
            (mode, table(on + 1)?)
        }
        ["DROP", "INDEX", ..] => {
            let mode = if has("CONCURRENTLY") {
                SHARE_UPDATE_EXCLUSIVE
            } else {
                ACCESS_EXCLUSIVE
            };
            (mode, On::Index(name_at(&words, 2)?))
        }
        ["DROP", "TABLE", ..] => (ACCESS_EXCLUSIVE, table(2)?),
        ["TRUNCATE", ..] => (ACCESS_EXCLUSIVE, table(1)?),
        ["VACUUM", ..] if has("FULL") => {
            let last = words.iter().rposition(|w| w != ")" && w != "(")?;
            (ACCESS_EXCLUSIVE, On::Table(words[last].clone()))
        }
        ["CLUSTER", ..] => (ACCESS_EXCLUSIVE, table(1)?),
        ["REINDEX", ..] => {
            let kind = up.iter().position(|u| u == "TABLE" || u == "INDEX")?;
            let name = name_at(&words, kind + 1)?;
            let mode = if has("CONCURRENTLY") {
                SHARE_UPDATE_EXCLUSIVE
            } else {
                SHARE
            };
            let on = if up[kind] == "INDEX" {
                On::Index(name)
            } else {
                On::Table(name)
            };
            (mode, on)
        }
        ["CREATE", "TRIGGER", ..] | ["CREATE", "OR", "REPLACE"] if has("TRIGGER") => {
            (SHARE_ROW_EXCLUSIVE, table(pos("ON")? + 1)?)
        }
        ["INSERT", "INTO", ..] => (ROW_EXCLUSIVE, table(2)?),
        ["UPDATE", ..] => (ROW_EXCLUSIVE, table(1)?),
        ["DELETE", "FROM", ..] => (ROW_EXCLUSIVE, table(2)?),
        _ => return None,
    };
    Some(Lock { mode, on })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mode: Mode, name: &str) -> Option<Lock> {
        Some(Lock {
            mode,
            on: On::Table(name.into()),
        })
    }

    #[test]
    fn statements_take_the_locks_postgres_documents() {
        assert_eq!(
            lock_of("ALTER TABLE orders ADD COLUMN note text"),
            t(ACCESS_EXCLUSIVE, "orders")
        );
        assert_eq!(
            lock_of("alter table if exists only public.orders alter column id type bigint"),
            t(ACCESS_EXCLUSIVE, "public.orders")
        );
        assert_eq!(
            lock_of("ALTER TABLE orders VALIDATE CONSTRAINT orders_fk"),
            t(SHARE_UPDATE_EXCLUSIVE, "orders")
        );
        assert_eq!(
            lock_of(
                "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers (id) NOT VALID"
            ),
            t(SHARE_ROW_EXCLUSIVE, "orders")
        );
        assert_eq!(
            lock_of("CREATE INDEX i ON orders (customer_id)"),
            t(SHARE, "orders")
        );
        assert_eq!(
            lock_of("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY \"Odd Name\" USING btree (a)"),
            t(SHARE_UPDATE_EXCLUSIVE, "\"Odd Name\"")
        );
        assert_eq!(
            lock_of("DROP INDEX CONCURRENTLY orders_customer_idx;"),
            Some(Lock {
                mode: SHARE_UPDATE_EXCLUSIVE,
                on: On::Index("orders_customer_idx".into())
            })
        );
        assert_eq!(lock_of("TRUNCATE TABLE orders"), t(ACCESS_EXCLUSIVE, "orders"));
        assert_eq!(lock_of("VACUUM (FULL) orders"), t(ACCESS_EXCLUSIVE, "orders"));
        assert_eq!(
            lock_of("UPDATE orders SET note = '' WHERE id = 1"),
            t(ROW_EXCLUSIVE, "orders")
        );
        assert_eq!(lock_of("CREATE TABLE notes (id bigint)"), None);
        assert_eq!(lock_of("SET lock_timeout = '5s'"), None);
    }

    #[test]
    fn conflicts_follow_the_table() {
        assert!(conflicts(ACCESS_EXCLUSIVE).contains(&ACCESS_SHARE));
        assert!(conflicts(SHARE).contains(&ROW_EXCLUSIVE));
        assert!(!conflicts(SHARE).contains(&ACCESS_SHARE));
        assert!(!conflicts(SHARE_UPDATE_EXCLUSIVE).contains(&ROW_EXCLUSIVE));
    }
}
