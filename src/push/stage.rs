//! One push run's checkpoint batch: drain the queue, stage the refs under a per-run namespace, account for the
//! result, clean up.
//!
//! Invariants:
//! - The queue is only read here ([`Queue::drain`] does not remove); an entry leaves it only through
//!   [`Queue::remove_if_unchanged`] after the remote confirmed the ref at the value that was staged, or when the
//!   ref no longer exists locally (compared under the queue lock, so a concurrent write keeps it queued).
//! - Staging refs `refs/entire/push-queue/<run>/<shard>/<id>` are created in ONE transaction, each expected
//!   not to exist, and deleted in one transaction (expected at their staged value) when the run ends.
//! - When the queue covers the whole local checkpoint namespace (typical after a migration), the namespace
//!   itself is pushed with the same glob and nothing is staged: the same push without creating and deleting
//!   one staging ref per checkpoint.
//! - A run holds an exclusive lock on `<common-dir>/entire-push-runs/<run>.lock` while its staging refs
//!   exist. A run whose lock can be taken is dead (killed mid-push); its staging refs are deleted by the next
//!   run. Live concurrent runs are never disturbed.
//!
//! Failure modes: [`StageError`] names the ref, queue file or lock at fault. None of them may fail the user's
//! push: callers log them and push without checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::queue::{Queue, QueueError};
use crate::refname::{self, CHECKPOINT_PREFIX, STAGING_PREFIX};
use crate::repo::{ObjectId, RefUpdate, Repo, RepoError};

use super::status::RefStatus;

/// Directory (in the git common dir) holding one lock file per live push run.
pub const RUNS_DIR: &str = "entire-push-runs";

/// Default cap on checkpoints per push (`entire.pushBatchSize`); the rest waits for the next push.
pub const DEFAULT_BATCH_SIZE: usize = 25_000;

/// From this many queued refs on, check whether the queue covers the whole local namespace (then no staging
/// is needed); below it, staging is cheaper than listing every local checkpoint ref.
const DIRECT_CHECK_FROM: usize = 256;

/// Errors while preparing or finishing a batch.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("cannot use push-run lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One queued checkpoint ref in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The checkpoint ref, e.g. `refs/entire/checkpoints/c4/a3b2c4d5e6c4`; also the push destination.
    pub name: String,
    /// Its local value when it was staged.
    pub value: ObjectId,
    /// `refs/entire/push-queue/<run>/…`.
    pub staging: String,
}

/// What happened to the checkpoints of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// Landed (new or updated on the remote) and, unless dry-run, dequeued.
    pub pushed: usize,
    /// Already on the remote at this value; dequeued.
    pub up_to_date: usize,
    /// Still queued, with the reason.
    pub kept: Vec<(String, String)>,
    /// Queue entries dropped because the ref no longer exists locally.
    pub stale: usize,
    /// Entries left for a later push because the batch was full.
    pub deferred: usize,
    pub dry_run: bool,
}

impl CheckpointSummary {
    /// The one summary line for stderr, or `None` when no checkpoint was involved.
    pub fn line(&self, destination: &str) -> Option<String> {
        let total = self.pushed + self.up_to_date + self.kept.len();
        if total == 0 {
            return None;
        }
        let verb = if self.dry_run { "would push" } else { "pushed" };
        let mut line = format!(
            "entire: {verb} {} checkpoint(s) to {destination}",
            self.pushed
        );
        if self.up_to_date > 0 {
            line.push_str(&format!(", {} already there", self.up_to_date));
        }
        if !self.kept.is_empty() {
            let reasons: BTreeSet<&str> = self.kept.iter().map(|(_, why)| why.as_str()).collect();
            let reasons: Vec<&str> = reasons.into_iter().take(3).collect();
            line.push_str(&format!(
                ", {} stay queued ({})",
                self.kept.len(),
                reasons.join("; ")
            ));
        }
        if self.deferred > 0 {
            line.push_str(&format!(", {} deferred to the next push", self.deferred));
        }
        Some(line)
    }
}

/// A prepared batch: staged refs plus the lock that marks the run alive.
pub struct Batch<'r> {
    repo: &'r Repo,
    queue: Queue,
    run: String,
    lock_path: PathBuf,
    lock: Option<File>,
    entries: Vec<Staged>,
    stale: usize,
    deferred: usize,
    /// The queue covers every local checkpoint ref at its current value: push the namespace itself.
    direct: bool,
}

impl<'r> Batch<'r> {
    /// Drain the queue, drop entries whose ref vanished, and stage the rest (at most `limit`) in one transaction.
    pub fn prepare(repo: &'r Repo, limit: usize) -> Result<Self, StageError> {
        let common = repo.common_dir();
        remove_dead_runs(repo, &common)?;
        let queue = Queue::new(&common);
        let queued = queue.drain()?;
        let mut entries = Vec::new();
        let mut vanished = Vec::new();
        let mut deferred = 0;
        let run = ulid::Ulid::new().to_string();
        for name in queued {
            match repo.find_ref(&name)? {
                None => vanished.push((name, None)),
                Some(_) if entries.len() >= limit => deferred += 1,
                Some(value) => {
                    let Some(staging) = refname::staging_ref(&run, &name) else {
                        continue;
                    };
                    entries.push(Staged {
                        name,
                        value,
                        staging,
                    });
                }
            }
        }
        let stale = if vanished.is_empty() {
            0
        } else {
            let kept = queue.remove_if_unchanged(&vanished, |r| repo.find_ref(r).ok())?;
            vanished.len() - kept.len()
        };
        let lock_path = common.join(RUNS_DIR).join(format!("{run}.lock"));
        let direct = deferred == 0
            && entries.len() >= DIRECT_CHECK_FROM
            && covers_namespace(repo, &entries)?;
        let mut batch = Batch {
            repo,
            queue,
            run,
            lock_path,
            lock: None,
            entries,
            stale,
            deferred,
            direct,
        };
        if !batch.entries.is_empty() && !batch.direct {
            batch.lock = Some(lock_run(&batch.lock_path)?);
            let updates: Vec<RefUpdate> = batch
                .entries
                .iter()
                .map(|e| RefUpdate {
                    name: e.staging.clone(),
                    expected: None,
                    new: Some(e.value),
                })
                .collect();
            repo.transaction(&updates, "entire: stage checkpoints for push")?;
        }
        Ok(batch)
    }

