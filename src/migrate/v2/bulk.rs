//! The bulk write of a v2 migration: every converted checkpoint's objects hashed in memory, then ONE pack,
//! pending publications, the push queue, and ONE compare-and-swap transaction over every v2 ref it changes
//! (reference `entire-v2-and-attach.md` §3.4, at the speed of the refs migration).
//!
//! Shape of the result (a pure function of the input: the same legacy branch gives the same commit IDs):
//! - `/main`: one commit `Migrate batch: <n> checkpoint(s), <s> session(s)` per batch of generation-size
//!   checkpoints (oldest first; larger batches when there would be more than [`MAX_BATCH_COMMITS`]), on the
//!   current tip (or an `Initialize v2 ref` commit when missing);
//! - `/full`: when `/full/current` already holds `k > 0` checkpoints, the first `limit − k` go into it and it is
//!   archived in memory (archive = its tree + `generation.json`, parent the current tip; `current` restarts as
//!   a `Start generation` orphan), exactly as a rotation would; then every full group of `limit` is one archive
//!   written directly (an orphan commit `Archive migrated generation: <ref>` of the group's shard dirs plus
//!   `generation.json`); the remainder goes into `/full/current` in one commit `Write migrated partial
//!   generation`. So every archive holds exactly the limit and `current` stays below it.
//! - Dates: a commit's time is the newest legacy date of its checkpoints; init and start commits take the
//!   legacy tip's time. Identity: the operator's (or `--author`), signed when asked ([`super::super::sign`]).
//!
//! Order of effects (what a kill -9 leaves): objects (one pack, visible only when complete) → pending
//! publications (one per archive, before any ref moves; an identical record is not added twice) → push queue
//! → refs ([`refs::apply_atomic`]: on a fresh repository ONE `packed-refs` rewrite, all or nothing). Killed
//! before the refs: no ref moved, the rerun rebuilds the same objects and records (so no duplicate archive,
//! no duplicate record) and moves the refs. Refs that already exist as loose files (`/main`, `/full/current`
//! after normal writes) move first: a kill between them and the new archives leaves the archived
//! checkpoints on `/main` without `/full`, which the rerun packs into the same archives. A lost race (a
//! concurrent writer moved a v2 ref) writes nothing, removes the records this run added, and is an error.

use gix::objs::Kind;
use serde_json::{Map, Value};

use crate::git::pack::{self, ObjectSet};
use crate::git::repo::{ObjectId, RefUpdate, Repo, RepoError};
use crate::model::checkpoint::rfc3339;
use crate::model::id::CheckpointId;
use crate::model::metadata;
use crate::store::queue::Queue;
use crate::store::v2::layout::{self, FULL_CURRENT, GENERATION, MAIN};
use crate::store::v2::pending::{Pending, Publication};
use crate::store::v2::rotation::{self, format_time, parse_rfc3339, Instant};

use super::super::commit::People;
use super::super::refs::{self, RefWrite};
use super::super::sign::Signer;
use super::super::MigrateError;
use super::memtree::{tree, MemTree};

/// One checkpoint to write.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: CheckpointId,
    /// The `/main` subtree; `None` when `/main` already has the checkpoint (a resume that only packs `/full`).
    pub main: Option<ObjectId>,
    pub full: Option<ObjectId>,
    pub sessions: usize,
    /// Session `created_at` times (else the legacy date) for `generation.json`.
    pub times: Vec<Instant>,
    /// The legacy date of the checkpoint.
    pub when: gix::date::Time,
}

/// Makes the commits (identity, signature).
pub struct Committer<'a> {
    pub people: &'a People,
    pub signer: Option<&'a Signer>,
    /// The legacy tip's time (init and start commits).
    pub base_time: gix::date::Time,
}

