//! `git entire attach`: record a session that ran outside the hooks and link it to a commit (seed 004).
//!
//! Steps, in order; nothing is written before every check passed:
//! 1. [`session::prepare`]: read and validate the transcript, analyse it, redact secrets.
//! 2. [`link::target`]: the target commit (default HEAD). Its last `Entire-Checkpoint` trailer names the
//!    checkpoint the session joins. That checkpoint must be readable — local, else fetched lazily
//!    ([`crate::sync::lazy`]); if it exists nowhere reachable, attach refuses ([`AttachError::Missing`]): writing a
//!    fresh checkpoint under that ID would overwrite a teammate's data on push.
//! 3. The same session with the same (redacted) bytes already in that checkpoint → nothing is written.
//! 4. The write goes through the rollout ([`crate::store::write`]): primary and mirrors, refs queued for push
//!    before it returns. A checkpoint that exists only on the legacy branch is carried whole into the ref store
//!    first by the store itself, so no partial copy is ever made.
//! 5. A new checkpoint is linked by amending an unpushed HEAD's message (after the caller's confirmation);
//!    otherwise the caller is told which trailer to add and why nothing was rewritten.
//!
//! Failure modes: [`AttachError`] names the input, revision or checkpoint at fault.

pub mod link;
pub mod session;

use std::path::PathBuf;

use crate::git::cmd::GitCmdError;
use crate::git::repo::{Identity, Repo, RepoError};
use crate::model::checkpoint::CheckpointError;
use crate::model::id::CheckpointId;
use crate::model::metadata::SessionMetadata;
use crate::model::transcript;
use crate::model::validate::InvalidId;
use crate::store::settings::Rollout;
use crate::store::{self, Located, StoreError};
use crate::sync::lazy::{self, LazyError, Lookup};

pub use link::Target;
pub use session::{Prepared, Source};

/// Why attach refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("repository has no commits yet: make an initial commit before running attach")]
    NoCommits,
    #[error("not a commit: {0}")]
    BadRevision(String),
    #[error("checkpoint {id} referenced by commit {commit} is not available locally{where_}; writing a fresh checkpoint under that ID would overwrite the original session data on push")]
    Missing {
        id: CheckpointId,
        commit: String,
        /// ` and not on the remote <url>` or ` and there is no remote to fetch it from`.
        where_: String,
    },
    #[error("cannot amend the commit: {0}")]
    Amend(String),
    #[error(transparent)]
    Git(#[from] GitCmdError),
    #[error(transparent)]
    Lazy(#[from] LazyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Whether the caller agrees to amend HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// No, with the reason to tell the user (e.g. "no terminal to ask on; rerun with --force").
    No(String),
}

/// How the commit ended up linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// The commit already named the checkpoint (the session joined it).
    Existing,
    /// HEAD was amended: old and new commit IDs.
    Amended { old: String, new: String },
    /// Nothing was rewritten; the user should add the trailer themselves, for this reason.
    Manual { reason: String },
}

/// What attach did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub session_id: String,
    pub id: CheckpointId,
    /// True when a new checkpoint was created (false: added to the commit's checkpoint).
    pub created: bool,
    /// True when the checkpoint already held this session with the same bytes (nothing written).
    pub unchanged: bool,
    pub linked: Linked,
    pub target: Target,
    /// Mirror failures (the write itself succeeded).
    pub warnings: Vec<String>,
    pub prepared: Prepared,
}

/// What to do, besides the session itself.
pub struct Request<'a> {
    /// `--commit`; default HEAD.
    pub commit: Option<&'a str>,
    /// `--no-amend`: never touch history.
    pub no_amend: bool,
}

