//! What the server says while a statement runs: the INFO and NOTICE
//! messages of `VACUUM (VERBOSE)`, `ANALYZE (VERBOSE)` and
//! `REINDEX (VERBOSE)` ("tuples: 5000 removed, 5000 remain …").
//!
//! sqlx hands each NoticeResponse to `tracing` (target
//! `sqlx::postgres::notice`, INFO as TRACE) and keeps nothing. A
//! [`Notices`] is a subscriber made default only while the maintenance
//! statement's future is polled (`WithSubscriber`), so it sees exactly the
//! messages of that connection; every other event and span goes on to the
//! subscriber that was in place, as before.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};

const TARGET: &str = "sqlx::postgres::notice";

/// One message: the server's words, and whether it was a WARNING (or
/// worse) rather than INFO/NOTICE.
#[derive(Clone, Debug)]
pub struct Said {
    pub text: String,
    pub warning: bool,
}

/// The messages seen so far, oldest first.
#[derive(Clone, Default)]
pub struct Heard(Arc<Mutex<Vec<Said>>>);

impl Heard {
    /// The messages since the last take.
    pub fn take(&self) -> Vec<Said> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// A subscriber that keeps the server's messages and forwards the rest.
pub struct Notices {
    inner: Dispatch,
    heard: Heard,
}

impl Notices {
    /// A collector over the subscriber in place now, as a `Dispatch` to
    /// poll the statement with, and what it hears.
    pub fn start() -> (Dispatch, Heard) {
        let inner = tracing::dispatcher::get_default(Dispatch::clone);
        let heard = Heard::default();
        let me = Notices {
            inner,
            heard: heard.clone(),
        };
        (Dispatch::new(me), heard)
    }
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Notices {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // The notices' callsite is decided per event (this collector wants
        // it while it is the default); every other callsite keeps the
        // answer of the subscriber in place, so filtered-out events stay
        // cheap after a job.
        if meta.target() == TARGET {
            Interest::sometimes()
        } else {
            self.inner.register_callsite(meta)
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target() == TARGET || self.inner.enabled(meta)
    }

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != TARGET {
            return self.inner.event(event);
        }
        let warning = *event.metadata().level() <= tracing::Level::WARN;
        if warning && self.inner.enabled(event.metadata()) {
            // A WARNING still reaches the panel's own log, as before.
            self.inner.event(event);
        }
        let mut m = Message(None);
        event.record(&mut m);
        if let (Some(text), Ok(mut heard)) = (m.0, self.heard.0.lock()) {
            // Bounded: taken after each statement, and one statement's
            // messages are kept to what a job log can show.
            if heard.len() < 1000 {
                heard.push(Said { text, warning });
            }
        }
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
}
