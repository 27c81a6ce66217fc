//! `--force` with `--to v2`: remove the checkpoints about to be redone from `/main`, `/full/current` and
//! every archive, before the fresh migration writes them again (reference `entire-v2-and-attach.md` §3.3).
//!
//! One commit per ref that holds any of them (`Reset checkpoints before force migration`); an archive left
//! empty is deleted, a shrunk one gets its `generation.json` recomputed (from `/main` as it is before the
//! prune, which still holds the remaining checkpoints). Every changed ref is queued for push first, then all
//! of them move in ONE compare-and-swap transaction: a kill leaves either nothing or the whole prune, and a
//! concurrent writer makes the transaction fail (nothing changed) instead of losing its write. Pending
//! publications of the archives it deleted are dropped, those of archives it rewrote follow the new commit.

use std::collections::HashSet;

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo};
use crate::model::id::CheckpointId;
use crate::model::metadata;
use crate::store::queue::Queue;
use crate::store::v2::pending::{Pending, Publication};
use crate::store::v2::{layout, rotation};

use super::super::MigrateError;

/// The commit message of a prune.
pub const MESSAGE: &str = "Reset checkpoints before force migration\n";

/// Remove `ids` from every v2 ref; returns how many refs changed.
pub fn prune(
    repo: &Repo,
    ids: &HashSet<CheckpointId>,
    who: &Identity,
) -> Result<usize, MigrateError> {
    let mut refs: Vec<(String, ObjectId)> = Vec::new();
    for name in [layout::MAIN, layout::FULL_CURRENT] {
        if let Some(c) = repo.find_ref(name)? {
            refs.push((name.to_string(), c));
        }
    }
    refs.extend(layout::archives(repo)?.into_iter().map(|(_, n, c)| (n, c)));
    let mut updates = Vec::new();
    for (name, tip) in refs {
        let root = repo.commit_tree(tip)?;
        let doomed: Vec<String> = layout::checkpoints(repo, root, |_| {})?
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, _)| layout::checkpoint_path(&id))
            .collect();
        if doomed.is_empty() {
            continue;
        }
        let mut tree = repo.edit_tree(Some(root), |ed| {
            doomed.iter().try_for_each(|p| ed.remove(p))
        })?;
        let archive = layout::archive_number(&name).is_some();
        let new = match (archive, layout::count_checkpoints(repo, tree)?) {
            (true, 0) => None,
            (true, _) => {
                let gen = rotation::generation_json(repo, tip, tree)
                    .map_err(|e| MigrateError::Store(Box::new(e)))?;
                let blob = repo.write_blob(&metadata::to_go_json(&gen))?;
                tree = repo.edit_tree(Some(tree), |ed| ed.put_blob(layout::GENERATION, blob))?;
                Some(repo.write_commit(tree, &[tip], who, who, MESSAGE)?)
            }
            (false, _) => Some(repo.write_commit(tree, &[tip], who, who, MESSAGE)?),
        };
        updates.push(RefUpdate {
            name,
            expected: Some(tip),
            new,
        });
    }
    if updates.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    Queue::new(&repo.common_dir()).enqueue(&names)?;
    repo.transaction(&updates, "entire-migrate: reset checkpoints before --force")?;
    fix_pending(repo, &updates)?;
    Ok(updates.len())
}

/// Pending publications of archives the prune changed: a deleted archive's record goes, a rewritten one's
/// points at the new commit. Runs after the transaction (records must not name commits no ref holds yet), so
/// a kill in between leaves records naming the previous commit, as a rotation killed after its record does.
fn fix_pending(repo: &Repo, updates: &[RefUpdate]) -> Result<(), MigrateError> {
    let pending = Pending::new(&repo.common_dir());
    let err = |e| MigrateError::Store(Box::new(crate::store::StoreError::from(e)));
    for record in pending.list().map_err(err)? {
        let Some(u) = updates.iter().find(|u| {
            u.name == record.archive_ref_name
                && u.expected.map(|c| c.to_string()).as_deref()
                    == Some(record.archive_commit_hash.as_str())
        }) else {
            continue;
        };
        pending.remove(&record).map_err(err)?;
        if let Some(new) = u.new {
            let moved = Publication {
                archive_commit_hash: new.to_string(),
                ..record
            };
            pending.append(&moved).map_err(err)?;
        }
    }
    Ok(())
}
