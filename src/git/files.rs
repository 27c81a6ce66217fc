//! Ref transactions on git's files backend, following git's own protocol (`refs/files-backend.c`).
//!
//! Protocol, per transaction:
//! 1. Every ref's `<ref>.lock` is created with `O_EXCL` (sorted by name, so two transactions cannot deadlock),
//!    waiting up to `core.filesRefLockTimeout` (git's default 100 ms) for a concurrent holder.
//! 2. Under the locks, each ref's current value (loose file, else its `packed-refs` entry) is compared with
//!    the expected one; any mismatch releases every lock and reports [`RepoError::Conflict`].
//! 3. The new values are written into the lock files and the reflog lines appended (where
//!    `core.logAllRefUpdates` or an existing log asks for one), then each lock is renamed over its ref.
//! 4. Deletions of refs that have a packed entry rewrite `packed-refs` under `packed-refs.lock` first (the
//!    only case that takes that lock, exactly like git), then unlink the loose file.
//!
//! Concurrency guarantees:
//! - Creating or updating a ref never takes `packed-refs.lock`, so a long `git gc`, `git pack-refs` or a
//!   crashed git holding it does not block checkpoint writes (git's `update-ref` behaves the same).
//! - `git pack-refs` prunes a loose ref only under that ref's `<ref>.lock`, so the value read in step 2 cannot
//!   move between packed and loose storage while we hold the lock.
//! - Remaining race, harmless: a multi-ref transaction is all-or-nothing for compare-and-swap, but a crash
//!   during step 3 can leave some refs renamed and others not (git has the same window); every renamed ref
//!   holds a complete value, and checkpoint refs are queued before they are written.
//!
//! Failure modes: termination signals (INT, TERM, QUIT, HUP) are held back while the locks exist and take
//! effect right after (the locks are also registered with `gix-tempfile`, whose best-effort signal cleanup
//! covers the rest of the process); a kill -9 leaves at most a `<ref>.lock` that blocks that one ref, like
//! git. Like git's default `core.fsync`, ref files are not fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::lock::acquire::Fail;

use super::packedrefs::{Mode, PackedRefs};
use super::repo::{ObjectId, RefUpdate, Repo, RepoError};

/// Apply `updates` as one compare-and-swap transaction on the files backend.
pub(crate) fn transaction(
    repo: &Repo,
    updates: &[RefUpdate],
    reflog: &str,
) -> Result<(), RepoError> {
    let mut sorted: Vec<&RefUpdate> = updates.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.dedup_by(|a, b| a.name == b.name);
    if sorted.len() != updates.len() {
        return Err(RepoError::Git {
            what: "a ref transaction names one ref twice".into(),
            source: "duplicate ref in transaction".into(),
        });
    }
    let timeout = lock_timeout(repo);
    // Declared before the locks, so it drops after them: a pending SIGTERM arrives once no lock exists.
    let _deferred = super::robust::DeferSignals::new();
    let mut locked = Vec::with_capacity(sorted.len());
    for u in &sorted {
        validate(&u.name)?;
        let path = ref_path(repo, &u.name);
        let lock = gix::lock::File::acquire_to_update_resource(
            &path,
            Fail::AfterDurationWithBackoff(timeout),
            Some(repo.common_dir()),
            0,
        )
        .map_err(|e| {
            let held = lock_path(&path);
            if held.exists() {
                RepoError::Locked {
                    path: held,
                    source: Box::new(e),
                }
            } else {
                RepoError::Git {
                    what: format!("cannot lock ref {}", u.name),
                    source: Box::new(e),
                }
            }
        })?;
        let actual = repo.find_ref_files(&u.name)?;
        if actual != u.expected {
            return Err(RepoError::conflict(&u.name, u.expected, actual));
        }
        locked.push((*u, path, lock));
    }
    let deletions: Vec<&RefUpdate> = sorted.iter().copied().filter(|u| u.new.is_none()).collect();
    if !deletions.is_empty() {
        delete_packed(repo, &deletions)?;
    }
    let log = LogWriter::new(repo, reflog);
    for (u, path, mut lock) in locked {
        match u.new {
            Some(new) => {
                lock.with_mut(|f| writeln!(f, "{new}"))
                    .map_err(io(&lock_path(&path)))?;
                log.append(&u.name, u.expected, new)?;
                lock.commit().map_err(|e| RepoError::Git {
                    what: format!("cannot update ref {}", u.name),
                    source: Box::new(e.error),
                })?;
            }
            None => {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&path)(e));
                    }
                    _ => {}
                }
                let _ = std::fs::remove_file(repo.common_dir().join("logs").join(&u.name));
                drop(lock);
                prune_empty_parents(&repo.common_dir(), &path);
            }
        }
    }
    Ok(())
}

