//! In-memory tree edits ([`TreeEditor`]), handed out by [`super::repo::Repo`] and written back by it.
//!
//! Invariants: paths are slash-separated and may be nested; nothing is written to the object database here.
//! Failure modes: an invalid path is a [`RepoError::Git`] naming it.

use gix::ObjectId;

use super::repoerror::{git, RepoError};

/// In-memory edits of a tree; paths are slash-separated and may be nested.
pub struct TreeEditor<'r> {
    pub(crate) inner: gix::objs::tree::Editor<'r>,
}

impl TreeEditor<'_> {
    /// Insert or replace a blob at `path`.
    pub fn put_blob(&mut self, path: &str, id: ObjectId) -> Result<(), RepoError> {
        self.inner
            .upsert(path.split('/'), gix::objs::tree::EntryKind::Blob, id)
            .map_err(git(format!("cannot place {path} in tree")))?;
        Ok(())
    }

    /// Insert or replace a subtree at `path`.
    pub fn put_tree(&mut self, path: &str, id: ObjectId) -> Result<(), RepoError> {
        self.inner
            .upsert(path.split('/'), gix::objs::tree::EntryKind::Tree, id)
            .map_err(git(format!("cannot place {path} in tree")))?;
        Ok(())
    }

    /// Remove `path` (and everything below it) if present.
    pub fn remove(&mut self, path: &str) -> Result<(), RepoError> {
        self.inner
            .remove(path.split('/'))
            .map_err(git(format!("cannot remove {path} from tree")))?;
        Ok(())
    }
}
