//! One checkpoint directory that both sides wrote, merged by session slot, and the generic tree union.
//!
//! - [`union`]: entries of both trees; on equal names identical entries stay, two subtrees are merged
//!   recursively, anything else takes the local entry. Used for task trees and for `/full` checkpoints that
//!   have no slot plan.
//! - [`merge`]: a checkpoint of `/main` or of the legacy branch: slots placed by [`super::slots::plan`]
//!   (sessions matched by `session_id` from `<n>/metadata.json`), other entries (the legacy `tasks/` tree)
//!   united, and the root `metadata.json` re-aggregated from the merged slots (the remote's root as the base,
//!   so fields we do not model survive).
//! - [`ensure_checkpoint`]: a per-checkpoint ref's commit is merged by session only when its root
//!   `metadata.json` names that checkpoint.
//! - [`apply`]: the same plan applied to a `/full` checkpoint (no owners there), so `/main` and `/full` slots
//!   stay aligned.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::git::repo::{ObjectId, Repo, TreeEntry};
use crate::model::checkpoint::summarize;
use crate::model::id::CheckpointId;
use crate::model::metadata::{self, RootMetadata};
use crate::store::v2::layout::{self, COMPACT, COMPACT_HASH, METADATA, PROMPT};

use super::slots::{self, Placed, Side, Slot};
use super::MergeError;

/// Where a merged checkpoint lives, for the `sessions[]` paths of its root `metadata.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `v2/main`: `{metadata, transcript (compact), context "", content_hash, prompt}`, `""` when absent.
    V2Main,
    /// The legacy branch: `{metadata, transcript, compact_transcript, context, content_hash}` when present,
    /// `prompt` always (`""` when absent).
    Legacy,
    /// A per-checkpoint ref: the legacy files, with paths relative to the ref's root (`/0/full.jsonl`).
    Refs,
}

/// The union of two trees (local wins on a conflicting non-tree entry).
pub fn union(repo: &Repo, local: ObjectId, remote: ObjectId) -> Result<ObjectId, MergeError> {
    if local == remote {
        return Ok(local);
    }
    let entries = union_entries(repo, repo.tree_entries(local)?, repo.tree_entries(remote)?)?;
    Ok(repo.write_tree(&entries)?)
}

fn union_entries(
    repo: &Repo,
    local: Vec<TreeEntry>,
    remote: Vec<TreeEntry>,
) -> Result<Vec<TreeEntry>, MergeError> {
    let mut by_name: BTreeMap<String, TreeEntry> =
        remote.into_iter().map(|e| (e.name.clone(), e)).collect();
    for l in local {
        let merged = match by_name.get(&l.name) {
            Some(r) if r.id == l.id => continue,
            Some(r) if r.is_tree && l.is_tree => TreeEntry {
                id: union(repo, l.id, r.id)?,
                ..l
            },
            _ => l,
        };
        by_name.insert(merged.name.clone(), merged);
    }
    Ok(by_name.into_values().collect())
}

/// A checkpoint's slots with their owners and metadata, and its other entries (root `metadata.json` left out).
struct Read {
    slots: Vec<Slot<ObjectId>>,
    metas: BTreeMap<usize, Map<String, Value>>,
    others: Vec<TreeEntry>,
    root: Option<RootMetadata>,
}

fn read(repo: &Repo, cp: ObjectId, what: &str) -> Result<Read, MergeError> {
    let mut out = Read {
        slots: Vec::new(),
        metas: BTreeMap::new(),
        others: Vec::new(),
        root: None,
    };
    let numbered: BTreeMap<usize, ObjectId> = layout::slots(repo, cp)?.into_iter().collect();
    for e in repo.tree_entries(cp)? {
        if e.is_tree && numbered.get(&e.name.parse().unwrap_or(usize::MAX)) == Some(&e.id) {
            continue;
        }
        if e.name == METADATA && !e.is_tree {
            out.root =
                RootMetadata::parse(&repo.read_blob(e.id)?, &format!("{what}/{METADATA}")).ok();
            continue;
        }
        out.others.push(e);
    }
    for (n, tree) in numbered {
        let meta = match repo.lookup(tree, METADATA)? {
            Some(e) if !e.is_tree => metadata::parse_object(&repo.read_blob(e.id)?, what).ok(),
            _ => None,
        };
        let owner = meta
            .as_ref()
            .and_then(|m| metadata::str_field(m, "session_id"))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(m) = meta {
            out.metas.insert(n, m);
        }
        out.slots.push(Slot {
            n,
            owner,
            content: tree,
        });
    }
    Ok(out)
}

