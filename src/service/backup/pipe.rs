//! The pipe between an engine's dump or restore recipe and a backup's
//! storage: child processes for the tools, their output streamed through
//! zstd and SHA-256 into storage (never held whole in memory), and the
//! reverse for restores; progress and cancellation from the job.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use async_compression::tokio::bufread::{ZstdDecoder, ZstdEncoder};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::storage::BackupStorage;
use crate::engine::EngineError;
use crate::engine::dump::Pipe;
use crate::service::jobs::{JobCtx, JobFailure};

/// A job's failure from an engine's error: cancelled stays cancelled.
pub(super) fn failure(e: EngineError) -> JobFailure {
    match e {
        EngineError::Cancelled => JobFailure::Cancelled,
        other => JobFailure::Failed(other.to_string()),
    }
}

pub(super) fn failed(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Failed(e.to_string())
}

/// An engine error from a step of the pipe.
fn engine(e: JobFailure) -> EngineError {
    match e {
        JobFailure::Cancelled => EngineError::Cancelled,
        JobFailure::Failed(m) => EngineError::Tool(m),
    }
}

const CHUNK: usize = 256 * 1024;

/// `n` things over `took`, per second (0 for no time at all).
pub(super) fn per_second(n: i64, took: std::time::Duration) -> i64 {
    match took.as_secs_f64() {
        s if s > 0.0 => (n as f64 / s).round() as i64,
        _ => 0,
    }
}

/// Copy `src` into `dst`, hashing what is written; reports progress.
pub(super) async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin + ?Sized>(
    mut src: R,
    dst: &mut W,
    ctx: &JobCtx,
    what: &str,
) -> Result<(u64, String), JobFailure> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let mut last_report = Instant::now();
    let began = Instant::now();
    loop {
        let n = tokio::select! {
            r = src.read(&mut buf) => r.map_err(|e| failed(format!("reading {what}: {e}")))?,
            _ = ctx.cancelled() => return Err(JobFailure::Cancelled),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .await
            .map_err(|e| failed(format!("writing the backup: {e}")))?;
        total += n as u64;
        if last_report.elapsed().as_millis() >= 500 {
            ctx.progress(
                None,
                &format!(
                    "{what}: {} written, {}/s",
                    crate::format::fmt_bytes(total as i64),
                    crate::format::fmt_bytes(per_second(total as i64, began.elapsed()))
                ),
            );
            last_report = Instant::now();
        }
    }
    dst.flush()
        .await
        .map_err(|e| failed(format!("writing the backup: {e}")))?;
    dst.shutdown()
        .await
        .map_err(|e| failed(format!("writing the backup: {e}")))?;
    let digest = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((total, digest))
}

/// The last 2000 characters a tool wrote to stderr.
fn tail(stderr: &str) -> String {
    let chars: Vec<char> = stderr.trim().chars().collect();
    chars[chars.len().saturating_sub(2000)..].iter().collect()
}

/// Wait for a child; on failure, its stderr says why.
async fn finish_child(mut child: Child, name: &str) -> Result<(), JobFailure> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    let status = child.wait().await.map_err(|e| failed(format!("{name}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!("{name} failed ({status}): {}", tail(&stderr))))
    }
}

fn spawn(mut cmd: Command, name: &str) -> Result<Child, JobFailure> {
    cmd.kill_on_drop(true);
    cmd.spawn()
        .map_err(|e| failed(format!("cannot start {name}: {e}")))
}

/// A job's pipe to one backup file: `key` is the new backup's (dumps) or
/// the stored backup's location (restores).
pub(super) struct JobPipe<'a> {
    pub ctx: &'a JobCtx,
    pub storage: &'a dyn BackupStorage,
    pub key: &'a str,
    pub work_dir: &'a Path,
    /// Bytes and SHA-256 of what went into the backup.
    written: Mutex<Option<(u64, String)>>,
}

impl<'a> JobPipe<'a> {
    pub fn new(ctx: &'a JobCtx, storage: &'a dyn BackupStorage, key: &'a str, work_dir: &'a Path) -> Self {
        JobPipe {
            ctx,
            storage,
            key,
            work_dir,
            written: Mutex::new(None),
        }
    }

    /// What the dump wrote: (bytes, SHA-256).
    pub fn written(&self) -> Option<(u64, String)> {
        self.written.lock().ok()?.clone()
    }

