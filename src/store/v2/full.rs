//! Writing raw transcripts to `refs/entire/checkpoints/v2/full/*` (reference §2.3, §2.7).
//!
//! Invariants:
//! - A checkpoint lives in exactly one generation. A checkpoint that is already stored (in `/full/current`, else
//!   in the newest archive holding it) is updated where it lives; a new one goes to `/full/current`. Archives are
//!   only searched for checkpoints that existed on `/main` before this write (a new checkpoint cannot be in any
//!   generation), so a write's cost does not grow with the number of archives.
//! - Slots are the ones `/main` chose. A slot's `raw_transcript[.NNN]` chunks (50 MiB, line boundaries) and
//!   `raw_transcript_hash.txt` (`sha256:` of the whole transcript, no newline) are replaced together; its
//!   `tasks/` tree is replaced when the session brings task files and kept otherwise.
//! - A session with an empty transcript and no task files writes nothing here. A slot whose stored hash equals
//!   the new one (and whose tasks are unchanged) is left alone; a write that changes nothing makes no commit.
//! - `/full/current` never holds more than the generation limit: a new checkpoint finding it full rotates it
//!   first (see [`rotation`]) and searches again; so every archive holds exactly the limit.
//! - One commit `Checkpoint: <id>` on the target's tip, compare-and-swap against the tip the search started
//!   from; a lost race (including a rotation that moved the checkpoint into an archive) searches again.

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo, RepoError};
use crate::model::checkpoint::{self, CheckpointError, SessionInput};
use crate::model::id::CheckpointId;
use crate::model::transcript;
use crate::store::{backoff, StoreError, MAX_ATTEMPTS};

use super::layout::{self, FULL_CURRENT, RAW_HASH, TASKS};
use super::main::tip_or_init;
use super::rotation;

/// Outcome of a `/full` write that changed something.
#[derive(Debug, Clone)]
pub struct FullWritten {
    /// `…/full/current` or the archive that holds the checkpoint.
    pub ref_name: String,
    pub commit: ObjectId,
    /// For `/full/current`: how many checkpoints it holds after the write, when it was counted (a write that
    /// added a checkpoint); `None` when not counted.
    pub count: Option<usize>,
}

/// Where a stored checkpoint's raw transcripts live.
#[derive(Debug, Clone)]
pub struct FullLocation {
    pub ref_name: String,
    pub commit: ObjectId,
    /// The checkpoint's subtree.
    pub tree: ObjectId,
}

/// Find checkpoint `id` in `/full/current`, then in the archives newest → oldest.
pub fn locate(repo: &Repo, id: &CheckpointId) -> Result<Option<FullLocation>, StoreError> {
    let path = layout::checkpoint_path(id);
    let current = repo
        .find_ref(FULL_CURRENT)?
        .map(|c| (FULL_CURRENT.to_string(), c));
    let archives = layout::archives(repo)?
        .into_iter()
        .rev()
        .map(|(_, n, c)| (n, c));
    for (ref_name, commit) in current.into_iter().chain(archives) {
        let root = repo.commit_tree(commit)?;
        if let Some(e) = repo.lookup(root, &path)?.filter(|e| e.is_tree) {
            return Ok(Some(FullLocation {
                ref_name,
                commit,
                tree: e.id,
            }));
        }
    }
    Ok(None)
}

