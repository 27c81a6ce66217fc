//! The per-checkpoint ref store: `refs/entire/checkpoints/<shard>/<id>` → commit whose root tree is the checkpoint.
//!
//! Invariants:
//! - The first write is an orphan commit; later writes are commits on top of the current tip.
//! - Lookups try the canonical spelling, then the other-case shard; writes go through the spelling that exists.
//! - Every update is compare-and-swap against the tip the new commit was built on; a lost race is retried by
//!   rebuilding from the new tip (at most [`MAX_ATTEMPTS`] times), never by overwriting.
//! - A write whose tree equals the current tip's tree makes no new commit.
//!
//! Failure modes: [`super::StoreError`] variants name the checkpoint and ref.

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo};
use crate::model::checkpoint::{self, Layout, SessionInput};
use crate::model::id::CheckpointId;
use crate::model::refname;

use super::{backoff, Located, StoreError, MAX_ATTEMPTS};
use crate::store::settings::Backend;

/// Find a checkpoint's ref under either spelling.
pub fn locate(repo: &Repo, id: &CheckpointId) -> Result<Option<Located>, StoreError> {
    let names = refname::spellings(id);
    let values = repo.find_refs(&names)?;
    for (name, value) in names.into_iter().zip(values) {
        if let Some(commit) = value {
            let tree = repo.commit_tree(commit)?;
            return Ok(Some(Located {
                backend: Backend::GitRefs,
                ref_name: name,
                commit,
                tree,
            }));
        }
    }
    Ok(None)
}

/// Outcome of a ref-store write.
#[derive(Debug, Clone)]
pub struct Written {
    pub ref_name: String,
    pub commit: ObjectId,
    /// False when the tree was unchanged and no commit was made.
    pub changed: bool,
}

/// Create or update checkpoint `id` with `sessions`. `seed` is a tree to start from when the ref does not
/// exist yet (e.g. the checkpoint's subtree on the legacy branch), so no session is lost.
pub fn write(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    seed: Option<ObjectId>,
    who: &Identity,
) -> Result<Written, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let current = locate(repo, id)?;
        let (name, base_tree, parent) = match &current {
            Some(l) => (l.ref_name.clone(), Some(l.tree), Some(l.commit)),
            None => (refname::ref_name(id), seed, None),
        };
        let built = checkpoint::build(repo, id, base_tree, sessions, Layout::Refs, who)?;
        if let Some(l) = current.as_ref().filter(|l| l.tree == built.tree) {
            return Ok(Written {
                ref_name: l.ref_name.clone(),
                commit: l.commit,
                changed: false,
            });
        }
        let parents: Vec<ObjectId> = parent.into_iter().collect();
        let commit = repo.write_commit(built.tree, &parents, who, who, &built.message)?;
        let update = RefUpdate {
            name: name.clone(),
            expected: parent,
            new: Some(commit),
        };
        match repo.transaction(&[update], &format!("entire: checkpoint {id}")) {
            Ok(()) => {
                return Ok(Written {
                    ref_name: name,
                    commit,
                    changed: true,
                })
            }
            Err(e) if e.is_transient() => backoff(attempt),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::TooManyConflicts {
        what: refname::ref_name(id),
    })
}
