//! Writing a checkpoint's sessions to `refs/entire/checkpoints/v2/main` (reference §2.3–2.5).
//!
//! Invariants:
//! - Slots are chosen here, and `/full` uses the same ones: a session that owns a slot (same `session_id` in
//!   `<n>/metadata.json`) keeps it; a new one gets the next index (the number of entries in the root
//!   `sessions[]`, as upstream). A slot that exists with another owner is never taken over (the slot-0 guard,
//!   applied to every slot): the write fails with [`V2Error::SlotTaken`].
//! - A rewritten slot is replaced wholesale (`metadata.json`, `prompt.txt`, `transcript.jsonl`,
//!   `transcript_hash.txt`), so stale files vanish; other slots and checkpoints are untouched.
//! - The root `metadata.json` is re-aggregated from every slot; `sessions[]` paths are absolute in the tree and
//!   point at the compact files (`""` where a file is absent).
//! - One commit `Checkpoint: <id>` per write on the current tip, compare-and-swap; a lost race rebuilds from
//!   the new tip. A write that changes nothing makes no commit. A missing ref starts with an empty
//!   `Initialize v2 ref` commit.

use serde_json::{Map, Value};

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo, RepoError, TreeEntry};
use crate::model::checkpoint::{self, CheckpointError, SessionInput};
use crate::model::id::CheckpointId;
use crate::model::metadata::{self, RootMetadata};
use crate::model::transcript;
use crate::store::{backoff, StoreError, MAX_ATTEMPTS};

use super::layout::{self, COMPACT, COMPACT_HASH, MAIN, METADATA, PROMPT};
use super::session;
use super::V2Error;

/// Outcome of a `/main` write.
#[derive(Debug, Clone)]
pub struct MainWritten {
    /// The tip after the write (unchanged when nothing changed).
    pub commit: ObjectId,
    pub changed: bool,
    /// The checkpoint was on `/main` before this write.
    pub existed: bool,
    /// The slot of every written session, in input order.
    pub slots: Vec<usize>,
}

/// The tip of `name`, or an in-memory `Initialize v2 ref` commit to build on (`None` as expected value).
pub(super) fn tip_or_init(
    repo: &Repo,
    name: &str,
    who: &Identity,
) -> Result<(Option<ObjectId>, ObjectId, ObjectId), StoreError> {
    match repo.find_ref(name)? {
        Some(t) => Ok((Some(t), t, repo.commit_tree(t)?)),
        None => {
            let empty = repo.write_tree(&[])?;
            let init = repo.write_commit(empty, &[], who, who, layout::INIT_MESSAGE)?;
            Ok((None, init, empty))
        }
    }
}

