//! Publishing migrated refs: one compare-and-swap rewrite of `packed-refs` for all of them.
//!
//! Why not a ref transaction per ref (or gix's packed transaction)? Both take one `<ref>.lock` file per ref:
//! 100k creates, renames and deletes, several seconds on a real disk, and a kill -9 in the middle leaves up to
//! 100k stale lock files that block the rerun. Here the whole batch costs one file write.
//!
//! Protocol (git's own lock-file protocol for `packed-refs`, so git and gix see a consistent state):
//! 1. `entire-migrate-packed-refs.tmp` is created in the common dir and hard-linked to `packed-refs.lock`
//!    (an atomic create-if-absent, exactly what git's `O_EXCL` lock does; waits up to [`LOCK_TIMEOUT`]).
//! 2. Under the lock, `packed-refs` is read, every update is checked against its expected old value, and the
//!    merged file (sorted, unknown lines and peel lines kept verbatim) is written through the link and fsynced.
//! 3. `packed-refs.lock` is renamed over `packed-refs`, then the temporary link is removed.
//!
//! Invariants:
//! - Compare-and-swap per ref: an update whose ref no longer has the expected value is not applied and is
//!   returned as a [`Conflict`]; the others still are (each checkpoint ref is independent).
//! - A ref that exists as a loose file is updated through a normal per-ref transaction instead (a loose ref
//!   shadows its packed entry). A loose ref that appears concurrently, after the check, is detected afterwards
//!   and reported as a [`Conflict`]: the concurrent writer's value stands, as if ours had lost the race.
//! - Crash safety: a kill at any point leaves either the old or the new `packed-refs`. A stale
//!   `packed-refs.lock` left by a killed migration is recognised by being the same file as our temporary link and
//!   removed by [`recover`] (called under the migration lock, so no other migration can own it); a lock that is
//!   not ours is never touched.
//!
//! Failure modes: [`RefsError`] names the file; a lock held by someone else past the timeout is
//! [`RefsError::Locked`].

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;

use crate::refname::CHECKPOINT_PREFIX;
use crate::repo::{ObjectId, RefUpdate, Repo, RepoError};

/// How long to wait for somebody else's `packed-refs.lock` (git's `core.packedRefsTimeout` defaults to 1 s).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const TMP_NAME: &str = "entire-migrate-packed-refs.tmp";
const DEFAULT_HEADER: &[u8] = b"# pack-refs with: peeled fully-peeled sorted \n";

/// Errors publishing refs.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is locked by another process (waited {}s); if no git command is running, remove it", LOCK_TIMEOUT.as_secs())]
    Locked { path: PathBuf },
    #[error("{path}: malformed line {line}")]
    Malformed { path: PathBuf, line: usize },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One ref to set: `expected` is the value it must have now (`None`: must not exist).
#[derive(Debug, Clone)]
pub struct RefWrite {
    pub name: String,
    pub expected: Option<ObjectId>,
    pub new: ObjectId,
}

/// An update that was not applied because the ref had moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: String,
    pub expected: Option<ObjectId>,
    pub actual: Option<ObjectId>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RefsError + '_ {
    move |source| RefsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Remove what a killed run may have left: our temporary link, and `packed-refs.lock` if it is that same file.
/// Only call while holding the migration lock.
pub fn recover(common_dir: &Path) -> Result<(), RefsError> {
    let tmp = common_dir.join(TMP_NAME);
    let lock = common_dir.join("packed-refs.lock");
    if let (Ok(t), Ok(l)) = (fs::metadata(&tmp), fs::metadata(&lock)) {
        if same_file(&t, &l) {
            tracing::warn!(
                "removing {} left by an interrupted migration",
                lock.display()
            );
            fs::remove_file(&lock).map_err(io_err(&lock))?;
        }
    }
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&tmp)(e)),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    false
}

