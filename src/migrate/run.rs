//! The migration run, step by step (the order of writes is the invariant documented in the module root).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::git::repo::{ObjectId, Repo};
use crate::model::refname::CHECKPOINT_PREFIX;
use crate::store::queue::Queue;

use super::cache::{self, Cache};
use super::commit::{self, People};
use super::lock::MigrateLock;
use super::plan::{self, Existing, Planned, Step};
use super::refs::{self, RefWrite};
use super::sign::Signer;
use super::source::{self, Failure, LegacyCheckpoint};
use super::{dates, deleted, odb, Action, MigrateError, Options, Outcome, Progress, Report};
use crate::git::pack::{self, ObjectSet};

/// Below this many checkpoints to date, the history walk runs inline instead of on a second thread.
const PARALLEL_WALK_MIN: usize = 500;

/// Migrate the legacy branch of `repo` into per-checkpoint refs.
pub fn run(
    repo: &Repo,
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, MigrateError> {
    let mut timed = Timed::new(progress);
    let progress: &mut dyn Progress = &mut timed;
    let common = repo.common_dir();
    let _lock = match opts.dry_run {
        true => None,
        false => {
            let lock = MigrateLock::acquire(&common)?;
            refs::recover(&common)?;
            pack::remove_leftovers(&objects_dir(repo), pack::MIGRATE_STEM);
            Cache::remove_leftovers(&common);
            Some(lock)
        }
    };
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    let Some(source) = source::find(repo)? else {
        return Ok(report);
    };
    report.source = Some(source.clone());
    progress.phase("reading legacy branch", None);
    let hash = repo.gix().object_hash();
    let mut cache = match opts.force {
        true => Cache::default(),
        false => Cache::load(&common, hash),
    };
    let odb = odb::tuned(repo);
    let root = repo.commit_tree(source.tip)?;
    let (listing, failures) = match cache.listing.take() {
        Some((r, listing)) if r == root => (listing, Vec::new()),
        _ => source::scan(&odb, root)?,
    };
    let clean_root = failures.is_empty().then_some(root);
    let deleted = deleted::load(&common)?;
    let (legacy, tombstoned): (Vec<_>, Vec<_>) = listing
        .iter()
        .partition(|c| !deleted.contains(c.id.as_str()));
    let existing = existing_refs(repo)?;
    let blocked = symbolic_refs(repo);
    let mut objects = ObjectSet::new(hash);
    let ctx = plan::Context {
        repo,
        odb: &odb,
        existing: &existing,
        cache: &cache,
        force: opts.force,
    };
    let (mut planned, dates) =
        plan_and_date(repo, &ctx, source.tip, &legacy, &mut objects, progress)?;
    refuse_blocked(&mut planned, &blocked);
    let (commits, signed) = make_commits(repo, opts, &planned, &dates, &mut objects, progress)?;
    report.signed = signed;
    let mut result = assemble(planned, &commits, failures, &tombstoned);
    if opts.dry_run {
        report.outcomes = result.outcomes;
        return Ok(report);
    }
    publish(repo, &mut result, &mut objects, &mut report, progress)?;
    if let Err(e) = cache.save(&common, hash, clean_root, &listing, &result.cache_pairs) {
        tracing::warn!("cannot save the migration cache (the next run will be slower): {e}");
    }
    report.outcomes = result.outcomes;
    Ok(report)
}

/// Logs how long each phase took (`ENTIRE_LOG=debug`).
pub(super) struct Timed<'a> {
    inner: &'a mut dyn Progress,
    start: std::time::Instant,
    phase: &'static str,
}

impl<'a> Timed<'a> {
    pub(super) fn new(inner: &'a mut dyn Progress) -> Self {
        Timed {
            inner,
            start: std::time::Instant::now(),
            phase: "start",
        }
    }
}

impl Progress for Timed<'_> {
    fn phase(&mut self, name: &'static str, total: Option<usize>) {
        tracing::debug!(
            phase = self.phase,
            ms = self.start.elapsed().as_secs_f64() * 1e3,
            "migrate phase done"
        );
        self.phase = name;
        self.start = std::time::Instant::now();
        self.inner.phase(name, total);
    }

    fn advance(&mut self, done: usize) {
        self.inner.advance(done);
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        tracing::debug!(
            phase = self.phase,
            ms = self.start.elapsed().as_secs_f64() * 1e3,
            "migrate phase done"
        );
    }
}

