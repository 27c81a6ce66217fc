//! Pending publications of rotated generations (reference §2.9), shared with the upstream CLI:
//! `<git-common-dir>/entire-v2-rotations/pending.json` = `{"version": 1, "publications": [...]}`.
//!
//! A rotation archives `/full/current` and restarts it as an orphan locally. A push must publish the archive
//! before the reset `current`, or the remote's `current` would lose checkpoints; the record says which archive
//! and which reset belong together until a push has published both.
//!
//! Invariants:
//! - Every read-modify-write holds an exclusive lock on `pending.lock` (flock, released by the kernel when a
//!   process dies, so a killed writer never blocks the next one); the file is replaced atomically (temporary
//!   file, fsync, rename), so readers see the old or the new list, never a torn one.
//! - A record is appended before the rotation moves any ref, and removed again when the rotation fails.
//! - An unreadable or malformed file is an error naming it: records are never silently dropped.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::model::metadata;

use super::V2Error;

/// Directory under the git common dir.
pub const DIR: &str = "entire-v2-rotations";
/// The records.
pub const FILE: &str = "pending.json";
/// The lock guarding read-modify-write of [`FILE`].
pub const LOCK: &str = "pending.lock";

/// One pending publication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Publication {
    pub archive_ref_name: String,
    pub archive_commit_hash: String,
    /// `/full/current` when the rotation started (empty for archive-only records).
    pub previous_full_current_hash: String,
    /// The orphan that restarted `/full/current` (empty for archive-only records).
    pub reset_full_current_root_hash: String,
    /// RFC 3339 time the record was written.
    pub queued_at: String,
}

impl Publication {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "archive_ref_name".into(),
            self.archive_ref_name.clone().into(),
        );
        m.insert(
            "archive_commit_hash".into(),
            self.archive_commit_hash.clone().into(),
        );
        if !self.previous_full_current_hash.is_empty() {
            m.insert(
                "previous_full_current_hash".into(),
                self.previous_full_current_hash.clone().into(),
            );
        }
        if !self.reset_full_current_root_hash.is_empty() {
            m.insert(
                "reset_full_current_root_hash".into(),
                self.reset_full_current_root_hash.clone().into(),
            );
        }
        m.insert("queued_at".into(), self.queued_at.clone().into());
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let p = Publication {
            archive_ref_name: s("archive_ref_name"),
            archive_commit_hash: s("archive_commit_hash"),
            previous_full_current_hash: s("previous_full_current_hash"),
            reset_full_current_root_hash: s("reset_full_current_root_hash"),
            queued_at: s("queued_at"),
        };
        (!p.archive_ref_name.is_empty()).then_some(p)
    }
}

/// The pending-publication file of one repository.
pub struct Pending {
    dir: PathBuf,
}

