//! `git entire-migrate --to v2`: the legacy `entire/checkpoints/v1` branch → the v2 layout
//! (`refs/entire/checkpoints/v2/main`, `/full/current`, archives), with the rerun semantics of seed 000
//! (reference `entire-v2-and-attach.md` §3.3) at the speed of the refs migration.
//!
//! A run: lock (shared with the refs migration, [`super::lock`]) → legacy listing ([`super::source`], minus
//! the deleted-checkpoints list) → `--force`: prune ([`prune`]) → one presence index of `/main` and `/full`
//! ([`index`]) → a decision per checkpoint ([`decide`]): on `/main` with every session's `/full` artifacts →
//! skipped (an index lookup, no reads); not on `/main` → fresh; on `/main` but incomplete → resume. Work runs
//! oldest first (legacy commit date, then ID).
//!
//! Fresh checkpoints, and resumed ones whose `/full` is missing entirely, are converted in memory
//! ([`convert`]: legacy blobs reused by ID, only metadata read, raw transcripts read only where a compact
//! transcript must be computed) and written by [`bulk`]: `/main` one commit per batch, archives of exactly
//! the generation size written directly, the remainder into `/full/current`, every object in ONE pack, then
//! pending publications, the push queue and ONE compare-and-swap transaction over all v2 refs. Other resumes
//! (sessions `/main` lacks, checkpoints partly in `/full`: only left by older writers) go through the v2
//! store one checkpoint at a time ([`crate::store::v2::write`]), before the bulk write reads the refs.
//!
//! Determinism: commit identity is the operator's (or `--author`), signed per `--signing-key`/`--no-sign`/git
//! config ([`super::sign`]); times come from the legacy history ([`super::dates`]: a batch takes its newest
//! checkpoint's date, init/start commits the legacy tip's), so the same legacy branch gives the same v2
//! commits on any machine. Legacy sessions are read from the slot directories, never through root
//! `sessions[]` paths (real data has doubled prefixes there, [`legacy`]).
//!
//! Crash safety: objects before records before queue before refs, and the refs move all at once, so a kill
//! leaves either no v2 ref changed (the rerun rebuilds the same objects and records, and moves the refs) or
//! the finished result; no archive or pending record is ever duplicated. A rerun after success writes nothing.
//! The generation-metadata repair upstream runs after resumes is not needed: a store write into an archive
//! recomputes its `generation.json`, and bulk archives are computed whole.

pub mod bulk;
pub mod convert;
pub mod decide;
pub mod done;
pub mod index;
pub mod legacy;
pub mod memtree;
pub mod prune;

use std::collections::{HashMap, HashSet};

use crate::git::pack;
use crate::git::repo::{Identity, ObjectId, Repo};
use crate::model::checkpoint::SessionInput;
use crate::model::id::CheckpointId;
use crate::model::metadata::SessionMetadata;
use crate::store::v2;

use super::commit::People;
use super::lock::MigrateLock;
use super::sign::Signer;
use super::source::{self, LegacyCheckpoint};
use super::{dates, deleted, odb, Action, MigrateError, Options, Outcome, Progress, Report};
use bulk::{Committer, Item};
use convert::Converter;
use decide::Decision;
use index::Presence;