fn objects_dir(repo: &Repo) -> PathBuf {
    repo.gix().objects.store_ref().path().to_path_buf()
}

/// Existing checkpoint refs by ID; when both shard spellings exist, the canonical one wins. Names that are
/// not `<prefix><shard>/<id>` with a matching shard are ignored (v2 refs, foreign names: not ours to touch).
fn existing_refs(repo: &Repo) -> Result<HashMap<String, Existing>, MigrateError> {
    let mut out: HashMap<String, Existing> = HashMap::new();
    for (name, commit) in refs::read_namespace(repo)? {
        let Some((shard, id)) = name[CHECKPOINT_PREFIX.len()..].split_once('/') else {
            continue;
        };
        // Valid IDs are ASCII; anything else (e.g. a non-ASCII name) is not ours, and must not be sliced.
        if !id.is_ascii()
            || !shard.is_ascii()
            || id.len() < 2
            || id.contains('/')
            || !shard.eq_ignore_ascii_case(&id[id.len() - 2..])
        {
            continue;
        }
        let canonical = shard == &id[id.len() - 2..];
        if canonical || !out.contains_key(id) {
            let id = id.to_string();
            out.insert(
                id,
                Existing {
                    ref_name: name,
                    commit,
                },
            );
        }
    }
    Ok(out)
}

/// Loose refs in the checkpoint namespace that are symbolic (packed refs never are): a migration must neither
/// follow nor overwrite them, so the checkpoint whose ref name they hold is reported and skipped.
fn symbolic_refs(repo: &Repo) -> HashSet<String> {
    crate::git::packedrefs::loose_refs(&repo.common_dir(), CHECKPOINT_PREFIX)
        .into_iter()
        .filter(|name| {
            repo.gix()
                .try_find_reference(name.as_str())
                .ok()
                .flatten()
                .is_some_and(|r| r.target().try_id().is_none())
        })
        .collect()
}

/// Turn the plan of every checkpoint whose ref name is held by a symbolic ref into a failure.
fn refuse_blocked(planned: &mut [Planned], blocked: &HashSet<String>) {
    if blocked.is_empty() {
        return;
    }
    for p in planned {
        if let Step::Commit { ref_name, .. } = &p.step {
            if blocked.contains(ref_name) {
                let reason = format!(
                    "{ref_name} is a symbolic ref, not a checkpoint commit; left alone (delete it to migrate)"
                );
                p.step = Step::Fail { reason };
            }
        }
    }
}

/// Plan every checkpoint and date those that need a commit.
///
/// What the cache proves up to date costs nothing. New refs need dates: their history walk runs on a second
/// thread (with its own repository handle; gix handles stay on one thread) while this one plans. Existing refs
/// whose legacy content changed are only known after planning; they are dated afterwards.
fn plan_and_date(
    repo: &Repo,
    ctx: &plan::Context<'_>,
    tip: ObjectId,
    legacy: &[&LegacyCheckpoint],
    objects: &mut ObjectSet,
    progress: &mut dyn Progress,
) -> Result<(Vec<Planned>, HashMap<String, dates::When>), MigrateError> {
    let (mut planned, mut todo) = (Vec::with_capacity(legacy.len()), Vec::new());
    for &cp in legacy {
        match ctx.cached(cp) {
            Some(p) => planned.push(p),
            None => todo.push(cp),
        }
    }
    let wanted: HashMap<String, ObjectId> = todo
        .iter()
        .filter(|cp| ctx.force || !ctx.existing.contains_key(cp.id.as_str()))
        .map(|cp| (cp.id.v1_path(), cp.subtree))
        .collect();
    let git_dir = repo.git_dir();
    if wanted.len() < PARALLEL_WALK_MIN {
        // Small jobs: a second thread with its own repository handle costs more than it saves.
        let mut dates = dates::last_changed(ctx.odb, tip, &wanted, &mut |_| {})?;
        progress.phase("checking checkpoints", Some(todo.len()));
        for (n, cp) in todo.iter().enumerate() {
            planned.push(ctx.plan(cp, objects)?);
            progress.advance(n + 1);
        }
        date_late(ctx, tip, &planned, &mut dates, progress)?;
        return Ok((planned, dates));
    }
    let mut dates = std::thread::scope(|scope| -> Result<_, MigrateError> {
        let walk = (!wanted.is_empty()).then(|| {
            scope.spawn(|| -> Result<_, MigrateError> {
                let repo = Repo::discover(&git_dir)?;
                Ok(dates::last_changed(
                    &odb::tuned(&repo),
                    tip,
                    &wanted,
                    &mut |_| {},
                )?)
            })
        });
        progress.phase("checking checkpoints", Some(todo.len()));
        for (n, cp) in todo.iter().enumerate() {
            planned.push(ctx.plan(cp, objects)?);
            progress.advance(n + 1);
        }
        progress.phase("reading legacy history", None);
        match walk {
            Some(handle) => handle.join().expect("the history walk does not panic"),
            None => Ok(HashMap::new()),
        }
    })?;
    date_late(ctx, tip, &planned, &mut dates, progress)?;
    Ok((planned, dates))
}

