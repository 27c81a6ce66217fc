//! Checkpoint stores and the routing between them (SPEC §3.4–3.5).
//!
//! One implementation per layout, behind one interface ([`locate`], [`read`], [`list`], and [`write()`] per
//! backend):
//! - [`refs`]: one ref per checkpoint (authoritative in `refs-v1-mirror` and `refs-v1`).
//! - [`branch`]: the legacy `entire/checkpoints/v1` branch (primary when no mode is set, mirror in
//!   `refs-v1-mirror`).
//! - [`v2`]: the v2 layout (`v2/main` + `v2/full/*`), a mirror with `checkpoints_v2: true`, the primary with
//!   `checkpoints_version: 2`.
//!
//! Invariants:
//! - A rollout is one primary plus any number of mirrors. Writes go to the primary first; its failure fails the
//!   write. A mirror failure is reported as a warning and the checkpoint stays readable from the primary.
//! - Every ref-store and v2 ref is queued for push **before** the ref is created or moved, and again after it
//!   moved (a concurrent push may drop the first entry); a failed enqueue fails the write. So a crash at any
//!   instant leaves every existing checkpoint ref queued (or already delivered).
//! - Reads: the primary first. With refs or the branch primary, refs come first in a refs mode (so ref-store
//!   bugs are visible) and the branch serves legacy (12-hex) IDs; ULIDs are read from refs only; v2 is the last
//!   fallback, for IDs found nowhere else. With v2 primary, v2 first, then the refs/branch routing.
//! - A new checkpoint in a refs mode whose legacy ID exists only on the branch starts from the branch's subtree,
//!   so no session is dropped.

mod backfill;
pub mod branch;
pub mod queue;
pub mod refs;
pub mod settings;
pub mod v2;

use crate::git::repo::{Identity, ObjectId, Repo, RepoError};
use crate::model::checkpoint::{CheckpointError, SessionInput};
use crate::model::id::{CheckpointId, IdKind};
use crate::model::transcript;
use crate::store::queue::{Queue, QueueError};
use crate::store::settings::{Backend, Rollout};

/// CAS attempts before giving up (upstream uses the same limit).
pub const MAX_ATTEMPTS: u32 = 16;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{what}: gave up after {MAX_ATTEMPTS} concurrent updates")]
    TooManyConflicts { what: String },
    #[error(transparent)]
    V2(#[from] v2::V2Error),
    #[error("checkpoint {id}: cannot queue {ref_name} for push: {source}")]
    Enqueue {
        id: String,
        ref_name: String,
        #[source]
        source: QueueError,
    },
}

/// Where a checkpoint was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub backend: Backend,
    /// The ref it was found through (the checkpoint ref, or the legacy branch).
    pub ref_name: String,
    pub commit: ObjectId,
    /// The checkpoint's own tree (root of the ref's commit, or the subtree on the branch).
    pub tree: ObjectId,
}

/// Sleep a little before retrying a lost compare-and-swap (up to ~8 ms of jitter, growing).
pub(crate) fn backoff(attempt: u32) {
    let jitter = (ulid::Ulid::new().random() % 8) as u64;
    std::thread::sleep(std::time::Duration::from_millis(
        1 + jitter + u64::from(attempt),
    ));
}

/// Find a checkpoint in one backend.
pub fn locate(
    repo: &Repo,
    backend: Backend,
    id: &CheckpointId,
) -> Result<Option<Located>, StoreError> {
    match backend {
        Backend::GitRefs => refs::locate(repo, id),
        Backend::GitBranch => branch::locate(repo, id),
        Backend::V2 => v2::locate(repo, id),
    }
}

/// The backends to search for `id`, in order, following the read routing of `rollout`.
pub fn read_order(rollout: Rollout, id: &CheckpointId) -> Vec<Backend> {
    let refs_first = rollout.primary == Backend::GitRefs || id.kind() == IdKind::Ulid;
    let mut v1 = if refs_first {
        vec![Backend::GitRefs]
    } else {
        vec![Backend::GitBranch, Backend::GitRefs]
    };
    if refs_first && id.kind() == IdKind::Legacy {
        v1.push(Backend::GitBranch);
    }
    if rollout.primary == Backend::V2 {
        v1.insert(0, Backend::V2);
    } else {
        v1.push(Backend::V2);
    }
    v1
}