/// Migrate the legacy branch of `repo` into the v2 layout.
pub fn run(
    repo: &Repo,
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, MigrateError> {
    let mut timed = super::Timed::new(progress);
    let progress: &mut dyn Progress = &mut timed;
    let common = repo.common_dir();
    let _lock = lock(repo, opts)?;
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let Some(src) = source::find(repo)? else {
        return Ok(report);
    };
    report.source = Some(src.clone());
    progress.phase("reading legacy branch", None);
    let odb = odb::tuned(repo);
    let root = repo.commit_tree(src.tip)?;
    let (listing, failures) = source::scan(&odb, root)?;
    let deleted = deleted::load(&common)?;
    let stamp = done::current(repo, root)?;
    if !opts.force && failures.is_empty() && done::matches(repo, &stamp) {
        // Same legacy tree, tombstones and v2 refs as after a complete run: every checkpoint is skipped.
        report.outcomes = listing
            .iter()
            .map(|cp| outcome(cp, Action::Skipped, None))
            .collect();
        report.outcomes.sort_by(|a, b| a.path.cmp(&b.path));
        return Ok(report);
    }
    if !opts.dry_run {
        done::clear(repo);
    }
    progress.phase("indexing v2", None);
    let people = People::of(repo, opts.author.clone());
    let signer = signer(repo, opts, &people)?;
    report.signed = signer.is_some();
    let tip_time = (repo.gix().find_commit(src.tip).ok())
        .and_then(|c| c.time().ok())
        .unwrap_or_default();
    let presence = presence_after_force(repo, opts, &listing, &deleted, &people, tip_time)?;
    let work = decide_all(repo, &listing, &deleted, &presence, &mut report)?;
    report
        .outcomes
        .extend(failures.into_iter().map(|f| Outcome {
            path: f.path,
            id: f.id,
            ref_name: None,
            action: Action::Failed,
            commit: None,
            reason: Some(f.reason),
        }));
    let who = Committer {
        people: &people,
        signer: signer.as_ref(),
        base_time: tip_time,
    };
    let ctx = Ctx {
        repo,
        presence: &presence,
        people: &people,
        dry_run: opts.dry_run,
    };
    let mut conv = Converter::new(repo);
    let mut objects = pack::ObjectSet::new(repo.gix().object_hash());
    progress.phase("reading checkpoints and compacting transcripts", None);
    let read = read_all(repo, src.tip, work, opts.dry_run, &mut conv, &mut objects)?;
    progress.phase("migrating checkpoints", Some(read.len()));
    let (items, mut pending_outcomes) =
        ctx.convert_all(&mut conv, &mut objects, read, &mut report, progress);
    if !opts.dry_run && (!items.is_empty() || repo.find_ref(v2::layout::FULL_CURRENT)?.is_none()) {
        progress.phase("writing v2 refs", None);
        let commits = write_all(repo, &items, &who, &mut objects, &mut report, progress)?;
        for (o, c) in pending_outcomes.iter_mut().zip(commits) {
            o.commit = c.or(o.commit);
        }
    }
    report.outcomes.extend(pending_outcomes);
    report.outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    if !opts.dry_run && report.count(Action::Failed) == 0 {
        done::save(repo, &done::current(repo, root)?);
    }
    Ok(report)
}

/// The migration lock (none for `--dry-run`), after recovering what an interrupted run left.
fn lock(repo: &Repo, opts: &Options) -> Result<Option<MigrateLock>, MigrateError> {
    if opts.dry_run {
        return Ok(None);
    }
    let common = repo.common_dir();
    let lock = MigrateLock::acquire(&common)?;
    super::refs::recover(&common)?;
    let dir = repo.gix().objects.store_ref().path().to_path_buf();
    pack::remove_leftovers(&dir, pack::MIGRATE_STEM);
    Ok(Some(lock))
}

/// The signer for every v2 commit of this run (none for `--dry-run`).
fn signer(repo: &Repo, opts: &Options, people: &People) -> Result<Option<Signer>, MigrateError> {
    if opts.dry_run {
        return Ok(None);
    }
    let ident = format!("{} <{}>", people.committer.0, people.committer.1);
    Ok(Signer::resolve(repo, &opts.sign, &ident).map_err(super::commit::CommitError::from)?)
}

/// The presence index; with `--force`, built again after pruning every listed checkpoint v2 holds.
fn presence_after_force(
    repo: &Repo,
    opts: &Options,
    listing: &[LegacyCheckpoint],
    deleted: &HashSet<String>,
    people: &People,
    tip_time: gix::date::Time,
) -> Result<Presence, MigrateError> {
    let presence = Presence::build(repo)?;
    if !opts.force || opts.dry_run {
        return Ok(presence);
    }
    let doomed: HashSet<CheckpointId> = listing
        .iter()
        .filter(|cp| !deleted.contains(cp.id.as_str()))
        .filter(|cp| presence.main.contains_key(&cp.id) || presence.in_full.contains(&cp.id))
        .map(|cp| cp.id.clone())
        .collect();
    if doomed.is_empty() {
        return Ok(presence);
    }
    prune::prune(repo, &doomed, &identity(people, tip_time))?;
    Ok(Presence::build(repo)?)
}

/// A decision per listed checkpoint; skipped ones go straight into `report`.
fn decide_all<'a>(
    repo: &Repo,
    listing: &'a [LegacyCheckpoint],
    deleted: &HashSet<String>,
    presence: &Presence,
    report: &mut Report,
) -> Result<Vec<(&'a LegacyCheckpoint, Decision)>, MigrateError> {
    let mut work = Vec::new();
    for cp in listing {
        if deleted.contains(cp.id.as_str()) {
            report.outcomes.push(outcome(cp, Action::Skipped, None));
            continue;
        }
        let missing = presence.missing(&cp.id);
        let main_slots = presence.main.get(&cp.id).map_or(0, |(_, s)| s.len());
        let legacy_slots = match missing {
            Some(_) => count_slots(repo, cp)?,
            None => 0,
        };
        match decide::decide(missing, main_slots, legacy_slots) {
            Decision::Skip => report.outcomes.push(outcome(cp, Action::Skipped, None)),
            d => work.push((cp, d)),
        }
    }
    Ok(work)
}

