//! Ref names of the checkpoint namespaces, in one place.
//!
//! Invariants:
//! - A checkpoint ref is exactly `refs/entire/checkpoints/<shard>/<id>`, where `<id>` is a valid
//!   [`CheckpointId`] and `<shard>` equals the ID's last two characters, compared case-insensitively
//!   (a case-folding filesystem may have stored the other spelling).
//! - [`parse`] rejects everything else, including the withdrawn v2 refs (`refs/entire/checkpoints/v2/...`),
//!   extra path segments and invalid IDs, so nothing outside the namespace is ever pushed or queued.
//! - [`spellings`] yields the canonical spelling first, then the single alternate-cased shard (if any).

use crate::model::id::{CheckpointId, IdError};

/// Prefix of the per-checkpoint namespace.
pub const CHECKPOINT_PREFIX: &str = "refs/entire/checkpoints/";
/// The legacy branch.
pub const LEGACY_BRANCH: &str = "refs/heads/entire/checkpoints/v1";
/// Remote-tracking prefix under which a legacy branch may exist (`refs/remotes/<remote>/entire/checkpoints/v1`).
pub const LEGACY_BRANCH_SHORT: &str = "entire/checkpoints/v1";
/// Local staging namespace for pushes: `refs/entire/push-queue/<run>/<shard>/<id>`.
pub const STAGING_PREFIX: &str = "refs/entire/push-queue/";
/// v2 refs.
pub const V2_MAIN: &str = "refs/entire/checkpoints/v2/main";
/// v2 raw-transcript generation.
pub const V2_FULL_CURRENT: &str = "refs/entire/checkpoints/v2/full/current";

/// Why a ref name is not a checkpoint ref.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefNameError {
    #[error("{name:?} is not under {CHECKPOINT_PREFIX}")]
    OutsideNamespace { name: String },
    #[error("{name:?} is not of the form {CHECKPOINT_PREFIX}<shard>/<id>")]
    Shape { name: String },
    #[error("{name:?}: shard {shard:?} does not match the ID's last two characters")]
    ShardMismatch { name: String, shard: String },
    #[error("{name:?}: {source}")]
    Id {
        name: String,
        #[source]
        source: IdError,
    },
}

/// The canonical ref name of a checkpoint.
pub fn ref_name(id: &CheckpointId) -> String {
    format!("{CHECKPOINT_PREFIX}{}/{}", id.shard(), id)
}

/// Parse a checkpoint ref name back into its ID.
pub fn parse(name: &str) -> Result<CheckpointId, RefNameError> {
    let rest =
        name.strip_prefix(CHECKPOINT_PREFIX)
            .ok_or_else(|| RefNameError::OutsideNamespace {
                name: name.to_string(),
            })?;
    let mut parts = rest.split('/');
    let (Some(shard), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RefNameError::Shape {
            name: name.to_string(),
        });
    };
    let id = CheckpointId::parse(id).map_err(|source| RefNameError::Id {
        name: name.to_string(),
        source,
    })?;
    if !shard.eq_ignore_ascii_case(id.shard()) {
        return Err(RefNameError::ShardMismatch {
            name: name.to_string(),
            shard: shard.to_string(),
        });
    }
    Ok(id)
}

/// True if `name` is a valid checkpoint ref.
pub fn is_checkpoint_ref(name: &str) -> bool {
    parse(name).is_ok()
}

