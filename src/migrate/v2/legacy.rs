//! Read one legacy (`entire/checkpoints/v1`) checkpoint subtree into the sessions a v2 write takes.
//!
//! Sessions are the numeric slot directories of the checkpoint (`0/`, `1/`, …), read directly from the
//! tree, so the root `sessions[]` paths are never followed: real legacy data has doubled-prefix paths there
//! (`/93/416fad752b/93/416fad752b/0/…`) and they would not resolve. A slot without a transcript keeps its
//! metadata (the `/main` entry) and gets no `/full` artifacts. Pure reads; no failure mode beyond unreadable
//! objects and malformed session metadata, both reported per checkpoint by the caller.

use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::checkpoint::{SessionInput, TaskFile};
use crate::model::metadata::SessionMetadata;
use crate::model::transcript;

/// One legacy session slot.
pub struct LegacySession {
    pub slot: usize,
    pub input: SessionInput,
}

/// Why a legacy checkpoint cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0}")]
    Bad(String),
}

/// The session slots of the checkpoint subtree `tree`, by slot number.
pub fn sessions(repo: &Repo, tree: ObjectId) -> Result<Vec<LegacySession>, LegacyError> {
    let mut slots: Vec<(usize, ObjectId)> = repo
        .tree_entries(tree)?
        .into_iter()
        .filter(|e| e.is_tree)
        .filter_map(|e| slot_number(&e.name).map(|n| (n, e.id)))
        .collect();
    slots.sort_unstable();
    let mut out = Vec::with_capacity(slots.len());
    for (slot, t) in slots {
        out.push(LegacySession {
            slot,
            input: session(repo, slot, t)?,
        });
    }
    if out.is_empty() {
        return Err(LegacyError::Bad("no session directories".into()));
    }
    Ok(out)
}

/// `"0"` → 0; no leading zeros, digits only.
pub fn slot_number(name: &str) -> Option<usize> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && (name == "0" || !name.starts_with('0'));
    ok.then(|| name.parse().ok()).flatten()
}

fn session(repo: &Repo, slot: usize, tree: ObjectId) -> Result<SessionInput, LegacyError> {
    let mut meta = None;
    let mut chunks: Vec<(usize, ObjectId)> = Vec::new();
    let (mut prompt, mut context, mut compact, mut tasks) = (None, None, None, Vec::new());
    for e in repo.tree_entries(tree)? {
        match (e.name.as_str(), e.is_tree) {
            ("metadata.json", false) => meta = Some(repo.read_blob(e.id)?),
            ("prompt.txt", false) => prompt = Some(repo.read_blob(e.id)?),
            ("context.md", false) => context = Some(repo.read_blob(e.id)?),
            ("transcript.jsonl", false) => compact = Some(repo.read_blob(e.id)?),
            ("tasks", true) => read_tasks(repo, e.id, "", &mut tasks)?,
            (name, false) => {
                if let Some(i) = transcript::chunk_index(name) {
                    chunks.push((i, e.id));
                }
            }
            _ => {}
        }
    }
    let meta = meta.ok_or_else(|| LegacyError::Bad(format!("session {slot}: no metadata.json")))?;
    let metadata = SessionMetadata::parse(&meta, &format!("{slot}/metadata.json"))
        .map_err(|e| LegacyError::Bad(e.to_string()))?;
    chunks.sort_unstable();
    let mut parts = Vec::with_capacity(chunks.len());
    for (_, id) in chunks {
        parts.push(repo.read_blob(id)?);
    }
    tasks.sort_by(|a: &TaskFile, b| a.path.cmp(&b.path));
    Ok(SessionInput {
        metadata,
        transcript: transcript::reassemble(&parts),
        prompt,
        context,
        compact,
        tasks,
    })
}

fn read_tasks(
    repo: &Repo,
    tree: ObjectId,
    prefix: &str,
    out: &mut Vec<TaskFile>,
) -> Result<(), LegacyError> {
    for e in repo.tree_entries(tree)? {
        let path = format!("{prefix}{}", e.name);
        if e.is_tree {
            read_tasks(repo, e.id, &format!("{path}/"), out)?;
        } else {
            let file = TaskFile::new(&path, repo.read_blob(e.id)?)
                .map_err(|err| LegacyError::Bad(err.to_string()))?;
            out.push(file);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slot_number;

    #[test]
    fn slot_names() {
        for (name, want) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("12", Some(12)),
            ("01", None),
            ("", None),
            ("tasks", None),
            ("1a", None),
        ] {
            assert_eq!(slot_number(name), want, "{name:?}");
        }
    }
}
