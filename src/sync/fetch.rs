//! Fetching checkpoint refs: lazily by ID, and pulled along with code fetches.
//!
//! One fetch = one `git fetch` child = one round trip, whatever the number of checkpoints: every spelling of
//! every missing ID becomes a partial glob refspec `<ref>*:<ref>*`, read from stdin. git turns each into a
//! `ref-prefix <ref>` line (an exact-name listing on protocol v2, never the full advertisement), and a glob
//! that matches nothing is not an error, so "absent on the remote" and "fetched" are told apart afterwards by
//! looking at the local refs. Refspecs are never forced: a local checkpoint is never rewound.
//!
//! Invariants:
//! - Checkpoints already present locally (either shard spelling) are never fetched.
//! - At most [`MAX_IDS_PER_FETCH`] IDs per child, so the server's 65,536 `ref-prefix` limit is never reached.
//! - The fetch never touches `FETCH_HEAD`, tags or submodules, and never starts auto-maintenance.
//! - Refs a remote serves are not trusted: after each fetch, every ref it created or moved under the namespace
//!   must be a commit under a name that parses as a checkpoint ref (or a v2 ref). Anything else is deleted
//!   again (compare-and-swap against the fetched value), reported once in [`FetchReport::refused`] and never
//!   counted as fetched, listed or pushed on.
//!
//! With v2 on (the worktree's settings; with none, as in a clone before its checkout, the `.entire/settings.json`
//! committed in the fetched tips), the pull-along also brings `refs/entire/checkpoints/v2/main` (fast-forward only: a local
//! `v2/main` that diverged stays as it is, the next push merges it) in the same round trip as the checkpoints.
//! A read ([`fetch_for_read`]) may also ask for the `v2/full/*` generations in that same fetch: they go to
//! per-process scratch refs and are adopted create-or-fast-forward only (see `fetch/full.rs`).
//!
//! Failure modes: [`FetchError::Unreachable`] when git could not fetch (network, authentication, no such
//! repository) — distinct from an ID that is simply [`FetchReport::not_on_remote`].

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::git::cmd::{self as gitcmd, GitCmdError};
use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::model::refname::{self, CHECKPOINT_PREFIX};
use crate::sync::linked::{self, LinkError, Walk};

mod full;

/// IDs per `git fetch` child (two `ref-prefix` lines each at most).
pub const MAX_IDS_PER_FETCH: usize = 10_000;

/// Default of `entire.fetchCheckpointsLimit`.
pub const DEFAULT_PULL_LIMIT: usize = 100;

/// Errors of fetching checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("could not fetch from {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error(transparent)]
    Git(#[from] GitCmdError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// What a lazy fetch found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Already present locally; not fetched.
    pub present: Vec<CheckpointId>,
    /// Fetched now.
    pub fetched: Vec<CheckpointId>,
    /// The remote does not have them.
    pub not_on_remote: Vec<CheckpointId>,
    /// `git fetch` children run (round trips).
    pub round_trips: usize,
    /// Refs the remote served that are not valid checkpoints (`name: why`); removed again after the fetch.
    pub refused: Vec<String>,
    /// With `full` asked for: the remote's `v2/full/*` generations (local ref name, commit), `current` first,
    /// then the archives newest → oldest. Their objects are local; the refs themselves were only created where
    /// missing or fast-forwarded (a diverged local generation is left as it is).
    pub full_generations: Vec<(String, ObjectId)>,
}

/// The local ref of `id` under either shard spelling, canonical first.
pub fn local_ref(repo: &Repo, id: &CheckpointId) -> Result<Option<(String, ObjectId)>, RepoError> {
    for name in refname::spellings(id) {
        if let Some(v) = repo.find_ref(&name)? {
            return Ok(Some((name, v)));
        }
    }
    Ok(None)
}

/// Fetch every checkpoint of `ids` that is missing locally from `url`, in one round trip per
/// [`MAX_IDS_PER_FETCH`] IDs.
pub fn fetch_missing(
    repo: &Repo,
    url: &str,
    ids: &[CheckpointId],
) -> Result<FetchReport, FetchError> {
    fetch_missing_with(repo, url, ids, &[], false)
}

/// What a read wants fetched besides missing checkpoint refs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadWants {
    /// Bring `v2/main` along (fast-forward only).
    pub v2_main: bool,
    /// Fetch the remote's `v2/full/*` generations (see [`FetchReport::full_generations`]).
    pub full: bool,
}