/// One checkpoint to migrate, its sessions read, and its legacy date.
type Read<'a> = (
    &'a LegacyCheckpoint,
    Decision,
    Result<Vec<convert::Slot>, legacy::LegacyError>,
    Option<gix::date::Time>,
);

/// Read every checkpoint's sessions and compact the fresh ones' transcripts (all cores), while the legacy
/// history walk that dates the work runs on its own thread (own repository handle): neither needs the
/// other's result. Returns the work oldest first (legacy date, then ID).
fn read_all<'a>(
    repo: &Repo,
    tip: ObjectId,
    work: Vec<(&'a LegacyCheckpoint, Decision)>,
    dry_run: bool,
    conv: &mut Converter<'_>,
    objects: &mut pack::ObjectSet,
) -> Result<Vec<Read<'a>>, MigrateError> {
    let wanted: HashMap<String, _> = work
        .iter()
        .map(|(cp, _)| (path_of(&cp.id), cp.subtree))
        .collect();
    let git_dir = repo.git_dir();
    let (when, read) = std::thread::scope(|scope| -> Result<_, MigrateError> {
        let walk = scope.spawn(|| -> Result<_, MigrateError> {
            let r = Repo::discover(&git_dir)?;
            Ok(dates::last_changed(
                &odb::tuned(&r),
                tip,
                &wanted,
                &mut |_| {},
            )?)
        });
        let started = std::time::Instant::now();
        let cps: Vec<(ObjectId, bool)> = work
            .iter()
            .map(|(cp, d)| (cp.subtree, !dry_run && *d == Decision::Fresh))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let sessions = conv.read_and_precompute(&cps, &git_dir, threads, objects)?;
        let read: Vec<_> = work
            .into_iter()
            .zip(sessions)
            .map(|((cp, d), s)| (cp, d, s))
            .collect();
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
        tracing::debug!(ms = ms(started), "sessions read, transcripts compacted");
        let when = walk.join().expect("the history walk does not panic")?;
        tracing::debug!(ms = ms(started), "history walked");
        Ok((when, read))
    })?;
    let mut read: Vec<Read<'a>> = read
        .into_iter()
        .map(|(cp, d, s)| {
            let at = when.get(&path_of(&cp.id)).map(|w| w.author);
            (cp, d, s, at)
        })
        .collect();
    read.sort_by_key(|(cp, _, _, at)| (at.map(|t| t.seconds), cp.id.to_string()));
    Ok(read)
}

/// Plan `/main` and `/full` for the bulk items, then write objects, records, queue and refs; returns each
/// item's new `/main` commit.
fn write_all(
    repo: &Repo,
    items: &[Item],
    who: &Committer<'_>,
    objects: &mut pack::ObjectSet,
    report: &mut Report,
    progress: &mut dyn Progress,
) -> Result<Vec<Option<ObjectId>>, MigrateError> {
    let limit = v2::layout::max_per_generation();
    let (main, commits) = bulk::plan_main(repo, items, limit, who, objects)?;
    let (mut updates, records) = bulk::plan_full(repo, items, limit, who, objects)?;
    updates.extend(main);
    progress.phase("writing objects and refs", None);
    let (written, queued) = bulk::publish(repo, objects, &updates, &records)?;
    report.objects_written = written;
    report.queued = queued;
    Ok(commits)
}

/// What one checkpoint needs.
enum One {
    /// Finished (skipped, failed, dry run, or written through the store).
    Done(Outcome),
    /// Goes into the bulk write.
    Bulk(Item, Outcome),
}

struct Ctx<'a> {
    repo: &'a Repo,
    presence: &'a Presence,
    people: &'a People,
    dry_run: bool,
}

