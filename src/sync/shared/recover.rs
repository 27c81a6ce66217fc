//! Fetch-and-merge recovery of shared refs the remote rejected as diverged (non-fast-forward / fetch first, or
//! a server-side update that lost a race with another push, see [`diverged`]):
//! the legacy branch, `v2/main` and `v2/full/current` (SPEC §4; reference `entire-v2-and-attach.md` §2.12),
//! and per-checkpoint refs two machines both wrote (the same checkpoint ID, different sessions): merged by
//! session slot like a v2 checkpoint, a merge commit with both parents, never forced.
//!
//! The remote tips are fetched from the URL the push went to (a configured remote's push URL, or the bare
//! `entire::<URL>`), so no remote name is needed.
//!
//! One attempt:
//! 1. ONE `git fetch` brings every rejected ref's remote tip to `refs/entire-fetch-tmp/<ref, "/" → "-">`
//!    (forced: these are scratch refs; full objects, no tags, no `FETCH_HEAD`);
//! 2. the merges are built ([`crate::sync::merge`]): the legacy branch replayed onto the remote tip (union merge
//!    on conflict), `v2/main` and `v2/full/current` united by checkpoint with `/full`'s slots placed as `/main`'s
//!    (when only `/main` diverged but its merge renumbered slots, `/full/current` gets the same renumbering),
//!    a per-checkpoint ref merged by session slot ([`checkpoint::merge`] with [`Layout::Refs`]) when both
//!    sides are checkpoint commits of its ID ([`checkpoint::ensure_checkpoint`]) — otherwise that ref alone is
//!    reported with the reason and stays queued, the other refs go on;
//! 3. ONE compare-and-swap transaction moves every local ref from the tip the merge was built on to its merge
//!    and deletes the scratch refs; a local write in between makes the transaction fail and the attempt is
//!    redone from the new tips;
//! 4. ONE push sends the changed refs again, fast-forward only.
//!
//! When `v2/full/current` is among them and rotations are pending, the pending archives are fetched in the same
//! fetch and [`super::publish`] decides instead of a merge; its atomic push (archives, then the reset `current`
//! under a lease) goes before the others.
//!
//! Bounded: [`MAX_ATTEMPTS`] attempts (another machine may push in between), then the ref is reported with the
//! reason and stays queued. Nothing is ever forced on the remote; the user's refs are not involved.
//!
//! Crash safety: until step 3 nothing but the scratch refs and new objects exist; a kill -9 after step 3 leaves
//! local refs that contain the remote's tips, which the next push sends fast-forward (v2 refs stay queued until
//! a push confirms them). Left-over scratch refs are overwritten by the next recovery.
//!
//! Concurrency: one recovery per repository at a time, under [`scratch::exclusive`], which also clears the
//! scratch-ref lock files a killed recovery left.

use std::collections::BTreeMap;

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo, RepoError};
use crate::model::refname::{self, LEGACY_BRANCH, V2_FULL_CURRENT, V2_MAIN};
use crate::store::queue::Queue;
use crate::sync::fetch;
use crate::sync::merge::checkpoint::{self, Layout};
use crate::sync::merge::legacy::{self, Recovered};
use crate::sync::merge::{v2, MergeError};
use crate::sync::push::{RefStatus, Rejection};
use crate::sync::remote;

use super::publish;
use super::scratch::{self, tmp_ref};

/// Attempts (fetch, merge, push) before a ref is left queued.
pub const MAX_ATTEMPTS: usize = 3;

/// Message of a merge commit on a v2 ref.
fn merge_message(name: &str) -> String {
    format!(
        "Merge remote {}\n",
        name.trim_start_matches("refs/entire/checkpoints/")
    )
}

/// Message of the `/full/current` commit that only renumbers slots after `/main` was merged.
pub const RENUMBER_MESSAGE: &str = "Align session slots with merged v2/main\n";

/// What receive-pack reports when its compare-and-swap of a ref failed because another push moved the ref
/// after both read the same old value (two pushes racing; the client-side check saw no divergence): git up to
/// 2.48 says `failed to update ref` (its one word for every ref-transaction failure; older servers
/// `failed to lock`), later versions name the cause.
const LOST_RACE: [&str; 4] = [
    "failed to update ref",
    "failed to lock",
    "incorrect old value provided",
    "reference already exists",
];

