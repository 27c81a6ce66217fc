//! Push runs and their staging refs: the per-run lock, creating and deleting a run's staging refs with ONE
//! rewrite of `packed-refs` each, and removing what killed runs left behind.
//!
//! Why `packed-refs`: a ref transaction writes one loose file (plus a lock file) per staging ref and deletes
//! them again after the push; for 10k queued checkpoints that file churn cost as much as the push itself.
//! [`crate::git::packedrefs`] does the same compare-and-swap in one sequential rewrite, and `git push` then reads
//! the staging refs from that one file too.
//!
//! Invariants:
//! - A run holds an exclusive `flock` on `<common-dir>/entire-push-runs/<run>.lock` while its staging refs
//!   exist; the lock file is created before the first staging ref and removed (still locked) after the last.
//!   A run whose lock can be taken is dead: its staging refs, and a `packed-refs.lock` that is its temporary
//!   file `<run>.packed-refs.tmp`, are removed by the next run, which holds the dead run's lock meanwhile so
//!   that two cleaners never race. Live concurrent runs are never disturbed.
//! - Only names under `refs/entire/push-queue/` are created or deleted here.
//! - Creation is ONE compare-and-swap step, every staging ref expected absent (names are fresh per run, so no
//!   loose copy can shadow them). When `packed-refs` is busy past [`PACKED_LOCK_TIMEOUT`], or the repository
//!   does not use the files backend, the refs are created by one ref transaction instead.
//! - Deletion is one compare-and-swap step per storage: loose staging refs (left by an older version, or by
//!   the fallback above) by one ref transaction, which also drops their packed copies; the rest by one
//!   `packed-refs` rewrite.
//!
//! Cost of [`remove_dead`] when nothing is staged (it runs before every push through the helper): one
//! `read_dir` of the runs directory and one prefix lookup of `refs/entire/push-queue/`. On the files backend
//! that lookup is in process (a stat of the loose directory and a binary search of `packed-refs`; no child
//! process, no scan of other refs); on reftable it is one `git for-each-ref` child.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::git::packedrefs::{self, Mode, PackedRefs, PackedRefsError};
use crate::git::repo::{ObjectId, RefUpdate, Repo};
use crate::model::refname::STAGING_PREFIX;

use super::error::StageError;

/// Directory (in the git common dir) holding one lock file per live push run.
pub const RUNS_DIR: &str = "entire-push-runs";

/// How long a push waits for somebody else's `packed-refs.lock` (git's own default is 1 s) before staging
/// through loose refs instead.
pub const PACKED_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

const LOCK_SUFFIX: &str = ".lock";
const TMP_SUFFIX: &str = ".packed-refs.tmp";