/// Find a checkpoint following the read routing of `rollout`.
pub fn find(
    repo: &Repo,
    rollout: Rollout,
    id: &CheckpointId,
) -> Result<Option<Located>, StoreError> {
    for backend in read_order(rollout, id) {
        if let Some(l) = locate(repo, backend, id)? {
            return Ok(Some(l));
        }
    }
    Ok(None)
}

/// Bytes of `path` in checkpoint `id` as found at `located`. A transcript path (`0/full.jsonl`, or
/// `0/raw_transcript` in v2) reassembles its chunks; in v2, raw transcripts come from `/full`.
pub fn read(
    repo: &Repo,
    id: &CheckpointId,
    located: &Located,
    path: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    match located.backend {
        Backend::V2 => v2::read(repo, id, located, path),
        Backend::GitRefs | Backend::GitBranch => read_path(repo, located.tree, path),
    }
}

/// Every checkpoint a backend holds locally.
pub fn list(repo: &Repo, backend: Backend) -> Result<Vec<CheckpointId>, StoreError> {
    match backend {
        Backend::GitRefs => Ok(local_checkpoints(repo)?
            .into_iter()
            .map(|(id, _, _)| id)
            .collect()),
        Backend::GitBranch => {
            let Some(tip) = branch::tip(repo)? else {
                return Ok(Vec::new());
            };
            let root = repo.commit_tree(tip)?;
            Ok(v2::layout::checkpoints(repo, root, |_| {})?
                .into_iter()
                .map(|(id, _)| id)
                .collect())
        }
        Backend::V2 => v2::list(repo),
    }
}