fn slot_tree(list: &[Slot<ObjectId>], n: Option<usize>) -> Option<ObjectId> {
    n.and_then(|n| list.iter().find(|s| s.n == n))
        .map(|s| s.content)
}

/// Merge checkpoint `id` of `layout` that both sides wrote; returns the merged subtree and the slot plan.
pub fn merge(
    repo: &Repo,
    layout: Layout,
    id: &CheckpointId,
    local: ObjectId,
    remote: ObjectId,
) -> Result<(ObjectId, Vec<Placed>), MergeError> {
    let path = layout::checkpoint_path(id);
    let l = read(repo, local, &format!("local {path}"))?;
    let r = read(repo, remote, &format!("remote {path}"))?;
    let plan = slots::plan(&l.slots, &r.slots);
    let mut entries = union_entries(repo, l.others, r.others)?;
    let mut metas: Vec<&Map<String, Value>> = Vec::new();
    let mut paths = Vec::new();
    for p in &plan {
        let (list, found) = match p.side {
            Side::Local => (&l.slots, &l.metas),
            Side::Remote => (&r.slots, &r.metas),
        };
        let Some(tree) = slot_tree(list, Some(p.from)) else {
            continue;
        };
        if let Some(m) = found.get(&p.from) {
            metas.push(m);
        }
        let names: Vec<String> = repo
            .tree_entries(tree)?
            .into_iter()
            .map(|e| e.name)
            .collect();
        let dir = match layout {
            Layout::Refs => format!("/{}", p.slot),
            _ => format!("/{path}/{}", p.slot),
        };
        paths.push(session_paths(layout, &dir, &names));
        entries.push(TreeEntry {
            name: p.slot.to_string(),
            id: tree,
            is_tree: true,
        });
    }
    let root = summarize(r.root.or(l.root), id, &metas, paths, None);
    entries.push(TreeEntry {
        name: METADATA.to_string(),
        id: repo.write_blob(&root.to_bytes())?,
        is_tree: false,
    });
    Ok((repo.write_tree(&entries)?, plan))
}

/// Check that `tree` (the `side` value of per-checkpoint ref `name`) is a checkpoint of `id`: a root
/// `metadata.json` that parses and names `id`. Anything else is not merged by session (never guessed at).
pub fn ensure_checkpoint(
    repo: &Repo,
    id: &CheckpointId,
    tree: ObjectId,
    side: &'static str,
    name: &str,
) -> Result<(), MergeError> {
    let not = |why: String| MergeError::NotACheckpoint {
        side,
        name: name.to_string(),
        why,
    };
    let entry = match repo.lookup(tree, METADATA)? {
        Some(e) if !e.is_tree => e,
        _ => return Err(not(format!("no root {METADATA}"))),
    };
    let root = RootMetadata::parse(&repo.read_blob(entry.id)?, METADATA)
        .map_err(|e| not(e.to_string()))?;
    match root.checkpoint_id() {
        Some(found) if found == id.to_string() => Ok(()),
        Some(found) => Err(not(format!("its {METADATA} names checkpoint {found}"))),
        None => Err(not(format!("its {METADATA} names no checkpoint_id"))),
    }
}

/// Apply a slot plan (made on `/main`) to a `/full` checkpoint: each merged slot takes the planned side's slot,
/// else the other side's slot of the same session; other entries are united.
pub fn apply(
    repo: &Repo,
    plan: &[Placed],
    local: Option<ObjectId>,
    remote: Option<ObjectId>,
) -> Result<ObjectId, MergeError> {
    let side = |cp: Option<ObjectId>| -> Result<(Vec<Slot<ObjectId>>, Vec<TreeEntry>), MergeError> {
        let Some(cp) = cp else {
            return Ok((Vec::new(), Vec::new()));
        };
        let numbered = layout::slots(repo, cp)?;
        let others = repo
            .tree_entries(cp)?
            .into_iter()
            .filter(|e| {
                !numbered
                    .iter()
                    .any(|(n, t)| n.to_string() == e.name && *t == e.id)
            })
            .collect();
        let slots = numbered
            .into_iter()
            .map(|(n, content)| Slot {
                n,
                owner: None,
                content,
            })
            .collect();
        Ok((slots, others))
    };
    let (l, l_others) = side(local)?;
    let (r, r_others) = side(remote)?;
    let mut entries = union_entries(repo, l_others, r_others)?;
    for p in plan {
        let (first, second) = match p.side {
            Side::Local => ((&l, Side::Local), (&r, Side::Remote)),
            Side::Remote => ((&r, Side::Remote), (&l, Side::Local)),
        };
        let tree =
            slot_tree(first.0, p.on(first.1)).or_else(|| slot_tree(second.0, p.on(second.1)));
        if let Some(tree) = tree {
            entries.push(TreeEntry {
                name: p.slot.to_string(),
                id: tree,
                is_tree: true,
            });
        }
    }
    Ok(repo.write_tree(&entries)?)
}

