//! The panel's clock: Unix seconds, the time format of the store, the
//! pages and the API. A leaf module, so every layer (web, service, store)
//! can read the time without importing another.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
