//! SQL text facts shared by the lint and the engines, a leaf that imports
//! neither: how a migration splits into statements per dialect, and which
//! statements cannot run inside a transaction.

pub mod locks;
pub mod mysql;
pub mod postgres;

use serde::Serialize;

/// The SQL dialect a database speaks, as the lint and the splitter see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}