/// Date the planned commits that the first walk did not cover (existing refs whose legacy content changed).
fn date_late(
    ctx: &plan::Context<'_>,
    tip: ObjectId,
    planned: &[Planned],
    dates: &mut HashMap<String, dates::When>,
    progress: &mut dyn Progress,
) -> Result<(), MigrateError> {
    let late: HashMap<String, ObjectId> = planned
        .iter()
        .filter(|p| matches!(p.step, Step::Commit { .. }) && !dates.contains_key(&p.id.v1_path()))
        .map(|p| (p.id.v1_path(), p.subtree))
        .collect();
    if !late.is_empty() {
        progress.phase("reading legacy history", None);
        dates.extend(dates::last_changed(ctx.odb, tip, &late, &mut |n| {
            progress.advance(n)
        })?);
    }
    Ok(())
}

/// Sign and hash the new commits; returns checkpoint ID → commit, and whether they are signed.
fn make_commits(
    repo: &Repo,
    opts: &Options,
    planned: &[Planned],
    dates: &HashMap<String, dates::When>,
    objects: &mut ObjectSet,
    progress: &mut dyn Progress,
) -> Result<(HashMap<String, ObjectId>, bool), MigrateError> {
    if !planned
        .iter()
        .any(|p| matches!(p.step, Step::Commit { .. }))
    {
        return Ok((HashMap::new(), false));
    }
    let people = People::of(repo, opts.author.clone());
    let signer = match opts.dry_run {
        true => None,
        false => {
            let ident = format!("{} <{}>", people.committer.0, people.committer.1);
            Signer::resolve(repo, &opts.sign, &ident).map_err(commit::CommitError::from)?
        }
    };
    let phase = match signer {
        Some(_) => "signing commits",
        None => "creating commits",
    };
    progress.phase(phase, Some(planned.len()));
    let commits = commit::build(
        planned,
        dates,
        &people,
        signer.as_ref(),
        objects,
        &mut |n| progress.advance(n),
    )?;
    Ok((commits, signer.is_some()))
}

/// Outcomes plus what must be written for them.
struct Assembled {
    outcomes: Vec<Outcome>,
    writes: Vec<RefWrite>,
    cache_pairs: cache::Pairs,
}

