//! The panel's own files — the SQLite store and its `-wal`/`-shm`, the key
//! file, backups, temporary and scratch files, the demo — are private to
//! its OS user: files 0600, directories 0700, whatever the umask it was
//! started with. New ones are created with those modes; [`tighten_panel_files`]
//! fixes at start what an older version left readable; the CLI sets the
//! process umask to 077 first thing, so what the SQLite driver and the dump
//! tools create is private too.

use std::io;
use std::path::Path;

/// The panel's secret key file in its data dir (see `secrets`).
pub const KEY_FILE: &str = "secret.key";

/// Mode of the panel's files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the panel's directories.
pub const DIR_MODE: u32 = 0o700;

/// From here on, whatever this process (and what it starts) creates is
/// private unless created with an explicit mode and chmod-ed wider.
pub fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask(2) only swaps the process's file mode creation mask; it
    // cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Create `dir` (and parents) if missing; directories created here are 0700.
/// An existing directory is left as it is (it may be shared, like `/tmp`).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that create (or truncate) a file readable by the panel alone.
pub fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Create or truncate `path` as a private file. A file that already existed
/// keeps its mode through `open`, so it is made private too.
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let file = private_options().open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// [`create_private`] for async writers.
pub async fn create_private_async(path: &Path) -> io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::from(private_options()).open(path).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .await?;
    }
    Ok(file)
}

/// Write `contents` to `path` as a private file.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    io::Write::write_all(&mut create_private(path)?, contents)
}

fn restrict(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Make `path` private if it is readable or writable by others: a
/// directory 0700, a file 0600. Symbolic links, and shared directories (the
/// sticky bit, as on `/tmp`), are left alone; a missing path is fine.
pub fn tighten(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        let want = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            return Ok(());
        };
        let sticky = mode & 0o1000 != 0;
        if mode & 0o077 != 0 && !sticky {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// [`tighten`] `root` and everything under it (not following links).
pub fn tighten_tree(root: &Path) -> io::Result<()> {
    tighten(root)?;
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return Ok(());
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            tighten_tree(&entry?.path())?;
        }
    }
    Ok(())
}

/// At start: what the panel keeps in its data dir (the dir itself, the
/// SQLite store, the key, temporary files, the demo, default backups) and
/// the backup dir, made private. Only the panel's own entries: a data dir
/// that also holds other things keeps them as they are. Failures (a file
/// owned by someone else) are logged, not fatal.
pub fn tighten_panel_files(data_dir: &Path, backup_dir: &Path) {
    let single = [
        data_dir.to_path_buf(),
        data_dir.join("custodian.db"),
        data_dir.join("custodian.db-wal"),
        data_dir.join("custodian.db-shm"),
        data_dir.join(KEY_FILE),
    ];
    let trees = [
        data_dir.join("tmp"),
        data_dir.join("demo"),
        data_dir.join("backups"),
        backup_dir.to_path_buf(),
    ];
    let results = single
        .iter()
        .map(|p| (p, tighten(p)))
        .chain(trees.iter().map(|p| (p, tighten_tree(p))));
    for (path, result) in results {
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot make a file of the panel private");
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_and_tightened_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&nested)), (0o700, 0o700));
        let file = nested.join("f");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"y").unwrap();
        assert_eq!(
            mode(&file),
            0o600,
            "an existing file is made private when rewritten"
        );

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", nested.join("link")).unwrap();
        tighten_tree(dir.path().join("a").as_path()).unwrap();
        assert_eq!((mode(&nested), mode(&file)), (0o700, 0o600));
        assert_eq!(
            mode(Path::new("/etc/passwd")) & 0o044,
            0o044,
            "a link is not followed"
        );

        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        tighten(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777, "a sticky shared directory is left alone");
        tighten(&dir.path().join("missing")).unwrap();
    }
}