/// True for the statuses recovery handles: diverged (`non-fast-forward`, `fetch first`), or a server-side
/// update that lost a race ([`LOST_RACE`]). The second kind cannot be told from a server that fails every
/// update (a full disk, say): that case costs [`MAX_ATTEMPTS`] fetch-and-push rounds, then the ref stays
/// queued with the server's reason.
pub fn diverged(status: &RefStatus) -> bool {
    match status {
        RefStatus::Rejected(Rejection::NonFastForward | Rejection::FetchFirst) => true,
        RefStatus::Rejected(Rejection::Remote(why)) => LOST_RACE.contains(&why.as_str()),
        _ => false,
    }
}

/// True for the refs recovery handles: the shared refs, and per-checkpoint refs (two machines that wrote
/// sessions into the same checkpoint).
pub fn recoverable(name: &str) -> bool {
    [LEGACY_BRANCH, V2_MAIN, V2_FULL_CURRENT].contains(&name) || refname::is_checkpoint_ref(name)
}

/// What a recovery did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Refs the remote now holds at these (local) values.
    pub landed: Vec<(String, ObjectId)>,
    /// Refs that were not recovered, with the reason.
    pub failed: Vec<(String, String)>,
    /// Round trips: fetches plus pushes.
    pub round_trips: usize,
}

/// Sends refspecs to the remote (fast-forward only; `leases` are `--force-with-lease` values, `atomic` makes it
/// all-or-nothing) and reports a status per destination.
pub type Push<'a> =
    dyn FnMut(&[String], &[String], bool) -> Result<BTreeMap<String, RefStatus>, String> + 'a;

/// Recover the `rejected` shared refs against the remote at `url` (the URL the push went to; the remote tips are
/// fetched from it by URL, so no configured remote name is needed).
pub fn recover(repo: &Repo, url: &str, rejected: &[String], push: &mut Push<'_>) -> Recovery {
    let mut out = Recovery::default();
    let _exclusive = match scratch::exclusive(repo) {
        Ok(lock) => lock,
        Err(why) => {
            out.failed = rejected.iter().map(|r| (r.clone(), why.clone())).collect();
            return out;
        }
    };
    let dir = remote::repo_dir(repo);
    let who = repo.committer();
    let mut todo: Vec<String> = rejected.to_vec();
    for attempt in 0..MAX_ATTEMPTS {
        if todo.is_empty() {
            break;
        }
        let archives = match fetch_tips(repo, &dir, url, &mut todo, &mut out) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(target: "entire::push", attempt, "fetching the remote tips failed: {e}");
                out.failed.extend(todo.drain(..).map(|r| (r, e.clone())));
                break;
            }
        };
        if todo.is_empty() {
            break;
        }
        let built = match build(repo, &dir, &todo, &archives, &who) {
            Ok(b) => b,
            Err(e) => {
                out.failed
                    .extend(todo.drain(..).map(|r| (r, e.to_string())));
                break;
            }
        };
        match repo.transaction(&built.updates, "entire: merge diverged shared refs") {
            Ok(()) => {}
            Err(RepoError::Conflict { .. }) => {
                tracing::debug!(target: "entire::push", attempt, "a local write moved a shared ref; merging again");
                continue;
            }
            Err(e) => {
                out.failed
                    .extend(todo.drain(..).map(|r| (r, e.to_string())));
                break;
            }
        }
        out.landed.extend(built.adopted);
        out.failed.extend(built.failed);
        todo.clear();
        if let Some(p) = built.publish {
            out.round_trips += 1;
            publish_rotation(repo, p, push, &mut out);
        }
        if built.push.is_empty() {
            break;
        }
        out.round_trips += 1;
        let last = attempt + 1 == MAX_ATTEMPTS;
        if !push_merged(built.push, push, last, &mut out, &mut todo) {
            break;
        }
    }
    out.failed.extend(
        todo.into_iter()
            .map(|r| (r, format!("still diverged after {MAX_ATTEMPTS} attempts"))),
    );
    dequeue(repo, &out.landed);
    out
}

/// ONE fetch of the remote tips of `todo` (and of the pending archives, returned) into their scratch refs. A
/// ref of `todo` the remote does not have (its update failed on the server for another reason than a race,
/// e.g. a stale lock there) makes git fail the whole fetch: that ref alone is reported failed and taken out,
/// and the others are fetched again (one more round trip each time; at most one per such ref).
fn fetch_tips(
    repo: &Repo,
    dir: &std::path::Path,
    url: &str,
    todo: &mut Vec<String>,
    out: &mut Recovery,
) -> Result<Vec<String>, String> {
    loop {
        let (archives, specs) = fetch_specs(repo, todo);
        out.round_trips += 1;
        let Err(e) = fetch::fetch_refspecs(dir, url, &specs) else {
            return Ok(archives);
        };
        let e = e.to_string();
        let gone = missing_remote_ref(&e).and_then(|g| todo.iter().position(|r| r == g));
        let Some(at) = gone else {
            return Err(e);
        };
        let name = todo.remove(at);
        out.failed.push((
            name,
            "the server refused it, and the remote does not have it".into(),
        ));
        if todo.is_empty() {
            return Ok(Vec::new());
        }
    }
}

