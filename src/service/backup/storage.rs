//! Where backup files live, behind one trait: a local directory now; an
//! S3-compatible store (the object_store crate) can be a second
//! implementation with the same four operations. Files are written under a
//! `.partial` name and renamed when complete, so a reader never sees half
//! a backup. Files are 0600 and directories 0700 (`crate::files`).

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

pub type Writer = Box<dyn AsyncWrite + Unpin + Send>;
pub type Reader = Box<dyn AsyncRead + Unpin + Send>;

#[async_trait]
pub trait BackupStorage: Send + Sync {
    /// Where backups go, for people.
    fn describe(&self) -> String;
    /// Where `key` is, as a URL anyone can follow without knowing the
    /// panel's layout (`file:///abs/path`, later `s3://bucket/key`); `None`
    /// for a key that names nothing (empty, or refused).
    fn url(&self, key: &str) -> Option<String>;
    /// Start writing `key` (as a partial file).
    async fn create(&self, key: &str) -> std::io::Result<Writer>;
    /// The partial file is complete: make it `key`.
    async fn commit(&self, key: &str) -> std::io::Result<()>;
    /// Remove `key` and any partial file of it.
    async fn remove(&self, key: &str) -> std::io::Result<()>;
    async fn open(&self, key: &str) -> std::io::Result<Reader>;
    async fn size(&self, key: &str) -> std::io::Result<u64>;
}

/// A directory on this machine.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> Self {
        LocalDir { root }
    }

    /// Keys are made by the panel (`<database>/<id>-<time>.<ext>`), never
    /// from input; refuse anything that could leave the root anyway.
    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
            || key.starts_with('/')
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "bad backup key",
            ));
        }
        Ok(self.root.join(key))
    }

    fn partial(&self, key: &str) -> std::io::Result<PathBuf> {
        let mut p = self.path(key)?.into_os_string();
        p.push(".partial");
        Ok(PathBuf::from(p))
    }
}

#[async_trait]
impl BackupStorage for LocalDir {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn url(&self, key: &str) -> Option<String> {
        let path = self.path(key).ok()?;
        let absolute = std::path::absolute(&path).ok()?;
        url::Url::from_file_path(&absolute).ok().map(|u| u.to_string())
    }

    async fn create(&self, key: &str) -> std::io::Result<Writer> {
        let partial = self.partial(key)?;
        if let Some(dir) = partial.parent() {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || crate::files::create_private_dir(&dir)).await??;
        }
        // A dump is every row of a database: readable by the panel alone.
        let file = crate::files::create_private_async(&partial).await?;
        Ok(Box::new(tokio::io::BufWriter::with_capacity(256 * 1024, file)))
    }

    async fn commit(&self, key: &str) -> std::io::Result<()> {
        tokio::fs::rename(self.partial(key)?, self.path(key)?).await
    }

    async fn remove(&self, key: &str) -> std::io::Result<()> {
        for path in [self.partial(key)?, self.path(key)?] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn open(&self, key: &str) -> std::io::Result<Reader> {
        let file = tokio::fs::File::open(self.path(key)?).await?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(256 * 1024, file)))
    }

    async fn size(&self, key: &str) -> std::io::Result<u64> {
        Ok(tokio::fs::metadata(self.path(key)?).await?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_becomes_an_absolute_file_url() {
        let dir = LocalDir::new(PathBuf::from("/var/lib/custodian/backups"));
        assert_eq!(
            dir.url("shop/7-1700000000.dump.zst").as_deref(),
            Some("file:///var/lib/custodian/backups/shop/7-1700000000.dump.zst")
        );
        assert_eq!(dir.url(""), None, "an empty key names nothing");
        assert_eq!(dir.url("../etc/passwd"), None, "nor one outside the root");
        let relative = LocalDir::new(PathBuf::from("data/backups"))
            .url("a b/1.sql.zst")
            .unwrap();
        assert!(relative.starts_with("file:///"), "{relative}");
        assert!(relative.ends_with("/data/backups/a%20b/1.sql.zst"), "{relative}");
    }
}
