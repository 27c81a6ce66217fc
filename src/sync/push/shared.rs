//! The push side of the shared refs ([`crate::sync::shared`]): which extra refspecs join the push, what their
//! statuses mean, and the follow-up push of the legacy branch behind a first user branch (empty-remote guard).
//!
//! Invariants: extra refspecs never carry `+`; their statuses are never reported as the user's; a rejection or
//! failure is one note (stderr line) and nothing else.

use std::collections::BTreeMap;

use crate::git::repo::Repo;
use crate::model::refname::{self, LEGACY_BRANCH, V2_FULL_CURRENT};
use crate::sync::remote;
use crate::sync::shared::{publish, recover, state, which, Plan};

use super::{Outcome, PushOptions, PushSpec, PushTransport, RefStatus, Staged};

/// The shared-ref side of one push run.
pub struct Shared<'a> {
    pub repo: Option<&'a Repo>,
    pub remote: Option<&'a str>,
    pub plan: Plan,
}

impl<'a> Shared<'a> {
    /// Plan for a push of `user` (no plan without a repository or when checkpoints are off).
    pub fn new(
        repo: Option<&'a Repo>,
        remote: Option<&'a str>,
        user: &[PushSpec],
        on: bool,
    ) -> Self {
        let plan = match repo {
            Some(r) if on => {
                let dsts: Vec<&str> = user.iter().map(|s| s.dst.as_str()).collect();
                which::plan(r, &dsts, remote)
            }
            _ => Plan::NONE,
        };
        Shared { repo, remote, plan }
    }

    /// Refspecs joining the combined push.
    pub fn together(&self) -> Vec<String> {
        self.plan.together()
    }

    /// After the push: note rejections, push the legacy branch behind a freshly created first branch, record
    /// what landed (`staged` = checkpoint-glob entries; v2 refs among them are shared refs too).
    pub fn finish(
        &self,
        transport: &mut dyn PushTransport,
        statuses: &mut BTreeMap<String, RefStatus>,
        staged: &[Staged],
        options: &PushOptions,
        outcome: &mut Outcome,
    ) {
        let mut seen = Vec::new();
        let legacy_status = self.legacy_status(transport, statuses, options, outcome);
        let diverged = self.diverged(legacy_status.as_ref(), statuses, staged);
        let recovery = self.recover(transport, &diverged, options);
        let mut recovered = BTreeMap::new();
        for (name, value) in &recovery.landed {
            recovered.insert(name.clone(), *value);
            seen.push((name.clone(), value.to_string()));
            if name != LEGACY_BRANCH {
                statuses.insert(name.clone(), RefStatus::Ok);
            }
        }
        for (name, why) in &recovery.failed {
            if refname::is_checkpoint_ref(name) {
                outcome.notes.push(format!(
                    "entire: the checkpoint ref {name} differs from the remote's and could not be merged ({why}); it stays queued, your refs are unaffected"
                ));
            } else if name != LEGACY_BRANCH {
                outcome.notes.push(format!(
                    "entire: the shared checkpoint ref {name} was not pushed ({why}); it stays queued, your refs are unaffected"
                ));
            }
        }
        let legacy_failed = recovery.failed.iter().find(|(n, _)| n == LEGACY_BRANCH);
        if let Some((tip, status)) =
            legacy_status.filter(|_| !recovered.contains_key(LEGACY_BRANCH))
        {
            match (status, legacy_failed) {
                (_, Some((_, why))) => outcome.notes.push(format!(
                    "entire: the checkpoint branch {LEGACY_BRANCH} was not pushed (diverged from the remote: {why}); your refs are unaffected"
                )),
                (Some(s), None) if s.landed() => {
                    seen.push((LEGACY_BRANCH.to_string(), tip.to_string()))
                }
                (Some(s), None) => outcome.notes.push(format!(
                    "entire: the checkpoint branch {LEGACY_BRANCH} was not pushed ({}); your refs are unaffected",
                    s.reason()
                )),
                (None, None) => outcome.notes.push(format!(
                    "entire: the checkpoint branch {LEGACY_BRANCH} was not pushed (no status reported)"
                )),
            }
        }
        if !options.dry_run {
            self.forget_published(statuses, &recovered);
            for e in staged.iter().filter(|e| refname::is_v2_ref(&e.name)) {
                if recovered.contains_key(&e.name) {
                    continue;
                }
                if statuses.get(&e.name).is_some_and(RefStatus::landed) {
                    seen.push((e.name.clone(), e.value.to_string()));
                }
            }
            self.record(&seen);
        }
    }

