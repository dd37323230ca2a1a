//! Judging folded WAL into the events a DBA looks for: drops, truncates,
//! DDL, and deletes or updates of many rows of one table, named from the
//! live catalog or the panel's record.

use std::collections::{HashMap, HashSet};

use super::{Commit, Segment, Work};

/// What kind of thing happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Drop,
    Truncate,
    Ddl,
    Delete,
    Update,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Drop => "drop",
            EventKind::Truncate => "truncate",
            EventKind::Ddl => "ddl",
            EventKind::Delete => "delete",
            EventKind::Update => "update",
        }
    }
}

/// One thing a DBA may want to undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at_us: i64,
    pub xid: u32,
    pub lsn: String,
    pub kind: EventKind,
    pub relation: Option<String>,
    pub rows: Option<u64>,
}

/// How relations are named: the live catalog and the panel's record.
pub trait Names {
    /// A relation by oid as it is now: (name, relkind, file).
    fn live(&self, oid: u32) -> Option<(String, String, u32)>;
    /// A relation file as the panel recorded it: (oid, name, relkind).
    fn recorded_file(&self, file: u32) -> Option<(u32, String, String)>;
    /// A relation oid as the panel recorded it: (name, relkind).
    fn recorded_oid(&self, oid: u32) -> Option<(String, String)>;
}

fn is_table(kind: &str) -> bool {
    matches!(kind, "r" | "p" | "m")
}

/// The names of (name, relkind) pairs: the tables when there are any, else all.
fn tables_first(named: Vec<(String, String)>) -> Vec<String> {
    let any_table = named.iter().any(|(_, k)| is_table(k));
    named
        .into_iter()
        .filter(|(_, k)| !any_table || is_table(k))
        .map(|(n, _)| n)
        .collect()
}

/// What to look for, and where.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    /// The managed database's oid.
    pub db: u32,
    pub from_us: i64,
    pub to_us: i64,
    /// Deletes and updates from this many rows of one table.
    pub min_rows: u64,
    /// PostgreSQL 15 and later name dropped relations in the commit
    /// ("dropped stats"); before, a locked relation now gone was dropped.
    pub dropped_stats: bool,
}

/// The events of the commits in `segments` (in order) in `scope`, named by `names`.
pub fn events(segments: &[&Segment], scope: Scope, names: &dyn Names) -> Vec<Event> {
    let Scope {
        db, from_us, to_us, ..
    } = scope;
    let mut all_work: HashMap<u32, Work> = HashMap::new();
    for s in segments {
        for (xid, w) in &s.work {
            all_work.entry(*xid).or_default().merge(w);
        }
    }
    let mut out = Vec::new();
    for s in segments {
        for c in &s.commits {
            if c.at_us < from_us || c.at_us > to_us {
                continue;
            }
            let mut w = all_work.get(&c.xid).cloned().unwrap_or_default();
            for sub in &c.subxacts {
                if let Some(sw) = all_work.get(sub) {
                    w.merge(sw);
                }
            }
            let in_db = w.db == Some(db)
                || c.dropped_files.iter().any(|(d, _)| *d == db)
                || c.dropped_oids.iter().any(|(d, _)| *d == db);
            if !in_db {
                continue;
            }
            out.extend(judge(c, &w, scope, names));
        }
    }
    out.sort_by_key(|e| (e.at_us, e.xid));
    out
}

