//! Pushing the user's refs and the queued checkpoints together: ONE push, one glob refspec for checkpoints.
//!
//! The flow of [`run`]: prepare a [`stage::Batch`] (drain, keep refs that exist, stage under
//! `refs/entire/push-queue/<run>/`), push the user's refspecs plus `refs/entire/push-queue/<run>/*:
//! refs/entire/checkpoints/*` through a [`PushTransport`] (a `git push` child, or git's own `remote-http(s)` in
//! the helper's relay mode), split the statuses into the user's and the checkpoints', account (dequeue what
//! landed), delete the staging refs.
//!
//! Invariants:
//! - Checkpoints are fast-forward only: the glob has no `+`, whatever the user's refspecs say.
//! - A checkpoint problem never changes the user's result: batch errors are logged and the push goes on
//!   without checkpoints; checkpoint rejections only keep those refs queued.
//! - `--atomic`: the user's refs are pushed atomically on their own, checkpoints in a second push.
//! - When the server rejects every ref of the combined push (a pre-receive hook that refuses checkpoint refs),
//!   the user's refs are pushed again alone, and the checkpoint rejection is reported in [`Outcome::notes`].
//! - When the combined push fails without a server verdict for any user ref (the server dropped the
//!   connection, as dulwich does to refuse a push; the transport failed mid-push), the user's refs are
//!   likewise pushed again alone and the checkpoints stay queued.
//! - `--dry-run` never dequeues.
//!
//! Failure modes: a push that could not run at all yields [`RefStatus::Rejected`] with
//! [`status::Rejection::Failed`] for every user ref; checkpoints stay queued.

pub mod child;
pub mod connect;
mod error;
pub mod runs;
mod shared;
pub mod stage;
pub mod status;
pub mod wire;

use std::collections::BTreeMap;

use crate::git::repo::Repo;
pub use child::GitPush;
pub use error::StageError;
pub use stage::{Batch, CheckpointSummary, Staged};
pub use status::{RefStatus, Rejection};

/// One refspec of git's push batch: `[+]<src>:<dst>` (empty `src` = delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSpec {
    pub force: bool,
    pub src: String,
    pub dst: String,
}

impl PushSpec {
    /// Parse `[+]<src>:<dst>`.
    pub fn parse(spec: &str) -> Option<Self> {
        let (force, rest) = match spec.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, spec),
        };
        let (src, dst) = rest.split_once(':')?;
        if dst.is_empty() {
            return None;
        }
        Some(PushSpec {
            force,
            src: src.to_string(),
            dst: dst.to_string(),
        })
    }

    /// Back to refspec form.
    pub fn refspec(&self) -> String {
        format!(
            "{}{}:{}",
            if self.force { "+" } else { "" },
            self.src,
            self.dst
        )
    }
}

/// Push options, as git's `option` lines or `git entire push` flags set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    pub dry_run: bool,
    pub atomic: bool,
    pub force_if_includes: bool,
    /// `--signed=<value>` (`true`, `if-asked`).
    pub signed: Option<String>,
    pub push_options: Vec<String>,
    /// `--force-with-lease=<ref>:<expected>` values.
    pub cas: Vec<String>,
    pub progress: bool,
    /// git's scale: 0 quiet, 1 normal, 2+ verbose.
    pub verbosity: u32,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            dry_run: false,
            atomic: false,
            force_if_includes: false,
            signed: None,
            push_options: Vec::new(),
            cas: Vec::new(),
            progress: false,
            verbosity: 1,
        }
    }
}

impl PushOptions {
    /// The flags that `git push` and `git send-pack` spell alike: `--dry-run`, `--atomic`, `--signed=…`,
    /// `--push-option=…`, `--force-with-lease=…`, `--force-if-includes`.
    pub fn shared_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.dry_run {
            out.push("--dry-run".to_string());
        }
        if self.atomic {
            out.push("--atomic".to_string());
        }
        if let Some(signed) = &self.signed {
            out.push(format!("--signed={signed}"));
        }
        out.extend(
            self.push_options
                .iter()
                .map(|p| format!("--push-option={p}")),
        );
        out.extend(self.cas.iter().map(|l| format!("--force-with-lease={l}")));
        if self.force_if_includes {
            out.push("--force-if-includes".to_string());
        }
        out
    }
}

/// A push that did not run at all (network, authentication, missing repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub message: String,
}

/// Something that performs one push of a list of refspecs and reports a status per destination.
pub trait PushTransport {
    fn push(
        &mut self,
        specs: &[String],
        options: &PushOptions,
    ) -> Result<BTreeMap<String, RefStatus>, TransportFailure>;

    /// The checkpoint refs the glob of the coming pushes can reach (told before the first push that carries
    /// checkpoints); a transport may leave every other remote checkpoint ref out of what its push sees.
    fn checkpoint_destinations(&mut self, _names: &[&str]) {}

    /// The URL this transport pushes to, when it knows it (shared-ref recovery fetches from it).
    fn url(&self) -> Option<&str> {
        None
    }
}

