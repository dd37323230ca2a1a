//! The timeline: what happened in the archived WAL between two moments,
//! found by fetching segments with `pgbackrest archive-get` and folding
//! them with the server's `pg_waldump`. Bounded: a time range and a byte
//! budget per request, and each archived segment folded once (cached;
//! archived WAL never changes).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};

use super::Recovery;
use crate::engine::pitr::pgbackrest::{segment_name, segment_parts};
use crate::engine::pitr::server_program;
use crate::engine::pitr::wal::{self, Event, Names, Scope, Segment};
use crate::error::{AppError, AppResult};
use crate::service::fleet::Member;
use crate::store::recovery as rows;

/// Segments kept folded in memory.
const CACHE_SEGMENTS: usize = 2048;

/// (stanza and its config, timeline, segment number).
type SegmentKey = (String, u32, u64);
/// The folded segments, and their keys oldest first (for eviction).
type Cached = (HashMap<SegmentKey, Arc<Segment>>, VecDeque<SegmentKey>);

#[derive(Default)]
pub(super) struct SegmentCache {
    inner: StdMutex<Cached>,
}

impl SegmentCache {
    fn get(&self, key: &(String, u32, u64)) -> Option<Arc<Segment>> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    fn put(&self, key: (String, u32, u64), seg: Arc<Segment>) {
        if let Ok(mut c) = self.inner.lock() {
            if c.0.insert(key.clone(), seg).is_none() {
                c.1.push_back(key);
            }
            while c.1.len() > CACHE_SEGMENTS {
                if let Some(old) = c.1.pop_front() {
                    c.0.remove(&old);
                }
            }
        }
    }

    /// When transaction `xid` committed, if a folded segment of the stanza
    /// (`stanza_id`) saw it.
    pub(super) fn commit_time(&self, stanza: &str, xid: i64) -> Option<i64> {
        let c = self.inner.lock().ok()?;
        c.0.iter()
            .filter(|((s, _, _), _)| s == stanza)
            .flat_map(|(_, seg)| seg.commits.iter())
            .find(|commit| commit.xid as i64 == xid)
            .map(|commit| commit.at_us)
    }
}

/// A scratch directory for archived WAL under restore_dir, given to the
/// OS user pgBackRest runs as, removed when dropped (also when a request
/// is abandoned half-way). Ones a dead panel left are swept at start.
struct Scratch(std::path::PathBuf);

/// The names scratch directories start with.
pub(super) const SCRATCH_PREFIX: &str = ".wal-";

