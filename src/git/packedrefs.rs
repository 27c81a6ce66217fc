//! Many ref changes in ONE compare-and-swap rewrite of `packed-refs`, under git's own `packed-refs.lock`.
//!
//! Why: a ref transaction (ours through gix, or `git update-ref --stdin`) takes one `<ref>.lock` file per ref
//! and writes one loose file per created ref: for thousands of refs that is thousands of file creations,
//! renames and deletions, and a kill -9 in the middle leaves as many stale lock files. Here a whole batch costs
//! one sequential read and one file write. Used by the migration (publishing migrated refs) and by the push
//! engine (staging refs).
//!
//! Protocol (git's lock-file protocol for `packed-refs`, so git and gix see a consistent state):
//! 1. The caller's private temporary file is created, then hard-linked to `packed-refs.lock`: `link` fails
//!    when the name exists, exactly like git's `O_EXCL` create (we wait up to the writer's timeout). From the
//!    instant the lock exists it is the same file as our temporary name, which marks it as ours.
//! 2. Under the lock, `packed-refs` is read, every change is checked against its expected old value, and the
//!    merged file (sorted; unknown lines and peel lines of untouched refs kept verbatim) is written into it.
//! 3. `packed-refs.lock` is renamed over `packed-refs`, then the temporary link is removed.
//!
//! SIGINT, SIGTERM, SIGQUIT and SIGHUP are held back while the lock exists (`robust::DeferSignals`) and the
//! lock is removed on every error path, so only a kill -9 can leave it behind, and then always recoverably.
//!
//! Invariants:
//! - Compare-and-swap per ref against the PACKED value. A loose ref shadows its packed entry, so callers
//!   route refs that exist as loose files through a normal ref transaction instead ([`loose_refs`] finds them).
//! - [`Mode::AllOrNothing`] writes nothing when any change conflicts; [`Mode::EachRef`] applies the others.
//! - Crash safety: a kill at any point leaves either the old or the new `packed-refs`. A stale
//!   `packed-refs.lock` left by a killed writer is the same file as that writer's temporary file;
//!   [`PackedRefs::recover`] removes it, and must only be called when no live process can own that temporary
//!   file. A lock that is not the temporary file is never touched.
//! - Like git (whose default `core.fsync` leaves refs out), no fsync: the objects the refs name are already
//!   durable, and a rename never exposes a partially written file.
//!
//! Failure modes: [`PackedRefsError`] names the file; a lock held by someone else past the timeout is
//! [`PackedRefsError::Locked`].

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;

use crate::git::repo::{ObjectId, RefUpdate};

const DEFAULT_HEADER: &[u8] = b"# pack-refs with: peeled fully-peeled sorted \n";

/// Errors reading or rewriting `packed-refs`.
#[derive(Debug, thiserror::Error)]
pub enum PackedRefsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is locked by another process (waited {}s); if no git command is running, remove it", waited.as_secs_f32())]
    Locked { path: PathBuf, waited: Duration },
    #[error("{path}: malformed line {line}")]
    Malformed { path: PathBuf, line: usize },
}

/// A change that was not applied because the ref did not have the expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: String,
    pub expected: Option<ObjectId>,
    pub actual: Option<ObjectId>,
}

/// What to do with the other changes when one conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply every change whose expectation holds.
    EachRef,
    /// Write nothing if any change conflicts.
    AllOrNothing,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PackedRefsError + '_ {
    move |source| PackedRefsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One writer of a repository's `packed-refs`: the common dir and the private temporary file whose hard link
/// is the lock.
#[derive(Debug, Clone)]
pub struct PackedRefs {
    common: PathBuf,
    tmp: PathBuf,
    timeout: Duration,
}

impl PackedRefs {
    /// `tmp` must be on the same file system as `common` and used by one process at a time.
    pub fn new(common: &Path, tmp: PathBuf, timeout: Duration) -> Self {
        PackedRefs {
            common: common.to_path_buf(),
            tmp,
            timeout,
        }
    }

    fn path(&self) -> PathBuf {
        self.common.join("packed-refs")
    }

    fn lock_path(&self) -> PathBuf {
        self.common.join("packed-refs.lock")
    }

