//! Driving `pgbackrest`: command lines (run as the data directory's owner
//! when the panel runs as root, as pgBackRest and PostgreSQL refuse root),
//! and its catalog, `info --output=json`, read into plain data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::engine::{EngineError, EngineResult};

/// How long a catalog read (`info`) may take.
pub const INFO_TIMEOUT: Duration = Duration::from_secs(30);

/// The Debian package a missing tool comes in.
pub const INSTALL: &str = "the pgbackrest package (apt-get install -y pgbackrest)";

/// One stanza and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    pub program: PathBuf,
    pub name: String,
    pub config: Option<PathBuf>,
    /// The OS user to run as (`runuser`), when the panel runs as root.
    pub run_as: Option<String>,
}

/// Is this process root?
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The name of the user owning `path`, from /etc/passwd.
pub fn owner_of(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path).ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Who runs pgBackRest, `pg_ctl` and restored servers: nobody else when
/// the panel is not root; as root, the owner of the server's data
/// directory if it is on this machine, else of the pgBackRest config
/// file, else `postgres`. Never root.
pub fn run_as(data_directory: Option<&str>, config: Option<&Path>) -> Option<String> {
    if !running_as_root() {
        return None;
    }
    let owner = data_directory
        .map(Path::new)
        .filter(|p| p.is_dir())
        .and_then(owner_of)
        .or_else(|| config.and_then(owner_of))
        .filter(|o| o != "root");
    Some(owner.unwrap_or_else(|| "postgres".into()))
}

/// `program` as `user` (runuser) or as this process. The child gets
/// SIGTERM if the panel dies, so a restore does not write on alone.
pub fn as_user(program: &Path, user: Option<&str>) -> Command {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    // SAFETY: prctl is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.stdin(std::process::Stdio::null());
    cmd
}

impl Stanza {
    /// The stanza with pgbackrest found on this machine.
    pub fn new(name: &str, config: Option<&str>, run_as: Option<String>) -> EngineResult<Stanza> {
        let program = crate::engine::tools::find(&["pgbackrest"])
            .ok_or_else(|| EngineError::Tool(format!("pgbackrest was not found: install {INSTALL}")))?;
        Ok(Stanza {
            program,
            name: name.to_string(),
            config: config.map(PathBuf::from),
            run_as,
        })
    }

    /// `pgbackrest [--config=…] --stanza=… <command> <args>`.
    pub fn command(&self, command: &str, args: &[String]) -> Command {
        let mut cmd = as_user(&self.program, self.run_as.as_deref());
        if let Some(c) = &self.config {
            cmd.arg(format!("--config={}", c.display()));
        }
        cmd.arg(format!("--stanza={}", self.name));
        cmd.arg(command);
        cmd.args(args);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Run a short command to its end within `limit`: its stdout, or its
    /// error (stderr, or stdout where pgBackRest prints its errors).
    pub async fn output(&self, command: &str, args: &[String], limit: Duration) -> EngineResult<String> {
        let mut cmd = self.command(command, args);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| {
                EngineError::TimedOut(format!(
                    "pgbackrest {command} took more than {}s",
                    limit.as_secs()
                ))
            })?
            .map_err(|e| EngineError::Tool(format!("cannot run pgbackrest: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(EngineError::Tool(format!(
                "pgbackrest {command} failed: {}",
                error_text(&stderr, &stdout)
            )))
        }
    }

    /// The stanza's catalog.
    pub async fn info(&self) -> EngineResult<Info> {
        let text = self
            .output("info", &["--output=json".into()], INFO_TIMEOUT)
            .await?;
        Info::parse(&text, &self.name)
    }
}

/// The lines of a failed run worth showing: ERROR/WARN lines if any, else
/// the last lines.
pub fn error_text(stderr: &str, stdout: &str) -> String {
    let all = format!("{stderr}\n{stdout}");
    let important: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("ERROR:") || l.contains("WARN:"))
        .map(|l| l.split_once(": ").map(|(_, rest)| rest).unwrap_or(l).trim())
        .collect();
    let text = if important.is_empty() {
        all.lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" / ")
    } else {
        important.join(" / ")
    };
    text.chars().take(2000).collect()
}

/// A physical backup in the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalBackup {
    pub label: String,
    /// full, diff or incr.
    pub kind: String,
    /// The backup it depends on.
    pub prior: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds: the backup is consistent from here.
    pub finished_at: i64,
    pub bytes: i64,
    pub repo_bytes: i64,
    pub wal_start: String,
    pub wal_stop: String,
    pub lsn_start: String,
    pub lsn_stop: String,
    pub error: bool,
}

/// A stanza's catalog as `info --output=json` gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Oldest first.
    pub backups: Vec<PhysicalBackup>,
    /// The archived WAL range of the current database id.
    pub archive_min: Option<String>,
    pub archive_max: Option<String>,
    /// 0 = ok; pgBackRest's codes otherwise (1 missing stanza, 2 no backup, …).
    pub status_code: i64,
    pub status_message: String,
    /// A backup is running now.
    pub backup_running: bool,
}

impl Info {
    /// When the newest good backup became consistent (Unix seconds).
    pub fn newest_good(&self) -> Option<i64> {
        self.backups
            .iter()
            .filter(|b| !b.error)
            .map(|b| b.finished_at)
            .max()
    }

