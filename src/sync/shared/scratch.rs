//! The recovery's exclusive use of its scratch refs (`refs/entire-fetch-tmp/<ref with "/" → "-">`).
//!
//! A recovery holds an exclusive `flock` on `<git-common-dir>/entire-recover.lock` (the kernel drops it when the
//! process dies), so one recovery per repository uses the scratch refs at a time; a second one waits up to
//! [`LOCK_WAIT`], then its refs stay queued with the reason. Holding it, the recovery removes the
//! `<scratch ref>.lock` files that a killed recovery (or its killed `git fetch`) left: nobody else may be
//! writing them, and git would otherwise refuse that scratch ref forever ("is locked by another process").
//! Only files directly under `refs/entire-fetch-tmp/` are touched (lazy reads use per-process subdirectories
//! there); the lock file itself stays, empty.

use crate::git::repo::Repo;

/// Where fetched remote tips are kept during a recovery.
pub const TMP_PREFIX: &str = "refs/entire-fetch-tmp/";

/// The scratch ref of `name`.
pub fn tmp_ref(name: &str) -> String {
    format!("{TMP_PREFIX}{}", name.replace('/', "-"))
}

/// The recovery lock, in the git common dir.
pub const RECOVER_LOCK: &str = "entire-recover.lock";
/// How long a recovery waits for a concurrent one in the same repository.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Take the recovery lock (see the module doc), then remove the scratch-ref lock files a killed recovery left.
pub fn exclusive(repo: &Repo) -> Result<std::fs::File, String> {
    let common = repo.common_dir();
    let path = common.join(RECOVER_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another push of this repository is recovering shared refs ({} is locked)",
                    path.display()
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
    }
    let dir = common.join(TMP_PREFIX.trim_end_matches('/'));
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let stale = entry.file_name().to_string_lossy().ends_with(".lock")
            && entry.file_type().is_ok_and(|t| t.is_file());
        if stale {
            tracing::info!(target: "entire::push", lock = %entry.path().display(), "removing a scratch-ref lock a killed recovery left");
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(file)
}