fn assemble(
    planned: Vec<Planned>,
    commits: &HashMap<String, ObjectId>,
    failures: Vec<Failure>,
    tombstoned: &[&LegacyCheckpoint],
) -> Assembled {
    let mut a = Assembled {
        outcomes: Vec::with_capacity(planned.len() + failures.len()),
        writes: Vec::new(),
        cache_pairs: cache::Pairs::with_capacity_and_hasher(planned.len(), Default::default()),
    };
    for p in planned {
        let path = p.id.v1_path();
        let id = Some(p.id.to_string());
        let (action, ref_name, commit, reason) = match p.step {
            Step::Skip { ref_name, commit } => {
                (Action::Skipped, Some(ref_name), Some(commit), None)
            }
            Step::Commit {
                ref_name, expected, ..
            } => {
                let new = commits[p.id.as_str()];
                let action = match expected {
                    Some(old) if old == new => Action::Skipped,
                    Some(_) => Action::Updated,
                    None => Action::Created,
                };
                if action != Action::Skipped {
                    a.writes.push(RefWrite {
                        name: ref_name.clone(),
                        expected,
                        new,
                    });
                }
                (action, Some(ref_name), Some(new), None)
            }
            Step::Fail { reason } => (Action::Failed, None, None, Some(reason)),
        };
        if let (Some(_), Some(c)) = (&ref_name, commit) {
            a.cache_pairs.insert(p.subtree, c);
        }
        a.outcomes.push(Outcome {
            path,
            id,
            ref_name,
            action,
            commit,
            reason,
        });
    }
    for f in failures {
        a.outcomes.push(Outcome {
            path: f.path,
            id: f.id,
            ref_name: None,
            action: Action::Failed,
            commit: None,
            reason: Some(f.reason),
        });
    }
    for t in tombstoned {
        a.outcomes.push(Outcome {
            path: t.id.v1_path(),
            id: Some(t.id.to_string()),
            ref_name: None,
            action: Action::Skipped,
            commit: None,
            reason: Some(format!("deleted locally ({})", deleted::DELETED_FILE)),
        });
    }
    a.outcomes.sort_by(|x, y| x.path.cmp(&y.path));
    a
}

/// Objects → queue → refs (see the module invariants).
fn publish(
    repo: &Repo,
    a: &mut Assembled,
    objects: &mut ObjectSet,
    report: &mut Report,
    progress: &mut dyn Progress,
) -> Result<(), MigrateError> {
    // New objects only pre-exist when an interrupted run wrote its pack (all of them at once): probe one
    // commit, and only if it exists filter everything (each lookup miss costs a stat of a loose path).
    let mut odb = repo.gix().clone();
    odb.objects.refresh_never(); // a miss would otherwise rescan the pack directory
    let probe = objects
        .objects()
        .iter()
        .find(|o| o.kind == gix::objs::Kind::Commit);
    if probe.is_some_and(|o| odb.has_object(o.id)) {
        objects.retain_missing(|id| odb.has_object(id));
    }
    progress.phase("writing objects", Some(objects.len()));
    pack::write(&objects_dir(repo), objects, pack::MIGRATE_STEM, &mut |n| {
        progress.advance(n)
    })?;
    report.objects_written = objects.len();

    let queue = Queue::new(&repo.common_dir());
    // Every ref the run created, updated or found up to date must end up queued.
    let queued = queue.peek()?;
    let queued: HashSet<&str> = queued.iter().map(String::as_str).collect();
    let missing: Vec<&str> = a
        .outcomes
        .iter()
        .filter_map(|o| o.ref_name.as_deref())
        .filter(|r| !queued.contains(r))
        .collect();
    queue.enqueue(&missing)?;
    report.queued = missing.len();

    progress.phase("updating refs", Some(a.writes.len()));
    let conflicts = if a.writes.is_empty() {
        Vec::new()
    } else {
        refs::apply(repo, &a.writes)?
    };
    progress.advance(a.writes.len());
    if !a.writes.is_empty() {
        // A push that ran between the enqueue and the ref update saw these refs absent and dropped them from
        // the queue; now that they exist, put back whatever is missing (a later push keeps them queued).
        let queued: HashSet<String> = queue.peek()?.into_iter().collect();
        let lost: Vec<&String> = a
            .writes
            .iter()
            .map(|w| &w.name)
            .filter(|r| !queued.contains(*r))
            .collect();
        queue.enqueue(&lost)?;
    }
    for c in conflicts {
        if let Some(o) = a
            .outcomes
            .iter_mut()
            .find(|o| o.ref_name.as_deref() == Some(&c.name))
        {
            let show = |v: Option<ObjectId>| v.map_or("nothing".to_string(), |id| id.to_string());
            o.action = Action::Failed;
            o.reason = Some(format!(
                "{} changed concurrently (expected {}, found {}); rerun the migration",
                c.name,
                show(c.expected),
                show(c.actual)
            ));
            a.cache_pairs.retain(|_, commit| Some(*commit) != o.commit);
        }
    }
    Ok(())
}
