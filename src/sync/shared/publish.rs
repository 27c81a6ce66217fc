//! Publishing a locally rotated generation (reference `entire-v2-and-attach.md` §2.9): after a rotation the
//! local `v2/full/current` restarts as an orphan, so its push is rejected as diverged; instead of a merge, the
//! pending archives go out first and the reset `current` replaces the remote's with a lease on the exact remote
//! value — in ONE atomic push, so the remote never loses its old generation without the archive that holds it.
//!
//! Decisions ([`plan`]), given the local `current`, its fetched remote tip and the fetched remote tips of the
//! pending archives:
//! - each pending archive goes out as is when the remote lacks it (or holds an ancestor); when the remote holds
//!   another generation under the same name (it rotated too), ours is folded into it (union by checkpoint,
//!   commit [remote archive, ours], `Merge local checkpoints into archived generation`) — never overwritten;
//!   such an archive may exceed the generation size;
//! - `current` replaces the remote's with a lease when the remote's is absent or contained in an archive;
//!   when the remote went on in the archived generation, that is first folded into the newest archive;
//! - when the remote's `current` is a generation of its own (it rotated too, or already holds our reset), the
//!   ordinary union merge applies ([`Current::Merge`]), pushed after the archives.
//!
//! An archive name that exists on the remote with other content is rejected by the push itself (no `+`, no
//! lease on archives): never overwritten. Pending records are removed only after the push landed.

use std::collections::BTreeMap;

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo};
use crate::model::refname::V2_FULL_CURRENT;
use crate::store::v2::pending::{Pending, Publication};
use crate::sync::merge::legacy::is_ancestor;
use crate::sync::merge::{v2, MergeError};

/// Message of an archive that absorbed the remote's later commits of the same generation.
pub const FOLD_MESSAGE: &str = "Merge remote checkpoints into archived generation\n";
/// Message of a remote archive that absorbed the local generation of the same name (upstream's).
pub const FOLD_LOCAL_MESSAGE: &str = "Merge local checkpoints into archived generation\n";

/// How the rotated `current` goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// Replaces the remote's with this `--force-with-lease` value (`<ref>:<expected>`), after the archives.
    Lease(String),
    /// The remote's `current` is a generation of its own (it rotated too, or already holds our reset): the
    /// ordinary union merge, pushed fast-forward after the archives.
    Merge,
}

/// What to publish.
#[derive(Debug)]
pub struct Publish {
    /// Local ref moves (archives that absorbed remote content).
    pub updates: Vec<RefUpdate>,
    /// Archives to push, at their local values after `updates`.
    pub archives: Vec<(String, ObjectId)>,
    pub current: Current,
    /// Records to remove once the archives (and a leased `current`) landed.
    pub records: Vec<Publication>,
}

/// The decision for `current` when pending publications exist.
#[derive(Debug)]
pub enum Decision {
    NotRotated,
    Publish(Publish),
}

/// Names of the archives of pending publications.
pub fn pending_archives(repo: &Repo) -> Vec<String> {
    let mut out: Vec<String> = Pending::new(&repo.common_dir())
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.archive_ref_name)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Decide how to publish pending rotations: `local` is local `current`, `remote` the fetched remote tip of
/// `current`, `remote_archives` the fetched remote tips of the pending archives.
pub fn plan(
    repo: &Repo,
    dir: &std::path::Path,
    local: ObjectId,
    remote: Option<ObjectId>,
    remote_archives: &BTreeMap<String, Option<ObjectId>>,
    who: &Identity,
) -> Result<Decision, MergeError> {
    let records = Pending::new(&repo.common_dir())
        .list()
        .map_err(crate::store::StoreError::from)?;
    if records.is_empty() {
        return Ok(Decision::NotRotated);
    }
    let resets = local_resets(repo, dir, &records, local)?;
    let Archives {
        mut updates,
        list: mut archives,
        remote_has,
    } = archives_to_publish(repo, dir, remote_archives, who)?;
    let current = match remote {
        None => Current::Lease(format!("{V2_FULL_CURRENT}:")),
        Some(_) if resets.is_empty() => Current::Merge,
        Some(r) => {
            let mut ours_already = false;
            for reset in &resets {
                ours_already |= is_ancestor(dir, *reset, r)?;
            }
            let mut covered = false;
            for a in archives
                .iter()
                .map(|(_, v)| *v)
                .chain(remote_has.iter().copied())
            {
                covered |= is_ancestor(dir, r, a)?;
            }
            let newest = archives.last().cloned();
            match newest {
                _ if ours_already => Current::Merge,
                _ if covered => Current::Lease(format!("{V2_FULL_CURRENT}:{r}")),
                Some((name, value)) if shares_history(dir, r, value)? => {
                    // The remote went on in the archived generation: fold that into the newest archive.
                    let tree = v2::merge_full(
                        repo,
                        repo.commit_tree(value)?,
                        Some(repo.commit_tree(r)?),
                        &v2::Plans::new(),
                    )?;
                    let folded = repo.write_commit(tree, &[value, r], who, who, FOLD_MESSAGE)?;
                    match updates.iter_mut().find(|u| u.name == name) {
                        Some(u) => u.new = Some(folded),
                        None => updates.push(RefUpdate {
                            name: name.clone(),
                            expected: Some(value),
                            new: Some(folded),
                        }),
                    }
                    if let Some(a) = archives.iter_mut().find(|(n, _)| *n == name) {
                        a.1 = folded;
                    }
                    Current::Lease(format!("{V2_FULL_CURRENT}:{r}"))
                }
                // The remote rotated too: its current is a new generation like ours.
                _ => Current::Merge,
            }
        }
    };
    Ok(Decision::Publish(Publish {
        updates,
        archives,
        current,
        records,
    }))
}