struct Guard(#[allow(dead_code)] File);

impl Pending {
    pub fn new(common_dir: &Path) -> Self {
        Pending {
            dir: common_dir.join(DIR),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn err(&self, path: PathBuf, source: io::Error) -> V2Error {
        V2Error::Pending { path, source }
    }

    fn lock(&self) -> Result<Guard, V2Error> {
        let path = self.dir.join(LOCK);
        fs::create_dir_all(&self.dir).map_err(|e| self.err(self.dir.clone(), e))?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.err(path.clone(), e))?;
        f.lock().map_err(|e| self.err(path, e))?;
        Ok(Guard(f))
    }

    /// The records, oldest first (no lock: the file is only ever replaced atomically).
    pub fn list(&self) -> Result<Vec<Publication>, V2Error> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(path, e)),
        };
        let bad = |problem: String| V2Error::PendingFormat {
            path: path.clone(),
            problem,
        };
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let items = match v.get("publications") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(bad("\"publications\" must be an array".into())),
        };
        items
            .iter()
            .map(|i| Publication::from_json(i).ok_or_else(|| bad(format!("bad record {i}"))))
            .collect()
    }

    fn rewrite(&self, records: &[Publication]) -> Result<(), V2Error> {
        let path = self.path();
        let doc = json!({
            "version": 1,
            "publications": records.iter().map(Publication::to_json).collect::<Vec<_>>(),
        });
        let tmp = self.dir.join(format!("{FILE}.tmp{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&metadata::to_go_json(&doc))?;
            f.sync_data()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| self.err(path.clone(), e))
    }

    /// Append `record` (under the lock).
    pub fn append(&self, record: &Publication) -> Result<(), V2Error> {
        let _g = self.lock()?;
        let mut records = self.list()?;
        records.push(record.clone());
        self.rewrite(&records)
    }

    /// Append those of `records` not listed yet, all in ONE rewrite (under the lock), so a batch of archives
    /// costs one read and one write of the file, not one each; returns the records appended.
    pub fn append_new(&self, records: &[Publication]) -> Result<Vec<Publication>, V2Error> {
        let _g = self.lock()?;
        let mut all = self.list()?;
        let mut known: HashSet<Publication> = all.iter().cloned().collect();
        let new: Vec<Publication> = records
            .iter()
            .filter(|r| known.insert((*r).clone()))
            .cloned()
            .collect();
        if !new.is_empty() {
            all.extend(new.iter().cloned());
            self.rewrite(&all)?;
        }
        Ok(new)
    }

    /// Remove records equal to `record` (under the lock); a missing file is fine.
    pub fn remove(&self, record: &Publication) -> Result<(), V2Error> {
        self.remove_all(std::slice::from_ref(record))
    }

    /// Remove the records equal to any of `records` (same archive ref and commit), in ONE rewrite (under the
    /// lock); a missing file is fine.
    pub fn remove_all(&self, records: &[Publication]) -> Result<(), V2Error> {
        let _g = self.lock()?;
        let mut all = self.list()?;
        let before = all.len();
        let gone: HashSet<(&str, &str)> = records
            .iter()
            .map(|r| (r.archive_ref_name.as_str(), r.archive_commit_hash.as_str()))
            .collect();
        all.retain(|r| {
            !gone.contains(&(r.archive_ref_name.as_str(), r.archive_commit_hash.as_str()))
        });
        if all.len() == before {
            return Ok(());
        }
        self.rewrite(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8) -> Publication {
        Publication {
            archive_ref_name: format!("refs/entire/checkpoints/v2/full/000000000000{n}"),
            archive_commit_hash: format!("{n:040}"),
            previous_full_current_hash: if n == 1 {
                String::new()
            } else {
                "a".repeat(40)
            },
            reset_full_current_root_hash: "b".repeat(40),
            queued_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn append_list_remove_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = Pending::new(dir.path());
        assert_eq!(p.list().expect("empty"), vec![]);
        p.append(&rec(1)).expect("append");
        p.append(&rec(2)).expect("append");
        assert_eq!(p.list().expect("list"), vec![rec(1), rec(2)]);
        let text = fs::read_to_string(p.path()).expect("file");
        assert!(
            text.starts_with("{\n  \"version\": 1,\n  \"publications\": ["),
            "{text}"
        );
        assert!(
            !text.contains("\"previous_full_current_hash\": \"\""),
            "omitempty: {text}"
        );
        p.remove(&rec(1)).expect("remove");
        assert_eq!(p.list().expect("list"), vec![rec(2)]);
        fs::write(p.path(), "{\"publications\": 3}").expect("corrupt");
        let err = p.list().expect_err("malformed");
        assert!(err.to_string().contains("pending.json"), "{err}");
    }

    #[test]
    fn append_new_and_remove_all_rewrite_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = Pending::new(dir.path());
        p.append(&rec(1)).expect("append");
        let added = p
            .append_new(&[rec(1), rec(2), rec(3), rec(2)])
            .expect("append_new");
        assert_eq!(
            added,
            vec![rec(2), rec(3)],
            "listed and repeated records are not appended"
        );
        assert_eq!(p.list().expect("list"), vec![rec(1), rec(2), rec(3)]);
        assert_eq!(p.append_new(&[rec(3)]).expect("again"), vec![]);
        p.remove_all(&[rec(1), rec(3), rec(4)]).expect("remove_all");
        assert_eq!(p.list().expect("list"), vec![rec(2)]);
    }
}
