//! Reading a migrations directory. Two naming schemes are understood:
//! Flyway (`V<version>__<description>.sql`, undo `U<version>__<description>.sql`,
//! `_` in a version standing for `.`) and up/down pairs
//! (`<version>_<description>.up.sql` / `.down.sql`). Versions are dotted
//! numbers compared part by part, so 2 < 10 and 1.2 < 1.10.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::checksum;
use crate::error::{AppError, AppResult};

/// A migration version: numeric parts, compared numerically.
#[derive(Clone, Debug)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

impl Version {
    /// "1", "1.2.3", "1_2" (Flyway), "20240101120000". Leading zeros are
    /// ignored in comparisons ("01" = "1") but kept in the text.
    pub fn parse(text: &str) -> Option<Version> {
        let normal = text.replace('_', ".");
        let parts: Option<Vec<u64>> = normal.split('.').map(|p| p.parse().ok()).collect();
        let mut parts = parts.filter(|p| !p.is_empty())?;
        // 1.0 and 1 are the same version.
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        Some(Version { parts, text: normal })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts.hash(state);
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One SQL file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub path: PathBuf,
    pub sql: String,
    pub checksum: String,
}

/// A migration: its forward file and, when there is one, its undo/down file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: Version,
    pub description: String,
    pub up: Script,
    pub down: Option<Script>,
}

/// What a directory holds, in version order, plus what could not be used.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub migrations: Vec<Migration>,
    /// `.sql` files whose names fit no scheme, or that clash: shown to the
    /// user, never silently dropped.
    pub problems: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// (version, description, direction) from a file name, or None.
fn parse_name(name: &str) -> Option<(Version, String, Direction)> {
    let describe = |d: &str| d.replace('_', " ").trim().to_string();
    if let Some(stem) = name.strip_suffix(".up.sql").or(name.strip_suffix(".down.sql")) {
        let direction = if name.ends_with(".up.sql") {
            Direction::Up
        } else {
            Direction::Down
        };
        let (version, description) = stem.split_once('_').unwrap_or((stem, ""));
        return Some((Version::parse(version)?, describe(description), direction));
    }
    let stem = name.strip_suffix(".sql")?;
    let (prefix, rest) = stem.split_at_checked(1)?;
    let direction = match prefix {
        "V" => Direction::Up,
        "U" => Direction::Down,
        _ => return None,
    };
    let (version, description) = rest.split_once("__")?;
    Some((Version::parse(version)?, describe(description), direction))
}

/// Is `name` a migration file name this module reads (and nothing else:
/// no directories, no hidden files)?
pub fn is_migration_name(name: &str) -> bool {
    !name.contains(['/', '\\', '\0']) && !name.starts_with('.') && parse_name(name).is_some()
}

/// The version and description a file name gives, and whether it is an
/// undo/down file.
pub fn parse_file_name(name: &str) -> Option<(Version, String, bool)> {
    parse_name(name).map(|(v, d, dir)| (v, d, dir == Direction::Down))
}

/// Write `sql` as the new file `dir/name`, never over one that exists:
/// written and synced under a unique hidden name first (so nobody reads
/// half a file, and no two writers share a temporary), then hard-linked
/// into place. link(2) fails if the target exists, so of writers racing for
/// one name exactly one succeeds; the others get `AlreadyExists`. Where
/// hard links are not supported the target is created with `create_new`
/// (still exclusive, briefly visible half-written).
///
/// This is the user's migrations directory, not the panel's data: the file
/// gets the directory's permissions less execute and world-write bits
/// (0755 gives 0644), whatever the panel's umask.
pub fn create_file(dir: &Path, name: &str, sql: &str) -> std::io::Result<()> {
    use std::io::{ErrorKind, Write};
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        file.write_all(sql.as_bytes())?;
        file.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir_mode = std::fs::metadata(dir)?.permissions().mode();
            let mode = dir_mode & 0o666 & !0o002;
            file.set_permissions(std::fs::Permissions::from_mode(mode | 0o600))?;
        }
        Ok(())
    };
    let linked = write(&temp).and_then(|()| std::fs::hard_link(&temp, &target));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Err(e) if e.kind() != ErrorKind::AlreadyExists && !target.exists() => write(&target),
        other => other,
    }
}

/// A local file the panel could not read: what failed and why, for anyone
/// who sees the page; the path itself goes to the log only (it is the
/// panel machine's layout, not a viewer's business).
fn unreadable(what: &str, path: &Path, e: std::io::Error) -> AppError {
    tracing::warn!(path = %path.display(), error = %e, "cannot read {what}");
    AppError::invalid(format!("cannot read {what}: {}", e.kind()))
}

