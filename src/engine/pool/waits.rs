//! Time a task spends queueing behind the panel's own connection budget,
//! so a database is timed by how fast it answers, not by the panel's queue.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time a task spends queueing for slots, so callers can time the database
/// alone: what has been waited, and since when the task waits now.
#[derive(Default)]
pub struct SlotWaits {
    waited_ms: AtomicU64,
    waiting_since: Mutex<Option<std::time::Instant>>,
}

impl SlotWaits {
    /// Everything waited so far, including a wait still going on.
    pub fn waited(&self) -> Duration {
        let done = Duration::from_millis(self.waited_ms.load(Ordering::Relaxed));
        let now = self
            .waiting_since
            .lock()
            .ok()
            .and_then(|s| *s)
            .map(|since| since.elapsed())
            .unwrap_or_default();
        done + now
    }
}

tokio::task_local! {
    static SLOT_WAITS: Arc<SlotWaits>;
}

/// Run `work`, recording in `waits` the time it spends queueing for a slot
/// in any server's budget: time the panel waits behind itself, which says
/// nothing about how fast the database answers.
pub async fn counting_slot_waits<F: Future>(waits: Arc<SlotWaits>, work: F) -> F::Output {
    SLOT_WAITS.scope(waits, work).await
}

/// A wait for a slot in progress (recorded when dropped).
pub(super) struct Waiting(Option<Arc<SlotWaits>>);

impl Waiting {
    pub(super) fn start() -> Waiting {
        let waits = SLOT_WAITS.try_with(|w| w.clone()).ok();
        if let Some(w) = &waits
            && let Ok(mut since) = w.waiting_since.lock()
        {
            *since = Some(std::time::Instant::now());
        }
        Waiting(waits)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(w) = &self.0
            && let Ok(mut since) = w.waiting_since.lock()
            && let Some(started) = since.take()
        {
            w.waited_ms
                .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }
}