/// Bytes of `path` inside a v1 checkpoint tree. A `…/full.jsonl` path reassembles its chunks.
pub fn read_path(repo: &Repo, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let path = path.trim_matches('/');
    let Some(entry) = repo.lookup(tree, path)? else {
        return Ok(None);
    };
    if entry.is_tree {
        return Ok(None);
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    // `full.jsonl` and subagent transcripts (`*.jsonl`) may be chunked as `<name>.001`, …
    if !name.ends_with(".jsonl") {
        return Ok(Some(repo.read_blob(entry.id)?));
    }
    let dir_tree = if dir.is_empty() {
        Some(tree)
    } else {
        repo.lookup(tree, dir)?.map(|e| e.id)
    };
    let mut chunks: Vec<(usize, ObjectId)> = match dir_tree {
        Some(t) => repo
            .tree_entries(t)?
            .into_iter()
            .filter_map(|e| transcript::chunk_index_of(name, &e.name).map(|i| (i, e.id)))
            .collect(),
        None => vec![(0, entry.id)],
    };
    chunks.sort();
    let data = chunks
        .iter()
        .map(|(_, id)| repo.read_blob(*id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(transcript::reassemble(&data)))
}

/// Result of a routed write.
#[derive(Debug, Clone)]
pub struct WriteReport {
    pub id: CheckpointId,
    /// Ref and commit written in the ref store, if it was written.
    pub refs: Option<refs::Written>,
    /// New legacy-branch tip, if the branch was written.
    pub branch: Option<ObjectId>,
    /// What the v2 layout got, if it was written.
    pub v2: Option<v2::Written>,
    /// Mirror failures and other problems that did not fail the write.
    pub warnings: Vec<String>,
}

/// Write `sessions` into checkpoint `id` (minted per mode when `None`), honouring the rollout, and queue the
/// written refs for push before returning.
pub fn write(
    repo: &Repo,
    rollout: Rollout,
    id: Option<CheckpointId>,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<WriteReport, StoreError> {
    let id = id.unwrap_or_else(|| {
        CheckpointId::generate(match rollout.primary {
            Backend::GitRefs => IdKind::Ulid,
            Backend::GitBranch | Backend::V2 => IdKind::Legacy,
        })
    });
    let mut report = WriteReport {
        id: id.clone(),
        refs: None,
        branch: None,
        v2: None,
        warnings: Vec::new(),
    };
    let order =
        std::iter::once((rollout.primary, true)).chain(rollout.mirrors.iter().map(|m| (m, false)));
    for (backend, is_primary) in order {
        let result = match backend {
            Backend::GitRefs => write_refs(repo, &id, sessions, who).map(|w| report.refs = Some(w)),
            Backend::GitBranch => {
                branch::write(repo, &id, sessions, who).map(|t| report.branch = Some(t))
            }
            Backend::V2 => write_v2(repo, &id, sessions, who).map(|w| {
                report.warnings.extend(w.warnings.iter().cloned());
                report.v2 = Some(w);
            }),
        };
        match result {
            Ok(()) => {}
            Err(e) if is_primary => return Err(e),
            Err(e) => {
                tracing::debug!(checkpoint = %id, "mirror write failed: {e}");
                report.warnings.push(format!(
                    "mirror write to the {} failed: {e}",
                    backend.describe()
                ));
            }
        }
    }
    Ok(report)
}

/// Write to v2; a checkpoint that v2 does not hold yet but the ref store or the legacy branch does is carried
/// over whole in the same write ([`backfill`]), so v2 never holds a partial copy.
fn write_v2(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<v2::Written, StoreError> {
    if v2::locate(repo, id)?.is_some() {
        return v2::write(repo, id, sessions, who);
    }
    let existing = match refs::locate(repo, id)? {
        Some(found) => Some(found),
        None if id.kind() == IdKind::Legacy => branch::locate(repo, id)?,
        None => None,
    };
    let Some(found) = existing else {
        return v2::write(repo, id, sessions, who);
    };
    let is_new = |sid: &str| sessions.iter().any(|n| n.metadata.session_id() == sid);
    let (old, root_tasks) = backfill::sessions(repo, &found, is_new)?;
    if old.is_empty() && root_tasks.is_empty() {
        // Every stored session is being rewritten (e.g. the primary's copy this very write just made).
        return v2::write(repo, id, sessions, who);
    }
    let mut all: Vec<SessionInput> = old;
    all.extend(sessions.iter().cloned());
    // Root-level task records go under the latest session, as upstream's backfill places them; a task the new
    // sessions carry themselves wins.
    if let Some(last) = all.last_mut() {
        for t in root_tasks {
            if !last.tasks.iter().any(|mine| mine.path == t.path) {
                last.tasks.push(t);
            }
        }
        last.tasks.sort_by(|a, b| a.path.cmp(&b.path));
    }
    v2::write(repo, id, &all, who)
}

fn write_refs(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<refs::Written, StoreError> {
    let seed = match id.kind() {
        IdKind::Legacy => branch::locate(repo, id)?.map(|l| l.tree),
        IdKind::Ulid => None,
    };
    // Queue before the ref can exist, so a crash at any instant leaves every checkpoint ref queued (upstream
    // #2393); queue again afterwards, because a push running in between may have dropped the entry while the
    // ref did not exist yet or still had its old, already pushed value.
    let planned =
        refs::locate(repo, id)?.map_or_else(|| crate::model::refname::ref_name(id), |l| l.ref_name);
    enqueue(repo, id, &planned)?;
    let written = refs::write(repo, id, sessions, seed, who)?;
    enqueue(repo, id, &written.ref_name)?;
    Ok(written)
}

fn enqueue(repo: &Repo, id: &CheckpointId, ref_name: &str) -> Result<(), StoreError> {
    Queue::new(&repo.common_dir())
        .ensure(&[ref_name])
        .map_err(|source| StoreError::Enqueue {
            id: id.to_string(),
            ref_name: ref_name.to_string(),
            source,
        })
}

/// Checkpoint refs present locally, de-duplicated by ID (canonical spelling preferred).
pub fn local_checkpoints(repo: &Repo) -> Result<Vec<(CheckpointId, String, ObjectId)>, StoreError> {
    let mut out: Vec<(CheckpointId, String, ObjectId)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (name, commit) in repo.refs_with_prefix(crate::model::refname::CHECKPOINT_PREFIX)? {
        let Ok(id) = crate::model::refname::parse(&name) else {
            continue;
        };
        match index.get(&id) {
            Some(&i) if name == crate::model::refname::ref_name(&id) => out[i] = (id, name, commit),
            Some(_) => {}
            None => {
                index.insert(id.clone(), out.len());
                out.push((id, name, commit));
            }
        }
    }
    Ok(out)
}
