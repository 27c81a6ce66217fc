//! When was each checkpoint last changed on the legacy branch? One walk over the history, newest first.
//!
//! For checkpoint `x` whose tip subtree is `S`, the answer is the commit that *introduced* `S` at `x`'s path:
//! the commit has `S` there and no parent has (git's TREESAME rule, as `git log -1 -- <path>` would follow it,
//! so a "Merge remote session logs" commit that merely brings in a side line's checkpoint is not credited; the
//! side-line commit that wrote it is). Its author and committer dates become the migrated commit's dates.
//!
//! Invariants:
//! - Commits are visited once, newest committer date first, and the walk stops as soon as every wanted
//!   checkpoint is dated; only root and shard trees are read (never checkpoint content), and only for shards
//!   that still hold undated checkpoints.
//! - The result is a pure function of the history (ties between equal dates break by object ID), so every clone
//!   computes the same dates.
//! - A parent commit that is missing (shallow clone) counts as absent: its child introduces everything.
//!
//! Failure modes: unreadable objects are a [`RepoError`]; a wanted checkpoint that no commit introduces
//! (impossible in a consistent history) falls back to the tip commit's dates.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use gix::bstr::BString;
use gix::date::Time;

use crate::repo::{ObjectId, RepoError};

/// Author and committer time of the commit that last changed a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub author: Time,
    pub committer: Time,
}

struct CommitInfo {
    tree: ObjectId,
    parents: Vec<ObjectId>,
    when: When,
}

fn bad(id: ObjectId, kind: &'static str) -> RepoError {
    RepoError::BadObject {
        what: "walking the legacy branch".into(),
        id,
        kind,
    }
}

fn read_commit(repo: &gix::Repository, id: ObjectId) -> Result<Option<CommitInfo>, RepoError> {
    let Ok(commit) = repo.find_commit(id) else {
        return Ok(None);
    };
    let decoded = commit.decode().map_err(|_| bad(id, "commit"))?;
    let time = |sig: Result<gix::actor::SignatureRef<'_>, _>| sig.ok().and_then(|s| s.time().ok());
    let author = time(decoded.author()).ok_or_else(|| bad(id, "commit"))?;
    let committer = time(decoded.committer()).ok_or_else(|| bad(id, "commit"))?;
    Ok(Some(CommitInfo {
        tree: decoded.tree(),
        parents: decoded.parents().collect(),
        when: When { author, committer },
    }))
}

/// Entries `(name, id, is_tree)` of a tree, in git's order.
type Entries = Vec<(BString, ObjectId, bool)>;

/// git's tree-entry order: names compared bytewise, a tree's name as if followed by `/`.
fn git_cmp(a: (&[u8], bool), b: (&[u8], bool)) -> Ordering {
    let n = a.0.len().min(b.0.len());
    a.0[..n].cmp(&b.0[..n]).then_with(|| {
        let next = |(name, is_tree): (&[u8], bool)| {
            name.get(n).copied().unwrap_or(if is_tree { b'/' } else { 0 })
        };
        next(a).cmp(&next(b))
    })
}

/// The entry of `entries` named `name` (a tree), by binary search in git's order.
fn lookup(entries: &Entries, name: &[u8]) -> Option<ObjectId> {
    entries
        .binary_search_by(|e| git_cmp((e.0.as_slice(), e.2), (name, true)))
        .ok()
        .map(|i| entries[i].1)
}

/// Entries of `new` that are absent from `old` or differ there (a lockstep walk of two sorted lists).
fn changed<'a>(new: &'a Entries, old: Option<&Entries>) -> Vec<&'a (BString, ObjectId, bool)> {
    let Some(old) = old else {
        return new.iter().collect();
    };
    let mut out = Vec::new();
    let mut j = 0;
    for e in new {
        while j < old.len() && git_cmp((old[j].0.as_slice(), old[j].2), (e.0.as_slice(), e.2)).is_lt() {
            j += 1;
        }
        if !(j < old.len() && old[j].0 == e.0 && old[j].1 == e.1) {
            out.push(e);
        }
    }
    out
}

/// A small cache of decoded trees: a linear history reads each tree as a child's and as a parent's.
struct Trees<'r> {
    repo: &'r gix::Repository,
    cache: HashMap<ObjectId, Rc<Entries>>,
}

impl Trees<'_> {
    fn get(&mut self, id: ObjectId) -> Result<Rc<Entries>, RepoError> {
        if let Some(t) = self.cache.get(&id) {
            return Ok(t.clone());
        }
        let tree = self.repo.find_tree(id).map_err(|_| bad(id, "tree"))?;
        let decoded = tree.decode().map_err(|_| bad(id, "tree"))?;
        let entries: Entries = decoded
            .entries
            .iter()
            .map(|e| (e.filename.to_owned(), e.oid.to_owned(), e.mode.is_tree()))
            .collect();
        if self.cache.len() >= 256 {
            self.cache.clear();
        }
        let entries = Rc::new(entries);
        self.cache.insert(id, entries.clone());
        Ok(entries)
    }
}