/// The ref named by git fetch's `couldn't find remote ref <name>`.
fn missing_remote_ref(message: &str) -> Option<&str> {
    let rest = message.split("couldn't find remote ref ").nth(1)?;
    rest.split_whitespace().next()
}

/// What one recovery round fetches: the rejected refs, plus the pending rotation's archives when `current` is
/// among them (returned first), each into its temporary ref.
fn fetch_specs(repo: &Repo, todo: &[String]) -> (Vec<String>, Vec<String>) {
    let archives = if todo.iter().any(|r| r == V2_FULL_CURRENT) {
        publish::pending_archives(repo)
    } else {
        Vec::new()
    };
    let specs = todo
        .iter()
        .chain(&archives)
        .map(|r| format!("+{r}:{}", tmp_ref(r)))
        .collect();
    (archives, specs)
}

/// Push a rotated generation: its archives, and the reset `current` with its lease, all or nothing.
fn publish_rotation(repo: &Repo, p: publish::Publish, push: &mut Push<'_>, out: &mut Recovery) {
    let mut refs = p.archives.clone();
    let mut leases = Vec::new();
    if let publish::Current::Lease(lease) = &p.current {
        if let Some(c) = repo.find_ref(V2_FULL_CURRENT).ok().flatten() {
            refs.push((V2_FULL_CURRENT.to_string(), c));
            leases.push(lease.clone());
        }
    }
    if refs.is_empty() {
        return;
    }
    let specs: Vec<String> = refs.iter().map(|(n, _)| format!("{n}:{n}")).collect();
    let statuses = match push(&specs, &leases, true) {
        Ok(s) => s,
        Err(e) => {
            out.failed.push((V2_FULL_CURRENT.to_string(), e));
            return;
        }
    };
    let refused = refs.iter().find_map(|(n, _)| match statuses.get(n) {
        Some(s) if s.landed() => None,
        Some(s) if n != V2_FULL_CURRENT => Some(format!(
            "archive {n} was not published ({}); an archive is never overwritten",
            s.reason()
        )),
        Some(s) => Some(s.reason()),
        None => Some(format!("no status reported for {n}")),
    });
    match refused {
        Some(why) => out.failed.push((V2_FULL_CURRENT.to_string(), why)),
        None => {
            out.landed.extend(refs);
            publish::done(repo, &p.records);
        }
    }
}

/// Push the merged refs; the ones rejected as diverged again go back to `todo` (unless this was the `last`
/// attempt). False when the push could not run at all.
fn push_merged(
    refs: Vec<(String, ObjectId)>,
    push: &mut Push<'_>,
    last: bool,
    out: &mut Recovery,
    todo: &mut Vec<String>,
) -> bool {
    let specs: Vec<String> = refs.iter().map(|(n, _)| format!("{n}:{n}")).collect();
    let statuses = match push(&specs, &[], false) {
        Ok(s) => s,
        Err(e) => {
            out.failed
                .extend(refs.into_iter().map(|(n, _)| (n, e.clone())));
            return false;
        }
    };
    for (name, value) in refs {
        match statuses.get(&name) {
            Some(s) if s.landed() => out.landed.push((name, value)),
            Some(s) if diverged(s) && !last => todo.push(name),
            Some(s) => out.failed.push((name, s.reason())),
            None => out.failed.push((name, "no status reported".into())),
        }
    }
    true
}

/// The ref updates of one attempt, and what to push afterwards.
struct Built {
    /// A locally rotated `current` to publish instead of merging.
    publish: Option<publish::Publish>,
    updates: Vec<RefUpdate>,
    /// Refs whose local value now equals the remote's (nothing to push).
    adopted: Vec<(String, ObjectId)>,
    /// Refs to push, at their new local values.
    push: Vec<(String, ObjectId)>,
    /// Per-checkpoint refs that cannot be merged, with the reason (they stay queued).
    failed: Vec<(String, String)>,
}

