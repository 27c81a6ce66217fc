//! One legacy checkpoint → its v2 subtrees, hashed in memory, reusing legacy blobs by ID.
//!
//! Sessions are the numeric slot directories of the legacy checkpoint (never the root `sessions[]` paths, which
//! real data doubles, see [`super::legacy`]), one per `session_id` (first slot's position, last slot's content,
//! as upstream's session-by-session writes leave them), renumbered densely from 0 as upstream's
//! `len(sessions)` slot choice does (legacy slots 0 and 2 become v2 slots 0 and 1).
//!
//! Reused by ID, never read: raw transcript chunks (`full.jsonl[.NNN]` → `raw_transcript[.NNN]`, same 50 MiB
//! line-boundary split), `content_hash.txt` (→ `raw_transcript_hash.txt`, same `sha256:` format), `prompt.txt`,
//! given compact transcripts and `tasks/` trees. Read: each session's `metadata.json`, and the raw transcript
//! only where the compact transcript (or its start offset) must be computed; those results are cached by the
//! blob IDs they depend on. The `/main` session metadata and root summary are the store's ([`session`],
//! [`checkpoint::summarize`]), so a migrated checkpoint equals one written by [`crate::store::v2::write`].
//!
//! Pure with respect to the repository: every new object goes into the caller's [`ObjectSet`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use gix::objs::Kind;
use serde_json::{Map, Value};

use crate::git::pack::ObjectSet;
use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::checkpoint::{self, SessionInput};
use crate::model::id::CheckpointId;
use crate::model::metadata::{self, SessionMetadata};
use crate::model::transcript;
use crate::store::v2::layout::{self, COMPACT, COMPACT_HASH, METADATA, PROMPT, RAW_HASH, TASKS};
use crate::store::v2::rotation::{parse_rfc3339, Instant};
use crate::store::v2::session;

use super::legacy::{slot_number, LegacyError};
use super::memtree::tree;

/// One legacy session, as blob IDs plus its parsed metadata.
#[derive(Debug, Clone)]
pub struct Slot {
    pub metadata: SessionMetadata,
    prompt: Option<ObjectId>,
    compact: Option<ObjectId>,
    /// Raw transcript chunks by index; empty when there is no (or an empty) transcript.
    chunks: Vec<(usize, ObjectId)>,
    hash: Option<ObjectId>,
    tasks: Option<ObjectId>,
}

impl Slot {
    /// Whether `/full` gets anything for this session.
    pub fn has_full(&self) -> bool {
        !self.chunks.is_empty() || self.tasks.is_some()
    }
}

/// A converted checkpoint.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `/main` checkpoint subtree.
    pub main: ObjectId,
    /// The `/full` checkpoint subtree, `None` when no session has a transcript or tasks.
    pub full: Option<ObjectId>,
    pub sessions: usize,
    /// The sessions' `created_at` (for `generation.json`).
    pub times: Vec<Instant>,
}

type CompactKey = (
    Vec<ObjectId>,
    Option<ObjectId>,
    String,
    Option<u64>,
    Option<u64>,
);
type CompactOut = (Option<ObjectId>, Option<ObjectId>, u64);

/// Converts checkpoints, caching compact transcripts by the blobs they come from.
pub struct Converter<'r> {
    repo: &'r Repo,
    empty_blob: ObjectId,
    compacts: HashMap<CompactKey, CompactOut>,
}

impl<'r> Converter<'r> {
    pub fn new(repo: &'r Repo) -> Self {
        let kind = repo.gix().object_hash();
        Converter {
            repo,
            empty_blob: gix::objs::compute_hash(kind, Kind::Blob, b"").expect("hash of nothing"),
            compacts: HashMap::new(),
        }
    }

    /// The sessions of the legacy checkpoint subtree `cp`, one per `session_id`, in v2 slot order.
    pub fn sessions(&self, cp: ObjectId) -> Result<Vec<Slot>, LegacyError> {
        Self::sessions_in(self.repo, self.empty_blob, cp)
    }

    /// [`Converter::sessions`] through `repo` (another thread's handle).
    fn sessions_in(repo: &Repo, empty: ObjectId, cp: ObjectId) -> Result<Vec<Slot>, LegacyError> {
        let mut dirs: Vec<(usize, ObjectId)> = repo
            .tree_entries(cp)?
            .into_iter()
            .filter(|e| e.is_tree)
            .filter_map(|e| slot_number(&e.name).map(|n| (n, e.id)))
            .collect();
        dirs.sort_unstable();
        let mut out: Vec<Slot> = Vec::with_capacity(dirs.len());
        for (n, t) in dirs {
            let s = Self::slot(repo, empty, n, t)?;
            match out
                .iter_mut()
                .find(|o| o.metadata.session_id() == s.metadata.session_id())
            {
                Some(o) => *o = s,
                None => out.push(s),
            }
        }
        if out.is_empty() {
            return Err(LegacyError::Bad("no session directories".into()));
        }
        Ok(out)
    }