impl Committer<'_> {
    fn commit(
        &self,
        objects: &mut ObjectSet,
        tree: ObjectId,
        parent: Option<ObjectId>,
        time: gix::date::Time,
        message: &str,
    ) -> Result<ObjectId, MigrateError> {
        use gix::objs::WriteTo;
        let sig = |(name, email): &(String, String)| gix::actor::Signature {
            name: name.as_str().into(),
            email: email.as_str().into(),
            time,
        };
        let mut commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: sig(&self.people.author),
            committer: sig(&self.people.committer),
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        if let Some(signer) = self.signer {
            let mut payload = Vec::with_capacity(commit.size() as usize);
            commit
                .write_to(&mut payload)
                .expect("encoding into memory cannot fail");
            let sig = signer
                .sign(&payload)
                .map_err(super::super::commit::CommitError::from)?;
            commit.extra_headers.push(("gpgsig".into(), sig.into()));
        }
        Ok(objects.add(&commit))
    }

    /// `(expected, parent, root)` of `name`: its tip, or an in-memory init commit on the empty tree.
    fn tip_or_init(
        &self,
        repo: &Repo,
        objects: &mut ObjectSet,
        name: &str,
    ) -> Result<(Option<ObjectId>, ObjectId, Option<ObjectId>), MigrateError> {
        Ok(match repo.find_ref(name)? {
            Some(t) => (Some(t), t, Some(repo.commit_tree(t)?)),
            None => {
                let empty = tree(objects, []);
                let init =
                    self.commit(objects, empty, None, self.base_time, layout::INIT_MESSAGE)?;
                (None, init, None)
            }
        })
    }
}

/// Most `/main` commits one run makes.
pub const MAX_BATCH_COMMITS: usize = 16;

fn newest(items: &[&Item]) -> gix::date::Time {
    items
        .iter()
        .map(|i| i.when)
        .max_by_key(|t| t.seconds)
        .unwrap_or_default()
}

/// Plan the `/main` batches; returns the ref update (if any) and each item's `/main` commit.
pub fn plan_main(
    repo: &Repo,
    items: &[Item],
    limit: usize,
    who: &Committer<'_>,
    objects: &mut ObjectSet,
) -> Result<(Option<RefUpdate>, Vec<Option<ObjectId>>), MigrateError> {
    let mut commits = vec![None; items.len()];
    let fresh: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].main.is_some())
        .collect();
    if fresh.is_empty() {
        return Ok((None, commits));
    }
    let (expected, mut parent, root) = who.tip_or_init(repo, objects, MAIN)?;
    let mut tree = match root {
        Some(r) => MemTree::from(repo, r)?,
        None => MemTree::empty(),
    };
    // Batches of `limit` (upstream's 100), but never more than MAX_BATCH_COMMITS of them: every batch commit
    // needs a new root with a new tree for nearly every shard, so their total size grows with batches ×
    // checkpoints (1.4 GB of trees for 100k checkpoints in batches of 100).
    let size = limit.max(fresh.len().div_ceil(MAX_BATCH_COMMITS));
    for batch in fresh.chunks(size) {
        let group: Vec<&Item> = batch.iter().map(|&i| &items[i]).collect();
        for item in &group {
            let sub = item.main.expect("fresh items have a /main subtree");
            tree.put(repo, &layout::checkpoint_path(&item.id), sub)?;
        }
        let root = tree.write(objects);
        let sessions: usize = group.iter().map(|i| i.sessions).sum();
        let message = format!(
            "Migrate batch: {} checkpoint(s), {sessions} session(s)\n",
            group.len()
        );
        parent = who.commit(objects, root, Some(parent), newest(&group), &message)?;
        for &i in batch {
            commits[i] = Some(parent);
        }
    }
    let update = RefUpdate {
        name: MAIN.to_string(),
        expected,
        new: Some(parent),
    };
    Ok((Some(update), commits))
}

/// `generation.json` bracketing `times`.
fn generation_blob(objects: &mut ObjectSet, times: &[Instant]) -> ObjectId {
    let oldest = times.iter().min().copied().unwrap_or_default();
    let newest = times.iter().max().copied().unwrap_or_default();
    let mut m = Map::new();
    m.insert("oldest_checkpoint_at".into(), format_time(oldest).into());
    m.insert("newest_checkpoint_at".into(), format_time(newest).into());
    objects.add_raw(Kind::Blob, metadata::to_go_json(&Value::Object(m)))
}

fn times_of(group: &[&Item]) -> Vec<Instant> {
    group
        .iter()
        .flat_map(|i| match i.times.is_empty() {
            true => vec![(i.when.seconds, 0)],
            false => i.times.clone(),
        })
        .collect()
}

