//! Recovering a diverged legacy branch (`refs/heads/entire/checkpoints/v1`), as upstream does
//! (reference `entire-checkpoint-formats.md` §2.9): the local-only checkpoint commits
//! (`rev-list --reverse --topo-order --no-merges <remote>..<local>`) are replayed onto the remote tip, keeping
//! their author and message (committer: the caller's identity). A replay works at checkpoint granularity: each
//! commit's changed `<aa>/<rest>` directories are applied when the new base still holds what the commit was
//! made on (or already holds its result). When a replay conflicts, the result is one union merge commit
//! `Merge remote session logs` with parents [local, remote] instead: union by checkpoint, a checkpoint both
//! sides changed merged by session slot ([`super::checkpoint::merge`]).
//!
//! Nothing here moves a ref; the caller compares-and-swaps the local branch from `local` to the result.

use std::path::Path;

use crate::git::cmd::{self as gitcmd};
use crate::git::repo::{Identity, ObjectId, Repo, RepoError, TreeEntry};
use crate::model::id::CheckpointId;

use super::checkpoint::{self, Layout};
use super::MergeError;

/// Message of the union merge commit (upstream's).
pub const MERGE_MESSAGE: &str = "Merge remote session logs\n";

/// What the recovery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The remote already contains the local tip: push it as it is.
    Ahead,
    /// The local tip is behind the remote: adopt the remote tip, nothing to push.
    Behind,
    /// Local-only commits replayed onto the remote tip: the new tip.
    Replayed(ObjectId),
    /// A replay conflicted: the union merge commit.
    Merged(ObjectId),
}

/// True when `a` is an ancestor of (or equal to) `b`.
pub fn is_ancestor(dir: &Path, a: ObjectId, b: ObjectId) -> Result<bool, MergeError> {
    Ok(gitcmd::is_ancestor(dir, a, b)?)
}

/// Recover `local` against the fetched `remote` tip of the legacy branch.
pub fn recover(
    repo: &Repo,
    dir: &Path,
    local: ObjectId,
    remote: ObjectId,
    who: &Identity,
) -> Result<Recovered, MergeError> {
    if is_ancestor(dir, remote, local)? {
        return Ok(Recovered::Ahead);
    }
    if is_ancestor(dir, local, remote)? {
        return Ok(Recovered::Behind);
    }
    let mut cmd = gitcmd::git();
    cmd.arg("-C").arg(dir).args([
        "rev-list",
        "--reverse",
        "--topo-order",
        "--no-merges",
        &format!("{remote}..{local}"),
    ]);
    let list = gitcmd::run_ok(&mut cmd)?;
    let mut tip = remote;
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let commit =
            ObjectId::from_hex(line.trim().as_bytes()).map_err(|_| RepoError::BadObject {
                what: "listing local-only legacy commits".into(),
                id: local,
                kind: "commit",
            })?;
        match replay_one(repo, commit, tip, who)? {
            Some(next) => tip = next,
            None => return union_merge(repo, local, remote, who).map(Recovered::Merged),
        }
    }
    Ok(Recovered::Replayed(tip))
}

/// A changed path (a checkpoint directory, or a root entry that is not one): before and after.
type Change = (String, Option<TreeEntry>, Option<TreeEntry>);

/// The checkpoint-level changes between two legacy trees.
pub fn changes(repo: &Repo, before: ObjectId, after: ObjectId) -> Result<Vec<Change>, MergeError> {
    let mut out = Vec::new();
    for (name, b, a) in pairs(repo.tree_entries(before)?, repo.tree_entries(after)?) {
        let shard = |e: &Option<TreeEntry>| e.as_ref().is_none_or(|e| e.is_tree && name.len() == 2);
        if shard(&b) && shard(&a) {
            let list = |e: &Option<TreeEntry>| -> Result<Vec<TreeEntry>, MergeError> {
                Ok(match e {
                    Some(e) => repo.tree_entries(e.id)?,
                    None => Vec::new(),
                })
            };
            for (cp, b2, a2) in pairs(list(&b)?, list(&a)?) {
                out.push((format!("{name}/{cp}"), b2, a2));
            }
        } else {
            out.push((name, b, a));
        }
    }
    Ok(out)
}

