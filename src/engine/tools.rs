//! The external tools the engines drive (pg_dump, pg_restore, mariadb-dump,
//! mariadb, …): finding them and their versions, and taking a URL apart so
//! a password goes through the environment or a 0600 option file, never
//! the command line, which `ps` shows. Each engine builds its own command
//! lines in its folder.

use std::path::PathBuf;

use tokio::process::Command;

use crate::config::SecretUrl;
use crate::engine::EngineError;

/// A tool found on this machine and its major version.
#[derive(Clone, Debug)]
pub struct Tool {
    pub path: PathBuf,
    pub version: String,
    pub major: u32,
}

/// Look for `names` in CUSTODIAN_TOOLS_DIR, then PATH, then PostgreSQL's
/// versioned directories (newest first).
pub fn find(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("CUSTODIAN_TOOLS_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut v: Vec<PathBuf> = versions
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(major_of(&p.display().to_string())));
        dirs.extend(v);
    }
    for dir in dirs {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The first number in a version string: "pg_dump (PostgreSQL) 15.4" → 15.
pub fn major_of(text: &str) -> u32 {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A tool and its version, or a message naming what to install.
pub async fn tool(names: &[&str], install: &str) -> Result<Tool, EngineError> {
    let path = find(names)
        .ok_or_else(|| EngineError::Tool(format!("{} was not found: install {install}", names[0])))?;
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .await
        .map_err(|e| EngineError::Tool(format!("cannot run {}: {e}", path.display())))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB": the distribution's
    // version is the one that matters.
    let major = match version.find("Distrib ") {
        Some(i) => major_of(&version[i..]),
        None => major_of(version.rsplit(' ').next().unwrap_or("")),
    };
    Ok(Tool { path, version, major })
}

/// The URL without its password, and the password.
pub fn split_password(url: &SecretUrl) -> (String, Option<String>) {
    match url::Url::parse(url.expose()) {
        Ok(mut u) => {
            let password = u.password().map(percent_decode);
            let _ = u.set_password(None);
            (u.to_string(), password)
        }
        Err(_) => (url.expose().to_string(), None),
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_passwords() {
        assert_eq!(
            major_of("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            15
        );
        let (bare, pw) = split_password(&SecretUrl::new("postgres://u:p%40ss@h:5432/db?sslmode=require"));
        assert_eq!(bare, "postgres://u@h:5432/db?sslmode=require");
        assert_eq!(pw.as_deref(), Some("p@ss"));
    }
}