    fn slot(repo: &Repo, empty: ObjectId, n: usize, t: ObjectId) -> Result<Slot, LegacyError> {
        let mut meta = None;
        let mut s = Slot {
            metadata: SessionMetadata(Map::new()),
            prompt: None,
            compact: None,
            chunks: Vec::new(),
            hash: None,
            tasks: None,
        };
        for e in repo.tree_entries(t)? {
            match (e.name.as_str(), e.is_tree) {
                ("metadata.json", false) => meta = Some(repo.read_blob(e.id)?),
                ("prompt.txt", false) => s.prompt = Some(e.id),
                ("transcript.jsonl", false) => s.compact = Some(e.id),
                ("content_hash.txt", false) => s.hash = Some(e.id),
                (TASKS, true) => s.tasks = Some(e.id),
                (name, false) => {
                    if let Some(i) = transcript::chunk_index(name) {
                        s.chunks.push((i, e.id));
                    }
                }
                _ => {}
            }
        }
        let meta =
            meta.ok_or_else(|| LegacyError::Bad(format!("session {n}: no metadata.json")))?;
        s.metadata = SessionMetadata::parse(&meta, &format!("{n}/metadata.json"))
            .map_err(|e| LegacyError::Bad(e.to_string()))?;
        s.chunks.sort_unstable();
        if s.chunks.iter().all(|(_, id)| *id == empty) {
            s.chunks.clear();
        }
        if s.compact == Some(empty) {
            s.compact = None;
        }
        Ok(s)
    }

    /// Convert checkpoint `id` (its deduplicated `sessions`) into fresh `/main` and `/full` subtrees; `now` is
    /// the legacy time used where a session has no `created_at`.
    pub fn convert(
        &mut self,
        id: &CheckpointId,
        sessions: &[Slot],
        now: i64,
        objects: &mut ObjectSet,
    ) -> Result<Converted, LegacyError> {
        let mut metas = Vec::with_capacity(sessions.len());
        let mut slot_trees = Vec::with_capacity(sessions.len());
        for s in sessions {
            let (compact, compact_hash, start) = self.compact(s, objects)?;
            let input = input_of(s, Vec::new(), None);
            let meta = Value::Object(session::metadata(id, &input, start, None, now));
            let meta_blob = objects.add_raw(Kind::Blob, metadata::to_go_json(&meta));
            let mut entries = vec![(METADATA, meta_blob)];
            entries.extend(s.prompt.map(|p| (PROMPT, p)));
            entries.extend(compact.map(|c| (COMPACT, c)));
            entries.extend(compact_hash.map(|h| (COMPACT_HASH, h)));
            let names: Vec<&str> = entries.iter().map(|(n, _)| *n).collect();
            slot_trees.push((
                tree(objects, entries.iter().map(|(n, id)| (*n, *id, false))),
                names,
            ));
            metas.push(meta);
        }
        let prefix = format!("/{}", layout::checkpoint_path(id));
        let paths: Vec<Value> = slot_trees
            .iter()
            .enumerate()
            .map(|(n, (_, names))| {
                let path = |name: &str| {
                    Value::String(match names.contains(&name) {
                        true => format!("{prefix}/{n}/{name}"),
                        false => String::new(),
                    })
                };
                let mut m = Map::new();
                m.insert("metadata".into(), path(METADATA));
                m.insert("transcript".into(), path(COMPACT));
                m.insert("context".into(), Value::String(String::new()));
                m.insert("content_hash".into(), path(COMPACT_HASH));
                m.insert("prompt".into(), path(PROMPT));
                Value::Object(m)
            })
            .collect();
        let refs: Vec<&Map<String, Value>> = metas.iter().filter_map(Value::as_object).collect();
        let root = checkpoint::summarize(None, id, &refs, paths, None);
        let root_blob = objects.add_raw(Kind::Blob, root.to_bytes());
        let names: Vec<String> = (0..slot_trees.len()).map(|n| n.to_string()).collect();
        let main = tree(
            objects,
            std::iter::once((METADATA, root_blob, false)).chain(
                slot_trees
                    .iter()
                    .zip(&names)
                    .map(|((t, _), n)| (n.as_str(), *t, true)),
            ),
        );
        let slots: Vec<usize> = (0..sessions.len()).collect();
        let full = self.full(sessions, &slots, objects)?;
        let times = refs
            .iter()
            .filter_map(|m| metadata::str_field(m, "created_at").and_then(parse_rfc3339))
            .collect();
        Ok(Converted {
            main,
            full,
            sessions: sessions.len(),
            times,
        })
    }