/// [`fetch_missing`] for a read: the first fetch also carries what `wants` asks for, so a read costs one round
/// trip whatever it needs. With `wants.full` one fetch happens even when no ID is missing.
pub fn fetch_for_read(
    repo: &Repo,
    url: &str,
    ids: &[CheckpointId],
    wants: ReadWants,
) -> Result<FetchReport, FetchError> {
    let along: &[&str] = if wants.v2_main {
        &[refname::V2_MAIN]
    } else {
        &[]
    };
    fetch_missing_with(repo, url, ids, along, wants.full)
}

/// [`fetch_missing`], with `along` (refs fetched fast-forward only into themselves, e.g. `v2/main`) and, if
/// `full`, the `v2/full/*` generations (into scratch refs, see `fetch/full.rs`) in the first fetch; nothing is
/// fetched when no ID is missing and `full` is false.
fn fetch_missing_with(
    repo: &Repo,
    url: &str,
    ids: &[CheckpointId],
    along: &[&str],
    full: bool,
) -> Result<FetchReport, FetchError> {
    let mut report = FetchReport::default();
    let mut missing = Vec::new();
    for id in ids {
        if report.present.contains(id) || missing.contains(id) {
            continue;
        }
        if local_ref(repo, id)?.is_some() {
            report.present.push(id.clone());
        } else {
            missing.push(id.clone());
        }
    }
    let mut chunks: Vec<&[CheckpointId]> = missing.chunks(MAX_IDS_PER_FETCH).collect();
    if chunks.is_empty() && full {
        chunks.push(&[]);
    }
    let scratch = full::scratch_prefix();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut specs: Vec<String> = chunk
            .iter()
            .flat_map(refname::spellings)
            .map(|name| format!("{name}*:{name}*"))
            .collect();
        let mut prefixes: Vec<String> = chunk.iter().flat_map(refname::spellings).collect();
        if i == 0 {
            specs.extend(along.iter().map(|r| format!("{r}:{r}")));
            prefixes.extend(along.iter().map(|r| r.to_string()));
            if full {
                specs.push(full::refspec(&scratch));
            }
        }
        let before = snapshot(repo, &prefixes)?;
        let fetched = fetch_refspecs(&repo_dir(repo), url, &specs);
        if i == 0 && full {
            let adopted = full::adopt(repo, &scratch);
            fetched?;
            let (gens, refused) = adopted?;
            report.full_generations = gens;
            report.refused.extend(refused);
        } else {
            fetched?;
        }
        report.round_trips += 1;
        report
            .refused
            .extend(refuse_invalid(repo, &before, &snapshot(repo, &prefixes)?)?);
        for id in chunk {
            if local_ref(repo, id)?.is_some() {
                report.fetched.push(id.clone());
            } else {
                report.not_on_remote.push(id.clone());
            }
        }
    }
    Ok(report)
}