/// Attach `prepared` to the target commit; `confirm` is asked before HEAD is amended.
pub fn attach(
    repo: &Repo,
    rollout: Rollout,
    prepared: Prepared,
    req: &Request,
    who: &Identity,
    confirm: &mut dyn FnMut(&Target, &CheckpointId) -> Answer,
) -> Result<Outcome, AttachError> {
    let dir = repo.workdir().unwrap_or_else(|| repo.git_dir());
    let target = link::target(&dir, req.commit)?;
    let existing = target.linked_checkpoint();
    if let Some(id) = &existing {
        let found = match lazy::find_or_fetch(repo, rollout, id)? {
            Lookup::Found(found) => found,
            Lookup::NotOnRemote => {
                return Err(missing(id, &target, " or on the checkpoint remote"))
            }
            Lookup::NoRemote => {
                return Err(missing(
                    id,
                    &target,
                    ", and there is no remote to fetch it from",
                ))
            }
        };
        if holds_session(repo, id, &found, &prepared)? {
            return Ok(outcome(
                id.clone(),
                false,
                true,
                Linked::Existing,
                target,
                vec![],
                prepared,
            ));
        }
    }
    let report = store::write(
        repo,
        rollout,
        existing.clone(),
        std::slice::from_ref(&prepared.session),
        who,
    )?;
    let id = report.id.clone();
    if existing.is_some() {
        return Ok(outcome(
            id,
            false,
            false,
            Linked::Existing,
            target,
            report.warnings,
            prepared,
        ));
    }
    let linked = link_new(&dir, &target, &id, req, confirm)?;
    Ok(outcome(
        id,
        true,
        false,
        linked,
        target,
        report.warnings,
        prepared,
    ))
}

fn outcome(
    id: CheckpointId,
    created: bool,
    unchanged: bool,
    linked: Linked,
    target: Target,
    warnings: Vec<String>,
    prepared: Prepared,
) -> Outcome {
    Outcome {
        session_id: prepared.session_id().to_string(),
        id,
        created,
        unchanged,
        linked,
        target,
        warnings,
        prepared,
    }
}

fn missing(id: &CheckpointId, target: &Target, where_: &str) -> AttachError {
    AttachError::Missing {
        id: id.clone(),
        commit: target.short().to_string(),
        where_: where_.to_string(),
    }
}

/// Link a freshly created checkpoint: amend an unpushed HEAD when allowed, else say why not.
fn link_new(
    dir: &std::path::Path,
    target: &Target,
    id: &CheckpointId,
    req: &Request,
    confirm: &mut dyn FnMut(&Target, &CheckpointId) -> Answer,
) -> Result<Linked, AttachError> {
    let manual = |reason: String| Ok(Linked::Manual { reason });
    if req.no_amend {
        return manual("--no-amend: history is left as it is".into());
    }
    if !target.is_head {
        return manual(format!(
            "commit {} is not HEAD; only HEAD is amended",
            target.short()
        ));
    }
    let pushed = link::pushed_to(dir, &target.commit)?;
    if let Some(branch) = pushed.first() {
        return manual(format!(
            "commit {} is already on {branch}; a pushed commit is never rewritten",
            target.short()
        ));
    }
    match confirm(target, id) {
        Answer::No(reason) => manual(reason),
        Answer::Yes => {
            let new = link::amend_head(dir, target, id)?;
            Ok(Linked::Amended {
                old: target.commit.clone(),
                new,
            })
        }
    }
}

/// Whether the checkpoint at `found` already holds this session (same `session_id`) with the same transcript.
/// Reads through the store of the layout it was found in (v2 keeps the hash beside the raw transcript).
fn holds_session(
    repo: &Repo,
    id: &CheckpointId,
    found: &Located,
    prepared: &Prepared,
) -> Result<bool, AttachError> {
    let want = transcript::content_hash(&prepared.session.transcript);
    let want = want.trim_start_matches("sha256:");
    for entry in repo.tree_entries(found.tree)? {
        if !entry.is_tree || entry.name.parse::<usize>().is_err() {
            continue;
        }
        let meta = store::read(repo, id, found, &format!("{}/metadata.json", entry.name))?;
        let Some(meta) = meta else { continue };
        let Ok(meta) = SessionMetadata::parse(&meta, "session metadata") else {
            continue;
        };
        if meta.session_id() != prepared.session_id() {
            continue;
        }
        let hash = store::read(repo, id, found, &format!("{}/content_hash.txt", entry.name))?;
        let hash = hash.map(|h| String::from_utf8_lossy(&h).trim().to_string());
        return Ok(hash.as_deref().map(|h| h.trim_start_matches("sha256:")) == Some(want));
    }
    Ok(false)
}
