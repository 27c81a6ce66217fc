//! Building a checkpoint tree: `metadata.json`, session slots `0/`, `1/`, …, optional `tasks/`.
//!
//! This is the layout shared by both v1 stores: the ref store uses the tree as a commit's root tree, the legacy
//! branch places it at `<id[0:2]>/<id[2:]>/`. Only the session paths recorded in the root `metadata.json`
//! differ ([`Layout`]).
//!
//! A session's files are described by what they are ([`FileRole`], [`SessionInput`]), separately from where a
//! layout places them: the v1 placement is [`v1_name`] here; the v2 layout (`store::v2`) puts the same session
//! on two refs under other names. [`summarize`] is shared by every layout.
//!
//! Invariants:
//! - Slots are 0-based and stable per `session_id`: an incoming session that already owns a slot replaces that
//!   slot wholesale (stale files vanish), a new one is appended. A batch is sorted by session ID; duplicate
//!   session IDs are rejected.
//! - Writing into a tree whose root `metadata.json` names another checkpoint is refused.
//! - The root summary is recomputed from every slot: counts and token usage summed, `files_touched` sorted and
//!   de-duplicated, `sessions[]` paths per [`Layout`]; fields we do not model survive in place.
//! - Transcripts larger than 50 MiB are chunked; `content_hash.txt` covers the unchunked bytes.
//!
//! Failure modes: [`CheckpointError`] names the session directory, file or checkpoint at fault.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::git::repo::{Identity, ObjectId, Repo, RepoError, TreeEntry};
use crate::model::id::CheckpointId;
use crate::model::metadata::{self, MetadataError, RootMetadata, SessionMetadata};
use crate::model::transcript::{self, ChunkError};

mod tasks;
use tasks::read_tasks;
pub use tasks::{write_tasks, TaskFile};

/// Version string written as `cli_version`.
pub const CLI_VERSION: &str = concat!("entire-rs/", env!("CARGO_PKG_VERSION"));
/// Storage-format version of the ref store.
pub const CHECKPOINTS_VERSION: &str = "refs-1";

/// Where the checkpoint tree will live, which decides the session paths in the root metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Root of a per-checkpoint ref: paths like `/0/full.jsonl`.
    Refs,
    /// Under `<id[0:2]>/<id[2:]>/` on the legacy branch: absolute paths from the branch root.
    Branch,
}

/// Errors while building a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("{what}: {source}")]
    Chunk {
        what: String,
        #[source]
        source: ChunkError,
    },
    #[error("session {session_id:?} appears more than once in one write")]
    DuplicateSession { session_id: String },
    #[error("checkpoint tree belongs to {found:?}, refusing to write {id} into it")]
    WrongCheckpoint { id: String, found: String },
    #[error("no sessions to write")]
    Empty,
    #[error("task file {path:?}: {problem}")]
    BadTaskPath { path: String, problem: &'static str },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One session to write.
#[derive(Debug, Clone)]
pub struct SessionInput {
    pub metadata: SessionMetadata,
    /// Raw transcript (`full.jsonl`), unchunked.
    pub transcript: Vec<u8>,
    pub prompt: Option<Vec<u8>>,
    pub context: Option<Vec<u8>>,
    /// Compact transcript (`transcript.jsonl`), never chunked.
    pub compact: Option<Vec<u8>>,
    /// Subagent task files (`tasks/<tool-use-id>/…`), paths relative to `tasks/`, sorted.
    pub tasks: Vec<TaskFile>,
}

/// What a session file is, independent of where a layout places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The raw transcript (chunked at 50 MiB).
    Transcript,
    /// `sha256:<hex>` of the whole raw transcript.
    ContentHash,
    Prompt,
    Context,
    /// The compact "Entire Transcript Format" transcript.
    Compact,
}

