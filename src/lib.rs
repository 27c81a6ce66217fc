//! entire: per-checkpoint git refs for Entire checkpoints.
//!
//! One module per concept: [`id`] (checkpoint IDs), [`refname`] (ref names), [`settings`] (rollout mode),
//! [`metadata`] (JSON model), [`transcript`] (chunking, hashes), [`repo`] (gix access, CAS),
//! [`checkpoint`] (building a checkpoint tree), [`store`] (refs store, legacy branch store, routing),
//! [`queue`] (the push queue shared with the upstream CLI), [`packedrefs`] (batched compare-and-swap on
//! `packed-refs`), [`migrate`] (legacy branch → per-checkpoint refs).
pub mod checkpoint;
pub mod cli;
pub mod fetch;
pub mod gitcmd;
pub mod gitconfig;
pub mod id;
pub mod linked;
pub mod logging;
pub mod lsrefs;
pub mod metadata;
pub mod migrate;
pub mod packedrefs;
pub mod push;
pub mod queue;
pub mod refname;
pub mod remote;
pub mod repo;
pub mod settings;
pub mod store;
pub mod transcript;
