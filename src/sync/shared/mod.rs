//! Shared refs that travel with the push (SPEC §4 "Shared refs travel too"): the refs several machines write
//! and the remote must carry beyond the per-checkpoint refs.
//!
//! - [`which`]: which shared refs this push carries beyond the queue — the legacy branch
//!   `refs/heads/entire/checkpoints/v1` when the rollout mirrors to it (`refs-v1-mirror`). The v2 refs
//!   (`v2/main`, `v2/full/current`, archives) are queued by the v2 store and travel through the checkpoint glob.
//! - [`recover`]: fetch-and-merge recovery of the shared refs a push found diverged (merges in
//!   [`crate::sync::merge`]).
//! - [`scratch`]: one recovery at a time per repository, and the scratch-ref locks a killed one left.
//! - [`publish`]: a locally rotated generation goes out as archives plus the reset `current` (lease, atomic).
//! - [`state`]: the last value each shared ref was seen at on each remote (what a push confirmed), for
//!   `git entire status`.
//!
//! Invariants:
//! - Shared refs are pushed fast-forward only (no `+`), in the same push as the user's refs and the queued
//!   checkpoints; a shared-ref problem never changes the user's result, it becomes one stderr line. The one
//!   exception is a locally rotated `v2/full/current`: it replaces the remote's under a lease on the exact
//!   remote value, atomically with the archives that hold the old generation ([`publish`]).
//! - A shared ref rejected as diverged is fetched, merged and pushed again by [`recover`] (bounded attempts);
//!   merges only ever add: every checkpoint and session of both sides survives.
//! - The empty-remote guard: the legacy branch is never CREATED on a remote that has no branch of the user's
//!   (a hosting service could make it the default branch, upstream #1743). When nothing is known about the
//!   remote's branches and the user pushes a branch, the legacy branch follows in a second push once that branch
//!   landed; with no branch known and none pushed, it waits.
//!
//! Failure modes: reading the rollout or the state file fails soft (logged; the push goes on without the shared
//! refs); recording the state is best effort (a lost record only makes `status` less informed).

pub mod publish;
pub mod recover;
pub mod scratch;
pub mod state;
pub mod which;

pub use which::{plan, Plan};
