//! SQLite maintenance: the tables of the main schema, page and freelist
//! counts, and VACUUM / ANALYZE / REINDEX / integrity_check. SQLite cannot
//! interrupt a statement from outside here: a cancel takes effect between
//! tables.

use sqlx::sqlite::SqlitePool;

use crate::engine::maintenance::{
    Action, Control, DatabaseHealth, Relation, TableHealth, TableList, TableQuery, Target, cancelled,
    quote_pg,
};
use crate::engine::{EngineError, EngineResult};

const USER_TABLES: &str = "type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";

pub async fn tables(pool: &SqlitePool, q: &TableQuery) -> EngineResult<TableList> {
    let direction = if q.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT name, count(*) OVER () FROM sqlite_schema WHERE {USER_TABLES} \
         AND ($1 IS NULL OR instr(lower('main.' || name), lower($1)) > 0) \
         ORDER BY name {direction} LIMIT $2 OFFSET $3"
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
        .bind(q.search.as_deref())
        .bind(q.limit)
        .bind(q.offset)
        .fetch_all(pool)
        .await
        .map_err(EngineError::from)?;
    let mut list = TableList::default();
    for (name, total) in rows {
        list.total = total;
        list.rows.push(TableHealth {
            schema: "main".into(),
            name,
            ..TableHealth::default()
        });
    }
    Ok(list)
}

pub async fn database_health(pool: &SqlitePool) -> EngineResult<DatabaseHealth> {
    let (pages, free, size): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), \
                (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(pool)
    .await
    .map_err(EngineError::from)?;
    Ok(DatabaseHealth {
        pages: Some((pages, free, size)),
        ..DatabaseHealth::default()
    })
}

pub async fn resolve_tables(pool: &SqlitePool, names: &[String]) -> EngineResult<Vec<Relation>> {
    let mut found = Vec::new();
    for raw in names {
        let name = raw.strip_prefix("main.").unwrap_or(raw);
        let row: Option<String> = sqlx::query_scalar(&format!(
            "SELECT name FROM sqlite_schema WHERE {USER_TABLES} AND name = $1"
        ))
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(EngineError::from)?;
        let name =
            row.ok_or_else(|| EngineError::Invalid(format!("There is no table {raw:?} in this database.")))?;
        found.push(Relation {
            schema: "main".into(),
            name,
        });
    }
    Ok(found)
}

pub async fn maintain(
    pool: &SqlitePool,
    action: Action,
    target: &Target,
    control: &Control,
) -> EngineResult<String> {
    if action.whole_database_only(crate::engine::EngineKind::Sqlite) || matches!(target, Target::Database) {
        control.report(Some(0.0), &format!("{} (whole database)", action.label()));
        return match action {
            Action::Vacuum => {
                sqlx::query("VACUUM")
                    .persistent(false)
                    .execute(pool)
                    .await
                    .map_err(EngineError::from)?;
                Ok("VACUUM: the file is compacted".into())
            }
            Action::IntegrityCheck => {
                let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(pool)
                    .await
                    .map_err(EngineError::from)?;
                if lines == ["ok"] {
                    Ok("integrity_check: ok".into())
                } else {
                    Err(EngineError::Invalid(format!(
                        "integrity_check found problems: {}",
                        lines.join("; ")
                    )))
                }
            }
            Action::Analyze => {
                sqlx::query("ANALYZE")
                    .persistent(false)
                    .execute(pool)
                    .await
                    .map_err(EngineError::from)?;
                Ok("ANALYZE on the whole database".into())
            }
            Action::Reindex => {
                sqlx::query("REINDEX")
                    .persistent(false)
                    .execute(pool)
                    .await
                    .map_err(EngineError::from)?;
                Ok("REINDEX on the whole database".into())
            }
            other => Err(EngineError::Invalid(format!("SQLite has no {}", other.label()))),
        };
    }
    let Target::Tables(relations) = target else {
        return Err(EngineError::Invalid(
            "SQLite maintains tables or the whole database".into(),
        ));
    };
    let n = relations.len().max(1) as f64;
    for (i, rel) in relations.iter().enumerate() {
        if control.is_cancelled() {
            return Err(cancelled());
        }
        let still = resolve_tables(pool, std::slice::from_ref(&rel.name)).await;
        if still.is_err() {
            return Err(EngineError::Invalid(format!(
                "{} no longer exists",
                rel.display()
            )));
        }
        control.report(
            Some(i as f64 / n),
            &format!("{} {}", action.label(), rel.display()),
        );
        let sql = match action {
            Action::Analyze => format!("ANALYZE {}", quote_pg(&rel.name)?),
            Action::Reindex => format!("REINDEX {}", quote_pg(&rel.name)?),
            other => {
                return Err(EngineError::Invalid(format!(
                    "SQLite has no per-table {}",
                    other.label()
                )));
            }
        };
        sqlx::query(&sql)
            .persistent(false)
            .execute(pool)
            .await
            .map_err(EngineError::from)?;
    }
    Ok(format!("{} on {} table(s)", action.label(), relations.len()))
}
