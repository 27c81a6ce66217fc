//! The push queue shared with the upstream Go CLI.
//!
//! Files (in the git **common** dir, so every worktree shares them):
//! - `entire-checkpoint-push-queue.jsonl`: one `{"ref":"refs/entire/checkpoints/<shard>/<id>"}` per line, mode 0600;
//! - `entire-checkpoint-push-queue.lock`: an exclusive `flock` (std `File::lock`) held for every read and write.
//!
//! Invariants:
//! - Only checkpoint-namespace refs ([`refname::is_queueable`]) are ever accepted; foreign, malformed or blank
//!   lines found in the file are skipped (never fatal) and dropped at the next compaction.
//! - [`Queue::drain`] does not remove anything: an entry leaves only through [`Queue::remove`] or
//!   [`Queue::remove_if_unchanged`], the latter comparing the ref's current value with the value that was
//!   pushed *inside* the lock, so a newer local update made during a push stays queued (upstream #2008).
//! - Appends are fsynced before [`Queue::enqueue`] returns; rewrites go through a temp file + rename, so a crash
//!   leaves either the old or the new file. An empty queue deletes the file.
//!
//! Failure modes: every error is a [`QueueError`] naming the file it was about.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::model::refname;

/// Queue file name inside the git common dir.
pub const QUEUE_FILE: &str = "entire-checkpoint-push-queue.jsonl";
/// Lock file name inside the git common dir.
pub const LOCK_FILE: &str = "entire-checkpoint-push-queue.lock";
const MAX_LINE: usize = 1024 * 1024;

/// Errors of the push queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("refusing to queue {name:?}: only refs under refs/entire/checkpoints/ can be queued")]
    NotCheckpointRef { name: String },
    #[error("push queue {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    #[serde(rename = "ref")]
    name: String,
}

/// Handle on the queue of one repository.
#[derive(Debug, Clone)]
pub struct Queue {
    file: PathBuf,
    lock: PathBuf,
}

