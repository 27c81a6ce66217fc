//! Repository access through `gix`: discovery, objects, and compare-and-swap ref updates.
//!
//! Invariants:
//! - Opening works from any worktree (main or linked), any subdirectory, and bare repositories; git's
//!   environment (`GIT_DIR`, `GIT_COMMON_DIR`, …) is honoured, so the helper can run under git.
//! - Every ref change goes through [`Repo::transaction`]: each edit carries the value it expects
//!   (`Some(oid)`, or `None` = must not exist). Nothing is ever written unconditionally. A lost race surfaces as
//!   [`RepoError::Conflict`] naming the ref (a concurrent holder of a ref's lock as [`RepoError::Locked`];
//!   [`RepoError::is_transient`] covers both), and callers retry by rebuilding from the new value.
//! - Ref storage follows `extensions.refStorage`: the files backend is read by gix and written in-process
//!   under git's lock protocol ([`super::files`]); reftable is read and written through git
//!   ([`super::updateref`]), as are all ref writes while a `reference-transaction` hook exists, so git runs the
//!   hook. Any other backend is refused on open ([`RepoError::Unsupported`]) — nothing is ever written where
//!   git does not look.
//! - Objects (SHA-1 or SHA-256, as the repository says) are written in-process; no `git` subprocess per object.
//!   A write that fails because `git prune-packed` removed its fan-out directory is retried, as git does.
//!
//! Failure modes: [`RepoError`] carries the path, ref or object at fault.

use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
pub use gix::ObjectId;

use super::repoerror::git;
pub use super::repoerror::RepoError;
pub use super::treeedit::TreeEditor;

/// Size of the per-process cache of decoded objects.
const OBJECT_CACHE_BYTES: usize = 4 << 20;

/// Who and when, for commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
    /// Seconds since the epoch.
    pub seconds: i64,
    /// UTC offset in seconds.
    pub offset: i32,
}

impl Identity {
    fn to_signature(&self) -> gix::actor::Signature {
        gix::actor::Signature {
            name: self.name.clone().into(),
            email: self.email.clone().into(),
            time: gix::date::Time {
                seconds: self.seconds,
                offset: self.offset,
            },
        }
    }
}

/// Which of git's two identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Author,
    Committer,
}

/// One entry of a tree, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub name: String,
    pub id: ObjectId,
    pub is_tree: bool,
}

/// A compare-and-swap ref edit.
#[derive(Debug, Clone)]
pub struct RefUpdate {
    pub name: String,
    /// `None`: the ref must not exist. `Some(oid)`: it must currently point at `oid`.
    pub expected: Option<ObjectId>,
    /// `None`: delete the ref.
    pub new: Option<ObjectId>,
}

/// How the repository stores refs (`extensions.refStorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefStorage {
    /// Loose files plus `packed-refs`: written in-process under git's lock protocol ([`super::files`]).
    Files,
    /// reftable: read and written through git ([`super::updateref`]).
    Reftable,
}

/// An open repository.
pub struct Repo {
    repo: gix::Repository,
    storage: RefStorage,
}

impl Repo {
    /// Discover the repository containing `dir`, honouring git's environment variables.
    pub fn discover(dir: &Path) -> Result<Self, RepoError> {
        // `git -c` reaches us only through GIT_CONFIG_PARAMETERS, which gix does not read: hand it over as
        // command-line overrides, so every setting read in-process sees git's layered view.
        let overrides = crate::git::config::cli_overrides();
        let mut trust = gix::sec::trust::Mapping::<gix::open::Options>::default();
        trust.full = trust.full.cli_overrides(overrides.clone());
        trust.reduced = trust.reduced.cli_overrides(overrides);
        let repo = gix::ThreadSafeRepository::discover_with_environment_overrides_opts(
            dir,
            Default::default(),
            trust,
        )
        .map_err(|e| RepoError::NotARepo {
            path: dir.to_path_buf(),
            source: Box::new(e),
        })?
        .to_thread_local();
        // A write reads the same few trees several times (a v2 root and its shard, once to locate, once to
        // edit, once to count): keep decoded objects of this process in memory. Objects never change, so the
        // cache cannot go stale.
        let mut repo = repo;
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        // Lock files (gix-tempfile) are removed when SIGINT/SIGTERM/SIGQUIT arrive, then the signal's default
        // action runs: a polite kill leaves no `<ref>.lock` or `packed-refs.lock` behind. Idempotent.
        super::robust::install_signal_cleanup();
        let storage = match repo
            .config_snapshot()
            .string("extensions.refStorage")
            .map(|v| v.to_str_lossy().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("files") => RefStorage::Files,
            Some("reftable") => RefStorage::Reftable,
            Some(other) => {
                return Err(RepoError::Unsupported {
                    path: absolute(repo.git_dir()),
                    what: format!("unsupported ref storage {other:?} (extensions.refStorage); files and reftable are supported"),
                })
            }
        };
        Ok(Repo { repo, storage })
    }