/// Write the raw transcripts (and task trees) of `sessions` into the slots `slots` (same order).
/// `existed`: the checkpoint was on `/main` before this write, so it may already be stored in a generation.
pub fn write(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    slots: &[usize],
    existed: bool,
    who: &Identity,
) -> Result<Option<FullWritten>, StoreError> {
    let work: Vec<(usize, &SessionInput)> = slots
        .iter()
        .copied()
        .zip(sessions)
        .filter(|(_, s)| !s.transcript.is_empty() || !s.tasks.is_empty())
        .collect();
    if work.is_empty() {
        return Ok(None);
    }
    let path = layout::checkpoint_path(id);
    let max = layout::max_per_generation();
    let mut prepared = Vec::with_capacity(work.len());
    for (n, s) in &work {
        prepared.push((*n, prepare(repo, s, *n)?));
    }
    let mut overflow = false;
    for attempt in 0..MAX_ATTEMPTS {
        let t = choose_target(repo, id, existed, who)?;
        let count = match t.ref_name == FULL_CURRENT {
            true => count_without(repo, t.root, &path)?,
            false => None,
        };
        if !overflow && count.is_some_and(|n| n >= max) {
            // Never grow a full generation past the limit: rotate first (whoever wins), then search again.
            // If rotating fails outright, the write still goes in (the caller's rotation retries and warns).
            if let Err(e) = rotation::rotate_if_needed(repo, max, who) {
                tracing::warn!(checkpoint = %id, "v2 rotation before write failed: {e}");
                overflow = true;
            }
            continue;
        }
        let Some(new_root) = new_root(repo, &t, &path, &prepared)? else {
            return Ok(None);
        };
        let message = format!("Checkpoint: {id}\n");
        let commit = repo.write_commit(new_root, &[t.parent], who, who, &message)?;
        let update = RefUpdate {
            name: t.ref_name.clone(),
            expected: t.expected,
            new: Some(commit),
        };
        match repo.transaction(&[update], &format!("entire: v2 checkpoint {id}")) {
            Ok(()) => {
                return Ok(Some(FullWritten {
                    ref_name: t.ref_name,
                    commit,
                    count: count.map(|n| n + 1),
                }))
            }
            Err(RepoError::Conflict { .. }) => backoff(attempt),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::TooManyConflicts {
        what: FULL_CURRENT.to_string(),
    })
}

/// The ref a write goes to, with the value it is built on.
struct Target {
    ref_name: String,
    /// Expected value for the compare-and-swap (`None`: the ref does not exist yet).
    expected: Option<ObjectId>,
    /// Parent of the new commit (an in-memory init commit when the ref does not exist).
    parent: ObjectId,
    root: ObjectId,
}

/// `/full/current`, or the archive already holding checkpoint `id` (searched only if it `existed`).
fn choose_target(
    repo: &Repo,
    id: &CheckpointId,
    existed: bool,
    who: &Identity,
) -> Result<Target, StoreError> {
    // Read current's tip before searching the archives: a rotation in between moves current, so the
    // compare-and-swap fails and the search runs again.
    let (expected, parent, root) = tip_or_init(repo, FULL_CURRENT, who)?;
    let found = match existed {
        true => locate(repo, id)?,
        false => None,
    };
    Ok(match found {
        Some(f) if f.ref_name != FULL_CURRENT => Target {
            root: repo.commit_tree(f.commit)?,
            ref_name: f.ref_name,
            expected: Some(f.commit),
            parent: f.commit,
        },
        _ => Target {
            ref_name: FULL_CURRENT.to_string(),
            expected,
            parent,
            root,
        },
    })
}

/// The target's new root tree with the prepared slots, or `None` when nothing changes. An archive's
/// `generation.json` is recomputed so it keeps bracketing every checkpoint it holds.
fn new_root(
    repo: &Repo,
    t: &Target,
    path: &str,
    prepared: &[(usize, Prepared)],
) -> Result<Option<ObjectId>, StoreError> {
    let root = t.root;
    let new_root = repo.edit_tree(Some(root), |ed| {
        for (n, p) in prepared {
            let slot_path = format!("{path}/{n}");
            let old = repo.lookup(root, &slot_path)?.filter(|e| e.is_tree);
            if let Some(tree) = p.slot_tree(repo, old.map(|e| e.id))? {
                ed.put_tree(&slot_path, tree)?;
            }
        }
        Ok(())
    })?;
    if new_root == root && t.expected.is_some() {
        return Ok(None);
    }
    if t.ref_name == FULL_CURRENT {
        return Ok(Some(new_root));
    }
    let generation = rotation::generation_json(repo, t.parent, new_root)?;
    let blob = repo.write_blob(&crate::model::metadata::to_go_json(&generation))?;
    Ok(Some(repo.edit_tree(Some(new_root), |ed| {
        ed.put_blob(layout::GENERATION, blob)
    })?))
}

/// How many checkpoints `root` (a `/full/current` tree) holds, when it does not hold the one at `path` yet
/// (`None` when it does: the write adds nothing).
fn count_without(repo: &Repo, root: ObjectId, path: &str) -> Result<Option<usize>, StoreError> {
    if repo.lookup(root, path)?.is_some() {
        return Ok(None);
    }
    Ok(Some(layout::count_checkpoints(repo, root)?))
}

/// A session's blobs, written once before the compare-and-swap loop.
struct Prepared {
    /// `(name, blob)` of the chunks and the hash file; empty when the transcript is empty.
    raw: Vec<(String, ObjectId)>,
    hash: Option<ObjectId>,
    tasks: Option<ObjectId>,
}

fn prepare(repo: &Repo, s: &SessionInput, n: usize) -> Result<Prepared, StoreError> {
    let mut raw = Vec::new();
    let mut hash = None;
    if !s.transcript.is_empty() {
        let chunks = transcript::chunk(&s.transcript, transcript::MAX_CHUNK).map_err(|source| {
            CheckpointError::Chunk {
                what: format!("session {} ({n}/{})", s.metadata.session_id(), layout::RAW),
                source,
            }
        })?;
        for (i, c) in chunks.iter().enumerate() {
            raw.push((layout::raw_chunk_name(i), repo.write_blob(c)?));
        }
        let h = repo.write_blob(transcript::content_hash(&s.transcript).as_bytes())?;
        raw.push((RAW_HASH.to_string(), h));
        hash = Some(h);
    }
    Ok(Prepared {
        raw,
        hash,
        tasks: checkpoint::write_tasks(repo, &s.tasks)?,
    })
}

impl Prepared {
    /// The new slot tree from the old one, or `None` when nothing changes.
    fn slot_tree(&self, repo: &Repo, old: Option<ObjectId>) -> Result<Option<ObjectId>, RepoError> {
        let old_entries = match old {
            Some(t) => repo.tree_entries(t)?,
            None => Vec::new(),
        };
        let find = |name: &str| old_entries.iter().find(|e| e.name == name).map(|e| e.id);
        let same_hash = self.hash.is_none() || self.hash == find(RAW_HASH);
        let same_tasks = self.tasks.is_none() || self.tasks == find(TASKS);
        if old.is_some() && same_hash && same_tasks {
            return Ok(None);
        }
        let mut entries: Vec<_> = old_entries
            .into_iter()
            .filter(|e| {
                let raw = e.name == RAW_HASH || layout::raw_chunk_index(&e.name).is_some();
                let replaced_raw = raw && self.hash.is_some();
                let replaced_tasks = e.name == TASKS && self.tasks.is_some();
                !(replaced_raw || replaced_tasks)
            })
            .collect();
        for (name, id) in &self.raw {
            entries.push(crate::git::repo::TreeEntry {
                name: name.clone(),
                id: *id,
                is_tree: false,
            });
        }
        if let Some(t) = self.tasks {
            entries.push(crate::git::repo::TreeEntry {
                name: TASKS.to_string(),
                id: t,
                is_tree: true,
            });
        }
        repo.write_tree(&entries).map(Some)
    }
}