/// A held queue lock; released on drop.
struct Guard(#[allow(dead_code)] File);

/// What a read of the file found.
struct Contents {
    refs: Vec<String>,
    raw_lines: usize,
}

impl Queue {
    /// The queue living in `common_dir`.
    pub fn new(common_dir: &Path) -> Self {
        Queue {
            file: common_dir.join(QUEUE_FILE),
            lock: common_dir.join(LOCK_FILE),
        }
    }

    /// Path of the queue file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    fn io(&self, source: io::Error) -> QueueError {
        QueueError::Io {
            path: self.file.clone(),
            source,
        }
    }

    fn lock(&self) -> Result<Guard, QueueError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|source| QueueError::Io {
                path: self.lock.clone(),
                source,
            })?;
        f.lock().map_err(|source| QueueError::Io {
            path: self.lock.clone(),
            source,
        })?;
        Ok(Guard(f))
    }

    /// Append `refs` (validated first: one bad name rejects the whole call, nothing is written).
    pub fn enqueue<S: AsRef<str>>(&self, refs: &[S]) -> Result<(), QueueError> {
        self.append(refs, false)
    }

    /// Like [`Queue::enqueue`], but appends only the refs the queue does not hold yet (checked under the lock):
    /// a checkpoint write queues its ref before and after moving it without growing the file twice.
    pub fn ensure<S: AsRef<str>>(&self, refs: &[S]) -> Result<(), QueueError> {
        self.append(refs, true)
    }

    fn append<S: AsRef<str>>(&self, refs: &[S], only_missing: bool) -> Result<(), QueueError> {
        for r in refs {
            if !refname::is_queueable(r.as_ref()) {
                return Err(QueueError::NotCheckpointRef {
                    name: r.as_ref().to_string(),
                });
            }
        }
        let _guard = self.lock()?;
        let present: HashSet<String> = if only_missing {
            self.read()?.refs.into_iter().collect()
        } else {
            HashSet::new()
        };
        let mut buf = Vec::new();
        for r in refs {
            let r = r.as_ref();
            if present.contains(r) {
                continue;
            }
            serde_json::to_writer(
                &mut buf,
                &Line {
                    name: r.to_string(),
                },
            )
            .expect("serializing a string cannot fail");
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut opts = OpenOptions::new();
        opts.create(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&self.file).map_err(|e| self.io(e))?;
        if ends_mid_line(&f).map_err(|e| self.io(e))? {
            // A writer was killed mid-append: start on a fresh line so our entries stay parseable.
            buf.insert(0, b'\n');
        }
        f.write_all(&buf).map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))?;
        Ok(())
    }

    fn read(&self) -> Result<Contents, QueueError> {
        let f = match File::open(&self.file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Contents {
                    refs: Vec::new(),
                    raw_lines: 0,
                })
            }
            Err(e) => return Err(self.io(e)),
        };
        let mut seen = HashSet::new();
        let mut refs = Vec::new();
        let mut raw_lines = 0;
        let mut reader = BufReader::new(f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            raw_lines += 1;
            if let Some(name) = parse_line(&line) {
                if seen.insert(name.clone()) {
                    refs.push(name);
                }
            }
        }
        Ok(Contents { refs, raw_lines })
    }

    fn rewrite(&self, refs: &[String]) -> Result<(), QueueError> {
        if refs.is_empty() {
            return match fs::remove_file(&self.file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io(e)),
                _ => Ok(()),
            };
        }
        let tmp = self
            .file
            .with_extension(format!("jsonl.tmp{}", std::process::id()));
        let mut opts = OpenOptions::new();
        opts.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(|e| self.io(e))?;
        let mut buf = Vec::new();
        for r in refs {
            serde_json::to_writer(&mut buf, &Line { name: r.clone() })
                .expect("serializing a string cannot fail");
            buf.push(b'\n');
        }
        f.write_all(&buf).map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.file).map_err(|e| self.io(e))
    }

    /// De-duplicated queued refs in first-seen order, without removing them. Compacts the file when it held
    /// duplicates or unusable lines.
    pub fn drain(&self) -> Result<Vec<String>, QueueError> {
        let _guard = self.lock()?;
        let contents = self.read()?;
        if contents.raw_lines > contents.refs.len() {
            self.rewrite(&contents.refs)?;
        }
        Ok(contents.refs)
    }

    /// Like [`Queue::drain`] but never writes. In a read-only repository (the lock file cannot be created) the
    /// file is read without the lock: appends are whole lines and rewrites are renames, so an unlocked read sees
    /// a consistent file, at worst without an entry being appended right now.
    pub fn peek(&self) -> Result<Vec<String>, QueueError> {
        let _guard = match self.lock() {
            Ok(g) => Some(g),
            Err(QueueError::Io { source, .. }) if is_read_only(&source) => None,
            Err(e) => return Err(e),
        };
        Ok(self.read()?.refs)
    }

    /// Remove every entry naming one of `refs`.
    pub fn remove<S: AsRef<str>>(&self, refs: &[S]) -> Result<(), QueueError> {
        let drop: HashSet<&str> = refs.iter().map(|r| r.as_ref()).collect();
        let _guard = self.lock()?;
        let contents = self.read()?;
        let keep: Vec<String> = contents
            .refs
            .into_iter()
            .filter(|r| !drop.contains(r.as_str()))
            .collect();
        self.rewrite(&keep)
    }

    /// Remove each `(ref, pushed_value)` only if `current(ref)` still equals the pushed value, checked under
    /// the lock. Returns the refs that stay queued because they moved or vanished; a pushed ref that is not in
    /// the queue any more (dequeued meanwhile, e.g. by a shared-ref recovery in the same run) is not reported.
    pub fn remove_if_unchanged<V: PartialEq>(
        &self,
        pushed: &[(String, V)],
        current: impl Fn(&str) -> Option<V>,
    ) -> Result<Vec<String>, QueueError> {
        let _guard = self.lock()?;
        let contents = self.read()?;
        let queued: HashSet<&str> = contents.refs.iter().map(String::as_str).collect();
        let mut drop = HashSet::new();
        let mut kept = Vec::new();
        for (name, value) in pushed {
            if current(name).as_ref() == Some(value) {
                drop.insert(name.as_str());
            } else if queued.contains(name.as_str()) {
                kept.push(name.clone());
            }
        }
        let keep: Vec<String> = contents
            .refs
            .into_iter()
            .filter(|r| !drop.contains(r.as_str()))
            .collect();
        self.rewrite(&keep)?;
        Ok(kept)
    }
}

fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// True if the file is non-empty and does not end with a newline.
fn ends_mid_line(f: &File) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut reader = f;
    reader.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    reader.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Parse one queue line; `None` for anything that is not a valid checkpoint-namespace entry.
fn parse_line(line: &[u8]) -> Option<String> {
    if line.len() > MAX_LINE {
        return None;
    }
    let parsed: Line = serde_json::from_slice(line).ok()?;
    refname::is_queueable(&parsed.name).then_some(parsed.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_table() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"ref":"refs/entire/checkpoints/c4/a3b2c4d5e6c4"}"#,
                Some("refs/entire/checkpoints/c4/a3b2c4d5e6c4"),
            ),
            (
                r#"{"ref":"refs/entire/checkpoints/c4/a3b2c4d5e6c4","extra":1}"#,
                Some("refs/entire/checkpoints/c4/a3b2c4d5e6c4"),
            ),
            (r#"{"ref":"refs/heads/main"}"#, None),
            (r#"{"ref":"refs/entire/checkpoints/zz/a3b2c4d5e6c4"}"#, None),
            (r#"{"ref":5}"#, None),
            ("not json", None),
            ("{}", None),
            (r#"{"ref":"refs/entire/checkpoints/c4/a3b2c4d5e6c4""#, None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line.as_bytes()).as_deref(), *want, "{line}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_queue_lines_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Some(name) = parse_line(&bytes) {
                proptest::prop_assert!(refname::is_queueable(&name));
            }
        }

        #[test]
        fn valid_queue_lines_round_trip(id in "[0-9a-f]{12}") {
            let name = format!("refs/entire/checkpoints/{}/{id}", &id[10..]);
            let line = serde_json::json!({"ref": name}).to_string();
            proptest::prop_assert_eq!(parse_line(line.as_bytes()), Some(name));
        }
    }
}