impl Ctx<'_> {
    /// Every read checkpoint through [`Ctx::one`]: finished outcomes go into `report`, bulk items are returned
    /// with their outcomes (completed once the bulk write knows the commits).
    fn convert_all(
        &self,
        conv: &mut Converter<'_>,
        objects: &mut pack::ObjectSet,
        read: Vec<Read<'_>>,
        report: &mut Report,
        progress: &mut dyn Progress,
    ) -> (Vec<Item>, Vec<Outcome>) {
        let (mut items, mut pending) = (Vec::new(), Vec::new());
        for (i, (cp, decision, sessions, at)) in read.into_iter().enumerate() {
            let time = at.unwrap_or_default();
            match sessions {
                Err(e) => report
                    .outcomes
                    .push(outcome(cp, Action::Failed, Some(e.to_string()))),
                Ok(s) => match self.one(conv, objects, cp, &decision, s, time) {
                    One::Done(o) => report.outcomes.push(o),
                    One::Bulk(item, o) => {
                        items.push(item);
                        pending.push(o);
                    }
                },
            }
            progress.advance(i + 1);
        }
        (items, pending)
    }

    /// Fresh checkpoints, and resumed ones that only lack `/full` entirely (with every legacy session already on
    /// `/main`), go into the bulk write; other resumes (new sessions, checkpoints partly in `/full`) are written
    /// through the store, one checkpoint at a time, before the bulk write reads the refs.
    fn one(
        &self,
        conv: &mut Converter<'_>,
        objects: &mut pack::ObjectSet,
        cp: &LegacyCheckpoint,
        decision: &Decision,
        sessions: Vec<convert::Slot>,
        time: gix::date::Time,
    ) -> One {
        let fail = |reason: String| One::Done(outcome(cp, Action::Failed, Some(reason)));
        let item = |main, full, n, times| Item {
            id: cp.id.clone(),
            main,
            full,
            sessions: n,
            times,
            when: time,
        };
        match decision {
            Decision::Skip => One::Done(outcome(cp, Action::Skipped, None)),
            Decision::Fresh if self.dry_run => One::Done(outcome(cp, Action::Created, None)),
            Decision::Fresh => match conv.convert(&cp.id, &sessions, time.seconds, objects) {
                Ok(c) => One::Bulk(
                    item(Some(c.main), c.full, c.sessions, c.times),
                    outcome(cp, Action::Created, None),
                ),
                Err(e) => fail(e.to_string()),
            },
            Decision::Resume { missing } => {
                let on_main = match main_sessions(self.repo, self.presence, cp) {
                    Ok(m) => m,
                    Err(e) => return fail(e),
                };
                let slots: Option<Vec<usize>> = sessions
                    .iter()
                    .map(|s| on_main.get(s.metadata.session_id()).map(|(n, _)| *n))
                    .collect();
                match slots {
                    Some(slots) if !self.presence.in_full.contains(&cp.id) => {
                        match conv.full(&sessions, &slots, objects) {
                            Ok(None) => One::Done(outcome(cp, Action::Skipped, None)),
                            Ok(Some(_)) if self.dry_run => {
                                One::Done(outcome(cp, Action::Updated, None))
                            }
                            Ok(Some(full)) => {
                                let times = on_main.values().filter_map(|(_, t)| *t).collect();
                                One::Bulk(
                                    item(None, Some(full), sessions.len(), times),
                                    outcome(cp, Action::Updated, None),
                                )
                            }
                            Err(e) => fail(e.to_string()),
                        }
                    }
                    _ => {
                        let who = identity(self.people, time);
                        One::Done(migrate_one(
                            self.repo,
                            self.presence,
                            cp,
                            &Decision::Resume {
                                missing: missing.clone(),
                            },
                            &who,
                            self.dry_run,
                        ))
                    }
                }
            }
        }
    }
}

/// `session_id → (slot, created_at)` of a checkpoint's `/main` sessions.
fn main_sessions(
    repo: &Repo,
    presence: &Presence,
    cp: &LegacyCheckpoint,
) -> Result<HashMap<String, (usize, Option<v2::rotation::Instant>)>, String> {
    let (tree, slots) = &presence.main[&cp.id];
    let mut out = HashMap::new();
    for item in slot_metadata(repo, *tree, slots) {
        let (n, m) = item?;
        let created = m
            .get_str("created_at")
            .and_then(v2::rotation::parse_rfc3339);
        out.insert(m.session_id().to_string(), (n, created));
    }
    Ok(out)
}

