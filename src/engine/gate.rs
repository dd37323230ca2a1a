//! What the live gate reads from a database before a migration: for each
//! relation a statement locks, its size and the sessions holding or
//! waiting for a conflicting lock on it; the transactions open too long;
//! the worst replica lag. Plain data; the service judges it.

use serde::Serialize;

use crate::sqltext::locks::{Mode, On};

/// One relation a statement locks, and how.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub mode: Mode,
    pub on: On,
}

/// A session in the way (or merely old).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Holder {
    pub pid: i64,
    pub user: Option<String>,
    pub state: Option<String>,
    pub xact_age_s: Option<f64>,
    pub query: Option<String>,
    /// The lock it holds (or waits for) on the relation, when it is a lock.
    pub mode: Option<String>,
    pub granted: bool,
}

/// What the database says about one wanted relation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RelationFacts {
    /// `schema.table` as the catalog names it; `None` when it does not
    /// exist (yet: a table created earlier in the same migration).
    pub table: Option<String>,
    pub bytes: Option<i64>,
    pub rows: Option<f64>,
    /// Sessions holding or waiting for a lock that conflicts with the one
    /// wanted.
    pub holders: Vec<Holder>,
}

/// Everything the gate reads, once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GateFacts {
    /// In the order wanted.
    pub relations: Vec<RelationFacts>,
    /// Transactions open longer than the limit on this database.
    pub long_transactions: Vec<Holder>,
    pub replica_lag_s: Option<f64>,
}