/// Every local ref under each of `prefixes`.
fn snapshot(repo: &Repo, prefixes: &[String]) -> Result<Vec<(String, ObjectId)>, RepoError> {
    let mut out = Vec::new();
    for p in prefixes {
        out.extend(repo.refs_with_prefix(p)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Why a ref a fetch wrote is not acceptable, if it is not.
pub fn invalid_ref(repo: &Repo, name: &str, value: ObjectId) -> Option<String> {
    if !refname::is_queueable(name) {
        return Some(match refname::parse(name) {
            Err(e) => e.to_string(),
            Ok(_) => format!("{name:?} is not a checkpoint ref"),
        });
    }
    match repo.gix().try_find_header(value) {
        Ok(Some(h)) if h.kind() == gix::objs::Kind::Commit => None,
        Ok(Some(h)) => Some(format!("{name} points at a {}, not a commit", h.kind())),
        _ => Some(format!("{name} points at a missing object {value}")),
    }
}

/// Delete (compare-and-swap) every ref of `after` that is new or moved since `before` and not a valid
/// checkpoint; returns one line per refused ref.
fn refuse_invalid(
    repo: &Repo,
    before: &[(String, ObjectId)],
    after: &[(String, ObjectId)],
) -> Result<Vec<String>, RepoError> {
    let old: std::collections::HashMap<&str, ObjectId> =
        before.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let mut refused = Vec::new();
    for (name, value) in after {
        if old.get(name.as_str()) == Some(value) {
            continue;
        }
        let Some(why) = invalid_ref(repo, name, *value) else {
            continue;
        };
        let update = crate::git::repo::RefUpdate {
            name: name.clone(),
            expected: Some(*value),
            new: old.get(name.as_str()).copied(),
        };
        repo.transaction(&[update], "entire: refuse invalid checkpoint ref")?;
        tracing::debug!(target: "entire::fetch", "refused a ref the remote served: {why}");
        refused.push(why);
    }
    Ok(refused)
}

fn repo_dir(repo: &Repo) -> std::path::PathBuf {
    crate::sync::remote::repo_dir(repo)
}

/// Run ONE `git fetch <url>` with `specs` on stdin. Non-forced refspecs that git refuses to apply (a local
/// checkpoint ahead of the remote) are not an error.
///
/// The received objects are always kept as one pack (`fetch.unpackLimit=1`): a pack appears with its index in
/// one step, all or nothing. Below git's default limit (100 objects) they would be unpacked into loose objects
/// one by one, and a fetch killed half way would leave some commits without their parents; the next `git push`
/// then finds the remote's tip locally, walks it and dies ("could not parse commit").
pub fn fetch_refspecs(dir: &Path, url: &str, specs: &[String]) -> Result<(), FetchError> {
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "fetch.unpackLimit=1"])
        .args([
            "fetch",
            "--no-write-fetch-head",
            "--no-tags",
            "--no-auto-maintenance",
            "--recurse-submodules=no",
            "--no-show-forced-updates",
            "-q",
            "--stdin",
        ])
        .arg(url)
        .stdin(Stdio::piped());
    tracing::debug!(target: "entire::fetch", url, refspecs = specs.len(), "fetching checkpoint refs");
    let mut child = gitcmd::spawn(&mut cmd)?;
    if let Some(mut input) = child.stdin.take() {
        let text = specs.join("\n") + "\n";
        std::thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        });
    }
    let out = child
        .wait_with_output()
        .map_err(|source| GitCmdError::Spawn {
            args: "fetch".into(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("[rejected]") && !stderr.contains("fatal:") {
        tracing::info!(target: "entire::fetch", "some local checkpoints are ahead of the remote: {}", stderr.trim());
        return Ok(());
    }
    tracing::debug!(target: "entire::fetch", "git fetch failed: {}", stderr.trim());
    Err(FetchError::Unreachable {
        url: url.to_string(),
        message: fetch_failure(&stderr, out.status),
    })
}

/// What made a `git fetch` child fail: its last `fatal:`/`error:` line, else its exit status (never a
/// message about some other command).
fn fetch_failure(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.starts_with("fatal:"))
        .or_else(|| lines.iter().rev().find(|l| l.starts_with("error:")))
        .or_else(|| lines.last());
    match pick {
        Some(l) => l
            .trim_start_matches("fatal: ")
            .trim_start_matches("error: ")
            .to_string(),
        None => format!("git fetch failed ({status}) without a message"),
    }
}

/// `entire.fetchCheckpoints`: which checkpoint refs a code fetch pulls along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Those named by trailers of newly fetched commits, newest first, at most `limit`.
    Referenced {
        limit: usize,
    },
    /// Every checkpoint ref of the remote.
    All,
    None,
}

/// The pull-along policy configured in `repo` (unknown values mean the default, with a warning).
pub fn policy(repo: &Repo) -> Policy {
    let limit = crate::git::config::get(repo, "entire.fetchCheckpointsLimit")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_PULL_LIMIT);
    match crate::git::config::get(repo, "entire.fetchCheckpoints")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("referenced") | Some("") => Policy::Referenced { limit },
        Some("all") => Policy::All,
        Some("none") | Some("false") => Policy::None,
        Some(other) => {
            tracing::warn!(target: "entire::fetch", "entire.fetchCheckpoints={other:?} is not referenced|all|none; using referenced");
            Policy::Referenced { limit }
        }
    }
}

/// What pulling along did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Checkpoint IDs referenced by the new commits (up to the limit) that were missing locally.
    pub wanted: usize,
    pub fetched: usize,
    pub round_trips: usize,
    /// Refs the remote served that are not valid checkpoints (`name: why`); removed again after the fetch.
    pub refused: Vec<String>,
}

