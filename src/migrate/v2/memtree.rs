//! A v2 root tree (`<id[0:2]>/<id[2:]>/…`) edited in memory: the migration's replacement for per-edit tree
//! writes. Shard trees are read from the repository only when first touched; every new tree is hashed into an
//! [`ObjectSet`] (nothing touches the disk here), so a batch of checkpoints costs one tree per changed shard
//! plus the root.
//!
//! Invariants: tree entries are emitted in git's order (gix's `Tree` entry ordering, directories compare as
//! `name/`), so the same content always hashes to the same ID and `git fsck --strict` accepts it. Untouched
//! shards keep their IDs. Failure modes: only unreadable base trees ([`RepoError`]).

use std::collections::BTreeMap;

use gix::objs::tree::{Entry, EntryKind};

use crate::git::pack::ObjectSet;
use crate::git::repo::{ObjectId, Repo, RepoError};

/// One entry: `(id, is_tree)`.
type Leaf = (ObjectId, bool);

enum Node {
    Leaf(Leaf),
    /// A shard directory loaded for editing, with its ID when hashed since the last edit.
    Dir(BTreeMap<String, Leaf>, Option<ObjectId>),
}

/// A root tree with shard directories, edited in memory.
pub struct MemTree {
    root: BTreeMap<String, Node>,
}

/// Hash a tree made of `(name, id, is_tree)` entries into `objects`.
pub fn tree<'a>(
    objects: &mut ObjectSet,
    entries: impl IntoIterator<Item = (&'a str, ObjectId, bool)>,
) -> ObjectId {
    let mut t = gix::objs::Tree {
        entries: entries
            .into_iter()
            .map(|(name, oid, is_tree)| Entry {
                mode: match is_tree {
                    true => EntryKind::Tree.into(),
                    false => EntryKind::Blob.into(),
                },
                filename: name.into(),
                oid,
            })
            .collect(),
    };
    t.entries.sort();
    objects.add(&t)
}

impl MemTree {
    /// An empty tree.
    pub fn empty() -> Self {
        MemTree {
            root: BTreeMap::new(),
        }
    }

    /// Start from the tree `base` (read now: one tree).
    pub fn from(repo: &Repo, base: ObjectId) -> Result<Self, RepoError> {
        let root = repo
            .tree_entries(base)?
            .into_iter()
            .map(|e| (e.name, Node::Leaf((e.id, e.is_tree))))
            .collect();
        Ok(MemTree { root })
    }

    fn shard(&mut self, repo: &Repo, name: &str) -> Result<&mut BTreeMap<String, Leaf>, RepoError> {
        let loaded = match self.root.get(name) {
            Some(Node::Dir(..)) => None,
            Some(Node::Leaf((id, true))) => Some(
                repo.tree_entries(*id)?
                    .into_iter()
                    .map(|e| (e.name, (e.id, e.is_tree)))
                    .collect(),
            ),
            _ => Some(BTreeMap::new()),
        };
        if let Some(map) = loaded {
            self.root.insert(name.to_string(), Node::Dir(map, None));
        }
        match self.root.get_mut(name) {
            Some(Node::Dir(m, hashed)) => {
                *hashed = None;
                Ok(m)
            }
            _ => unreachable!("the shard was just made a directory"),
        }
    }

    /// Put the checkpoint subtree `tree` at `path` (`<shard>/<rest>`).
    pub fn put(&mut self, repo: &Repo, path: &str, tree: ObjectId) -> Result<(), RepoError> {
        let (shard, rest) = path.split_once('/').unwrap_or((path, ""));
        self.shard(repo, shard)?
            .insert(rest.to_string(), (tree, true));
        Ok(())
    }

    /// Put a blob at the root (e.g. `generation.json`).
    pub fn put_root_blob(&mut self, name: &str, blob: ObjectId) {
        self.root
            .insert(name.to_string(), Node::Leaf((blob, false)));
    }

    /// Hash every edited shard and the root into `objects`; returns the root ID. Shards stay loaded (their
    /// new trees exist only in `objects`, not in the repository).
    pub fn write(&mut self, objects: &mut ObjectSet) -> ObjectId {
        for node in self.root.values_mut() {
            if let Node::Dir(m, hashed @ None) = node {
                let id = tree(objects, m.iter().map(|(n, (id, t))| (n.as_str(), *id, *t)));
                *hashed = Some(id);
            }
        }
        tree(
            objects,
            self.root.iter().map(|(n, node)| match node {
                Node::Leaf((id, t)) => (n.as_str(), *id, *t),
                Node::Dir(_, Some(id)) => (n.as_str(), *id, true),
                Node::Dir(_, None) => unreachable!("every directory was just hashed"),
            }),
        )
    }
}