/// Entries of two trees paired by name, only those that differ.
fn pairs(
    before: Vec<TreeEntry>,
    after: Vec<TreeEntry>,
) -> Vec<(String, Option<TreeEntry>, Option<TreeEntry>)> {
    let mut names: Vec<String> = before
        .iter()
        .chain(&after)
        .map(|e| e.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let b = before.iter().find(|e| e.name == n).cloned();
            let a = after.iter().find(|e| e.name == n).cloned();
            (b != a).then_some((n, b, a))
        })
        .collect()
}

/// Replay `commit` onto `onto`; `None` when it conflicts.
fn replay_one(
    repo: &Repo,
    commit: ObjectId,
    onto: ObjectId,
    who: &Identity,
) -> Result<Option<ObjectId>, MergeError> {
    let parent_tree = match repo.commit_parents(commit)?.first() {
        Some(p) => repo.commit_tree(*p)?,
        None => repo.empty_tree(),
    };
    let base = repo.commit_tree(onto)?;
    let mut edits = Vec::new();
    for (path, before, after) in changes(repo, parent_tree, repo.commit_tree(commit)?)? {
        let current = repo.lookup(base, &path)?;
        let id = |e: &Option<TreeEntry>| e.as_ref().map(|e| e.id);
        if id(&current) == id(&after) {
            continue;
        }
        if id(&current) != id(&before) {
            return Ok(None);
        }
        edits.push((path, after));
    }
    let tree = repo.edit_tree(Some(base), |ed| {
        for (path, after) in &edits {
            match after {
                Some(e) if e.is_tree => ed.put_tree(path, e.id)?,
                Some(e) => ed.put_blob(path, e.id)?,
                None => ed.remove(path)?,
            }
        }
        Ok(())
    })?;
    let bad = || RepoError::BadObject {
        what: "replaying a legacy checkpoint commit".into(),
        id: commit,
        kind: "commit",
    };
    let original = repo.gix().find_commit(commit).map_err(|_| bad())?;
    let mut owned = original
        .decode()
        .ok()
        .and_then(|d| d.into_owned().ok())
        .ok_or_else(bad)?;
    owned.tree = tree;
    owned.parents = [onto].into_iter().collect();
    owned.committer = repo.commit_object(tree, &[], who, who, "").committer;
    owned.extra_headers.clear();
    Ok(Some(repo.write_object(&owned)?))
}

/// The union merge commit of the two tips (parents [local, remote]).
pub fn union_merge(
    repo: &Repo,
    local: ObjectId,
    remote: ObjectId,
    who: &Identity,
) -> Result<ObjectId, MergeError> {
    let (l, r) = (repo.commit_tree(local)?, repo.commit_tree(remote)?);
    let mut edits = Vec::new();
    for (path, theirs, ours) in changes(repo, r, l)? {
        let Some(ours) = ours else {
            continue; // only the remote has it: kept
        };
        let merged = match theirs {
            Some(t) if t.is_tree && ours.is_tree => {
                match CheckpointId::parse(&path.replace('/', "")) {
                    Ok(id) => checkpoint::merge(repo, Layout::Legacy, &id, ours.id, t.id)?.0,
                    Err(_) => checkpoint::union(repo, ours.id, t.id)?,
                }
            }
            _ => ours.id,
        };
        edits.push((path, TreeEntry { id: merged, ..ours }));
    }
    let tree = repo.edit_tree(Some(r), |ed| {
        for (path, e) in &edits {
            if e.is_tree {
                ed.put_tree(path, e.id)?;
            } else {
                ed.put_blob(path, e.id)?;
            }
        }
        Ok(())
    })?;
    Ok(repo.write_commit(tree, &[local, remote], who, who, MERGE_MESSAGE)?)
}
