//! Lazy fetch on read: a checkpoint that is missing locally is fetched from the checkpoint remote before it is
//! read. Every reader (`show`, `list`, `attach`, library users) goes through here, so they share one behaviour:
//!
//! - all missing IDs of one read cost one fetch (one round trip), never one per ID;
//! - when the rollout reads the v2 layout, that fetch also brings `v2/main` (fast-forward only), so a clone
//!   without it (a plain `git clone`) finds v2 checkpoints;
//! - a read of a v2 raw transcript (or its hash, or task files) that no local `/full` generation holds fetches
//!   the remote's `v2/full/*` generations in that same single fetch ([`read_or_fetch`]; see
//!   `sync::fetch::full`): one round trip for metadata and transcript together;
//! - a repository without any usable remote fetches nothing (every missing ID is then reported as such: the
//!   caller says "no remote" rather than "not on the remote");
//! - an unreachable remote is [`LazyError::Fetch`] with [`FetchError::Unreachable`], distinct from "the remote
//!   does not have it" (an ID in [`FetchReport::not_on_remote`]).
//!
//! Nothing is written but the fetched checkpoint refs, missing or behind v2 refs (never a diverged one) and
//! their objects (by `git fetch`).

use crate::git::repo::{Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::model::refname::V2_MAIN;
use crate::store::settings::{Backend, Rollout};
use crate::store::v2::read as v2read;
use crate::store::{self, Located, StoreError};
use crate::sync::fetch::{self, FetchError, FetchReport, ReadWants};
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

/// Fetch those of `ids` that are missing locally from the checkpoint remote, in one round trip, with
/// `v2/main` along when the rollout reads v2 (see [`find_or_fetch`]).
///
/// Without any usable remote nothing is fetched and `Ok(None)` is returned.
pub fn fetch_for_read(
    repo: &Repo,
    rollout: Rollout,
    ids: &[CheckpointId],
) -> Result<Option<FetchReport>, LazyError> {
    let wants = ReadWants {
        v2_main: reads_v2(repo, rollout)?,
        full: false,
    };
    fetch_with(repo, ids, wants)
}

fn fetch_with(
    repo: &Repo,
    ids: &[CheckpointId],
    wants: ReadWants,
) -> Result<Option<FetchReport>, LazyError> {
    let endpoint = match remote::checkpoint_remote(repo, None) {
        Ok(e) => e,
        Err(RemoteError::NoRemote { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(fetch::fetch_for_read(
        repo,
        &endpoint.fetch_url,
        ids,
        wants,
    )?))
}

/// True when reads should bring `v2/main` along: the rollout writes the v2 layout, or it exists locally.
fn reads_v2(repo: &Repo, rollout: Rollout) -> Result<bool, LazyError> {
    Ok(rollout.writes(Backend::V2) || repo.find_ref(V2_MAIN)?.is_some())
}

/// Locate checkpoint `id` through the rollout's stores, fetching its ref first when it is missing locally.
pub fn find_or_fetch(
    repo: &Repo,
    rollout: Rollout,
    id: &CheckpointId,
) -> Result<Lookup, LazyError> {
    let wants = ReadWants {
        v2_main: reads_v2(repo, rollout)?,
        full: false,
    };
    Ok(find_fetching(repo, rollout, id, wants)?.0)
}

fn find_fetching(
    repo: &Repo,
    rollout: Rollout,
    id: &CheckpointId,
    wants: ReadWants,
) -> Result<(Lookup, Option<FetchReport>), LazyError> {
    if let Some(found) = store::find(repo, rollout, id)? {
        return Ok((Lookup::Found(found), None));
    }
    let Some(report) = fetch_with(repo, std::slice::from_ref(id), wants)? else {
        return Ok((Lookup::NoRemote, None));
    };
    let lookup = match store::find(repo, rollout, id)? {
        Some(found) => Lookup::Found(found),
        None => Lookup::NotOnRemote,
    };
    Ok((lookup, Some(report)))
}

/// What [`read_or_fetch`] read.
#[derive(Debug)]
pub enum Read {
    /// The checkpoint was found (possibly just fetched); `bytes` is `None` when it has no such file, locally or
    /// (for a v2 `/full` path) in any of the remote's generations.
    Found {
        located: Located,
        bytes: Option<Vec<u8>>,
    },
    /// Not local, and the checkpoint remote does not have it either.
    NotOnRemote,
    /// Not local, and there is no remote to ask.
    NoRemote,
}

/// Read `path` of checkpoint `id`, fetching what is missing locally in one round trip: the checkpoint (and
/// `v2/main`) when it is not found, and — for a v2 `/full` path no local generation holds — the remote's
/// `v2/full/*` generations, in the same fetch when both are needed.
pub fn read_or_fetch(
    repo: &Repo,
    rollout: Rollout,
    id: &CheckpointId,
    path: &str,
) -> Result<Read, LazyError> {
    let v2 = reads_v2(repo, rollout)?;
    let on_full = v2read::on_full(path);
    if let Some(located) = store::find(repo, rollout, id)? {
        let bytes = store::read(repo, id, &located, path)?;
        if bytes.is_some() || !on_full || located.backend != Backend::V2 {
            return Ok(Read::Found { located, bytes });
        }
        let wants = ReadWants {
            v2_main: false,
            full: true,
        };
        let bytes = match fetch_with(repo, &[], wants)? {
            Some(report) => read_fetched(repo, id, path, &report)?,
            None => None,
        };
        return Ok(Read::Found { located, bytes });
    }
    // Not local at all: fetch the generations along when the read would land on the v2 layout first.
    let wants = ReadWants {
        v2_main: v2,
        full: on_full && store::read_order(rollout, id).first() == Some(&Backend::V2),
    };
    let (lookup, report) = find_fetching(repo, rollout, id, wants)?;
    let located = match lookup {
        Lookup::Found(l) => l,
        Lookup::NotOnRemote => return Ok(Read::NotOnRemote),
        Lookup::NoRemote => return Ok(Read::NoRemote),
    };
    let mut bytes = store::read(repo, id, &located, path)?;
    if bytes.is_none() && located.backend == Backend::V2 {
        if let Some(report) = &report {
            bytes = read_fetched(repo, id, path, report)?;
        }
    }
    Ok(Read::Found { located, bytes })
}

/// `path` from the generations a fetch brought (they may differ from the local refs when those diverged).
fn read_fetched(
    repo: &Repo,
    id: &CheckpointId,
    path: &str,
    report: &FetchReport,
) -> Result<Option<Vec<u8>>, LazyError> {
    let gens: Vec<_> = report.full_generations.iter().map(|(_, c)| *c).collect();
    Ok(v2read::read_full_in(repo, id, path, &gens)?)
}
