//! Chart geometry: a database's samples over a time range, bucketed in the
//! store (so a month of samples is a few hundred points), scaled into an
//! SVG coordinate space. Templates draw the result; no JavaScript.

use crate::error::AppResult;
use crate::format::{fmt_bytes, fmt_time};
use crate::store::metrics::{self as samples, SampleRow};
use crate::store::{Store, now};

/// The ranges a chart offers, with the bucket each is drawn at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    /// `1h`, `24h`, `7d` or `30d`; anything else is the day.
    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.key() == s)
    }

    pub fn key(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Range::Hour => 3600,
            Range::Day => 86_400,
            Range::Week => 7 * 86_400,
            Range::Month => 30 * 86_400,
        }
    }

    /// The shortest range that holds everything sampled since `oldest`:
    /// a new database opens on the last hour, not a day of empty chart.
    pub fn fitting(oldest: Option<i64>, now: i64) -> Range {
        let age = oldest.map_or(0, |o| now - o);
        Range::ALL
            .into_iter()
            .find(|r| r.seconds() >= age)
            .unwrap_or(Range::Month)
    }

    /// Seconds per point: at most a few hundred points per line.
    pub fn step(self) -> i64 {
        match self {
            Range::Hour => 30,
            Range::Day => 300,
            Range::Week => 1800,
            Range::Month => 7200,
        }
    }
}

/// How a chart's values read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Count,
    PerSecond,
    Percent,
    Bytes,
    Seconds,
}

impl Scale {
    pub fn show(self, v: f64) -> String {
        match self {
            Scale::Count if v >= 1e6 => format!("{:.1}M", v / 1e6),
            Scale::Count if v >= 1e4 => format!("{:.0}k", v / 1e3),
            Scale::Count if v.fract() != 0.0 && v < 10.0 => format!("{v:.1}"),
            Scale::Count => format!("{v:.0}"),
            Scale::PerSecond if v < 10.0 => format!("{v:.1}/s"),
            Scale::PerSecond => format!("{v:.0}/s"),
            Scale::Percent => format!("{v:.1}%"),
            Scale::Bytes => fmt_bytes(v as i64),
            Scale::Seconds if v == 0.0 => "0s".into(),
            Scale::Seconds if v < 10.0 && v.fract() != 0.0 => format!("{v:.1}s"),
            Scale::Seconds => crate::format::fmt_age(v.round() as i64),
        }
    }
}

/// SVG size (the viewBox) and the plot area inside it.
/// Narrow enough that 12-unit axis text reads at 13–15 px on a laptop and
/// about 9 px on a phone.
pub const WIDTH: f64 = 440.0;
pub const HEIGHT: f64 = 150.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// One line: its points split where samples are missing (the database was
/// down, the panel was stopped), so a gap shows as a gap.
#[derive(Clone, Debug)]
pub struct Line {
    pub name: &'static str,
    /// CSS class picking the colour.
    pub class: &'static str,
    /// SVG `points` attributes, one per unbroken run.
    pub runs: Vec<String>,
    pub points: usize,
    /// The newest value, as text...
    pub last: String,
    /// ...and where it is drawn (a dot, so even one sample shows).
    pub last_point: Option<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct Tick {
    pub at: f64,
    pub label: String,
    /// SVG text-anchor: the first and last time labels stay inside the chart.
    pub anchor: &'static str,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: &'static str,
    pub lines: Vec<Line>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// Plot area edges, for the axes.
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Chart {
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points == 0)
    }
}

type Pick = fn(&SampleRow) -> Option<f64>;

/// What a chart shows: its title, scale and lines.
struct Spec {
    title: &'static str,
    scale: Scale,
    lines: &'static [(&'static str, &'static str, Pick)],
}

const SPECS: &[Spec] = &[
    Spec {
        title: "Connections by state",
        scale: Scale::Count,
        lines: &[
            ("active", "s1", |r| r.active),
            ("idle", "s2", |r| r.idle),
            ("idle in transaction", "s3", |r| r.idle_in_xact),
        ],
    },
    Spec {
        title: "Transactions per second",
        scale: Scale::PerSecond,
        lines: &[
            ("commits", "s1", |r| r.commits_ps),
            ("rollbacks", "s3", |r| r.rollbacks_ps),
        ],
    },
    Spec {
        title: "Cache hit ratio",
        scale: Scale::Percent,
        lines: &[("hits", "s1", |r| r.cache_hit.map(|v| v * 100.0))],
    },
    Spec {
        title: "Database size",
        scale: Scale::Bytes,
        lines: &[("size", "s1", |r| r.size_bytes)],
    },
    Spec {
        title: "Longest running",
        scale: Scale::Seconds,
        lines: &[
            ("query", "s1", |r| r.longest_query_s),
            ("transaction", "s2", |r| r.longest_xact_s),
            ("idle transaction", "s3", |r| r.longest_idle_xact_s),
        ],
    },
    Spec {
        title: "Replication lag",
        scale: Scale::Seconds,
        lines: &[("worst replica", "s1", |r| r.replication_lag_s)],
    },
    Spec {
        title: "Dead tuples",
        scale: Scale::Count,
        lines: &[("dead tuples", "s1", |r| r.dead_tuples)],
    },
    Spec {
        title: "Transaction ID age",
        scale: Scale::Count,
        lines: &[("oldest xid", "s1", |r| r.xid_age)],
    },
];