/// The parsed `metadata.json` of each `/main` slot `n` of `slots` under `tree`, as `(n, metadata)`: slots
/// without that file, or whose file does not parse, are left out; a failed object read is an error.
fn slot_metadata<'a>(
    repo: &'a Repo,
    tree: ObjectId,
    slots: &'a [usize],
) -> impl Iterator<Item = Result<(usize, SessionMetadata), String>> + 'a {
    slots.iter().filter_map(move |&n| {
        let read = || -> Result<Option<SessionMetadata>, String> {
            let entry = repo
                .lookup(tree, &format!("{n}/metadata.json"))
                .map_err(|e| e.to_string())?;
            let Some(e) = entry.filter(|e| !e.is_tree) else {
                return Ok(None);
            };
            let bytes = repo.read_blob(e.id).map_err(|e| e.to_string())?;
            Ok(SessionMetadata::parse(&bytes, "v2 /main session metadata").ok())
        };
        read().transpose().map(|r| r.map(|m| (n, m)))
    })
}

fn identity(people: &People, time: gix::date::Time) -> Identity {
    Identity {
        name: people.author.0.clone(),
        email: people.author.1.clone(),
        seconds: time.seconds,
        offset: time.offset,
    }
}

fn path_of(id: &CheckpointId) -> String {
    v2::layout::checkpoint_path(id)
}

fn outcome(cp: &LegacyCheckpoint, action: Action, reason: Option<String>) -> Outcome {
    Outcome {
        path: path_of(&cp.id),
        id: Some(cp.id.to_string()),
        ref_name: Some(v2::layout::MAIN.to_string()),
        action,
        commit: None,
        reason,
    }
}

fn count_slots(repo: &Repo, cp: &LegacyCheckpoint) -> Result<usize, MigrateError> {
    Ok(repo
        .tree_entries(cp.subtree)?
        .iter()
        .filter(|e| e.is_tree && legacy::slot_number(&e.name).is_some())
        .count())
}

/// Read, select and write one checkpoint; every problem is this checkpoint's outcome.
fn migrate_one(
    repo: &Repo,
    presence: &Presence,
    cp: &LegacyCheckpoint,
    decision: &Decision,
    who: &Identity,
    dry_run: bool,
) -> Outcome {
    let fail = |reason: String| outcome(cp, Action::Failed, Some(reason));
    let sessions = match legacy::sessions(repo, cp.subtree) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let (inputs, action) = match decision {
        Decision::Fresh => (
            dedupe(sessions.into_iter().map(|s| s.input).collect()),
            Action::Created,
        ),
        Decision::Resume { missing } => {
            match resume_sessions(repo, presence, cp, missing, sessions) {
                Ok(v) if v.is_empty() => return outcome(cp, Action::Skipped, None),
                Ok(v) => (v, Action::Updated),
                Err(e) => return fail(e),
            }
        }
        Decision::Skip => return outcome(cp, Action::Skipped, None),
    };
    if dry_run {
        return outcome(cp, action, None);
    }
    match v2::write(repo, &cp.id, &inputs, who) {
        Ok(w) => {
            for warning in &w.warnings {
                tracing::warn!(checkpoint = %cp.id, "{warning}");
            }
            Outcome {
                commit: Some(w.main),
                ..outcome(cp, action, None)
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// One input per `session_id`: a session repeated in several legacy slots keeps its first slot's position
/// and its last slot's content, as upstream's session-by-session writes leave it.
fn dedupe(inputs: Vec<SessionInput>) -> Vec<SessionInput> {
    let mut out: Vec<SessionInput> = Vec::with_capacity(inputs.len());
    for s in inputs {
        match out
            .iter_mut()
            .find(|o| o.metadata.session_id() == s.metadata.session_id())
        {
            Some(o) => *o = s,
            None => out.push(s),
        }
    }
    out
}

/// The legacy sessions a resumed checkpoint still needs: those whose `/main` slot lacks `/full` artifacts
/// (matched by `session_id`) and have something to put there, plus those `/main` does not have at all.
fn resume_sessions(
    repo: &Repo,
    presence: &Presence,
    cp: &LegacyCheckpoint,
    missing: &[usize],
    sessions: Vec<legacy::LegacySession>,
) -> Result<Vec<SessionInput>, String> {
    let (tree, slots) = &presence.main[&cp.id];
    let mut on_main: HashMap<String, usize> = HashMap::new();
    for item in slot_metadata(repo, *tree, slots) {
        let (n, m) = item?;
        on_main.insert(m.session_id().to_string(), n);
    }
    Ok(dedupe(sessions.into_iter().map(|s| s.input).collect())
        .into_iter()
        .filter(|s| match on_main.get(s.metadata.session_id()) {
            None => true,
            Some(n) => missing.contains(n) && (!s.transcript.is_empty() || !s.tasks.is_empty()),
        })
        .collect())
}