    /// The `/full` checkpoint subtree of `sessions` placed in `slots` (same order); `None` when empty.
    pub fn full(
        &self,
        sessions: &[Slot],
        slots: &[usize],
        objects: &mut ObjectSet,
    ) -> Result<Option<ObjectId>, LegacyError> {
        let mut dirs: Vec<(String, ObjectId)> = Vec::new();
        for (s, n) in sessions.iter().zip(slots) {
            if !s.has_full() {
                continue;
            }
            let mut entries: Vec<(String, ObjectId, bool)> = s
                .chunks
                .iter()
                .map(|(i, id)| (layout::raw_chunk_name(*i), *id, false))
                .collect();
            if !s.chunks.is_empty() {
                let hash = match s.hash {
                    Some(h) => h,
                    None => {
                        let raw = raw_of(self.repo, s)?;
                        objects.add_raw(Kind::Blob, transcript::content_hash(&raw).into_bytes())
                    }
                };
                entries.push((RAW_HASH.to_string(), hash, false));
            }
            entries.extend(s.tasks.map(|t| (TASKS.to_string(), t, true)));
            let t = tree(
                objects,
                entries.iter().map(|(n, id, t)| (n.as_str(), *id, *t)),
            );
            dirs.push((n.to_string(), t));
        }
        Ok((!dirs.is_empty())
            .then(|| tree(objects, dirs.iter().map(|(n, t)| (n.as_str(), *t, true)))))
    }

    /// What the compact transcript of `s` depends on, and whether computing it reads the raw transcript;
    /// `None` when there is no compact transcript and nothing to read.
    fn compact_key(s: &Slot) -> Option<(CompactKey, bool)> {
        let meta = &s.metadata.0;
        let agent = s.metadata.get_str("agent").unwrap_or("").to_string();
        let raw_start = meta
            .get("checkpoint_transcript_start")
            .and_then(Value::as_u64);
        let given_start = meta.get("compact_transcript_start").and_then(Value::as_u64);
        let needs_raw = session::compactable(&agent)
            && !s.chunks.is_empty()
            && (s.compact.is_none() || (given_start.is_none() && raw_start.unwrap_or(0) > 0));
        if s.compact.is_none() && !needs_raw {
            return None;
        }
        let chunks = s.chunks.iter().map(|(_, id)| *id).collect();
        Some((
            (chunks, s.compact, agent, raw_start, given_start),
            needs_raw,
        ))
    }

    /// Compute the compact transcript of `s` (reading what it depends on) as [`session::compact_for`] does.
    fn compute(repo: &Repo, s: &Slot, needs_raw: bool) -> Result<session::Compact, RepoError> {
        let given = match s.compact {
            Some(id) => Some(repo.read_blob(id)?),
            None => None,
        };
        let raw = match needs_raw {
            true => raw_of(repo, s)?,
            false => Vec::new(),
        };
        Ok(session::compact_for(&input_of(s, raw, given)))
    }

    fn remember(
        &mut self,
        key: CompactKey,
        c: session::Compact,
        objects: &mut ObjectSet,
    ) -> CompactOut {
        let hashed = Hashed::of(c, objects.hash_kind());
        self.remember_hashed(key, hashed, objects)
    }

    fn remember_hashed(
        &mut self,
        key: CompactKey,
        c: Hashed,
        objects: &mut ObjectSet,
    ) -> CompactOut {
        let out = match c.bytes {
            Some((bytes, id, hash)) => {
                let blob = objects.add_hashed(Kind::Blob, bytes, id);
                (Some(blob), Some(objects.add_raw(Kind::Blob, hash)), c.start)
            }
            None => (None, None, c.start),
        };
        self.compacts.insert(key, out);
        out
    }