/// Every chart of a database over `range`, ending at `now`, its samples
/// taken every `sample_every` seconds. The x-axis starts at the first
/// sample in the range (a database sampled for ten minutes fills the
/// chart, not its last pixel). Charts with no figures at all (an engine
/// without that view) are left out.
pub async fn charts(
    store: &Store,
    database: &str,
    range: Range,
    now: i64,
    sample_every: i64,
) -> anyhow::Result<Vec<Chart>> {
    let since = now - range.seconds();
    // Buckets fine enough that a few minutes of samples draw a line: about
    // 150 points over what there is, never finer than the samples.
    let oldest = samples::oldest_at(store.pool(), database).await?;
    let start = oldest.map_or(since, |o| o.max(since)).min(now - 60);
    let step = bucket(now - start, sample_every, range);
    let rows = samples::series(store.pool(), database, start, step).await?;
    let start = rows.first().map_or(start, |r| r.at.max(since)).min(now - 60);
    let gap = 2 * step.max(sample_every);
    Ok(SPECS
        .iter()
        .map(|spec| draw(spec, &rows, start, now, gap))
        .filter(|c| !c.is_empty())
        .collect())
}

/// Seconds per point for `span` seconds of samples taken every
/// `sample_every`: about 150 points, at least one sample apart, at most
/// the range's own step.
fn bucket(span: i64, sample_every: i64, range: Range) -> i64 {
    // The range's own step (the API's buckets too) while it gives a line
    // of ten points or more.
    if span / range.step() >= 10 {
        return range.step();
    }
    (span / 150).clamp(sample_every.max(1), range.step().max(sample_every.max(1)))
}

/// The range a database's charts open on: the shortest holding its data.
pub async fn fitting_range(store: &Store, database: &str, now: i64) -> anyhow::Result<Range> {
    Ok(Range::fitting(
        samples::oldest_at(store.pool(), database).await?,
        now,
    ))
}

/// A database's figures over the last `range`, bucketed as its chart is:
/// the API's series of samples.
pub async fn series(store: &Store, database: &str, range: Range) -> AppResult<Vec<SampleRow>> {
    let since = now() - range.seconds();
    Ok(samples::series(store.pool(), database, since, range.step()).await?)
}

/// A round number at or above `v`: 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

/// `gap`: samples further apart than this are drawn as a break.
fn draw(spec: &Spec, rows: &[SampleRow], since: i64, now: i64, gap: i64) -> Chart {
    let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
    let max = rows
        .iter()
        .flat_map(|r| spec.lines.iter().filter_map(|(_, _, pick)| pick(r)))
        .fold(0.0f64, f64::max);
    let ymax = match spec.scale {
        Scale::Percent => 100.0,
        // Whole seconds at least: the axis reads 0s / 0.5s / 1s, never
        // "0s / 0s / 0s".
        Scale::Seconds => nice_ceiling(max.max(1.0)),
        // Whole things: 0 / 1 / 2 connections, never half a one.
        Scale::Count => match nice_ceiling(max.max(2.0)) {
            5.0 => 6.0,
            c => c,
        },
        _ => nice_ceiling(max),
    };
    let span = (now - since).max(1) as f64;
    let x = |t: i64| left + (t - since) as f64 / span * (right - left);
    let y = |v: f64| bottom - (v / ymax).clamp(0.0, 1.0) * (bottom - top);
    let lines = spec
        .lines
        .iter()
        .map(|(name, class, pick)| {
            let mut runs: Vec<Vec<String>> = Vec::new();
            let mut previous: Option<i64> = None;
            let mut points = 0;
            let mut last = None;
            let mut last_point = None;
            for r in rows {
                let Some(v) = pick(r) else {
                    previous = None;
                    continue;
                };
                // A missing bucket (or more) starts a new run.
                if previous.is_none_or(|p| r.at - p > gap) {
                    runs.push(Vec::new());
                }
                if let Some(run) = runs.last_mut() {
                    run.push(format!("{:.1},{:.1}", x(r.at), y(v)));
                }
                previous = Some(r.at);
                points += 1;
                last = Some(v);
                last_point = Some((x(r.at), y(v)));
            }
            Line {
                name,
                class,
                runs: runs.into_iter().map(|r| r.join(" ")).collect(),
                points,
                last: last.map(|v| spec.scale.show(v)).unwrap_or_default(),
                last_point,
            }
        })
        .collect();
    let y_ticks = (0..=2)
        .map(|i| {
            let v = ymax * i as f64 / 2.0;
            Tick {
                at: y(v),
                // Round ticks read without a trailing ".0": "10 MB", "0/s".
                label: spec.scale.show(v).replacen(".0", "", 1),
                anchor: "end",
            }
        })
        .collect();
    let x_ticks = (0..=3)
        .map(|i| {
            let t = since + (now - since) * i / 3;
            let label = fmt_time(t);
            // "2026-11-25 07:41:00 UTC": the day for long ranges, the time
            // for short ones (with seconds when the chart spans minutes).
            let label = match now - since {
                s if s > 2 * 86_400 => label.get(5..10).unwrap_or(""),
                s if s < 600 => label.get(11..19).unwrap_or(""),
                _ => label.get(11..16).unwrap_or(""),
            }
            .to_string();
            let anchor = match i {
                0 => "start",
                3 => "end",
                _ => "middle",
            };
            Tick {
                at: x(t),
                label,
                anchor,
            }
        })
        .collect();
    Chart {
        title: spec.title,
        lines,
        y_ticks,
        x_ticks,
        left,
        right,
        top,
        bottom,
    }
}