/// The held lock of one run.
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    /// Take `<run>.lock`, retrying when a cleaner removed the file between our open and our lock.
    pub fn acquire(common: &Path, run: &str) -> Result<Self, StageError> {
        let path = lock_path(common, run);
        let err = |source| StageError::Lock {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(common.join(RUNS_DIR)).map_err(err)?;
        loop {
            let file = open_lock(&path).map_err(err)?;
            file.lock().map_err(err)?;
            if is_same(&file, &path) {
                return Ok(RunLock { path, _file: file });
            }
        }
    }

    /// Remove the lock file (while still holding it), then release it.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_path(common: &Path, run: &str) -> PathBuf {
    common.join(RUNS_DIR).join(format!("{run}{LOCK_SUFFIX}"))
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Whether `path` still names the open `file` (a cleaner may have removed it).
fn is_same(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

fn packed(common: &Path, run: &str) -> PackedRefs {
    let tmp = common.join(RUNS_DIR).join(format!("{run}{TMP_SUFFIX}"));
    PackedRefs::new(common, tmp, PACKED_LOCK_TIMEOUT)
}

fn files_backend(repo: &Repo) -> bool {
    repo.ref_storage() == crate::git::repo::RefStorage::Files
}

/// Create `refs` (staging name, value) of `run`, each expected absent, in one step. Call with the run locked.
pub fn create(repo: &Repo, run: &str, refs: &[(String, ObjectId)]) -> Result<(), StageError> {
    let updates: Vec<RefUpdate> = refs
        .iter()
        .map(|(name, value)| RefUpdate {
            name: name.clone(),
            expected: None,
            new: Some(*value),
        })
        .collect();
    if files_backend(repo) {
        let changes: Vec<&RefUpdate> = updates.iter().collect();
        match packed(&repo.common_dir(), run).update(&changes, Mode::AllOrNothing) {
            Ok(conflicts) if conflicts.is_empty() => return Ok(()),
            Ok(conflicts) => {
                return Err(StageError::Exists(
                    conflicts.into_iter().map(|c| c.name).collect(),
                ))
            }
            Err(e @ PackedRefsError::Locked { .. }) => {
                tracing::info!(target: "entire::push", "{e}; staging through loose refs");
            }
            Err(e) => return Err(e.into()),
        }
    }
    repo.transaction(&updates, "entire: stage checkpoints for push")?;
    Ok(())
}

/// Delete staging `refs` (name, expected value) that belong to `runs`, loose ones by one ref transaction and
/// packed ones by one rewrite. Returns the refs that were not at the expected value (left alone).
fn delete(
    repo: &Repo,
    writer: &PackedRefs,
    prefix: &str,
    refs: Vec<(String, ObjectId)>,
) -> Result<Vec<String>, StageError> {
    let common = repo.common_dir();
    let loose = packedrefs::loose_refs(&common, prefix);
    let (via_loose, via_packed): (Vec<RefUpdate>, Vec<RefUpdate>) = refs
        .into_iter()
        .filter(|(name, _)| name.starts_with(STAGING_PREFIX))
        .map(|(name, value)| RefUpdate {
            name,
            expected: Some(value),
            new: None,
        })
        .partition(|u| !files_backend(repo) || loose.contains(&u.name));
    if !via_loose.is_empty() {
        repo.transaction(&via_loose, "entire: remove staging refs")?;
    }
    let mut moved = Vec::new();
    if !via_packed.is_empty() {
        let changes: Vec<&RefUpdate> = via_packed.iter().collect();
        for c in writer.update(&changes, Mode::EachRef)? {
            // Gone already is fine (another cleaner); a different value is somebody else's ref now.
            if c.actual.is_some() {
                moved.push(c.name);
            }
        }
    }
    Ok(moved)
}

/// Delete the staging refs of `run` (expected at their staged values) and release its lock.
pub fn finish(
    repo: &Repo,
    run: &str,
    lock: RunLock,
    refs: Vec<(String, ObjectId)>,
) -> Result<(), StageError> {
    let prefix = format!("{STAGING_PREFIX}{run}/");
    let moved = delete(repo, &packed(&repo.common_dir(), run), &prefix, refs)?;
    if !moved.is_empty() {
        // The lock file stays (unlocked): the next run treats the leftovers as a dead run's.
        return Err(StageError::Moved(moved));
    }
    lock.remove();
    Ok(())
}

/// Delete what runs whose process is gone (their lock can be taken) left behind: staging refs, a stale
/// `packed-refs.lock` that is their temporary file, their lock files.
pub fn remove_dead(repo: &Repo) -> Result<(), StageError> {
    let common = repo.common_dir();
    let mut by_run: BTreeMap<String, Vec<(String, ObjectId)>> = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(common.join(RUNS_DIR)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let run = name.strip_suffix(LOCK_SUFFIX);
            if let Some(run) = run.or_else(|| name.strip_suffix(TMP_SUFFIX)) {
                by_run.entry(run.to_string()).or_default();
            }
        }
    }
    for (name, value) in repo.refs_with_prefix(STAGING_PREFIX)? {
        let run = name[STAGING_PREFIX.len()..].split('/').next().unwrap_or("");
        by_run
            .entry(run.to_string())
            .or_default()
            .push((name, value));
    }
    let mut claimed = Vec::new();
    let mut refs = Vec::new();
    for (run, run_refs) in by_run {
        let Some(lock) = claim(&common, &run) else {
            continue; // alive, or handled by another cleaner right now
        };
        if !run_refs.is_empty() {
            tracing::info!(target: "entire::push", run = %run, refs = run_refs.len(), "removing staging refs of a dead push run");
        }
        packed(&common, &run).recover()?;
        refs.extend(run_refs);
        claimed.push((run, lock));
    }
    if let (false, Some((run, _))) = (refs.is_empty(), claimed.first()) {
        // The temporary file of a run whose lock we hold: nobody else can be using it.
        let writer = packed(&common, run);
        match delete(repo, &writer, STAGING_PREFIX, refs) {
            Ok(moved) if moved.is_empty() => {}
            Ok(moved) => {
                tracing::info!(target: "entire::push", "staging refs changed under us, left alone: {moved:?}");
            }
            Err(e) => {
                // Keep the lock files: the next run tries again.
                tracing::info!(target: "entire::push", "cannot remove staging refs of a dead run yet: {e}");
                return Ok(());
            }
        }
    }
    claimed.into_iter().for_each(|(_, lock)| lock.remove());
    Ok(())
}

/// Take a run's lock without waiting: `None` when it is held (the run is alive, or another cleaner has it).
fn claim(common: &Path, run: &str) -> Option<RunLock> {
    let path = lock_path(common, run);
    // Staging refs whose run left no lock at all (its directory gone) are a dead run's too: a live run takes
    // its lock before it creates any.
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let file = open_lock(&path).ok()?;
    match file.try_lock() {
        Ok(()) if is_same(&file, &path) => Some(RunLock { path, _file: file }),
        Ok(()) | Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => None,
    }
}
