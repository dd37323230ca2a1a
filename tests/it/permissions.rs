//! Files the panel writes are private to its OS user, whatever the umask it
//! was started with: every file under the data dir and the backup dir is
//! 0600 and every directory 0700, after a start with the demo, a backup and
//! a verification; and a data dir left world-readable by an older version
//! is tightened at the next start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;

use crate::helpers::eventually;

/// `custodian --data-dir DATA ARGS…` started under umask 022, with backups
/// in a directory of their own outside the data dir.
fn custodian(data: &Path, backups: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_custodian"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("CUSTODIAN_BACKUP_DIR", backups)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Run a CLI command to its end; its stdout.
fn run(data: &Path, backups: &Path, args: &[&str]) -> String {
    let out = custodian(data, backups, args)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "custodian {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Start `serve` (with the demo) and wait until it answers.
async fn serve(data: &Path, backups: &Path) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = custodian(data, backups, &["serve", "--listen", &listen])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("http://{listen}/healthz");
    eventually("the panel to answer", || async {
        let res = reqwest::get(&health).await.ok()?;
        (res.status() == StatusCode::OK).then_some(())
    })
    .await;
    child
}

/// Stop with SIGTERM, as a service manager would.
fn stop(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success(), "a clean exit on SIGTERM");
}

/// Everything under `root` (itself included) whose mode is not 0700 for a
/// directory or 0600 for a file, with its mode; and how many files there are.
fn loose(root: &Path) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    let mut files = 0;
    let mut todo: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
        } else {
            files += 1;
        }
        if mode != want {
            found.push(format!("{} is {mode:o}", path.display()));
        }
    }
    found.sort();
    (found, files)
}

/// What an older version left under umask 022: files 0644, directories 0755.
fn loosen(root: &Path) {
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[tokio::test]
async fn everything_the_panel_writes_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let (data, backups) = (dir.path().join("data"), dir.path().join("backups"));

    let server = serve(&data, &backups).await;
    // "backup #1: good 12.0 KiB, sha256 …"
    let taken = run(&data, &backups, &["backup", "run", "demo"]);
    let id = taken
        .trim()
        .strip_prefix("backup #")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{taken}"));
    // The CLI names the backup's file by a URL a DBA can follow, in the
    // run's output and in the list.
    let url = taken
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("file:///"))
        .unwrap_or_else(|| panic!("no file URL in {taken}"));
    let file = url::Url::parse(url).unwrap().to_file_path().unwrap();
    assert!(file.starts_with(&backups) && file.is_file(), "{url}");
    let listed = run(&data, &backups, &["backup", "list", "demo"]);
    assert!(listed.lines().next().unwrap().ends_with("LOCATION"), "{listed}");
    assert!(listed.contains(url), "{listed}");
    run(&data, &backups, &["backup", "verify", id]);
    stop(server);

    for root in [&data, &backups] {
        let (found, files) = loose(root);
        assert!(files > 0, "{} holds what the panel wrote", root.display());
        assert!(
            found.is_empty(),
            "readable by other local users:\n{}",
            found.join("\n")
        );
    }
    for name in ["custodian.db", "secret.key", "demo/demo.sqlite"] {
        assert!(data.join(name).exists(), "{name} was checked");
    }

    // A data dir an older version left world-readable is fixed at start.
    loosen(&data);
    loosen(&backups);
    stop(serve(&data, &backups).await);
    for root in [&data, &backups] {
        let (found, _) = loose(root);
        assert!(
            found.is_empty(),
            "still readable by others after a start:\n{}",
            found.join("\n")
        );
    }
}
