//! Running a long pgBackRest command as a job's step: its INFO lines into
//! the job's log, its per-file "(…, NN.NN%)" lines as progress, and a
//! cancel as SIGTERM (pgBackRest stops cleanly on it; `runuser` passes it
//! on), then a kill if it does not stop.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::engine::pitr::pgbackrest::{error_text, progress_of};
use crate::service::jobs::{JobCtx, JobFailure};

/// Run `cmd` to its end; `what` names it in messages. Progress spans
/// `range` of the job. Returns its output's INFO lines.
pub async fn run(
    mut cmd: Command,
    what: &str,
    ctx: &JobCtx,
    range: (f64, f64),
) -> Result<Vec<String>, JobFailure> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| JobFailure::Failed(format!("cannot run {what}: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    // Its output is drained by a task of its own, so pgBackRest never
    // waits on a full pipe while a line is written to the job's log.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut info = Vec::new();
    let mut all = String::new();
    let mut cancelled = false;
    loop {
        tokio::select! {
            line = rx.recv() => {
                match line {
                    Some(line) => {
                        if let Some(p) = progress_of(&line) {
                            ctx.progress(Some(range.0 + (range.1 - range.0) * p), &format!("{what}: {:.0}%", p * 100.0));
                        } else if line.contains(" INFO: ") || line.contains(" WARN: ") || line.contains(" ERROR: ") {
                            let text = line.split_once(": ").map(|(_, t)| t).unwrap_or(&line).to_string();
                            ctx.log(&format!("{what}: {text}")).await;
                            info.push(text);
                        }
                        if all.len() < 64 * 1024 && !line.contains(" DETAIL: ") {
                            all.push_str(&line);
                            all.push('\n');
                        }
                    }
                    _ => break,
                }
            }
            _ = ctx.cancelled(), if !cancelled => {
                cancelled = true;
                terminate(&mut child).await;
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| JobFailure::Failed(format!("{what}: {e}")))?;
    let stderr = errors.await.unwrap_or_default();
    if cancelled {
        return Err(JobFailure::Cancelled);
    }
    if status.success() {
        Ok(info)
    } else {
        Err(JobFailure::Failed(format!(
            "{what} failed ({status}): {}",
            error_text(&stderr, &all)
        )))
    }
}

/// SIGTERM, then SIGKILL after 30 s.
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