/// Write `sessions` into checkpoint `id` on `/main`.
pub fn write(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<MainWritten, StoreError> {
    let path = layout::checkpoint_path(id);
    let compacts: Vec<session::Compact> = sessions.iter().map(session::compact_for).collect();
    for attempt in 0..MAX_ATTEMPTS {
        let (expected, parent, root) = tip_or_init(repo, MAIN, who)?;
        let base = repo
            .lookup(root, &path)?
            .filter(|e| e.is_tree)
            .map(|e| e.id);
        let (cp_tree, slots) = build(repo, id, base, sessions, &compacts, who)?;
        let new_root = repo.edit_tree(Some(root), |ed| ed.put_tree(&path, cp_tree))?;
        if expected.is_some() && new_root == root {
            return Ok(MainWritten {
                commit: parent,
                changed: false,
                existed: base.is_some(),
                slots,
            });
        }
        let message = format!("Checkpoint: {id}\n");
        let commit = repo.write_commit(new_root, &[parent], who, who, &message)?;
        let update = RefUpdate {
            name: MAIN.to_string(),
            expected,
            new: Some(commit),
        };
        match repo.transaction(&[update], &format!("entire: v2 checkpoint {id}")) {
            Ok(()) => {
                return Ok(MainWritten {
                    commit,
                    changed: true,
                    existed: base.is_some(),
                    slots,
                })
            }
            Err(RepoError::Conflict { .. }) => backoff(attempt),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::TooManyConflicts {
        what: MAIN.to_string(),
    })
}

/// One existing slot: its tree, metadata and owner.
struct Slot {
    tree: ObjectId,
    meta: Option<Map<String, Value>>,
}

impl Slot {
    fn owner(&self) -> Option<&str> {
        self.meta
            .as_ref()
            .and_then(|m| metadata::str_field(m, "session_id"))
    }
}

fn read_slots(repo: &Repo, base: Option<ObjectId>) -> Result<Vec<Option<Slot>>, StoreError> {
    let mut out: Vec<Option<Slot>> = Vec::new();
    let Some(base) = base else { return Ok(out) };
    for (n, tree) in layout::slots(repo, base)? {
        let meta = match repo.lookup(tree, METADATA)? {
            Some(e) if !e.is_tree => {
                metadata::parse_object(&repo.read_blob(e.id)?, &format!("{n}/{METADATA}")).ok()
            }
            _ => None,
        };
        if out.len() <= n {
            out.resize_with(n + 1, || None);
        }
        out[n] = Some(Slot { tree, meta });
    }
    Ok(out)
}

/// Build the new checkpoint subtree; returns it and the slot of each session (input order).
fn build(
    repo: &Repo,
    id: &CheckpointId,
    base: Option<ObjectId>,
    sessions: &[SessionInput],
    compacts: &[session::Compact],
    who: &Identity,
) -> Result<(ObjectId, Vec<usize>), StoreError> {
    if sessions.is_empty() {
        return Err(CheckpointError::Empty.into());
    }
    let old_root = match base
        .map(|b| repo.lookup(b, METADATA))
        .transpose()?
        .flatten()
    {
        Some(e) if !e.is_tree => Some(
            RootMetadata::parse(
                &repo.read_blob(e.id)?,
                &format!("{MAIN}:{}/{METADATA}", layout::checkpoint_path(id)),
            )
            .map_err(CheckpointError::from)?,
        ),
        _ => None,
    };
    if let Some(found) = old_root.as_ref().and_then(|r| r.checkpoint_id()) {
        if found != id.as_str() {
            return Err(CheckpointError::WrongCheckpoint {
                id: id.to_string(),
                found: found.to_string(),
            }
            .into());
        }
    }
    let mut slots = read_slots(repo, base)?;
    let mut next = old_root
        .as_ref()
        .and_then(|r| r.0.get("sessions"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut placed = Vec::with_capacity(sessions.len());
    let mut seen = std::collections::HashSet::new();
    for (s, c) in sessions.iter().zip(compacts) {
        let sid = s.metadata.session_id();
        if !seen.insert(sid) {
            return Err(CheckpointError::DuplicateSession {
                session_id: sid.to_string(),
            }
            .into());
        }
        let n = choose_slot(&slots, sid, &mut next, id)?;
        let previous = slots
            .get(n)
            .and_then(Option::as_ref)
            .and_then(|s| s.meta.as_ref());
        let meta = session::metadata(id, s, c.start, previous, who.seconds);
        let tree = slot_tree(repo, s, &meta, c.bytes.as_deref())?;
        if slots.len() <= n {
            slots.resize_with(n + 1, || None);
        }
        slots[n] = Some(Slot {
            tree,
            meta: Some(meta),
        });
        placed.push(n);
    }
    let tree = checkpoint_tree(repo, id, base, &slots, old_root)?;
    Ok((tree, placed))
}

/// The slot of session `sid`: the one it owns, else the next free index (advancing `next`). A slot owned by
/// another session is never taken (the slot-0 guard, for every slot).
fn choose_slot(
    slots: &[Option<Slot>],
    sid: &str,
    next: &mut usize,
    id: &CheckpointId,
) -> Result<usize, StoreError> {
    let owned = slots
        .iter()
        .position(|slot| slot.as_ref().and_then(Slot::owner) == Some(sid));
    let n = owned.unwrap_or_else(|| {
        *next += 1;
        *next - 1
    });
    match slots.get(n).and_then(Option::as_ref) {
        Some(taken) if taken.owner() != Some(sid) => Err(V2Error::SlotTaken {
            id: id.to_string(),
            slot: n,
            existing: taken.owner().unwrap_or("").to_string(),
            incoming: sid.to_string(),
            path: layout::checkpoint_path(id),
        }
        .into()),
        _ => Ok(n),
    }
}

fn slot_tree(
    repo: &Repo,
    s: &SessionInput,
    meta: &Map<String, Value>,
    compact: Option<&[u8]>,
) -> Result<ObjectId, StoreError> {
    let mut entries = Vec::new();
    let mut blob = |name: &str, data: &[u8]| -> Result<(), RepoError> {
        entries.push(TreeEntry {
            name: name.to_string(),
            id: repo.write_blob(data)?,
            is_tree: false,
        });
        Ok(())
    };
    blob(
        METADATA,
        &metadata::to_go_json(&Value::Object(meta.clone())),
    )?;
    if let Some(p) = &s.prompt {
        blob(PROMPT, p)?;
    }
    if let Some(c) = compact {
        blob(COMPACT, c)?;
        blob(COMPACT_HASH, transcript::content_hash(c).as_bytes())?;
    }
    Ok(repo.write_tree(&entries)?)
}

/// The checkpoint subtree: `base` with the slots replaced and the root summary recomputed.
fn checkpoint_tree(
    repo: &Repo,
    id: &CheckpointId,
    base: Option<ObjectId>,
    slots: &[Option<Slot>],
    old_root: Option<RootMetadata>,
) -> Result<ObjectId, StoreError> {
    let prefix = format!("/{}", layout::checkpoint_path(id));
    let mut metas = Vec::new();
    let mut paths = Vec::new();
    for (n, slot) in slots.iter().enumerate() {
        let Some(slot) = slot else { continue };
        if let Some(m) = &slot.meta {
            metas.push(m);
        }
        let names: Vec<String> = repo
            .tree_entries(slot.tree)?
            .into_iter()
            .map(|e| e.name)
            .collect();
        let path = |name: &str| {
            Value::String(if names.iter().any(|n| n == name) {
                format!("{prefix}/{n}/{name}")
            } else {
                String::new()
            })
        };
        let mut m = Map::new();
        m.insert("metadata".into(), path(METADATA));
        m.insert("transcript".into(), path(COMPACT));
        m.insert("context".into(), Value::String(String::new()));
        m.insert("content_hash".into(), path(COMPACT_HASH));
        m.insert("prompt".into(), path(PROMPT));
        paths.push(Value::Object(m));
    }
    let root = checkpoint::summarize(old_root, id, &metas, paths, None);
    let root_blob = repo.write_blob(&root.to_bytes())?;
    Ok(repo.edit_tree(base, |ed| {
        for (n, slot) in slots.iter().enumerate() {
            if let Some(slot) = slot {
                ed.put_tree(&n.to_string(), slot.tree)?;
            }
        }
        ed.put_blob(METADATA, root_blob)
    })?)
}