    pub fn parse(text: &str, stanza: &str) -> EngineResult<Info> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            EngineError::Tool(format!("pgbackrest info printed something that is not JSON: {e}"))
        })?;
        let Some(st) = v
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"].as_str() == Some(stanza)))
        else {
            return Ok(Info {
                status_code: 1,
                status_message: format!("stanza {stanza} is not in pgBackRest's catalog"),
                ..Info::default()
            });
        };
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let backups = st["backup"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|b| PhysicalBackup {
                        label: s(&b["label"]),
                        kind: s(&b["type"]),
                        prior: b["prior"].as_str().map(str::to_string),
                        started_at: b["timestamp"]["start"].as_i64().unwrap_or(0),
                        finished_at: b["timestamp"]["stop"].as_i64().unwrap_or(0),
                        bytes: b["info"]["size"].as_i64().unwrap_or(0),
                        repo_bytes: b["info"]["repository"]["delta"].as_i64().unwrap_or(0),
                        wal_start: s(&b["archive"]["start"]),
                        wal_stop: s(&b["archive"]["stop"]),
                        lsn_start: s(&b["lsn"]["start"]),
                        lsn_stop: s(&b["lsn"]["stop"]),
                        error: b["error"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The archive of the newest database id (after an upgrade, the old
        // one's WAL cannot be replayed onto the new one's backups).
        let archive = st["archive"]
            .as_array()
            .and_then(|a| a.iter().max_by_key(|x| x["database"]["id"].as_i64().unwrap_or(0)));
        Ok(Info {
            backups,
            archive_min: archive.and_then(|a| a["min"].as_str()).map(str::to_string),
            archive_max: archive.and_then(|a| a["max"].as_str()).map(str::to_string),
            status_code: st["status"]["code"].as_i64().unwrap_or(99),
            status_message: s(&st["status"]["message"]),
            backup_running: st["status"]["lock"]["backup"]["held"].as_bool().unwrap_or(false),
        })
    }
}

/// The share done in a `--log-level-console=detail` backup line:
/// "backup file /…/base/5/1249 (528KB, 25.48%) checksum …" → 0.2548.
pub fn progress_of(line: &str) -> Option<f64> {
    let end = line.find("%)")?;
    let start = line[..end].rfind(", ")? + 2;
    line[start..end].trim().parse::<f64>().ok().map(|p| p / 100.0)
}

/// A WAL segment name's parts: (timeline, segment number) for `wal_size`-byte segments.
pub fn segment_parts(name: &str, wal_size: i64) -> Option<(u32, u64)> {
    if name.len() != 24 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[0..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    let per_log = 0x1_0000_0000u64 / wal_size.max(1) as u64;
    Some((tli, log * per_log + seg))
}

/// The segment name for (timeline, segment number).
pub fn segment_name(tli: u32, number: u64, wal_size: i64) -> String {
    let per_log = 0x1_0000_0000u64 / wal_size.max(1) as u64;
    format!("{tli:08X}{:08X}{:08X}", number / per_log, number % per_log)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000001"}],
      "backup":[
        {"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"error":false,
         "info":{"delta":23246647,"repository":{"delta":3065326,"size":3065326},"size":23246647},
         "label":"20261206-214233F","lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,
         "timestamp":{"start":1796593353,"stop":1796593358},"type":"full"},
        {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"error":false,
         "info":{"delta":100,"repository":{"delta":50,"size":3065326},"size":23246647},
         "label":"20261206-214233F_20261206-214942I","lsn":{"start":"0/5000028","stop":"0/5000100"},
         "prior":"20261206-214233F","reference":["20261206-214233F"],
         "timestamp":{"start":1796593400,"stop":1796593402},"type":"incr"}],
      "name":"demo","status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn the_catalog_reads_into_plain_data() {
        let info = Info::parse(INFO, "demo").unwrap();
        assert_eq!(info.backups.len(), 2);
        assert_eq!(info.backups[1].prior.as_deref(), Some("20261206-214233F"));
        assert_eq!(info.backups[1].kind, "incr");
        assert_eq!(info.backups[0].finished_at, 1796593358);
        assert_eq!(info.archive_max.as_deref(), Some("000000010000000000000006"));
        assert_eq!(info.status_code, 0);
        let other = Info::parse(INFO, "other").unwrap();
        assert_eq!(other.status_code, 1);
        assert!(Info::parse("not json", "demo").is_err());
    }

    #[test]
    fn progress_and_segments_parse() {
        let line = "2026-12-06 21:49:44.011 P01 DETAIL: backup file /tmp/pgbr/data/base/5/1249 (528KB, 25.48%) checksum 148a";
        assert_eq!(progress_of(line), Some(0.2548));
        assert_eq!(progress_of("INFO: backup start"), None);
        let mb16 = 16 * 1024 * 1024;
        let (tli, n) = segment_parts("0000000100000001000000FF", mb16).unwrap();
        assert_eq!((tli, n), (1, 511));
        assert_eq!(segment_name(1, 512, mb16), "000000010000000200000000");
        assert!(segment_parts("../../etc/passwd", mb16).is_none());
    }

    #[test]
    fn errors_show_what_pgbackrest_said() {
        let out =
            "2026-12-06 P00 INFO: stanza-create begin\n2026-12-06 P00 ERROR: [055]: unable to load info file";
        assert_eq!(error_text("", out), "[055]: unable to load info file");
    }
}