/// Pull along checkpoints after a code fetch brought the commits selected by `new_commits`.
pub fn pull_along(repo: &Repo, url: &str, new_commits: &Walk) -> Result<PullReport, FetchError> {
    match policy(repo) {
        Policy::None => Ok(PullReport::default()),
        Policy::All => {
            let before = repo.refs_with_prefix(CHECKPOINT_PREFIX)?;
            let spec = format!("{CHECKPOINT_PREFIX}*:{CHECKPOINT_PREFIX}*");
            fetch_refspecs(&repo_dir(repo), url, &[spec])?;
            let after = repo.refs_with_prefix(CHECKPOINT_PREFIX)?;
            let refused = refuse_invalid(repo, &before, &after)?;
            let changed = after.iter().filter(|r| !before.contains(r)).count() - refused.len();
            Ok(PullReport {
                wanted: changed,
                fetched: changed,
                round_trips: 1,
                refused,
            })
        }
        Policy::Referenced { limit } => {
            if limit == 0 {
                return Ok(PullReport::default());
            }
            let ids = referenced_missing(repo, new_commits, limit)?;
            if ids.is_empty() {
                return Ok(PullReport::default());
            }
            // With v2 on, `v2/main` (metadata only, small) comes along in the same round trip.
            let along: &[&str] = if v2_enabled(repo, new_commits) {
                &[refname::V2_MAIN]
            } else {
                &[]
            };
            let report = fetch_missing_with(repo, url, &ids, along, false)?;
            Ok(PullReport {
                wanted: ids.len(),
                fetched: report.fetched.len(),
                round_trips: report.round_trips,
                refused: report.refused,
            })
        }
    }
}

/// True when the rollout writes the v2 layout (primary or mirror), or `v2/main` exists locally. The rollout
/// comes from the worktree's settings files; without any (a clone pulls along before its checkout), from the
/// `.entire/settings.json` committed in the fetched tips (the first few: one that turns v2 on is enough).
fn v2_enabled(repo: &Repo, new_commits: &Walk) -> bool {
    use crate::store::settings::{self, Backend, Settings};
    const TIPS: usize = 16;
    if matches!(repo.find_ref(refname::V2_MAIN), Ok(Some(_))) {
        return true;
    }
    let on =
        |s: Settings| s.rollout.primary == Backend::V2 || s.rollout.mirrors.contains(Backend::V2);
    let workdir = repo.workdir();
    if workdir.as_deref().is_some_and(settings::present) {
        return settings::load(workdir.as_deref()).is_ok_and(on);
    }
    // Opened afresh: a clone's helper opened the repository before git set its object format (SHA-256
    // clones start out as SHA-1), and an object ID of the other kind must never reach gix's lookups.
    let Ok(now) = Repo::discover(&repo.git_dir()) else {
        return false;
    };
    let committed = |tip: &str| -> Option<Settings> {
        let commit = ObjectId::from_hex(tip.as_bytes()).ok()?;
        if commit.kind() != now.gix().object_hash() {
            return None;
        }
        let tree = now.commit_tree(commit).ok()?;
        let entry = now.lookup(tree, settings::SETTINGS_FILE).ok()??;
        let bytes = now.read_blob(entry.id).ok()?;
        let origin = std::path::PathBuf::from(format!("{tip}:{}", settings::SETTINGS_FILE));
        settings::from_committed(&bytes, &origin).ok()
    };
    new_commits
        .stdin
        .iter()
        .filter(|r| !r.starts_with('^'))
        .take(TIPS)
        .filter_map(|tip| committed(tip))
        .any(on)
}

/// IDs named by the selected commits that are missing locally, newest first, at most `limit`.
fn referenced_missing(
    repo: &Repo,
    walk: &Walk,
    limit: usize,
) -> Result<Vec<CheckpointId>, FetchError> {
    let links = linked::scan(&repo_dir(repo), walk)?;
    let mut out: Vec<CheckpointId> = Vec::new();
    let mut checked: Vec<CheckpointId> = Vec::new();
    for id in links.into_iter().flat_map(|l| l.ids) {
        if out.len() >= limit {
            break;
        }
        if checked.contains(&id) {
            continue;
        }
        checked.push(id.clone());
        if local_ref(repo, &id)?.is_none() {
            out.push(id);
        }
    }
    Ok(out)
}

/// The commits a fetch of `fetched` object IDs brought in: reachable from them, not from any local code ref
/// (checkpoint and staging refs are orphan histories and are left out of the walk).
pub fn walk_new_commits(fetched: &[ObjectId]) -> Walk {
    Walk {
        options: vec![
            "--not".into(),
            "--exclude=refs/entire/*".into(),
            "--all".into(),
        ],
        revs: Vec::new(),
        stdin: fetched.iter().map(|o| o.to_string()).collect(),
        max_ids: None,
    }
}

#[cfg(test)]
mod tests {
    use super::fetch_failure;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn failure_messages_name_the_fetch() {
        let status = std::process::ExitStatus::from_raw(128 << 8);
        let cases = [
            (
                "fatal: could not read from remote repository\n",
                "could not read from remote repository",
            ),
            ("hint: x\nerror: oops\n", "oops"),
            ("", "git fetch failed (exit status: 128) without a message"),
        ];
        for (stderr, want) in cases {
            let got = fetch_failure(stderr, status);
            assert_eq!(got, want);
            assert!(!got.contains("push"), "{got}");
        }
    }
}
