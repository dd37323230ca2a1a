//! The fuzz targets: the parsers that take outside text (migration file
//! names and versions, cron lines, retention policies, RPO/RTO durations,
//! registry and user names, migration lint). Each takes raw bytes and
//! panics only on a bug: a panic inside the parser, or a broken invariant
//! checked here (a parsed value that does not survive its own display, an
//! order that is not one). Shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/`, nightly) and the stable harness (`bench/fuzz.rs`,
//! run by `bench/fuzz`), so both run the same code.

#![allow(dead_code)]

use custodian::domain::{DatabaseName, RecoveryTarget, Username};
use custodian::engine::EngineKind;
use custodian::service::backup::schedule::{Retention, due, parse_cron};
use custodian::service::migrations::source::{Version, is_migration_name, parse_file_name};
use custodian::store::backups::BackupRow;

/// One target: its entry point, and text that helps a generator get deep
/// (valid examples to mutate and tokens to splice in).
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: &'static [&'static str],
    pub tokens: &'static [&'static str],
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "migration_name",
        run: migration_name,
        seeds: &[
            "V1__create_orders.sql",
            "U2__drop.sql",
            "V1_2__patch.sql",
            "20240101000000_init.up.sql",
            "20240101000000_init.down.sql",
        ],
        tokens: &[
            "V",
            "U",
            "__",
            "_",
            ".",
            ".sql",
            ".up.sql",
            ".down.sql",
            "0",
            "1",
            "99",
            "/",
            "..",
            "\0",
            "é",
        ],
    },
    Target {
        name: "version",
        run: version,
        seeds: &["1", "1.2.3", "1_2", "01", "1.0", "20240101120000", "2 10"],
        tokens: &[
            ".",
            "_",
            "0",
            "1",
            "9",
            "18446744073709551615",
            "18446744073709551616",
            " ",
            "-",
            "+",
        ],
    },
    Target {
        name: "cron",
        run: cron,
        seeds: &[
            "0 3 * * *",
            "0 5 * * 0",
            "*/15 * * * *",
            "0 0 29 2 *",
            "0 0 31 2 *",
            "59 23 L * FRI",
        ],
        tokens: &[
            "*", "/", "-", ",", " ", "0", "1", "7", "12", "23", "31", "59", "60", "L", "W", "#", "?", "MON",
            "JAN", "\t",
        ],
    },
    Target {
        name: "retention",
        run: retention,
        seeds: &[
            "last=7 daily=7 weekly=4 monthly=6",
            "daily=1",
            "last=0,weekly=2",
            "",
        ],
        tokens: &[
            "last=", "daily=", "weekly=", "monthly=", "=", " ", ",", "0", "7", "10000", "10001", "-1", "+3",
        ],
    },
    Target {
        name: "duration",
        run: duration,
        seeds: &["24h", "30m", "7d", "3650d", "1h 30m", "1s", "10y", "2weeks"],
        tokens: &[
            "s",
            "m",
            "h",
            "d",
            "w",
            "y",
            "ms",
            "us",
            "ns",
            "min",
            "hours",
            "days",
            "months",
            "years",
            " ",
            "0",
            "1",
            "3650",
            "300000000000",
            "18446744073709551615",
            ".",
            "-",
        ],
    },
    Target {
        name: "names",
        run: names,
        seeds: &["pg", "prod-eu_1", "alice", "ops.team-1_a", "new"],
        tokens: &[
            "a",
            "z",
            "0",
            "-",
            "_",
            ".",
            " ",
            "\t",
            "\u{a0}",
            "/",
            "..",
            "A",
            "é",
            "new",
            "test-connection",
        ],
    },
    Target {
        name: "lint",
        run: lint,
        seeds: &[
            "\x00\nCREATE INDEX i ON t (c);",
            "\x0015.4\nALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;",
            "\x018.0\nALTER TABLE t RENAME COLUMN a TO b;",
            "\x02\nCREATE TABLE t (id integer primary key);",
            "\x00\nBEGIN; DROP TABLE t; COMMIT; -- squawk-ignore ban-drop-table",
        ],
        tokens: &[
            "CREATE",
            "ALTER",
            "TABLE",
            "INDEX",
            "CONCURRENTLY",
            "DROP",
            "COLUMN",
            "ADD",
            "NOT NULL",
            "DEFAULT",
            "RENAME",
            "TO",
            "ON",
            "(",
            ")",
            ";",
            "'",
            "\"",
            "`",
            "$$",
            "--",
            "/*",
            "*/",
            "\n",
            " ",
            "BEGIN",
            "COMMIT",
            "DELIMITER",
            "squawk-ignore",
            "15.4",
            "8.0",
            "10.11.6-MariaDB",
        ],
    },
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Names are read, and what they say survives a second read.
pub fn migration_name(data: &[u8]) {
    let name = text(data);
    let parsed = parse_file_name(&name);
    if is_migration_name(&name) {
        assert!(
            parsed.is_some(),
            "{name:?} is a migration name but does not parse"
        );
        assert!(
            !name.contains(['/', '\\', '\0']) && !name.starts_with('.'),
            "{name:?}"
        );
    }
    if let Some((version, _, _)) = parsed {
        let again = Version::parse(version.as_str());
        assert_eq!(
            again.as_ref(),
            Some(&version),
            "{name:?}: version {version} does not read back"
        );
    }
}