/// Plan the `/full` writes: rotation of a partly filled `current`, direct archives, the remainder.
pub fn plan_full(
    repo: &Repo,
    items: &[Item],
    limit: usize,
    who: &Committer<'_>,
    objects: &mut ObjectSet,
) -> Result<(Vec<RefUpdate>, Vec<Publication>), MigrateError> {
    let work: Vec<&Item> = items.iter().filter(|i| i.full.is_some()).collect();
    let tip = repo.find_ref(FULL_CURRENT)?;
    let mut updates = Vec::new();
    let mut pending = Vec::new();
    let mut next = layout::archives(repo)?.last().map_or(1, |(n, _, _)| n + 1);
    let mut rest: &[&Item] = &work;
    // `/full/current` as it will be: (parent commit, tree being built, whether it changed).
    let (mut parent, mut current) = match tip {
        Some(t) => (Some(t), MemTree::from(repo, repo.commit_tree(t)?)?),
        None => (None, MemTree::empty()),
    };
    let held = match tip {
        Some(t) => layout::count_checkpoints(repo, repo.commit_tree(t)?)?,
        None => 0,
    };
    let mut changed = false;
    if let (Some(t), true) = (tip, held > 0 && held < limit && work.len() >= limit - held) {
        let (fill, tail) = work.split_at(limit - held);
        rest = tail;
        put_items(repo, &mut current, fill)?;
        let archive = layout::archive_ref(next);
        next += 1;
        let (start, update, record) = top_up(repo, t, current, fill, archive, who, objects)?;
        pending.push(record);
        updates.push(update);
        (parent, current, changed) = (Some(start), MemTree::empty(), true);
    }
    let full_groups = rest.len() / limit * limit;
    let (archived, remainder) = rest.split_at(full_groups);
    for group in archived.chunks(limit) {
        let archive = layout::archive_ref(next);
        next += 1;
        let (update, record) = direct_archive(repo, group, archive, who, objects)?;
        pending.push(record);
        updates.push(update);
    }
    if !remainder.is_empty() {
        put_items(repo, &mut current, remainder)?;
        let root = current.write(objects);
        let base = match parent {
            Some(p) => p,
            None => who.tip_or_init(repo, objects, FULL_CURRENT)?.1,
        };
        let message = "Write migrated partial generation\n";
        parent = Some(who.commit(objects, root, Some(base), newest(remainder), message)?);
        changed = true;
    }
    if tip.is_none() && !changed {
        // Nothing went to `current` and it does not exist: start it empty (upstream's ensureEmptyV2FullCurrent).
        let empty = tree(objects, []);
        parent = Some(who.commit(objects, empty, None, who.base_time, layout::START_MESSAGE)?);
        changed = true;
    }
    if changed {
        updates.push(RefUpdate {
            name: FULL_CURRENT.to_string(),
            expected: tip,
            new: parent,
        });
    }
    Ok((updates, pending))
}

/// Put each item's `/full` subtree at its checkpoint path.
fn put_items(repo: &Repo, tree: &mut MemTree, items: &[&Item]) -> Result<(), MigrateError> {
    for item in items {
        tree.put(
            repo,
            &layout::checkpoint_path(&item.id),
            item.full.expect("full"),
        )?;
    }
    Ok(())
}

/// Rotate a `current` (tip `t`) that `fill` just topped up to the generation size: the archive commit on top
/// of `t` with the merged `generation.json`, and the empty start commit that becomes `current`.
fn top_up(
    repo: &Repo,
    t: ObjectId,
    mut current: MemTree,
    fill: &[&Item],
    archive: String,
    who: &Committer<'_>,
    objects: &mut ObjectSet,
) -> Result<(ObjectId, RefUpdate, Publication), MigrateError> {
    let old = rotation::generation_json(repo, t, repo.commit_tree(t)?)
        .map_err(|e| MigrateError::Store(Box::new(e)))?;
    let mut times = times_of(fill);
    for k in ["oldest_checkpoint_at", "newest_checkpoint_at"] {
        times.extend(old.get(k).and_then(Value::as_str).and_then(parse_rfc3339));
    }
    let gen = generation_blob(objects, &times);
    current.put_root_blob(GENERATION, gen);
    let root = current.write(objects);
    let time = newest(fill);
    let commit = who.commit(objects, root, Some(t), time, layout::ARCHIVE_MESSAGE)?;
    let empty = tree(objects, []);
    let start = who.commit(objects, empty, None, time, layout::START_MESSAGE)?;
    let record = record(&archive, commit, Some((t, start)), time);
    Ok((start, new_ref(archive, commit), record))
}