impl Built {
    fn set(&mut self, name: &str, from: ObjectId, to: ObjectId, push: bool) {
        if from != to {
            self.updates.push(RefUpdate {
                name: name.to_string(),
                expected: Some(from),
                new: Some(to),
            });
        }
        if push {
            self.push.push((name.to_string(), to));
        } else {
            self.adopted.push((name.to_string(), to));
        }
    }
}

fn build(
    repo: &Repo,
    dir: &std::path::Path,
    todo: &[String],
    archives: &[String],
    who: &Identity,
) -> Result<Built, MergeError> {
    let mut built = Built {
        publish: None,
        updates: Vec::new(),
        adopted: Vec::new(),
        push: Vec::new(),
        failed: Vec::new(),
    };
    let mut tips = BTreeMap::new();
    let mut remote_archives = BTreeMap::new();
    for name in todo.iter().chain(archives) {
        let tmp = tmp_ref(name);
        let fetched = repo.find_ref(&tmp)?;
        if let Some(f) = fetched {
            built.updates.push(RefUpdate {
                name: tmp,
                expected: Some(f),
                new: None,
            });
        }
        if archives.contains(name) {
            remote_archives.insert(name.clone(), fetched);
        } else if let Some(local) = repo.find_ref(name)? {
            tips.insert(name.as_str(), (local, fetched));
        }
    }
    if let Some(&(local, remote)) = tips.get(LEGACY_BRANCH) {
        match remote {
            None => built.set(LEGACY_BRANCH, local, local, true),
            Some(remote) => match legacy::recover(repo, dir, local, remote, who)? {
                Recovered::Ahead => built.set(LEGACY_BRANCH, local, local, true),
                Recovered::Behind => built.set(LEGACY_BRANCH, local, remote, false),
                Recovered::Replayed(c) | Recovered::Merged(c) => {
                    built.set(LEGACY_BRANCH, local, c, true)
                }
            },
        }
    }
    for (name, &(local, remote)) in tips.iter().filter(|(n, _)| refname::is_checkpoint_ref(n)) {
        // One checkpoint that cannot be merged stays queued alone; the other refs still recover.
        if let Err(e) = build_checkpoint(repo, dir, name, local, remote, who, &mut built) {
            built.failed.push((name.to_string(), e.to_string()));
        }
    }
    let main = tips.get(V2_MAIN).copied();
    let mut full = tips.get(V2_FULL_CURRENT).copied();
    if let Some((local, remote)) = full {
        if let publish::Decision::Publish(p) =
            publish::plan(repo, dir, local, remote, &remote_archives, who)?
        {
            built.updates.extend(p.updates.iter().cloned());
            if p.current != publish::Current::Merge {
                full = None;
            }
            built.publish = Some(p);
        }
    }
    let rotating = tips.contains_key(V2_FULL_CURRENT) && full.is_none();
    build_v2(repo, dir, main, full, rotating, who, &mut built)?;
    Ok(built)
}

/// A per-checkpoint ref both sides wrote: its sessions merged by slot (root `metadata.json` re-aggregated), a
/// merge commit with both parents.
fn build_checkpoint(
    repo: &Repo,
    dir: &std::path::Path,
    name: &str,
    local: ObjectId,
    remote: Option<ObjectId>,
    who: &Identity,
    built: &mut Built,
) -> Result<(), MergeError> {
    match relation(dir, local, remote)? {
        Relation::Push => built.set(name, local, local, true),
        Relation::Adopt(r) => built.set(name, local, r, false),
        Relation::Merge(r) => {
            let id = refname::parse(name)?;
            let (l, rt) = (repo.commit_tree(local)?, repo.commit_tree(r)?);
            checkpoint::ensure_checkpoint(repo, &id, l, "local", name)?;
            checkpoint::ensure_checkpoint(repo, &id, rt, "remote", name)?;
            let (tree, _) = checkpoint::merge(repo, Layout::Refs, &id, l, rt)?;
            let message = format!("Merge remote checkpoint {id}\n");
            let c = repo.write_commit(tree, &[local, r], who, who, &message)?;
            built.set(name, local, c, true);
        }
    }
    Ok(())
}

/// How one v2 ref relates to its fetched remote tip.
enum Relation {
    Push,
    Adopt(ObjectId),
    Merge(ObjectId),
}

fn relation(
    dir: &std::path::Path,
    local: ObjectId,
    remote: Option<ObjectId>,
) -> Result<Relation, MergeError> {
    Ok(match remote {
        None => Relation::Push,
        Some(r) if legacy::is_ancestor(dir, r, local)? => Relation::Push,
        Some(r) if legacy::is_ancestor(dir, local, r)? => Relation::Adopt(r),
        Some(r) => Relation::Merge(r),
    })
}