/// Points for a 100×20 sparkline of `values` (empty with fewer than two).
pub fn spark(values: &[f64]) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    let span = if max > min { max - min } else { 1.0 };
    let step = 100.0 / (values.len() - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, 19.0 - (v - min) / span * 18.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sparklines of a database's connections and transactions per second over
/// the last day, for the overview.
pub async fn sparks(store: &Store, database: &str, now: i64) -> anyhow::Result<(String, String)> {
    let points = samples::sparkline(store.pool(), database, now - 86_400, Range::Day.step()).await?;
    let connections: Vec<f64> = points.iter().map(|p| p.0).collect();
    let tps: Vec<f64> = points.iter().map(|p| p.1).collect();
    Ok((spark(&connections), spark(&tps)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_opens_on_the_range_that_holds_its_data() {
        assert_eq!(Range::fitting(None, 10_000), Range::Hour);
        assert_eq!(Range::fitting(Some(10_000 - 300), 10_000), Range::Hour);
        assert_eq!(Range::fitting(Some(10_000 - 7200), 10_000), Range::Day);
        assert_eq!(Range::fitting(Some(0), 40 * 86_400), Range::Month);
    }

    #[test]
    fn a_short_longest_running_axis_reads_in_seconds() {
        let row = |at: i64, v: f64| SampleRow {
            at,
            longest_query_s: Some(v),
            ..SampleRow::default()
        };
        let longest = SPECS.iter().find(|s| s.title == "Longest running").unwrap();
        let chart = draw(longest, &[row(0, 0.2), row(30, 0.3)], 0, 60, 60);
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0s", "0.5s", "1s"]);
    }

    #[test]
    fn three_samples_draw_a_line() {
        let row = |at: i64, v: f64| SampleRow {
            at,
            commits_ps: Some(v),
            ..SampleRow::default()
        };
        let tps = &SPECS[1];
        let chart = draw(
            tps,
            &[row(1000, 1.0), row(1030, 4.0), row(1060, 2.0)],
            1000,
            1060,
            60,
        );
        assert_eq!(chart.lines[0].runs.len(), 1);
        assert_eq!(chart.lines[0].runs[0].split(' ').count(), 3);
        // From the left edge of the plot to the right.
        assert!(chart.lines[0].runs[0].starts_with(&format!("{LEFT:.1},")));
    }

    #[test]
    fn buckets_follow_what_there_is() {
        // Five minutes of 30 s samples on the hour: one point per sample.
        assert_eq!(bucket(300, 30, Range::Hour), 30);
        // Seconds apart (a test's 1 s samples): one per second.
        assert_eq!(bucket(60, 1, Range::Hour), 1);
        // A full day, or two hours of it: the day's five minutes.
        assert_eq!(bucket(86_400, 30, Range::Day), 300);
        assert_eq!(bucket(7200, 30, Range::Day), 300);
    }

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
    }

    #[test]
    fn a_missing_stretch_breaks_the_line() {
        let row = |at: i64, v: f64| SampleRow {
            at,
            active: Some(v),
            ..SampleRow::default()
        };
        // Three points, a gap of ten steps, two points.
        let rows = vec![
            row(0, 1.0),
            row(30, 2.0),
            row(60, 3.0),
            row(360, 1.0),
            row(390, 2.0),
        ];
        let chart = draw(&SPECS[0], &rows, 0, 3600, 60);
        let active = &chart.lines[0];
        assert_eq!(active.points, 5);
        assert_eq!(active.runs.len(), 2);
        assert_eq!(active.runs[0].split(' ').count(), 3);
        // Values scale into the plot area, the top being the round maximum
        // (6 connections: ticks 0 / 3 / 6, never half a connection).
        assert!(active.runs[0].ends_with(&format!("{:.1}", HEIGHT - BOTTOM - 0.5 * (HEIGHT - BOTTOM - TOP))));
    }
}
