//! Backfilling a checkpoint into the v2 layout before it is extended (seed 004: "no partial v2 shadow").
//!
//! When a write adds a session to a checkpoint that exists in the ref store or on the legacy branch but not yet
//! in v2, writing only the new session to v2 would leave a v2 copy that lacks the older sessions — and v2 reads
//! would then show an incomplete checkpoint. So the v2 write carries every existing session first, read back
//! from the store that holds the checkpoint: metadata, the reassembled raw transcript, prompt, context,
//! compact transcript, and task files (a slot's `tasks/` stays with its session; a root-level `tasks/` tree
//! goes with the latest session, as upstream's backfill does).
//!
//! Read-only: this module only reads objects; the caller writes.

use crate::git::repo::{ObjectId, Repo};
use crate::model::checkpoint::{SessionInput, TaskFile};
use crate::model::metadata::SessionMetadata;

use super::{read_path, Located, StoreError};

/// The sessions of the checkpoint at `found` (a v1 layout: refs or branch), in slot order, and the task files of
/// its root-level `tasks/` tree (which the caller gives to the latest session it keeps).
/// Sessions for which `skip(session_id)` is true (the write replaces them) are not read back beyond their
/// metadata: a dual write of a new checkpoint finds the primary's copy it just wrote, and rereading its
/// transcripts would be wasted work.
pub fn sessions(
    repo: &Repo,
    found: &Located,
    skip: impl Fn(&str) -> bool,
) -> Result<(Vec<SessionInput>, Vec<TaskFile>), StoreError> {
    let entries = repo.tree_entries(found.tree)?;
    let mut slots: Vec<(usize, ObjectId)> = entries
        .iter()
        .filter(|e| e.is_tree)
        .filter_map(|e| e.name.parse::<usize>().ok().map(|n| (n, e.id)))
        .collect();
    slots.sort();
    let mut out = Vec::new();
    for (_, slot) in slots {
        let Some(meta) = read_path(repo, slot, "metadata.json")? else {
            continue;
        };
        let metadata = SessionMetadata::parse(&meta, "session metadata")
            .map_err(crate::model::checkpoint::CheckpointError::from)?;
        if skip(metadata.session_id()) {
            continue;
        }
        let transcript = read_path(repo, slot, "full.jsonl")?.unwrap_or_default();
        let mut tasks = Vec::new();
        if let Some(t) = repo.lookup(slot, "tasks")?.filter(|e| e.is_tree) {
            collect_tasks(repo, t.id, "", &mut tasks)?;
        }
        out.push(SessionInput {
            metadata,
            transcript,
            prompt: read_path(repo, slot, "prompt.txt")?,
            context: read_path(repo, slot, "context.md")?,
            compact: read_path(repo, slot, "transcript.jsonl")?,
            tasks,
        });
    }
    let mut root = Vec::new();
    if let Some(root_tasks) = entries.iter().find(|e| e.is_tree && e.name == "tasks") {
        collect_tasks(repo, root_tasks.id, "", &mut root)?;
    }
    Ok((out, root))
}

/// Every blob below `tree`, as task files with paths relative to the `tasks/` directory.
fn collect_tasks(
    repo: &Repo,
    tree: ObjectId,
    prefix: &str,
    out: &mut Vec<TaskFile>,
) -> Result<(), StoreError> {
    for e in repo.tree_entries(tree)? {
        let path = format!("{prefix}{}", e.name);
        if e.is_tree {
            collect_tasks(repo, e.id, &format!("{path}/"), out)?;
        } else {
            out.push(TaskFile::new(&path, repo.read_blob(e.id)?)?);
        }
    }
    Ok(())
}