    async fn write_from<R: AsyncRead + Unpin + Send>(&self, src: R, what: &str) -> Result<(), JobFailure> {
        let mut out = self.storage.create(self.key).await.map_err(|e| {
            failed(format!(
                "cannot write the backup to {}: {e}",
                self.storage.describe()
            ))
        })?;
        let done = pump(ZstdEncoder::new(BufReader::new(src)), &mut out, self.ctx, what).await?;
        if let Ok(mut w) = self.written.lock() {
            *w = Some(done);
        }
        Ok(())
    }

    async fn reader(&self) -> Result<ZstdDecoder<BufReader<super::storage::Reader>>, JobFailure> {
        let file = self
            .storage
            .open(self.key)
            .await
            .map_err(|e| failed(format!("cannot read the backup: {e}")))?;
        Ok(ZstdDecoder::new(BufReader::new(file)))
    }
}

#[async_trait]
impl Pipe for JobPipe<'_> {
    fn work_dir(&self) -> &Path {
        self.work_dir
    }

    fn progress(&self, fraction: Option<f64>, message: &str) {
        self.ctx.progress(fraction, message)
    }

    async fn log(&self, line: &str) {
        self.ctx.log(line).await
    }

    async fn cancelled(&self) {
        self.ctx.cancelled().await
    }

    async fn store_output(&self, cmd: Command, name: &str) -> Result<(), EngineError> {
        let mut child = spawn(cmd, name).map_err(engine)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EngineError::internal(format!("{name} has no output")))?;
        match self.write_from(stdout, name).await {
            Ok(()) => finish_child(child, name).await.map_err(engine),
            Err(e) => {
                let _ = child.kill().await;
                Err(engine(e))
            }
        }
    }

    async fn store_file(&self, path: &Path, what: &str) -> Result<(), EngineError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| EngineError::local(&format!("reading the {what}"), e))?;
        self.write_from(file, what).await.map_err(engine)
    }

    async fn feed_tool(&self, cmd: Command, name: &str) -> Result<(), EngineError> {
        let input = self.reader().await.map_err(engine)?;
        let mut child = spawn(cmd, name).map_err(engine)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| EngineError::internal(format!("{name} has no input")))?;
        // Read its stderr meanwhile, so a chatty tool never blocks on a full pipe.
        let stderr = child.stderr.take();
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut text).await;
            }
            text
        });
        let fed = pump(input, &mut stdin, self.ctx, name).await;
        drop(stdin);
        let status = child
            .wait()
            .await
            .map_err(|e| EngineError::Tool(format!("{name}: {e}")))?;
        let stderr = errors.await.unwrap_or_default();
        fed.map_err(engine)?;
        if !status.success() {
            let text: String = stderr.trim().chars().take(2000).collect();
            return Err(EngineError::Tool(format!("{name} failed ({status}): {text}")));
        }
        Ok(())
    }

    /// Into a new file only (an existing file or a link is never followed
    /// or truncated); a file left half-written by a failure is removed.
    async fn write_file(&self, path: &Path, what: &str) -> Result<(), EngineError> {
        let input = self.reader().await.map_err(engine)?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut out = options
            .open(path)
            .await
            .map_err(|e| EngineError::local(&format!("creating the {what} file"), e))?;
        let written = pump(input, &mut out, self.ctx, what).await;
        drop(out);
        if written.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        written.map(|_| ()).map_err(engine)
    }

    async fn run(&self, cmd: Command, name: &str) -> Result<(), EngineError> {
        let mut child = spawn(cmd, name).map_err(engine)?;
        tokio::select! {
            _ = child.wait() => {}
            _ = self.ctx.cancelled() => {
                let _ = child.kill().await;
                return Err(EngineError::Cancelled);
            }
        }
        finish_child(child, name).await.map_err(engine)
    }
}

/// Check the SHA-256 of a stored backup.
pub(super) async fn check_sum(
    storage: &dyn BackupStorage,
    location: &str,
    expected: &str,
    ctx: &JobCtx,
) -> Result<(), JobFailure> {
    let reader = storage
        .open(location)
        .await
        .map_err(|e| failed(format!("cannot read the backup file: {e}")))?;
    let mut sink = tokio::io::sink();
    let (_, actual) = pump(reader, &mut sink, ctx, "checksum").await?;
    if actual != expected {
        return Err(failed(format!(
            "checksum mismatch: the file's SHA-256 is {actual}, the catalog says {expected}: the backup is damaged"
        )));
    }
    Ok(())
}
