//! Reading archived WAL for the timeline: `pg_waldump`'s text, one segment
//! at a time, folded into what each transaction did (rows deleted and
//! updated per relation file, relations locked, files created and
//! written, catalog rows changed) and when it committed; then judged into
//! events a DBA looks for: drop, truncate, ddl, and deletes or updates of
//! many rows.
//!
//! The WAL names relation files (tablespace/database/file) and, in
//! Standby LOCK and "dropped stats" entries, relation oids; names come
//! from the live catalog or the panel's own record of files.

mod judge;

pub use judge::{Event, EventKind, Names, Scope, events};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::pgbackrest::{Stanza, as_user, segment_name};
use crate::engine::{EngineError, EngineResult};

/// The resource managers whose records the timeline folds.
const RMGRS: [&str; 6] = ["Heap", "Heap2", "Transaction", "Standby", "Storage", "XLOG"];

/// The longest pg_waldump line read (longer ones are skipped).
const MAX_LINE: u64 = 256 * 1024;

/// Oids and files below this are the system catalogs'.
const FIRST_NORMAL_OID: u32 = 16384;
/// pg_statistic and pg_statistic_ext_data: ANALYZE writes them; not DDL.
const STATISTICS: [u32; 2] = [2619, 3429];

/// What one transaction (or subtransaction) did in a segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub db: Option<u32>,
    /// Relation file → rows deleted.
    pub deletes: HashMap<u32, u64>,
    /// Relation file → rows updated.
    pub updates: HashMap<u32, u64>,
    /// User relations locked AccessExclusive (oids), in order.
    pub locked: Vec<u32>,
    /// oid → the new file created right after it was locked (truncate, rewrite).
    pub new_file_of: HashMap<u32, u32>,
    /// Files that received rows or pages.
    pub written: HashSet<u32>,
    /// Files created (a new relation's first file has its oid's number).
    pub created: HashSet<u32>,
    /// System catalog rows inserted, updated or deleted (not statistics).
    pub catalog_changed: bool,
    last_locked: Option<u32>,
}

impl Work {
    fn merge(&mut self, other: &Work) {
        self.db = self.db.or(other.db);
        for (k, v) in &other.deletes {
            *self.deletes.entry(*k).or_default() += v;
        }
        for (k, v) in &other.updates {
            *self.updates.entry(*k).or_default() += v;
        }
        self.locked.extend(other.locked.iter().copied());
        self.new_file_of
            .extend(other.new_file_of.iter().map(|(a, b)| (*a, *b)));
        self.written.extend(other.written.iter().copied());
        self.created.extend(other.created.iter().copied());
        self.catalog_changed |= other.catalog_changed;
    }
}

/// A committed transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub xid: u32,
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub lsn: String,
    pub subxacts: Vec<u32>,
    /// (database, file) dropped at commit.
    pub dropped_files: Vec<(u32, u32)>,
    /// (database, oid) whose statistics were dropped: relations dropped.
    pub dropped_oids: Vec<(u32, u32)>,
}

/// One segment's worth of WAL, folded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub work: HashMap<u32, Work>,
    pub commits: Vec<Commit>,
    /// The first and last commit times seen (µs), if any.
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
}

/// `T/D/R` or `base/D/R` or `pg_tblspc/T/V/D/R` → (D, R).
fn rel_path(text: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    if parts.len() < 3 {
        return None;
    }
    let r = parts[parts.len() - 1].parse().ok()?;
    let d = parts[parts.len() - 2].parse().ok()?;
    Some((d, r))
}

/// "2026-12-06 21:43:14.411051 UTC" → µs since the epoch (pg_waldump runs with TZ=UTC).
fn commit_time(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches("UTC").trim();
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    let t = time::PrimitiveDateTime::parse(text, format)
        .or_else(|_| {
            time::PrimitiveDateTime::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            )
        })
        .ok()?;
    Some((t.assume_utc().unix_timestamp_nanos() / 1000) as i64)
}

