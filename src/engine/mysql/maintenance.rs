//! MySQL/MariaDB maintenance: table sizes, reclaimable space and engines
//! (information_schema.TABLES), and ANALYZE / OPTIMIZE / CHECK TABLE run on a
//! connection of their own, cancelled with KILL QUERY.

use sqlx::{MySqlConnection, Row};

use super::Mysql;
use crate::engine::maintenance::{
    Action, Control, Relation, TableHealth, TableList, TableQuery, TableSort, Target, cancelled, quote_mysql,
};
use crate::engine::{EngineError, EngineResult};

pub async fn tables(conn: &mut MySqlConnection, q: &TableQuery) -> EngineResult<TableList> {
    // ORDER BY from this fixed list only.
    let order = match q.sort {
        TableSort::Name => "TABLE_NAME",
        TableSort::DeadTuples | TableSort::DeadPct => "DATA_FREE",
        _ => "DATA_LENGTH + INDEX_LENGTH",
    };
    let direction = if q.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, CAST(TABLE_ROWS AS SIGNED), \
                CAST(DATA_LENGTH AS SIGNED), CAST(INDEX_LENGTH AS SIGNED), CAST(DATA_FREE AS SIGNED), \
                CAST(COUNT(*) OVER () AS SIGNED) \
         FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
           AND (? IS NULL OR LOCATE(LOWER(?), LOWER(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME))) > 0) \
         ORDER BY {order} {direction}, TABLE_NAME LIMIT ? OFFSET ?"
    );
    let rows = sqlx::query(&sql)
        .bind(q.search.as_deref())
        .bind(q.search.as_deref())
        .bind(q.limit)
        .bind(q.offset)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::from)?;
    let mut list = TableList::default();
    for r in rows {
        list.total = r.try_get(7).map_err(EngineError::from)?;
        let data: Option<i64> = r.try_get(4).map_err(EngineError::from)?;
        let index: Option<i64> = r.try_get(5).map_err(EngineError::from)?;
        list.rows.push(TableHealth {
            schema: r.try_get(0).map_err(EngineError::from)?,
            name: r.try_get(1).map_err(EngineError::from)?,
            storage_engine: r.try_get(2).map_err(EngineError::from)?,
            live_tuples: r.try_get(3).map_err(EngineError::from)?,
            table_bytes: data,
            index_bytes: index,
            total_bytes: Some(data.unwrap_or(0) + index.unwrap_or(0)),
            data_free: r.try_get(6).map_err(EngineError::from)?,
            ..TableHealth::default()
        });
    }
    Ok(list)
}

pub async fn resolve_tables(conn: &mut MySqlConnection, names: &[String]) -> EngineResult<Vec<Relation>> {
    let mut found = Vec::new();
    for raw in names {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
               AND (CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) = ? OR TABLE_NAME = ?) LIMIT 1",
        )
        .bind(raw)
        .bind(raw)
        .fetch_optional(&mut *conn)
        .await
        .map_err(EngineError::from)?;
        let (schema, name) =
            row.ok_or_else(|| EngineError::Invalid(format!("There is no table {raw:?} in this database.")))?;
        found.push(Relation { schema, name });
    }
    Ok(found)
}

/// Run `action` on a connection of its own from the server's budget,
/// cancelled with KILL QUERY over a catalog connection.
pub async fn maintain(
    db: &Mysql,
    action: Action,
    target: &Target,
    control: &Control,
) -> EngineResult<String> {
    let verb = match action {
        Action::Analyze => "ANALYZE TABLE",
        Action::Optimize => "OPTIMIZE TABLE",
        Action::Check => "CHECK TABLE",
        other => {
            return Err(EngineError::Invalid(format!(
                "MySQL/MariaDB has no {}",
                other.label()
            )));
        }
    };
    let relations = match target {
        Target::Tables(t) => t.clone(),
        Target::Database => {
            let all: Vec<(String, String)> = sqlx::query_as(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            )
            .fetch_all(&mut *db.lease().await?)
            .await
            .map_err(EngineError::from)?;
            all.into_iter()
                .map(|(schema, name)| Relation { schema, name })
                .collect()
        }
        Target::Index(_) => {
            return Err(EngineError::Invalid(
                "MySQL/MariaDB maintains tables, not single indexes".into(),
            ));
        }
    };
    let mut conn = tokio::select! {
        c = db.long_lease() => c?,
        _ = control.cancelled() => return Err(cancelled()),
    };
    let id = conn.id();
    let n = relations.len().max(1) as f64;
    let mut notes = Vec::new();
    for (i, rel) in relations.iter().enumerate() {
        if control.is_cancelled() {
            return Err(cancelled());
        }
        let still: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        )
        .bind(&rel.schema)
        .bind(&rel.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(EngineError::from)?;
        if still.is_none() {
            return Err(EngineError::Invalid(format!(
                "{} no longer exists",
                rel.display()
            )));
        }
        control.report(Some(i as f64 / n), &format!("{verb} {}", rel.display()));
        let sql = format!("{verb} {}.{}", quote_mysql(&rel.schema)?, quote_mysql(&rel.name)?);
        let mut cancel_sent = false;
        let result = {
            let exec = sqlx::query(&sql).persistent(false).fetch_all(&mut *conn);
            tokio::pin!(exec);
            loop {
                tokio::select! {
                    r = &mut exec => break r,
                    _ = control.cancelled(), if !cancel_sent => {
                        cancel_sent = true;
                        if let Ok(mut other) = db.lease().await {
                            let _ = crate::engine::mysql::kill(&mut other, id, crate::engine::Signal::Cancel).await;
                        }
                    }
                }
            }
        };
        let rows = match result {
            Ok(rows) => rows,
            Err(_) if cancel_sent => return Err(cancelled()),
            Err(e) => {
                return Err(EngineError::from_sqlx(e).context(rel.display()));
            }
        };
        for r in rows {
            let kind: String = r.try_get(2).unwrap_or_default();
            let text: String = r.try_get(3).unwrap_or_default();
            if kind.eq_ignore_ascii_case("error") {
                return Err(EngineError::Refused(format!("{}: {text}", rel.display())));
            }
            let note = format!("{}: {kind} {text}", rel.display());
            control.note(note.clone());
            notes.push(note);
        }
    }
    drop(conn);
    Ok(format!(
        "{verb} on {} table(s). {}",
        relations.len(),
        notes.join("; ")
    ))
}
