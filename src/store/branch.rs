//! The legacy branch store: `refs/heads/entire/checkpoints/v1`, checkpoints at `<id[0:2]>/<id[2:]>/`.
//!
//! Invariants:
//! - Append-only: every write is a new commit on the current tip (`Checkpoint: <id>` plus trailers); a missing
//!   branch starts with an orphan "Initialize sessions branch" commit on the empty tree, as upstream does.
//! - Compare-and-swap against the tip the commit was built on; lost races rebuild from the new tip.
//! - Session paths in the root `metadata.json` are absolute from the branch root (`/ab/cdef…/0/full.jsonl`).
//!
//! Failure modes: [`super::StoreError`] names the branch or checkpoint.

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo};
use crate::model::checkpoint::{self, Layout, SessionInput};
use crate::model::id::CheckpointId;
use crate::model::refname::LEGACY_BRANCH;
use crate::store::settings::Backend;

use super::{backoff, Located, StoreError, MAX_ATTEMPTS};

/// Message of the branch's root commit.
pub const INIT_MESSAGE: &str = "Initialize sessions branch";

/// Tip of the legacy branch.
pub fn tip(repo: &Repo) -> Result<Option<ObjectId>, StoreError> {
    Ok(repo.find_ref(LEGACY_BRANCH)?)
}

/// Find a checkpoint on the legacy branch.
pub fn locate(repo: &Repo, id: &CheckpointId) -> Result<Option<Located>, StoreError> {
    let Some(commit) = tip(repo)? else {
        return Ok(None);
    };
    let root = repo.commit_tree(commit)?;
    Ok(repo
        .lookup(root, &id.v1_path())?
        .filter(|e| e.is_tree)
        .map(|e| Located {
            backend: Backend::GitBranch,
            ref_name: LEGACY_BRANCH.to_string(),
            commit,
            tree: e.id,
        }))
}

/// Append a commit writing `sessions` into checkpoint `id`; returns the new tip.
pub fn write(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<ObjectId, StoreError> {
    let path = id.v1_path();
    for attempt in 0..MAX_ATTEMPTS {
        let old_tip = tip(repo)?;
        let (parent, root) = match old_tip {
            Some(t) => (t, repo.commit_tree(t)?),
            None => {
                let empty = repo.write_tree(&[])?;
                (
                    repo.write_commit(empty, &[], who, who, &format!("{INIT_MESSAGE}\n"))?,
                    empty,
                )
            }
        };
        let base = repo
            .lookup(root, &path)?
            .filter(|e| e.is_tree)
            .map(|e| e.id);
        let built = checkpoint::build(repo, id, base, sessions, Layout::Branch, who)?;
        let new_root = repo.edit_tree(Some(root), |ed| ed.put_tree(&path, built.tree))?;
        let commit = repo.write_commit(new_root, &[parent], who, who, &built.message)?;
        let update = RefUpdate {
            name: LEGACY_BRANCH.to_string(),
            expected: old_tip,
            new: Some(commit),
        };
        match repo.transaction(&[update], &format!("entire: checkpoint {id}")) {
            Ok(()) => return Ok(commit),
            Err(e) if e.is_transient() => backoff(attempt),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::TooManyConflicts {
        what: LEGACY_BRANCH.to_string(),
    })
}
