//! Subagent task files of a session (`tasks/<tool-use-id>/…`): validated relative paths, read from a session
//! directory or a manifest, written as one tree.
//!
//! Placement: the v1 layouts (ref store, legacy branch) keep one `tasks/` tree at the checkpoint root, merged by
//! tool-use ID on every write ([`merge_root`]: a task written again replaces that task's subtree, other tasks
//! stay), as upstream's current layout does; v2 keeps them under the owning session on `/full`.
//! The first path segment is the tool-use ID and must pass upstream's rule ([`validate::tool_use_id`]); one
//! tool-use ID in two sessions of one write is refused, as upstream does.
//!
//! Invariant: a task path is relative, with no empty, `.`, `..` or `.git` segment, no control character and no
//! backslash, so it can never escape the `tasks/` directory it is placed under.

use std::path::Path;

use crate::git::repo::{ObjectId, Repo, TreeEditor, TreeEntry};
use crate::model::transcript;
use crate::model::validate;

use super::{CheckpointError, SessionInput};

/// One file of a session's task tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// Slash-separated path below `tasks/`, e.g. `toolu_01/agent-a1.jsonl`; validated by [`TaskFile::new`].
    pub path: String,
    pub data: Vec<u8>,
}

impl TaskFile {
    /// A task file; the path must be relative, without empty, `.`, `..` or `.git` segments.
    pub fn new(path: &str, data: Vec<u8>) -> Result<Self, CheckpointError> {
        let bad = |problem| CheckpointError::BadTaskPath {
            path: path.to_string(),
            problem,
        };
        if path.is_empty() || path.starts_with('/') {
            return Err(bad("must be a relative path"));
        }
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." || seg.eq_ignore_ascii_case(".git") {
                return Err(bad("empty, \".\", \"..\" or \".git\" path segment"));
            }
            if seg.bytes().any(|b| b < 0x20 || b == b'\\') {
                return Err(bad("control character or backslash"));
            }
        }
        Ok(TaskFile {
            path: path.to_string(),
            data,
        })
    }
}

/// Put task file `t` into `ed`: a subagent transcript (`*.jsonl`) larger than [`transcript::MAX_CHUNK`] is split
/// at line boundaries into `<name>`, `<name>.001`, … exactly as `full.jsonl` is; other files go in whole.
fn put_task(repo: &Repo, ed: &mut TreeEditor<'_>, t: &TaskFile) -> Result<(), CheckpointError> {
    if !t.path.ends_with(".jsonl") || t.data.len() <= transcript::MAX_CHUNK {
        ed.put_blob(&t.path, repo.write_blob(&t.data)?)?;
        return Ok(());
    }
    let chunks = transcript::chunk(&t.data, transcript::MAX_CHUNK).map_err(|source| {
        CheckpointError::Chunk {
            what: format!("task file {}", t.path),
            source,
        }
    })?;
    for (i, c) in chunks.iter().enumerate() {
        ed.put_blob(&transcript::chunk_name_of(&t.path, i), repo.write_blob(c)?)?;
    }
    Ok(())
}

/// Write the blobs of a task tree and return the tree (`None` when there are no task files).
pub fn write_tasks(repo: &Repo, tasks: &[TaskFile]) -> Result<Option<ObjectId>, CheckpointError> {
    if tasks.is_empty() {
        return Ok(None);
    }
    let mut failed = None;
    let tree = repo.edit_tree(None, |ed| {
        for t in tasks {
            if let Err(e) = put_task(repo, ed, t) {
                failed = Some(e);
                break;
            }
        }
        Ok(())
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(Some(tree)),
    }
}

/// Read a `tasks/` directory recursively (sorted paths); a missing directory is no tasks.
pub(super) fn read_tasks(dir: &Path) -> Result<Vec<TaskFile>, CheckpointError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && prefix.is_empty() => {
                return Ok(out)
            }
            Err(source) => return Err(CheckpointError::Read { path: d, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CheckpointError::Read {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if path.is_dir() {
                stack.push((path, rel));
            } else {
                let data = std::fs::read(&path)
                    .map_err(|source| CheckpointError::Read { path, source })?;
                out.push(TaskFile::new(&rel, data)?);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Merge the task files of `batch` into the checkpoint root's `tasks/` entry of `entries` (v1 layouts).
pub(super) fn merge_root(
    repo: &Repo,
    entries: &mut Vec<TreeEntry>,
    batch: &[&SessionInput],
) -> Result<(), CheckpointError> {
    let mut owner: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for s in batch {
        for t in &s.tasks {
            let tool_use = t.path.split('/').next().unwrap_or("");
            if validate::tool_use_id(tool_use).is_err() {
                return Err(CheckpointError::BadTaskPath {
                    path: t.path.clone(),
                    problem: "the first segment must be a valid tool-use ID",
                });
            }
            let sid = s.metadata.session_id();
            if owner
                .insert(tool_use, sid)
                .is_some_and(|other| other != sid)
            {
                return Err(CheckpointError::BadTaskPath {
                    path: t.path.clone(),
                    problem: "this tool-use ID appears in two sessions of one write",
                });
            }
        }
    }
    if owner.is_empty() {
        return Ok(());
    }
    let base = entries
        .iter()
        .find(|e| e.is_tree && e.name == "tasks")
        .map(|e| e.id);
    let mut failed = None;
    let tree = repo.edit_tree(base, |ed| {
        for tool_use in owner.keys() {
            if base.is_some() {
                ed.remove(tool_use)?;
            }
        }
        for t in batch.iter().flat_map(|s| s.tasks.iter()) {
            if let Err(e) = put_task(repo, ed, t) {
                failed = Some(e);
                break;
            }
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    entries.retain(|e| e.name != "tasks");
    entries.push(TreeEntry {
        name: "tasks".into(),
        id: tree,
        is_tree: true,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_path_table() {
        for ok in ["toolu_01/agent-a.jsonl", "t/task.json", "a/b/c.txt", "x"] {
            assert!(TaskFile::new(ok, Vec::new()).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
            "a/\u{1}",
        ] {
            assert!(TaskFile::new(bad, Vec::new()).is_err(), "{bad:?}");
        }
    }
}