/// The result of [`run`].
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One status per user refspec, in the order given.
    pub user: Vec<(String, RefStatus)>,
    /// `None` when no checkpoint was part of the push.
    pub checkpoints: Option<CheckpointSummary>,
    /// Lines for stderr (beyond the summary), e.g. a checkpoint rejection that forced a retry.
    pub notes: Vec<String>,
    /// Set when the checkpoint push itself could not run.
    pub checkpoint_failure: Option<String>,
    /// Set when the queued checkpoints could not even be prepared (queue unreadable, staging refs not
    /// writable): they stay queued, nothing of them was pushed.
    pub prepare_failure: Option<String>,
}

/// Push `user` refspecs (possibly none) plus, when `with_checkpoints`, the queued checkpoints of `repo` and the
/// shared refs of the rollout ([`crate::sync::shared`]); `remote` names the configured remote, when known.
pub fn run(
    repo: Option<&Repo>,
    remote: Option<&str>,
    transport: &mut dyn PushTransport,
    user: &[PushSpec],
    options: &PushOptions,
    with_checkpoints: bool,
) -> Outcome {
    // A user refspec that names a checkpoint ref itself would collide with the glob; such a push carries only
    // what the user asked for.
    let explicit = user.iter().any(|s| s.dst.starts_with("refs/entire/"));
    let mut outcome = Outcome::default();
    let batch = match (repo, with_checkpoints && !explicit) {
        (Some(repo), true) => prepare(repo).unwrap_or_else(|e| {
            outcome.prepare_failure = Some(e);
            None
        }),
        _ => None,
    };
    let user_specs: Vec<String> = user.iter().map(PushSpec::refspec).collect();
    let shared = shared::Shared::new(repo, remote, user, with_checkpoints && !explicit);
    let extra = shared.together();
    let Some(batch) = batch else {
        let mut statuses =
            push_without_batch(transport, user, &user_specs, &extra, options, &mut outcome);
        shared.finish(transport, &mut statuses, &[], options, &mut outcome);
        return outcome;
    };
    let mut names: Vec<&str> = batch.entries().iter().map(|e| e.name.as_str()).collect();
    names.extend(shared.plan.archives.iter().map(String::as_str));
    transport.checkpoint_destinations(&names);
    let pushing = std::time::Instant::now();
    let mut cp_statuses = push_both(
        transport,
        &batch,
        user,
        &user_specs,
        &extra,
        options,
        &mut outcome,
    );
    shared.finish(
        transport,
        &mut cp_statuses,
        batch.entries(),
        options,
        &mut outcome,
    );
    tracing::debug!(target: "entire::push", ms = pushing.elapsed().as_millis() as u64, "pushed");
    let missing = outcome
        .checkpoint_failure
        .clone()
        .unwrap_or_else(|| "no status reported".into());
    let accounting = std::time::Instant::now();
    match batch.account(&cp_statuses, options.dry_run, &missing) {
        Ok(summary) => outcome.checkpoints = Some(summary),
        Err(e) => tracing::warn!(target: "entire::push", "cannot update the push queue: {e}"),
    }
    if let Err(e) = batch.finish() {
        tracing::warn!(target: "entire::push", "cannot delete staging refs: {e}");
    }
    tracing::debug!(target: "entire::push", ms = accounting.elapsed().as_millis() as u64, "accounted and cleaned up");
    outcome
}

/// The push itself: one combined push, or (for `--atomic`, or nothing of the user's) the user's refs and the
/// checkpoints separately; a combined push refused wholesale by the server is retried without checkpoints.
/// `extra` (shared refs, fast-forward only) travels with the checkpoints. Returns the statuses the checkpoints
/// and the shared refs got.
fn push_both(
    transport: &mut dyn PushTransport,
    batch: &Batch<'_>,
    user: &[PushSpec],
    user_specs: &[String],
    extra: &[String],
    options: &PushOptions,
    outcome: &mut Outcome,
) -> BTreeMap<String, RefStatus> {
    let mut ours = vec![batch.glob()];
    ours.extend_from_slice(extra);
    let separate = PushOptions {
        atomic: false,
        cas: Vec::new(),
        force_if_includes: false,
        ..options.clone()
    };
    let mut cp_statuses = BTreeMap::new();
    if user.is_empty() || options.atomic {
        if !user.is_empty() {
            outcome.user = push_user(transport, user, user_specs, options);
        }
        match transport.push(&ours, &separate) {
            Ok(map) => cp_statuses = map,
            Err(f) => outcome.checkpoint_failure = Some(f.message),
        }
    } else {
        let mut all = user_specs.to_vec();
        all.extend(ours);
        // No verdict from the server (it dropped the connection, as dulwich does to refuse checkpoint refs):
        // the user's refs go again alone, the checkpoints stay queued.
        let verdict = match transport.push(&all, options) {
            Err(f) => Err(f.message),
            Ok(map) => {
                let user_statuses = pick(user, &map);
                let none = user_statuses
                    .iter()
                    .all(|(_, s)| matches!(s, RefStatus::Rejected(Rejection::Failed(_))));
                match (none, user_statuses.first()) {
                    (true, Some((_, s))) => Err(s.reason()),
                    _ => Ok(map),
                }
            }
        };
        match verdict {
            Err(why) => {
                outcome.notes.push(format!(
                    "entire: the push with checkpoint refs failed ({why}); pushing your refs without them"
                ));
                outcome.user = push_user(transport, user, user_specs, options);
                outcome.checkpoint_failure = Some(why);
            }
            Ok(map) => {
                outcome.user = pick(user, &map);
                let hook_refused_all = outcome.user.iter().all(|(_, s)| s.is_remote_rejection())
                    && batch
                        .entries()
                        .iter()
                        .any(|e| map.get(&e.name).is_some_and(RefStatus::is_remote_rejection));
                if hook_refused_all {
                    let why = batch
                        .entries()
                        .iter()
                        .find_map(|e| map.get(&e.name).map(RefStatus::reason))
                        .unwrap_or_default();
                    outcome.notes.push(format!(
                        "entire: the remote rejected the push with checkpoint refs ({why}); pushing your refs without them"
                    ));
                    outcome.user = push_user(transport, user, user_specs, options);
                }
                cp_statuses = map;
            }
        }
    }
    cp_statuses
}