    /// The compact transcript blob, its hash blob and the start offset, as [`session::compact_for`] computes
    /// them; transcripts are read only when the result depends on their content, and results are cached.
    fn compact(&mut self, s: &Slot, objects: &mut ObjectSet) -> Result<CompactOut, RepoError> {
        let Some((key, needs_raw)) = Self::compact_key(s) else {
            return Ok((None, None, 0));
        };
        if let Some(hit) = self.compacts.get(&key) {
            return Ok(*hit);
        }
        let c = Self::compute(self.repo, s, needs_raw)?;
        Ok(self.remember(key, c, objects))
    }

    /// The sessions of each checkpoint subtree of `cps`, in order, and for those flagged `true` their compact
    /// transcripts (into the cache [`Converter::convert`] reads): what [`Converter::sessions`] and one
    /// compaction per flagged session give, on `threads` threads (own repository handles, the calling thread
    /// one of them), each taking the next checkpoint, so compaction starts with the first checkpoint read and
    /// both spread over every core. A compact transcript is computed once however many sessions share its
    /// inputs (first claim wins); results are filed in checkpoint and session order, so the object set does
    /// not depend on the scheduling. Reading and compacting raw transcripts is the migration's main cost.
    pub fn read_and_precompute(
        &mut self,
        cps: &[(ObjectId, bool)],
        git_dir: &Path,
        threads: usize,
        objects: &mut ObjectSet,
    ) -> Result<Vec<Result<Vec<Slot>, LegacyError>>, RepoError> {
        type Part = (
            Vec<(usize, SlotsRead)>,
            Vec<((usize, usize), CompactKey, Hashed)>,
        );
        let next = AtomicUsize::new(0);
        let claimed = Mutex::new(HashSet::new());
        let (cache, empty, kind) = (&self.compacts, self.empty_blob, objects.hash_kind());
        let work = || -> Result<Part, RepoError> {
            let repo = Repo::discover(git_dir)?;
            let (mut read, mut compacts) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(cp, compact)) = cps.get(i) else {
                    return Ok((read, compacts));
                };
                let sessions = Self::sessions_in(&repo, empty, cp);
                for (j, s) in sessions.iter().flatten().enumerate().filter(|_| compact) {
                    let Some((key, needs_raw)) = Self::compact_key(s) else {
                        continue;
                    };
                    let mut claimed = claimed.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.contains_key(&key) || !claimed.insert(key.clone()) {
                        continue;
                    }
                    drop(claimed);
                    let c = Self::compute(&repo, s, needs_raw)?;
                    compacts.push(((i, j), key, Hashed::of(c, kind)));
                }
                read.push((i, sessions));
            }
        };
        let parts: Vec<Result<Part, RepoError>> = crate::par::on_threads(threads, work);
        let (mut read, mut compacts) = (Vec::with_capacity(cps.len()), Vec::new());
        for part in parts {
            let (r, c) = part?;
            read.extend(r);
            compacts.extend(c);
        }
        read.sort_unstable_by_key(|(i, _)| *i);
        compacts.sort_unstable_by_key(|(at, _, _)| *at);
        for (_, key, c) in compacts {
            self.remember_hashed(key, c, objects);
        }
        Ok(read.into_iter().map(|(_, r)| r).collect())
    }
}

type SlotsRead = Result<Vec<Slot>, LegacyError>;

/// A computed compact transcript with its blob ID and `sha256:` content hash (computed where it was made).
struct Hashed {
    bytes: Option<(Vec<u8>, ObjectId, Vec<u8>)>,
    start: u64,
}

impl Hashed {
    fn of(c: session::Compact, kind: gix::hash::Kind) -> Self {
        let bytes = c.bytes.map(|b| {
            let id = gix::objs::compute_hash(kind, Kind::Blob, &b).expect("hashing in memory");
            let hash = transcript::content_hash(&b).into_bytes();
            (b, id, hash)
        });
        Hashed {
            bytes,
            start: c.start,
        }
    }
}

fn raw_of(repo: &Repo, s: &Slot) -> Result<Vec<u8>, RepoError> {
    let mut parts = Vec::with_capacity(s.chunks.len());
    for (_, id) in &s.chunks {
        parts.push(repo.read_blob(*id)?);
    }
    if parts.len() == 1 {
        return Ok(parts.pop().unwrap_or_default()); // what reassembling one chunk gives, without a copy
    }
    Ok(transcript::reassemble(&parts))
}

fn input_of(s: &Slot, transcript: Vec<u8>, compact: Option<Vec<u8>>) -> SessionInput {
    SessionInput {
        metadata: s.metadata.clone(),
        transcript,
        prompt: None,
        context: None,
        compact,
        tasks: Vec::new(),
    }
}
