//! How times, sizes and durations read, in pages, logs and the CLI alike.

/// A store timestamp as shown on pages: `2026-11-25 07:41 UTC`.
pub fn fmt_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".into())
}

/// A store timestamp as RFC 3339, for JSON.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Bytes as people read them: `12.3 MB`.
pub fn fmt_bytes(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A target duration in the unit people set it in: `24h`, `7d`, `30m`.
pub fn fmt_duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Milliseconds as people read a setting: `250 ms`, `5 s`, `1.5 s`,
/// `30 min`, `2 h`.
pub fn fmt_ms(ms: i64) -> String {
    match ms.max(0) {
        m if m < 1000 => format!("{m} ms"),
        m if m < 60_000 && m % 1000 == 0 => format!("{} s", m / 1000),
        m if m < 60_000 => format!("{:.1} s", m as f64 / 1000.0),
        m if m < 3_600_000 && m % 60_000 == 0 => format!("{} min", m / 60_000),
        m if m < 3_600_000 => format!("{:.1} min", m as f64 / 60_000.0),
        m if m % 3_600_000 == 0 => format!("{} h", m / 3_600_000),
        m => format!("{:.1} h", m as f64 / 3_600_000.0),
    }
}

/// How long a step took, in milliseconds, as people read it: `0.4 s`,
/// `72 s`, `3 min 5 s`.
pub fn fmt_elapsed(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 120_000 => format!("{} s", ms / 1000),
        ms => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
    }
}

/// Seconds as a short age: `45s`, `12m`, `3h`, `5d`.
pub fn fmt_age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_read_in_their_units() {
        assert_eq!(super::fmt_ms(250), "250 ms");
        assert_eq!(super::fmt_ms(5_000), "5 s");
        assert_eq!(super::fmt_ms(1_500), "1.5 s");
        assert_eq!(super::fmt_ms(1_800_000), "30 min");
        assert_eq!(super::fmt_ms(7_200_000), "2 h");
    }

    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(12_345_678), "12.3 MB");
        assert_eq!(fmt_age(59), "59s");
        assert_eq!(fmt_age(7200), "2h");
        assert_eq!(fmt_duration(std::time::Duration::from_secs(86_400)), "24h");
        assert_eq!(fmt_duration(std::time::Duration::from_secs(7 * 86_400)), "7d");
    }
}
