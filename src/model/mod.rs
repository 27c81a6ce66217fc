//! Layer 2: the checkpoint data model. IDs and their shards, ref names, the metadata JSON model with
//! Go-compatible output, transcript chunking and content hashes, and the checkpoint tree shared by every layout.
//!
//! Pure except for [`checkpoint`], which writes trees through [`crate::git::repo`].

pub mod checkpoint;
pub mod claude;
pub mod compact;
pub mod id;
pub mod metadata;
pub mod redact;
pub mod refname;
pub mod transcript;
pub mod validate;
