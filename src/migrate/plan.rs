//! Deciding, per checkpoint, whether its ref is up to date, needs a commit, or cannot be migrated.
//!
//! Rules (upstream's idempotency check, made cheap):
//! - **Up to date** (skip): the ref exists and its first-parent chain contains a commit whose tree is the
//!   normalised legacy subtree. The chain, not just the tip, because a newer write through the ref store may sit
//!   on top of the migrated commit, and re-importing the older legacy content would regress it. When the cache
//!   already proves this for (legacy subtree, ref value), nothing is read at all.
//! - **Create**: no ref yet → an orphan commit, expected old value "absent".
//! - **Update**: the ref exists but the legacy content changed since → a commit on top of the ref's tip. When
//!   the tip is itself a migration commit (only the legacy branch wrote the checkpoint since), its tree is the
//!   legacy content. When the ref store wrote the checkpoint after the migration (refs are authoritative, seed
//!   003), the tree is the ref's tree plus the sessions only the legacy side has, merged by `session_id`: the
//!   ref wins per slot, so a session written to the ref store is never dropped; nothing legacy-only → skip.
//!   If the tip's commit object is missing, the ref is repaired with an orphan commit (CAS on the tip).
//! - **`--force`**: every checkpoint gets the orphan commit a first migration would make now, CAS'd against
//!   whatever the ref holds.
//! - **Fail**: the subtree has no `metadata.json` blob, or it fails [`normalize_root`]; reported, never fatal.
//!
//! Invariants: planning writes nothing; new metadata blobs and trees go into the in-memory [`ObjectSet`].
//! When the normalised metadata equals the legacy bytes, the legacy subtree itself is reused (no new objects).

use std::collections::HashMap;

use gix::objs::{tree, Kind, Tree};

use crate::git::repo::{ObjectId, Repo, RepoError, TreeEntry};
use crate::model::checkpoint::{self, CheckpointError, Layout};
use crate::model::id::CheckpointId;

use super::cache::Cache;
use super::normalize::normalize_root;
use super::source::LegacyCheckpoint;
use crate::git::pack::ObjectSet;

/// How far down a ref's first-parent chain to look for an already-migrated tree.
const MAX_CHAIN: usize = 1000;

/// An existing checkpoint ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub ref_name: String,
    pub commit: ObjectId,
}

/// What to do with one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The ref already holds this content.
    Skip { ref_name: String, commit: ObjectId },
    /// Make a commit with `tree` (on top of `parent`, or orphan) and move the ref from `expected` to it.
    Commit {
        ref_name: String,
        expected: Option<ObjectId>,
        parent: Option<ObjectId>,
        tree: ObjectId,
    },
    /// Not migratable.
    Fail { reason: String },
}

/// The plan for one checkpoint.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: CheckpointId,
    pub subtree: ObjectId,
    pub step: Step,
}

/// Inputs of planning besides the checkpoints themselves.
pub struct Context<'a> {
    /// The repository (reading checkpoint trees for a session merge).
    pub repo: &'a Repo,
    /// Object access (a [`super::odb::tuned`] handle).
    pub odb: &'a gix::Repository,
    pub existing: &'a HashMap<String, Existing>,
    pub cache: &'a Cache,
    pub force: bool,
}

impl Context<'_> {
    /// The plan of `cp` if the cache alone proves its ref up to date (no object is read).
    pub fn cached(&self, cp: &LegacyCheckpoint) -> Option<Planned> {
        let e = self.existing.get(cp.id.as_str()).filter(|_| !self.force)?;
        (self.cache.map.get(&cp.subtree) == Some(&e.commit)).then(|| Planned {
            id: cp.id.clone(),
            subtree: cp.subtree,
            step: Step::Skip {
                ref_name: e.ref_name.clone(),
                commit: e.commit,
            },
        })
    }

    /// Plan one checkpoint, adding any new blob/tree to `objects`.
    pub fn plan(
        &self,
        cp: &LegacyCheckpoint,
        objects: &mut ObjectSet,
    ) -> Result<Planned, RepoError> {
        if let Some(p) = self.cached(cp) {
            return Ok(p);
        }
        let existing = self.existing.get(cp.id.as_str());
        let planned = |step| Planned {
            id: cp.id.clone(),
            subtree: cp.subtree,
            step,
        };
        let tree = match normalized_tree(self.odb, &cp.id, cp.subtree, objects)? {
            Ok(tree) => tree,
            Err(reason) => return Ok(planned(Step::Fail { reason })),
        };
        let Some(e) = existing else {
            return Ok(planned(Step::Commit {
                ref_name: crate::model::refname::ref_name(&cp.id),
                expected: None,
                parent: None,
                tree,
            }));
        };
        if self.force {
            return Ok(planned(Step::Commit {
                ref_name: e.ref_name.clone(),
                expected: Some(e.commit),
                parent: None,
                tree,
            }));
        }
        let step = match chain_contains(self.odb, e.commit, tree)? {
            Some(true) => Step::Skip {
                ref_name: e.ref_name.clone(),
                commit: e.commit,
            },
            Some(false) if self.migrated_tip(&cp.id, e)? => Step::Commit {
                ref_name: e.ref_name.clone(),
                expected: Some(e.commit),
                parent: Some(e.commit),
                tree,
            },
            Some(false) => match self.merge(&cp.id, e, cp.subtree, objects)? {
                Ok(Some(merged)) => Step::Commit {
                    ref_name: e.ref_name.clone(),
                    expected: Some(e.commit),
                    parent: Some(e.commit),
                    tree: merged,
                },
                Ok(None) => Step::Skip {
                    ref_name: e.ref_name.clone(),
                    commit: e.commit,
                },
                Err(reason) => Step::Fail { reason },
            },
            None => Step::Commit {
                ref_name: e.ref_name.clone(),
                expected: Some(e.commit),
                parent: None,
                tree,
            },
        };
        Ok(planned(step))
    }
}