impl Scratch {
    fn new(restore_dir: &std::path::Path, user: Option<&str>) -> AppResult<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = restore_dir.join(format!("{SCRATCH_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| AppError::invalid(format!("cannot create {}: {e}", dir.display())))?;
        let scratch = Scratch(dir);
        if let Some(user) = user {
            crate::engine::pitr::cluster::give(&scratch.0, user).map_err(AppError::from)?;
        }
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One event as the page and the API show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TimelineEvent {
    /// RFC 3339, microseconds.
    pub at: String,
    pub at_us: i64,
    pub xid: u32,
    pub kind: &'static str,
    pub relation: Option<String>,
    pub rows: Option<u64>,
    pub lsn: String,
}

/// What a timeline request found.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub events: Vec<TimelineEvent>,
    pub from_us: i64,
    pub to_us: i64,
    /// The byte budget ran out before `to`: narrow the range.
    pub truncated: bool,
    /// WAL bytes folded for this request (not from the cache).
    pub decoded_bytes: u64,
    pub segments: usize,
    /// Segments the archive did not have (gaps).
    pub missing: Vec<String>,
}

/// The live catalog and the panel's record, for naming.
struct Naming {
    live: HashMap<u32, (String, String, u32)>,
    files: HashMap<u32, (u32, String, String)>,
    oids: HashMap<u32, (String, String)>,
}

impl Names for Naming {
    fn live(&self, oid: u32) -> Option<(String, String, u32)> {
        self.live.get(&oid).cloned()
    }
    fn recorded_file(&self, file: u32) -> Option<(u32, String, String)> {
        self.files.get(&file).cloned()
    }
    fn recorded_oid(&self, oid: u32) -> Option<(String, String)> {
        self.oids.get(&oid).cloned()
    }
}

impl Recovery {
    /// The events between `from_us` and `to_us` (µs since the epoch; the
    /// window's ends when `None`).
    pub async fn timeline(
        &self,
        m: &Arc<Member>,
        from_us: Option<i64>,
        to_us: Option<i64>,
    ) -> AppResult<Timeline> {
        let status = self.status_fresh(m).await?;
        let facts = status.facts.clone().map_err(AppError::invalid)?;
        let window = status.window.ok_or_else(|| {
            AppError::conflict("no physical backup yet: the timeline starts at the first one")
        })?;
        let from_us = from_us.unwrap_or(window.from * 1_000_000);
        let to_us = to_us.unwrap_or((window.to + 1) * 1_000_000);
        if from_us > to_us {
            return Err(AppError::invalid("the timeline's from is after its to"));
        }
        let stanza = Self::stanza_of(m, Some(&facts))?;
        let waldump = server_program(facts.major, "pg_waldump").map_err(AppError::from)?;
        let wal_size = facts.wal_segment_size.max(1024 * 1024);
        let Some(max) = status.info.archive_max.clone() else {
            return Err(AppError::conflict("the archive holds no WAL yet"));
        };
        let (tli, last) = segment_parts(&max, wal_size)
            .ok_or_else(|| AppError::invalid(format!("pgBackRest named WAL {max:?}, not a segment name")))?;
        // Start at the newest backup consistent before `from`, else the oldest.
        let start_backup = status
            .info
            .backups
            .iter()
            .filter(|b| !b.error && b.finished_at * 1_000_000 <= from_us)
            .max_by_key(|b| b.finished_at)
            .or_else(|| {
                status
                    .info
                    .backups
                    .iter()
                    .filter(|b| !b.error)
                    .min_by_key(|b| b.finished_at)
            })
            .ok_or_else(|| AppError::conflict("no physical backup yet"))?;
        let (_, first) = segment_parts(&start_backup.wal_start, wal_size)
            .ok_or_else(|| AppError::invalid("a backup in pgBackRest's catalog names no WAL start"))?;

        super::restore::prepare_dir(self.restore_dir(), stanza.run_as.as_deref())?;
        // One request decodes at a time: viewers asking at once wait, and
        // find what the first one decoded in the cache.
        let _turn = self
            .0
            .decoding
            .acquire()
            .await
            .map_err(|_| AppError::conflict("the panel is stopping"))?;
        let scratch = Scratch::new(self.restore_dir(), stanza.run_as.as_deref())?;
        let cache_id = super::stanza_id(&stanza);
        let mut segments: Vec<Arc<Segment>> = Vec::new();
        let mut decoded = 0u64;
        let mut truncated = false;
        let mut missing = Vec::new();
        let budget = self.0.config.timeline_wal_budget;
        let mut result = Ok(());
        for n in first..=last {
            let key = (cache_id.clone(), tli, n);
            let seg = match self.0.segments.get(&key) {
                Some(s) => s,
                None => {
                    if decoded + wal_size as u64 > budget.max(wal_size as u64) {
                        truncated = true;
                        break;
                    }
                    match wal::decode_segment(&stanza, &waldump, facts.major, &scratch.0, tli, n, wal_size)
                        .await
                    {
                        Ok((seg, complete)) => {
                            decoded += wal_size as u64;
                            let seg = Arc::new(seg);
                            if complete {
                                self.0.segments.put(key, seg.clone());
                            }
                            seg
                        }
                        Err(e) if e.to_string().contains("not in the archive") => {
                            missing.push(segment_name(tli, n, wal_size));
                            continue;
                        }
                        Err(e) => {
                            result = Err(AppError::from(e));
                            break;
                        }
                    }
                }
            };
            let past = seg.first_us.is_some_and(|f| f > to_us);
            segments.push(seg);
            if past {
                break;
            }
        }
        drop(scratch);
        result?;

        let naming = self.naming(m).await?;
        let refs: Vec<&Segment> = segments.iter().map(|s| s.as_ref()).collect();
        let scope = Scope {
            db: facts.db_oid as u32,
            from_us,
            to_us,
            min_rows: self.0.config.timeline_min_rows.max(1) as u64,
            dropped_stats: facts.major >= 15,
        };
        let events = wal::events(&refs, scope, &naming)
            .into_iter()
            .map(|e: Event| TimelineEvent {
                at: super::restore::rfc3339_us(e.at_us),
                at_us: e.at_us,
                xid: e.xid,
                kind: e.kind.as_str(),
                relation: e.relation,
                rows: e.rows,
                lsn: e.lsn,
            })
            .collect();
        Ok(Timeline {
            events,
            from_us,
            to_us,
            truncated,
            decoded_bytes: decoded,
            segments: segments.len(),
            missing,
        })
    }

    async fn naming(&self, m: &Arc<Member>) -> AppResult<Naming> {
        let live = m
            .read(|db| async move { db.relation_files().await })
            .await
            .map_err(AppError::invalid)?;
        let mut naming = Naming {
            live: live
                .iter()
                .map(|f| {
                    (
                        f.oid as u32,
                        (f.name.clone(), f.relkind.clone(), f.relfilenode as u32),
                    )
                })
                .collect(),
            files: HashMap::new(),
            oids: HashMap::new(),
        };
        // Oldest first: a newer record of a file or oid wins.
        for (file, oid, name, kind) in
            rows::recorded_files(self.0.store.pool(), m.entry.name.as_str()).await?
        {
            naming
                .files
                .insert(file as u32, (oid as u32, name.clone(), kind.clone()));
            naming.oids.insert(oid as u32, (name, kind));
        }
        for f in &live {
            naming.files.entry(f.relfilenode as u32).or_insert((
                f.oid as u32,
                f.name.clone(),
                f.relkind.clone(),
            ));
            naming
                .oids
                .insert(f.oid as u32, (f.name.clone(), f.relkind.clone()));
        }
        Ok(naming)
    }
}
