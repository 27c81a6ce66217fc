//! One migration per repository: an exclusive `flock` on `<common-dir>/entire-migrate.lock`.
//!
//! Invariants:
//! - The lock is an advisory `flock` held by the open file for the whole run; the kernel releases it when the
//!   process dies (kill -9 included), so a crashed run never leaves a stale lock behind and the next run simply
//!   acquires it. The file itself is never deleted (deleting a locked file would let two holders coexist).
//! - The holder writes its PID into the file after acquiring the lock, so a second instance can name it.
//! - Holding this lock is what makes the migration's crash leftovers (its temporary pack, its `packed-refs.lock`
//!   link) provably its own: no other migration can be running while they are inspected.
//!
//! Failure modes: [`LockError::Held`] names the lock file and the holder's PID (if it had written it yet).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name inside the git common dir (same name as the upstream CLI's migration lock).
pub const LOCK_FILE: &str = "entire-migrate.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another migration is running in this repository ({holder}; lock file {path})")]
    Held { path: PathBuf, holder: String },
    #[error("cannot use migration lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held migration lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct MigrateLock {
    _file: File,
}

impl MigrateLock {
    /// Take the lock without waiting.
    pub fn acquire(common_dir: &Path) -> Result<Self, LockError> {
        let path = common_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                // Best effort: the holder may not have written its PID yet.
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "holder PID not written yet".to_string(),
                    p => format!("held by PID {p}"),
                };
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(MigrateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = MigrateLock::acquire(dir.path()).expect("first acquire");
        let err = MigrateLock::acquire(dir.path()).expect_err("second acquire must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("PID {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(LOCK_FILE), "{msg}");
        drop(held);
        MigrateLock::acquire(dir.path()).expect("free again after drop");
    }
}