/// The reset roots of `records` (the first commit of each new `current` generation) that `local` contains.
fn local_resets(
    repo: &Repo,
    dir: &std::path::Path,
    records: &[Publication],
    local: ObjectId,
) -> Result<Vec<ObjectId>, MergeError> {
    let mut resets = Vec::new();
    for r in records
        .iter()
        .filter(|r| !r.reset_full_current_root_hash.is_empty())
    {
        if let Ok(reset) = ObjectId::from_hex(r.reset_full_current_root_hash.as_bytes()) {
            if repo.has_object(reset) && is_ancestor(dir, reset, local)? {
                resets.push(reset);
            }
        }
    }
    Ok(resets)
}

/// The pending archives to push (folded into the remote's archive of the same name when it holds another
/// generation), the local ref moves that takes, and the remote archive tips seen.
fn archives_to_publish(
    repo: &Repo,
    dir: &std::path::Path,
    remote_archives: &BTreeMap<String, Option<ObjectId>>,
    who: &Identity,
) -> Result<Archives, MergeError> {
    let mut updates = Vec::new();
    let mut archives: Vec<(String, ObjectId)> = Vec::new();
    let mut remote_has = Vec::new();
    for name in pending_archives(repo) {
        let Some(mine) = repo.find_ref(&name)? else {
            continue;
        };
        let theirs = remote_archives.get(&name).copied().flatten();
        let value = match theirs {
            None => mine,
            Some(t) if is_ancestor(dir, t, mine)? => mine,
            Some(t) if is_ancestor(dir, mine, t)? => t,
            Some(t) => {
                // The remote holds another generation under this name: fold ours into it, never overwrite.
                let tree = v2::merge_full(
                    repo,
                    repo.commit_tree(mine)?,
                    Some(repo.commit_tree(t)?),
                    &v2::Plans::new(),
                )?;
                repo.write_commit(tree, &[t, mine], who, who, FOLD_LOCAL_MESSAGE)?
            }
        };
        if value != mine {
            updates.push(RefUpdate {
                name: name.clone(),
                expected: Some(mine),
                new: Some(value),
            });
        }
        remote_has.extend(theirs);
        archives.push((name, value));
    }
    Ok(Archives {
        updates,
        list: archives,
        remote_has,
    })
}

/// What [`archives_to_publish`] found.
struct Archives {
    updates: Vec<RefUpdate>,
    list: Vec<(String, ObjectId)>,
    remote_has: Vec<ObjectId>,
}

/// True when `a` and `b` have a common ancestor.
fn shares_history(dir: &std::path::Path, a: ObjectId, b: ObjectId) -> Result<bool, MergeError> {
    let mut cmd = crate::git::cmd::git();
    cmd.arg("-C")
        .arg(dir)
        .args(["merge-base", &a.to_string(), &b.to_string()]);
    Ok(crate::git::cmd::output(&mut cmd)?.status.success())
}

/// Remove the published records (best effort: a record left behind is found stale by the next push).
pub fn done(repo: &Repo, records: &[Publication]) {
    let pending = Pending::new(&repo.common_dir());
    for r in records {
        if let Err(e) = pending.remove(r) {
            tracing::debug!(target: "entire::push", "cannot remove a pending publication: {e}");
        }
    }
}

/// After a push where `current` landed: remove the records whose archive landed too.
pub fn landed(repo: &Repo, archives: &[&str]) {
    let records: Vec<Publication> = Pending::new(&repo.common_dir())
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| archives.contains(&r.archive_ref_name.as_str()))
        .collect();
    done(repo, &records);
}