fn build_v2(
    repo: &Repo,
    dir: &std::path::Path,
    main: Option<(ObjectId, Option<ObjectId>)>,
    full: Option<(ObjectId, Option<ObjectId>)>,
    rotating: bool,
    who: &Identity,
    built: &mut Built,
) -> Result<(), MergeError> {
    let mut plans = v2::Plans::new();
    if let Some((local, remote)) = main {
        match relation(dir, local, remote)? {
            Relation::Push => built.set(V2_MAIN, local, local, true),
            Relation::Adopt(r) => built.set(V2_MAIN, local, r, false),
            Relation::Merge(r) => {
                let (tree, p) =
                    v2::merge_main(repo, repo.commit_tree(local)?, repo.commit_tree(r)?)?;
                plans = p;
                let c = repo.write_commit(tree, &[local, r], who, who, &merge_message(V2_MAIN))?;
                built.set(V2_MAIN, local, c, true);
            }
        }
    }
    let from_todo = full.is_some();
    let full = match full {
        Some(f) => Some(f),
        // Only /main diverged: /full/current still needs /main's renumbering.
        None if !plans.is_empty() && !rotating => {
            repo.find_ref(V2_FULL_CURRENT)?.map(|l| (l, None))
        }
        None => None,
    };
    let Some((local, remote)) = full else {
        return Ok(());
    };
    let local_tree = repo.commit_tree(local)?;
    match relation(dir, local, remote)? {
        Relation::Adopt(r) if plans.is_empty() => built.set(V2_FULL_CURRENT, local, r, false),
        Relation::Push => {
            let tree = v2::merge_full(repo, local_tree, None, &plans)?;
            if tree != local_tree {
                let c = repo.write_commit(tree, &[local], who, who, RENUMBER_MESSAGE)?;
                built.set(V2_FULL_CURRENT, local, c, true);
            } else if from_todo {
                built.set(V2_FULL_CURRENT, local, local, true);
            }
        }
        Relation::Adopt(r) | Relation::Merge(r) => {
            let tree = v2::merge_full(repo, local_tree, Some(repo.commit_tree(r)?), &plans)?;
            let message = merge_message(V2_FULL_CURRENT);
            let c = repo.write_commit(tree, &[local, r], who, who, &message)?;
            built.set(V2_FULL_CURRENT, local, c, true);
        }
    }
    Ok(())
}

/// Drop the landed v2 refs from the push queue (only if they still have the value that landed).
fn dequeue(repo: &Repo, landed: &[(String, ObjectId)]) {
    let v2: Vec<(String, ObjectId)> = landed
        .iter()
        .filter(|(n, _)| n != LEGACY_BRANCH)
        .cloned()
        .collect();
    if v2.is_empty() {
        return;
    }
    let queue = Queue::new(&repo.common_dir());
    if let Err(e) = queue.remove_if_unchanged(&v2, |r| repo.find_ref(r).ok().flatten()) {
        tracing::debug!(target: "entire::push", "cannot update the push queue after a recovery: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_remote_ref_is_read_from_git_fetchs_message() {
        let m = "could not fetch from file:///srv/x.git: couldn't find remote ref refs/entire/checkpoints/CV/01M8X";
        assert_eq!(
            missing_remote_ref(m),
            Some("refs/entire/checkpoints/CV/01M8X")
        );
        assert_eq!(
            missing_remote_ref("could not fetch from x: timed out"),
            None
        );
    }

    #[test]
    fn diverged_covers_client_side_divergence_and_lost_server_races_only() {
        let remote = |why: &str| RefStatus::Rejected(Rejection::Remote(why.into()));
        let table = [
            (RefStatus::Rejected(Rejection::NonFastForward), true),
            (RefStatus::Rejected(Rejection::FetchFirst), true),
            (remote("failed to update ref"), true),
            (remote("failed to lock"), true),
            (remote("incorrect old value provided"), true),
            (remote("reference already exists"), true),
            (remote("pre-receive hook declined"), false),
            (remote("hook declined"), false),
            (remote("deny updating a hidden ref"), false),
            (
                RefStatus::Rejected(Rejection::Failed("failed to update ref".into())),
                false,
            ),
            (RefStatus::Rejected(Rejection::StaleInfo), false),
            (RefStatus::Rejected(Rejection::AlreadyExists), false),
            (RefStatus::Ok, false),
            (RefStatus::UpToDate, false),
        ];
        for (status, want) in table {
            assert_eq!(diverged(&status), want, "{status:?}");
        }
    }
}