/// True for v2-layout refs: `…/v2/main`, `…/v2/full/current`, `…/v2/full/<13 digits>`.
pub fn is_v2_ref(name: &str) -> bool {
    if name == V2_MAIN || name == V2_FULL_CURRENT {
        return true;
    }
    name.strip_prefix("refs/entire/checkpoints/v2/full/")
        .is_some_and(|n| n.len() == 13 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// True for refs the push queue accepts: per-checkpoint refs and v2-layout refs.
pub fn is_queueable(name: &str) -> bool {
    is_checkpoint_ref(name) || is_v2_ref(name)
}

/// Both spellings a checkpoint ref may have: canonical first, then the other-case shard if it differs.
pub fn spellings(id: &CheckpointId) -> Vec<String> {
    let canonical = ref_name(id);
    let shard = id.shard();
    let folded: String = shard
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let mut out = vec![canonical];
    if folded != shard {
        out.push(format!("{CHECKPOINT_PREFIX}{folded}/{id}"));
    }
    out
}

/// The staging ref of `ref_name` for push run `run`.
pub fn staging_ref(run: &str, ref_name: &str) -> Option<String> {
    ref_name
        .strip_prefix(CHECKPOINT_PREFIX)
        .map(|rest| format!("{STAGING_PREFIX}{run}/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("refs/entire/checkpoints/c4/a3b2c4d5e6c4", "a3b2c4d5e6c4"),
            (
                "refs/entire/checkpoints/JV/01M3WE2VX9HQC3NVY9BWYCW6JV",
                "01M3WE2VX9HQC3NVY9BWYCW6JV",
            ),
            (
                "refs/entire/checkpoints/jv/01M3WE2VX9HQC3NVY9BWYCW6JV",
                "01M3WE2VX9HQC3NVY9BWYCW6JV",
            ),
        ];
        for (name, id) in ok {
            assert_eq!(parse(name).expect(name).as_str(), id);
        }
        let bad = [
            "refs/heads/main",
            "refs/entire/checkpoints/v2/main",
            "refs/entire/checkpoints/v2/full/current",
            "refs/entire/checkpoints/v2/full/0000000000001",
            "refs/entire/checkpoints/v1.1",
            "refs/entire/checkpoints/a3/a3b2c4d5e6c4",
            "refs/entire/checkpoints/c4/a3b2c4d5e6c4/extra",
            "refs/entire/checkpoints/c4/A3B2C4D5E6C4",
            "refs/entire/checkpoints/c4/../a3b2c4d5e6c4",
            "refs/entire/checkpoints//a3b2c4d5e6c4",
            "refs/entire/checkpoints/c4/",
            "refs/entire/policies/checkpoint",
            "refs/entire/checkpointsX/c4/a3b2c4d5e6c4",
            "",
        ];
        for name in bad {
            assert!(parse(name).is_err(), "{name:?} must be rejected");
        }
    }

    #[test]
    fn spellings_table() {
        let cases = [
            (
                "01M3WE2VX9HQC3NVY9BWYCW6JV",
                vec![
                    "refs/entire/checkpoints/JV/01M3WE2VX9HQC3NVY9BWYCW6JV",
                    "refs/entire/checkpoints/jv/01M3WE2VX9HQC3NVY9BWYCW6JV",
                ],
            ),
            (
                "a3b2c4d5e6c4",
                vec![
                    "refs/entire/checkpoints/c4/a3b2c4d5e6c4",
                    "refs/entire/checkpoints/C4/a3b2c4d5e6c4",
                ],
            ),
            (
                "a3b2c4d5e612",
                vec!["refs/entire/checkpoints/12/a3b2c4d5e612"],
            ),
        ];
        for (id, want) in cases {
            let id = CheckpointId::parse(id).expect("valid");
            assert_eq!(spellings(&id), want);
        }
    }

    #[test]
    fn staging_names() {
        assert_eq!(
            staging_ref("R1", "refs/entire/checkpoints/c4/a3b2c4d5e6c4").as_deref(),
            Some("refs/entire/push-queue/R1/c4/a3b2c4d5e6c4")
        );
        assert_eq!(staging_ref("R1", "refs/heads/main"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_ref_names_never_panic(s in "(?s)(refs/entire/checkpoints/)?.{0,40}") {
            if let Ok(id) = parse(&s) {
                proptest::prop_assert!(spellings(&id).contains(&s));
            }
        }

        #[test]
        fn ref_names_round_trip(hex in "[0-9a-f]{12}") {
            let id = CheckpointId::parse(&hex).expect("valid");
            proptest::prop_assert_eq!(parse(&ref_name(&id)).expect("parses"), id);
        }
    }
}
