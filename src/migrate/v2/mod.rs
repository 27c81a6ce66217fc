//! `git entire-migrate --to v2`: the legacy `entire/checkpoints/v1` branch → the v2 layout
//! (`refs/entire/checkpoints/v2/main`, `/full/current`, archives), with the rerun semantics of seed 000
//! (reference `entire-v2-and-attach.md` §3.3).
//!
//! A run: lock (shared with the refs migration, [`super::lock`]) → legacy listing ([`super::source`], minus
//! the deleted-checkpoints list) → one presence index of `/main` and `/full` ([`index`]) → a decision per
//! checkpoint ([`decide`]): on `/main` with every session's `/full` artifacts → skipped (an index lookup, no
//! reads); on `/main` with sessions lacking them, or legacy sessions `/main` does not have → resume (only
//! those sessions, matched by `session_id`); not on `/main` → fresh. Work runs oldest first (legacy commit
//! date, then ID), each checkpoint written through the v2 store ([`crate::store::v2::write`]: queue, `/main`,
//! `/full`, rotation with pending publication), so there is exactly one v2 layout writer.
//!
//! Determinism: the commit identity is the operator's (or `--author`) and its time is the author time of the
//! legacy commit that last changed the checkpoint ([`super::dates`]); so the same legacy branch gives the
//! same v2 commits. Legacy sessions are read from the slot directories, never through root `sessions[]`
//! paths (real data has doubled prefixes there, [`legacy`]).
//!
//! Crash safety: every store write queues its refs first, writes objects before refs and moves each ref by
//! compare-and-swap; a kill leaves a prefix of the work done, and the rerun's presence index sees exactly that
//! prefix (a checkpoint whose `/main` landed but not its `/full` is resumed). Archives are made only by the
//! store's rotation, which refuses to create an archive that exists, so no rerun duplicates one.
//!
//! Not yet (honest limits): `/main` is written one commit per checkpoint (not per batch), archives are made
//! by rotating `/full/current` (not written directly), raw transcripts are reassembled and re-chunked by the
//! store (not reused by blob ID), and commits are not signed. `--force` prunes first ([`prune`]), then
//! migrates fresh.

pub mod decide;
pub mod index;
pub mod legacy;
pub mod prune;

use std::collections::{HashMap, HashSet};

use crate::git::repo::{Identity, Repo};
use crate::model::checkpoint::SessionInput;
use crate::model::id::CheckpointId;
use crate::model::metadata::SessionMetadata;
use crate::store::v2;

use super::commit::People;
use super::lock::MigrateLock;
use super::source::{self, LegacyCheckpoint};
use super::{dates, deleted, odb, Action, MigrateError, Options, Outcome, Progress, Report};
use decide::Decision;
use index::Presence;

/// Migrate the legacy branch of `repo` into the v2 layout.
pub fn run(
    repo: &Repo,
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, MigrateError> {
    let common = repo.common_dir();
    let _lock = match opts.dry_run {
        true => None,
        false => Some(MigrateLock::acquire(&common)?),
    };
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
    progress.phase("indexing v2", None);
    let mut presence = Presence::build(repo)?;
    let people = People::of(repo, opts.author.clone());
    if opts.force && !opts.dry_run {
        let on_full: HashSet<&CheckpointId> = presence.full.iter().map(|(id, _)| id).collect();
        let doomed: HashSet<CheckpointId> = listing
            .iter()
            .filter(|cp| !deleted.contains(cp.id.as_str()))
            .filter(|cp| presence.main.contains_key(&cp.id) || on_full.contains(&cp.id))
            .map(|cp| cp.id.clone())
            .collect();
        if !doomed.is_empty() {
            let tip_time = (repo.gix().find_commit(src.tip).ok())
                .and_then(|c| c.time().ok())
                .unwrap_or_default();
            let who = identity(&people, tip_time);
            prune::prune(repo, &doomed, &who)?;
            presence = Presence::build(repo)?;
        }
    }
    let mut work = Vec::new();
    for cp in &listing {
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
    for f in failures {
        report.outcomes.push(Outcome {
            path: f.path,
            id: f.id,
            ref_name: None,
            action: Action::Failed,
            commit: None,
            reason: Some(f.reason),
        });
    }
    let wanted: HashMap<String, _> = work
        .iter()
        .map(|(cp, _)| (path_of(&cp.id), cp.subtree))
        .collect();
    progress.phase("dating checkpoints", None);
    let when = dates::last_changed(repo.gix(), src.tip, &wanted, &mut |_| {})?;
    let at = |cp: &LegacyCheckpoint| when.get(&path_of(&cp.id)).map(|w| w.author);
    work.sort_by_key(|(cp, _)| (at(cp).map(|t| t.seconds), cp.id.to_string()));
    progress.phase("migrating checkpoints", Some(work.len()));
    for (i, (cp, decision)) in work.into_iter().enumerate() {
        let who = identity(&people, at(cp).unwrap_or_default());
        let o = migrate_one(repo, &presence, cp, &decision, &who, opts.dry_run);
        report.outcomes.push(o);
        progress.advance(i + 1);
    }
    report.outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
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
    for n in slots {
        let entry = repo
            .lookup(*tree, &format!("{n}/metadata.json"))
            .map_err(|e| e.to_string())?;
        let Some(e) = entry.filter(|e| !e.is_tree) else {
            continue;
        };
        let bytes = repo.read_blob(e.id).map_err(|e| e.to_string())?;
        if let Ok(m) = SessionMetadata::parse(&bytes, "v2 /main session metadata") {
            on_main.insert(m.session_id().to_string(), *n);
        }
    }
    Ok(dedupe(sessions.into_iter().map(|s| s.input).collect())
        .into_iter()
        .filter(|s| match on_main.get(s.metadata.session_id()) {
            None => true,
            Some(n) => missing.contains(n) && (!s.transcript.is_empty() || !s.tasks.is_empty()),
        })
        .collect())
}
