//! Subagent task files of a session (`tasks/<tool-use-id>/…`): validated relative paths, read from a session
//! directory, written as one tree.
//!
//! Invariant: a task path is relative, with no empty, `.`, `..` or `.git` segment, no control character and no
//! backslash, so it can never escape the `tasks/` directory it is placed under.

use std::path::Path;

use crate::git::repo::{ObjectId, Repo};

use super::CheckpointError;

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

/// Write the blobs of a task tree and return the tree (`None` when there are no task files).
pub fn write_tasks(repo: &Repo, tasks: &[TaskFile]) -> Result<Option<ObjectId>, CheckpointError> {
    if tasks.is_empty() {
        return Ok(None);
    }
    let tree = repo.edit_tree(None, |ed| {
        for t in tasks {
            let blob = repo.write_blob(&t.data)?;
            ed.put_blob(&t.path, blob)?;
        }
        Ok(())
    })?;
    Ok(Some(tree))
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
