//! A restored server: a new data directory started with the original
//! server's own `pg_ctl` on a free local port, waited for until it has
//! promoted, and stopped and deleted when discarded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pgbackrest::as_user;
use crate::engine::{EngineError, EngineResult};

/// The longest a restored server may take to replay its WAL and promote.
pub const PROMOTE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A restored server's places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// `<restore_dir>/<name>`: holds the data directory, the log and the socket.
    pub home: PathBuf,
    pub port: u16,
    pub pg_ctl: PathBuf,
    pub run_as: Option<String>,
}

/// A port no one listens on now.
pub fn free_port() -> EngineResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| EngineError::local("finding a free port", e))?;
    Ok(l.local_addr()
        .map_err(|e| EngineError::local("finding a free port", e))?
        .port())
}

/// pg_ctl hands `-o` to a shell: paths in it hold safe characters only.
pub fn check_path(path: &Path) -> EngineResult<()> {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && text.len() < 90
    {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "the restore directory {text} must be an absolute path of letters, digits, '/', '.', '_' and '-' under 90 characters (a server's socket lives there)"
        )))
    }
}

impl Restored {
    pub fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.home.join("server.log")
    }

    /// The server's configuration files, where the original kept them
    /// outside its data directory (Debian's /etc/postgresql): a minimal
    /// postgresql.conf, and a pg_hba.conf that lets only local password
    /// (or peer) logins in.
    pub fn complete_config(&self) -> EngineResult<()> {
        let data = self.data();
        let write = |name: &str, text: &str| -> EngineResult<()> {
            let path = data.join(name);
            if !path.exists() {
                std::fs::write(&path, text).map_err(|e| EngineError::local(&format!("writing {name}"), e))?;
                if let Some(user) = &self.run_as {
                    let _ = std::process::Command::new("chown").arg(user).arg(&path).status();
                }
            }
            Ok(())
        };
        write(
            "postgresql.conf",
            "# written by Custodian for a restored server\n",
        )?;
        write(
            "pg_hba.conf",
            "# written by Custodian for a restored server\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        write("pg_ident.conf", "")?;
        Ok(())
    }

    /// Start it and wait until it has promoted (with hot_standby off, it
    /// takes connections only then). Fails with the log's last lines.
    pub async fn start(&self) -> EngineResult<()> {
        check_path(&self.home)?;
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c logging_collector=off \
             -c archive_mode=off -c hot_standby=off -c shared_buffers=128MB -c cluster_name=custodian-restore",
            self.port,
            self.home.display()
        );
        let mut cmd = as_user(&self.pg_ctl, self.run_as.as_deref());
        cmd.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args([
                "-w",
                "-t",
                &PROMOTE_TIMEOUT.as_secs().to_string(),
                "-o",
                &options,
                "start",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = cmd
            .output()
            .await
            .map_err(|e| EngineError::Tool(format!("cannot run pg_ctl: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::Tool(format!(
                "the restored server did not start: {}",
                self.log_tail(12)
            )));
        }
        // pg_ctl returns once recovery runs ("standby"): wait for the promotion.
        let deadline = std::time::Instant::now() + PROMOTE_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            if log.contains("database system is ready to accept connections") {
                return Ok(());
            }
            if !self.data().join("postmaster.pid").exists() {
                return Err(EngineError::Tool(format!(
                    "the restored server stopped during recovery: {}",
                    self.log_tail(8)
                )));
            }
            if std::time::Instant::now() > deadline {
                return Err(EngineError::TimedOut(format!(
                    "the restored server did not promote within {}s",
                    PROMOTE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop it (fast, then immediate); a server that is not running is fine.
    pub async fn stop(&self) {
        if !self.data().join("postmaster.pid").exists() {
            return;
        }
        for mode in ["fast", "immediate"] {
            let mut cmd = as_user(&self.pg_ctl, self.run_as.as_deref());
            cmd.arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "60", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            if cmd.status().await.is_ok_and(|s| s.success()) {
                return;
            }
        }
    }

    /// Stop it and delete its directory.
    pub async fn remove(&self) -> EngineResult<()> {
        self.stop().await;
        remove_dir(&self.home).await
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join(" / ")
    }

    /// What recovery reached, from the log.
    pub fn reached(&self) -> Option<Reached> {
        reached(&std::fs::read_to_string(self.log()).unwrap_or_default())
    }
}

/// Delete a directory tree, trying again while a dying process still
/// writes into it; a directory already gone is fine.
pub async fn remove_dir(path: &Path) -> EngineResult<()> {
    let mut last = None;
    for _ in 0..10 {
        match tokio::fs::remove_dir_all(path).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(EngineError::local(
        &format!("removing {}", path.display()),
        last.unwrap_or_else(|| std::io::Error::other("unknown")),
    ))
}

/// The point a recovery stopped at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reached {
    /// RFC 3339.
    pub at: String,
    /// The server's own words.
    pub detail: String,
}

/// "recovery stopping before commit of transaction 733, time 2026-12-06
/// 21:43:14.411051+00", else "last completed transaction was at log time …".
pub fn reached(log: &str) -> Option<Reached> {
    let find = |needle: &str| {
        log.lines().rev().find_map(|l| {
            let i = l.find(needle)?;
            Some(l[i..].trim().to_string())
        })
    };
    // The point reached is the last transaction replayed; where it
    // stopped (the first one left out) says why.
    let last = find("last completed transaction was at log time ");
    let stop = find("recovery stopping ");
    let from = last.clone().or_else(|| stop.clone())?;
    let time = from
        .rsplit_once("time ")
        .map(|(_, t)| t.trim().to_string())
        .unwrap_or_default();
    let detail = [stop, last].into_iter().flatten().collect::<Vec<_>>().join("; ");
    Some(Reached {
        at: pg_time_to_rfc3339(&time).unwrap_or(time),
        detail,
    })
}

/// "2026-12-06 21:43:14.411051+00" → "2026-12-06T21:43:14.411051+00:00".
fn pg_time_to_rfc3339(t: &str) -> Option<String> {
    let (date, rest) = t.split_once(' ')?;
    let split = rest.rfind(['+', '-'])?;
    let (clock, zone) = rest.split_at(split);
    let zone = if zone.len() == 3 {
        format!("{zone}:00")
    } else {
        zone.to_string()
    };
    Some(format!("{date}T{clock}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_where_recovery_stopped() {
        let log = "2026-12-06 21:50:01.1 UTC [9] LOG:  starting point-in-time recovery to XID 733\n\
                   2026-12-06 21:50:02.2 UTC [9] LOG:  recovery stopping before commit of transaction 733, time 2026-12-06 21:43:14.411051+00\n\
                   2026-12-06 21:50:02.3 UTC [9] LOG:  redo done at 0/50DE568";
        let r = reached(log).unwrap();
        assert_eq!(r.at, "2026-12-06T21:43:14.411051+00:00");
        let both =
            format!("{log}\nLOG:  last completed transaction was at log time 2026-12-06 21:43:14.315746+00");
        assert_eq!(reached(&both).unwrap().at, "2026-12-06T21:43:14.315746+00:00");
        assert!(
            r.detail
                .starts_with("recovery stopping before commit of transaction 733")
        );
        let latest = "LOG:  last completed transaction was at log time 2026-12-06 21:43:14.315746+00";
        assert_eq!(reached(latest).unwrap().at, "2026-12-06T21:43:14.315746+00:00");
        assert_eq!(reached("LOG: nothing"), None);
    }

    #[test]
    fn only_plain_paths_reach_the_shell() {
        assert!(check_path(Path::new("/srv/custodian/restores/app-pitr-20261206")).is_ok());
        assert!(check_path(Path::new("/tmp/a b")).is_err());
        assert!(check_path(Path::new("/tmp/$(reboot)")).is_err());
    }
}