/// The file name of `role` in a v1 session slot (chunk 0 for the transcript).
pub fn v1_name(role: FileRole) -> &'static str {
    match role {
        FileRole::Transcript => transcript::TRANSCRIPT,
        FileRole::ContentHash => "content_hash.txt",
        FileRole::Prompt => "prompt.txt",
        FileRole::Context => "context.md",
        FileRole::Compact => "transcript.jsonl",
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Read {
            path: path.into(),
            source,
        }),
    }
}

impl SessionInput {
    /// Read a session directory: `metadata.json` (with `session_id`) and `full.jsonl` are required;
    /// `prompt.txt`, `context.md`, `transcript.jsonl` and a `tasks/` tree are optional.
    pub fn from_dir(dir: &Path) -> Result<Self, CheckpointError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| CheckpointError::Read { path, source })
        };
        let meta_path = dir.join("metadata.json");
        let metadata =
            SessionMetadata::parse(&read("metadata.json")?, &meta_path.display().to_string())?;
        Ok(SessionInput {
            metadata,
            transcript: read(transcript::TRANSCRIPT)?,
            prompt: read_optional(&dir.join("prompt.txt"))?,
            context: read_optional(&dir.join("context.md"))?,
            compact: read_optional(&dir.join("transcript.jsonl"))?,
            tasks: read_tasks(&dir.join("tasks"))?,
        })
    }

    /// The session's files (other than its metadata) by role; absent optional files are left out.
    pub fn files(&self) -> Vec<(FileRole, Vec<u8>)> {
        let mut out = vec![
            (FileRole::Transcript, self.transcript.clone()),
            (
                FileRole::ContentHash,
                transcript::content_hash(&self.transcript).into_bytes(),
            ),
        ];
        for (data, role) in [
            (&self.prompt, FileRole::Prompt),
            (&self.context, FileRole::Context),
            (&self.compact, FileRole::Compact),
        ] {
            if let Some(d) = data {
                out.push((role, d.clone()));
            }
        }
        out
    }
}

/// The result of applying sessions to a checkpoint tree.
#[derive(Debug, Clone)]
pub struct Built {
    pub tree: ObjectId,
    /// Commit message for this write (`Checkpoint: <id>` plus trailers).
    pub message: String,
}

/// Apply `sessions` to the checkpoint tree `base` (or an empty checkpoint) and write the new tree.
pub fn build(
    repo: &Repo,
    id: &CheckpointId,
    base: Option<ObjectId>,
    sessions: &[SessionInput],
    layout: Layout,
    now: &Identity,
) -> Result<Built, CheckpointError> {
    if sessions.is_empty() {
        return Err(CheckpointError::Empty);
    }
    let mut batch: Vec<&SessionInput> = sessions.iter().collect();
    batch.sort_by(|a, b| a.metadata.session_id().cmp(b.metadata.session_id()));
    if let Some(w) = batch
        .windows(2)
        .find(|w| w[0].metadata.session_id() == w[1].metadata.session_id())
    {
        return Err(CheckpointError::DuplicateSession {
            session_id: w[0].metadata.session_id().to_string(),
        });
    }
    let mut entries = match base {
        Some(t) => repo.tree_entries(t)?,
        None => Vec::new(),
    };
    let old_root = read_root(repo, &entries, id)?;
    let mut slots = read_slots(repo, &entries)?;
    for session in batch.iter() {
        let sid = session.metadata.session_id();
        let slot = match slots
            .iter()
            .position(|s| s.session_id.as_deref() == Some(sid))
        {
            Some(i) => i,
            None => {
                slots.push(Slot::default());
                slots.len() - 1
            }
        };
        let previous = slots[slot].metadata.take();
        let (tree, meta) = write_session(repo, id, session, slot, previous.as_ref(), now)?;
        slots[slot] = Slot {
            session_id: Some(sid.to_string()),
            tree: Some(tree),
            metadata: Some(meta),
            files: session_files(session),
        };
    }
    place_slots(&mut entries, &slots);
    tasks::merge_root(repo, &mut entries, &batch)?;
    let root = summarize_slots(old_root, id, &slots, layout);
    entries.push(TreeEntry {
        name: "metadata.json".into(),
        id: repo.write_blob(&root.to_bytes())?,
        is_tree: false,
    });
    Ok(Built {
        tree: repo.write_tree(&entries)?,
        message: commit_message(id, &batch),
    })
}

