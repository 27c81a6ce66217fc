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

use crate::git::repo::{ObjectId, RepoError};

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

/// A tree's raw bytes with an index of its entries: one allocation per tree, names and IDs borrowed from it.
struct RawTree {
    data: Vec<u8>,
    /// Per entry: start of its name, length of its name, whether it is a tree.
    entries: Vec<(u32, u16, bool)>,
    hash_len: usize,
}

impl RawTree {
    /// Index `data` (git's tree encoding: `<octal mode> <name>\0<id>` repeated); `None` if malformed.
    fn parse(data: Vec<u8>, hash_len: usize) -> Option<Self> {
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let space = pos + data[pos..].iter().position(|&b| b == b' ')?;
            let nul = space + 1 + data[space + 1..].iter().position(|&b| b == 0)?;
            if nul + 1 + hash_len > data.len() {
                return None;
            }
            let is_tree = &data[pos..space] == b"40000";
            entries.push((
                u32::try_from(space + 1).ok()?,
                u16::try_from(nul - space - 1).ok()?,
                is_tree,
            ));
            pos = nul + 1 + hash_len;
        }
        Some(RawTree {
            data,
            entries,
            hash_len,
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn name(&self, i: usize) -> &[u8] {
        let (start, len, _) = self.entries[i];
        &self.data[start as usize..start as usize + len as usize]
    }

    fn is_tree(&self, i: usize) -> bool {
        self.entries[i].2
    }

    /// Byte offset where entry `i` starts.
    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.end(i - 1)
        }
    }

    /// Byte offset just past entry `i`.
    fn end(&self, i: usize) -> usize {
        let (start, len, _) = self.entries[i];
        start as usize + len as usize + 1 + self.hash_len
    }

    fn id(&self, i: usize) -> ObjectId {
        let (start, len, _) = self.entries[i];
        let at = start as usize + len as usize + 1;
        ObjectId::from_bytes_or_panic(&self.data[at..at + self.hash_len])
    }

    /// The ID of the subtree `name`, by binary search in git's order.
    fn lookup(&self, name: &[u8]) -> Option<ObjectId> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match git_cmp((self.name(mid), self.is_tree(mid)), (name, true)) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(self.id(mid)),
            }
        }
        None
    }
}

/// git's tree-entry order: names compared bytewise, a tree's name as if followed by `/`.
fn git_cmp(a: (&[u8], bool), b: (&[u8], bool)) -> Ordering {
    let n = a.0.len().min(b.0.len());
    a.0[..n].cmp(&b.0[..n]).then_with(|| {
        let next = |(name, is_tree): (&[u8], bool)| {
            name.get(n)
                .copied()
                .unwrap_or(if is_tree { b'/' } else { 0 })
        };
        next(a).cmp(&next(b))
    })
}

/// Indices of entries of `new` that are absent from `old` or differ there.
///
/// Two versions of a tree usually differ in one entry: the identical leading and trailing entries are found
/// with a few bulk byte comparisons (binary searches), and only the middle is walked in lockstep.
fn changed(new: &RawTree, old: Option<&RawTree>) -> Vec<usize> {
    let Some(old) = old else {
        return (0..new.len()).collect();
    };
    let (n, o) = (new.len(), old.len());
    let same_prefix = |k: usize| {
        k == 0
            || (new.end(k - 1) == old.end(k - 1)
                && new.data[..new.end(k - 1)] == old.data[..old.end(k - 1)])
    };
    let prefix = largest(n.min(o), same_prefix);
    let same_suffix =
        |k: usize| k == 0 || new.data[new.start(n - k)..] == old.data[old.start(o - k)..];
    let suffix = largest(n.min(o) - prefix, same_suffix);
    let mut out = Vec::new();
    let mut j = prefix;
    for i in prefix..n - suffix {
        let key = (new.name(i), new.is_tree(i));
        while j < o - suffix && git_cmp((old.name(j), old.is_tree(j)), key).is_lt() {
            j += 1;
        }
        let same = j < o - suffix && old.name(j) == key.0 && old.id(j) == new.id(i);
        if !same {
            out.push(i);
        }
    }
    out
}

/// The largest `k <= max` with `ok(k)`, for a predicate that holds for 0 and is monotone (true, then false).
fn largest(max: usize, ok: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// A small cache of indexed trees: a linear history reads each tree as a child's and as a parent's.
struct Trees<'r> {
    repo: &'r gix::Repository,
    cache: HashMap<ObjectId, Rc<RawTree>>,
}

