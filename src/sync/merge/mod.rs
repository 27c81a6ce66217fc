//! Merging a diverged shared ref with the remote's tip (SPEC §4 "Shared refs travel too"; reference
//! `entire-checkpoint-formats.md` §2.9, `entire-v2-and-attach.md` §2.12): the object side of the
//! fetch-and-merge recovery that [`crate::sync::shared::recover`] drives.
//!
//! One module per layout, pure functions over trees (they read and write objects, never refs):
//! - [`slots`]: which session goes into which slot when both sides wrote the same checkpoint (pure data);
//! - [`checkpoint`]: one checkpoint directory merged by session slot (root `metadata.json` re-aggregated) — a
//!   checkpoint of `/main`, of the legacy branch, or the root of a per-checkpoint ref — and the generic tree
//!   union;
//! - [`v2`]: `v2/main` and `v2/full/*` trees: union by checkpoint, the same checkpoint merged by slot, `/full`
//!   slots renumbered exactly as `/main`'s;
//! - [`legacy`]: the legacy branch: local-only checkpoint commits replayed onto the remote tip (upstream's
//!   recovery), a union merge commit when a replay conflicts.
//!
//! Invariants: nothing is ever dropped — every checkpoint of either side is in the result, and every session
//! (matched by `session_id`) of a checkpoint both sides wrote; when both sides changed the same session, the
//! local version wins (it is the recovering machine's latest write), and `/main` and `/full` take the same
//! side. The results are new objects only; moving refs is the caller's compare-and-swap.
//!
//! Failure modes: [`MergeError`] (an unreadable object, a failed `git rev-list`, a per-checkpoint ref whose
//! commit is not a checkpoint of its ID).

pub mod checkpoint;
pub mod legacy;
pub mod slots;
pub mod v2;

use crate::git::cmd::GitCmdError;
use crate::git::repo::RepoError;
use crate::store::StoreError;

/// Why a merge could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Git(#[from] GitCmdError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    RefName(#[from] crate::model::refname::RefNameError),
    /// One side of a per-checkpoint ref is not a checkpoint commit of that ID (nothing to merge by session).
    #[error("the {side} {name} is not a checkpoint commit ({why})")]
    NotACheckpoint {
        side: &'static str,
        name: String,
        why: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::git::repo::Repo;

    /// A fresh repository in a temporary directory (kept alive by the returned guard).
    pub fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().expect("tmp");
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .expect("git init");
        assert!(ok.success());
        let repo = Repo::discover(dir.path()).expect("repo");
        (dir, repo)
    }
}