/// One archive of exactly the generation size, written directly as an orphan with its `generation.json`.
fn direct_archive(
    repo: &Repo,
    group: &[&Item],
    archive: String,
    who: &Committer<'_>,
    objects: &mut ObjectSet,
) -> Result<(RefUpdate, Publication), MigrateError> {
    let mut t = MemTree::empty();
    put_items(repo, &mut t, group)?;
    let gen = generation_blob(objects, &times_of(group));
    t.put_root_blob(GENERATION, gen);
    let root = t.write(objects);
    let message = format!("Archive migrated generation: {archive}\n");
    let time = newest(group);
    let commit = who.commit(objects, root, None, time, &message)?;
    let record = record(&archive, commit, None, time);
    Ok((new_ref(archive, commit), record))
}

fn new_ref(name: String, commit: ObjectId) -> RefUpdate {
    RefUpdate {
        name,
        expected: None,
        new: Some(commit),
    }
}

fn record(
    archive: &str,
    commit: ObjectId,
    rotated: Option<(ObjectId, ObjectId)>,
    time: gix::date::Time,
) -> Publication {
    let (previous, reset) = match rotated {
        Some((p, r)) => (p.to_string(), r.to_string()),
        None => (String::new(), String::new()),
    };
    Publication {
        archive_ref_name: archive.to_string(),
        archive_commit_hash: commit.to_string(),
        previous_full_current_hash: previous,
        reset_full_current_root_hash: reset,
        queued_at: rfc3339(time.seconds),
    }
}

fn store_err(e: impl Into<crate::store::StoreError>) -> MigrateError {
    MigrateError::Store(Box::new(e.into()))
}

/// Objects → pending publications → push queue → ONE transaction (see the module docs). Returns how many
/// objects were written and how many refs were queued.
pub fn publish(
    repo: &Repo,
    objects: &mut ObjectSet,
    updates: &[RefUpdate],
    records: &[Publication],
) -> Result<(usize, usize), MigrateError> {
    // New objects only pre-exist when an interrupted run wrote its pack: probe one commit first.
    let mut odb = repo.gix().clone();
    odb.objects.refresh_never();
    let probe = objects.objects().iter().find(|o| o.kind == Kind::Commit);
    if probe.is_some_and(|o| odb.has_object(o.id)) {
        objects.retain_missing(|id| odb.has_object(id));
    }
    let dir = repo.gix().objects.store_ref().path().to_path_buf();
    pack::write(&dir, objects, pack::MIGRATE_STEM, &mut |_| {})?;
    if updates.is_empty() {
        return Ok((objects.len(), 0));
    }
    let common = repo.common_dir();
    let pending = Pending::new(&common);
    let added = pending.append_new(records).map_err(store_err)?;
    let names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    let queue = Queue::new(&common);
    queue.enqueue(&names)?;
    let writes: Vec<RefWrite> = updates
        .iter()
        .filter_map(|u| {
            u.new.map(|new| RefWrite {
                name: u.name.clone(),
                expected: u.expected,
                new,
            })
        })
        .collect();
    let conflicts = refs::apply_atomic(repo, &writes)?;
    if let Some(c) = conflicts.first() {
        pending.remove_all(&added).map_err(store_err)?;
        return Err(RepoError::conflict(&c.name, c.expected, c.actual).into());
    }
    // A push between the enqueue and the transaction may have dropped refs that did not exist yet.
    let queued = queue.peek()?;
    let lost: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !queued.iter().any(|q| q == n))
        .collect();
    queue.enqueue(&lost)?;
    Ok((objects.len(), names.len()))
}