/// Remove the packed entries of `deletions` (those that have one) under `packed-refs.lock`.
fn delete_packed(repo: &Repo, deletions: &[&RefUpdate]) -> Result<(), RepoError> {
    let common = repo.common_dir();
    let tmp = common.join(format!("entire-packed-refs.{}.tmp", std::process::id()));
    let packed = PackedRefs::new(&common, tmp, lock_timeout(repo).max(Duration::from_secs(1)));
    let mut changes = Vec::new();
    for d in deletions {
        if let Some(value) = repo.find_packed(&d.name)? {
            changes.push(RefUpdate {
                name: d.name.clone(),
                expected: Some(value),
                new: None,
            });
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let refs: Vec<&RefUpdate> = changes.iter().collect();
    let conflicts = packed
        .update(&refs, Mode::AllOrNothing)
        .map_err(|e| RepoError::Git {
            what: "cannot delete packed refs".into(),
            source: Box::new(e),
        })?;
    match conflicts.first() {
        Some(c) => Err(RepoError::conflict(&c.name, c.expected, c.actual)),
        None => Ok(()),
    }
}

/// git's `core.filesRefLockTimeout` (milliseconds, default 100).
fn lock_timeout(repo: &Repo) -> Duration {
    let ms = repo
        .config_string("core.filesRefLockTimeout")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ms)
}

/// Where the loose file of `name` lives: per-worktree refs in the worktree's git dir, the rest in the common dir.
fn ref_path(repo: &Repo, name: &str) -> PathBuf {
    let per_worktree = !name.starts_with("refs/")
        || ["refs/worktree/", "refs/bisect/", "refs/rewritten/"]
            .iter()
            .any(|p| name.starts_with(p));
    if per_worktree {
        repo.git_dir().join(name)
    } else {
        repo.common_dir().join(name)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Refuse names that are not full, well-formed ref names (they would become paths).
fn validate(name: &str) -> Result<(), RepoError> {
    gix::refs::FullName::try_from(name)
        .map(|_| ())
        .map_err(|e| RepoError::Git {
            what: format!("invalid ref name {name:?}"),
            source: Box::new(e),
        })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |e| RepoError::Git {
        what: format!("cannot write {}", path.display()),
        source: Box::new(e),
    }
}

/// Remove now-empty directories between `path` and `<common>/refs`, as git does after deleting a ref.
fn prune_empty_parents(common: &Path, path: &Path) {
    let stop = common.join("refs");
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(&stop) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Appends reflog lines the way git decides (`core.logAllRefUpdates`, or an existing log).
struct LogWriter<'r> {
    repo: &'r Repo,
    message: String,
    mode: LogMode,
}

#[derive(PartialEq)]
enum LogMode {
    Never,
    Default,
    Always,
}

impl<'r> LogWriter<'r> {
    fn new(repo: &'r Repo, message: &str) -> Self {
        let mode = match repo
            .config_string("core.logAllRefUpdates")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("always") => LogMode::Always,
            Some("false" | "no" | "off" | "0") => LogMode::Never,
            Some(_) => LogMode::Default,
            None if repo.workdir().is_none() => LogMode::Never,
            None => LogMode::Default,
        };
        LogWriter {
            repo,
            message: message.replace('\n', " "),
            mode,
        }
    }

    fn append(&self, name: &str, old: Option<ObjectId>, new: ObjectId) -> Result<(), RepoError> {
        let path = self.repo.common_dir().join("logs").join(name);
        let wanted = match self.mode {
            LogMode::Always => true,
            LogMode::Default => {
                ["refs/heads/", "refs/remotes/", "refs/notes/"]
                    .iter()
                    .any(|p| name.starts_with(p))
                    || path.is_file()
            }
            LogMode::Never => path.is_file(),
        };
        if !wanted {
            return Ok(());
        }
        let who = self.repo.committer();
        let zero = ObjectId::null(new.kind());
        let sign = if who.offset < 0 { '-' } else { '+' };
        let off = who.offset.unsigned_abs() / 60;
        let line = format!(
            "{} {new} {} <{}> {} {sign}{:02}{:02}\t{}\n",
            old.unwrap_or(zero),
            who.name,
            who.email,
            who.seconds,
            off / 60,
            off % 60,
            self.message
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(io(&path))
    }
}
