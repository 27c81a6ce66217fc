//! Checkpoint IDs: the two formats, their validation and both sharding rules.
//!
//! Invariants:
//! - A [`CheckpointId`] can only be built through [`CheckpointId::parse`] (or the generators), so every
//!   value is either exactly 12 lowercase hex characters (legacy) or a canonical 26-character ULID
//!   (Crockford base32, upper case, first character `0`–`7`). Nothing else ever reaches a path or ref name:
//!   no `/`, no `..`, no control characters, no alternate spellings.
//! - Two sharding rules exist and must not be confused: the legacy branch stores a checkpoint at
//!   `<id[0:2]>/<id[2:]>` ([`CheckpointId::v1_path`]), the ref store shards by the **last** two characters,
//!   case preserved ([`CheckpointId::shard`]).
//!
//! Failure modes: [`IdError`] names the rejected input and the rule it broke.

use std::fmt;

/// The two ID formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// 12 lowercase hex characters.
    Legacy,
    /// 26-character canonical ULID.
    Ulid,
}

/// A validated checkpoint ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointId(String);

/// Why a string is not a checkpoint ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid checkpoint ID \"\": empty")]
    Empty,
    #[error("invalid checkpoint ID {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

impl CheckpointId {
    /// Validate `input` exactly; no trimming, no case folding.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let invalid = |reason| IdError::Invalid {
            input: input.to_string(),
            reason,
        };
        let bytes = input.as_bytes();
        if bytes.is_empty() {
            return Err(IdError::Empty);
        }
        if bytes.iter().any(|b| b.is_ascii_control() || !b.is_ascii()) {
            return Err(invalid("contains control or non-ASCII characters"));
        }
        if bytes.contains(&b'/') || bytes.contains(&b'\\') || input.contains("..") {
            return Err(invalid("contains a path separator or '..'"));
        }
        match bytes.len() {
            12 if bytes.iter().all(|&b| is_lower_hex(b)) => Ok(Self(input.to_string())),
            12 => Err(invalid("a 12-character ID must be lowercase hex")),
            26 => {
                if !bytes.iter().all(|b| CROCKFORD.contains(b)) {
                    return Err(invalid(
                        "a ULID must use upper-case Crockford base32 (no I, L, O, U, no lower case)",
                    ));
                }
                if bytes[0] > b'7' {
                    return Err(invalid("a ULID must start with 0-7"));
                }
                Ok(Self(input.to_string()))
            }
            _ => Err(invalid(
                "expected 12 lowercase hex characters or a 26-character ULID",
            )),
        }
    }

    /// Mint a new ID: a ULID when refs are the primary store, 12-hex otherwise.
    pub fn generate(kind: IdKind) -> Self {
        let ulid = ulid::Ulid::new();
        match kind {
            IdKind::Ulid => Self(ulid.to_string()),
            IdKind::Legacy => {
                // 48 bits of the ULID's 80 random bits.
                let random = ulid.random() as u64 & 0xffff_ffff_ffff;
                Self(format!("{random:012x}"))
            }
        }
    }

    /// The ID's format.
    pub fn kind(&self) -> IdKind {
        if self.0.len() == 12 {
            IdKind::Legacy
        } else {
            IdKind::Ulid
        }
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Ref-store shard: the last two characters, case preserved.
    pub fn shard(&self) -> &str {
        &self.0[self.0.len() - 2..]
    }

    /// Legacy-branch directory of this checkpoint: `<id[0:2]>/<id[2:]>`.
    pub fn v1_path(&self) -> String {
        format!("{}/{}", &self.0[..2], &self.0[2..])
    }

    /// Milliseconds since the epoch encoded in a ULID; `None` for legacy IDs.
    pub fn ulid_millis(&self) -> Option<u64> {
        match self.kind() {
            IdKind::Legacy => None,
            IdKind::Ulid => ulid::Ulid::from_string(&self.0)
                .ok()
                .map(|u| u.timestamp_ms()),
        }
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for CheckpointId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let cases: &[(&str, Option<IdKind>)] = &[
            ("a3b2c4d5e6f7", Some(IdKind::Legacy)),
            ("000000000000", Some(IdKind::Legacy)),
            ("01M3WE2VX9HQC3NVY9BWYCW6JV", Some(IdKind::Ulid)),
            ("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", Some(IdKind::Ulid)),
            ("", None),
            ("A3B2C4D5E6F7", None),                // upper-case hex
            ("a3b2c4d5e6f", None),                 // 11 chars
            ("a3b2c4d5e6f70", None),               // 13 chars
            ("g3b2c4d5e6f7", None),                // not hex
            ("../x", None),                        // traversal
            ("a/b", None),                         // separator
            ("a3b2c4d5e6\nf", None),               // control char
            ("a3b2c4d5e6f\0", None),               // NUL
            ("01m3we2vx9hqc3nvy9bwycw6jv", None),  // lower-case ULID
            ("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", None),  // overflow first char
            ("01M3WE2VX9HQC3NVY9BWYCW6JI", None),  // I is not Crockford
            ("01M3WE2VX9HQC3NVY9BWYCW6JL", None),  // L
            ("01M3WE2VX9HQC3NVY9BWYCW6JO", None),  // O
            ("01M3WE2VX9HQC3NVY9BWYCW6JU", None),  // U
            ("01M3WE2VX9HQC3NVY9BWYCW6J", None),   // 25 chars
            (" a3b2c4d5e6f7", None),               // whitespace
            ("a3b2c4..e6f7", None),                // dots
            ("01M3WE2VX9HQC3NVY9BWYCW6JVé", None), // non-ascii
        ];
        for (input, want) in cases {
            let got = CheckpointId::parse(input).ok().map(|id| id.kind());
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn shards_and_paths() {
        let hex = CheckpointId::parse("a3b2c4d5e6c4").expect("valid hex");
        assert_eq!(hex.shard(), "c4");
        assert_eq!(hex.v1_path(), "a3/b2c4d5e6c4");
        let ulid = CheckpointId::parse("01M3WE2VX9HQC3NVY9BWYCW6JV").expect("valid ulid");
        assert_eq!(ulid.shard(), "JV");
        assert_eq!(ulid.v1_path(), "01/M3WE2VX9HQC3NVY9BWYCW6JV");
    }

    #[test]
    fn generated_ids_validate() {
        for _ in 0..200 {
            for kind in [IdKind::Legacy, IdKind::Ulid] {
                let id = CheckpointId::generate(kind);
                let back = CheckpointId::parse(id.as_str()).expect("generated IDs are valid");
                assert_eq!(back.kind(), kind);
            }
        }
    }

    #[test]
    fn error_names_the_input() {
        let err = CheckpointId::parse("../x").expect_err("traversal rejected");
        assert!(err.to_string().contains("\"../x\""), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_ids_never_panic(s in "(?s).{0,40}") {
            if let Ok(id) = CheckpointId::parse(&s) {
                proptest::prop_assert_eq!(id.as_str(), s.as_str());
                proptest::prop_assert!(!id.as_str().contains(['/', '.', '\\']));
            }
        }

        #[test]
        fn valid_ids_round_trip(hex in "[0-9a-f]{12}", millis in 0u64..(1u64 << 47)) {
            let id = CheckpointId::parse(&hex).expect("12 hex");
            proptest::prop_assert_eq!(id.to_string(), hex);
            let ulid = ulid::Ulid::from_parts(millis, 7).to_string();
            let id = CheckpointId::parse(&ulid).expect("canonical ULID");
            proptest::prop_assert_eq!(id.to_string(), ulid);
        }
    }
}