impl Segment {
    /// Fold one line of `pg_waldump` output in.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("rmgr: ") else {
            return;
        };
        let rmgr = rest.split_whitespace().next().unwrap_or("");
        let Some(desc_at) = rest.find("desc: ") else {
            return;
        };
        let desc = &rest[desc_at + 6..];
        let tx: u32 = rest
            .find("tx:")
            .and_then(|i| rest[i + 3..].split(',').next())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let blk = desc
            .find("blkref #0: rel ")
            .and_then(|i| desc[i + 15..].split_whitespace().next())
            .and_then(rel_path);
        let op = desc.split_whitespace().next().unwrap_or("");
        let op = op.split('+').next().unwrap_or(op);
        match rmgr {
            "Heap" | "Heap2" => {
                let Some((db, rel)) = blk else { return };
                let w = self.work.entry(tx).or_default();
                w.db = w.db.or(Some(db));
                let catalog = rel < FIRST_NORMAL_OID;
                match op {
                    "DELETE" if catalog => w.catalog_changed = true,
                    "DELETE" => *w.deletes.entry(rel).or_default() += 1,
                    "UPDATE" | "HOT_UPDATE" if catalog => w.catalog_changed |= !STATISTICS.contains(&rel),
                    "UPDATE" | "HOT_UPDATE" => *w.updates.entry(rel).or_default() += 1,
                    "INSERT" | "MULTI_INSERT" if catalog => w.catalog_changed |= !STATISTICS.contains(&rel),
                    "INSERT" | "MULTI_INSERT" => {
                        w.written.insert(rel);
                    }
                    _ => {}
                }
            }
            "XLOG" if op.starts_with("FPI") => {
                if let Some((db, rel)) = blk
                    && tx != 0
                {
                    let w = self.work.entry(tx).or_default();
                    w.db = w.db.or(Some(db));
                    w.written.insert(rel);
                }
            }
            "Standby" if op == "LOCK" => {
                // "LOCK xid 725 db 5 rel 16384 xid … db … rel …"
                let words: Vec<&str> = desc.split_whitespace().collect();
                let mut i = 0;
                while i + 5 < words.len() + 1 {
                    if words.get(i) == Some(&"xid") {
                        let xid = words.get(i + 1).and_then(|x| x.parse::<u32>().ok());
                        let db = words.get(i + 3).and_then(|x| x.parse::<u32>().ok());
                        let rel = words.get(i + 5).and_then(|x| x.parse::<u32>().ok());
                        if let (Some(xid), Some(db), Some(rel)) = (xid, db, rel)
                            && rel >= FIRST_NORMAL_OID
                        {
                            let w = self.work.entry(xid).or_default();
                            w.db = w.db.or(Some(db));
                            w.locked.push(rel);
                            w.last_locked = Some(rel);
                        }
                        i += 6;
                    } else {
                        i += 1;
                    }
                }
            }
            "Storage" if op == "CREATE" => {
                if let Some((db, file)) = desc.split_whitespace().nth(1).and_then(rel_path) {
                    let w = self.work.entry(tx).or_default();
                    w.db = w.db.or(Some(db));
                    w.created.insert(file);
                    if let Some(oid) = w.last_locked.take() {
                        w.new_file_of.insert(oid, file);
                    }
                }
            }
            "Transaction" if op == "COMMIT" => {
                let lsn = rest
                    .find("lsn: ")
                    .and_then(|i| rest[i + 5..].split(',').next())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let Some(after) = desc.trim_start().strip_prefix("COMMIT") else {
                    return;
                };
                let mut parts = after.split("; ");
                let Some(at_us) = parts.next().and_then(commit_time) else {
                    return;
                };
                let mut c = Commit {
                    xid: tx,
                    at_us,
                    lsn,
                    ..Commit::default()
                };
                for part in parts {
                    if let Some(list) = part.strip_prefix("rels: ") {
                        c.dropped_files
                            .extend(list.split_whitespace().filter_map(rel_path));
                    } else if let Some(list) = part.strip_prefix("dropped stats: ") {
                        // kind/db/oid; kind 2 is a relation.
                        for item in list.split_whitespace() {
                            let f: Vec<&str> = item.split('/').collect();
                            if f.len() == 3
                                && f[0] == "2"
                                && let (Ok(d), Ok(o)) = (f[1].parse(), f[2].parse())
                            {
                                c.dropped_oids.push((d, o));
                            }
                        }
                    } else if let Some(list) = part.strip_prefix("subxacts: ") {
                        c.subxacts
                            .extend(list.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
                    }
                }
                self.first_us = Some(self.first_us.map_or(at_us, |f| f.min(at_us)));
                self.last_us = Some(self.last_us.map_or(at_us, |l| l.max(at_us)));
                self.commits.push(c);
            }
            _ => {}
        }
    }
}

