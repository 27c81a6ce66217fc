//! Local tombstones: `<common-dir>/entire-deleted-checkpoints.json`, `{"checkpoint_ids":[…]}` (upstream §4.10).
//!
//! The migration must not resurrect a checkpoint the user deleted locally, so listed IDs are skipped.
//!
//! Invariants: a missing file means "nothing deleted"; a file that exists but cannot be read or parsed is an
//! error, never an empty list (an empty list would resurrect everything it should hide).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// File name in the git common dir (shared with the upstream CLI).
pub const DELETED_FILE: &str = "entire-deleted-checkpoints.json";

/// The tombstone file is unusable.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the deleted-checkpoints list {path}: {reason}")]
pub struct DeletedError {
    path: PathBuf,
    reason: String,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    checkpoint_ids: Vec<String>,
}

/// IDs deleted locally.
pub fn load(common_dir: &Path) -> Result<HashSet<String>, DeletedError> {
    let path = common_dir.join(DELETED_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => {
            return Err(DeletedError {
                path,
                reason: e.to_string(),
            })
        }
    };
    parse(&bytes).map_err(|reason| DeletedError { path, reason })
}

fn parse(bytes: &[u8]) -> Result<HashSet<String>, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(file.checkpoint_ids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&[&str], ()>)] = &[
            (
                r#"{"checkpoint_ids":["92a0e41fd911"]}"#,
                Ok(&["92a0e41fd911"]),
            ),
            (r#"{"checkpoint_ids":[]}"#, Ok(&[])),
            (r#"{}"#, Ok(&[])),
            (r#"{"checkpoint_ids":"x"}"#, Err(())),
            ("", Err(())),
        ];
        for (input, want) in cases {
            let got = parse(input.as_bytes());
            match want {
                Ok(ids) => {
                    let want: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
                    assert_eq!(got.expect(input), want);
                }
                Err(()) => assert!(got.is_err(), "{input}"),
            }
        }
    }
}
