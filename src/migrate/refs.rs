//! Publishing migrated refs: one compare-and-swap rewrite of `packed-refs` for all of them.
//!
//! Why not a ref transaction per ref (or gix's packed transaction)? Both take one `<ref>.lock` file per ref:
//! 100k creates, renames and deletes, several seconds on a real disk, and a kill -9 in the middle leaves up to
//! 100k stale lock files that block the rerun. Here the whole batch costs one file write.
//!
//! The rewrite itself is [`crate::git::packedrefs`] (git's lock-file protocol on `packed-refs.lock`); this module
//! routes each write to it or, for a ref that exists as a loose file, to a normal ref transaction.
//!
//! Invariants:
//! - Compare-and-swap per ref: an update whose ref no longer has the expected value is not applied and is
//!   returned as a [`Conflict`]; the others still are (each checkpoint ref is independent).
//! - A ref that exists as a loose file is updated through a normal per-ref transaction instead (a loose ref
//!   shadows its packed entry). A loose ref that appears concurrently, after the check, is detected afterwards
//!   and reported as a [`Conflict`]: the concurrent writer's value stands, as if ours had lost the race.
//! - Crash safety: a kill at any point leaves either the old or the new `packed-refs`. A stale
//!   `packed-refs.lock` left by a killed migration is recognised by being the same file as our temporary link and
//!   removed by [`recover`] (called under the migration lock, so no other migration can own it); a lock that is
//!   not ours is never touched.
//!
//! - reftable (`extensions.refStorage = reftable`): no `packed-refs`; the batch is ONE `git update-ref --stdin`
//!   transaction instead, conflicts reported per ref the same way.
//!
//! Failure modes: [`RefsError`] names the file; a lock held by someone else past the timeout is
//! [`PackedRefsError::Locked`].

use std::path::Path;
use std::time::Duration;

pub use crate::git::packedrefs::Conflict;
use crate::git::packedrefs::{self, Mode, PackedRefs, PackedRefsError};
use crate::git::repo::{ObjectId, RefStorage, RefUpdate, Repo, RepoError};
use crate::model::refname::CHECKPOINT_PREFIX;

/// How long to wait for somebody else's `packed-refs.lock` unless `core.packedRefsTimeout` says otherwise
/// (git's own default is 1 s; a migration is rarer and longer, so it waits longer).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const TMP_NAME: &str = "entire-migrate-packed-refs.tmp";

