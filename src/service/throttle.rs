//! The sign-in throttle. Attempts are counted per (attempted name, client
//! address), for names that exist and names that do not alike, so its
//! answers never tell which names are real; and per address, so one address
//! cannot try name after name. A user being guessed at from one address can
//! still sign in from another.
//!
//! - A pair's first [`FREE_FAILURES`] failures cost nothing; after that each
//!   attempt must wait [`BASE_DELAY_SECS`], doubling per further failure up
//!   to [`MAX_DELAY_SECS`]. A success clears the pair; a pair quiet for
//!   [`THROTTLE_WINDOW_SECS`] starts again.
//! - An address with [`MAX_FAILURES_PER_CLIENT`] failures in runs active in
//!   the window signs nobody in until they have gone quiet.
//!
//! Counts live in the store (`login_throttle`), so they hold across restarts
//! and across instances sharing it; attempts are counted *before* the
//! password is checked, with a compare-and-set, so parallel guesses cannot
//! all slip through one gap. Names are kept only as keyed hashes.
//!
//! Refused attempts cost the store nothing per attempt: the first refusal of
//! a window (per address, or per name and address) writes its audit row at
//! once, later ones in the same window are counted in memory and written as
//! one row with the count when the window ends. (Each instance counts its
//! own; a count still open when an instance stops is lost, its first row is
//! not.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::error::{AppError, AppResult};
use crate::secrets::MacKey;
use crate::service::Actor;
use crate::service::audit::{Event, Outcome, record};
use crate::store::throttle::{self as rows, Run};
use crate::store::{Store, now};

