//! Normalisation of a legacy checkpoint's root `metadata.json` for the per-checkpoint ref layout.
//!
//! The rules (upstream `MigrateBranchToRefs`, plus the version stamps of SPEC §3.2):
//! - `sessions[*]` string values that start with `/<id[:2]>/<id[2:]>/` lose that prefix, so
//!   `/92/a0e41fd911/0/full.jsonl` becomes `/0/full.jsonl` (paths relative to the checkpoint root); a doubled
//!   prefix (real legacy data: `/92/a0e41fd911/92/a0e41fd911/0/…`) loses every repetition. Other values
//!   (empty strings, already relative paths, paths of other checkpoints) are left alone.
//! - `checkpoint_version` (the short-lived 06-22..07-03 stamp) is deleted; `checkpoints_version` is set to
//!   [`CHECKPOINTS_VERSION`].
//! - `cli_version` is kept when present: it names the CLI that produced the checkpoint's content. When absent it
//!   is set to [`MIGRATED_CLI_VERSION`], a constant that deliberately carries no build version: a version
//!   number here would make the normalised tree, and so every commit ID, depend on which build ran, and a rerun
//!   after an upgrade would stack a new commit on every such checkpoint.
//! - Every other field survives. Output is what upstream's generic-map rewrite produces: keys sorted
//!   alphabetically at every level, Go `MarshalIndent` formatting with a trailing newline.
//!
//! Invariants: [`normalize_root`] is a pure function of the input bytes and the ID, and idempotent
//! (normalising its own output returns the same bytes). A root that is not a JSON object, or whose
//! `checkpoint_id` does not equal the ID its path spells, is refused with a [`NormalizeError`].

use serde_json::Value;

use crate::model::checkpoint::CHECKPOINTS_VERSION;
use crate::model::id::CheckpointId;
use crate::model::metadata::{self, MetadataError};

/// `cli_version` given to migrated checkpoints whose legacy metadata had none.
pub const MIGRATED_CLI_VERSION: &str = "entire-rs-migrate";

/// Why a root `metadata.json` cannot be migrated.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("metadata.json has no checkpoint_id")]
    MissingId,
    #[error(
        "metadata.json says checkpoint_id {found:?} but it is stored at the path of {expected}"
    )]
    IdMismatch { found: String, expected: String },
}

/// The normalised bytes of a root `metadata.json` (equal to `bytes` when nothing needed to change).
pub fn normalize_root(bytes: &[u8], id: &CheckpointId) -> Result<Vec<u8>, NormalizeError> {
    let mut root = metadata::parse_object(bytes, "metadata.json")?;
    match root.get("checkpoint_id") {
        Some(Value::String(found)) if found == id.as_str() => {}
        Some(Value::String(found)) => {
            return Err(NormalizeError::IdMismatch {
                found: found.clone(),
                expected: id.to_string(),
            })
        }
        Some(other) => {
            return Err(NormalizeError::IdMismatch {
                found: other.to_string(),
                expected: id.to_string(),
            })
        }
        None => return Err(NormalizeError::MissingId),
    }
    let prefix = format!("/{}/", id.v1_path());
    if let Some(Value::Array(sessions)) = root.get_mut("sessions") {
        for session in sessions.iter_mut().filter_map(Value::as_object_mut) {
            for value in session.values_mut() {
                if let Value::String(s) = value {
                    // Repeated: real legacy data has doubled prefixes (`/93/416fad752b/93/416fad752b/0/…`).
                    while let Some(rest) = s.strip_prefix(&prefix[..prefix.len() - 1]) {
                        if !rest.starts_with('/') {
                            break;
                        }
                        *s = rest.to_string();
                    }
                }
            }
        }
    }
    root.remove("checkpoint_version");
    root.insert("checkpoints_version".into(), CHECKPOINTS_VERSION.into());
    if !root.contains_key("cli_version") {
        root.insert("cli_version".into(), MIGRATED_CLI_VERSION.into());
    }
    let mut root = Value::Object(root);
    sort_keys(&mut root);
    Ok(metadata::to_go_json(&root))
}