/// The `sessions[]` entry of one slot directory `dir` (`/<aa>/<rest>/<n>`) holding files `names`.
pub fn session_paths(layout: Layout, dir: &str, names: &[String]) -> Value {
    let has = |name: &str| names.iter().any(|n| n == name);
    let path = |name: &str| Value::String(format!("{dir}/{name}"));
    let or_empty = |name: &str| {
        if has(name) {
            path(name)
        } else {
            Value::String(String::new())
        }
    };
    let mut m = Map::new();
    match layout {
        Layout::V2Main => {
            m.insert("metadata".into(), or_empty(METADATA));
            m.insert("transcript".into(), or_empty(COMPACT));
            m.insert("context".into(), Value::String(String::new()));
            m.insert("content_hash".into(), or_empty(COMPACT_HASH));
            m.insert("prompt".into(), or_empty(PROMPT));
        }
        Layout::Legacy | Layout::Refs => {
            m.insert("metadata".into(), path(METADATA));
            for (key, name) in [
                ("transcript", "full.jsonl"),
                ("compact_transcript", "transcript.jsonl"),
                ("context", "context.md"),
                ("content_hash", "content_hash.txt"),
            ] {
                if has(name) {
                    m.insert(key.into(), path(name));
                }
            }
            m.insert("prompt".into(), or_empty(PROMPT));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_paths_table() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            session_paths(
                Layout::V2Main,
                "/ab/cd/1",
                &names(&["metadata.json", "transcript.jsonl", "transcript_hash.txt"])
            ),
            serde_json::json!({"metadata": "/ab/cd/1/metadata.json", "transcript": "/ab/cd/1/transcript.jsonl",
                               "context": "", "content_hash": "/ab/cd/1/transcript_hash.txt", "prompt": ""})
        );
        assert_eq!(
            session_paths(
                Layout::Legacy,
                "/ab/cd/0",
                &names(&["metadata.json", "full.jsonl", "prompt.txt"])
            ),
            serde_json::json!({"metadata": "/ab/cd/0/metadata.json", "transcript": "/ab/cd/0/full.jsonl",
                               "prompt": "/ab/cd/0/prompt.txt"})
        );
    }

    /// Which trees count as a checkpoint of `abcdef012345` (root `metadata.json` naming it), and the reason
    /// given for the others.
    #[test]
    fn ensure_checkpoint_table() {
        let (_dir, repo) = crate::sync::merge::tests::repo();
        let id = CheckpointId::parse("abcdef012345").expect("id");
        let file = |name: &str, text: &str| TreeEntry {
            name: name.into(),
            id: repo.write_blob(text.as_bytes()).expect("blob"),
            is_tree: false,
        };
        let sub = TreeEntry {
            name: METADATA.into(),
            id: repo.write_tree(&[file("x", "")]).expect("tree"),
            is_tree: true,
        };
        let cases: Vec<(Vec<TreeEntry>, Option<&str>)> = vec![
            (
                vec![file(METADATA, r#"{"checkpoint_id": "abcdef012345"}"#)],
                None,
            ),
            (
                vec![
                    file(
                        METADATA,
                        r#"{"checkpoint_id": "abcdef012345", "sessions": []}"#,
                    ),
                    file("README", "x"),
                ],
                None,
            ),
            (
                vec![file("README", "not a checkpoint")],
                Some("no root metadata.json"),
            ),
            (vec![sub], Some("no root metadata.json")),
            (
                vec![file(METADATA, "{not json")],
                Some("not a checkpoint commit ("),
            ),
            (
                vec![file(METADATA, r#"{"checkpoint_id": "000000000000"}"#)],
                Some("names checkpoint 000000000000"),
            ),
            (
                vec![file(METADATA, r#"{"v": 1}"#)],
                Some("names no checkpoint_id"),
            ),
        ];
        for (entries, want) in cases {
            let tree = repo.write_tree(&entries).expect("tree");
            let got = ensure_checkpoint(&repo, &id, tree, "remote", "refs/entire/checkpoints/45/x");
            match (got, want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => {
                    let text = e.to_string();
                    assert!(
                        text.starts_with("the remote refs/entire/checkpoints/45/x is not"),
                        "{text}"
                    );
                    assert!(text.contains(w), "{text} lacks {w}");
                }
                (got, want) => panic!("{entries:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