/// Loose refs under the checkpoint namespace (a file walk: cheap when, as usual, everything is packed).
fn loose_checkpoint_refs(common_dir: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    let base = common_dir.join(CHECKPOINT_PREFIX);
    let Ok(shards) = fs::read_dir(&base) else {
        return out;
    };
    for shard in shards.flatten() {
        let Ok(files) = fs::read_dir(shard.path()) else {
            continue;
        };
        for f in files.flatten() {
            let (shard_name, file_name) = (shard.file_name(), f.file_name());
            let (Some(s), Some(n)) = (shard_name.to_str(), file_name.to_str()) else {
                continue;
            };
            if !n.ends_with(".lock") {
                out.insert(format!("{CHECKPOINT_PREFIX}{s}/{n}"));
            }
        }
    }
    out
}

/// Every ref under `refs/entire/checkpoints/` with its value, read straight from `packed-refs` plus the few
/// loose refs (a loose ref overrides its packed entry, as in git). One sequential read instead of a ref-store
/// iteration: a no-op rerun over 100k refs spends most of its time here otherwise.
pub fn read_namespace(repo: &Repo) -> Result<Vec<(String, ObjectId)>, RefsError> {
    let common = repo.common_dir();
    let path = common.join("packed-refs");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let packed = Packed::parse(&bytes).map_err(|line| RefsError::Malformed {
        path: path.clone(),
        line,
    })?;
    let loose = loose_checkpoint_refs(&common);
    let mut out = Vec::new();
    for (name, line) in &packed.refs {
        if !name.starts_with(CHECKPOINT_PREFIX.as_bytes()) {
            continue;
        }
        let (Ok(name), Some(hex)) = (
            std::str::from_utf8(name),
            line.get(..line.find_byte(b' ').unwrap_or(0)),
        ) else {
            continue;
        };
        if let (false, Ok(id)) = (loose.contains(name), ObjectId::from_hex(hex)) {
            out.push((name.to_string(), id));
        }
    }
    for name in loose {
        if let Some(id) = repo.find_ref(&name)? {
            out.push((name, id));
        }
    }
    Ok(out)
}

/// Apply `writes`; returns the updates that lost a race (everything else is published).
pub fn apply(repo: &Repo, writes: &[RefWrite]) -> Result<Vec<Conflict>, RefsError> {
    let common = repo.common_dir();
    let loose = loose_checkpoint_refs(&common);
    let (via_loose, via_packed): (Vec<&RefWrite>, Vec<&RefWrite>) =
        writes.iter().partition(|w| loose.contains(&w.name));
    let mut conflicts = Vec::new();
    for w in via_loose {
        let update = RefUpdate {
            name: w.name.clone(),
            expected: w.expected,
            new: Some(w.new),
        };
        match repo.transaction(&[update], "entire-migrate") {
            Ok(()) => {}
            Err(RepoError::Conflict { .. }) => conflicts.push(Conflict {
                name: w.name.clone(),
                expected: w.expected,
                actual: repo.find_ref(&w.name)?,
            }),
            Err(e) => return Err(e.into()),
        }
    }
    if !via_packed.is_empty() {
        conflicts.extend(write_packed(&common, &via_packed)?);
        let now_loose = loose_checkpoint_refs(&common);
        for w in via_packed.iter().filter(|w| now_loose.contains(&w.name)) {
            conflicts.push(Conflict {
                name: w.name.clone(),
                expected: w.expected,
                actual: repo.find_ref(&w.name)?,
            });
        }
    }
    Ok(conflicts)
}

/// Take `packed-refs.lock` by hard-linking our temporary file to it; returns the open temporary.
fn lock_packed(common: &Path) -> Result<File, RefsError> {
    let tmp = common.join(TMP_NAME);
    let lock = common.join("packed-refs.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let start = Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        match fs::hard_link(&tmp, &lock) {
            Ok(()) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if start.elapsed() >= LOCK_TIMEOUT {
                    let _ = fs::remove_file(&tmp);
                    return Err(RefsError::Locked { path: lock });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(io_err(&lock)(e)),
        }
    }
}

