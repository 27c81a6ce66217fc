//! entire: per-checkpoint git refs for Entire checkpoints.
//!
//! The library is layered; a module only imports from its own layer or the layers below it:
//!
//! 1. [`git`]: repository access (gix objects, compare-and-swap ref transactions, `packed-refs`), git children,
//!    git configuration, protocol-v2 listing.
//! 2. [`model`]: checkpoint IDs, ref names, metadata, transcript chunking, the checkpoint tree.
//! 3. [`store`]: one module per layout (per-checkpoint refs, legacy branch), routing by rollout settings, the
//!    push queue shared with the upstream CLI.
//! 4. [`sync`]: remotes, the batched push, lazy and pull-along fetch, commit trailers.
//! 5. [`migrate`]: legacy branch → per-checkpoint refs; [`attach`]: record a session that ran outside the
//!    hooks and link it to a commit.
//!
//! [`report`] turns an error chain into the lines a user reads (each cause once); [`par`] runs one closure on
//! several threads (any layer may use it).
//!
//! The command lines (`git entire`, `git entire-migrate`) live in the `entire-cli` crate and the remote helper's
//! protocol loop in `entire-helper`; both use only what is exported here.

pub mod attach;
pub mod git;
pub mod migrate;
pub mod model;
pub mod par;
pub mod report;
pub mod store;
pub mod sync;

pub use git::repo::{ObjectId, Repo, RepoError};
pub use model::id::CheckpointId;
pub use store::queue::Queue;
