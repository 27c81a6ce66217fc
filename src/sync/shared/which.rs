//! Which shared refs a push carries beyond the queue, and the empty-remote guard for the legacy branch.
//!
//! Pure decisions over what is known locally: the rollout (settings), the local legacy tip, the remote-tracking
//! refs of the named remote and the last-known remote state ([`super::state`]). No network.

use crate::git::repo::{ObjectId, Repo};
use crate::model::refname::{LEGACY_BRANCH, LEGACY_BRANCH_SHORT};
use crate::store::settings::{self, Backend};
use crate::store::v2::layout;
use crate::store::v2::pending::Pending;

use super::state;

/// When the legacy branch goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    /// Not carried by this push (mode does not mirror to it, no local branch, or the user pushes it).
    Skip,
    /// In the same push as the user's refs and the checkpoints.
    Together(ObjectId),
    /// After the user's branch landed (the remote may have no branch of the user's yet).
    AfterUserBranch(ObjectId),
    /// Held back: the remote has no known branch of the user's and none is pushed now.
    Guarded,
}

/// The shared-ref plan of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub legacy: Legacy,
    /// Archives of pending rotation publications that exist locally: they travel with the push (never
    /// forced), so a remote never gets a reset `current` without the archive of its old generation.
    pub archives: Vec<String>,
}

impl Plan {
    /// Nothing beyond the queue.
    pub const NONE: Plan = Plan {
        legacy: Legacy::Skip,
        archives: Vec::new(),
    };

    /// Refspecs that go into the combined push.
    pub fn together(&self) -> Vec<String> {
        let mut out: Vec<String> = self.archives.iter().map(|a| format!("{a}:{a}")).collect();
        if let Legacy::Together(_) = self.legacy {
            out.push(legacy_spec());
        }
        out
    }
}

/// The fast-forward-only refspec of the legacy branch.
pub fn legacy_spec() -> String {
    format!("{LEGACY_BRANCH}:{LEGACY_BRANCH}")
}

/// Whether the rollout writes the legacy branch as a mirror (unreadable settings: no, logged).
fn mirrors_legacy(repo: &Repo) -> bool {
    match settings::load(repo.workdir().as_deref()) {
        Ok(s) => s.rollout.mirrors.contains(Backend::GitBranch),
        Err(e) => {
            tracing::debug!(target: "entire::push", "shared refs: settings unreadable: {e}");
            false
        }
    }
}

/// Decide the plan for a push of `user_dsts` to `remote` (a configured remote's name, when known).
pub fn plan(repo: &Repo, user_dsts: &[&str], remote: Option<&str>) -> Plan {
    let archives = pending_archives(repo);
    if !mirrors_legacy(repo) || user_dsts.contains(&LEGACY_BRANCH) {
        return Plan {
            archives,
            ..Plan::NONE
        };
    }
    let tip = match repo.find_ref(LEGACY_BRANCH) {
        Ok(Some(t)) => t,
        _ => return Plan::NONE,
    };
    let pushes_branch = user_dsts
        .iter()
        .any(|d| d.starts_with("refs/heads/") && *d != LEGACY_BRANCH);
    let legacy = match remote.map(|r| remote_has_branch(repo, r)) {
        Some(true) => Legacy::Together(tip),
        _ if pushes_branch => Legacy::AfterUserBranch(tip),
        _ => Legacy::Guarded,
    };
    Plan { legacy, archives }
}

/// Archive refs named by pending rotation publications that exist locally (unreadable records: none, logged).
fn pending_archives(repo: &Repo) -> Vec<String> {
    let records = match Pending::new(&repo.common_dir()).list() {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(target: "entire::push", "pending publications unreadable: {e}");
            return Vec::new();
        }
    };
    let mut out: Vec<String> = records
        .into_iter()
        .map(|r| r.archive_ref_name)
        .filter(|a| layout::archive_number(a).is_some() && matches!(repo.find_ref(a), Ok(Some(_))))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// True when `remote` is known to hold a branch of the user's (a remote-tracking branch other than `HEAD` and
/// the legacy branch) or the legacy branch itself (last confirmed by a push).
pub fn remote_has_branch(repo: &Repo, remote: &str) -> bool {
    if state::load(repo, remote).contains_key(LEGACY_BRANCH) {
        return true;
    }
    let prefix = format!("refs/remotes/{remote}/");
    repo.refs_with_prefix(&prefix)
        .map(|refs| {
            refs.iter().any(|(name, _)| {
                let short = &name[prefix.len()..];
                short != "HEAD" && short != LEGACY_BRANCH_SHORT
            })
        })
        .unwrap_or(false)
}

/// True when the rollout mirrors to the legacy branch and `remote` is not known to hold it at its local value
/// (a cheap look: settings, one ref, the state file).
pub fn legacy_pending(repo: &Repo, remote: Option<&str>) -> bool {
    let mirrored = mirrors_legacy(repo);
    let Ok(Some(tip)) = repo.find_ref(LEGACY_BRANCH) else {
        return false;
    };
    let known = remote.map(|r| state::load(repo, r)).unwrap_or_default();
    mirrored && known.get(LEGACY_BRANCH) != Some(&tip.to_string())
}
