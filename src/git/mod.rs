//! Layer 1: git itself. Repository access through gix (objects), compare-and-swap ref transactions (in-process
//! on the files backend, through `git update-ref --stdin` on reftable or when a hook must run), batched
//! `packed-refs` rewrites under git's lock, git child processes, git configuration as git resolves it, and the
//! protocol-v2 ref listing.
//!
//! Nothing here knows about checkpoints; every higher layer goes through these modules to touch a repository.

pub mod cmd;
pub mod config;
pub mod files;
pub mod lsrefs;
pub mod pack;
pub mod packedrefs;
pub mod repo;
mod repoerror;
pub(crate) mod robust;
mod treeedit;
pub mod updateref;
