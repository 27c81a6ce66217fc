//! Reading the v2 layout (reference §2.10): metadata, prompts and compact transcripts from `/main`; raw
//! transcripts, their hashes and task trees from `/full/current`, then the archives newest → oldest.
//!
//! Paths are the ones stored on `/main` (`metadata.json`, `0/metadata.json`, `0/prompt.txt`,
//! `0/transcript.jsonl`, `0/transcript_hash.txt`) plus, per slot, `raw_transcript` (chunks reassembled),
//! `raw_transcript_hash.txt` and `tasks/…` from `/full`. The v1 names `0/full.jsonl` and `0/content_hash.txt`
//! are accepted as aliases of the raw transcript and its hash, so one path works in every layout.
//!
//! Read-only; a checkpoint missing from `/main` is "not found", a raw transcript missing from every generation
//! is a missing file, never an error.

use crate::git::repo::{ObjectId, Repo};
use crate::model::id::CheckpointId;
use crate::model::transcript;
use crate::store::settings::Backend;
use crate::store::{Located, StoreError};

use super::full;
use super::layout::{self, MAIN, RAW, RAW_HASH, TASKS};

/// Find checkpoint `id` on `/main`.
pub fn locate(repo: &Repo, id: &CheckpointId) -> Result<Option<Located>, StoreError> {
    let Some(commit) = repo.find_ref(MAIN)? else {
        return Ok(None);
    };
    let root = repo.commit_tree(commit)?;
    Ok(repo
        .lookup(root, &layout::checkpoint_path(id))?
        .filter(|e| e.is_tree)
        .map(|e| Located {
            backend: Backend::V2,
            ref_name: MAIN.to_string(),
            commit,
            tree: e.id,
        }))
}

/// Every checkpoint on `/main`.
pub fn list(repo: &Repo) -> Result<Vec<CheckpointId>, StoreError> {
    let Some(commit) = repo.find_ref(MAIN)? else {
        return Ok(Vec::new());
    };
    let root = repo.commit_tree(commit)?;
    Ok(layout::checkpoints(repo, root, |_| {})?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Where a path lives in the v2 layout.
#[derive(Debug, PartialEq, Eq)]
enum Place<'a> {
    /// On `/main`, under the checkpoint.
    Main(&'a str),
    /// The raw transcript of a slot (chunks reassembled).
    Raw(&'a str),
    /// Another file on `/full` (hash, task files), path relative to the checkpoint.
    Full(String),
}

fn place(path: &str) -> Place<'_> {
    let Some((slot, rest)) = path.split_once('/') else {
        return Place::Main(path);
    };
    if slot.parse::<usize>().is_err() {
        return Place::Main(path);
    }
    match rest {
        r if r == RAW || r == transcript::TRANSCRIPT => Place::Raw(slot),
        r if r == RAW_HASH || r == "content_hash.txt" => Place::Full(format!("{slot}/{RAW_HASH}")),
        r if r.starts_with(&format!("{TASKS}/")) || r == TASKS => Place::Full(path.to_string()),
        _ => Place::Main(path),
    }
}

/// Bytes of `path` in checkpoint `id`, found on `/main` as `located`.
pub fn read(
    repo: &Repo,
    id: &CheckpointId,
    located: &Located,
    path: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let path = path.trim_matches('/');
    match place(path) {
        Place::Main(p) => blob_at(repo, located.tree, p),
        Place::Full(p) => match full::locate(repo, id)? {
            Some(f) => blob_at(repo, f.tree, &p),
            None => Ok(None),
        },
        Place::Raw(slot) => {
            let Some(f) = full::locate(repo, id)? else {
                return Ok(None);
            };
            raw_transcript(repo, f.tree, slot)
        }
    }
}

/// True when `path` is read from `/full` (a raw transcript, its hash, task files) rather than from `/main`.
pub fn on_full(path: &str) -> bool {
    !matches!(place(path.trim_matches('/')), Place::Main(_))
}

/// Bytes of the `/full` path `path` of checkpoint `id`, searched in the generation commits `generations` (in
/// search order) instead of the local `/full` refs: used for generations a read just fetched into scratch refs.
/// `None` for a `/main` path or a checkpoint none of them holds.
pub fn read_full_in(
    repo: &Repo,
    id: &CheckpointId,
    path: &str,
    generations: &[ObjectId],
) -> Result<Option<Vec<u8>>, StoreError> {
    let path = path.trim_matches('/');
    let cp = layout::checkpoint_path(id);
    for commit in generations {
        let root = repo.commit_tree(*commit)?;
        let Some(t) = repo.lookup(root, &cp)?.filter(|e| e.is_tree) else {
            continue;
        };
        return match place(path) {
            Place::Main(_) => Ok(None),
            Place::Full(p) => blob_at(repo, t.id, &p),
            Place::Raw(slot) => raw_transcript(repo, t.id, slot),
        };
    }
    Ok(None)
}

fn blob_at(repo: &Repo, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match repo.lookup(tree, path)? {
        Some(e) if !e.is_tree => Ok(Some(repo.read_blob(e.id)?)),
        _ => Ok(None),
    }
}

/// The reassembled raw transcript of `slot` under a `/full` checkpoint subtree.
pub fn raw_transcript(
    repo: &Repo,
    cp_tree: ObjectId,
    slot: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(dir) = repo.lookup(cp_tree, slot)?.filter(|e| e.is_tree) else {
        return Ok(None);
    };
    let mut chunks: Vec<(usize, ObjectId)> = repo
        .tree_entries(dir.id)?
        .into_iter()
        .filter(|e| !e.is_tree)
        .filter_map(|e| layout::raw_chunk_index(&e.name).map(|i| (i, e.id)))
        .collect();
    if chunks.is_empty() {
        return Ok(None);
    }
    chunks.sort();
    let data = chunks
        .iter()
        .map(|(_, id)| repo.read_blob(*id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(transcript::reassemble(&data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_table() {
        assert_eq!(place("metadata.json"), Place::Main("metadata.json"));
        assert_eq!(place("0/metadata.json"), Place::Main("0/metadata.json"));
        assert_eq!(
            place("0/transcript.jsonl"),
            Place::Main("0/transcript.jsonl")
        );
        assert_eq!(place("1/raw_transcript"), Place::Raw("1"));
        assert_eq!(place("1/full.jsonl"), Place::Raw("1"));
        assert_eq!(
            place("2/content_hash.txt"),
            Place::Full("2/raw_transcript_hash.txt".into())
        );
        assert_eq!(
            place("0/tasks/t1/a.jsonl"),
            Place::Full("0/tasks/t1/a.jsonl".into())
        );
        assert_eq!(place("x/raw_transcript"), Place::Main("x/raw_transcript"));
        assert!(
            on_full("/0/full.jsonl")
                && on_full("0/tasks/t/a.jsonl")
                && on_full("1/content_hash.txt")
        );
        assert!(!on_full("metadata.json") && !on_full("0/transcript_hash.txt"));
    }
}