impl Context<'_> {
    /// Whether the ref's tip is a migration commit: nothing but the legacy branch has written the checkpoint
    /// since, so the legacy content is simply newer.
    fn migrated_tip(&self, id: &CheckpointId, existing: &Existing) -> Result<bool, RepoError> {
        let commit = self
            .odb
            .find_commit(existing.commit)
            .map_err(|_| RepoError::BadObject {
                what: "reading a checkpoint ref".into(),
                id: existing.commit,
                kind: "commit",
            })?;
        Ok(commit.message_raw_sloppy() == super::commit::message(id.as_str()).as_bytes())
    }

    /// The ref's tree plus the legacy-only sessions of `legacy` (refs are authoritative, seed 003: the ref wins
    /// per session slot, nothing of it is dropped). `Ok(None)`: the legacy side adds no session.
    fn merge(
        &self,
        id: &CheckpointId,
        existing: &Existing,
        legacy: ObjectId,
        objects: &mut ObjectSet,
    ) -> Result<Result<Option<ObjectId>, String>, RepoError> {
        let base = self.repo.commit_tree(existing.commit)?;
        match checkpoint::merge_sessions(self.repo, id, base, legacy, Layout::Refs) {
            Ok(None) => Ok(Ok(None)),
            Ok(Some(merged)) => {
                let root = objects.add_raw(Kind::Blob, merged.root_metadata);
                let mut tree = Tree::empty();
                for e in merged.entries.iter().chain(std::iter::once(&TreeEntry {
                    name: "metadata.json".into(),
                    id: root,
                    is_tree: false,
                })) {
                    tree.entries.push(tree::Entry {
                        mode: if e.is_tree {
                            tree::EntryKind::Tree.into()
                        } else {
                            tree::EntryKind::Blob.into()
                        },
                        filename: e.name.clone().into(),
                        oid: e.id,
                    });
                }
                tree.entries.sort();
                Ok(Ok(Some(objects.add(&tree))))
            }
            Err(CheckpointError::Repo(e)) => Err(e),
            Err(e) => Ok(Err(format!("cannot merge with the checkpoint ref: {e}"))),
        }
    }
}

/// Whether `tip`'s first-parent chain has a commit with `tree`; `None` if `tip` itself is missing.
fn chain_contains(
    repo: &gix::Repository,
    tip: ObjectId,
    tree: ObjectId,
) -> Result<Option<bool>, RepoError> {
    let mut current = Some(tip);
    let mut depth = 0;
    while let Some(id) = current {
        let Ok(commit) = repo.find_commit(id) else {
            return Ok((id != tip).then_some(false));
        };
        let decoded = commit.decode().map_err(|_| RepoError::BadObject {
            what: "reading a checkpoint ref's history".into(),
            id,
            kind: "commit",
        })?;
        if decoded.tree() == tree {
            return Ok(Some(true));
        }
        depth += 1;
        current = decoded.parents().next().filter(|_| depth < MAX_CHAIN);
    }
    Ok(Some(false))
}

/// The checkpoint's tree for the ref layout, or why it cannot be migrated.
fn normalized_tree(
    repo: &gix::Repository,
    id: &CheckpointId,
    subtree: ObjectId,
    objects: &mut ObjectSet,
) -> Result<Result<ObjectId, String>, RepoError> {
    let bad = |kind| RepoError::BadObject {
        what: format!("reading checkpoint {id}"),
        id: subtree,
        kind,
    };
    let legacy: Tree = repo
        .find_tree(subtree)
        .map_err(|_| bad("tree"))?
        .decode()
        .map_err(|_| bad("tree"))?
        .into();
    let Some(meta) = legacy
        .entries
        .iter()
        .find(|e| e.filename == "metadata.json")
    else {
        return Ok(Err("missing metadata.json".into()));
    };
    if !meta.mode.is_blob() {
        return Ok(Err("metadata.json is not a file".into()));
    }
    let blob = repo.find_blob(meta.oid).map_err(|_| RepoError::BadObject {
        what: format!("reading {}/metadata.json", id.v1_path()),
        id: meta.oid,
        kind: "blob",
    })?;
    let normalized = match normalize_root(&blob.data, id) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if normalized == blob.data {
        return Ok(Ok(subtree));
    }
    let new_blob = objects.add_raw(Kind::Blob, normalized);
    let mut tree = legacy;
    for e in tree
        .entries
        .iter_mut()
        .filter(|e| e.filename == "metadata.json")
    {
        *e = tree::Entry {
            mode: e.mode,
            filename: e.filename.clone(),
            oid: new_blob,
        };
    }
    Ok(Ok(objects.add(&tree)))
}