/// A checkpoint tree merged from two versions, not yet written: `entries` (slot subtrees and other entries,
/// without the root `metadata.json`) plus the recomputed root metadata.
#[derive(Debug, Clone)]
pub struct Merged {
    pub entries: Vec<TreeEntry>,
    pub root_metadata: Vec<u8>,
}

/// Merge the sessions of checkpoint tree `other` into `base`: `base` wins for every session it has (by
/// `session_id`, or the identical slot tree); sessions only in `other` are appended as new slots and the root
/// summary is recomputed. `None` when `other` adds nothing. Reads objects only; the caller writes the result.
pub fn merge_sessions(
    repo: &Repo,
    id: &CheckpointId,
    base: ObjectId,
    other: ObjectId,
    layout: Layout,
) -> Result<Option<Merged>, CheckpointError> {
    let mut entries = repo.tree_entries(base)?;
    let old_root = read_root(repo, &entries, id)?;
    let mut slots = read_slots(repo, &entries)?;
    let theirs = read_slots(repo, &repo.tree_entries(other)?)?;
    let mut added = false;
    for slot in theirs.into_iter().filter(|s| s.tree.is_some()) {
        let known = slots.iter().any(|mine| {
            mine.tree == slot.tree
                || (slot.session_id.is_some() && mine.session_id == slot.session_id)
        });
        if !known {
            slots.push(slot);
            added = true;
        }
    }
    if !added {
        return Ok(None);
    }
    place_slots(&mut entries, &slots);
    Ok(Some(Merged {
        entries,
        root_metadata: summarize_slots(old_root, id, &slots, layout).to_bytes(),
    }))
}

/// Replace the root `metadata.json` and every slot directory of `entries` with `slots` (in slot order).
fn place_slots(entries: &mut Vec<TreeEntry>, slots: &[Slot]) {
    entries
        .retain(|e| e.name != "metadata.json" && !(e.is_tree && e.name.parse::<usize>().is_ok()));
    for (i, slot) in slots.iter().enumerate() {
        if let Some(tree) = slot.tree {
            entries.push(TreeEntry {
                name: i.to_string(),
                id: tree,
                is_tree: true,
            });
        }
    }
}

/// What we know about one slot.
#[derive(Debug, Default, Clone)]
struct Slot {
    session_id: Option<String>,
    tree: Option<ObjectId>,
    metadata: Option<Map<String, Value>>,
    /// File names present in the slot.
    files: BTreeSet<String>,
}

fn read_root(
    repo: &Repo,
    entries: &[TreeEntry],
    id: &CheckpointId,
) -> Result<Option<RootMetadata>, CheckpointError> {
    let Some(e) = entries
        .iter()
        .find(|e| e.name == "metadata.json" && !e.is_tree)
    else {
        return Ok(None);
    };
    let root = RootMetadata::parse(&repo.read_blob(e.id)?, &format!("{id}/metadata.json"))?;
    match root.checkpoint_id() {
        Some(found) if found != id.as_str() => Err(CheckpointError::WrongCheckpoint {
            id: id.to_string(),
            found: found.to_string(),
        }),
        _ => Ok(Some(root)),
    }
}

fn read_slots(repo: &Repo, entries: &[TreeEntry]) -> Result<Vec<Slot>, CheckpointError> {
    let mut slots: Vec<Slot> = Vec::new();
    for e in entries.iter().filter(|e| e.is_tree) {
        let Ok(n) = e.name.parse::<usize>() else {
            continue;
        };
        if n.to_string() != e.name {
            continue;
        }
        if slots.len() <= n {
            slots.resize(n + 1, Slot::default());
        }
        let files: Vec<TreeEntry> = repo.tree_entries(e.id)?;
        let metadata = match files.iter().find(|f| f.name == "metadata.json") {
            Some(f) => {
                metadata::parse_object(&repo.read_blob(f.id)?, &format!("{n}/metadata.json")).ok()
            }
            None => None,
        };
        slots[n] = Slot {
            session_id: metadata
                .as_ref()
                .and_then(|m| metadata::str_field(m, "session_id"))
                .map(str::to_string),
            tree: Some(e.id),
            metadata,
            files: files.into_iter().map(|f| f.name).collect(),
        };
    }
    Ok(slots)
}