/// Read `dir`: every `.sql` file directly in it (not recursing).
pub fn scan(dir: &Path) -> AppResult<Source> {
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable("the migrations directory", dir, e))?;
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| unreadable("the migrations directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_file() && name.ends_with(".sql") {
            names.push((name, path));
        }
    }
    names.sort();
    let mut source = Source::default();
    let mut ups: BTreeMap<Version, (String, Script)> = BTreeMap::new();
    let mut downs: BTreeMap<Version, Script> = BTreeMap::new();
    for (name, path) in names {
        let Some((version, description, direction)) = parse_name(&name) else {
            source.problems.push(format!(
                "{name}: not a migration name (expected V<version>__<description>.sql or <version>_<description>.up.sql)"
            ));
            continue;
        };
        let sql =
            std::fs::read_to_string(&path).map_err(|e| unreadable(&format!("migration {name}"), &path, e))?;
        let script = Script {
            checksum: checksum(&sql),
            path,
            sql,
        };
        let slot = match direction {
            Direction::Up => ups.get(&version).map(|(_, s)| s),
            Direction::Down => downs.get(&version),
        };
        if let Some(other) = slot {
            let other = other
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            source
                .problems
                .push(format!("{name}: version {version} is already taken by {other}"));
            continue;
        }
        match direction {
            Direction::Up => {
                ups.insert(version, (description, script));
            }
            Direction::Down => {
                downs.insert(version, script);
            }
        }
    }
    for (version, script) in &downs {
        if !ups.contains_key(version) {
            let name = script.path.file_name().unwrap_or_default().to_string_lossy();
            source.problems.push(format!(
                "{name}: an undo file for version {version}, which has no migration"
            ));
        }
    }
    source.migrations = ups
        .into_iter()
        .map(|(version, (description, up))| {
            let down = downs.remove(&version);
            Migration {
                version,
                description,
                up,
                down,
            }
        })
        .collect();
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_directory_says_what_failed_without_its_path() {
        let dir = Path::new("/nonexistent/custodian-private-layout/migrations");
        let why = scan(dir).unwrap_err().to_string();
        assert!(why.starts_with("cannot read the migrations directory"), "{why}");
        assert!(!why.contains("custodian-private-layout"), "{why}");
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_order_numerically_part_by_part() {
        let mut versions: Vec<Version> = ["10", "2", "1.10", "1.2", "1", "1.2.3", "20240101120000"]
            .map(v)
            .to_vec();
        versions.sort();
        let texts: Vec<&str> = versions.iter().map(Version::as_str).collect();
        assert_eq!(texts, ["1", "1.2", "1.2.3", "1.10", "2", "10", "20240101120000"]);
        assert_eq!(v("1_1"), v("1.1"));
        assert_eq!(v("01"), v("1"));
        assert_eq!(v("1.0"), v("1"));
        assert!(Version::parse("1.x").is_none());
        assert!(Version::parse("").is_none());
    }

    #[test]
    fn both_naming_schemes_are_read_and_paired() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
        write("V1__create_customers.sql", "CREATE TABLE customers (id bigint);");
        write("V10__add_index.sql", "SELECT 10;");
        write("V2__orders.sql", "SELECT 2;");
        write("U2__orders.sql", "DROP TABLE orders;");
        write("V1_1__patch.sql", "SELECT 11;");
        write("README.md", "not sql");
        write("notes.sql", "SELECT 'no version';");
        write("U7__orphan.sql", "SELECT 7;");
        let source = scan(dir.path()).unwrap();
        let order: Vec<&str> = source.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(order, ["1", "1.1", "2", "10"]);
        assert_eq!(source.migrations[0].description, "create customers");
        assert_eq!(
            source.migrations[2].down.as_ref().map(|d| d.sql.as_str()),
            Some("DROP TABLE orders;")
        );
        assert!(source.migrations[0].down.is_none());
        assert_eq!(
            source.migrations[0].up.checksum,
            checksum("CREATE TABLE customers (id bigint);")
        );
        assert_eq!(source.problems.len(), 2, "{:?}", source.problems);
        assert!(source.problems.iter().any(|p| p.starts_with("notes.sql")));
        assert!(source.problems.iter().any(|p| p.starts_with("U7__orphan.sql")));

        let pairs = tempfile::tempdir().unwrap();
        let write = |name: &str, sql: &str| std::fs::write(pairs.path().join(name), sql).unwrap();
        write(
            "20240102000000_add_phone.up.sql",
            "ALTER TABLE c ADD COLUMN phone text;",
        );
        write(
            "20240102000000_add_phone.down.sql",
            "ALTER TABLE c DROP COLUMN phone;",
        );
        write("20240101000000_init.up.sql", "CREATE TABLE c (id bigint);");
        write("20240101000000_init_again.up.sql", "CREATE TABLE d (id bigint);");
        let source = scan(pairs.path()).unwrap();
        let order: Vec<&str> = source.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(order, ["20240101000000", "20240102000000"]);
        assert_eq!(source.migrations[1].description, "add phone");
        assert!(source.migrations[1].down.is_some());
        assert_eq!(
            source.problems.len(),
            1,
            "a duplicate version is a problem: {:?}",
            source.problems
        );
        assert!(source.problems[0].contains("already taken"));
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let err = scan(Path::new("/nonexistent/migrations")).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the migrations directory"),
            "{err}"
        );
    }
}
