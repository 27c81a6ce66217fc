//! `git entire-migrate`: the legacy `entire/checkpoints/v1` branch → one ref per checkpoint.
//!
//! Every checkpoint `<id[:2]>/<id[2:]>` on the legacy branch gets `refs/entire/checkpoints/<shard>/<id>`
//! pointing at a commit whose tree is the legacy subtree, with only the root `metadata.json` normalised
//! ([`normalize`]); dates come from the legacy history ([`dates`]), identity from the operator ([`commit`]),
//! signatures from git's signing config ([`sign`]).
//!
//! A run: lock ([`lock`]) → read the legacy tip and existing refs ([`source`], [`refs`]) → plan each
//! checkpoint ([`plan`], using [`cache`]) while one walk of the legacy history dates the new ones ([`dates`],
//! on a second thread for large jobs) → build commits ([`commit`]) → **write objects → queue → refs** → save
//! the cache. Reads go through a handle with a pack-entry cache ([`odb`]).
//!
//! Invariants (what a kill -9 at any moment leaves behind, and why a rerun converges):
//! 1. **Objects before anything that names them.** All new objects go into one pack ([`crate::git::pack`]) that becomes
//!    visible (its `.idx` renamed into place) only when complete and fsynced. Refs and queue entries written
//!    later therefore never point at missing objects; `git fsck` stays clean at every point.
//! 2. **Queue intent before refs.** Every ref the run will create or update, and every up-to-date ref not yet
//!    queued, is appended (fsynced) to the push queue before any ref moves. So a migrated ref is never visible
//!    without being queued. A crash after this step leaves queue entries whose refs do not exist yet or still
//!    hold the old value; the rerun writes them, and pushers only ever push a ref's current local value.
//!    A push running in between may drop entries whose ref does not exist yet (the push queue forgets vanished
//!    refs, checked under its lock), so the queue is read again after the refs moved and anything missing is
//!    appended once more; from then on the refs exist and no push drops them unpushed.
//! 3. **Refs in one compare-and-swap rewrite of `packed-refs`** ([`refs`]): all or nothing on a crash, and a
//!    stale lock left by a killed run is recognised and removed by the next one.
//! 4. **Determinism makes the rerun converge to the uninterrupted result:** the same input yields the same
//!    objects and commit IDs (no "now" anywhere), so a rerun rebuilds exactly what the killed run was writing,
//!    skips objects that already landed, and finishes the ref update. Refs already moved count as up to date.
//! 5. The cache is written last and holds only facts about immutable objects; losing it only costs speed.
//!
//! Other failure modes: a corrupt checkpoint is an [`Outcome`] with [`Action::Failed`] and never stops the
//! others; infrastructure problems (unreadable objects, a failing signer, a full disk, another migration
//! holding the lock) are a [`MigrateError`] and abort the run before the first ref moves where possible.

pub mod cache;
pub mod commit;
pub mod dates;
pub mod deleted;
pub mod lock;
pub mod normalize;
pub mod odb;
pub mod plan;
pub mod refs;
pub mod sign;
pub mod source;
pub mod v2;

mod run;

pub use run::run;
use run::Timed;

use crate::git::repo::ObjectId;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Redo every checkpoint from scratch (orphan commits), even those already up to date.
    pub force: bool,
    /// Compute everything, write nothing (no objects, refs, queue entries or cache).
    pub dry_run: bool,
    /// `--author "Name <email>"`: replaces the operator's author identity.
    pub author: Option<(String, String)>,
    pub sign: sign::SignRequest,
}

/// What happened to one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new ref.
    Created,
    /// A new commit on an existing ref (or a `--force` reset).
    Updated,
    /// Already up to date, or deleted locally.
    Skipped,
    /// Not migratable; see `reason`.
    Failed,
}

/// One checkpoint's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Path on the legacy branch (`<id[:2]>/<id[2:]>`).
    pub path: String,
    pub id: Option<String>,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub action: Action,
    #[serde(serialize_with = "ser_oid")]
    pub commit: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn ser_oid<S: serde::Serializer>(id: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&id.to_string()),
        None => s.serialize_none(),
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `None` when there is no legacy branch (nothing to do).
    pub source: Option<source::Source>,
    pub dry_run: bool,
    /// Commits are unsigned in a dry run even if signing is configured (so their IDs may differ).
    pub signed: bool,
    pub outcomes: Vec<Outcome>,
    pub objects_written: usize,
    pub queued: usize,
}

impl Report {
    pub fn count(&self, action: Action) -> usize {
        self.outcomes.iter().filter(|o| o.action == action).count()
    }

    /// Created plus updated.
    pub fn migrated(&self) -> usize {
        self.count(Action::Created) + self.count(Action::Updated)
    }
}

/// Progress callbacks (the library never prints).
pub trait Progress {
    /// A new phase with a known or unknown amount of work.
    fn phase(&mut self, name: &'static str, total: Option<usize>);
    /// Work done so far in the current phase.
    fn advance(&mut self, done: usize);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&mut self, _: &'static str, _: Option<usize>) {}
    fn advance(&mut self, _: usize) {}
}

/// Infrastructure failures that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Repo(#[from] crate::git::repo::RepoError),
    #[error("cannot queue migrated refs for push: {0}")]
    Queue(#[from] crate::store::queue::QueueError),
    #[error(transparent)]
    Pack(#[from] crate::git::pack::PackError),
    #[error(transparent)]
    Refs(#[from] refs::RefsError),
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error(transparent)]
    Deleted(#[from] deleted::DeletedError),
    #[error(transparent)]
    Store(Box<crate::store::StoreError>),
}
