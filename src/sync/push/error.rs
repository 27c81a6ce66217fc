//! The error of staging and un-staging checkpoint refs for a push (shared by [`super::stage`] and
//! [`super::runs`], so neither imports the other's error).

use std::path::PathBuf;

use crate::git::packedrefs::PackedRefsError;
use crate::git::repo::RepoError;
use crate::store::queue::QueueError;

/// Errors while preparing or finishing a batch.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Packed(#[from] PackedRefsError),
    #[error("staging refs already exist: {}", .0.join(", "))]
    Exists(Vec<String>),
    #[error("staging refs changed during the push, left in place: {}", .0.join(", "))]
    Moved(Vec<String>),
    #[error("cannot use push-run lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
