//! Lazy fetch on read: a checkpoint that is missing locally is fetched from the checkpoint remote before it is
//! read. Every reader (`show`, `list`, `attach`, library users) goes through here, so they share one behaviour:
//!
//! - all missing IDs of one read cost one fetch (one round trip), never one per ID;
//! - a repository without any usable remote fetches nothing (every missing ID is then reported as such: the
//!   caller says "no remote" rather than "not on the remote");
//! - an unreachable remote is [`LazyError::Fetch`] with [`FetchError::Unreachable`], distinct from "the remote
//!   does not have it" (an ID in [`FetchReport::not_on_remote`]).
//!
//! Nothing is written but the fetched checkpoint refs and their objects (by `git fetch`).

use crate::git::repo::{Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::store::settings::Rollout;
use crate::store::{self, Located, StoreError};
use crate::sync::fetch::{self, FetchError, FetchReport};
use crate::sync::remote::{self, RemoteError};

/// Why a lazy read failed.
#[derive(Debug, thiserror::Error)]
pub enum LazyError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`find_or_fetch`] found.
#[derive(Debug)]
pub enum Lookup {
    /// Present locally (possibly just fetched).
    Found(Located),
    /// Not local, and the checkpoint remote does not have it either.
    NotOnRemote,
    /// Not local, and there is no remote to ask.
    NoRemote,
}

/// Fetch those of `ids` that are missing locally from the checkpoint remote, in one round trip.
///
/// Without any usable remote nothing is fetched and `Ok(None)` is returned.
pub fn fetch_for_read(repo: &Repo, ids: &[CheckpointId]) -> Result<Option<FetchReport>, LazyError> {
    let endpoint = match remote::checkpoint_remote(repo, None) {
        Ok(e) => e,
        Err(RemoteError::NoRemote { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(fetch::fetch_missing(repo, &endpoint.fetch_url, ids)?))
}

/// Locate checkpoint `id` through the rollout's stores, fetching its ref first when it is missing locally.
pub fn find_or_fetch(
    repo: &Repo,
    rollout: Rollout,
    id: &CheckpointId,
) -> Result<Lookup, LazyError> {
    if let Some(found) = store::find(repo, rollout, id)? {
        return Ok(Lookup::Found(found));
    }
    let Some(report) = fetch_for_read(repo, std::slice::from_ref(id))? else {
        return Ok(Lookup::NoRemote);
    };
    if report.fetched.is_empty() {
        return Ok(Lookup::NotOnRemote);
    }
    Ok(match store::find(repo, rollout, id)? {
        Some(found) => Lookup::Found(found),
        None => Lookup::NotOnRemote,
    })
}