/// No queued checkpoints: the user's refs, with the shared refs of `extra` in the same push when there is
/// something of the user's (and it is not `--atomic`), alone otherwise. Returns every status the pushes got.
fn push_without_batch(
    transport: &mut dyn PushTransport,
    user: &[PushSpec],
    user_specs: &[String],
    extra: &[String],
    options: &PushOptions,
    outcome: &mut Outcome,
) -> BTreeMap<String, RefStatus> {
    if extra.is_empty() || options.atomic || user.is_empty() {
        outcome.user = push_user(transport, user, user_specs, options);
        if extra.is_empty() {
            return BTreeMap::new();
        }
        let separate = PushOptions {
            atomic: false,
            cas: Vec::new(),
            force_if_includes: false,
            ..options.clone()
        };
        return transport.push(extra, &separate).unwrap_or_default();
    }
    let mut all = user_specs.to_vec();
    all.extend_from_slice(extra);
    // Whatever befalls the shared refs, the user's refs get their own verdict: when nothing of the user's
    // landed in the combined push, they go again alone.
    let map = transport.push(&all, options).unwrap_or_default();
    let user_statuses = pick(user, &map);
    if user_statuses.iter().any(|(_, s)| s.landed()) {
        outcome.user = user_statuses;
    } else {
        outcome.user = push_user(transport, user, user_specs, options);
    }
    map
}

fn prepare(repo: &Repo) -> Result<Option<Batch<'_>>, String> {
    let limit = crate::git::config::get(repo, "entire.pushBatchSize")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(stage::DEFAULT_BATCH_SIZE);
    let started = std::time::Instant::now();
    let prepared = Batch::prepare(repo, limit);
    tracing::debug!(target: "entire::push", ms = started.elapsed().as_millis() as u64, "prepared the batch");
    match prepared {
        Ok(b) if b.is_empty() => Ok(None),
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            tracing::warn!(target: "entire::push", "checkpoints not pushed this time: {e}");
            Err(e.to_string())
        }
    }
}

fn push_user(
    transport: &mut dyn PushTransport,
    user: &[PushSpec],
    specs: &[String],
    options: &PushOptions,
) -> Vec<(String, RefStatus)> {
    if user.is_empty() {
        return Vec::new();
    }
    match transport.push(specs, options) {
        Ok(map) => pick(user, &map),
        Err(f) => fail_all(user, &f.message),
    }
}

fn pick(user: &[PushSpec], map: &BTreeMap<String, RefStatus>) -> Vec<(String, RefStatus)> {
    user.iter()
        .map(|s| {
            let status = map.get(&s.dst).cloned().unwrap_or_else(|| {
                RefStatus::Rejected(Rejection::Failed("no status reported".into()))
            });
            (s.dst.clone(), status)
        })
        .collect()
}

fn fail_all(user: &[PushSpec], message: &str) -> Vec<(String, RefStatus)> {
    user.iter()
        .map(|s| {
            (
                s.dst.clone(),
                RefStatus::Rejected(Rejection::Failed(message.to_string())),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_table() {
        let cases = [
            (
                "refs/heads/main:refs/heads/main",
                Some((false, "refs/heads/main", "refs/heads/main")),
            ),
            (
                "+HEAD:refs/heads/new",
                Some((true, "HEAD", "refs/heads/new")),
            ),
            (":refs/heads/gone", Some((false, "", "refs/heads/gone"))),
            ("refs/heads/main", None),
            ("refs/heads/main:", None),
        ];
        for (input, want) in cases {
            let got = PushSpec::parse(input);
            assert_eq!(
                got.as_ref()
                    .map(|s| (s.force, s.src.as_str(), s.dst.as_str())),
                want,
                "{input}"
            );
            if let Some(s) = got {
                assert_eq!(s.refspec(), input);
            }
        }
    }
}
