//! One push run's checkpoint batch: drain the queue, stage the refs under a per-run namespace, account for the
//! result, clean up.
//!
//! Invariants:
//! - The queue is only read here ([`Queue::drain`] does not remove); an entry leaves it only through
//!   [`Queue::remove_if_unchanged`] after the remote confirmed the ref at the value that was staged, or when the
//!   ref no longer exists locally (compared under the queue lock, so a concurrent write keeps it queued).
//! - Staging refs `refs/entire/push-queue/<run>/<shard>/<id>` are created in ONE compare-and-swap step, each
//!   expected not to exist, and deleted in one step (expected at their staged value) when the run ends; both
//!   are one rewrite of `packed-refs` ([`super::runs`]).
//! - When the queue covers the whole local checkpoint namespace (typical after a migration), the namespace
//!   itself is pushed with the same glob and nothing is staged: the same push without creating and deleting
//!   one staging ref per checkpoint.
//! - A run holds an exclusive lock on `<common-dir>/entire-push-runs/<run>.lock` while its staging refs
//!   exist. A run whose lock can be taken is dead (killed mid-push); its staging refs are deleted by the next
//!   run ([`super::runs::remove_dead`]). Live concurrent runs are never disturbed.
//!
//! Failure modes: [`StageError`] names the ref, queue file or lock at fault. None of them may fail the user's
//! push: callers log them and push without checkpoints.

use std::collections::{BTreeMap, BTreeSet};

use crate::git::repo::{ObjectId, Repo};
use crate::model::refname::{self, CHECKPOINT_PREFIX, STAGING_PREFIX};
use crate::store::queue::Queue;

pub use super::error::StageError;
use super::runs::{self, RunLock};
use super::status::RefStatus;

pub use super::runs::RUNS_DIR;

/// Default cap on checkpoints per push (`entire.pushBatchSize`); the rest waits for the next push.
pub const DEFAULT_BATCH_SIZE: usize = 25_000;

/// From this many queued refs on, check whether the queue covers the whole local namespace (then no staging
/// is needed); below it, staging is cheaper than listing every local checkpoint ref.
const DIRECT_CHECK_FROM: usize = 256;

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
            let reasons: BTreeSet<&str> = self
                .kept
                .iter()
                .map(|(_, why)| match why.trim() {
                    "" => "the remote gave no reason",
                    why => why,
                })
                .collect();
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
    lock: Option<RunLock>,
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
        runs::remove_dead(repo)?;
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
        let direct = deferred == 0
            && entries.len() >= DIRECT_CHECK_FROM
            && covers_namespace(repo, &entries)?;
        let mut batch = Batch {
            repo,
            queue,
            run,
            lock: None,
            entries,
            stale,
            deferred,
            direct,
        };
        if !batch.entries.is_empty() && !batch.direct {
            batch.lock = Some(RunLock::acquire(&common, &batch.run)?);
            let staged: Vec<(String, ObjectId)> = batch
                .entries
                .iter()
                .map(|e| (e.staging.clone(), e.value))
                .collect();
            runs::create(repo, &batch.run, &staged)?;
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
        let Some(lock) = self.lock.take() else {
            return Ok(());
        };
        let staged = self
            .entries
            .iter()
            .map(|e| (e.staging.clone(), e.value))
            .collect();
        runs::finish(self.repo, &self.run, lock, staged)
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

#[cfg(test)]
mod tests {
    use super::CheckpointSummary;

    #[test]
    fn summary_never_ends_in_an_empty_reason() {
        let s = CheckpointSummary {
            pushed: 1,
            kept: vec![("a".into(), String::new()), ("b".into(), " ".into())],
            ..CheckpointSummary::default()
        };
        let line = s.line("origin").expect("a line");
        assert!(!line.contains("()"), "{line}");
        assert!(
            line.ends_with("2 stay queued (the remote gave no reason)"),
            "{line}"
        );
    }
}