    /// The repository's ref storage backend.
    pub fn ref_storage(&self) -> RefStorage {
        self.storage
    }

    /// Whether ref transactions go through `git update-ref` (reftable, or a `reference-transaction` hook that
    /// git must run) rather than in-process.
    pub fn refs_via_git(&self) -> bool {
        self.storage == RefStorage::Reftable || self.has_hook("reference-transaction")
    }

    /// Whether an executable hook `name` exists where git looks for it (`core.hooksPath`, else `hooks/`).
    pub fn has_hook(&self, name: &str) -> bool {
        let dir = match self.config_string("core.hooksPath") {
            Some(p) => {
                let p = PathBuf::from(p);
                if p.is_absolute() {
                    p
                } else {
                    self.workdir().unwrap_or_else(|| self.git_dir()).join(p)
                }
            }
            None => self.common_dir().join("hooks"),
        };
        super::robust::is_executable(&dir.join(name))
    }

    /// Discover from the current directory.
    pub fn discover_cwd() -> Result<Self, RepoError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::discover(&cwd)
    }

    /// The underlying gix handle.
    pub fn gix(&self) -> &gix::Repository {
        &self.repo
    }

    /// The git common dir (shared by all worktrees): home of the queue and locks.
    pub fn common_dir(&self) -> PathBuf {
        absolute(self.repo.common_dir())
    }

    /// The per-worktree git dir.
    pub fn git_dir(&self) -> PathBuf {
        absolute(self.repo.git_dir())
    }

    /// The worktree root, if any.
    pub fn workdir(&self) -> Option<PathBuf> {
        self.repo.workdir().map(absolute)
    }

    /// A git config string value (last one wins), e.g. `entire.remote`.
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.repo
            .config_snapshot()
            .string(key)
            .map(|v| v.to_str_lossy().into_owned())
    }

    /// The operator's identity: `GIT_COMMITTER_*`, then `user.*`, then upstream's fallback, at "now"
    /// (or `GIT_COMMITTER_DATE`).
    pub fn committer(&self) -> Identity {
        let fallback_time = gix::date::Time::now_utc();
        match self.repo.committer() {
            Some(Ok(sig)) => {
                let time = sig.time().unwrap_or(fallback_time);
                Identity {
                    name: sig.name.to_str_lossy().into_owned(),
                    email: sig.email.to_str_lossy().into_owned(),
                    seconds: time.seconds,
                    offset: time.offset,
                }
            }
            _ => Identity {
                name: "Unknown".into(),
                email: "unknown@local".into(),
                seconds: fallback_time.seconds,
                offset: 0,
            },
        }
    }

    /// Name and email of the operator as author or committer, resolved as git does (`GIT_<ROLE>_NAME` and
    /// `_EMAIL`, then `<role>.name`/`.email`, then `user.*`, then `EMAIL` for the address, then upstream's
    /// fallback), without determining a date: for callers that bring their own dates, and cheaper than
    /// [`Repo::committer`] (gix resolves "now" in the local time zone eagerly, which reads the whole time zone
    /// database).
    pub fn person(&self, role: Role) -> (String, String) {
        let (env, section) = match role {
            Role::Author => ("AUTHOR", "author"),
            Role::Committer => ("COMMITTER", "committer"),
        };
        let lookup = |field: &str, upper: &str| {
            std::env::var(format!("GIT_{env}_{upper}"))
                .ok()
                .or_else(|| self.config_string(&format!("{section}.{field}")))
                .or_else(|| self.config_string(&format!("user.{field}")))
        };
        let name = lookup("name", "NAME").unwrap_or_else(|| "Unknown".into());
        let email = lookup("email", "EMAIL")
            .or_else(|| std::env::var("EMAIL").ok())
            .unwrap_or_else(|| "unknown@local".into());
        (name, email)
    }

    /// Value of a ref (peeled to its direct target), `None` if it does not exist.
    pub fn find_ref(&self, name: &str) -> Result<Option<ObjectId>, RepoError> {
        if self.storage == RefStorage::Reftable {
            let found = super::updateref::for_each_ref(self, name)?;
            return Ok(found.into_iter().find(|(n, _)| n == name).map(|(_, id)| id));
        }
        self.find_ref_files(name)
    }

    /// Values of several refs at once (one child git on reftable instead of one per ref).
    pub fn find_refs(&self, names: &[String]) -> Result<Vec<Option<ObjectId>>, RepoError> {
        if self.storage == RefStorage::Reftable && names.len() > 1 {
            let found = super::updateref::for_each_ref_many(self, names)?;
            return Ok(names
                .iter()
                .map(|n| found.iter().find(|(f, _)| f == n).map(|(_, id)| *id))
                .collect());
        }
        names.iter().map(|n| self.find_ref(n)).collect()
    }

    /// [`Repo::find_ref`] on the files backend (loose file, else `packed-refs`).
    pub(crate) fn find_ref_files(&self, name: &str) -> Result<Option<ObjectId>, RepoError> {
        let r = self
            .repo
            .try_find_reference(name)
            .map_err(git(format!("cannot read ref {name}")))?;
        Ok(r.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
    }

    /// The `packed-refs` entry of `name`, ignoring any loose file.
    pub(crate) fn find_packed(&self, name: &str) -> Result<Option<ObjectId>, RepoError> {
        let what = format!("cannot read packed-refs for {name}");
        let Some(buffer) = self
            .repo
            .refs
            .cached_packed_buffer()
            .map_err(git(what.clone()))?
        else {
            return Ok(None);
        };
        let found = buffer.try_find(name).map_err(git(what))?;
        Ok(found.map(|r| r.target()))
    }

    /// All refs under `prefix` with their direct targets, sorted by name.
    pub fn refs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, RepoError> {
        if self.storage == RefStorage::Reftable {
            return super::updateref::for_each_ref(self, prefix);
        }
        let what = format!("cannot list refs under {prefix}");
        let platform = self.repo.references().map_err(git(what.clone()))?;
        let iter = platform.prefixed(prefix).map_err(git(what.clone()))?;
        let mut out = Vec::new();
        for r in iter {
            let r = r.map_err(|e| RepoError::Git {
                what: what.clone(),
                source: Box::new(e),
            })?;
            if let Some(id) = r.target().try_id() {
                out.push((
                    r.name().as_bstr().to_str_lossy().into_owned(),
                    id.to_owned(),
                ));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether an object exists locally.
    pub fn has_object(&self, id: ObjectId) -> bool {
        self.same_kind(id) && self.repo.has_object(id)
    }

    /// True when `id` is of this repository's hash kind: gix asserts this on every lookup (a panic), and an
    /// ID of the other kind names no object here.
    fn same_kind(&self, id: ObjectId) -> bool {
        id.kind() == self.repo.object_hash()
    }

    /// Write a blob.
    pub fn write_blob(&self, data: &[u8]) -> Result<ObjectId, RepoError> {
        super::robust::retry_vanished_dir(|| self.repo.write_blob(data).map(|id| id.detach()))
            .map_err(git("cannot write blob"))
    }

    /// Write any object (retrying like git when a concurrent `git prune-packed` removed the fan-out dir).
    pub fn write_object(&self, object: impl gix::objs::WriteTo) -> Result<ObjectId, RepoError> {
        super::robust::retry_vanished_dir(|| self.repo.write_object(&object).map(|id| id.detach()))
            .map_err(git("cannot write object"))
    }

    /// Write a tree from `(name, id, is_tree)` entries (sorted here the way git requires).
    pub fn write_tree(&self, entries: &[TreeEntry]) -> Result<ObjectId, RepoError> {
        use gix::objs::tree::{Entry, EntryKind};
        let mut tree = gix::objs::Tree {
            entries: entries
                .iter()
                .map(|e| Entry {
                    mode: if e.is_tree {
                        EntryKind::Tree.into()
                    } else {
                        EntryKind::Blob.into()
                    },
                    filename: e.name.clone().into(),
                    oid: e.id,
                })
                .collect(),
        };
        tree.entries.sort();
        self.write_object(&tree)
    }

    /// The id of the empty tree.
    pub fn empty_tree(&self) -> ObjectId {
        ObjectId::empty_tree(self.repo.object_hash())
    }

    /// Edit `base` (or the empty tree) with `f`, returning the new tree id.
    pub fn edit_tree(
        &self,
        base: Option<ObjectId>,
        f: impl FnOnce(&mut TreeEditor<'_>) -> Result<(), RepoError>,
    ) -> Result<ObjectId, RepoError> {
        let base = base.unwrap_or_else(|| self.empty_tree());
        // The plumbing editor: gix's own wrapper checks that every entry of every written tree exists (one
        // object lookup per entry, i.e. per shard of a v2 root on each write); the entries placed here are
        // objects this process just wrote or read, so only the names are validated.
        let editor = self
            .repo
            .edit_tree(base)
            .map_err(git(format!("cannot read tree {base}")))?
            .detach();
        let mut ed = TreeEditor { inner: editor };
        f(&mut ed)?;
        // gix's defaults for entry names (its wrapper reads them from core.protect*; git writes trees without).
        let names = gix::validate::path::component::Options {
            protect_windows: cfg!(windows),
            protect_hfs: cfg!(target_os = "macos"),
            protect_ntfs: true,
        };
        ed.inner.write(|tree| {
            for e in &tree.entries {
                gix::validate::path::component(e.filename.as_ref(), None, names)
                    .map_err(git(format!("invalid tree entry name {:?}", e.filename)))?;
            }
            self.write_object(tree)
        })
    }

    /// Write a commit with explicit author/committer.
    pub fn write_commit(
        &self,
        tree: ObjectId,
        parents: &[ObjectId],
        author: &Identity,
        committer: &Identity,
        message: &str,
    ) -> Result<ObjectId, RepoError> {
        let commit = self.commit_object(tree, parents, author, committer, message);
        self.write_object(&commit)
    }

    /// Build (without writing) a commit object.
    pub fn commit_object(
        &self,
        tree: ObjectId,
        parents: &[ObjectId],
        author: &Identity,
        committer: &Identity,
        message: &str,
    ) -> gix::objs::Commit {
        gix::objs::Commit {
            tree,
            parents: parents.iter().copied().collect(),
            author: author.to_signature(),
            committer: committer.to_signature(),
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        }
    }

    fn find_commit(&self, commit: ObjectId) -> Result<gix::Commit<'_>, RepoError> {
        Some(commit)
            .filter(|id| self.same_kind(*id))
            .and_then(|id| self.repo.find_commit(id).ok())
            .ok_or_else(|| RepoError::BadObject {
                what: "reading commit".into(),
                id: commit,
                kind: "commit",
            })
    }

    /// Tree id of a commit.
    pub fn commit_tree(&self, commit: ObjectId) -> Result<ObjectId, RepoError> {
        self.find_commit(commit)?
            .tree_id()
            .map(|id| id.detach())
            .map_err(git(format!("cannot decode commit {commit}")))
    }

    /// Parents of a commit.
    pub fn commit_parents(&self, commit: ObjectId) -> Result<Vec<ObjectId>, RepoError> {
        Ok(self
            .find_commit(commit)?
            .parent_ids()
            .map(|p| p.detach())
            .collect())
    }

    /// Entries of a tree.
    pub fn tree_entries(&self, tree: ObjectId) -> Result<Vec<TreeEntry>, RepoError> {
        let t = Some(tree)
            .filter(|id| self.same_kind(*id))
            .and_then(|id| self.repo.find_tree(id).ok())
            .ok_or_else(|| RepoError::BadObject {
                what: "reading tree".into(),
                id: tree,
                kind: "tree",
            })?;
        let decoded = t
            .decode()
            .map_err(git(format!("cannot decode tree {tree}")))?;
        Ok(decoded
            .entries
            .iter()
            .map(|e| TreeEntry {
                name: e.filename.to_str_lossy().into_owned(),
                id: e.oid.to_owned(),
                is_tree: e.mode.is_tree(),
            })
            .collect())
    }

    /// Look up `path` (slash-separated) below `tree`.
    pub fn lookup(&self, tree: ObjectId, path: &str) -> Result<Option<TreeEntry>, RepoError> {
        let mut current = tree;
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        while let Some(part) = parts.next() {
            let Some(entry) = self
                .tree_entries(current)?
                .into_iter()
                .find(|e| e.name == part)
            else {
                return Ok(None);
            };
            if parts.peek().is_none() {
                return Ok(Some(entry));
            }
            if !entry.is_tree {
                return Ok(None);
            }
            current = entry.id;
        }
        Ok(Some(TreeEntry {
            name: String::new(),
            id: tree,
            is_tree: true,
        }))
    }

    /// Bytes of a blob.
    pub fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>, RepoError> {
        let b = Some(id)
            .filter(|id| self.same_kind(*id))
            .and_then(|id| self.repo.find_blob(id).ok())
            .ok_or_else(|| RepoError::BadObject {
                what: "reading blob".into(),
                id,
                kind: "blob",
            })?;
        Ok(b.data.clone())
    }

    /// Apply `updates` as ONE transaction; every edit is compare-and-swap. Files backend: in-process under
    /// git's lock protocol; reftable or a `reference-transaction` hook: one `git update-ref --stdin`.
    pub fn transaction(&self, updates: &[RefUpdate], reflog: &str) -> Result<(), RepoError> {
        if updates.is_empty() {
            return Ok(());
        }
        let result = if self.refs_via_git() {
            super::updateref::transaction(self, updates, reflog)
        } else {
            super::files::transaction(self, updates, reflog)
        };
        match result {
            Ok(()) => Ok(()),
            Err(e @ RepoError::Conflict { .. }) => Err(e),
            Err(err) => {
                // Distinguish a lost race from a real failure by looking at what is there now.
                for u in updates {
                    let actual = self.find_ref(&u.name)?;
                    if actual != u.expected {
                        return Err(RepoError::conflict(&u.name, u.expected, actual));
                    }
                }
                Err(err)
            }
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::{ObjectId, Repo};

    /// An ID of the other hash kind is an error naming it, never gix's panic.
    #[test]
    fn an_object_id_of_the_other_hash_kind_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tmp");
        let ok = std::process::Command::new("git")
            .args(["init", "-q", "--object-format=sha1"])
            .arg(dir.path())
            .status()
            .expect("git init");
        assert!(ok.success());
        let repo = Repo::discover(dir.path()).expect("repo");
        let other = ObjectId::null(gix::hash::Kind::Sha256);
        assert!(!repo.has_object(other));
        for e in [
            repo.read_blob(other).map(|_| ()),
            repo.commit_tree(other).map(|_| ()),
            repo.commit_parents(other).map(|_| ()),
            repo.tree_entries(other).map(|_| ()),
        ] {
            let msg = e.expect_err("other kind").to_string();
            assert!(msg.contains(&other.to_string()), "{msg}");
        }
    }
}
