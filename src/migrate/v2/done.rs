//! The "nothing left to do" stamp of the v2 migration: `<git-common-dir>/entire-migrate-v2.done`.
//!
//! After a run in which every listed checkpoint ended migrated or skipped (no failure), the stamp records the
//! inputs the decisions depended on: the legacy root tree, the deleted-checkpoints file and every v2 ref's
//! value, plus the format and program version. A rerun whose inputs are byte-identical would decide "skip" for
//! every checkpoint again, so it reports that without building the presence index (the cost of a no-op rerun
//! becomes one listing of the legacy branch).
//!
//! Invariants: the stamp holds only facts about immutable objects and exact ref values; any difference
//! (a moved v2 ref, a new legacy tip, an edited tombstone list, another version) makes it not match and the
//! run does the full work. It is written atomically (temporary file, rename) and removed before a run writes
//! anything, so a kill never leaves a stamp describing refs that a later write changed. Losing it costs speed
//! only; an unreadable stamp is ignored.

use std::fs;
use std::path::PathBuf;

use crate::git::repo::{ObjectId, Repo, RepoError};

/// File name in the git common dir.
pub const FILE: &str = "entire-migrate-v2.done";

const V2_PREFIX: &str = "refs/entire/checkpoints/v2/";
const FORMAT: &str = concat!("entire-migrate-v2-done 1 ", env!("CARGO_PKG_VERSION"));

fn path(repo: &Repo) -> PathBuf {
    repo.common_dir().join(FILE)
}

/// The stamp for the current inputs.
pub fn current(repo: &Repo, legacy_root: ObjectId) -> Result<String, RepoError> {
    let mut s = format!("{FORMAT}\nlegacy {legacy_root}\n");
    let deleted = fs::read(repo.common_dir().join(super::super::deleted::DELETED_FILE));
    let fingerprint = match deleted {
        Ok(bytes) => crate::model::transcript::content_hash(&bytes),
        Err(_) => "none".to_string(),
    };
    s.push_str(&format!("deleted {fingerprint}\n"));
    let mut refs = repo.refs_with_prefix(V2_PREFIX)?;
    refs.sort();
    for (name, id) in refs {
        s.push_str(&format!("{id} {name}\n"));
    }
    Ok(s)
}

/// True when the stored stamp equals `stamp`.
pub fn matches(repo: &Repo, stamp: &str) -> bool {
    fs::read_to_string(path(repo)).is_ok_and(|s| s == stamp)
}

/// Forget the stamp (before writing anything).
pub fn clear(repo: &Repo) {
    let _ = fs::remove_file(path(repo));
}

/// Store `stamp`; failures only cost the next run speed.
pub fn save(repo: &Repo, stamp: &str) {
    let target = path(repo);
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let ok = fs::write(&tmp, stamp).and_then(|_| fs::rename(&tmp, &target));
    if let Err(e) = ok {
        let _ = fs::remove_file(&tmp);
        tracing::debug!("cannot save {}: {e}", target.display());
    }
}
