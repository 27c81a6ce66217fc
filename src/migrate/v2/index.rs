//! The presence index, built once per run: which checkpoints are on `/main` (with their session slots) and
//! which `(checkpoint, slot)` pairs have `/full` artifacts (a raw transcript chunk and its hash) in
//! `/full/current` or any archive. One tree walk per ref; no per-session walks later.
//!
//! Reads only; a concurrent writer can only add to what the index saw, so a stale index makes the run
//! redo (idempotently) at worst, never skip work it should do.

use std::collections::{HashMap, HashSet};

use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::store::v2::layout;

/// What v2 already holds.
#[derive(Debug, Default)]
pub struct Presence {
    /// Checkpoints on `/main`: subtree and slot numbers.
    pub main: HashMap<CheckpointId, (ObjectId, Vec<usize>)>,
    /// `(checkpoint, slot)` pairs with raw transcript and hash on some `/full` ref.
    pub full: HashSet<(CheckpointId, usize)>,
    /// Checkpoints present (with any content) in `/full/current` or an archive.
    pub in_full: HashSet<CheckpointId>,
}

impl Presence {
    /// Build the index from the local v2 refs.
    pub fn build(repo: &Repo) -> Result<Self, RepoError> {
        let mut p = Presence::default();
        if let Some(tip) = repo.find_ref(layout::MAIN)? {
            let root = repo.commit_tree(tip)?;
            for (id, tree) in layout::checkpoints(repo, root, |_| {})? {
                let slots = layout::slots(repo, tree)?.into_iter().map(|(n, _)| n);
                p.main.insert(id, (tree, slots.collect()));
            }
        }
        let mut fulls: Vec<ObjectId> = layout::archives(repo)?
            .into_iter()
            .map(|(_, _, c)| c)
            .collect();
        if let Some(c) = repo.find_ref(layout::FULL_CURRENT)? {
            fulls.push(c);
        }
        for commit in fulls {
            let root = repo.commit_tree(commit)?;
            for (id, tree) in layout::checkpoints(repo, root, |_| {})? {
                p.in_full.insert(id.clone());
                for (n, slot) in layout::slots(repo, tree)? {
                    if has_raw(repo, slot)? {
                        p.full.insert((id.clone(), n));
                    }
                }
            }
        }
        Ok(p)
    }

    /// Slots of `id` on `/main` without `/full` artifacts; `None` when `id` is not on `/main`.
    pub fn missing(&self, id: &CheckpointId) -> Option<Vec<usize>> {
        let (_, slots) = self.main.get(id)?;
        Some(
            slots
                .iter()
                .copied()
                .filter(|n| !self.full.contains(&(id.clone(), *n)))
                .collect(),
        )
    }
}

fn has_raw(repo: &Repo, slot: ObjectId) -> Result<bool, RepoError> {
    let entries = repo.tree_entries(slot)?;
    let chunk = entries
        .iter()
        .any(|e| !e.is_tree && layout::raw_chunk_index(&e.name).is_some());
    let hash = entries
        .iter()
        .any(|e| !e.is_tree && e.name == layout::RAW_HASH);
    Ok(chunk && hash)
}