    /// The staged refs.
    pub fn entries(&self) -> &[Staged] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ONE refspec that pushes every staged ref, fast-forward only (no `+`).
    pub fn glob(&self) -> String {
        if self.direct {
            format!("{CHECKPOINT_PREFIX}*:{CHECKPOINT_PREFIX}*")
        } else {
            format!("{STAGING_PREFIX}{}/*:{CHECKPOINT_PREFIX}*", self.run)
        }
    }

    /// Dequeue what landed (unless `dry_run`), keep the rest with its reason.
    pub fn account(
        &self,
        statuses: &BTreeMap<String, RefStatus>,
        dry_run: bool,
        missing_reason: &str,
    ) -> Result<CheckpointSummary, StageError> {
        let mut summary = CheckpointSummary {
            stale: self.stale,
            deferred: self.deferred,
            dry_run,
            ..Default::default()
        };
        let mut landed = Vec::new();
        for e in &self.entries {
            match statuses.get(&e.name) {
                Some(RefStatus::UpToDate) => {
                    summary.up_to_date += 1;
                    landed.push((e.name.clone(), e.value));
                }
                Some(s) if s.landed() => {
                    summary.pushed += 1;
                    landed.push((e.name.clone(), e.value));
                }
                Some(s) => summary.kept.push((e.name.clone(), s.reason())),
                None => summary
                    .kept
                    .push((e.name.clone(), missing_reason.to_string())),
            }
        }
        for (name, why) in &summary.kept {
            tracing::info!(target: "entire::push", checkpoint = %name, reason = %why, "checkpoint stays queued");
        }
        if !dry_run && !landed.is_empty() {
            let moved = self
                .queue
                .remove_if_unchanged(&landed, |r| self.repo.find_ref(r).ok().flatten())?;
            for name in moved {
                tracing::info!(target: "entire::push", checkpoint = %name, "changed during the push; stays queued");
            }
        }
        Ok(summary)
    }

    /// Delete this run's staging refs and release its lock.
    pub fn finish(mut self) -> Result<(), StageError> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<(), StageError> {
        if self.lock.is_none() {
            return Ok(());
        }
        let updates: Vec<RefUpdate> = self
            .entries
            .iter()
            .map(|e| RefUpdate {
                name: e.staging.clone(),
                expected: Some(e.value),
                new: None,
            })
            .collect();
        let result = self.repo.transaction(&updates, "entire: push finished");
        if result.is_ok() {
            let _ = std::fs::remove_file(&self.lock_path);
        }
        self.lock = None;
        result.map_err(StageError::from)
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(target: "entire::push", "cannot delete staging refs of run {}: {e}", self.run);
        }
    }
}

/// True if `entries` are exactly the local refs under the checkpoint namespace, at their current values, so
/// that pushing the namespace itself is the same push as pushing the staged copies. (A ref written while the
/// push runs may then travel too; it stays queued and is confirmed by the next push.)
fn covers_namespace(repo: &Repo, entries: &[Staged]) -> Result<bool, StageError> {
    let all = repo.refs_with_prefix(CHECKPOINT_PREFIX)?;
    if all.len() != entries.len() {
        return Ok(false);
    }
    let queued: std::collections::HashMap<&str, ObjectId> =
        entries.iter().map(|e| (e.name.as_str(), e.value)).collect();
    Ok(all
        .iter()
        .all(|(name, value)| queued.get(name.as_str()) == Some(value)))
}

fn lock_run(path: &Path) -> Result<File, StageError> {
    let err = |source| StageError::Lock {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(err)?;
    f.lock().map_err(err)?;
    Ok(f)
}

/// Delete staging refs of runs whose process is gone (their lock can be taken).
fn remove_dead_runs(repo: &Repo, common: &Path) -> Result<(), StageError> {
    let staged = repo.refs_with_prefix(STAGING_PREFIX)?;
    if staged.is_empty() {
        return Ok(());
    }
    let mut by_run: BTreeMap<String, Vec<(String, ObjectId)>> = BTreeMap::new();
    for (name, value) in staged {
        let run = name[STAGING_PREFIX.len()..]
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        by_run.entry(run).or_default().push((name, value));
    }
    let mut updates = Vec::new();
    let mut dead_locks = Vec::new();
    for (run, refs) in by_run {
        let path = common.join(RUNS_DIR).join(format!("{run}.lock"));
        let alive = match File::open(&path) {
            Ok(f) => matches!(f.try_lock(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        };
        if alive {
            continue;
        }
        tracing::info!(target: "entire::push", run = %run, refs = refs.len(), "removing staging refs of a dead push run");
        updates.extend(refs.into_iter().map(|(name, value)| RefUpdate {
            name,
            expected: Some(value),
            new: None,
        }));
        dead_locks.push(path);
    }
    if !updates.is_empty() {
        // A run that finished between our listing and now already deleted its refs; that is not an error.
        if let Err(e) = repo.transaction(&updates, "entire: remove staging refs of a dead push run")
        {
            tracing::info!(target: "entire::push", "cannot remove staging refs of a dead run yet: {e}");
            return Ok(());
        }
    }
    for p in dead_locks {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
