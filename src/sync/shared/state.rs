//! Last-known remote values of the shared refs: `<git-common-dir>/entire-shared-refs/<remote>.json`,
//! `{"refs": {"<ref>": "<oid>"}}`, written after a push confirmed a value.
//!
//! Invariants: each update is a read-modify-write under an exclusive lock on `<remote>.lock` (flock: released
//! by the kernel when a process dies) and replaces the file atomically (temporary file + rename), so readers see
//! the old or the new map. Only advisory: nothing decides a push from it except the empty-remote guard, which
//! only learns from it that the remote already holds the legacy branch.
//!
//! Failure modes: an unreadable or malformed file reads as empty (logged); a failed write is returned to the
//! caller, which logs it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use crate::git::repo::Repo;

/// Directory under the git common dir.
pub const DIR: &str = "entire-shared-refs";

fn safe(remote: &str) -> String {
    remote
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn path(repo: &Repo, remote: &str, ext: &str) -> PathBuf {
    repo.common_dir()
        .join(DIR)
        .join(format!("{}.{ext}", safe(remote)))
}

/// The last-known remote value of each shared ref on `remote` (empty when unknown).
pub fn load(repo: &Repo, remote: &str) -> BTreeMap<String, String> {
    let p = path(repo, remote, "json");
    let Ok(text) = fs::read_to_string(&p) else {
        return BTreeMap::new();
    };
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
    match parsed {
        Ok(v) => v
            .get("refs")
            .and_then(|r| r.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!(target: "entire::push", "{}: {e}", p.display());
            BTreeMap::new()
        }
    }
}

/// Record that `remote` holds each `(ref, oid)` of `seen`.
pub fn record(repo: &Repo, remote: &str, seen: &[(String, String)]) -> io::Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(repo.common_dir().join(DIR))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path(repo, remote, "lock"))?;
    lock.lock()?;
    let mut map = load(repo, remote);
    for (name, oid) in seen {
        map.insert(name.clone(), oid.clone());
    }
    let body = serde_json::json!({ "refs": map });
    let target = path(repo, remote, "json");
    let tmp = path(repo, remote, &format!("json.tmp{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(body.to_string().as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &target)
}