fn session_files(s: &SessionInput) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = ["metadata.json", "full.jsonl", "content_hash.txt"]
        .into_iter()
        .map(String::from)
        .collect();
    for (present, name) in [
        (s.prompt.is_some(), "prompt.txt"),
        (s.context.is_some(), "context.md"),
        (s.compact.is_some(), "transcript.jsonl"),
    ] {
        if present {
            files.insert(name.to_string());
        }
    }
    files
}

fn write_session(
    repo: &Repo,
    id: &CheckpointId,
    s: &SessionInput,
    slot: usize,
    previous: Option<&Map<String, Value>>,
    now: &Identity,
) -> Result<(ObjectId, Map<String, Value>), CheckpointError> {
    let mut meta = s.metadata.0.clone();
    meta.insert("checkpoint_id".into(), Value::String(id.to_string()));
    if !meta.contains_key("created_at") {
        // A rewrite of the same session keeps its original creation time, so identical writes are no-ops.
        let created = previous
            .and_then(|p| p.get("created_at").cloned())
            .unwrap_or_else(|| Value::String(rfc3339(now.seconds)));
        meta.insert("created_at".into(), created);
    }
    let mut entries = Vec::new();
    let mut blob = |name: &str, data: &[u8]| -> Result<(), CheckpointError> {
        entries.push(TreeEntry {
            name: name.to_string(),
            id: repo.write_blob(data)?,
            is_tree: false,
        });
        Ok(())
    };
    blob(
        "metadata.json",
        &metadata::to_go_json(&Value::Object(meta.clone())),
    )?;
    for (role, data) in s.files() {
        if role != FileRole::Transcript {
            blob(v1_name(role), &data)?;
            continue;
        }
        let chunks = transcript::chunk(&data, transcript::MAX_CHUNK).map_err(|source| {
            CheckpointError::Chunk {
                what: format!("session {} ({slot}/full.jsonl)", s.metadata.session_id()),
                source,
            }
        })?;
        for (i, c) in chunks.iter().enumerate() {
            blob(&transcript::chunk_name(i), c)?;
        }
    }
    Ok((repo.write_tree(&entries)?, meta))
}

/// Recompute the root summary from the slots, keeping unknown fields of the previous one.
fn summarize_slots(
    old: Option<RootMetadata>,
    id: &CheckpointId,
    slots: &[Slot],
    layout: Layout,
) -> RootMetadata {
    let metas: Vec<&Map<String, Value>> =
        slots.iter().filter_map(|s| s.metadata.as_ref()).collect();
    let prefix = match layout {
        Layout::Refs => String::new(),
        Layout::Branch => format!("/{}", id.v1_path()),
    };
    let sessions: Vec<Value> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.tree.is_some())
        .map(|(i, s)| session_paths(&format!("{prefix}/{i}"), &s.files))
        .collect();
    let stamp = (layout == Layout::Refs).then_some(CHECKPOINTS_VERSION);
    summarize(old, id, &metas, sessions, stamp)
}