    /// Remove what a killed writer using the same temporary file may have left: `packed-refs.lock` if it is
    /// that file, then the file. Only call when no live process can be using the temporary file.
    pub fn recover(&self) -> Result<(), PackedRefsError> {
        let lock = self.lock_path();
        if let (Ok(t), Ok(l)) = (fs::metadata(&self.tmp), fs::metadata(&lock)) {
            if same_file(&t, &l) {
                tracing::warn!("removing {} left by an interrupted run", lock.display());
                fs::remove_file(&lock).map_err(io_err(&lock))?;
            }
        }
        match fs::remove_file(&self.tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&self.tmp)(e)),
            _ => Ok(()),
        }
    }

    /// Every packed ref under `prefix` with its value, in name order (loose refs are not consulted).
    pub fn read_prefix(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, PackedRefsError> {
        let path = self.path();
        let bytes = read_or_empty(&path)?;
        let packed = Packed::parse(&bytes).map_err(|line| PackedRefsError::Malformed {
            path: path.clone(),
            line,
        })?;
        let start = packed.refs.partition_point(|r| r.0 < prefix.as_bytes());
        Ok(packed.refs[start..]
            .iter()
            .take_while(|r| r.0.starts_with(prefix.as_bytes()))
            .filter_map(|&(name, line)| {
                let name = std::str::from_utf8(name).ok()?;
                let hex = line.get(..line.find_byte(b' ')?)?;
                Some((name.to_string(), ObjectId::from_hex(hex).ok()?))
            })
            .collect())
    }

    /// Apply `changes` (`new: None` deletes) in one rewrite; returns the changes refused by compare-and-swap.
    pub fn update(
        &self,
        changes: &[&RefUpdate],
        mode: Mode,
    ) -> Result<Vec<Conflict>, PackedRefsError> {
        let (path, lock_path) = (self.path(), self.lock_path());
        // Termination signals are held back while the lock exists (`_deferred` drops after `lock`): a SIGTERM
        // lands once `packed-refs.lock` is gone.
        let (_deferred, mut lock) = self.lock()?;
        let result = (|| {
            let current = read_or_empty(&path)?;
            let parsed = Packed::parse(&current).map_err(|line| PackedRefsError::Malformed {
                path: path.clone(),
                line,
            })?;
            let (content, conflicts) = parsed.merge(changes);
            if conflicts.is_empty() || mode == Mode::EachRef {
                lock.file.write_all(&content).map_err(io_err(&lock_path))?;
                lock.commit(&path).map_err(io_err(&path))?;
            }
            // Otherwise dropping the lock removes it and leaves `packed-refs` as it was.
            Ok(conflicts)
        })();
        let _ = fs::remove_file(&self.tmp);
        result
    }

    /// Take `packed-refs.lock`: create our temporary file, then hard-link it to the lock name (fails when the
    /// name exists, like git's `O_EXCL`). There is no instant at which the lock exists without being our
    /// temporary file, so [`PackedRefs::recover`] can always prove a lock left by a kill -9 was ours.
    fn lock(&self) -> Result<(super::robust::DeferSignals, Lock), PackedRefsError> {
        let lock_path = self.lock_path();
        let start = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            // Signals wait only while an attempt may create the lock, not while we sleep between attempts.
            let deferred = super::robust::DeferSignals::new();
            let _ = fs::remove_file(&self.tmp);
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.tmp)
                .map_err(io_err(&self.tmp))?;
            match fs::hard_link(&self.tmp, &lock_path) {
                Ok(()) => {
                    let lock = Lock {
                        file,
                        path: lock_path,
                        committed: false,
                    };
                    return Ok((deferred, lock));
                }
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(io_err(&lock_path)(e));
                }
                Err(_) if start.elapsed() >= self.timeout => {
                    let _ = fs::remove_file(&self.tmp);
                    return Err(PackedRefsError::Locked {
                        path: lock_path,
                        waited: self.timeout,
                    });
                }
                Err(_) => {
                    drop(deferred);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}

/// A held `packed-refs.lock` (the same file as the writer's temporary name); removed on drop unless committed.
struct Lock {
    file: fs::File,
    path: PathBuf,
    committed: bool,
}

impl Lock {
    /// Rename the lock over `target` (git's commit of a lock file).
    fn commit(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn read_or_empty(path: &Path) -> Result<Vec<u8>, PackedRefsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(path)(e)),
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

/// Loose refs under `prefix` (which ends in `/`), found by a file walk: cheap when, as usual, everything under
/// it is packed or absent. Lock files are skipped.
pub fn loose_refs(common: &Path, prefix: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut dirs = vec![(common.join(prefix), prefix.to_string())];
    while let Some((dir, name)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(n) = file_name.to_str() else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push((entry.path(), format!("{name}{n}/"))),
                Ok(_) if !n.ends_with(".lock") => {
                    out.insert(format!("{name}{n}"));
                }
                _ => {}
            }
        }
    }
    out
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

    /// The new file content and the changes refused by compare-and-swap.
    fn merge(&self, changes: &[&RefUpdate]) -> (Vec<u8>, Vec<Conflict>) {
        let mut conflicts = Vec::new();
        let mut updates: Vec<(&[u8], Option<ObjectId>)> = Vec::with_capacity(changes.len());
        for c in changes {
            let actual = self.value(c.name.as_bytes());
            if actual == c.expected {
                updates.push((c.name.as_bytes(), c.new));
            } else {
                conflicts.push(Conflict {
                    name: c.name.clone(),
                    expected: c.expected,
                    actual,
                });
            }
        }
        updates.sort_by(|a, b| a.0.cmp(b.0));
        updates.dedup_by(|a, b| a.0 == b.0);
        let mut out = Vec::with_capacity(
            self.refs.iter().map(|r| r.1.len()).sum::<usize>() + updates.len() * 90,
        );
        self.write_header(&mut out);
        let (mut i, mut j) = (0, 0);
        while i < self.refs.len() || j < updates.len() {
            let take_update = match (self.refs.get(i), updates.get(j)) {
                (Some(r), Some(u)) => u.0 <= r.0,
                (None, Some(_)) => true,
                _ => false,
            };
            if take_update {
                let (name, new) = updates[j];
                if self.refs.get(i).is_some_and(|r| r.0 == name) {
                    i += 1; // replaced or deleted (a commit has no peel line to keep)
                }
                if let Some(id) = new {
                    out.extend_from_slice(id.to_hex().to_string().as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(name);
                    out.push(b'\n');
                }
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

    fn write_header(&self, out: &mut Vec<u8>) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> ObjectId {
        ObjectId::from_hex(c.to_string().repeat(40).as_bytes()).expect("hex")
    }

    fn change(name: &str, expected: Option<ObjectId>, new: Option<ObjectId>) -> RefUpdate {
        RefUpdate {
            name: name.into(),
            expected,
            new,
        }
    }

    #[test]
    fn merge_table() {
        let (a, b, c) = (oid('a'), oid('b'), oid('c'));
        let header = "# pack-refs with: peeled fully-peeled sorted \n";
        let tag = format!("{a} refs/tags/v1\n^{b}\n");
        // (existing file, changes, expected file, number of conflicts)
        let cases: Vec<(String, Vec<RefUpdate>, String, usize)> = vec![
            // New file gets git's default header.
            (
                String::new(),
                vec![change("refs/x", None, Some(a))],
                format!("{header}{a} refs/x\n"),
                0,
            ),
            // Insert keeps order and peel lines; replace honours expected.
            (
                format!("{header}{a} refs/heads/main\n{tag}"),
                vec![
                    change("refs/m", None, Some(c)),
                    change("refs/heads/main", Some(a), Some(b)),
                ],
                format!("{header}{b} refs/heads/main\n{c} refs/m\n{tag}"),
                0,
            ),
            // Wrong expectations: nothing changes, two conflicts.
            (
                format!("{header}{a} refs/heads/main\n"),
                vec![
                    change("refs/heads/main", None, Some(b)),
                    change("refs/heads/x", Some(a), Some(b)),
                ],
                format!("{header}{a} refs/heads/main\n"),
                2,
            ),
            // Deletes: at the expected value only; deleting an absent ref expected absent is a no-op.
            (
                format!("{header}{a} refs/a\n{b} refs/b\n{c} refs/c\n{tag}"),
                vec![
                    change("refs/a", Some(a), None),
                    change("refs/c", Some(a), None),
                    change("refs/gone", None, None),
                    change("refs/tags/v1", Some(a), None),
                ],
                format!("{header}{b} refs/b\n{c} refs/c\n"),
                1,
            ),
            // No header: unsorted input is sorted, traits are not invented beyond "sorted".
            (
                format!("{b} refs/z\n{a} refs/a\n"),
                vec![change("refs/m", None, Some(c))],
                format!("{a} refs/a\n{c} refs/m\n{b} refs/z\n"),
                0,
            ),
            (
                format!("# pack-refs with: peeled \n{b} refs/z\n{a} refs/a\n"),
                vec![change("refs/m", None, Some(c))],
                format!("# pack-refs with: peeled sorted \n{a} refs/a\n{c} refs/m\n{b} refs/z\n"),
                0,
            ),
        ];
        for (existing, changes, want, n_conflicts) in cases {
            let parsed = Packed::parse(existing.as_bytes()).expect("parses");
            let refs: Vec<&RefUpdate> = changes.iter().collect();
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

    #[test]
    fn update_modes_recovery_and_prefix_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let common = dir.path();
        let writer = PackedRefs::new(common, common.join("t.tmp"), Duration::from_millis(50));
        let (a, b) = (oid('a'), oid('b'));
        let create = [
            change("refs/p/1", None, Some(a)),
            change("refs/p/2", None, Some(b)),
        ];
        let all: Vec<&RefUpdate> = create.iter().collect();
        assert!(writer
            .update(&all, Mode::AllOrNothing)
            .expect("writes")
            .is_empty());
        let again = [
            change("refs/p/3", None, Some(a)),
            change("refs/p/1", None, Some(b)),
        ];
        let again: Vec<&RefUpdate> = again.iter().collect();
        assert_eq!(
            writer
                .update(&again, Mode::AllOrNothing)
                .expect("runs")
                .len(),
            1
        );
        let listed = writer.read_prefix("refs/p/").expect("reads");
        assert_eq!(listed, vec![("refs/p/1".into(), a), ("refs/p/2".into(), b)]);
        assert!(!common.join("packed-refs.lock").exists() && !common.join("t.tmp").exists());
        // A held lock is our temporary file from the instant it exists; dropping it uncommitted removes it.
        let (deferred, held) = writer.lock().expect("locks");
        let meta = |p: &str| fs::metadata(common.join(p)).expect("exists");
        assert!(same_file(&meta("t.tmp"), &meta("packed-refs.lock")));
        drop((held, deferred));
        assert!(!common.join("packed-refs.lock").exists());
        // A killed writer's lock is recognised by its temporary file; anybody else's lock is left alone.
        fs::write(common.join("t.tmp"), "").expect("tmp");
        fs::hard_link(common.join("t.tmp"), common.join("packed-refs.lock")).expect("link");
        writer.recover().expect("recovers");
        assert!(!common.join("packed-refs.lock").exists() && !common.join("t.tmp").exists());
        fs::write(common.join("packed-refs.lock"), "").expect("foreign lock");
        writer.recover().expect("recovers");
        assert!(matches!(
            writer.update(&all, Mode::EachRef),
            Err(PackedRefsError::Locked { .. })
        ));
        assert!(common.join("packed-refs.lock").exists() && !common.join("t.tmp").exists());
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the parser; a parsed file's refs are sorted and merging no change
        /// reproduces every ref line.
        #[test]
        fn arbitrary_packed_refs_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(p) = Packed::parse(&bytes) {
                proptest::prop_assert!(p.refs.windows(2).all(|w| w[0].0 <= w[1].0));
                let _ = p.merge(&[]);
            }
        }

        #[test]
        fn valid_packed_refs_round_trip(names in proptest::collection::btree_set("refs/[a-z]{1,8}/[a-z0-9]{1,8}", 0..20)) {
            let mut text = String::from("# pack-refs with: peeled fully-peeled sorted \n");
            for n in &names {
                text.push_str(&format!("{} {n}\n", "a".repeat(40)));
            }
            let p = Packed::parse(text.as_bytes()).expect("valid file");
            proptest::prop_assert_eq!(p.refs.len(), names.len());
            for n in &names {
                proptest::prop_assert_eq!(p.value(n.as_bytes()), Some(oid('a')));
            }
            let (merged, conflicts) = p.merge(&[]);
            proptest::prop_assert!(conflicts.is_empty());
            proptest::prop_assert_eq!(String::from_utf8_lossy(&merged), text);
        }
    }
}