/// Dates for `wanted` (`<shard>/<rest>` → tip subtree). `visited(n)` reports progress in commits.
pub fn last_changed(
    repo: &gix::Repository,
    tip: ObjectId,
    wanted: &HashMap<String, ObjectId>,
    visited: &mut dyn FnMut(usize),
) -> Result<HashMap<String, When>, RepoError> {
    // shard -> rest -> subtree, for what is still undated.
    let mut pending: HashMap<BString, HashMap<BString, ObjectId>> = HashMap::new();
    for (path, subtree) in wanted {
        let (shard, rest) = path.split_once('/').expect("v1 paths are <shard>/<rest>");
        pending.entry(shard.into()).or_default().insert(rest.into(), *subtree);
    }
    let mut left = wanted.len();
    let mut found = HashMap::with_capacity(wanted.len());
    let mut trees = Trees {
        repo,
        cache: HashMap::new(),
    };
    let mut infos: HashMap<ObjectId, CommitInfo> = HashMap::new();
    let mut heap = BinaryHeap::new();
    let tip_info = read_commit(repo, tip)?.ok_or_else(|| bad(tip, "commit"))?;
    let tip_when = tip_info.when;
    heap.push((tip_info.when.committer.seconds, Reverse(tip)));
    infos.insert(tip, tip_info);
    let mut count = 0;
    while left > 0 {
        let Some((_, Reverse(id))) = heap.pop() else {
            break;
        };
        count += 1;
        visited(count);
        let (tree, parents, when) = {
            let info = &infos[&id];
            (info.tree, info.parents.clone(), info.when)
        };
        let mut parent_trees = Vec::with_capacity(parents.len());
        for p in parents {
            if !infos.contains_key(&p) {
                match read_commit(repo, p)? {
                    Some(info) => {
                        heap.push((info.when.committer.seconds, Reverse(p)));
                        infos.insert(p, info);
                    }
                    None => continue, // missing (shallow): treated as absent
                }
            }
            parent_trees.push(infos[&p].tree);
        }
        let introduced = introduced_here(&mut trees, tree, &parent_trees, &pending)?;
        for (shard, rest) in introduced {
            if let Some(rests) = pending.get_mut(&shard) {
                if rests.remove(&rest).is_some() {
                    left -= 1;
                    found.insert(format!("{shard}/{rest}"), when);
                }
                if rests.is_empty() {
                    pending.remove(&shard);
                }
            }
        }
    }
    for (shard, rests) in pending {
        for rest in rests.keys() {
            tracing::warn!("no commit introduces {shard}/{rest}; using the tip's dates");
            found.insert(format!("{shard}/{rest}"), tip_when);
        }
    }
    Ok(found)
}

/// Pending checkpoints whose wanted subtree is in `tree` but in none of `parents`.
fn introduced_here(
    trees: &mut Trees<'_>,
    tree: ObjectId,
    parents: &[ObjectId],
    pending: &HashMap<BString, HashMap<BString, ObjectId>>,
) -> Result<Vec<(BString, BString)>, RepoError> {
    let mut out = Vec::new();
    if parents.contains(&tree) {
        return Ok(out);
    }
    let root = trees.get(tree)?;
    let parent_roots: Vec<Rc<Entries>> = parents.iter().map(|p| trees.get(*p)).collect::<Result<_, _>>()?;
    for (shard, shard_tree, _) in changed(&root, parent_roots.first().map(|r| &**r)) {
        let Some(rests) = pending.get(shard) else {
            continue;
        };
        let parent_shards: Vec<Option<ObjectId>> = parent_roots.iter().map(|r| lookup(r, shard)).collect();
        if parent_shards.contains(&Some(*shard_tree)) {
            continue; // TREESAME to another parent in this shard: introduced on that side
        }
        let entries = trees.get(*shard_tree)?;
        let first = match parent_shards.first().copied().flatten() {
            Some(id) => Some(trees.get(id)?),
            None => None,
        };
        let others: Vec<Rc<Entries>> = parent_shards
            .iter()
            .skip(1)
            .flatten()
            .map(|id| trees.get(*id))
            .collect::<Result<_, _>>()?;
        for (rest, subtree, _) in changed(&entries, first.as_deref()) {
            if rests.get(rest) == Some(subtree) && !others.iter().any(|o| lookup(o, rest) == Some(*subtree)) {
                out.push((shard.clone(), rest.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> ObjectId {
        ObjectId::from_hex(c.to_string().repeat(40).as_bytes()).expect("hex")
    }

    fn entries(list: &[(&str, char, bool)]) -> Entries {
        list.iter().map(|(n, c, t)| (BString::from(*n), oid(*c), *t)).collect()
    }

    #[test]
    fn git_order_table() {
        // "a.b" (blob) < "a" (tree, compared as "a/") < "a0": '.' (0x2e) < '/' (0x2f) < '0' (0x30).
        let cases: &[((&str, bool), (&str, bool), Ordering)] = &[
            (("a.b", false), ("a", true), Ordering::Less),
            (("a", true), ("a0", true), Ordering::Less),
            (("a", false), ("a.b", false), Ordering::Less),
            (("ab", true), ("ab", true), Ordering::Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(git_cmp((a.0.as_bytes(), a.1), (b.0.as_bytes(), b.1)), *want, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn changed_and_lookup() {
        let old = entries(&[("00", 'a', true), ("11", 'b', true), ("33", 'c', true)]);
        let new = entries(&[("00", 'a', true), ("11", 'd', true), ("22", 'e', true), ("33", 'c', true)]);
        let names: Vec<&str> = changed(&new, Some(&old)).iter().map(|e| e.0.to_str().expect("utf-8")).collect();
        assert_eq!(names, ["11", "22"]);
        assert_eq!(changed(&new, None).len(), 4);
        assert_eq!(lookup(&new, b"22"), Some(oid('e')));
        assert_eq!(lookup(&new, b"44"), None);
    }
}