/// The LSN where segment `number` starts, as pg_waldump takes it.
fn lsn_of(number: u64, wal_size: i64) -> String {
    let at = number * wal_size as u64;
    format!("{:X}/{:X}", at >> 32, at & 0xffff_ffff)
}

/// Fetch segment `number` of timeline `tli` (and the next one, for the
/// record that crosses into it) with `archive-get` into `scratch`, and
/// fold it with `pg_waldump`. `complete` is false when the next segment
/// is not archived yet (the result should not be cached). The files are
/// removed after.
pub async fn decode_segment(
    stanza: &Stanza,
    waldump: &Path,
    major: u32,
    scratch: &Path,
    tli: u32,
    number: u64,
    wal_size: i64,
) -> EngineResult<(Segment, bool)> {
    let this = segment_name(tli, number, wal_size);
    let next = segment_name(tli, number + 1, wal_size);
    let get = |name: String| {
        let dest = scratch.join(&name);
        async move {
            stanza
                .output(
                    "archive-get",
                    &[name.clone(), dest.display().to_string()],
                    std::time::Duration::from_secs(120),
                )
                .await
                .map(|_| dest.exists())
        }
    };
    if !get(this.clone()).await? {
        return Err(EngineError::Tool(format!(
            "WAL segment {this} is not in the archive"
        )));
    }
    let complete = get(next.clone()).await.unwrap_or(false);
    let mut cmd = as_user(waldump, stanza.run_as.as_deref());
    cmd.env("TZ", "UTC")
        .arg("-t")
        .arg(tli.to_string())
        .arg("-p")
        .arg(scratch)
        .arg("-s")
        .arg(lsn_of(number, wal_size))
        .arg("-e")
        .arg(lsn_of(number + 1, wal_size));
    // Only the records folded here (from PostgreSQL 15, -r may be given
    // more than once): never logical messages, whose text anyone can
    // choose (pg_logical_emit_message) and make look like other records.
    if major >= 15 {
        for rmgr in RMGRS {
            cmd.arg("-r").arg(rmgr);
        }
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| EngineError::Tool(format!("cannot run pg_waldump: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EngineError::internal("pg_waldump has no output"))?;
    let mut reader = BufReader::new(stdout);
    let mut segment = Segment::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line is read whole up to a bound (a record's description is
        // short); text that is not UTF-8 is read lossily, never an error.
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| EngineError::Tool(format!("reading pg_waldump: {e}")))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            // Too long to be a record we fold: skip the rest of it.
            let mut rest = Vec::new();
            reader
                .read_until(b'\n', &mut rest)
                .await
                .map_err(|e| EngineError::Tool(format!("reading pg_waldump: {e}")))?;
            continue;
        }
        segment.add_line(String::from_utf8_lossy(&line).trim_end());
    }
    // pg_waldump ends with an error at the end of what it has; its output stands.
    let _ = child.wait().await;
    let _ = tokio::fs::remove_file(scratch.join(&this)).await;
    let _ = tokio::fs::remove_file(scratch.join(&next)).await;
    Ok((segment, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_paths() {
        assert_eq!(lsn_of(5, 16 * 1024 * 1024), "0/5000000");
        assert_eq!(lsn_of(256, 16 * 1024 * 1024), "1/0");
        assert_eq!(rel_path("base/5/16384"), Some((5, 16384)));
        assert_eq!(rel_path("1663/5/16384"), Some((5, 16384)));
        assert_eq!(
            rel_path("pg_tblspc/16500/PG_15_202209061/5/16384"),
            Some((5, 16384))
        );
    }
}
