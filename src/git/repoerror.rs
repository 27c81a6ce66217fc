//! The error type of repository access ([`RepoError`]) and the helper that wraps a gix error with what was
//! being done.
//!
//! Invariants: every variant names the path, ref or object at fault; [`RepoError::is_transient`] is true
//! exactly for a lost compare-and-swap race or a lock held by a concurrent writer (worth a retry).

use std::path::PathBuf;

use gix::ObjectId;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of repository access.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not a git repository (or any parent up to the root): {path}")]
    NotARepo {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("{what}")]
    Git {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("ref {name} changed concurrently (expected {expected}, found {actual})")]
    Conflict {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{} is locked by another process; if no git command is running, remove it", path.display())]
    Locked {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("git refused the ref update: {message}")]
    Rejected { message: String },
    #[error("{path}: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{what}: object {id} is missing or not a {kind}")]
    BadObject {
        what: String,
        id: ObjectId,
        kind: &'static str,
    },
}

impl RepoError {
    pub(crate) fn conflict(
        name: &str,
        expected: Option<ObjectId>,
        actual: Option<ObjectId>,
    ) -> Self {
        RepoError::Conflict {
            name: name.to_string(),
            expected: show(expected),
            actual: show(actual),
        }
    }

    /// A lost compare-and-swap race or a lock held by a concurrent writer: worth rebuilding and retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, RepoError::Conflict { .. } | RepoError::Locked { .. })
    }
}

pub(crate) fn git<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> RepoError {
    let what = what.into();
    move |e| RepoError::Git {
        what,
        source: Box::new(e),
    }
}

fn show(v: Option<ObjectId>) -> String {
    v.map_or_else(|| "nothing".to_string(), |id| id.to_string())
}