    /// The legacy branch's tip and status in this push (pushing it now behind a freshly landed first branch).
    fn legacy_status(
        &self,
        transport: &mut dyn PushTransport,
        statuses: &BTreeMap<String, RefStatus>,
        options: &PushOptions,
        outcome: &Outcome,
    ) -> Option<(crate::git::repo::ObjectId, Option<RefStatus>)> {
        match self.plan.legacy {
            which::Legacy::Together(tip) => Some((tip, statuses.get(LEGACY_BRANCH).cloned())),
            which::Legacy::AfterUserBranch(tip) => {
                let landed = outcome.user.iter().any(|(dst, s)| {
                    dst.starts_with("refs/heads/") && dst != LEGACY_BRANCH && s.landed()
                });
                if !landed {
                    return None;
                }
                let separate = PushOptions {
                    atomic: false,
                    cas: Vec::new(),
                    force_if_includes: false,
                    ..options.clone()
                };
                let got = match transport.push(&[which::legacy_spec()], &separate) {
                    Ok(map) => map.get(LEGACY_BRANCH).cloned(),
                    Err(f) => Some(RefStatus::Rejected(super::Rejection::Failed(f.message))),
                };
                Some((tip, got))
            }
            _ => None,
        }
    }

    /// The shared refs this push found diverged (`v2/full/current` also when a pending archive was refused:
    /// the recovery folds it).
    fn diverged(
        &self,
        legacy: Option<&(crate::git::repo::ObjectId, Option<RefStatus>)>,
        statuses: &BTreeMap<String, RefStatus>,
        staged: &[Staged],
    ) -> Vec<String> {
        let mut diverged = Vec::new();
        if legacy
            .and_then(|(_, s)| s.as_ref())
            .is_some_and(recover::diverged)
        {
            diverged.push(LEGACY_BRANCH.to_string());
        }
        for e in staged.iter().filter(|e| recover::recoverable(&e.name)) {
            if statuses.get(&e.name).is_some_and(recover::diverged) {
                diverged.push(e.name.clone());
            }
        }
        let archive_diverged = self.plan.archives.iter().any(|a| {
            statuses.get(a).is_some_and(|s| {
                recover::diverged(s)
                    || matches!(s, RefStatus::Rejected(super::Rejection::AlreadyExists))
            })
        });
        if archive_diverged && !diverged.iter().any(|n| n == V2_FULL_CURRENT) {
            diverged.push(V2_FULL_CURRENT.to_string());
        }
        diverged
    }

    /// Pending publications whose archive and `current` both landed are done.
    fn forget_published(
        &self,
        statuses: &BTreeMap<String, RefStatus>,
        recovered: &BTreeMap<String, crate::git::repo::ObjectId>,
    ) {
        let current = recovered.contains_key(V2_FULL_CURRENT)
            || statuses.get(V2_FULL_CURRENT).is_some_and(RefStatus::landed);
        let archives: Vec<&str> = self
            .plan
            .archives
            .iter()
            .filter(|a| statuses.get(*a).is_some_and(RefStatus::landed))
            .map(String::as_str)
            .collect();
        if let (true, false, Some(repo)) = (current, archives.is_empty(), self.repo) {
            publish::landed(repo, &archives);
        }
    }

    /// Fetch-and-merge recovery of the `diverged` shared refs (not for `--dry-run`). The remote tips are fetched
    /// from the configured remote's push URL, or from the transport's URL when the push named no remote.
    fn recover(
        &self,
        transport: &mut dyn PushTransport,
        diverged: &[String],
        options: &PushOptions,
    ) -> recover::Recovery {
        let (Some(repo), false) = (self.repo, diverged.is_empty() || options.dry_run) else {
            return recover::Recovery::default();
        };
        let url = match self.remote {
            Some(name) => remote::resolve(Some(repo), name)
                .map(|e| e.push_url)
                .map_err(|e| e.to_string()),
            None => transport
                .url()
                .map(str::to_string)
                .ok_or_else(|| "diverged; the push transport names no URL to fetch from".into()),
        };
        let url = match url {
            Ok(u) => u,
            Err(why) => {
                return recover::Recovery {
                    failed: diverged.iter().map(|n| (n.clone(), why.clone())).collect(),
                    ..Default::default()
                }
            }
        };
        let mut push = |specs: &[String], leases: &[String], atomic: bool| {
            let separate = PushOptions {
                atomic,
                cas: leases.to_vec(),
                force_if_includes: false,
                ..options.clone()
            };
            transport.push(specs, &separate).map_err(|f| f.message)
        };
        let recovery = recover::recover(repo, &url, diverged, &mut push);
        tracing::debug!(target: "entire::push", round_trips = recovery.round_trips, landed = recovery.landed.len(), failed = recovery.failed.len(), "shared-ref recovery");
        recovery
    }

    fn record(&self, seen: &[(String, String)]) {
        if let (Some(repo), Some(remote)) = (self.repo, self.remote) {
            if let Err(e) = state::record(repo, remote, seen) {
                tracing::debug!(target: "entire::push", "cannot record shared-ref state: {e}");
            }
        }
    }
}