fn judge(c: &Commit, w: &Work, scope: Scope, names: &dyn Names) -> Vec<Event> {
    let Scope { db, min_rows, .. } = scope;
    let event = |kind, relation: Option<String>, rows| Event {
        at_us: c.at_us,
        xid: c.xid,
        lsn: c.lsn.clone(),
        kind,
        relation,
        rows,
    };
    let mut out = Vec::new();
    let mut structural = false;

    // Dropped: relations gone from the live catalog, named from the record.
    let mut candidates: Vec<u32> = c
        .dropped_oids
        .iter()
        .filter(|(d, _)| *d == db)
        .map(|(_, o)| *o)
        .collect();
    if !scope.dropped_stats && !c.dropped_files.is_empty() {
        candidates.extend(w.locked.iter().copied());
        candidates.extend(
            c.dropped_files
                .iter()
                .filter(|(d, _)| *d == db)
                .filter_map(|(_, f)| names.recorded_file(*f).map(|r| r.0)),
        );
    }
    let mut seen = HashSet::new();
    let mut tables = Vec::new();
    let mut others = Vec::new();
    let mut unrecorded = Vec::new();
    for oid in candidates {
        if !seen.insert(oid) || names.live(oid).is_some() {
            continue;
        }
        match names.recorded_oid(oid) {
            Some((name, kind)) if is_table(&kind) => tables.push(name),
            Some((name, kind)) if kind == "i" => others.push(name),
            Some(_) => {}
            // Only a permanent relation that existed before this
            // transaction: locked here, files dropped at commit, not
            // created here (a rewrite's transient heap is).
            None if w.locked.contains(&oid)
                && !w.created.contains(&oid)
                && c.dropped_files.iter().any(|(d, _)| *d == db) =>
            {
                unrecorded.push(oid)
            }
            None => {}
        }
    }
    if !tables.is_empty() || !others.is_empty() {
        let list = if tables.is_empty() { others } else { tables };
        out.push(event(EventKind::Drop, Some(list.join(", ")), None));
        structural = true;
    } else if let Some(first) = unrecorded.iter().min() {
        // Created and dropped between two records of the catalog: still a
        // drop, named by the oid it had (a table's comes before its
        // toast table's and its indexes').
        out.push(event(
            EventKind::Drop,
            Some(format!("oid {first} (not recorded by the panel)")),
            None,
        ));
        structural = true;
    }

    // Truncated (a new, empty file) or rewritten (a new file with rows: ddl).
    if !structural && !c.dropped_files.is_empty() {
        let mut truncated = Vec::new();
        let mut rewritten = Vec::new();
        let mut seen = HashSet::new();
        for oid in &w.locked {
            if !seen.insert(*oid) {
                continue;
            }
            let Some(file) = w.new_file_of.get(oid) else {
                continue;
            };
            let named = names
                .live(*oid)
                .map(|(n, k, _)| (n, k))
                .or_else(|| names.recorded_oid(*oid));
            let Some((name, kind)) = named else { continue };
            if !is_table(&kind) {
                continue;
            }
            if w.written.contains(file) {
                rewritten.push(name);
            } else {
                truncated.push(name);
            }
        }
        if !truncated.is_empty() {
            out.push(event(EventKind::Truncate, Some(truncated.join(", ")), None));
            structural = true;
        } else if !rewritten.is_empty() {
            out.push(event(EventKind::Ddl, Some(rewritten.join(", ")), None));
            structural = true;
        }
    }

    if !structural && w.catalog_changed {
        let mut seen = HashSet::new();
        let named: Vec<(String, String)> = w
            .locked
            .iter()
            .filter(|o| seen.insert(**o))
            .filter_map(|o| {
                names
                    .live(*o)
                    .map(|(n, k, _)| (n, k))
                    .or_else(|| names.recorded_oid(*o))
            })
            .filter(|(_, k)| k != "t")
            .collect();
        let named: Vec<String> = tables_first(named).into_iter().take(3).collect();
        out.push(event(
            EventKind::Ddl,
            (!named.is_empty()).then(|| named.join(", ")),
            None,
        ));
    }

    let name_of_file = |file: u32| -> Option<String> {
        names
            .recorded_file(file)
            .filter(|(_, _, k)| is_table(k))
            .map(|(_, n, _)| n)
    };
    for (kind, counts) in [(EventKind::Delete, &w.deletes), (EventKind::Update, &w.updates)] {
        let mut rows: Vec<(&u32, &u64)> = counts.iter().filter(|(_, n)| **n >= min_rows).collect();
        rows.sort();
        for (file, n) in rows {
            // Toast rows go with their table's: only tables are listed.
            let name = name_of_file(*file);
            if name.is_none() && names.recorded_file(*file).is_some() {
                continue;
            }
            out.push(event(
                kind,
                name.or_else(|| Some(format!("file {file}"))),
                Some(*n),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::commit_time;
    use super::*;

    /// Lines as PostgreSQL 15's pg_waldump printed them for: DELETE of
    /// 2000 rows from public.orders (file 16398), CREATE TABLE t3, TRUNCATE
    /// orders, VACUUM FULL t3 (empty), DROP TABLE orders.
    fn sample() -> Segment {
        let mut s = Segment::default();
        for i in 0..2000 {
            s.add_line(&format!("rmgr: Heap        len (rec/tot):     54/    54, tx:        729, lsn: 0/0506{i:04X}, prev 0/0, desc: DELETE off {i} flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/16398 blk 4"));
        }
        for l in [
            "rmgr: Transaction len (rec/tot):     34/    34, tx:        729, lsn: 0/050D9388, prev 0/050D9350, desc: COMMIT 2026-12-06 21:43:14.012763 UTC",
            "rmgr: Standby     len (rec/tot):     42/    42, tx:        730, lsn: 0/050D93B0, prev 0/050D9388, desc: LOCK xid 730 db 5 rel 16405 ",
            "rmgr: Storage     len (rec/tot):     42/    42, tx:        730, lsn: 0/050D93E0, prev 0/050D93B0, desc: CREATE base/5/16405",
            "rmgr: Heap        len (rec/tot):     65/  1765, tx:        730, lsn: 0/050D9400, prev 0/0, desc: INSERT off 5 flags 0x00, blkref #0: rel 1663/5/1259 blk 0 FPW",
            "rmgr: Transaction len (rec/tot):    405/   405, tx:        730, lsn: 0/050DAAA0, prev 0/050DAA58, desc: COMMIT 2026-12-06 21:43:14.124805 UTC; inval msgs: catcache 80 relcache 16405",
            "rmgr: Standby     len (rec/tot):     42/    42, tx:        731, lsn: 0/050DAC38, prev 0/050DAAA0, desc: LOCK xid 731 db 5 rel 16398 ",
            "rmgr: Storage     len (rec/tot):     42/    42, tx:        731, lsn: 0/050DAC68, prev 0/050DAC38, desc: CREATE base/5/16408",
            "rmgr: Heap        len (rec/tot):     65/  1765, tx:        731, lsn: 0/050DAC90, prev 0/0, desc: UPDATE off 5 xmax 731 flags 0x00 ; new off 7 xmax 0, blkref #0: rel 1663/5/1259 blk 0 FPW",
            "rmgr: Transaction len (rec/tot):    361/   361, tx:        731, lsn: 0/050DB3D0, prev 0/050DB340, desc: COMMIT 2026-12-06 21:43:14.235211 UTC; rels: base/5/16398; inval msgs: relcache 16398",
            "rmgr: Standby     len (rec/tot):     42/    42, tx:        732, lsn: 0/050DB540, prev 0/050DB3D0, desc: LOCK xid 732 db 5 rel 16405 ",
            "rmgr: Standby     len (rec/tot):     42/    42, tx:        732, lsn: 0/050DB570, prev 0/050DB540, desc: LOCK xid 732 db 5 rel 16412 ",
            "rmgr: Storage     len (rec/tot):     42/    42, tx:        732, lsn: 0/050DB5A0, prev 0/050DB570, desc: CREATE base/5/16412",
            "rmgr: XLOG        len (rec/tot):     49/   137, tx:        732, lsn: 0/050DB5F0, prev 0/0, desc: FPI , blkref #0: rel 1663/5/16412 blk 0 FPW",
            "rmgr: Heap        len (rec/tot):     65/  1765, tx:        732, lsn: 0/050DB600, prev 0/0, desc: HOT_UPDATE off 5 xmax 732 flags 0x00 ; new off 7 xmax 0, blkref #0: rel 1663/5/1259 blk 0 FPW",
            "rmgr: Transaction len (rec/tot):    965/   965, tx:        732, lsn: 0/050DD8E8, prev 0/050DD8B0, desc: COMMIT 2026-12-06 21:43:14.315746 UTC; rels: base/5/16405; dropped stats: 2/5/16412; inval msgs: catcache 80",
            "rmgr: Standby     len (rec/tot):     42/    42, tx:        733, lsn: 0/050DDCB0, prev 0/050DD8E8, desc: LOCK xid 733 db 5 rel 16398 ",
            "rmgr: Heap        len (rec/tot):     54/    54, tx:        733, lsn: 0/050DDD00, prev 0/0, desc: DELETE off 68 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/1259 blk 13",
            "rmgr: Transaction len (rec/tot):   1245/  1245, tx:        733, lsn: 0/050DE5A0, prev 0/050DE568, desc: COMMIT 2026-12-06 21:43:14.411051 UTC; rels: base/5/16408; dropped stats: 2/5/16398; inval msgs: catcache 32",
            "rmgr: Transaction len (rec/tot):     34/    34, tx:        734, lsn: 0/050DE600, prev 0/0, desc: COMMIT 2026-12-06 21:43:15.000000 UTC",
        ] {
            s.add_line(l);
        }
        s
    }

    fn scope(from_us: i64, to_us: i64, min_rows: u64) -> Scope {
        Scope {
            db: 5,
            from_us,
            to_us,
            min_rows,
            dropped_stats: true,
        }
    }

    /// orders (oid 16398) was dropped; t3 (oid 16405) lives in file 16412.
    struct Fixture;
    impl Names for Fixture {
        fn live(&self, oid: u32) -> Option<(String, String, u32)> {
            (oid == 16405).then(|| ("public.t3".into(), "r".into(), 16412))
        }
        fn recorded_file(&self, file: u32) -> Option<(u32, String, String)> {
            match file {
                16398 => Some((16398, "public.orders".into(), "r".into())),
                16405 => Some((16405, "public.t3".into(), "r".into())),
                _ => None,
            }
        }
        fn recorded_oid(&self, oid: u32) -> Option<(String, String)> {
            match oid {
                16398 => Some(("public.orders".into(), "r".into())),
                16405 => Some(("public.t3".into(), "r".into())),
                _ => None,
            }
        }
    }

    #[test]
    fn the_timeline_finds_what_a_dba_looks_for() {
        let s = sample();
        let got = events(&[&s], scope(0, i64::MAX, 1000), &Fixture);
        let summary: Vec<(u32, &str, Option<&str>, Option<u64>)> = got
            .iter()
            .map(|e| (e.xid, e.kind.as_str(), e.relation.as_deref(), e.rows))
            .collect();
        assert_eq!(
            summary,
            [
                (729, "delete", Some("public.orders"), Some(2000)),
                (730, "ddl", Some("public.t3"), None),
                (731, "truncate", Some("public.orders"), None),
                (732, "ddl", Some("public.t3"), None),
                (733, "drop", Some("public.orders"), None),
            ]
        );
        assert_eq!(
            got[4].at_us,
            commit_time("2026-12-06 21:43:14.411051 UTC").unwrap()
        );
    }

    /// Names nothing: every relation was created after the panel's last record.
    struct Unrecorded;
    impl Names for Unrecorded {
        fn live(&self, _: u32) -> Option<(String, String, u32)> {
            None
        }
        fn recorded_file(&self, _: u32) -> Option<(u32, String, String)> {
            None
        }
        fn recorded_oid(&self, _: u32) -> Option<(String, String)> {
            None
        }
    }

    #[test]
    fn a_drop_the_panel_never_recorded_is_still_a_drop() {
        let s = sample();
        let drops: Vec<Event> = events(&[&s], scope(0, i64::MAX, 1000), &Unrecorded)
            .into_iter()
            .filter(|e| e.kind == EventKind::Drop)
            .collect();
        assert_eq!(drops.len(), 1, "{drops:?}");
        assert_eq!(drops[0].xid, 733);
        assert_eq!(
            drops[0].relation.as_deref(),
            Some("oid 16398 (not recorded by the panel)")
        );
    }

    #[test]
    fn the_range_the_threshold_and_the_database_filter() {
        let s = sample();
        let drop_at = commit_time("2026-12-06 21:43:14.411051").unwrap();
        let only_drop = events(&[&s], scope(drop_at, drop_at, 1000), &Fixture);
        assert_eq!(only_drop.len(), 1);
        assert_eq!(only_drop[0].kind, EventKind::Drop);
        assert!(
            events(&[&s], scope(0, i64::MAX, 5000), &Fixture)
                .iter()
                .all(|e| e.kind != EventKind::Delete)
        );
        let other_db = Scope {
            db: 6,
            ..scope(0, i64::MAX, 1)
        };
        assert!(events(&[&s], other_db, &Fixture).is_empty());
    }
}
