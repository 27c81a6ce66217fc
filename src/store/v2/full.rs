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
        // Read current's tip before searching the archives: a rotation in between moves current, so the
        // compare-and-swap below fails and the search runs again.
        let (cur_expected, cur_parent, cur_root) = tip_or_init(repo, FULL_CURRENT, who)?;
        let target = match existed {
            true => locate(repo, id)?,
            false => None,
        };
        let (ref_name, expected, parent, root) = match target {
            Some(t) if t.ref_name != FULL_CURRENT => {
                let root = repo.commit_tree(t.commit)?;
                (t.ref_name, Some(t.commit), t.commit, root)
            }
            _ => (FULL_CURRENT.to_string(), cur_expected, cur_parent, cur_root),
        };
        let count = match ref_name == FULL_CURRENT {
            true => count_without(repo, cur_root, &path)?,
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
        let new_root = repo.edit_tree(Some(root), |ed| {
            for (n, p) in &prepared {
                let slot_path = format!("{path}/{n}");
                let old = repo.lookup(root, &slot_path)?.filter(|e| e.is_tree);
                if let Some(tree) = p.slot_tree(repo, old.map(|e| e.id))? {
                    ed.put_tree(&slot_path, tree)?;
                }
            }
            Ok(())
        })?;
        if new_root == root && expected.is_some() {
            return Ok(None);
        }
        let new_root = if ref_name == FULL_CURRENT {
            new_root
        } else {
            // An archive keeps a generation.json that brackets every checkpoint it holds.
            let generation = rotation::generation_json(repo, parent, new_root)?;
            let blob = repo.write_blob(&crate::model::metadata::to_go_json(&generation))?;
            repo.edit_tree(Some(new_root), |ed| ed.put_blob(layout::GENERATION, blob))?
        };
        let commit = repo.write_commit(
            new_root,
            &[parent],
            who,
            who,
            &format!("Checkpoint: {id}\n"),
        )?;
        let update = RefUpdate {
            name: ref_name.clone(),
            expected,
            new: Some(commit),
        };
        match repo.transaction(&[update], &format!("entire: v2 checkpoint {id}")) {
            Ok(()) => {
                return Ok(Some(FullWritten {
                    ref_name,
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