/// Runs quiet for this long are forgotten; the per-address count and the
/// aggregation of refusals use the same window.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// Failures of one name from one address before any wait.
pub const FREE_FAILURES: i64 = 3;
/// The first wait; it doubles with each further failure...
pub const BASE_DELAY_SECS: i64 = 5;
/// ...up to this.
pub const MAX_DELAY_SECS: i64 = 5 * 60;
/// After this many failures from one address (whatever the names), it signs
/// nobody in until its failures are a window old.
pub const MAX_FAILURES_PER_CLIENT: i64 = 20;
/// Typed names are compared on at most this many characters.
const NAME_KEY_CHARS: usize = 64;
/// At most this many windows of refusals are counted in memory; past it
/// (an attack from very many addresses) each refusal writes its own row.
const MAX_WINDOWS: usize = 10_000;
/// How often ended windows are written out.
const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// The key a typed name is counted under: a MAC of it trimmed, lower-cased
/// and cut to length, so "Erin " and "erin" are one name and the store
/// never holds what was typed (often a password, in the wrong box).
pub fn name_key(key: &MacKey, typed: &str) -> String {
    let normal: String = typed.trim().to_lowercase().chars().take(NAME_KEY_CHARS).collect();
    let tag = key.tag(&[b"sign-in name", normal.as_bytes()]);
    tag[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The wait after a pair's `failures`-th failure.
pub fn delay(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(20) as u32;
    (BASE_DELAY_SECS << doublings).min(MAX_DELAY_SECS)
}

/// An attempt the throttle let through. It is already counted as a failure;
/// [`Throttle::succeeded`] takes it back.
#[derive(Debug)]
pub struct Claim {
    name_key: String,
    client: String,
}

/// An attempt held back, and for how long.
#[derive(Debug)]
pub struct Refusal {
    pub retry_after_secs: i64,
    /// Which count refused it: the pair's (`Some(name key)`) or the address's.
    pair: Option<String>,
}

impl Refusal {
    /// The user-facing error: the same whether the name exists or not.
    pub fn error(&self) -> AppError {
        let secs = self.retry_after_secs.max(1);
        let wait = match secs {
            1 => "1 second".to_string(),
            s if s < 90 => format!("{s} seconds"),
            s => format!("{} minutes", (s + 59) / 60),
        };
        AppError::Throttled {
            message: format!("Too many failed sign-ins. Try again in {wait}."),
            retry_after_secs: secs as u64,
        }
    }

    fn why(&self) -> &'static str {
        match self.pair {
            Some(_) => "too many failures for this name from this address",
            None => "too many failures from this address",
        }
    }
}

/// Refusals counted in memory for one window.
struct Window {
    opened_at: i64,
    /// Refusals after the first, which has its row already.
    more: u64,
    actor: Actor,
    target: String,
    why: &'static str,
}

type Windows = Mutex<HashMap<(String, String), Window>>;

/// The throttle's in-memory half (the refusal counts); cheap to clone.
#[derive(Clone, Default)]
pub struct Throttle {
    windows: Arc<Windows>,
    flusher: Arc<OnceLock<()>>,
}

impl Throttle {
    /// May `client` try `name_key` now? If so the attempt is counted.
    pub async fn claim(
        &self,
        store: &Store,
        name_key: &str,
        client: &str,
    ) -> AppResult<Result<Claim, Refusal>> {
        let pool = store.pool();
        let now = now();
        let since = now - THROTTLE_WINDOW_SECS;
        let (from_client, latest) = rows::from_client(pool, client, since).await?;
        if from_client >= MAX_FAILURES_PER_CLIENT {
            return Ok(Err(Refusal {
                retry_after_secs: latest + THROTTLE_WINDOW_SECS - now,
                pair: None,
            }));
        }
        // Compare-and-set: a request that loses the race reads again.
        for _ in 0..3 {
            let taken = match rows::get(pool, name_key, client).await? {
                Some(run) if now < run.next_at => {
                    return Ok(Err(Refusal {
                        retry_after_secs: run.next_at - now,
                        pair: Some(name_key.to_string()),
                    }));
                }
                Some(run) => {
                    let failures = if run.last_at < since { 1 } else { run.failures + 1 };
                    let next = Run {
                        failures,
                        last_at: now,
                        next_at: now + delay(failures),
                    };
                    rows::advance(pool, name_key, client, run, next).await?
                }
                None => {
                    // A new pair: the one place the table grows, so prune here.
                    rows::prune(pool, since).await?;
                    let first = Run {
                        failures: 1,
                        last_at: now,
                        next_at: now + delay(1),
                    };
                    rows::start(pool, name_key, client, first).await?
                }
            };
            if taken {
                return Ok(Ok(Claim {
                    name_key: name_key.to_string(),
                    client: client.to_string(),
                }));
            }
        }
        Ok(Err(Refusal {
            retry_after_secs: 1,
            pair: Some(name_key.to_string()),
        }))
    }

    /// The claimed attempt signed in: forget the pair's failures.
    pub async fn succeeded(&self, store: &Store, claim: Claim) -> AppResult<()> {
        rows::clear(store.pool(), &claim.name_key, &claim.client).await?;
        Ok(())
    }

    /// Audit a refused attempt: the first of its window at once, the rest
    /// as one row with their count when the window ends.
    pub async fn refused(
        &self,
        store: &Store,
        actor: &Actor,
        target: &str,
        refusal: &Refusal,
    ) -> AppResult<()> {
        let now = now();
        let key = (
            actor.client.clone(),
            refusal.pair.clone().unwrap_or_else(|| "*".into()),
        );
        let (first, ended) = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            match windows.get_mut(&key) {
                Some(w) if now < w.opened_at + THROTTLE_WINDOW_SECS => {
                    w.more += 1;
                    (false, None)
                }
                _ => {
                    let ended = windows.remove(&key);
                    if windows.len() < MAX_WINDOWS {
                        windows.insert(
                            key,
                            Window {
                                opened_at: now,
                                more: 0,
                                actor: actor.clone(),
                                target: target.to_string(),
                                why: refusal.why(),
                            },
                        );
                    }
                    (true, ended)
                }
            }
        };
        if let Some(ended) = ended {
            write_summary(store, ended).await?;
        }
        self.spawn_flusher(store);
        if first {
            let detail = format!(
                "refused: {}; further refusals in the next {} minutes are counted in one row",
                refusal.why(),
                THROTTLE_WINDOW_SECS / 60
            );
            let event = Event {
                action: crate::domain::AuditAction::Login,
                target,
                detail: &detail,
                database: None,
            };
            record(store, actor, event, Outcome::Throttled).await?;
        }
        Ok(())
    }

    /// Write out every window that has ended by `now`; how many rows that
    /// wrote. The background flusher calls this; so can a test, with a
    /// `now` in the future.
    pub async fn flush_due(&self, store: &Store, now: i64) -> AppResult<usize> {
        flush(&self.windows, store, now).await
    }

    /// Once per panel, a task that writes out ended windows; it stops when
    /// the panel's state is gone.
    fn spawn_flusher(&self, store: &Store) {
        self.flusher.get_or_init(|| {
            let windows: Weak<Windows> = Arc::downgrade(&self.windows);
            let store = store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                loop {
                    tick.tick().await;
                    let Some(windows) = windows.upgrade() else {
                        break;
                    };
                    if let Err(e) = flush(&windows, &store, now()).await {
                        tracing::warn!(error = ?e, "could not write the sign-in refusal counts");
                    }
                }
            });
        });
    }
}

async fn flush(windows: &Windows, store: &Store, now: i64) -> AppResult<usize> {
    let ended: Vec<Window> = {
        let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<_> = windows
            .iter()
            .filter(|(_, w)| now >= w.opened_at + THROTTLE_WINDOW_SECS)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| windows.remove(k)).collect()
    };
    let mut written = 0;
    for window in ended {
        if write_summary(store, window).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// The row for a window's refusals after its first, if there were any.
async fn write_summary(store: &Store, window: Window) -> AppResult<bool> {
    if window.more == 0 {
        return Ok(false);
    }
    let detail = format!(
        "refused {} more in the {} minutes after the first: {}",
        window.more,
        THROTTLE_WINDOW_SECS / 60,
        window.why
    );
    let event = Event {
        action: crate::domain::AuditAction::Login,
        target: &window.target,
        detail: &detail,
        database: None,
    };
    record(store, &window.actor, event, Outcome::Throttled).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_starts_after_the_free_failures_doubles_and_is_capped() {
        let waits: Vec<i64> = (1..=12).map(delay).collect();
        assert_eq!(waits, [0, 0, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(delay(i64::MAX), MAX_DELAY_SECS, "no overflow");
    }
}