/// The root summary of a checkpoint from its session metadata (in slot order) and the layout's `sessions[]`
/// entries: `cli_version`, optional `checkpoints_version` stamp, ID, strategy (first session's), branch (last
/// session's), summed `checkpoints_count` and `token_usage`, sorted de-duplicated `files_touched`. Fields of
/// `old` we do not model survive in place.
pub fn summarize(
    old: Option<RootMetadata>,
    id: &CheckpointId,
    metas: &[&Map<String, Value>],
    sessions: Vec<Value>,
    stamp: Option<&str>,
) -> RootMetadata {
    let mut root = old.unwrap_or_default().0;
    let first_str = |key: &str| {
        metas
            .iter()
            .find_map(|m| metadata::str_field(m, key))
            .map(str::to_string)
    };
    let mut set = |k: &str, v: Value| {
        root.insert(k.to_string(), v);
    };
    set("cli_version", CLI_VERSION.into());
    if let Some(stamp) = stamp {
        set("checkpoints_version", stamp.into());
    }
    set("checkpoint_id", id.to_string().into());
    if let Some(s) = first_str("strategy") {
        set("strategy", s.into());
    }
    if let Some(b) = metas
        .iter()
        .rev()
        .find_map(|m| metadata::str_field(m, "branch"))
    {
        set("branch", b.to_string().into());
    }
    let count: i64 = metas
        .iter()
        .filter_map(|m| m.get("checkpoints_count").and_then(Value::as_i64))
        .sum();
    set("checkpoints_count", count.into());
    let files: BTreeSet<&str> = metas
        .iter()
        .filter_map(|m| m.get("files_touched").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    set(
        "files_touched",
        files.into_iter().collect::<Vec<_>>().into(),
    );
    set("sessions", sessions.into());
    if let Some(usage) = metadata::sum_usage(metas.iter().filter_map(|m| m.get("token_usage"))) {
        set("token_usage", usage);
    }
    // Legacy stamp (upstream #1620 removed it). A fresh root gets its keys in the Go struct's order by
    // construction: the `set` calls above follow it.
    root.remove("checkpoint_version");
    RootMetadata(root)
}

fn session_paths(dir: &str, files: &BTreeSet<String>) -> Value {
    let mut m = Map::new();
    let path = |name: &str| Value::String(format!("{dir}/{name}"));
    m.insert("metadata".into(), path("metadata.json"));
    if files.contains("full.jsonl") {
        m.insert("transcript".into(), path("full.jsonl"));
    }
    if files.contains("transcript.jsonl") {
        m.insert("compact_transcript".into(), path("transcript.jsonl"));
    }
    if files.contains("context.md") {
        m.insert("context".into(), path("context.md"));
    }
    if files.contains("content_hash.txt") {
        m.insert("content_hash".into(), path("content_hash.txt"));
    }
    let prompt = if files.contains("prompt.txt") {
        path("prompt.txt")
    } else {
        Value::String(String::new())
    };
    m.insert("prompt".into(), prompt);
    Value::Object(m)
}

/// `Checkpoint: <id>` plus the upstream trailers for this batch.
fn commit_message(id: &CheckpointId, batch: &[&SessionInput]) -> String {
    let mut msg = format!("Checkpoint: {id}\n\n");
    for s in batch {
        msg.push_str(&format!("Entire-Session: {}\n", s.metadata.session_id()));
    }
    let agreed = |key: &str| -> Option<String> {
        let first = batch.first()?.metadata.get_str(key)?;
        (!first.is_empty() && batch.iter().all(|s| s.metadata.get_str(key) == Some(first)))
            .then(|| first.to_string())
    };
    if let Some(s) = agreed("strategy") {
        msg.push_str(&format!("Entire-Strategy: {s}\n"));
    }
    if let Some(a) = agreed("agent") {
        msg.push_str(&format!("Entire-Agent: {a}\n"));
    }
    msg
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a UNIX time.
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
            (1_770_910_834, "2026-02-12T15:40:34Z"),
        ] {
            assert_eq!(rfc3339(secs), want);
        }
    }

    #[test]
    fn session_paths_shape() {
        let files: BTreeSet<String> = ["metadata.json", "full.jsonl", "content_hash.txt"]
            .map(String::from)
            .into();
        assert_eq!(
            session_paths("/0", &files),
            serde_json::json!({"metadata": "/0/metadata.json", "transcript": "/0/full.jsonl",
                               "content_hash": "/0/content_hash.txt", "prompt": ""})
        );
    }
}