impl Trees<'_> {
    fn get(&mut self, id: ObjectId) -> Result<Rc<RawTree>, RepoError> {
        if let Some(t) = self.cache.get(&id) {
            return Ok(t.clone());
        }
        let tree = self.repo.find_tree(id).map_err(|_| bad(id, "tree"))?;
        let raw = RawTree::parse(tree.detach().data, id.kind().len_in_bytes())
            .ok_or_else(|| bad(id, "tree"))?;
        if self.cache.len() >= 256 {
            self.cache.clear();
        }
        let raw = Rc::new(raw);
        self.cache.insert(id, raw.clone());
        Ok(raw)
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
        pending
            .entry(shard.into())
            .or_default()
            .insert(rest.into(), *subtree);
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
            if let std::collections::hash_map::Entry::Vacant(slot) = infos.entry(p) {
                let Some(info) = read_commit(repo, p)? else {
                    continue; // missing (shallow): treated as absent
                };
                heap.push((info.when.committer.seconds, Reverse(p)));
                slot.insert(info);
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
    let parent_roots: Vec<Rc<RawTree>> = parents
        .iter()
        .map(|p| trees.get(*p))
        .collect::<Result<_, _>>()?;
    for i in changed(&root, parent_roots.first().map(|r| &**r)) {
        let Some(rests) = pending.get(root.name(i)) else {
            continue;
        };
        let shard_tree = root.id(i);
        let parent_shards: Vec<Option<ObjectId>> = parent_roots
            .iter()
            .map(|r| r.lookup(root.name(i)))
            .collect();
        if parent_shards.contains(&Some(shard_tree)) {
            continue; // TREESAME to another parent in this shard: introduced on that side
        }
        let entries = trees.get(shard_tree)?;
        let first = match parent_shards.first().copied().flatten() {
            Some(id) => Some(trees.get(id)?),
            None => None,
        };
        let others: Vec<Rc<RawTree>> = parent_shards
            .iter()
            .skip(1)
            .flatten()
            .map(|id| trees.get(*id))
            .collect::<Result<_, _>>()?;
        for j in changed(&entries, first.as_deref()) {
            let (rest, subtree) = (entries.name(j), entries.id(j));
            if rests.get(rest) == Some(&subtree)
                && !others.iter().any(|o| o.lookup(rest) == Some(subtree))
            {
                out.push((BString::from(root.name(i)), BString::from(rest)));
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

    /// Encode a tree of `(name, id char, is_tree)` the way git does (entries given in git order).
    fn raw(list: &[(&str, char, bool)]) -> RawTree {
        let mut data = Vec::new();
        for (name, c, is_tree) in list {
            data.extend_from_slice(if *is_tree { b"40000 " } else { b"100644 " });
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            data.extend_from_slice(oid(*c).as_bytes());
        }
        RawTree::parse(data, 20).expect("well-formed")
    }

    #[test]
    fn git_order_table() {
        // "a.b" (blob) < "a" (tree, compared as "a/") < "a0": '.' (0x2e) < '/' (0x2f) < '0' (0x30).
        type Case = ((&'static str, bool), (&'static str, bool), Ordering);
        let cases: &[Case] = &[
            (("a.b", false), ("a", true), Ordering::Less),
            (("a", true), ("a0", true), Ordering::Less),
            (("a", false), ("a.b", false), Ordering::Less),
            (("ab", true), ("ab", true), Ordering::Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                git_cmp((a.0.as_bytes(), a.1), (b.0.as_bytes(), b.1)),
                *want,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn changed_and_lookup() {
        let old = raw(&[("00", 'a', true), ("11", 'b', true), ("33", 'c', true)]);
        let new = raw(&[
            ("00", 'a', true),
            ("11", 'd', true),
            ("22", 'e', true),
            ("33", 'c', true),
        ]);
        let names: Vec<&[u8]> = changed(&new, Some(&old))
            .into_iter()
            .map(|i| new.name(i))
            .collect();
        assert_eq!(names, [b"11", b"22"]);
        assert_eq!(changed(&new, None).len(), 4);
        assert_eq!(new.lookup(b"22"), Some(oid('e')));
        assert_eq!(new.lookup(b"44"), None);
        // Changes at the edges and several in the middle; identical trees; removals only.
        let a = raw(&[
            ("00", 'a', true),
            ("11", 'b', true),
            ("22", 'c', true),
            ("33", 'd', true),
        ]);
        let b = raw(&[
            ("00", 'e', true),
            ("11", 'b', true),
            ("15", 'c', true),
            ("22", 'f', true),
            ("33", 'a', true),
        ]);
        let idx = |t: &RawTree, v: Vec<usize>| {
            v.into_iter()
                .map(|i| t.name(i).to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            idx(&b, changed(&b, Some(&a))),
            [
                b"00".to_vec(),
                b"15".to_vec(),
                b"22".to_vec(),
                b"33".to_vec()
            ]
        );
        assert!(changed(&a, Some(&a)).is_empty());
        let fewer = raw(&[("00", 'a', true), ("33", 'd', true)]);
        assert!(changed(&fewer, Some(&a)).is_empty());
        assert_eq!(largest(10, |k| k <= 4), 4);
        assert_eq!(largest(0, |_| true), 0);
        let mixed = raw(&[("a.b", 'a', false), ("a", 'b', true), ("a0", 'c', true)]);
        assert_eq!(mixed.lookup(b"a"), Some(oid('b')));
        assert!(RawTree::parse(b"40000 x\0short".to_vec(), 20).is_none());
    }
}
