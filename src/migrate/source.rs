//! The migration's input: the legacy branch and the checkpoints in its tip tree.
//!
//! Invariants:
//! - The source is `refs/heads/entire/checkpoints/v1` when it exists, else `refs/remotes/<remote>/entire/
//!   checkpoints/v1` of `origin`, else of the first remote (by name) that has one. Only its tip tree is read.
//! - A checkpoint is a tree at `<shard>/<rest>` whose concatenated name is a valid [`CheckpointId`] and whose
//!   [`CheckpointId::v1_path`] is exactly that path. Anything else that is a tree is reported as a [`Failure`]
//!   (bad shard directory, invalid ID, stray file inside a shard). Blobs at the root are not checkpoints (the
//!   upstream CLI may keep e.g. a Vercel config there) and are ignored.
//! - Reading is cheap: the root tree and one tree per shard, never a checkpoint's content.
//!
//! Failure modes: unreadable objects are a [`RepoError`]; malformed checkpoints are data ([`Failure`]).

use gix::bstr::ByteSlice;

use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::model::refname::{LEGACY_BRANCH, LEGACY_BRANCH_SHORT};

/// Where the legacy checkpoints were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ref_name: String,
    pub tip: ObjectId,
}

/// One checkpoint on the legacy branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyCheckpoint {
    pub id: CheckpointId,
    /// The checkpoint's subtree (`<id[:2]>/<id[2:]>`).
    pub subtree: ObjectId,
}

/// A checkpoint (or what looked like one) that cannot be migrated, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Path on the legacy branch.
    pub path: String,
    /// The ID, when the path spelled a valid one.
    pub id: Option<String>,
    pub reason: String,
}

/// Locate the legacy branch: local first, then remote-tracking (origin preferred).
pub fn find(repo: &Repo) -> Result<Option<Source>, RepoError> {
    if let Some(tip) = repo.find_ref(LEGACY_BRANCH)? {
        return Ok(Some(Source {
            ref_name: LEGACY_BRANCH.to_string(),
            tip,
        }));
    }
    let mut remotes: Vec<String> = repo
        .gix()
        .remote_names()
        .into_iter()
        .map(|n| n.to_str_lossy().into_owned())
        .collect();
    remotes.sort_by_key(|r| (r != "origin", r.clone()));
    for remote in remotes {
        let name = format!("refs/remotes/{remote}/{LEGACY_BRANCH_SHORT}");
        if let Some(tip) = repo.find_ref(&name)? {
            return Ok(Some(Source {
                ref_name: name,
                tip,
            }));
        }
    }
    Ok(None)
}

/// `(name, id, is_tree)` of every entry of `tree`.
fn entries(
    odb: &gix::Repository,
    tree: ObjectId,
) -> Result<Vec<(String, ObjectId, bool)>, RepoError> {
    let bad = || RepoError::BadObject {
        what: "reading the legacy branch".into(),
        id: tree,
        kind: "tree",
    };
    let t = odb.find_tree(tree).map_err(|_| bad())?;
    let decoded = t.decode().map_err(|_| bad())?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| {
            (
                e.filename.to_str_lossy().into_owned(),
                e.oid.to_owned(),
                e.mode.is_tree(),
            )
        })
        .collect())
}

/// All checkpoints of the legacy tree `root`, sorted by ID, plus the entries that are not valid checkpoints.
pub fn scan(
    odb: &gix::Repository,
    root: ObjectId,
) -> Result<(Vec<LegacyCheckpoint>, Vec<Failure>), RepoError> {
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for (shard, shard_tree, is_tree) in entries(odb, root)? {
        if !is_tree {
            continue;
        }
        if shard.len() != 2 || !shard.bytes().all(|b| b.is_ascii_alphanumeric()) {
            failures.push(Failure {
                path: shard.clone(),
                id: None,
                reason: "not a checkpoint shard directory (expected two characters)".into(),
            });
            continue;
        }
        for (rest, subtree, is_tree) in entries(odb, shard_tree)? {
            match classify(&shard, &rest, is_tree) {
                Ok(id) => found.push(LegacyCheckpoint { id, subtree }),
                Err((id, reason)) => failures.push(Failure {
                    path: format!("{shard}/{rest}"),
                    id,
                    reason,
                }),
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((found, failures))
}

/// The ID stored at `<shard>/<rest>` (`shard` has two characters, so the path is the ID's v1 path), or the ID
/// (if any) and why it is not a checkpoint.
fn classify(
    shard: &str,
    rest: &str,
    is_tree: bool,
) -> Result<CheckpointId, (Option<String>, String)> {
    let mut joined = String::with_capacity(shard.len() + rest.len());
    joined.push_str(shard);
    joined.push_str(rest);
    let id = CheckpointId::parse(&joined).map_err(|e| (None, e.to_string()))?;
    debug_assert_eq!(id.v1_path(), format!("{shard}/{rest}"));
    if !is_tree {
        return Err((
            Some(id.to_string()),
            "a file where a checkpoint directory belongs".into(),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let cases: &[(&str, &str, bool, Result<&str, &str>)] = &[
            ("92", "a0e41fd911", true, Ok("92a0e41fd911")),
            (
                "01",
                "KVBJCWYA4YW6J5M9GP655HZN",
                true,
                Ok("01KVBJCWYA4YW6J5M9GP655HZN"),
            ),
            ("92", "a0e41fd911", false, Err("a file where")),
            ("92", "A0E41FD911", true, Err("lowercase hex")),
            ("92", "a0e41fd9", true, Err("expected 12 lowercase hex")),
            ("92", "..", true, Err("path separator or '..'")),
        ];
        for (shard, rest, is_tree, want) in cases {
            let got = classify(shard, rest, *is_tree);
            match (want, got) {
                (Ok(w), Ok(id)) => assert_eq!(id.as_str(), *w),
                (Err(w), Err((_, reason))) => {
                    assert!(reason.contains(w), "{shard}/{rest}: {reason}")
                }
                (w, g) => panic!("{shard}/{rest}: want {w:?}, got {g:?}"),
            }
        }
    }
}