fn write_packed(common: &Path, writes: &[&RefWrite]) -> Result<Vec<Conflict>, RefsError> {
    let path = common.join("packed-refs");
    let lock = common.join("packed-refs.lock");
    let tmp = common.join(TMP_NAME);
    let mut file = lock_packed(common)?;
    let result = (|| {
        let current = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let parsed = Packed::parse(&current).map_err(|line| RefsError::Malformed {
            path: path.clone(),
            line,
        })?;
        let (content, conflicts) = parsed.merge(writes);
        // Like git (whose default core.fsync leaves refs out), no fsync here: the objects the refs name are
        // already durable, and a rename never exposes a partially written file.
        file.write_all(&content).map_err(io_err(&lock))?;
        fs::rename(&lock, &path).map_err(io_err(&path))?;
        Ok(conflicts)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&lock);
    }
    let _ = fs::remove_file(&tmp);
    result
}

/// A parsed `packed-refs` file: header traits and `(name, verbatim lines)` per ref, sorted by name.
struct Packed<'a> {
    traits: Vec<&'a [u8]>,
    had_header: bool,
    refs: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Packed<'a> {
    /// Parse; `Err(line number)` for a line that is neither a ref, a peel line nor the header.
    fn parse(bytes: &'a [u8]) -> Result<Self, usize> {
        let mut traits = Vec::new();
        let mut had_header = false;
        let mut refs: Vec<(&[u8], &[u8])> = Vec::new();
        let mut offset = 0;
        // Start offset of the current ref's chunk, so peel lines stay attached to their ref.
        let mut chunk_start: Option<(usize, &[u8])> = None;
        for (n, line) in bytes.lines_with_terminator().enumerate() {
            let end = offset + line.len();
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if n == 0 && text.starts_with(b"# pack-refs with:") {
                had_header = true;
                traits = text[b"# pack-refs with:".len()..].fields().collect();
            } else if text.starts_with(b"^") {
                if chunk_start.is_none() {
                    return Err(n + 1);
                }
            } else if text.is_empty() || text.starts_with(b"#") {
                // Tolerated like git does; kept verbatim with the preceding ref (dropped before the first).
            } else {
                let space = text.find_byte(b' ').ok_or(n + 1)?;
                let name = &text[space + 1..];
                if let Some((start, name)) = chunk_start.take() {
                    refs.push((name, &bytes[start..offset]));
                }
                chunk_start = Some((offset, name));
            }
            offset = end;
        }
        if let Some((start, name)) = chunk_start {
            refs.push((name, &bytes[start..offset]));
        }
        if !traits.contains(&&b"sorted"[..]) {
            refs.sort_by(|a, b| a.0.cmp(b.0));
        }
        Ok(Packed {
            traits,
            had_header,
            refs,
        })
    }

    fn value(&self, name: &[u8]) -> Option<ObjectId> {
        let i = self.refs.binary_search_by(|r| r.0.cmp(name)).ok()?;
        let line = self.refs[i].1;
        let hex = line.split_once_str(b" ")?.0;
        ObjectId::from_hex(hex).ok()
    }

    /// The new file content and the updates refused by compare-and-swap.
    fn merge(&self, writes: &[&RefWrite]) -> (Vec<u8>, Vec<Conflict>) {
        let mut conflicts = Vec::new();
        let mut updates: Vec<(&[u8], ObjectId)> = Vec::with_capacity(writes.len());
        for w in writes {
            let actual = self.value(w.name.as_bytes());
            if actual == w.expected {
                updates.push((w.name.as_bytes(), w.new));
            } else {
                conflicts.push(Conflict {
                    name: w.name.clone(),
                    expected: w.expected,
                    actual,
                });
            }
        }
        updates.sort_by(|a, b| a.0.cmp(b.0));
        updates.dedup_by(|a, b| a.0 == b.0);
        let mut out = Vec::with_capacity(
            self.refs.iter().map(|r| r.1.len()).sum::<usize>() + updates.len() * 90,
        );
        if self.had_header {
            out.extend_from_slice(b"# pack-refs with:");
            for t in &self.traits {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            if !self.traits.contains(&&b"sorted"[..]) {
                out.extend_from_slice(b" sorted");
            }
            out.extend_from_slice(b" \n");
        } else if self.refs.is_empty() {
            out.extend_from_slice(DEFAULT_HEADER);
        }
        let (mut i, mut j) = (0, 0);
        while i < self.refs.len() || j < updates.len() {
            let take_update = match (self.refs.get(i), updates.get(j)) {
                (Some(r), Some(u)) => u.0 <= r.0,
                (None, Some(_)) => true,
                _ => false,
            };
            if take_update {
                let (name, id) = updates[j];
                if self.refs.get(i).is_some_and(|r| r.0 == name) {
                    i += 1; // replaced (a commit has no peel line to keep)
                }
                out.extend_from_slice(id.to_hex().to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(name);
                out.push(b'\n');
                j += 1;
            } else {
                let chunk = self.refs[i].1;
                out.extend_from_slice(chunk);
                if !chunk.ends_with(b"\n") {
                    out.push(b'\n');
                }
                i += 1;
            }
        }
        (out, conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> ObjectId {
        ObjectId::from_hex(c.to_string().repeat(40).as_bytes()).expect("hex")
    }

    fn write(name: &str, expected: Option<ObjectId>, new: ObjectId) -> RefWrite {
        RefWrite {
            name: name.into(),
            expected,
            new,
        }
    }

    #[test]
    fn merge_table() {
        let a = oid('a');
        let b = oid('b');
        let c = oid('c');
        let header = "# pack-refs with: peeled fully-peeled sorted \n";
        let tag = format!("{a} refs/tags/v1\n^{b}\n");
        // (existing file, writes, expected file, number of conflicts)
        let cases: Vec<(String, Vec<RefWrite>, String, usize)> = vec![
            // New file gets git's default header.
            (
                String::new(),
                vec![write("refs/x", None, a)],
                format!("{header}{a} refs/x\n"),
                0,
            ),
            // Insert keeps order and peel lines; replace honours expected.
            (
                format!("{header}{a} refs/heads/main\n{tag}"),
                vec![
                    write("refs/m", None, c),
                    write("refs/heads/main", Some(a), b),
                ],
                format!("{header}{b} refs/heads/main\n{c} refs/m\n{tag}"),
                0,
            ),
            // Wrong expectations: nothing changes, two conflicts.
            (
                format!("{header}{a} refs/heads/main\n"),
                vec![
                    write("refs/heads/main", None, b),
                    write("refs/heads/x", Some(a), b),
                ],
                format!("{header}{a} refs/heads/main\n"),
                2,
            ),
            // No header: unsorted input is sorted, traits are not invented beyond "sorted".
            (
                format!("{b} refs/z\n{a} refs/a\n"),
                vec![write("refs/m", None, c)],
                format!("{a} refs/a\n{c} refs/m\n{b} refs/z\n"),
                0,
            ),
            (
                format!("# pack-refs with: peeled \n{b} refs/z\n{a} refs/a\n"),
                vec![write("refs/m", None, c)],
                format!("# pack-refs with: peeled sorted \n{a} refs/a\n{c} refs/m\n{b} refs/z\n"),
                0,
            ),
        ];
        for (existing, writes, want, n_conflicts) in cases {
            let parsed = Packed::parse(existing.as_bytes()).expect("parses");
            let refs: Vec<&RefWrite> = writes.iter().collect();
            let (got, conflicts) = parsed.merge(&refs);
            assert_eq!(
                String::from_utf8(got).expect("utf-8"),
                want,
                "from {existing:?}"
            );
            assert_eq!(conflicts.len(), n_conflicts, "from {existing:?}");
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(Packed::parse(b"^abc\n").err(), Some(1));
        assert_eq!(
            Packed::parse(b"# pack-refs with: sorted \nnospace\n").err(),
            Some(2)
        );
    }
}