/// Sort object keys at every level, in place (Go's order for generic maps).
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CheckpointId {
        CheckpointId::parse("92a0e41fd911").expect("valid id")
    }

    fn norm(input: &str) -> String {
        String::from_utf8(normalize_root(input.as_bytes(), &id()).expect("normalizes"))
            .expect("utf-8")
    }

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str)] = &[
            // Absolute session paths become relative; keys sorted; versions stamped; empty values kept.
            (
                r#"{"checkpoint_id":"92a0e41fd911","sessions":[{"metadata":"/92/a0e41fd911/0/metadata.json","context":""}]}"#,
                "{\n  \"checkpoint_id\": \"92a0e41fd911\",\n  \"checkpoints_version\": \"refs-1\",\n  \"cli_version\": \"entire-rs-migrate\",\n  \"sessions\": [\n    {\n      \"context\": \"\",\n      \"metadata\": \"/0/metadata.json\"\n    }\n  ]\n}\n",
            ),
            // Real legacy data has doubled prefixes (5 of 590 checkpoints in one public repository): every
            // leading repetition goes, so the path resolves to the slot's real file.
            (
                r#"{"checkpoint_id":"92a0e41fd911","sessions":[{"transcript":"/92/a0e41fd911/92/a0e41fd911/0/full.jsonl"}]}"#,
                "{\n  \"checkpoint_id\": \"92a0e41fd911\",\n  \"checkpoints_version\": \"refs-1\",\n  \"cli_version\": \"entire-rs-migrate\",\n  \"sessions\": [\n    {\n      \"transcript\": \"/0/full.jsonl\"\n    }\n  ]\n}\n",
            ),
            // An existing cli_version is kept; checkpoint_version is dropped; unknown nested fields survive sorted.
            (
                r#"{"cli_version":"dev","checkpoint_version":"branch-v1","checkpoint_id":"92a0e41fd911","x":{"b":1,"a":[true,null,2.5]}}"#,
                "{\n  \"checkpoint_id\": \"92a0e41fd911\",\n  \"checkpoints_version\": \"refs-1\",\n  \"cli_version\": \"dev\",\n  \"x\": {\n    \"a\": [\n      true,\n      null,\n      2.5\n    ],\n    \"b\": 1\n  }\n}\n",
            ),
            // Paths of another checkpoint, relative paths and a bare prefix without a slash are untouched.
            (
                r#"{"checkpoint_id":"92a0e41fd911","checkpoints_version":"refs-1","cli_version":"v1","sessions":[{"a":"/11/2233445566/0/x","b":"/0/y","c":"/92/a0e41fd911","d":"/92/a0e41fd911x/0"}]}"#,
                "{\n  \"checkpoint_id\": \"92a0e41fd911\",\n  \"checkpoints_version\": \"refs-1\",\n  \"cli_version\": \"v1\",\n  \"sessions\": [\n    {\n      \"a\": \"/11/2233445566/0/x\",\n      \"b\": \"/0/y\",\n      \"c\": \"/92/a0e41fd911\",\n      \"d\": \"/92/a0e41fd911x/0\"\n    }\n  ]\n}\n",
            ),
            // Go's HTML-safe escaping is reproduced for strings that carried it.
            (
                r#"{"checkpoint_id":"92a0e41fd911","branch":"a\u0026b \u003cc\u003e"}"#,
                "{\n  \"branch\": \"a\\u0026b \\u003cc\\u003e\",\n  \"checkpoint_id\": \"92a0e41fd911\",\n  \"checkpoints_version\": \"refs-1\",\n  \"cli_version\": \"entire-rs-migrate\"\n}\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), *want, "input: {input}");
        }
    }

    #[test]
    fn idempotent() {
        let once = norm(
            r#"{"checkpoint_id":"92a0e41fd911","sessions":[{"metadata":"/92/a0e41fd911/0/metadata.json"}],"z":[]}"#,
        );
        assert_eq!(norm(&once), once);
    }

    #[test]
    fn refusals_table() {
        let cases: &[(&str, &str)] = &[
            ("not json", "invalid JSON"),
            ("[1,2]", "expected a JSON object"),
            (r#"{"strategy":"manual-commit"}"#, "no checkpoint_id"),
            (r#"{"checkpoint_id":"aaaaaaaaaaaa"}"#, "\"aaaaaaaaaaaa\""),
            (r#"{"checkpoint_id":12}"#, "\"12\""),
        ];
        for (input, want) in cases {
            let err = normalize_root(input.as_bytes(), &id())
                .expect_err(input)
                .to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