/// Errors publishing refs.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    #[error(transparent)]
    Packed(#[from] PackedRefsError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One ref to set: `expected` is the value it must have now (`None`: must not exist).
#[derive(Debug, Clone)]
pub struct RefWrite {
    pub name: String,
    pub expected: Option<ObjectId>,
    pub new: ObjectId,
}

fn writer(common: &Path) -> PackedRefs {
    PackedRefs::new(common, common.join(TMP_NAME), LOCK_TIMEOUT)
}

/// The writer for publishing: waits `core.packedRefsTimeout` (milliseconds) when set, else [`LOCK_TIMEOUT`].
fn publisher(repo: &Repo, common: &Path) -> PackedRefs {
    let timeout = repo
        .config_string("core.packedRefsTimeout")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(LOCK_TIMEOUT, Duration::from_millis);
    PackedRefs::new(common, common.join(TMP_NAME), timeout)
}

/// Remove what a killed run may have left: our temporary link, and `packed-refs.lock` if it is that same file.
/// Only call while holding the migration lock.
pub fn recover(common_dir: &Path) -> Result<(), RefsError> {
    Ok(writer(common_dir).recover()?)
}

/// Every ref under `refs/entire/checkpoints/` with its value, read straight from `packed-refs` plus the few
/// loose refs (a loose ref overrides its packed entry, as in git). One sequential read instead of a ref-store
/// iteration: a no-op rerun over 100k refs spends most of its time here otherwise.
pub fn read_namespace(repo: &Repo) -> Result<Vec<(String, ObjectId)>, RefsError> {
    if repo.ref_storage() == RefStorage::Reftable {
        return Ok(repo.refs_with_prefix(CHECKPOINT_PREFIX)?);
    }
    let common = repo.common_dir();
    let loose = packedrefs::loose_refs(&common, CHECKPOINT_PREFIX);
    let mut out: Vec<(String, ObjectId)> = writer(&common)
        .read_prefix(CHECKPOINT_PREFIX)?
        .into_iter()
        .filter(|(name, _)| !loose.contains(name))
        .collect();
    for name in loose {
        if let Some(id) = repo.find_ref(&name)? {
            out.push((name, id));
        }
    }
    Ok(out)
}

/// Apply `writes`; returns the updates that lost a race (everything else is published).
pub fn apply(repo: &Repo, writes: &[RefWrite]) -> Result<Vec<Conflict>, RefsError> {
    if repo.ref_storage() == RefStorage::Reftable {
        return apply_via_git(repo, writes);
    }
    let common = repo.common_dir();
    let loose = packedrefs::loose_refs(&common, CHECKPOINT_PREFIX);
    let (via_loose, via_packed): (Vec<&RefWrite>, Vec<&RefWrite>) =
        writes.iter().partition(|w| loose.contains(&w.name));
    let mut conflicts = Vec::new();
    for w in via_loose {
        let update = RefUpdate {
            name: w.name.clone(),
            expected: w.expected,
            new: Some(w.new),
        };
        match repo.transaction(&[update], "entire-migrate") {
            Ok(()) => {}
            Err(RepoError::Conflict { .. }) => conflicts.push(Conflict {
                name: w.name.clone(),
                expected: w.expected,
                actual: repo.find_ref(&w.name)?,
            }),
            Err(e) => return Err(e.into()),
        }
    }
    if !via_packed.is_empty() {
        let changes: Vec<RefUpdate> = via_packed
            .iter()
            .map(|w| RefUpdate {
                name: w.name.clone(),
                expected: w.expected,
                new: Some(w.new),
            })
            .collect();
        let changes: Vec<&RefUpdate> = changes.iter().collect();
        conflicts.extend(publisher(repo, &common).update(&changes, Mode::EachRef)?);
        let now_loose = packedrefs::loose_refs(&common, CHECKPOINT_PREFIX);
        for w in via_packed.iter().filter(|w| now_loose.contains(&w.name)) {
            conflicts.push(Conflict {
                name: w.name.clone(),
                expected: w.expected,
                actual: repo.find_ref(&w.name)?,
            });
        }
    }
    Ok(conflicts)
}

/// Apply `writes` as one unit where the storage allows: returns the conflicts, and when there are any, nothing
/// the conflict check covered was written.
///
/// - reftable: one `git update-ref --stdin` transaction (atomic).
/// - files: refs that exist as loose files (e.g. `v2/main` after normal writes) go first, in one per-ref-lock
///   transaction; then everything else in ONE `packed-refs` rewrite in [`Mode::AllOrNothing`], which a kill
///   leaves either old or new (a stale lock of ours is removed by [`recover`]). So a kill can only separate
///   the loose refs (written first) from the packed ones; callers order their effects so that such a
///   prefix is resumable (the v2 migration: `/main` and `/full/current` before new archives).
pub fn apply_atomic(repo: &Repo, writes: &[RefWrite]) -> Result<Vec<Conflict>, RefsError> {
    let updates = |ws: &[&RefWrite]| -> Vec<RefUpdate> {
        ws.iter()
            .map(|w| RefUpdate {
                name: w.name.clone(),
                expected: w.expected,
                new: Some(w.new),
            })
            .collect()
    };
    let conflict_of = |name: &str| -> Result<Conflict, RefsError> {
        Ok(Conflict {
            name: name.to_string(),
            expected: writes
                .iter()
                .find(|w| w.name == name)
                .and_then(|w| w.expected),
            actual: repo.find_ref(name)?,
        })
    };
    let all: Vec<&RefWrite> = writes.iter().collect();
    if repo.ref_storage() == RefStorage::Reftable {
        return match repo.transaction(&updates(&all), "entire-migrate") {
            Ok(()) => Ok(Vec::new()),
            Err(RepoError::Conflict { name, .. }) => Ok(vec![conflict_of(&name)?]),
            Err(e) => Err(e.into()),
        };
    }
    let common = repo.common_dir();
    let loose = packedrefs::loose_refs(&common, CHECKPOINT_PREFIX);
    let (via_loose, via_packed): (Vec<&RefWrite>, Vec<&RefWrite>) =
        all.into_iter().partition(|w| loose.contains(&w.name));
    if !via_loose.is_empty() {
        match repo.transaction(&updates(&via_loose), "entire-migrate") {
            Ok(()) => {}
            Err(RepoError::Conflict { name, .. }) => return Ok(vec![conflict_of(&name)?]),
            Err(e) => return Err(e.into()),
        }
    }
    if via_packed.is_empty() {
        return Ok(Vec::new());
    }
    let changes = updates(&via_packed);
    let changes: Vec<&RefUpdate> = changes.iter().collect();
    let mut conflicts = publisher(repo, &common).update(&changes, Mode::AllOrNothing)?;
    let now_loose = packedrefs::loose_refs(&common, CHECKPOINT_PREFIX);
    for w in via_packed.iter().filter(|w| now_loose.contains(&w.name)) {
        conflicts.push(conflict_of(&w.name)?);
    }
    Ok(conflicts)
}

/// reftable: one `git update-ref --stdin` transaction for all writes. A lost race makes git refuse the whole
/// transaction; the refs that moved are then reported as conflicts and the rest retried (each ref is
/// independent, as on the files backend).
fn apply_via_git(repo: &Repo, writes: &[RefWrite]) -> Result<Vec<Conflict>, RefsError> {
    let mut pending: Vec<&RefWrite> = writes.iter().collect();
    let mut conflicts = Vec::new();
    while !pending.is_empty() {
        let updates: Vec<RefUpdate> = pending
            .iter()
            .map(|w| RefUpdate {
                name: w.name.clone(),
                expected: w.expected,
                new: Some(w.new),
            })
            .collect();
        match repo.transaction(&updates, "entire-migrate") {
            Ok(()) => break,
            Err(RepoError::Conflict { .. }) => {
                let current: std::collections::HashMap<String, ObjectId> = repo
                    .refs_with_prefix(CHECKPOINT_PREFIX)?
                    .into_iter()
                    .collect();
                let before = pending.len();
                pending.retain(|w| {
                    let actual = current.get(&w.name).copied();
                    if actual == w.expected {
                        return true;
                    }
                    conflicts.push(Conflict {
                        name: w.name.clone(),
                        expected: w.expected,
                        actual,
                    });
                    false
                });
                if pending.len() == before {
                    return Err(RefsError::Repo(RepoError::Rejected {
                        message: "git refused the ref transaction although every ref had its expected value".into(),
                    }));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(conflicts)
}