/// Versions read back as themselves and order like numbers.
pub fn version(data: &[u8]) {
    let raw = text(data);
    let (a, b) = raw.split_once(' ').unwrap_or((&raw, "1"));
    let (Some(va), vb) = (Version::parse(a), Version::parse(b)) else {
        return;
    };
    assert_eq!(Version::parse(va.as_str()).as_ref(), Some(&va), "{a:?}");
    assert_eq!(va.cmp(&va), std::cmp::Ordering::Equal);
    if let Some(vb) = vb {
        assert_eq!(va.cmp(&vb), vb.cmp(&va).reverse(), "{a:?} vs {b:?}");
        assert_eq!(va == vb, va.cmp(&vb).is_eq(), "{a:?} vs {b:?}");
    }
}

/// Instants a schedule may be asked about: the panel's lifetime and the
/// edges of what a timestamp can hold.
const INSTANTS: &[i64] = &[
    i64::MIN,
    -62_135_596_800,
    -1,
    0,
    1_700_000_000,
    1_800_000_000,
    253_402_300_799,
    i64::MAX,
];

/// A cron line parses or is refused, and a parsed one answers "is it due?"
/// for any pair of instants.
pub fn cron(data: &[u8]) {
    let line = text(data);
    if let Ok(cron) = parse_cron(&line) {
        for &last in INSTANTS {
            for &at in &[
                last.saturating_add(60),
                last.saturating_add(86_400 * 400),
                i64::MAX,
            ] {
                let _ = due(&cron, last, at);
            }
        }
    }
}

fn backup(id: i64, at: i64) -> BackupRow {
    BackupRow {
        id,
        engine: "sqlite".into(),
        format: "sqlite".into(),
        compression: "zstd".into(),
        ..BackupRow::good_at(at)
    }
}

/// A policy reads back from its display, and keeps at least its `last`
/// newest of any list of backups, never one that is not in the list.
pub fn retention(data: &[u8]) {
    let raw = text(data);
    let Ok(policy) = raw.parse::<Retention>() else {
        return;
    };
    let again: Retention = policy.to_string().parse().expect("a policy's display parses");
    assert_eq!(again, policy, "{raw:?}");
    let good: Vec<BackupRow> = data
        .chunks(3)
        .enumerate()
        .map(|(i, c)| {
            let at = INSTANTS[c[0] as usize % INSTANTS.len()].saturating_sub(i as i64 * 3600);
            backup(100 - i as i64, at)
        })
        .collect();
    let keep = policy.keep(&good);
    assert!(keep.len() >= policy.last.min(good.len()), "{raw:?}");
    assert!(keep.iter().all(|id| good.iter().any(|b| b.id == *id)));
}

/// An RPO/RTO parses within its bounds and survives the form's display.
pub fn duration(data: &[u8]) {
    let raw = text(data);
    if let Ok(Some(target)) = RecoveryTarget::parse("RPO", &raw) {
        let secs = target.duration().as_secs();
        assert!((1..=RecoveryTarget::MAX_SECS).contains(&secs), "{raw:?}: {secs}");
        let shown = custodian::format::fmt_duration(target.duration());
        let again = RecoveryTarget::parse("RPO", &shown).expect("the display parses");
        assert_eq!(
            again.map(|t| t.duration().as_secs()),
            Some(secs),
            "{raw:?} shown as {shown:?}"
        );
    }
}

/// A name taken from a path is exactly a name that parses, and a parsed
/// name is taken from a path as itself.
pub fn names(data: &[u8]) {
    let raw = text(data);
    if let Ok(name) = DatabaseName::from_path(&raw) {
        assert_eq!(name.as_str(), raw, "a path name is taken exactly");
    }
    if let Ok(name) = DatabaseName::parse(&raw) {
        assert!(DatabaseName::from_path(name.as_str()).is_ok(), "{raw:?}");
        assert!(name.as_str().len() <= DatabaseName::MAX_LEN);
    }
    if let Ok(user) = Username::from_path(&raw) {
        assert_eq!(user.as_str(), raw);
    }
    if let Ok(user) = Username::parse(&raw) {
        assert!(Username::from_path(user.as_str()).is_ok(), "{raw:?}");
    }
}

/// Lint any text as a migration for any engine and server version: the
/// first byte picks the engine, the first line is the version.
pub fn lint(data: &[u8]) {
    let Some((&engine, rest)) = data.split_first() else {
        return;
    };
    let engine = [EngineKind::Postgres, EngineKind::Mysql, EngineKind::Sqlite][engine as usize % 3];
    let rest = text(rest);
    let (version, sql) = rest.split_once('\n').unwrap_or(("", &rest));
    let version = Some(version).filter(|v| !v.is_empty());
    for finding in custodian::lint::lint(engine, sql, version) {
        assert!(finding.line >= 1, "{finding:?}");
    }
}
