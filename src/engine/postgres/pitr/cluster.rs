//! A restored server: a new data directory started with the original
//! server's own `pg_ctl` on a free local port, waited for until it has
//! promoted, and stopped and deleted when discarded.
//!
//! Its home is the panel's own directory (which may run as root): the
//! server's OS user owns only what is inside it (data/, tablespaces/, run/
//! for the socket, server.log) and cannot put a link where the panel
//! writes or reads. Settings that run commands on this machine are
//! switched off on the command line, whatever the backup's configuration
//! (a managed database's superuser wrote it) says.

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

/// pg_ctl hands `-o` to a shell: paths in it hold safe characters only,
/// and short enough for the socket's path (`<home>/run/.s.PGSQL.<port>`
/// within the 107 bytes a Unix socket's name may have).
pub fn check_path(path: &Path) -> EngineResult<()> {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && text.len() <= 85
    {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "the restore directory {text} must be an absolute path of letters, digits, '/', '.', '_' and '-' of at most 85 characters (a server's socket lives there)"
        )))
    }
}

/// `chown` one path to `user`, never following a link.
pub fn give(path: &Path, user: &str) -> EngineResult<()> {
    let ok = std::process::Command::new("chown")
        .arg("-h")
        .arg(user)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(EngineError::Tool(format!(
            "cannot give {} to the OS user {user}",
            path.display()
        )))
    }
}

/// The pg_hba.conf of a restored server whose original kept its own
/// elsewhere: the socket (in a directory only the server's OS user and
/// the panel reach) trusts, TCP asks for a password.
const HBA: &str = "# written by Custodian for a restored server\n\
                   local all all trust\n\
                   host all all 127.0.0.1/32 scram-sha-256\n\
                   host all all ::1/128 scram-sha-256\n";

impl Restored {
    pub fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.home.join("server.log")
    }

    /// Where its Unix socket is.
    pub fn socket_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    pub fn tablespaces(&self) -> PathBuf {
        self.home.join("tablespaces")
    }

    /// Make its home, new (an existing one is refused, never reused): the
    /// panel's, holding data/, tablespaces/ and run/ (mode 0700) and
    /// server.log (0600), those owned by the server's OS user.
    pub fn prepare(&self) -> EngineResult<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        check_path(&self.home)?;
        let local = |what: &str, e: std::io::Error| EngineError::local(what, e);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&self.home)
            .map_err(|e| local(&format!("creating {}", self.home.display()), e))?;
        // The panel's umask (077) would close it to the server's OS user.
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| local(&format!("opening {} to the server", self.home.display()), e))?;
        let mut owned = Vec::new();
        for dir in [self.data(), self.tablespaces(), self.socket_dir()] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| local(&format!("creating {}", dir.display()), e))?;
            owned.push(dir);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.log())
            .map_err(|e| local("creating the server's log", e))?;
        owned.push(self.log());
        if let Some(user) = &self.run_as {
            for path in &owned {
                give(path, user)?;
            }
        }
        Ok(())
    }

    /// The `-c` options naming its configuration files: the restored
    /// ones where the data directory has them, else files the panel
    /// writes into its home (the original kept its own elsewhere, as
    /// Debian's /etc/postgresql): a minimal postgresql.conf, and a
    /// pg_hba.conf that trusts the socket and asks TCP for a password.
    fn config_options(&self) -> EngineResult<String> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut options = String::new();
        for (name, key, text) in [
            (
                "postgresql.conf",
                "config_file",
                "# written by Custodian for a restored server\n",
            ),
            ("pg_hba.conf", "hba_file", HBA),
            ("pg_ident.conf", "ident_file", ""),
        ] {
            // A link counts as there: the server reads it as its own user.
            let restored = self.data().join(name);
            let path = if restored.symlink_metadata().is_ok() {
                restored
            } else {
                let ours = self.home.join(name);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&ours)
                    .map_err(|e| EngineError::local(&format!("writing {name}"), e))?;
                std::io::Write::write_all(&mut f, text.as_bytes())
                    .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(0o644)))
                    .map_err(|e| EngineError::local(&format!("writing {name}"), e))?;
                ours
            };
            check_path(&path)?;
            options.push_str(&format!(" -c {key}={}", path.display()));
        }
        Ok(options)
    }

    /// Start it and wait until it has promoted (with hot_standby off, it
    /// takes connections only then). Fails with the log's last lines.
    pub async fn start(&self) -> EngineResult<()> {
        check_path(&self.home)?;
        // Commands the backup's configuration may carry are not run here.
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c unix_socket_permissions=0700 -c logging_collector=off -c archive_mode=off -c hot_standby=off \
             -c shared_buffers=128MB -c cluster_name=custodian-restore -c ssl=off \
             -c recovery_end_command= -c archive_cleanup_command={}",
            self.port,
            self.socket_dir().display(),
            self.config_options()?
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
        assert!(check_path(Path::new(&format!("/{}", "a".repeat(85)))).is_err());
    }
}
